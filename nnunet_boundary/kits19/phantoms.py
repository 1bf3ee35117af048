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
arterial-phase attenuation ranges (:data:`TISSUE_HU`); they are a stand-in for real CT, not a model of any patient.
Each part is rendered by its own function, all drawing in turn from the one generator passed in; per-part child
generators (``rng.spawn``) would decouple the parts' textures but change every phantom, so they wait for the next
rerun of the benchmarks built on these phantoms.

:func:`generate_phantoms` applies it to a folder of KiTS19 or KiTS23 cases, optionally on a coarser
grid (the label map is resampled first, nearest neighbour, then the CT is synthesized on the coarse
grid), and writes the official layout (the cases folder with its clinical records) and NIfTI convention.
"""
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter, zoom

from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.data.synthetic import ellipsoid
from nnunet_boundary.kits19.io import (EDITIONS, KITS23, KiTS19Error, kits_case_dirs, kits_spacing, require_labels,
                                       select_cases, write_kits_nifti)
from nnunet_boundary.parallel import map_jobs

HU_MIN, HU_MAX = -1024, 3071


@dataclass(frozen=True)
class TissueHU:
    """Attenuation (HU) of the phantoms' tissues in the arterial phase. A number is used as is; a (low, high) range
    is where each phantom draws its own level from, uniformly. ``*_texture`` and ``noise`` are standard deviations.
    Changing any value changes the phantoms (``test_phantoms_are_pinned``) and the benchmarks run on them."""
    air: float = -1000
    subcutaneous_fat: float = -100
    mesenteric_fat: Tuple[float, float] = (-105, -80)  #: the fat between the bowel loops
    perirenal_fat: float = -90
    bowel_gas: float = -850
    bowel: Tuple[float, float] = (20, 40)
    muscle: Tuple[float, float] = (45, 60)  #: abdominal wall; the psoas and back muscles draw a second level
    liver: Tuple[float, float] = (90, 110)
    spleen: Tuple[float, float] = (110, 130)
    organ_texture: float = 8  #: on liver, spleen and kidneys
    cortical_bone: float = 700  #: the vertebral bodies' shell
    cancellous_bone: Tuple[float, float] = (300, 400)
    posterior_elements: float = 600
    disc: float = 90
    spinal_canal: float = 30
    aorta: Tuple[float, float] = (250, 350)
    ivc: Tuple[float, float] = (80, 110)
    kidney_cortex: Tuple[float, float] = (170, 230)
    kidney_medulla: Tuple[float, float] = (60, 95)
    tumor: Tuple[float, float] = (60, 100)
    tumor_texture: Tuple[float, float] = (10, 20)
    tumor_rim: float = 15  #: added within 3 mm of the tumor surface (enhancing rim)
    necrosis: Tuple[float, float] = (15, 35)
    necrosis_texture: float = 5
    tumor_range: Tuple[float, float] = (10, 130)  #: tumor voxels are clipped to this
    cyst_fluid: Tuple[float, float] = (0, 15)
    cyst_wall: Tuple[float, float] = (70, 100)
    noise: Tuple[float, float] = (10, 20)  #: image noise, after the partial-volume blur


#: the tissue levels every phantom is drawn with
TISSUE_HU = TissueHU()


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


@dataclass(frozen=True)
class _Frame:
    """A phantom's grid in mm and the landmarks its anatomy is placed from, taken from the label map."""
    shape: Tuple[int, ...]
    spacing: Tuple[float, ...]  #: voxel size (z, y, x), mm
    feet_mm: np.ndarray  #: (nz, 1, 1) distance from the head end of the volume
    y_mm: np.ndarray  #: (1, ny, 1) anterior -> posterior
    x_mm: np.ndarray  #: (1, 1, nx) patient right -> left
    foreground: np.ndarray  #: all labels
    rows: np.ndarray  #: (row, column) indices of the labels' axial footprint
    cols: np.ndarray
    kidney_y: float  #: anterior-posterior level of the kidneys, mm
    midline: float  #: between the two kidneys, mm
    head_end: float  #: the labels' head end, mm along ``feet_mm``

    @property
    def footprint_mm(self) -> Tuple[np.ndarray, np.ndarray]:
        return self.rows * self.spacing[1], self.cols * self.spacing[2]


