"""Check an nnU-Net raw dataset for the boundary-aware network before fingerprinting.

Complements nnU-Net's ``--verify_dataset_integrity`` (which prints its findings and raises a
generic error, treats origin/direction mismatches as warnings and does not look for Inf, blank
images or truncated files): every problem here names its case and file and says how to fix it,
and all of them are reported at once.

Per training case: each file is complete (:mod:`.nifti_files`) and readable; images are 3D with one
component; all channels and the label share shape, spacing, origin and direction (within
:data:`SPACING_RTOL`, :data:`ORIGIN_TOL_VOXELS`, :data:`DIRECTION_ATOL`); images are finite and not
all zero; labels hold only integer values among those ``dataset.json`` declares.
"""
import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from nnunet_boundary.checks.case_files import channel_count_problems, group_channel_files
from nnunet_boundary.checks.nifti_files import is_nifti, nifti_truncation
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.regions import nested_regions

SPACING_RTOL = 1e-3
ORIGIN_TOL_VOXELS = 1e-2
DIRECTION_ATOL = 1e-3
MAX_LISTED_PROBLEMS = 25
PROGRESS_FROM_CASES = 20
_REQUIRED_KEYS = ('labels', 'channel_names', 'numTraining', 'file_ending')
_ALIGN_FIX = ("if the voxels do correspond, copy the image's geometry onto the label (SimpleITK: "
              "label.CopyInformation(image)); otherwise resample the label onto the image grid with "
              "nearest-neighbour interpolation")


class _CaseProblem(Exception):
    """A problem with one file that stops the remaining checks of its case."""


def _rel(path: Path) -> str:
    return f'{path.parent.name}/{path.name}'


def _read(path: Path) -> Tuple[sitk.ImageFileReader, np.ndarray]:
    """The geometry as SimpleITK (nnU-Net's default reader) sees it, and the voxel values; a truncated
    or unreadable file raises :class:`_CaseProblem`. NIfTI voxels are read with nibabel: SimpleITK
    turns NaN and Inf voxels of a NIfTI file into zeros or arbitrary small numbers."""
    if is_nifti(path):
        truncation = nifti_truncation(path)
        if truncation:
            raise _CaseProblem(f"{_rel(path)} is truncated or corrupt: {truncation}. Re-export or copy it again.")
    try:
        header = sitk.ImageFileReader()
        header.SetFileName(str(path))
        header.ReadImageInformation()
        voxels = np.asanyarray(nib.load(str(path)).dataobj) if is_nifti(path) else \
            sitk.GetArrayFromImage(header.Execute())
    except (RuntimeError, OSError, ValueError) as e:
        reason = str(e).strip().splitlines()[-1]
        raise _CaseProblem(f"{_rel(path)} cannot be read ({reason}). Re-export or copy it again.") from None
    return header, voxels


def _geometry_problems(reference: Path, ref: sitk.ImageFileReader, other_path: Path,
                       other: sitk.ImageFileReader) -> List[str]:
    """Differences in shape, spacing, origin and direction between two files of one case."""
    where = f"{_rel(other_path)} and {_rel(reference)}"
    if tuple(ref.GetSize()) != tuple(other.GetSize()):
        return [f"{where} differ in shape (x, y, z) {other.GetSize()} vs {ref.GetSize()}: they must share one voxel "
                f"grid; resample {_rel(other_path)} onto {_rel(reference)} (nearest neighbour for labels)"]
    problems = []
    spacing = np.array(ref.GetSpacing())
    if not np.allclose(other.GetSpacing(), spacing, rtol=SPACING_RTOL, atol=0):
        problems.append(f"{where} differ in spacing {other.GetSpacing()} vs {ref.GetSpacing()}: {_ALIGN_FIX}")
    if not np.allclose(other.GetOrigin(), ref.GetOrigin(), rtol=0, atol=ORIGIN_TOL_VOXELS * spacing.min()):
        problems.append(f"{where} differ in origin {other.GetOrigin()} vs {ref.GetOrigin()}: {_ALIGN_FIX}")
    if not np.allclose(other.GetDirection(), ref.GetDirection(), rtol=0, atol=DIRECTION_ATOL):
        problems.append(f"{where} differ in direction {other.GetDirection()} vs {ref.GetDirection()}: {_ALIGN_FIX}")
    return problems


