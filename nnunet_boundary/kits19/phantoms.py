"""CT-like arterial-phase phantoms synthesized around real KiTS19 and KiTS23 label maps.

The KiTS19 and KiTS23 segmentations (Heller et al., arXiv:1904.00445, arXiv:2307.01984) are public
but the CT volumes are distributed separately. :func:`synthesize_ct` builds a plausible abdominal CT
around any kidney/tumor(/cyst) label map so that training, evaluation and the data path can be
exercised on real kidney and tumor geometry: air, a body outline fitted around the kidneys,
subcutaneous fat, abdominal wall and back muscles, psoas, a vertebral column with discs, spinal
canal and posterior elements, aorta and IVC, liver on the patient's right and spleen on the left,
bowel/fat texture, perirenal fat, kidneys with a bright cortex and darker medulla (arterial
phase, from a distance transform inside the kidney), heterogeneous tumors (texture, an
enhancing rim and sometimes a necrotic core) and KiTS23 cysts (homogeneous water attenuation in
a thin enhancing wall), then partial-volume blur and noise, in HU as int16. Values follow typical
arterial-phase attenuation ranges; they are a stand-in for real CT, not a model of any patient.

:func:`generate_phantoms` applies it to a folder of KiTS19 or KiTS23 cases, optionally on a coarser
grid (the label map is resampled first, nearest neighbour, then the CT is synthesized on the coarse
grid), and writes the official layout (the cases folder with its clinical records) and NIfTI convention.
"""
import json
import multiprocessing
import time
import zlib
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter, zoom

from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.kits19.io import (EDITIONS, KITS23, KiTS19Error, kits_case_dirs, kits_spacing, require_labels,
                                       select_cases, write_kits_nifti)

HU_MIN, HU_MAX = -1024, 3071


