"""KiTS19 / KiTS23 official layout -> nnU-Net v2 raw dataset, and predictions back into KiTS geometry.

Input: the cases folder of the KiTS19 repository (``data``, Heller et al., arXiv:1904.00445) or of
the KiTS23 repository (``dataset``, https://github.com/neheller/kits23), ``case_XXXXX/imaging.nii.gz``
+ ``case_XXXXX/segmentation.nii.gz`` (labels 0 background, 1 kidney, 2 tumor, and for KiTS23
3 cyst). Output: ``$nnUNet_raw/DatasetXXX_KiTS19`` (or ``_KiTS23``) with ``imagesTr``/``labelsTr``
(optionally ``imagesTs``/``labelsTs`` for a held-out test set) and a ``dataset.json`` that declares
the edition's nested regions (:mod:`nnunet_boundary.regions`: KiTS19 kidney ⊃ tumor; KiTS23
kidney_and_mass ⊃ mass ⊃ tumor). :class:`~nnunet_boundary.kits19.io.KiTSEdition` holds what differs.

Geometry is never changed: the image keeps its own (KiTS I-P-L) geometry and the label is
written with the image's geometry, so nnU-Net's predictions come back on the same grid.
:func:`write_prediction_in_kits_geometry` then writes such a prediction with the original
KiTS NIfTI header, so that it overlays the original CT voxel for voxel.
"""
import json
import os
from pathlib import Path
from typing import Callable, List, Sequence

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from nnunet_boundary.environment import require_nnunet_paths
from nnunet_boundary.atomic_files import atomic_output, write_image_atomically
from nnunet_boundary.kits19.io import (EDITIONS, KITS19, KiTS19Error, KiTSEdition, NIFTI_ENDING, geometry_mismatch,
                                       kits_case_dirs, read_image, require_labels, select_cases, write_nifti)


def dataset_json(num_training: int, edition: KiTSEdition = KITS19) -> dict:
    """nnU-Net v2 ``dataset.json`` for the edition with region-based training on its nested regions."""
    return dict(edition.dataset_json, name=edition.name,
                description=f'{edition.name} {edition.task} ({edition.citation})',
                reference=edition.repository, licence="CC BY-NC-SA 4.0", numTraining=num_training)


def dataset_folder(nnunet_raw: Path, dataset_id: int, edition: KiTSEdition = KITS19) -> Path:
    """``nnunet_raw/DatasetXXX_KiTS19`` (or ``_KiTS23``); refuses an id already taken by a differently named dataset."""
    if not 1 <= dataset_id <= 999:
        raise KiTS19Error(f'dataset id {dataset_id} is out of range; nnU-Net ids are 1..999')
    name = f'Dataset{dataset_id:03d}_{edition.name}'
    if nnunet_raw.is_dir():
        clashes = [p.name for p in nnunet_raw.iterdir()
                   if p.is_dir() and p.name.startswith(f'Dataset{dataset_id:03d}_') and p.name != name]
        if clashes:
            raise KiTS19Error(f'dataset id {dataset_id} is already used by {clashes[0]} in {nnunet_raw}; '
                              f'pick another -d')
    return nnunet_raw / name


def checked_labels(seg: sitk.Image, case: str, path: Path, edition: KiTSEdition = KITS19) -> sitk.Image:
    """The segmentation as uint8 after checking it only holds the edition's labels (uint16 files included)."""
    labels = sitk.GetArrayFromImage(seg)
    require_labels(labels, case, path, edition, fix=unknown_labels_fix(edition))
    out = sitk.GetImageFromArray(labels.astype(np.uint8))
    out.CopyInformation(seg)
    return out


def unknown_labels_fix(edition: KiTSEdition) -> str:
    """What to do with a label map that holds labels outside the edition's: the converter of an edition
    with more labels (KiTS19 -> KiTS23, whose cysts are label 3), else relabel or leave out."""
    wider = [e for e in EDITIONS if set(e.labels) > set(edition.labels)]
    return ''.join(f'{e.name} label maps ({e.label_listing}) are converted by {e.converter}; ' for e in wider) + \
        'relabel it or leave the case out with --cases'


