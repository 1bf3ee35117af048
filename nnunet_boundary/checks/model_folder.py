"""Before prediction: the trained model folder, its folds' checkpoints, and our trainers' lookup path."""
import importlib
from pathlib import Path
from typing import Sequence, Union

from nnunet_boundary.environment import require_trainer_dir_on_path
from nnunet_boundary.errors import NnUNetBoundaryError

TRAINERS_MODULE = 'nnunet_boundary.trainer_dir.nnunet_boundary_trainers'
Fold = Union[int, str]


def is_our_trainer(trainer_name: str) -> bool:
    """Whether nnU-Net finds ``trainer_name`` only through ``nnUNet_extTrainer`` (our trainer folder)."""
    return hasattr(importlib.import_module(TRAINERS_MODULE), trainer_name)


def require_trainer_lookup(trainer_name: str) -> None:
    """Our trainers need ``nnUNet_extTrainer``; nnU-Net's own need nothing."""
    if is_our_trainer(trainer_name):
        require_trainer_dir_on_path()


def require_fold_checkpoints(model_dir: Path, folds: Sequence[Fold], checkpoint_name: str) -> None:
    """Every requested ``fold_X/<checkpoint_name>`` must exist; otherwise say which are missing, which
    exist, and what to do."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        siblings = sorted(p.name for p in model_dir.parent.iterdir() if p.is_dir()) if model_dir.parent.is_dir() else []
        raise NnUNetBoundaryError(
            f"no trained model at {model_dir} (TRAINER__PLANS__CONFIGURATION from -tr, -p, -c); "
            + (f"{model_dir.parent} holds {siblings}" if siblings else f"{model_dir.parent} does not exist"))
    missing = [f for f in folds if not (model_dir / f'fold_{f}' / checkpoint_name).is_file()]
    if not missing:
        return
    complete = sorted(p.parent.name[len('fold_'):] for p in model_dir.glob(f'fold_*/{checkpoint_name}'))
    unfinished = [f for f in missing if (model_dir / f'fold_{f}' / 'checkpoint_latest.pth').is_file()]
    hint = (f" Fold(s) {unfinished} have only checkpoint_latest.pth: their training was interrupted; finish it "
            f"with nnUNetv2_train ... FOLD --c, or predict from it with -chk checkpoint_latest.pth." if unfinished else '')
    raise NnUNetBoundaryError(
        f"{model_dir}: fold(s) {missing} have no {checkpoint_name}; folds with it: {complete or 'none'}. "
        f"Pass -f with those folds, or train the missing ones.{hint}")
