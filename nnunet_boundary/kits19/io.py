"""Reading and writing KiTS19-style NIfTI files: case discovery, clear errors, atomic writes.

KiTS19 (Heller et al., arXiv:1904.00445) ships ``case_XXXXX/imaging.nii.gz`` and
``case_XXXXX/segmentation.nii.gz``. Their NIfTI header is unusual: the array is stored as
(slices, rows, columns) with the sform affine ``[[0,0,-sx,0],[0,-sy,0,0],[-sz,0,0,0]]``
(axis codes I, P, L; origin 0; sform_code 2, qform_code 0). SimpleITK reads this as an image
of size (slices, rows, columns) with direction ``(0,0,1, 0,1,0, -1,0,0)``. :func:`kits_affine`
and :func:`write_kits_nifti` reproduce that convention for files we synthesize.
"""
import re
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from nnunet_boundary.checks.nifti_files import is_nifti, nifti_truncation
from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.errors import NnUNetBoundaryError

CASE_DIR_PATTERN = re.compile(r'^case_\d{5}$')
NIFTI_ENDING = '.nii.gz'


class KiTS19Error(NnUNetBoundaryError):
    """Bad KiTS19 input, with the case or file it concerns and what to do about it."""


def case_id(value: str) -> str:
    """Normalise ``'7'``, ``'00007'`` or ``'case_00007'`` to ``'case_00007'``."""
    digits = value[len('case_'):] if value.startswith('case_') else value
    if not digits.isdigit():
        raise KiTS19Error(f"'{value}' is not a KiTS19 case id; use e.g. case_00007 or 7")
    return f'case_{int(digits):05d}'


def kits_case_dirs(root: Path) -> Dict[str, Path]:
    """The ``case_XXXXX`` folders of an official KiTS19 ``data`` folder, by case id.

    ``root`` may be the ``data`` folder itself or the kits19 repository holding it.
    """
    root = Path(root)
    if not root.is_dir():
        raise KiTS19Error(f'{root} is not a folder; pass the KiTS19 data folder that holds case_XXXXX/')
    cases = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and CASE_DIR_PATTERN.match(p.name)}
    if not cases and (root / 'data').is_dir():
        return kits_case_dirs(root / 'data')
    if not cases:
        raise KiTS19Error(f'no case_XXXXX folders in {root}; pass the KiTS19 data folder (kits19/data)')
    return cases


def select_cases(available: Dict[str, Path], wanted: Sequence[str] = None) -> Dict[str, Path]:
    """Restrict ``available`` to ``wanted`` case ids (any spelling :func:`case_id` accepts)."""
    if not wanted:
        return available
    ids = [case_id(w) for w in wanted]
    missing = [i for i in ids if i not in available]
    if missing:
        raise KiTS19Error(f"case(s) {', '.join(missing)} not found; check --cases against the input folder")
    return {i: available[i] for i in ids}