def convert_case(case: str, case_dir: Path, image_out: Path, label_out: Path, edition: KiTSEdition = KITS19) -> None:
    """Check one KiTS case and write its image and label in nnU-Net naming."""
    image_path, seg_path = case_dir / 'imaging.nii.gz', case_dir / 'segmentation.nii.gz'
    image, seg = read_image(image_path, case), read_image(seg_path, case)
    mismatch = geometry_mismatch(image, seg)
    if mismatch:
        raise KiTS19Error(f'{case}: imaging and segmentation differ in {mismatch}; they must share shape and '
                          f'affine, re-download the case')
    labels = checked_labels(seg, case, seg_path, edition)
    labels.CopyInformation(image)
    write_image_atomically(image, image_out)
    write_image_atomically(labels, label_out)


def convert_kits(kits_dir: Path, dataset_id: int, cases: Sequence[str] = None, strict: bool = False,
                 num_test: int = 0, nnunet_raw: Path = None, log: Callable[[str], None] = print,
                 edition: KiTSEdition = KITS19) -> Path:
    """Write the nnU-Net v2 raw dataset of a KiTS edition and return its folder.

    Cases without ``imaging.nii.gz`` or ``segmentation.nii.gz`` (e.g. the 90 KiTS19 test cases,
    which have no labels, or label maps whose CT was not downloaded) are skipped with a warning,
    or are an error when ``strict``. The last ``num_test`` usable cases go to
    ``imagesTs``/``labelsTs``. Cases already written are skipped, so an interrupted run resumes
    where it stopped.
    """
    if nnunet_raw is None:
        require_nnunet_paths('nnUNet_raw')
        nnunet_raw = Path(os.environ['nnUNet_raw'])
    chosen = select_cases(kits_case_dirs(Path(kits_dir), [edition]), cases)
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
        raise KiTS19Error(f'no case in {kits_dir} has both imaging.nii.gz and segmentation.nii.gz; download the CT '
                          f'(see {edition.repository}) or synthesize CT-like phantoms around the label maps with '
                          f'nnunet_boundary_phantoms')
    if not 0 <= num_test < len(usable):
        raise KiTS19Error(f'--num-test {num_test} leaves no training case out of {len(usable)}; use a smaller value')

    out = dataset_folder(Path(nnunet_raw), dataset_id, edition)
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
            convert_case(case, chosen[case], image_out, label_out, edition)
        except KiTS19Error as e:  # go on: the user learns about every bad case in one run
            failed.append(str(e))
            log(f'[{i}/{len(usable)}] {case}: NOT converted')
            continue
        log(f'[{i}/{len(usable)}] {case} -> images{part}')
    if failed:
        listing = ' ' + failed[0] if len(failed) == 1 else '\n  ' + '\n  '.join(failed)
        raise KiTS19Error(f'{len(failed)} of {len(usable)} case(s) could not be converted (the others were; fix these, '
                          f'or leave them out with --cases, and run again):{listing}')

    num_training = len(_case_files(out / 'labelsTr'))
    with atomic_output(out / 'dataset.json') as tmp:
        tmp.write_text(json.dumps(dataset_json(num_training, edition), indent=4))
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
    """Write an nnU-Net prediction of a converted case with the original KiTS19 or KiTS23 NIfTI header.

    The prediction must lie on the grid of the reference (which nnU-Net guarantees for a case
    converted by :func:`convert_kits`); the output then has the reference's exact affine,
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
                          f'KiTS case_XXXXX/segmentation.nii.gz (or imaging.nii.gz)') from None
    if tuple(reader.GetSize()) != pred.GetSize():
        raise KiTS19Error(f'{case}: prediction size {pred.GetSize()} differs from reference {reader.GetSize()}; '
                          f"was it predicted from this case converted by {' or '.join(e.converter for e in EDITIONS)}?")
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