def smooth_noise(shape: Tuple[int, ...], spacing: Sequence[float], sigma_mm: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with correlation length ``sigma_mm``, zero mean, unit std, float32.

    Drawn on a grid about ``sigma_mm / 2`` coarse and linearly upsampled, so it stays cheap on
    full-resolution volumes.
    """
    factors = [max(1, int(sigma_mm / 2 / s)) for s in spacing]
    coarse_shape = [-(-n // f) for n, f in zip(shape, factors)]
    field = gaussian_filter(rng.standard_normal(coarse_shape, dtype=np.float32),
                            [sigma_mm / (s * f) for s, f in zip(spacing, factors)], mode='wrap')
    if any(f > 1 for f in factors):
        field = zoom(field, [n / c for n, c in zip(shape, coarse_shape)], order=1, grid_mode=True,
                     mode='grid-constant')[tuple(slice(0, n) for n in shape)]
    return (field - field.mean()) / max(float(field.std()), 1e-6)


def _ellipse(coords: Sequence[np.ndarray], centre: Sequence[float], radii: Sequence[float]) -> np.ndarray:
    """Normalised squared radius (< 1 inside), broadcast over the given coordinate arrays."""
    return sum(((c - m) / r) ** 2 for c, m, r in zip(coords, centre, radii))


def _bounding_box(mask: np.ndarray, margins: Sequence[int]) -> Tuple[slice, ...]:
    box = []
    for axis, margin in enumerate(margins):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(hit[0] - margin, 0), min(hit[-1] + 1 + margin, mask.shape[axis])))
    return tuple(box)


def _depth(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Approximate distance (mm) from each voxel of ``mask`` to its surface (0 outside).

    Euclidean distance transform on the bounding box, less half a voxel so that the outermost
    voxel layer sits at about half a voxel deep.
    """
    depth = np.zeros(mask.shape, np.float32)
    if mask.any():
        box = _bounding_box(mask, [1] * mask.ndim)
        depth[box] = distance_transform_edt(mask[box], sampling=spacing)
        depth[mask] -= 0.5 * min(spacing)
    return depth


def _distance_outside(mask: np.ndarray, spacing: Sequence[float], max_mm: float) -> np.ndarray:
    """Distance (mm) from voxels outside ``mask`` to it, exact up to ``max_mm``; inf further out."""
    distance = np.full(mask.shape, np.inf, np.float32)
    if mask.any():
        box = _bounding_box(mask, [int(np.ceil(max_mm / s)) + 1 for s in spacing])
        distance[box] = distance_transform_edt(~mask[box], sampling=spacing)
    return distance


def synthesize_ct(seg: np.ndarray, spacing_zyx: Sequence[float], rng: np.random.Generator,
                  z_towards_feet: bool = True) -> np.ndarray:
    """CT-like arterial-phase intensities (HU, int16) around a KiTS19 or KiTS23 label map.

    Args:
        seg: labels (z, y, x), 0 background, 1 kidney, 2 tumor, 3 cyst (KiTS23). Axes are (axial slice,
            anterior -> posterior row, patient right -> left column), as in the KiTS files read
            with nibabel (and in LPS-oriented arrays).
        spacing_zyx: voxel size in mm along (z, y, x).
        rng: source of all randomness; the same generator state gives the same image.
        z_towards_feet: True when the slice index increases towards the feet (KiTS19); the
            liver and spleen are placed at the head end of the kidneys.

    Returns:
        int16 array of seg's shape, air -1000, fat about -100, muscle 40-60, liver about 100,
        spleen about 120, bone 350-700, kidney cortex 150-250 over a 50-100 medulla, tumor 40-120,
        cyst 0-15 inside a 1-2 mm wall of 70-100 (less where voxels are coarser than the wall). A
        label map without cysts (KiTS19) gives the same image as before cysts were rendered: the cyst
        step draws from ``rng`` only when there is one.
    """
    seg = np.asarray(seg)
    shape, spacing = seg.shape, tuple(float(s) for s in spacing_zyx)
    nz, ny, nx = shape
    sz, sy, sx = spacing
    foreground = seg > 0
    feet_mm = (np.arange(nz, dtype=np.float32) * sz if z_towards_feet
               else (nz - 1 - np.arange(nz, dtype=np.float32)) * sz)[:, None, None]
    y_mm = (np.arange(ny, dtype=np.float32) * sy)[None, :, None]
    x_mm = (np.arange(nx, dtype=np.float32) * sx)[None, None, :]

    # Landmarks from the kidneys: midline between the two kidneys, their AP level and head end.
    footprint = foreground.any(axis=0)
    centre_x = (nx - 1) / 2 * sx
    if footprint.any():
        rows, cols = np.nonzero(footprint)
        kidney_y = float(rows.mean() * sy)
        sides = [cols[cols * sx < centre_x], cols[cols * sx >= centre_x]]
        midline = float(np.mean([s.mean() * sx for s in sides])) if all(len(s) for s in sides) else centre_x
        head_end = float(feet_mm[foreground.any(axis=(1, 2)), 0, 0].min())
    else:
        rows = cols = np.zeros(0, int)
        kidney_y, midline, head_end = (ny - 1) / 2 * sy, centre_x, float(feet_mm.mean())

    # Body outline: an ellipse whose back lies behind the kidneys, grown to enclose all labels.
    half_width, half_depth = rng.uniform(145, 180), rng.uniform(105, 130)
    fat, wall = rng.uniform(12, 35), rng.uniform(8, 14)
    body_centre = (kidney_y + rng.uniform(55, 75) - half_depth, midline)
    if len(rows):
        margin = fat + wall + 15
        reach = _ellipse((rows * sy, cols * sx), body_centre, (half_depth - margin, half_width - margin)).max()
        if reach > 1:
            half_depth = (half_depth - margin) * np.sqrt(reach) + margin
            half_width = (half_width - margin) * np.sqrt(reach) + margin
    breathing = 1 + 0.03 * np.sin(feet_mm / rng.uniform(150, 300) + rng.uniform(0, 2 * np.pi))

    def inside(shrink_mm: float) -> np.ndarray:
        radii = (half_depth * breathing - shrink_mm, half_width * breathing - shrink_mm)
        return _ellipse((y_mm, x_mm), body_centre, radii) < 1

    body, muscle_layer, cavity = inside(0), inside(fat), inside(fat + wall)
    image = np.full(shape, -1000, np.float32)
    image[body] = -100
    image[muscle_layer] = rng.uniform(45, 60)
    texture = smooth_noise(shape, spacing, 8.0, rng)
    visceral = np.where(texture > rng.uniform(-0.2, 0.5), rng.uniform(20, 40), rng.uniform(-105, -80))
    gas = (texture < -2.2) & (y_mm < body_centre[0])
    image[cavity] = visceral[cavity]
    image[cavity & gas] = -850

    # Liver (patient right, +x is patient left) and spleen at the head end of the kidneys.
    organ_texture = smooth_noise(shape, spacing, 6.0, rng)
    liver = _ellipse((feet_mm, y_mm, x_mm),
                     (head_end + rng.uniform(0, 25), kidney_y - rng.uniform(25, 40), midline - rng.uniform(65, 85)),
                     (rng.uniform(80, 110), rng.uniform(65, 85), rng.uniform(70, 90))) < 1
    spleen = _ellipse((feet_mm, y_mm, x_mm),
                      (head_end - rng.uniform(0, 20), kidney_y + rng.uniform(-5, 15), midline + rng.uniform(85, 100)),
                      (rng.uniform(45, 60), rng.uniform(40, 55), rng.uniform(22, 30))) < 1
    for organ, level in ((liver & cavity, rng.uniform(90, 110)), (spleen & cavity, rng.uniform(110, 130))):
        image[organ] = level + 8 * organ_texture[organ]

    # Perirenal fat separates the kidneys from whatever lies next to them.
    perirenal_mm = rng.uniform(5, 10)
    around_kidneys = _distance_outside(foreground, spacing, perirenal_mm)
    image[body & (around_kidneys > 0) & (around_kidneys <= perirenal_mm)] = -90

    # Spine: vertebral bodies with discs, canal, posterior elements; psoas and back muscles.
    vertebra_radii = (rng.uniform(14, 18), rng.uniform(18, 23))
    vertebra_y = kidney_y + rng.uniform(-10, 5)
    footprint_mm = (rows * sy, cols * sx)
    for _ in range(12):  # move the spine back behind a kidney that crosses the midline
        if not len(rows) or _ellipse(footprint_mm, (vertebra_y, midline), vertebra_radii).min() >= 1:
            break
        vertebra_y += 5
    canal_y = vertebra_y + vertebra_radii[0] + 10
    muscle_level = rng.uniform(45, 60)
    psoas_radii = (rng.uniform(12, 18), rng.uniform(12, 18) * (1 + np.clip(feet_mm - head_end, 0, 200) / 150))
    for side in (-1, 1):
        psoas = _ellipse((y_mm, x_mm), (vertebra_y + 3, midline + side * (vertebra_radii[1] + psoas_radii[1])),
                         psoas_radii) < 1
        back = _ellipse((y_mm, x_mm), (canal_y + 25, midline + side * 32), (20, 26)) < 1
        image[(psoas | back) & body] = muscle_level
    vertebra = _ellipse((y_mm, x_mm), (vertebra_y, midline), vertebra_radii)
    level_mm = rng.uniform(28, 34)
    disc = ((feet_mm + rng.uniform(0, level_mm)) % level_mm) < rng.uniform(7, 10)
    bone = np.where(vertebra > 0.75, 700, np.float32(rng.uniform(300, 400)))
    image[np.broadcast_to(vertebra < 1, shape)] = np.where(disc, 90, bone)[np.broadcast_to(vertebra < 1, shape)]
    arch = ((_ellipse((y_mm, x_mm), (canal_y, midline), (13, 13)) < 1)
            | (_ellipse((y_mm, x_mm), (canal_y + 22, midline), (16, 4)) < 1))
    image[np.broadcast_to(arch, shape)] = 600
    image[np.broadcast_to(_ellipse((y_mm, x_mm), (canal_y, midline), (8, 9)) < 1, shape)] = 30
    aorta = _ellipse((y_mm, x_mm), (vertebra_y - vertebra_radii[0] - 13, midline + 12), (11, 11)) < 1
    ivc = _ellipse((y_mm, x_mm), (vertebra_y - vertebra_radii[0] - 12, midline - 28), (10, 14)) < 1
    image[np.broadcast_to(aorta, shape)] = rng.uniform(250, 350)
    image[np.broadcast_to(ivc & ~aorta, shape)] = rng.uniform(80, 110)

    # Kidney: bright cortex over a darker medulla, with irregular cortical columns.
    kidney = seg == 1
    if kidney.any():
        depth = _depth(kidney, spacing) + 2.0 * smooth_noise(shape, spacing, 4.0, rng)
        cortex, medulla = rng.uniform(170, 230), rng.uniform(60, 95)
        thickness = rng.uniform(4, 7)
        weight = np.clip((thickness + 1.5 - depth[kidney]) / 3.0, 0, 1)
        image[kidney] = medulla + (cortex - medulla) * weight + 8 * organ_texture[kidney]

    # Tumor: heterogeneous, enhancing rim, sometimes a necrotic core.
    tumor = seg == 2
    if tumor.any():
        tumor_depth = _depth(tumor, spacing)[tumor]
        tumor_texture = smooth_noise(shape, spacing, 3.0, rng)[tumor]
        values = rng.uniform(60, 100) + rng.uniform(10, 20) * tumor_texture + 15 * (tumor_depth < 3)
        if rng.random() < 0.6 and tumor_depth.max() > 10:
            necrotic = tumor_depth + 3 * tumor_texture > rng.uniform(0.5, 0.7) * tumor_depth.max()
            values[necrotic] = rng.uniform(15, 35) + 5 * tumor_texture[necrotic]
        image[tumor] = np.clip(values, 10, 130)

    # Cyst: homogeneous simple fluid that does not enhance, inside a thin smooth wall that may enhance
    # (Bosniak I/II, version 2019: fluid -9 to 20 HU, wall <= 2 mm; Silverman et al., Radiology 2019).
    # A wall thinner than a voxel only partly fills the outermost voxel layer (partial volume).
    cyst = seg == 3
    if cyst.any():
        fluid, wall, wall_mm, voxel_mm = rng.uniform(0, 15), rng.uniform(70, 100), rng.uniform(1, 2), min(spacing)
        in_wall = np.clip((wall_mm + 0.5 * voxel_mm - _depth(cyst, spacing)[cyst]) / voxel_mm, 0, 1)
        image[cyst] = fluid + (wall - fluid) * in_wall

    image = gaussian_filter(image, 0.7, mode='nearest')
    image += rng.uniform(10, 20) * rng.standard_normal(shape, dtype=np.float32)
    return np.clip(np.rint(image), HU_MIN, HU_MAX).astype(np.int16)


def coarse_grid(shape: Sequence[int], spacing: Sequence[float], target_mm: Optional[float]):
    """Target (shape, spacing) for ``target_mm``; axes already coarser than the target are kept."""
    if not target_mm:
        return tuple(shape), tuple(spacing)
    new_spacing = tuple(max(float(s), float(target_mm)) for s in spacing)
    new_shape = tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, new_spacing))
    return new_shape, new_spacing


