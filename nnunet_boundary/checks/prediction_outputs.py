"""Guard for ``--continue_prediction``: nnU-Net skips every case whose output file exists, but it
writes outputs in place (``SimpleITK.WriteImage`` onto the final name), so a prediction killed
while exporting leaves a half-written file that a continued run would keep -- and that SimpleITK
reads back without complaint, zero-filled. The segmentation is the last file nnU-Net writes for a
case (after ``.npz``/``.pkl`` with ``--save_probabilities``), so a complete segmentation means a
complete case."""
from pathlib import Path
from typing import Iterable, List

from nnunet_boundary.checks.nifti_files import is_nifti, nifti_truncation
from nnunet_boundary.errors import NnUNetBoundaryError


def remove_incomplete_predictions(output_dir: Path, case_ids: Iterable[str], file_ending: str) -> List[str]:
    """Delete the truncated NIfTI segmentations among ``case_ids`` in ``output_dir`` (with their
    ``.npz``/``.pkl``) so that they are predicted again; returns one line per removed case."""
    removed = []
    for case in case_ids:
        segmentation = Path(output_dir) / f'{case}{file_ending}'
        if not (segmentation.is_file() and is_nifti(segmentation)):
            continue
        truncation = nifti_truncation(segmentation)
        if truncation:
            for path in (segmentation, segmentation.with_name(case + '.npz'), segmentation.with_name(case + '.pkl')):
                path.unlink(missing_ok=True)
            removed.append(f"{segmentation.name}: {truncation}")
    return removed


def require_safe_output_folder(output_dir: Path, case_ids: Iterable[str], file_ending: str, overwrite: bool,
                               continue_prediction: bool) -> None:
    """Never write predictions into a dataset's ``labels*`` folder (they would replace the ground truth
    and any later evaluation against it would score perfectly), and replace existing outputs only when
    told to (``--overwrite``; ``--continue_prediction`` keeps them)."""
    output_dir = Path(output_dir).resolve()
    if output_dir.name.startswith('labels') and (output_dir.parent / 'dataset.json').is_file():
        raise NnUNetBoundaryError(
            f"-o {output_dir} is the label folder of the dataset {output_dir.parent.name}: predictions would "
            f"overwrite its ground truth. Write them to another folder.")
    existing = [c for c in case_ids if (output_dir / f'{c}{file_ending}').is_file()]
    if existing and not (overwrite or continue_prediction):
        raise NnUNetBoundaryError(
            f"-o {output_dir} already holds {len(existing)} of the outputs ({', '.join(existing[:3])}"
            f"{', ...' if len(existing) > 3 else ''}): pass --overwrite to replace them, or --continue_prediction "
            f"to keep them and predict only the missing cases")