class _Body(NamedTuple):
    skin: np.ndarray  #: inside the body
    fat: np.ndarray  #: inside the subcutaneous fat (abdominal wall and cavity)
    cavity: np.ndarray  #: inside the abdominal wall
    centre_y: float  #: anterior-posterior centre of the outline, mm


class _Spine(NamedTuple):
    vertebra_y: float  #: centre of the vertebral bodies, mm
    vertebra_radii: Tuple[float, float]  #: (anterior-posterior, left-right), mm
    canal_y: float  #: centre of the spinal canal, mm


def _frame(seg: np.ndarray, spacing: Tuple[float, ...], z_towards_feet: bool) -> _Frame:
    """Coordinates of ``seg``'s grid and the landmarks from its kidneys: the midline between the two kidneys, their
    anterior-posterior level and head end (the centre of the volume when there are no labels). Draws nothing."""
    nz, ny, nx = seg.shape
    sz, sy, sx = spacing
    foreground = seg > 0
    feet_mm = (np.arange(nz, dtype=np.float32) * sz if z_towards_feet
               else (nz - 1 - np.arange(nz, dtype=np.float32)) * sz)[:, None, None]
    y_mm = (np.arange(ny, dtype=np.float32) * sy)[None, :, None]
    x_mm = (np.arange(nx, dtype=np.float32) * sx)[None, None, :]
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
    return _Frame(seg.shape, spacing, feet_mm, y_mm, x_mm, foreground, rows, cols, kidney_y, midline, head_end)


def _body_outline(frame: _Frame, rng: np.random.Generator) -> _Body:
    """Draws the body outline: an ellipse whose back lies behind the kidneys, grown to enclose all labels, that
    breathes a little along z, with its subcutaneous fat and abdominal wall thicknesses."""
    half_width, half_depth = rng.uniform(145, 180), rng.uniform(105, 130)
    fat, wall = rng.uniform(12, 35), rng.uniform(8, 14)
    body_centre = (frame.kidney_y + rng.uniform(55, 75) - half_depth, frame.midline)
    if len(frame.rows):
        margin = fat + wall + 15
        reach = ellipsoid(frame.footprint_mm, body_centre, (half_depth - margin, half_width - margin)).max()
        if reach > 1:
            half_depth = (half_depth - margin) * np.sqrt(reach) + margin
            half_width = (half_width - margin) * np.sqrt(reach) + margin
    breathing = 1 + 0.03 * np.sin(frame.feet_mm / rng.uniform(150, 300) + rng.uniform(0, 2 * np.pi))

    def inside(shrink_mm: float) -> np.ndarray:
        radii = (half_depth * breathing - shrink_mm, half_width * breathing - shrink_mm)
        return ellipsoid((frame.y_mm, frame.x_mm), body_centre, radii) < 1

    return _Body(inside(0), inside(fat), inside(fat + wall), body_centre[0])


def _render_body(frame: _Frame, body: _Body, rng: np.random.Generator) -> np.ndarray:
    """A new image (float32 HU): air, subcutaneous fat, the abdominal wall muscle and in the cavity bowel and
    mesenteric fat from a smooth random texture, with gas where the texture is lowest in the anterior half."""
    image = np.full(frame.shape, TISSUE_HU.air, np.float32)
    image[body.skin] = TISSUE_HU.subcutaneous_fat
    image[body.fat] = rng.uniform(*TISSUE_HU.muscle)
    texture = smooth_noise(frame.shape, frame.spacing, 8.0, rng)
    visceral = np.where(texture > rng.uniform(-0.2, 0.5), rng.uniform(*TISSUE_HU.bowel),
                        rng.uniform(*TISSUE_HU.mesenteric_fat))
    gas = (texture < -2.2) & (frame.y_mm < body.centre_y)
    image[body.cavity] = visceral[body.cavity]
    image[body.cavity & gas] = TISSUE_HU.bowel_gas
    return image