def resample_labels(seg: np.ndarray, spacing: Sequence[float], new_shape: Sequence[int],
                    new_spacing: Sequence[float]) -> np.ndarray:
    """Nearest-neighbour resampling with voxel centres aligned at the volume's first corner."""
    index = [np.clip(((np.arange(m) + 0.5) * t / s).astype(int), 0, n - 1)
             for m, t, s, n in zip(new_shape, new_spacing, spacing, seg.shape)]
    return seg[np.ix_(*index)]


def case_seed(case: str, seed: int) -> np.random.SeedSequence:
    """Per-case randomness: depends only on the case number and the run's seed."""
    return np.random.SeedSequence([int(seed), int(case.split('_')[-1])])


def phantom_case(case: str, segmentation: Path, out_dir: Path, target_mm: Optional[float],
                 seed: int) -> Tuple[str, bool, float]:
    """Write one phantom case; returns (case, written (False: already there), seconds)."""
    start = time.time()
    image_out, seg_out = out_dir / case / 'imaging.nii.gz', out_dir / case / 'segmentation.nii.gz'
    if image_out.is_file() and seg_out.is_file():
        return case, False, 0.0
    try:
        source = nib.load(str(segmentation))
        labels = np.asanyarray(source.dataobj)
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as e:
        raise KiTS19Error(f'{case}: cannot read {segmentation} ({e}); re-download it or leave it out with '
                          f'--cases') from None
    axcodes = nib.aff2axcodes(source.affine)
    if labels.ndim != 3 or axcodes[1:] != ('P', 'L') or axcodes[0] not in 'IS':
        raise KiTS19Error(f'{case}: {segmentation} is not laid out as KiTS files are (3D, axis codes I-P-L, '
                          f'got {"".join(axcodes)}); pass the original KiTS19 or KiTS23 segmentations')
    require_labels(labels, case, segmentation, KITS23, fix='fix it or leave it out with --cases')
    spacing = kits_spacing(source.affine)
    new_shape, new_spacing = coarse_grid(labels.shape, spacing, target_mm)
    labels = resample_labels(labels.astype(np.uint8), spacing, new_shape, new_spacing)
    image = synthesize_ct(labels, new_spacing, np.random.default_rng(case_seed(case, seed)),
                          z_towards_feet=axcodes[0] == 'I')
    write_kits_nifti(labels, new_spacing, seg_out)
    write_kits_nifti(image, new_spacing, image_out)
    return case, True, time.time() - start


