"""Which nnU-Net configuration a trainer runs, and where nnU-Net keeps its models."""
import os
from pathlib import Path

from nnunet_boundary.environment import with_trainer_dir
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.planning.templates import BASELINE_CONFIGURATION, PLANS_NAME
from nnunet_boundary.training.boundary_trainer import BoundaryTrainer
from nnunet_boundary.training.variants import OnNnUNetNetwork


def find_trainer_class(name: str) -> type:
    """The trainer class nnUNetv2_train would use for ``-tr name`` (our trainer folder included)."""
    os.environ['nnUNet_extTrainer'] = with_trainer_dir(os.environ.get('nnUNet_extTrainer', ''))
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
    try:
        trainer = recursive_find_trainer_class_by_name(name)
    except Exception as e:  # nnU-Net raises a bare RuntimeError with its own wording
        raise NnUNetBoundaryError(f"unknown trainer '{name}': {e}") from None
    if trainer is None:
        raise NnUNetBoundaryError(f"unknown trainer '{name}' (neither nnU-Net's nor nnunet_boundary's)")
    return trainer


def configuration_for(trainer: type) -> str:
    """Trainers of the boundary-aware network run ``3d_fullres``, every other trainer the baseline
    configuration (nnU-Net's PlainConvUNet on the same preprocessed data; with the boundary stream or edge
    heads for :class:`~nnunet_boundary.training.variants.OnNnUNetNetwork`)."""
    if issubclass(trainer, BoundaryTrainer) and not issubclass(trainer, OnNnUNetNetwork):
        return '3d_fullres'
    return BASELINE_CONFIGURATION


def model_folder(results: Path, dataset_name: str, trainer_name: str, configuration: str) -> Path:
    return Path(results) / dataset_name / f'{trainer_name}__{PLANS_NAME}__{configuration}'