def _render_liver_and_spleen(image: np.ndarray, frame: _Frame, cavity: np.ndarray, organ_texture: np.ndarray,
                             rng: np.random.Generator) -> None:
    """Draws the liver on the patient's right (+x is patient left) and the spleen on the left, ellipsoids at the
    head end of the kidneys within the abdominal cavity, each at its own level with ``organ_texture``."""
    coords = (frame.feet_mm, frame.y_mm, frame.x_mm)
    liver = ellipsoid(coords, (frame.head_end + rng.uniform(0, 25), frame.kidney_y - rng.uniform(25, 40),
                               frame.midline - rng.uniform(65, 85)),
                      (rng.uniform(80, 110), rng.uniform(65, 85), rng.uniform(70, 90))) < 1
    spleen = ellipsoid(coords, (frame.head_end - rng.uniform(0, 20), frame.kidney_y + rng.uniform(-5, 15),
                                frame.midline + rng.uniform(85, 100)),
                       (rng.uniform(45, 60), rng.uniform(40, 55), rng.uniform(22, 30))) < 1
    for organ, level in ((liver & cavity, rng.uniform(*TISSUE_HU.liver)),
                         (spleen & cavity, rng.uniform(*TISSUE_HU.spleen))):
        image[organ] = level + TISSUE_HU.organ_texture * organ_texture[organ]


def _render_perirenal_fat(image: np.ndarray, frame: _Frame, body: _Body, rng: np.random.Generator) -> None:
    """Draws a 5-10 mm shell of perirenal fat around the labels, separating the kidneys from whatever lies next to
    them."""
    perirenal_mm = rng.uniform(5, 10)
    around_kidneys = _distance_outside(frame.foreground, frame.spacing, perirenal_mm)
    image[body.skin & (around_kidneys > 0) & (around_kidneys <= perirenal_mm)] = TISSUE_HU.perirenal_fat


def _place_spine(frame: _Frame, rng: np.random.Generator) -> _Spine:
    """Draws the vertebral bodies' radii and their level near the kidneys', moved back behind a kidney that crosses
    the midline; the spinal canal lies behind them."""
    vertebra_radii = (rng.uniform(14, 18), rng.uniform(18, 23))
    vertebra_y = frame.kidney_y + rng.uniform(-10, 5)
    for _ in range(12):
        if not len(frame.rows) or ellipsoid(frame.footprint_mm, (vertebra_y, frame.midline), vertebra_radii).min() >= 1:
            break
        vertebra_y += 5
    return _Spine(vertebra_y, vertebra_radii, vertebra_y + vertebra_radii[0] + 10)


def _render_back_muscles(image: np.ndarray, frame: _Frame, body: _Body, spine: _Spine,
                         rng: np.random.Generator) -> None:
    """Draws the psoas either side of the vertebral bodies, widening towards the feet, and the back muscles behind
    the spinal canal, at one muscle level."""
    muscle_level = rng.uniform(*TISSUE_HU.muscle)
    widening = 1 + np.clip(frame.feet_mm - frame.head_end, 0, 200) / 150
    psoas_radii = (rng.uniform(12, 18), rng.uniform(12, 18) * widening)
    for side in (-1, 1):
        psoas = ellipsoid((frame.y_mm, frame.x_mm),
                          (spine.vertebra_y + 3, frame.midline + side * (spine.vertebra_radii[1] + psoas_radii[1])),
                          psoas_radii) < 1
        back = ellipsoid((frame.y_mm, frame.x_mm), (spine.canal_y + 25, frame.midline + side * 32), (20, 26)) < 1
        image[(psoas | back) & body.skin] = muscle_level


