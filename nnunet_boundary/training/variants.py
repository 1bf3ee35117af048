"""Variants of :class:`BoundaryTrainer` and the matching baseline, each a few lines, nnU-Net style."""
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.variants.optimizer.nnUNetTrainerAdam import nnUNetTrainerVanillaAdam

from nnunet_boundary.training.boundary_trainer import BoundaryTrainer


class BoundaryTrainer_Paper(BoundaryTrainer):
    """The paper's recipe (§3.4): Adam, lr 5e-5 with poly decay (power 0.9, nnU-Net's
    PolyLRScheduler), 300 epochs, Dice-only loss on the region outputs."""

    configure_optimizers = nnUNetTrainerVanillaAdam.configure_optimizers

    def _build_region_loss(self):
        """nnU-Net's region loss (and its deep-supervision weights, DDP-safe) with the BCE term off."""
        loss = super()._build_region_loss()
        loss.loss.weight_ce = 0
        return loss

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = 5e-5
        self.num_epochs = 300


class SmokeBudget:
    """A short, explicit training budget shared by the boundary trainer and the baseline, for
    CPU demos and tests: 10 epochs of 15 iterations, 2 validation iterations, checkpoint every epoch."""

    def _set_smoke_budget(self):
        self.num_epochs = 10
        self.num_iterations_per_epoch = 15
        self.num_val_iterations_per_epoch = 2
        self.save_every = 1


class BoundaryTrainer_smoke(SmokeBudget, BoundaryTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self._set_smoke_budget()


class BaselineTrainer_smoke(SmokeBudget, nnUNetTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self._set_smoke_budget()


class CpuBudget:
    """The CPU-scale benchmark budget (``benchmarks/kits19_phantom_cpu``), shared by the boundary
    trainer and the baseline: 30 epochs of 20 iterations (600 steps at the plans' patch and batch),
    1 validation iteration per epoch, checkpoint every epoch, nnU-Net's default augmentation.

    nnU-Net's end-of-training validation of the fold's held-out cases runs without mirroring
    (8x cheaper on CPU); the checkpoints keep the mirroring axes, so ``nnUNetv2_predict`` still
    applies mirroring TTA unless told ``--disable_tta``."""

    def _set_cpu_budget(self):
        self.num_epochs = 30
        self.num_iterations_per_epoch = 20
        self.num_val_iterations_per_epoch = 1
        self.save_every = 1

    def perform_actual_validation(self, save_probabilities: bool = False):
        mirror_axes, self.inference_allowed_mirroring_axes = self.inference_allowed_mirroring_axes, None
        try:
            super().perform_actual_validation(save_probabilities)
        finally:
            self.inference_allowed_mirroring_axes = mirror_axes


class BoundaryTrainer_cpu(CpuBudget, BoundaryTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self._set_cpu_budget()


class BaselineTrainer_cpu(CpuBudget, nnUNetTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self._set_cpu_budget()
