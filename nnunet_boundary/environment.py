"""nnU-Net's environment variables, checked up front with the exact line to fix each."""
import os
from pathlib import Path

from nnunet_boundary.errors import NnUNetBoundaryError

TRAINER_DIR = Path(__file__).resolve().parent / 'trainer_dir'


def require_nnunet_paths(*names: str) -> None:
    """Fail with the ``export`` lines to run if any of nnU-Net's folder variables is unset."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        exports = '; '.join(f'export {n}=/path/to/{n}' for n in missing)
        raise NnUNetBoundaryError(f"{', '.join(missing)} not set (nnU-Net's data folders): {exports}")


def with_trainer_dir(ext_trainer: str) -> str:
    """An ``nnUNet_extTrainer`` value with this package's trainer folder first, other entries kept."""
    entries = [p for p in ext_trainer.split(os.pathsep) if p and Path(p).resolve() != TRAINER_DIR]
    return os.pathsep.join([str(TRAINER_DIR)] + entries)


def require_trainer_dir_on_path() -> None:
    """nnU-Net finds BoundaryTrainer only through ``nnUNet_extTrainer``; say how to set it."""
    entries = [p for p in os.environ.get('nnUNet_extTrainer', '').split(os.pathsep) if p]
    if not any(Path(p).resolve() == TRAINER_DIR for p in entries):
        raise NnUNetBoundaryError(
            "nnU-Net cannot find BoundaryTrainer: nnUNet_extTrainer does not contain this package's trainer "
            "folder. Run: export nnUNet_extTrainer=$(nnunet_boundary_trainer_dir)")


def dataset_name(dataset_id: int) -> str:
    """nnU-Net's folder name of dataset ``dataset_id`` (e.g. ``Dataset913_KiTS19``), or a clear error."""
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name
    try:
        return convert_id_to_dataset_name(dataset_id)
    except RuntimeError as e:  # nnU-Net's message lists the folders it searched
        raise NnUNetBoundaryError(f"dataset {dataset_id}: {e}") from None
