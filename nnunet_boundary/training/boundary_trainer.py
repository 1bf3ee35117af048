"""nnU-Net v2 trainer for the boundary-aware network (Myronenko & Hatamizadeh 2019).

It trains on nested regions (:func:`~nnunet_boundary.regions.nested_regions`): KiTS19's two
(kidney+tumor, tumor), KiTS21/23's three (kidney_and_mass, mass, tumor) or any other nesting; one region
head and one boundary head per region, the boundary loss averaged over the regions.

Everything not listed here is nnU-Net's own: planning and preprocessing, augmentation,
cross-validation splits, checkpointing and ``--c`` resume, validation, sliding-window
prediction with mirroring, ensembling, DDP.

* ``build_network_architecture`` -- the plans' network class, which must be
  :class:`~nnunet_boundary.network.boundary_aware_unet.BoundaryAwareUNet` (§3.1-3.2);
* ``_build_loss`` -- nnU-Net's region loss with deep supervision plus the boundary loss on the
  edges of the same targets, weighted by ``boundary_loss_weight`` (§3.3);
* ``get_dataloaders`` -- with ``tumor_weighted_sampling``, the paper's training crops centred on each nested
  region with its own probability, tumor (innermost) 0.8 / kidney+tumor (outermost) 0.1 / anywhere 0.1
  (§3.4; :class:`~nnunet_boundary.training.tumor_weighted_sampler.TumorWeightedSampling`); by default
  nnU-Net's own crops;
* ``save_checkpoint`` -- nnU-Net's checkpoint, written under a temporary name and renamed, so a
  run killed while saving keeps its previous checkpoint for ``--c``;
* opt-in seeding through ``NNUNET_BOUNDARY_SEED`` (:mod:`~nnunet_boundary.training.seeding`).

Options are class attributes, so that a variant is a subclass that sets them (nnU-Net style):

* ``boundary_loss_weight`` (1.0) -- weight of the boundary loss against the region loss;
* ``tumor_weighted_sampling`` (False), ``crop_centre_probabilities`` (None = 0.8 innermost region, 0.1
  outermost, 0.1 random) -- True: the paper's crop sampler, one probability per region, outermost first.
  Off by default: on ``benchmarks/kits19_phantom_4mm`` (48^3, 3,000 steps) it cost the boundary network
  0.12 of fold-0 validation Dice (0.563 against 0.684 and 0.680, two seeds without it) and put tumor in far
  tissue on the held-out cases;
* ``min_edge_fraction`` (0.0 = eq. 2 exactly) -- floor of the edge fraction in beta, so that crops
  without an edge still teach "no edge here" (:class:`~nnunet_boundary.losses.boundary_loss.BetaBalancedBCEWithLogitsLoss`);
* ``edges_from_full_resolution`` (False) -- coarse-scale edge targets pooled from the
  full-resolution edges instead of computed on nnU-Net's downsampled masks
  (:func:`~nnunet_boundary.losses.edges.edges_per_scale`);
* ``boundary_deep_supervision`` (True) -- supervise the boundary stream at every deep-supervision
  scale (our addition) or, False, at full resolution only, as the paper describes.
"""
import os
from pathlib import Path

import torch
import torch.distributed as dist
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_boundary.atomic_files import partial_path
from nnunet_boundary.class_paths import class_path
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.losses.boundary_aware_loss import BoundaryAwareLoss
from nnunet_boundary.losses.boundary_loss import BoundaryLoss
from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareUNet
from nnunet_boundary.training.seeding import SEED_VARIABLE, seed_from_environment
from nnunet_boundary.training.tumor_weighted_sampler import TumorWeightedSampling

BOUNDARY_NETWORK = class_path(BoundaryAwareUNet)


def require_network(plans_manager: PlansManager, configuration_manager: ConfigurationManager, network: str,
                    trainer: str, remedy: str) -> None:
    """Refuse, in one line that says what to do, a configuration whose network is not ``network``."""
    if configuration_manager.network_arch_class_name != network:
        raise NnUNetBoundaryError(
            f"{trainer} needs plans whose network is {network}, but plans '{plans_manager.plans_name}' use "
            f"{configuration_manager.network_arch_class_name}: {remedy}")


class BoundaryTrainer(TumorWeightedSampling, nnUNetTrainer):
    tumor_weighted_sampling = False
    boundary_loss_weight = 1.0
    min_edge_fraction = 0.0
    edges_from_full_resolution = False
    boundary_deep_supervision = True

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        seed = seed_from_environment(dist.get_rank() if dist.is_available() and dist.is_initialized() else 0)
        super().__init__(plans, configuration, fold, dataset_json, device)
        if seed is not None:
            self.print_to_log_file(f"{SEED_VARIABLE}={seed}: seeded random, numpy and torch")

    @staticmethod
    def build_network_architecture(plans_manager: PlansManager,
                                   configuration_manager: ConfigurationManager,
                                   num_input_channels: int,
                                   num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> torch.nn.Module:
        require_network(plans_manager, configuration_manager, BOUNDARY_NETWORK, 'BoundaryTrainer',
                        "create them with `nnunet_boundary_plan_and_preprocess -d ID` and train with "
                        "`-p nnUNetBoundaryPlans` (configuration 3d_fullres).")
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
        ``checkpoint_latest.pth`` on which ``--c`` fails. Write to :func:`partial_path` and rename."""
        partial = str(partial_path(Path(filename)))
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
            BoundaryLoss(batch_dice=self.configuration_manager.batch_dice, ddp=self.is_ddp,
                         min_edge_fraction=self.min_edge_fraction),
            self._boundary_scale_weights(region_loss.weight_factors))
        return BoundaryAwareLoss(region_loss, boundary_loss, self.boundary_loss_weight,
                                 edges_from_full_resolution=self.edges_from_full_resolution)

    def _boundary_scale_weights(self, region_weights) -> tuple:
        """The region loss's deep-supervision weights, or full resolution only (the paper). Under DDP every
        head must be in the loss, or DDP never completes its gradient all-reduce: there the coarse boundary
        heads keep weight 1e-6, nnU-Net's own DDP weight for its lowest head."""
        if self.boundary_deep_supervision:
            return tuple(region_weights)
        return (1.0,) + (1e-6 if self.is_ddp else 0.0,) * (len(region_weights) - 1)
