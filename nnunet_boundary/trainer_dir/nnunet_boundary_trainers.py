"""Shim for nnU-Net's ``nnUNet_extTrainer`` lookup: nnU-Net scans this folder for trainer classes
by name; they live in the installed ``nnunet_boundary`` package. ``nnunet_boundary_trainer_dir``
prints this folder's path."""
from nnunet_boundary.training.boundary_trainer import BoundaryTrainer  # noqa: F401
from nnunet_boundary.training.variants import *  # noqa: F401,F403 -- every variant, found by its name
