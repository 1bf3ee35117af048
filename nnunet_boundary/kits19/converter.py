"""KiTS19 official layout -> nnU-Net v2 raw dataset, and predictions back into KiTS19 geometry.

Input: the ``data`` folder of the KiTS19 repository (Heller et al., arXiv:1904.00445),
``case_XXXXX/imaging.nii.gz`` + ``case_XXXXX/segmentation.nii.gz`` (labels 0 background,
1 kidney, 2 tumor). Output: ``$nnUNet_raw/DatasetXXX_KiTS19`` with ``imagesTr``/``labelsTr``
(optionally ``imagesTs``/``labelsTs`` for a held-out test set) and a ``dataset.json`` that
declares the nested KiTS19 regions (kidney = labels 1+2, tumor = label 2).

Geometry is never changed: the image keeps its own (KiTS19 I-P-L) geometry and the label is
written with the image's geometry, so nnU-Net's predictions come back on the same grid.
:func:`write_prediction_in_kits_geometry` then writes such a prediction with the original
KiTS19 NIfTI header, so that it overlays the original CT voxel for voxel.
"""
import json
import os
from pathlib import Path
from typing import Callable, List, Sequence

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from nnunet_boundary.environment import require_nnunet_paths
from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.kits19.io import (KiTS19Error, NIFTI_ENDING, geometry_mismatch, kits_case_dirs, read_image,
                                       require_kits19_labels, select_cases, write_nifti, write_sitk)
from nnunet_boundary.regions import KITS19_DATASET_JSON

DATASET_NAME = 'KiTS19'


def dataset_json(num_training: int) -> dict:
    """nnU-Net v2 ``dataset.json`` for KiTS19 with region-based training (kidney ⊃ tumor)."""
    return dict(KITS19_DATASET_JSON, name=DATASET_NAME,
                description="KiTS19 kidney and kidney tumor segmentation (Heller et al., arXiv:1904.00445)",
                reference="https://github.com/neheller/kits19", licence="CC BY-NC-SA 4.0", numTraining=num_training)


def dataset_folder(nnunet_raw: Path, dataset_id: int) -> Path:
    """``nnunet_raw/DatasetXXX_KiTS19``; refuses an id already taken by a differently named dataset."""
    if not 1 <= dataset_id <= 999:
        raise KiTS19Error(f'dataset id {dataset_id} is out of range; nnU-Net ids are 1..999')
    name = f'Dataset{dataset_id:03d}_{DATASET_NAME}'
    if nnunet_raw.is_dir():
        clashes = [p.name for p in nnunet_raw.iterdir()
                   if p.is_dir() and p.name.startswith(f'Dataset{dataset_id:03d}_') and p.name != name]
        if clashes:
            raise KiTS19Error(f'dataset id {dataset_id} is already used by {clashes[0]} in {nnunet_raw}; '
                              f'pick another -d')
    return nnunet_raw / name


def checked_labels(seg: sitk.Image, case: str, path: Path) -> sitk.Image:
    """The segmentation as uint8 after checking it only holds 0/1/2 (uint16 KiTS19 files included)."""
    labels = sitk.GetArrayFromImage(seg)
    require_kits19_labels(labels, case, path)
    out = sitk.GetImageFromArray(labels.astype(np.uint8))
    out.CopyInformation(seg)
    return out


def convert_case(case: str, case_dir: Path, image_out: Path, label_out: Path) -> None:
    """Check one KiTS19 case and write its image and label in nnU-Net naming."""
    image_path, seg_path = case_dir / 'imaging.nii.gz', case_dir / 'segmentation.nii.gz'
    image, seg = read_image(image_path, case), read_image(seg_path, case)
    mismatch = geometry_mismatch(image, seg)
    if mismatch:
        raise KiTS19Error(f'{case}: imaging and segmentation differ in {mismatch}; they must share shape and '
                          f'affine, re-download the case')
    labels = checked_labels(seg, case, seg_path)
    labels.CopyInformation(image)
    write_sitk(image, image_out)
    write_sitk(labels, label_out)