def _phantom_case_star(args):
    return phantom_case(*args)


def generate_phantoms(mask_root: Path, out_dir: Path, spacing_mm: Optional[float] = None,
                      cases: Sequence[str] = None, seed: int = 0, num_processes: int = 1,
                      log: Callable[[str], None] = print) -> Dict[str, str]:
    """Synthesize ``out_dir/case_XXXXX/{imaging,segmentation}.nii.gz`` for the KiTS19 or KiTS23 label
    maps under ``mask_root``; returns what happened per case. Finished cases are skipped on rerun.

    ``out_dir`` is laid out as the cases folder (KiTS19 ``data``, KiTS23 ``dataset``): the clinical
    records ``kits.json`` or ``kits23.json``, if present, are copied next to the cases with
    ``voxel_spacing`` set to the new grid.
    """
    mask_root, out_dir = Path(mask_root), Path(out_dir)
    chosen = select_cases(kits_case_dirs(mask_root), cases)
    missing = [c for c, d in chosen.items() if not (d / 'segmentation.nii.gz').is_file()]
    if missing:
        raise KiTS19Error(f"no segmentation.nii.gz for case(s) {', '.join(missing[:10])}; "
                          f"leave them out with --cases")
    records = _read_clinical_records(mask_root, next(iter(chosen.values())).parent)  # a broken one is found at once
    jobs = [(c, d / 'segmentation.nii.gz', out_dir, spacing_mm, seed) for c, d in chosen.items()]
    status, start = {}, time.time()
    pool = multiprocessing.Pool(num_processes) if num_processes > 1 else None
    try:
        results = pool.imap_unordered(_phantom_case_star, jobs) if pool else map(_phantom_case_star, jobs)
        for i, (case, written, seconds) in enumerate(results, 1):
            status[case] = 'written' if written else 'skipped'
            log(f'[{i}/{len(jobs)}] {case}: ' + (f'written ({seconds:.1f} s)' if written else 'exists, skipped'))
    finally:
        if pool:
            pool.terminate()
    if records is not None:
        _write_clinical_records(*records, out_dir, chosen)
    log(f'{sum(v == "written" for v in status.values())} case(s) written, '
        f'{sum(v == "skipped" for v in status.values())} skipped, in {time.time() - start:.0f} s -> {out_dir}')
    return status


