"""Reading and writing KiTS19-style NIfTI files: the KiTS editions, case discovery, clear errors, atomic writes.

KiTS19 (Heller et al., arXiv:1904.00445) ships ``data/case_XXXXX/imaging.nii.gz`` and
``data/case_XXXXX/segmentation.nii.gz``; KiTS21/KiTS23 (Heller et al., arXiv:2307.01984) the same
files under ``dataset/``, with a cyst label (:data:`KITS23`). Their NIfTI header is unusual: the
array is stored as (slices, rows, columns) with the sform affine ``[[0,0,-sx,0],[0,-sy,0,0],[-sz,0,0,0]]``
(axis codes I, P, L; origin 0; sform_code 2, qform_code 0). SimpleITK reads this as an image
of size (slices, rows, columns) with direction ``(0,0,1, 0,1,0, -1,0,0)``. :func:`kits_affine`
and :func:`write_kits_nifti` reproduce that convention for files we synthesize.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from nnunet_boundary.checks.nifti_files import is_nifti, nifti_truncation
from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.regions import KITS19_DATASET_JSON, KITS23_DATASET_JSON

CASE_DIR_PATTERN = re.compile(r'^case_\d{5}$')
NIFTI_ENDING = '.nii.gz'


class KiTS19Error(NnUNetBoundaryError):
    """Bad KiTS19 (or KiTS23) input, with the case or file it concerns and what to do about it."""


@dataclass(frozen=True)
class KiTSEdition:
    """What differs between the KiTS challenges whose data this package reads and converts."""
    name: str
    task: str  #: what is segmented, for dataset.json's description
    label_names: Tuple[str, ...]  #: label value i is label_names[i]
    cases_folder: str  #: the repository's folder of case_XXXXX/ and clinical records
    clinical_records: str  #: file name of the per-case clinical records in that folder
    dataset_json: dict  #: nnU-Net dataset.json with the edition's nested regions (without numTraining)
    citation: str
    repository: str
    converter: str  #: the console script that converts this edition for nnU-Net

    @property
    def labels(self) -> Tuple[int, ...]:
        return tuple(range(len(self.label_names)))

    @property
    def label_listing(self) -> str:
        """``'0 background, 1 kidney, 2 tumor'``."""
        return ', '.join(f'{value} {name}' for value, name in enumerate(self.label_names))


KITS19 = KiTSEdition(
    name='KiTS19', task='kidney and kidney tumor segmentation', label_names=('background', 'kidney', 'tumor'),
    cases_folder='data', clinical_records='kits.json', dataset_json=KITS19_DATASET_JSON,
    citation='Heller et al., arXiv:1904.00445', repository='https://github.com/neheller/kits19',
    converter='nnunet_boundary_convert_kits19')
#: KiTS23 as released in its repository; labels and regions as in KiTS21 (Heller et al., arXiv:2307.01984)
KITS23 = KiTSEdition(
    name='KiTS23', task='kidney, kidney tumor and kidney cyst segmentation',
    label_names=('background', 'kidney', 'tumor', 'cyst'), cases_folder='dataset', clinical_records='kits23.json',
    dataset_json=KITS23_DATASET_JSON, citation='Heller et al., arXiv:2307.01984; https://kits-challenge.org/kits23/',
    repository='https://github.com/neheller/kits23', converter='nnunet_boundary_convert_kits23')
EDITIONS = (KITS19, KITS23)


def case_id(value: str) -> str:
    """Normalise ``'7'``, ``'00007'`` or ``'case_00007'`` to ``'case_00007'``."""
    digits = value[len('case_'):] if value.startswith('case_') else value
    if not digits.isdigit():
        raise KiTS19Error(f"'{value}' is not a KiTS19 case id; use e.g. case_00007 or 7")
    return f'case_{int(digits):05d}'


def kits_case_dirs(root: Path, editions: Sequence[KiTSEdition] = EDITIONS) -> Dict[str, Path]:
    """The ``case_XXXXX`` folders of an official KiTS cases folder, by case id.

    ``root`` may be the cases folder itself or the repository holding it (``kits19/data``,
    ``kits23/dataset``: the ``cases_folder`` of one of ``editions``).
    """
    root = Path(root)
    wanted = ' or '.join(f'the {e.name} {e.cases_folder} folder ({e.name.lower()}/{e.cases_folder})' for e in editions)
    if not root.is_dir():
        raise KiTS19Error(f'{root} is not a folder; pass {wanted}, which holds case_XXXXX/')
    cases = _case_dirs(root)
    for folder in (root / e.cases_folder for e in editions):
        if not cases and folder.is_dir():
            cases = _case_dirs(folder)
    if not cases:
        raise KiTS19Error(f'no case_XXXXX folders in {root}; pass {wanted}')
    return cases


def _case_dirs(folder: Path) -> Dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and CASE_DIR_PATTERN.match(p.name)}


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


#: what :func:`read_label_map` (KiTS19 metrics, morphometry, overlays) tells to do with other labels
RELABEL_FOR_KITS19_METRICS = 'relabel it (KiTS21/23 cysts, label 3: map them to 1 for KiTS19 metrics)'


def read_label_map(path: Path, case: str, edition: KiTSEdition = KITS19) -> sitk.Image:
    """:func:`read_image` of one ``edition``'s label map, refusing what would give silently wrong metrics:
    another dimension than 3, non-integer voxels (an interpolated map), labels outside the edition's (KiTS19:
    0 background, 1 kidney, 2 tumor, so a kidney stored as 3 would count as background; KiTS23 adds 3 cyst)."""
    image = read_image(path, case)
    if image.GetDimension() != 3:
        raise KiTS19Error(f'{case}: {path} is {image.GetDimension()}D; {edition.name} label maps are 3D volumes')
    require_labels(sitk.GetArrayViewFromImage(image), case, path, edition,
                   RELABEL_FOR_KITS19_METRICS if edition is KITS19 else 'relabel it')
    return image


def require_labels(labels: np.ndarray, case: str, path: Path, edition: KiTSEdition = KITS19,
                   fix: str = RELABEL_FOR_KITS19_METRICS) -> None:
    """Integer voxels among the edition's labels (KiTS19: 0 background, 1 kidney, 2 tumor), or an error
    naming the case, file and ``fix``."""
    integer = np.issubdtype(labels.dtype, np.integer)
    if integer and labels.size and 0 <= labels.min() <= labels.max() <= edition.labels[-1]:
        return  # labels are 0..n: a range check suffices (np.unique sorts: seconds on a full-resolution volume)
    values = np.unique(labels)
    if not integer and not np.array_equal(values, np.round(values)):
        raise KiTS19Error(f'{case}: {path} has non-integer label values (e.g. {values[values != np.round(values)][:3]}'
                          f'); it was interpolated: resample label maps with nearest-neighbour interpolation')
    unknown = sorted(set(values.astype(np.int64).tolist()) - set(edition.labels))
    if unknown:
        raise KiTS19Error(f"{case}: {path} has label values {unknown[:5]} outside {edition.name}'s "
                          f"{edition.label_listing}; {fix}")


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