def convert_kits19(kits_dir: Path, dataset_id: int, cases: Sequence[str] = None, strict: bool = False,
                   num_test: int = 0, nnunet_raw: Path = None, log: Callable[[str], None] = print) -> Path:
    """Write the nnU-Net v2 raw dataset and return its folder.

    Cases without ``imaging.nii.gz`` or ``segmentation.nii.gz`` (e.g. the 90 KiTS19 test cases,
    which have no labels) are skipped with a warning, or are an error when ``strict``. The last
    ``num_test`` usable cases go to ``imagesTs``/``labelsTs``. Cases already written are skipped,
    so an interrupted run resumes where it stopped.
    """
    if nnunet_raw is None:
        require_nnunet_paths('nnUNet_raw')
        nnunet_raw = Path(os.environ['nnUNet_raw'])
    chosen = select_cases(kits_case_dirs(Path(kits_dir)), cases)
    incomplete = {c: [f for f in ('imaging.nii.gz', 'segmentation.nii.gz') if not (d / f).is_file()]
                  for c, d in chosen.items()}
    incomplete = {c: missing for c, missing in incomplete.items() if missing}
    if incomplete:
        listing = ', '.join(f"{c} (no {' / '.join(m)})" for c, m in incomplete.items())
        if strict:
            raise KiTS19Error(f'incomplete case(s): {listing}; add the files or drop --strict to skip them')
        log(f'warning: skipping {len(incomplete)} incomplete case(s): {listing}')
    usable = [c for c in chosen if c not in incomplete]
    if not usable:
        raise KiTS19Error(f'no case in {kits_dir} has both imaging.nii.gz and segmentation.nii.gz')
    if not 0 <= num_test < len(usable):
        raise KiTS19Error(f'--num-test {num_test} leaves no training case out of {len(usable)}; use a smaller value')

    out = dataset_folder(Path(nnunet_raw), dataset_id)
    split = {c: ('Tr' if i < len(usable) - num_test else 'Ts') for i, c in enumerate(usable)}
    failed = []
    for i, case in enumerate(usable, 1):
        part = split[case]
        image_out = out / f'images{part}' / f'{case}_0000{NIFTI_ENDING}'
        label_out = out / f'labels{part}' / f'{case}{NIFTI_ENDING}'
        _drop_from_other_split(out, case, 'Ts' if part == 'Tr' else 'Tr', log)
        if image_out.is_file() and label_out.is_file():
            log(f'[{i}/{len(usable)}] {case}: already converted, skipped')
            continue
        try:
            convert_case(case, chosen[case], image_out, label_out)
        except KiTS19Error as e:  # go on: the user learns about every bad case in one run
            failed.append(str(e))
            log(f'[{i}/{len(usable)}] {case}: NOT converted')
            continue
        log(f'[{i}/{len(usable)}] {case} -> images{part}')
    if failed:
        raise KiTS19Error(f'{len(failed)} of {len(usable)} case(s) could not be converted (the others were; fix these, '
                          f'or leave them out with --cases, and run again):\n  ' + '\n  '.join(failed))

    num_training = len(_case_files(out / 'labelsTr'))
    with atomic_output(out / 'dataset.json') as tmp:
        tmp.write_text(json.dumps(dataset_json(num_training), indent=4))
    log(f'{out}: {num_training} training case(s), {len(_case_files(out / "labelsTs"))} test case(s)')
    return out


def _case_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.glob('case_*' + NIFTI_ENDING)) if folder.is_dir() else []


def _drop_from_other_split(out: Path, case: str, part: str, log: Callable[[str], None]) -> None:
    """A case moved between train and test by a changed ``--num-test`` must not stay in both."""
    stale = [out / f'images{part}' / f'{case}_0000{NIFTI_ENDING}', out / f'labels{part}' / f'{case}{NIFTI_ENDING}']
    if any(p.exists() for p in stale):
        for p in stale:
            p.unlink(missing_ok=True)
        log(f'{case}: removed from images{part}/labels{part} (the --num-test split changed)')


def write_prediction_in_kits_geometry(pred_file: Path, reference_kits_segmentation: Path, out_file: Path) -> None:
    """Write an nnU-Net prediction of a converted case with the original KiTS19 NIfTI header.

    The prediction must lie on the grid of the reference (which nnU-Net guarantees for a case
    converted by :func:`convert_kits19`); the output then has the reference's exact affine,
    sform/qform codes and array layout, so it overlays the original ``imaging.nii.gz``.
    """
    case = Path(pred_file).name[:-len(NIFTI_ENDING)] if str(pred_file).endswith(NIFTI_ENDING) else str(pred_file)
    pred = read_image(Path(pred_file), case)
    try:
        reference = nib.load(str(reference_kits_segmentation))
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(reference_kits_segmentation))
        reader.ReadImageInformation()
    except (OSError, RuntimeError, nib.filebasedimages.ImageFileError):
        raise KiTS19Error(f'{case}: cannot read reference {reference_kits_segmentation}; pass the original '
                          f'KiTS19 case_XXXXX/segmentation.nii.gz (or imaging.nii.gz)') from None
    if tuple(reader.GetSize()) != pred.GetSize():
        raise KiTS19Error(f'{case}: prediction size {pred.GetSize()} differs from reference {reader.GetSize()}; '
                          f'was it predicted from this case converted by nnunet_boundary_convert_kits19?')
    reference_grid = sitk.Image(reader.GetSize(), sitk.sitkUInt8)
    reference_grid.SetSpacing(reader.GetSpacing())
    reference_grid.SetOrigin(reader.GetOrigin())
    reference_grid.SetDirection(reader.GetDirection())
    mismatch = geometry_mismatch(pred, reference_grid)
    if mismatch:
        raise KiTS19Error(f'{case}: prediction and reference {reference_kits_segmentation} differ in {mismatch}')
    # SimpleITK arrays are in reversed index order; NIfTI/nibabel arrays in index order.
    labels = sitk.GetArrayFromImage(pred).transpose().astype(np.uint8)
    write_nifti(labels, reference.affine, Path(out_file), header=reference.header)