def _read_clinical_records(mask_root: Path, cases_folder: Path) -> Optional[Tuple[str, list]]:
    """(file name, records) of the clinical records (``kits.json``, ``kits23.json``) in ``mask_root`` or the
    folder of its cases (``data``, ``dataset``), None if there are none."""
    found = next(((edition, folder / edition.clinical_records) for folder in dict.fromkeys((mask_root, cases_folder))
                  for edition in EDITIONS if (folder / edition.clinical_records).is_file()), None)
    if found is None:
        return None
    edition, source = found
    try:
        records = json.loads(source.read_text())
    except json.JSONDecodeError as e:
        raise KiTS19Error(f"{source} is not valid JSON ({e}); restore it from the {edition.name} repository or move "
                          f"it away to synthesize without clinical records") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise KiTS19Error(f"{source} must be {edition.name}'s list of per-case records ({{\"case_id\": ...}}, ...)")
    return source.name, records


def _write_clinical_records(name: str, records: list, out_dir: Path, cases: Dict[str, Path]) -> None:
    """The records with ``voxel_spacing`` set to the phantoms' grid, as ``out_dir/name``."""
    for record in records:
        written = out_dir / record.get('case_id', '') / 'segmentation.nii.gz'
        if record.get('case_id') in cases and written.is_file():
            sz, sy, sx = kits_spacing(nib.load(str(written)).affine)
            record['voxel_spacing'] = {'x_spacing': sx, 'y_spacing': sy, 'z_spacing': sz}
    with atomic_output(out_dir / name) as tmp:
        tmp.write_text(json.dumps(records, indent=4))