def _image_voxel_problems(path: Path, voxels: np.ndarray) -> List[str]:
    if np.issubdtype(voxels.dtype, np.floating):
        n_nan, n_inf = int(np.isnan(voxels).sum()), int(np.isinf(voxels).sum())
        if n_nan or n_inf:
            return [f"{_rel(path)} has {n_nan} NaN and {n_inf} Inf voxels: replace them with a valid intensity "
                    f"(for CT e.g. -1024 HU, the air value) before planning"]
    if not voxels.any():
        return [f"{_rel(path)} is blank (every voxel is 0), most likely a failed export: re-export it, or remove the "
                f"case from imagesTr/labelsTr and lower numTraining in dataset.json"]
    return []


def _label_voxel_problems(path: Path, voxels: np.ndarray, declared: Sequence[int]) -> List[str]:
    values = np.unique(voxels)
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        odd = [float(v) for v in values if not np.isfinite(v) or v != np.round(v)][:5]
        return [f"{_rel(path)} has non-integer label values {odd}: labels must be integers (was the label map "
                f"resampled with linear interpolation? use nearest neighbour)"]
    unexpected = sorted(int(v) for v in values if int(v) not in declared)
    if unexpected:
        return [f"{_rel(path)} has label values {unexpected} that dataset.json does not declare (declared: "
                f"{sorted(declared)}): map them to a declared label (e.g. to 0, background) or fix 'labels'"]
    return []


def check_case(case: str, image_files: Sequence[Path], label_file: Path, declared_labels: Sequence[int],
               tumor_labels: Sequence[int]) -> Tuple[List[str], Optional[str]]:
    """All checks of one training case: ``(problems, content)``; each problem starts with ``case``,
    ``content`` is ``'no foreground'``, ``'no tumor'`` or ``None`` (has both)."""
    try:
        if not label_file.is_file():
            raise _CaseProblem(f"{_rel(label_file)} is missing: every case in imagesTr needs its label map "
                               f"in labelsTr")
        problems, headers = [], []
        for path in image_files:
            header, voxels = _read(path)
            if header.GetDimension() != 3 or header.GetNumberOfComponents() != 1:
                raise _CaseProblem(f"{_rel(path)} is a {header.GetDimension()}D image with "
                                   f"{header.GetNumberOfComponents()} component(s) per voxel; the boundary-aware "
                                   f"network needs 3D scalar images, one file per channel (_0000, _0001, ...)")
            problems += _image_voxel_problems(path, voxels)
            headers.append(header)
        label_header, label = _read(label_file)
        for path, header in zip([*image_files[1:], label_file], [*headers[1:], label_header]):
            problems += _geometry_problems(image_files[0], headers[0], path, header)
        problems += _label_voxel_problems(label_file, label, declared_labels)
    except _CaseProblem as e:
        return [f"{case}: {e}"], None
    if problems:
        return [f"{case}: {p}" for p in problems], None
    if not label.any():
        return [], 'no foreground'
    return [], None if np.isin(label, tumor_labels).any() else 'no tumor'


def load_dataset_json(dataset_dir: Path) -> dict:
    path = dataset_dir / 'dataset.json'
    if not path.is_file():
        raise NnUNetBoundaryError(f"{dataset_dir}: no dataset.json; see nnU-Net's dataset_format.md")
    try:
        dataset_json = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise NnUNetBoundaryError(f"{path} is not valid JSON: {e}") from None
    missing = [k for k in _REQUIRED_KEYS if k not in dataset_json]
    if missing:
        raise NnUNetBoundaryError(f"{path}: missing {missing} (nnU-Net requires {list(_REQUIRED_KEYS)})")
    if not isinstance(dataset_json['numTraining'], int) or isinstance(dataset_json['numTraining'], bool):
        raise NnUNetBoundaryError(f"{path}: 'numTraining' must be a whole number (\"numTraining\": 3), got "
                                  f"{dataset_json['numTraining']!r}")
    return dataset_json


def declared_labels(dataset_json: dict, source: str) -> Tuple[List[int], List[int]]:
    """``(all label values a label map may hold, the innermost region's labels)``, after checking that the
    nested regions, the labels and ``regions_class_order`` agree (:func:`~nnunet_boundary.regions.nested_regions`)."""
    regions = nested_regions(dataset_json, source)
    as_list = lambda r: list(r) if isinstance(r, tuple) else [r]
    values = sorted({0, *as_list(regions[0])})  # the outermost region holds every foreground label
    if values != list(range(len(values))):
        raise NnUNetBoundaryError(f"{source}: label values must be consecutive 0, 1, 2, ... (nnU-Net), got "
                                  f"{values}; renumber the label maps and 'labels'")
    if 'ignore' in dataset_json['labels']:
        raise NnUNetBoundaryError(
            f"{source}: the 'ignore' label (nnU-Net's sparse annotation) is not supported by the boundary losses: "
            f"edges next to unannotated voxels are unknown. Remove 'ignore' and label those voxels, or train the "
            f"baseline nnUNetTrainer")
    return values, as_list(regions[-1])


