"""What an earlier planning run left in ``nnUNet_preprocessed`` that no longer fits the raw dataset.

nnU-Net reuses ``dataset_fingerprint.json`` unless told ``--clean`` and reuses ``splits_final.json``
always; after cases were added to (or removed from) a dataset, both silently describe the old case
list, and new cases never enter any fold. The fingerprint is derived data and is recomputed; the
splits define which trained model saw which case, so a stale split file is refused with what to do.
"""
import json
from pathlib import Path
from typing import Iterable, Optional

from nnunet_boundary.errors import NnUNetBoundaryError


def stale_fingerprint(preprocessed_dir: Path, n_cases: int) -> Optional[str]:
    """Why the existing fingerprint must be recomputed, or None when it fits (or does not exist)."""
    path = Path(preprocessed_dir) / 'dataset_fingerprint.json'
    if not path.is_file():
        return None
    try:
        described = len(json.loads(path.read_text())['shapes_after_crop'])
    except (json.JSONDecodeError, KeyError, TypeError):
        return f"{path} is unreadable (half-written by an interrupted run?): recomputing it"
    if described != n_cases:
        return f"{path} describes {described} training cases, the dataset has {n_cases}: recomputing it"
    return None


def require_current_splits(preprocessed_dir: Path, case_ids: Iterable[str]) -> None:
    """Refuse a ``splits_final.json`` whose folds do not cover exactly the dataset's training cases."""
    path = Path(preprocessed_dir) / 'splits_final.json'
    if not path.is_file():
        return
    try:
        folds = json.loads(path.read_text())
        covered = {c for c in folds[0]['train'] + folds[0]['val']}
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        raise NnUNetBoundaryError(f"{path} is unreadable (half-written by an interrupted run?); delete it and run "
                                  f"again: nnU-Net then draws new 5-fold splits") from None
    cases = set(case_ids)
    if covered != cases:
        new, gone = sorted(cases - covered), sorted(covered - cases)
        raise NnUNetBoundaryError(
            f"{path} splits {len(covered)} cases but the dataset has {len(cases)} "
            f"({len(new)} not in any fold, e.g. {new[:3]}; {len(gone)} no longer in the dataset, e.g. {gone[:3]}). "
            f"Move it away (mv {path} {path}.old) so that nnU-Net draws new splits -- models trained on the old "
            f"splits then no longer match their folds -- or add the cases to its folds by hand")