def _render_vertebral_column(image: np.ndarray, frame: _Frame, spine: _Spine, rng: np.random.Generator) -> None:
    """Draws the vertebral bodies (cancellous bone in a cortical shell) between discs at a drawn level height and
    phase, the posterior elements and the spinal canal."""
    yx, shape = (frame.y_mm, frame.x_mm), frame.shape
    vertebra = ellipsoid(yx, (spine.vertebra_y, frame.midline), spine.vertebra_radii)
    level_mm = rng.uniform(28, 34)
    disc = ((frame.feet_mm + rng.uniform(0, level_mm)) % level_mm) < rng.uniform(7, 10)
    bone = np.where(vertebra > 0.75, TISSUE_HU.cortical_bone, np.float32(rng.uniform(*TISSUE_HU.cancellous_bone)))
    in_vertebra = np.broadcast_to(vertebra < 1, shape)
    image[in_vertebra] = np.where(disc, TISSUE_HU.disc, bone)[in_vertebra]
    arch = ((ellipsoid(yx, (spine.canal_y, frame.midline), (13, 13)) < 1)
            | (ellipsoid(yx, (spine.canal_y + 22, frame.midline), (16, 4)) < 1))
    image[np.broadcast_to(arch, shape)] = TISSUE_HU.posterior_elements
    image[np.broadcast_to(ellipsoid(yx, (spine.canal_y, frame.midline), (8, 9)) < 1, shape)] = TISSUE_HU.spinal_canal


def _render_great_vessels(image: np.ndarray, frame: _Frame, spine: _Spine, rng: np.random.Generator) -> None:
    """Draws the aorta, left of the midline in front of the vertebral bodies, and the IVC to its right, each at a
    drawn level (arterial phase: the aorta enhances most)."""
    yx, front = (frame.y_mm, frame.x_mm), spine.vertebra_y - spine.vertebra_radii[0]
    aorta = ellipsoid(yx, (front - 13, frame.midline + 12), (11, 11)) < 1
    ivc = ellipsoid(yx, (front - 12, frame.midline - 28), (10, 14)) < 1
    image[np.broadcast_to(aorta, frame.shape)] = rng.uniform(*TISSUE_HU.aorta)
    image[np.broadcast_to(ivc & ~aorta, frame.shape)] = rng.uniform(*TISSUE_HU.ivc)


def _render_kidneys(image: np.ndarray, kidney: np.ndarray, spacing: Tuple[float, ...], organ_texture: np.ndarray,
                    rng: np.random.Generator) -> None:
    """Draws label 1: a bright cortex over a darker medulla by depth below the kidney surface, made irregular
    (cortical columns) by a smooth noise on the depth, with ``organ_texture``. Draws nothing without a kidney."""
    if not kidney.any():
        return
    depth = _depth(kidney, spacing) + 2.0 * smooth_noise(kidney.shape, spacing, 4.0, rng)
    cortex, medulla = rng.uniform(*TISSUE_HU.kidney_cortex), rng.uniform(*TISSUE_HU.kidney_medulla)
    thickness = rng.uniform(4, 7)
    weight = np.clip((thickness + 1.5 - depth[kidney]) / 3.0, 0, 1)
    image[kidney] = medulla + (cortex - medulla) * weight + TISSUE_HU.organ_texture * organ_texture[kidney]