def training_cases(dataset_dir: Path, dataset_json: dict) -> Dict[str, Tuple[List[Path], Path]]:
    """``{case: (image files by channel, label file)}``, checking names, channel counts and numTraining."""
    ending, n_channels = dataset_json['file_ending'], len(dataset_json['channel_names'])
    if 'dataset' in dataset_json:  # nnU-Net's explicit file list instead of imagesTr/labelsTr
        from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets
        listed = get_filenames_of_train_images_and_targets(str(dataset_dir), dataset_json)
        cases = {c: ([Path(p) for p in v['images']], Path(v['label'])) for c, v in listed.items()}
        problems = [f"{c}: lists {len(images)} image(s) but dataset.json 'channel_names' declares {n_channels}"
                    for c, (images, _) in cases.items() if len(images) != n_channels]
        problems += [f"{c}: {_rel(p)} is missing" for c, (images, _) in cases.items() for p in images
                     if not p.is_file()]
    else:
        images_dir = dataset_dir / 'imagesTr'
        if not images_dir.is_dir():
            raise NnUNetBoundaryError(f"{dataset_dir}: no imagesTr folder")
        files, unindexed = group_channel_files(images_dir, ending)
        problems = [f"{_rel(p)} has no channel index: name it CASE_0000{ending} (nnU-Net's CASE_XXXX{ending})"
                    for p in unindexed]
        problems += channel_count_problems(files, n_channels, ending)
        cases = {c: ([channels[i] for i in sorted(channels)], dataset_dir / 'labelsTr' / f'{c}{ending}')
                 for c, channels in files.items()}
    if problems:
        raise NnUNetBoundaryError(f"{dataset_dir}: training files do not match dataset.json:\n  " + '\n  '.join(problems))
    if len(cases) != dataset_json['numTraining']:
        raise NnUNetBoundaryError(f"{dataset_dir}: dataset.json says numTraining={dataset_json['numTraining']} but "
                                  f"there are {len(cases)} training cases; set numTraining to {len(cases)}")
    return cases


def check_raw_dataset(dataset_dir: Path, num_processes: int = 1) -> List[str]:
    """Check ``$nnUNet_raw/DatasetXXX_Name`` for training the boundary-aware network.

    :returns: warnings that do not stop training (cases without tumor or without any foreground,
        which the tumor-weighted sampler handles by its fallbacks).
    :raises NnUNetBoundaryError: listing every problem found, each with its case, file and fix.
    """
    dataset_dir = Path(dataset_dir)
    dataset_json = load_dataset_json(dataset_dir)
    labels, tumor_labels = declared_labels(dataset_json, str(dataset_dir / 'dataset.json'))
    cases = training_cases(dataset_dir, dataset_json)
    arguments = [(c, images, label, labels, tumor_labels) for c, (images, label) in cases.items()]
    progress = dict(total=len(cases), desc='checking training cases', disable=len(cases) < PROGRESS_FROM_CASES)
    if num_processes > 1:
        with ProcessPoolExecutor(num_processes, mp_context=get_context('spawn')) as pool:
            results = list(tqdm(pool.map(check_case, *zip(*arguments)), **progress))
    else:
        results = [check_case(*a) for a in tqdm(arguments, **progress)]
    problems = [p for case_problems, _ in results for p in case_problems]
    if problems:
        listed = problems[:MAX_LISTED_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(listed)} more" if len(problems) > len(listed) else ''
        bad_cases = sum(1 for case_problems, _ in results if case_problems)
        raise NnUNetBoundaryError(f"{dataset_dir}: {len(problems)} problem(s) in {bad_cases} of {len(cases)} training "
                                  f"cases; fix them and run again:\n  " + '\n  '.join(listed) + more)
    warnings = []
    for content, consequence in (('no tumor', 'their crops fall back to kidney voxels'),
                                 ('no foreground', 'their crops are drawn at random')):
        without = [c for c, (_, found) in zip(cases, results) if found == content]
        if without:
            warnings.append(f"{len(without)} training case(s) have {content} ({', '.join(without[:5])}"
                            f"{' ...' if len(without) > 5 else ''}); {consequence}")
    return warnings
