"""nnU-Net v2 trainer for the boundary-aware network (Myronenko & Hatamizadeh 2019).

Everything not listed here is nnU-Net's own: planning and preprocessing, augmentation,
cross-validation splits, checkpointing and ``--c`` resume, validation, sliding-window
prediction with mirroring, ensembling, DDP.

* ``build_network_architecture`` -- the plans' network class, which must be
  :class:`~nnunet_boundary.network.boundary_aware_unet.BoundaryAwareUNet` (§3.1-3.2);
* ``_build_loss`` -- nnU-Net's region loss with deep supervision plus the boundary loss on the
  edges of the same targets, weighted by ``boundary_loss_weight`` (§3.3);
* ``get_dataloaders`` -- the training loader crops centred on tumor / foreground / anywhere
  with probabilities ``p_tumor`` / ``p_foreground`` / rest (§3.4);
* ``save_checkpoint`` -- nnU-Net's checkpoint, written under a temporary name and renamed, so a
  run killed while saving keeps its previous checkpoint for ``--c``;
* opt-in seeding through ``NNUNET_BOUNDARY_SEED`` (:mod:`~nnunet_boundary.training.seeding`).
"""
import os

import torch
import torch.distributed as dist
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.losses.boundary_aware_loss import BoundaryAwareLoss
from nnunet_boundary.losses.boundary_loss import BoundaryLoss
from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareUNet
from nnunet_boundary.regions import kidney_tumor_regions
from nnunet_boundary.training.seeding import SEED_VARIABLE, seed_from_environment
from nnunet_boundary.training.tumor_weighted_sampler import TumorWeightedDataLoader

BOUNDARY_NETWORK = f'{BoundaryAwareUNet.__module__}.{BoundaryAwareUNet.__name__}'


class BoundaryTrainer(nnUNetTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        self.foreground_region, self.tumor_region = kidney_tumor_regions(dataset_json)
        seed = seed_from_environment(dist.get_rank() if dist.is_available() and dist.is_initialized() else 0)
        super().__init__(plans, configuration, fold, dataset_json, device)
        if seed is not None:
            self.print_to_log_file(f"{SEED_VARIABLE}={seed}: seeded random, numpy and torch")
        self.boundary_loss_weight = 1.0
        self.p_tumor = 0.8
        self.p_foreground = 0.1

    @staticmethod
    def build_network_architecture(plans_manager: PlansManager,
                                   configuration_manager: ConfigurationManager,
                                   num_input_channels: int,
                                   num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> torch.nn.Module:
        if configuration_manager.network_arch_class_name != BOUNDARY_NETWORK:
            raise NnUNetBoundaryError(
                f"BoundaryTrainer needs plans whose network is {BOUNDARY_NETWORK}, but plans "
                f"'{plans_manager.plans_name}' use {configuration_manager.network_arch_class_name}. "
                f"Create them with `nnunet_boundary_plan_and_preprocess -d ID` and train with "
                f"`-p nnUNetBoundaryPlans` (configuration 3d_fullres).")
        return nnUNetTrainer.build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                        num_output_channels, enable_deep_supervision)

    def _set_batch_size_and_oversample(self):
        """nnU-Net's split of the plans' (global) batch over DDP ranks, refusing uneven shares: the batch-dice
        terms are reduced across ranks, but the BCE terms are per-rank means, which average to the
        single-GPU loss only when every rank holds the same number of samples."""
        if self.is_ddp:
            world_size, batch_size = dist.get_world_size(), self.configuration_manager.batch_size
            if batch_size % world_size:
                raise NnUNetBoundaryError(
                    f"batch_size {batch_size} of configuration '{self.configuration_name}' is the global batch, split "
                    f"over {world_size} GPUs (-num_gpus {world_size}); it must be a multiple of {world_size}. Set "
                    f"\"batch_size\" to {world_size * max(1, round(batch_size / world_size))} (or another multiple "
                    f"of {world_size}) in the plans template and plan again, or in that configuration of "
                    f"{self.plans_manager.plans_name}.json in nnUNet_preprocessed.")
        super()._set_batch_size_and_oversample()

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net writes checkpoints in place; a kill during ``torch.save`` would leave a truncated
        ``checkpoint_latest.pth`` on which ``--c`` fails. Write to ``<filename>.partial`` and rename."""
        partial = f'{filename}.partial'
        super().save_checkpoint(partial)
        if self.local_rank == 0 and not self.disable_checkpointing:  # the only case in which nnU-Net writes
            os.replace(partial, filename)

    def _build_region_loss(self) -> DeepSupervisionWrapper:
        """Loss of the main (region) outputs: nnU-Net's Dice + BCE with deep supervision."""
        return super()._build_loss()

    def _build_loss(self) -> BoundaryAwareLoss:
        if not self.enable_deep_supervision:
            raise NnUNetBoundaryError("BoundaryTrainer needs deep supervision: the boundary stream is supervised "
                                      "through the network's deep-supervision output.")
        region_loss = self._build_region_loss()
        boundary_loss = DeepSupervisionWrapper(
            BoundaryLoss(batch_dice=self.configuration_manager.batch_dice, ddp=self.is_ddp),
            region_loss.weight_factors)
        return BoundaryAwareLoss(region_loss, boundary_loss, self.boundary_loss_weight)

    def get_dataloaders(self):
        """nnU-Net's loaders and augmentation; the training loader is tumor-weighted."""
        deep_supervision_scales = self._get_deep_supervision_scales()
        rotation, dummy_2d, initial_patch_size, mirror_axes = \
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        regions = self.label_manager.foreground_regions
        patch_size = self.configuration_manager.patch_size
        tr_transforms = self.get_training_transforms(
            patch_size, rotation, deep_supervision_scales, mirror_axes, dummy_2d,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm, is_cascaded=self.is_cascaded,
            foreground_labels=self.label_manager.foreground_labels, regions=regions,
            ignore_label=self.label_manager.ignore_label)
        val_transforms = self.get_validation_transforms(
            deep_supervision_scales, is_cascaded=self.is_cascaded,
            foreground_labels=self.label_manager.foreground_labels, regions=regions,
            ignore_label=self.label_manager.ignore_label)
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        dl_tr = TumorWeightedDataLoader(dataset_tr, self.batch_size, initial_patch_size, patch_size,
                                        self.label_manager, transforms=tr_transforms,
                                        tumor_region=self.tumor_region, foreground_region=self.foreground_region,
                                        p_tumor=self.p_tumor, p_foreground=self.p_foreground)
        dl_val = nnUNetDataLoader(dataset_val, self.batch_size, patch_size, patch_size, self.label_manager,
                                  oversample_foreground_percent=self.oversample_foreground_percent,
                                  transforms=val_transforms)
        n_proc = get_allowed_n_proc_DA()
        if n_proc == 0:
            return SingleThreadedAugmenter(dl_tr, None), SingleThreadedAugmenter(dl_val, None)
        pin = self.device.type == 'cuda'
        return (NonDetMultiThreadedAugmenter(dl_tr, None, n_proc, max(6, n_proc // 2), None, pin, 0.002),
                NonDetMultiThreadedAugmenter(dl_val, None, max(1, n_proc // 2), max(3, n_proc // 4), None, pin,
                                             0.002))