def _render_tumors(image: np.ndarray, tumor: np.ndarray, spacing: Tuple[float, ...],
                   rng: np.random.Generator) -> None:
    """Draws label 2: a heterogeneous tumor with an enhancing rim (3 mm) and, in 60% of phantoms with a tumor over
    10 mm deep, a necrotic core. Draws nothing without a tumor."""
    if not tumor.any():
        return
    tumor_depth = _depth(tumor, spacing)[tumor]
    tumor_texture = smooth_noise(tumor.shape, spacing, 3.0, rng)[tumor]
    values = (rng.uniform(*TISSUE_HU.tumor) + rng.uniform(*TISSUE_HU.tumor_texture) * tumor_texture
              + TISSUE_HU.tumor_rim * (tumor_depth < 3))
    if rng.random() < 0.6 and tumor_depth.max() > 10:
        necrotic = tumor_depth + 3 * tumor_texture > rng.uniform(0.5, 0.7) * tumor_depth.max()
        values[necrotic] = rng.uniform(*TISSUE_HU.necrosis) + TISSUE_HU.necrosis_texture * tumor_texture[necrotic]
    image[tumor] = np.clip(values, *TISSUE_HU.tumor_range)


def _render_cysts(image: np.ndarray, cyst: np.ndarray, spacing: Tuple[float, ...], rng: np.random.Generator) -> None:
    """Draws label 3 (KiTS23): homogeneous simple fluid that does not enhance, inside a thin smooth wall that may
    enhance (Bosniak I/II, version 2019: fluid -9 to 20 HU, wall <= 2 mm; Silverman et al., Radiology 2019). A wall
    thinner than a voxel only partly fills the outermost voxel layer (partial volume). Draws nothing without a cyst,
    so that a KiTS19 map gives the same image as before cysts were rendered."""
    if not cyst.any():
        return
    fluid, wall = rng.uniform(*TISSUE_HU.cyst_fluid), rng.uniform(*TISSUE_HU.cyst_wall)
    wall_mm, voxel_mm = rng.uniform(1, 2), min(spacing)
    in_wall = np.clip((wall_mm + 0.5 * voxel_mm - _depth(cyst, spacing)[cyst]) / voxel_mm, 0, 1)
    image[cyst] = fluid + (wall - fluid) * in_wall


def _blur_and_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Partial-volume blur, then Gaussian noise of a drawn std; rounded and clipped to int16 HU."""
    image = gaussian_filter(image, 0.7, mode='nearest')
    image += rng.uniform(*TISSUE_HU.noise) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.rint(image), HU_MIN, HU_MAX).astype(np.int16)


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
        cyst 0-15 inside a 1-2 mm wall of 70-100 (less where voxels are coarser than the wall) (levels:
        :data:`TISSUE_HU`). A label map without cysts (KiTS19) gives the same image as before cysts were
        rendered: the cyst step draws from ``rng`` only when there is one.
    """
    seg = np.asarray(seg)
    spacing = tuple(float(s) for s in spacing_zyx)
    # Each step draws from rng in turn: reordering the steps or their draws changes every phantom (and the benchmarks
    # run on them; tests/test_kits19_phantoms.py pins one).
    frame = _frame(seg, spacing, z_towards_feet)
    body = _body_outline(frame, rng)
    image = _render_body(frame, body, rng)
    organ_texture = smooth_noise(seg.shape, spacing, 6.0, rng)  # liver, spleen and kidneys
    _render_liver_and_spleen(image, frame, body.cavity, organ_texture, rng)
    _render_perirenal_fat(image, frame, body, rng)
    spine = _place_spine(frame, rng)
    _render_back_muscles(image, frame, body, spine, rng)
    _render_vertebral_column(image, frame, spine, rng)
    _render_great_vessels(image, frame, spine, rng)
    _render_kidneys(image, seg == 1, spacing, organ_texture, rng)
    _render_tumors(image, seg == 2, spacing, rng)
    _render_cysts(image, seg == 3, spacing, rng)
    return _blur_and_noise(image, rng)


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


def _describe_case(result: Tuple[str, bool, float]) -> str:
    case, written, seconds = result
    return f'{case}: ' + (f'written ({seconds:.1f} s)' if written else 'exists, skipped')


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
    start = time.time()
    results = map_jobs(_phantom_case_star, jobs, num_processes, ordered=False, log=log, describe=_describe_case)
    status = {case: 'written' if written else 'skipped' for case, written, _ in results}
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