def find_segmentations(folder: Path) -> Dict[str, Path]:
    """Segmentation files by case id, in either layout.

    nnU-Net layout: ``folder/<case>.nii.gz``; KiTS19 layout: ``folder/case_XXXXX/segmentation.nii.gz``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise KiTS19Error(f'{folder} is not a folder of segmentations')
    flat = {p.name[:-len(NIFTI_ENDING)]: p for p in sorted(folder.glob('*' + NIFTI_ENDING))
            if p.is_file() and not p.name.startswith('.')}
    if flat:
        return flat
    nested = {p.parent.name: p for p in sorted(folder.glob('case_*/segmentation' + NIFTI_ENDING))}
    if not nested:
        raise KiTS19Error(f'no *{NIFTI_ENDING} or case_*/segmentation{NIFTI_ENDING} files in {folder}')
    return nested


def read_image(path: Path, case: str) -> sitk.Image:
    """SimpleITK read that names the case and file when the file is missing, truncated or not NIfTI."""
    fix = 'the file is missing, truncated or not NIfTI; re-download or re-create it'
    truncation = nifti_truncation(path) if is_nifti(path) and Path(path).is_file() else None
    if truncation:  # ITK would fill a truncated file silently with zeros
        raise KiTS19Error(f'{case}: cannot read {path} ({truncation}): {fix}')
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else 'unreadable'
        raise KiTS19Error(f'{case}: cannot read {path} ({reason[:160]}): {fix}') from None


KITS19_LABELS = (0, 1, 2)


def read_label_map(path: Path, case: str) -> sitk.Image:
    """:func:`read_image` of a KiTS19 label map, refusing what would give silently wrong metrics: another
    dimension than 3, non-integer voxels (an interpolated map), labels outside 0 background, 1 kidney,
    2 tumor (a kidney stored as 3 would count as background)."""
    image = read_image(path, case)
    if image.GetDimension() != 3:
        raise KiTS19Error(f'{case}: {path} is {image.GetDimension()}D; KiTS19 label maps are 3D volumes')
    require_kits19_labels(sitk.GetArrayViewFromImage(image), case, path)
    return image


def require_kits19_labels(labels: np.ndarray, case: str, path: Path) -> None:
    """Integer voxels among 0 background, 1 kidney, 2 tumor, or an error naming the case, file and fix."""
    values = np.unique(labels)
    if not np.issubdtype(values.dtype, np.integer) and not np.array_equal(values, np.round(values)):
        raise KiTS19Error(f'{case}: {path} has non-integer label values (e.g. {values[values != np.round(values)][:3]}'
                          f'); it was interpolated: resample label maps with nearest-neighbour interpolation')
    unknown = sorted(set(values.astype(np.int64).tolist()) - set(KITS19_LABELS))
    if unknown:
        raise KiTS19Error(f'{case}: {path} has label values {unknown[:5]} outside KiTS19\'s 0 background, 1 kidney, '
                          f'2 tumor; relabel it (KiTS21/23 cysts, label 3: map them to 1 for KiTS19 metrics)')


def require_output_file(path: Optional[Path], example: str, flag: str = '-o') -> None:
    """A file to write must not be an existing folder."""
    if path is not None and Path(path).is_dir():
        raise KiTS19Error(f"{flag} {path} is a folder; give a file name, e.g. {Path(path) / example}")


def geometry_mismatch(a: sitk.Image, b: sitk.Image, tolerance: float = 1e-4) -> str:
    """Empty string when ``a`` and ``b`` share size, spacing, origin and direction, else what differs."""
    if a.GetSize() != b.GetSize():
        return f'size {a.GetSize()} vs {b.GetSize()}'
    for name in ('Spacing', 'Origin', 'Direction'):
        va, vb = np.array(getattr(a, 'Get' + name)()), np.array(getattr(b, 'Get' + name)())
        if not np.allclose(va, vb, rtol=tolerance, atol=tolerance):
            return f'{name.lower()} {tuple(np.round(va, 5))} vs {tuple(np.round(vb, 5))}'
    return ''


def write_sitk(image: sitk.Image, path: Path) -> None:
    """Compressed NIfTI write via a temporary file and ``os.replace``."""
    with atomic_output(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def kits_affine(spacing_zyx: Sequence[float]) -> np.ndarray:
    """The KiTS19 sform affine for an array (slices, rows, columns) with the given spacing in mm."""
    sz, sy, sx = (float(s) for s in spacing_zyx)
    return np.array([[0, 0, -sx, 0], [0, -sy, 0, 0], [-sz, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def kits_spacing(affine: np.ndarray) -> Tuple[float, float, float]:
    """(slice, row, column) spacing in mm from any NIfTI affine (column norms)."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def write_nifti(array: np.ndarray, affine: np.ndarray, path: Path, header: nib.Nifti1Header = None) -> None:
    """Write with nibabel via a temporary file.

    With a ``header``, its sform/qform codes and qform are kept (for writing back into a
    reference file's geometry); without, sform only (code 2, qform 0) as KiTS19 does.
    """
    image = nib.Nifti1Image(array, affine, header=header.copy() if header is not None else None)
    image.set_data_dtype(array.dtype)
    if header is None:
        image.set_sform(affine, code=2)
        image.set_qform(None, code=0)
    else:
        image.set_sform(header.get_sform(), code=int(header['sform_code']))
        image.set_qform(header.get_qform(), code=int(header['qform_code']))
    with atomic_output(path) as tmp:
        nib.save(image, str(tmp))


def write_kits_nifti(array: np.ndarray, spacing_zyx: Sequence[float], path: Path) -> None:
    """Write an array (slices, rows, columns) exactly as KiTS19 files are laid out."""
    write_nifti(array, kits_affine(spacing_zyx), path)
