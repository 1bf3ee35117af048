"""Variants of :class:`BoundaryTrainer` and the matching baselines, each a few lines, nnU-Net style:
a budget mixin first, then the options a variant changes, then the trainer it builds on."""
import copy
import math

import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.variants.optimizer.nnUNetTrainerAdam import nnUNetTrainerVanillaAdam
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager

from nnunet_boundary.class_paths import class_path
from nnunet_boundary.network.onednn_convolution import OneDNNPlainConvUNet
from nnunet_boundary.network.plain_conv_boundary_unet import PlainConvUNetWithBoundaryStream
from nnunet_boundary.network.plain_conv_edge_heads import PlainConvUNetWithEdgeHeads
from nnunet_boundary.planning.templates import BASELINE_CONFIGURATION
from nnunet_boundary.training.boundary_trainer import BoundaryTrainer, require_network
from nnunet_boundary.training.cpu_mixed_precision import CpuMixedPrecision
from nnunet_boundary.training.tumor_weighted_sampler import TumorWeightedSampling

PLAIN_CONV_UNET = class_path(PlainConvUNet)


class PaperCrops:
    """Trainer mixin: the paper's tumor-weighted crops (0.8 / 0.1 / 0.1, §3.4), ``BoundaryTrainer``'s default
    until ``benchmarks/kits19_phantom_4mm`` chose nnU-Net's crops on validation; the paper's recipe keeps
    them, and so do the benchmark rows trained with them, so that their committed numbers stay reproducible."""

    tumor_weighted_sampling = True


class SupervisionFixes:
    """Trainer mixin: the boundary supervision's fixes 1 and 2 together (the README's trainer options): crops
    without edges still teach "no edge here" (beta capped at 0.99) and coarse-scale edge targets are pooled
    from the full-resolution edges; boundary deep supervision stays as it is."""

    min_edge_fraction = 0.01
    edges_from_full_resolution = True


class OnNnUNetNetwork:
    """Trainer mixin: ``network_class``, a subclass of nnU-Net's ``PlainConvUNet``, built by nnU-Net from the
    plans configuration's own ``PlainConvUNet`` kwargs (``3d_fullres_baseline`` of nnunet_boundary's plans, or
    ``3d_fullres`` of nnU-Net's own) instead of the paper's SegResNet-style network; everything else is the
    trainer's. A configuration with another network is refused."""

    network_class: type  #: set by each subclass

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> torch.nn.Module:
        require_network(plans_manager, configuration_manager, PLAIN_CONV_UNET, cls.__name__,
                        f"train configuration {BASELINE_CONFIGURATION} of nnUNetBoundaryPlans (or 3d_fullres of "
                        f"nnUNetPlans).")
        return nnUNetTrainer.build_network_architecture(
            plans_manager, with_arch_kwargs(configuration_manager, network_class_name=class_path(cls.network_class)),
            num_input_channels, num_output_channels, enable_deep_supervision)


class NnUNetNetworkWithBoundaryStream(OnNnUNetNetwork):
    """Trainer mixin: the boundary stream and its loss on nnU-Net's own network
    (:class:`~nnunet_boundary.network.plain_conv_boundary_unet.PlainConvUNetWithBoundaryStream`)."""

    network_class = PlainConvUNetWithBoundaryStream


class NnUNetNetworkWithEdgeHeads(OnNnUNetNetwork):
    """Trainer mixin: the boundary loss without the boundary stream, on nnU-Net's own network
    (:class:`~nnunet_boundary.network.plain_conv_edge_heads.PlainConvUNetWithEdgeHeads`: an edge head beside
    each segmentation head)."""

    network_class = PlainConvUNetWithEdgeHeads


class BoundaryTrainer_nnUNetNetwork(NnUNetNetworkWithBoundaryStream, BoundaryTrainer):
    """``BoundaryTrainer`` on nnU-Net's network: ``nnUNetv2_train D 3d_fullres_baseline F -tr
    BoundaryTrainer_nnUNetNetwork -p nnUNetBoundaryPlans``."""


class BoundaryTrainer_nnUNetNetwork_noStream(NnUNetNetworkWithEdgeHeads, BoundaryTrainer):
    """The boundary loss on nnU-Net's network without the boundary stream (the ablation that separates the
    loss from the stream): ``nnUNetv2_train D 3d_fullres_baseline F -tr BoundaryTrainer_nnUNetNetwork_noStream
    -p nnUNetBoundaryPlans``."""


class BoundaryTrainer_Paper(PaperCrops, BoundaryTrainer, nnUNetTrainerVanillaAdam):
    """The paper's recipe (§3.4): Adam (nnU-Net's ``nnUNetTrainerVanillaAdam``), lr 5e-5 with poly
    decay (power 0.9, nnU-Net's PolyLRScheduler), 300 epochs of one pass over the training cases
    each, Dice-only loss on the region outputs, boundary stream supervised at full resolution only.
    Remaining deviations are listed in the README."""

    boundary_deep_supervision = False
    #: True: when epochs become passes, keep the total number of steps (a fixed benchmark budget) instead of the epochs
    keep_total_steps = False

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = 5e-5
        self.num_epochs = 300

    def _build_region_loss(self):
        """nnU-Net's region loss (and its deep-supervision weights, DDP-safe) with the BCE term off."""
        loss = super()._build_region_loss()
        loss.loss.weight_ce = 0
        return loss

    def initialize(self):
        """Epochs become passes before nnU-Net builds the optimizer and the poly schedule from them."""
        self.epochs_as_passes(len(self.do_split()[0]))
        super().initialize()

    def epochs_as_passes(self, n_training_cases: int) -> None:
        """An epoch is one pass over the training cases (nnU-Net's is a fixed 250 iterations); with
        ``keep_total_steps`` the number of epochs changes so that the total number of steps stays."""
        steps = self.num_epochs * self.num_iterations_per_epoch
        self.num_iterations_per_epoch = iterations_per_pass(n_training_cases, self.configuration_manager.batch_size)
        if self.keep_total_steps:
            self.num_epochs = max(1, round(steps / self.num_iterations_per_epoch))


def iterations_per_pass(n_cases: int, batch_size: int) -> int:
    return max(1, math.ceil(n_cases / batch_size))


class TrainingBudget:
    """Mixin (first in the bases): an explicit budget of ``budget_epochs * budget_iterations_per_epoch``
    training steps, identical for every trainer that uses it. Subclasses set the class attributes."""

    budget_epochs = 10
    budget_iterations_per_epoch = 15
    budget_val_iterations_per_epoch = 2

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.budget_epochs
        self.num_iterations_per_epoch = self.budget_iterations_per_epoch
        self.num_val_iterations_per_epoch = self.budget_val_iterations_per_epoch
        self.save_every = 1


class SmokeBudget(TrainingBudget):
    """CPU demos and tests: 10 epochs of 15 iterations, 2 validation iterations, checkpoint every epoch."""


class CpuBudget(TrainingBudget):
    """The CPU-scale benchmark budget (``benchmarks/kits19_phantom_cpu``): 30 epochs of 20 iterations
    (600 steps at the plans' patch and batch), 1 validation iteration per epoch, nnU-Net's default
    augmentation.

    nnU-Net's end-of-training validation of the fold's held-out cases runs without mirroring
    (8x cheaper on CPU); the checkpoints keep the mirroring axes, so ``nnUNetv2_predict`` still
    applies mirroring TTA unless told ``--disable_tta``."""

    budget_epochs = 30
    budget_iterations_per_epoch = 20
    budget_val_iterations_per_epoch = 1

    def perform_actual_validation(self, save_probabilities: bool = False):
        mirror_axes, self.inference_allowed_mirroring_axes = self.inference_allowed_mirroring_axes, None
        try:
            super().perform_actual_validation(save_probabilities)
        finally:
            self.inference_allowed_mirroring_axes = mirror_axes


class Budget4mm(CpuBudget):
    """The budget of ``benchmarks/kits19_phantom_4mm`` (4 mm, patch 32^3, batch 2): 30 epochs of 50
    iterations = 1,500 steps, 2 validation iterations per epoch; final validation as :class:`CpuBudget`."""

    budget_iterations_per_epoch = 50
    budget_val_iterations_per_epoch = 2


class Budget4mm3000(Budget4mm):
    """:class:`Budget4mm` twice as long (60 epochs of 50 iterations = 3,000 steps): with the 48^3 patch
    (template ``kits19_4mm_48``) the first set-up of ``benchmarks/kits19_phantom_4mm`` where the baseline
    learns tumors (held-out tumor Dice 0.385); every row has a ``_3000steps`` variant."""

    budget_epochs = 60


class BoundaryTrainer_smoke(SmokeBudget, BoundaryTrainer):
    pass


class BaselineTrainer_smoke(SmokeBudget, nnUNetTrainer):
    pass


class BoundaryTrainer_nnUNetNetwork_smoke(SmokeBudget, BoundaryTrainer_nnUNetNetwork):
    pass


class BoundaryTrainer_cpuBfloat16(CpuMixedPrecision, BoundaryTrainer):
    """``BoundaryTrainer`` trained in bfloat16 mixed precision when it runs on the CPU (on CUDA: nnU-Net's AMP)."""


class BaselineTrainer_cpuBfloat16(CpuMixedPrecision, nnUNetTrainer):
    """nnU-Net's own trainer, trained in bfloat16 mixed precision when it runs on the CPU."""


class BoundaryTrainer_cpu(CpuBudget, PaperCrops, BoundaryTrainer):
    pass


class BaselineTrainer_cpu(CpuBudget, nnUNetTrainer):
    pass


# --- benchmarks/kits19_phantom_4mm: the ablation rows, one equal budget -------------------------------
# "_run2" / "_run3" classes are identical to their namesakes: a second / third independent training run
# (own folder).

class OneDNNConvolutions(OnNnUNetNetwork):
    """Trainer mixin: nnU-Net's own network with its 3D convolutions run by
    :class:`~nnunet_boundary.network.onednn_convolution.OneDNNConv3d`, the way every network of ours runs them
    (:class:`~nnunet_boundary.network.onednn_convolution.OneDNNPlainConvUNet`) -- numerically the same network,
    but nnU-Net's batch-1 sliding window on the CPU no longer takes PyTorch's slow kernel. The ablation
    benchmark's baselines use it, so that predicting 16 test cases costs minutes, not hours."""

    network_class = OneDNNPlainConvUNet


class BaselineTrainer_4mm(Budget4mm, OneDNNConvolutions, nnUNetTrainer):
    """nnU-Net as it is (its network, losses, crops, schedule), on oneDNN convolutions."""


class BaselineTrainer_4mm_run2(BaselineTrainer_4mm):
    pass


class BaselineTrainer_4mm_run3(BaselineTrainer_4mm):
    pass


class BaselineTrainer_4mm_bf16(CpuMixedPrecision, BaselineTrainer_4mm):
    """The baseline trained in bfloat16 mixed precision on the CPU: against ``BaselineTrainer_4mm``, what the
    precision costs before the benchmark's rows move to it (its train steps run 2.9x faster here,
    ``benchmarks/cpu_mixed_precision``)."""


class BaselineTrainer_4mm_bf16_run2(BaselineTrainer_4mm_bf16):
    pass


class BaselineTrainer_4mm_bf16_run3(BaselineTrainer_4mm_bf16):
    pass


class BaselineTumorSampler_4mm(Budget4mm, OneDNNConvolutions, TumorWeightedSampling, nnUNetTrainer):
    """nnU-Net's network and losses with the paper's tumor-weighted crops only."""


class BoundaryTrainer_4mm_architectureOnly(Budget4mm, BoundaryTrainer):
    """The boundary network with nnU-Net's crops and no boundary loss: the architecture alone."""

    boundary_loss_weight = 0.0
    tumor_weighted_sampling = False


class BoundaryTrainer_4mm(Budget4mm, PaperCrops, BoundaryTrainer):
    """BoundaryTrainer as it was when the benchmark started: the paper's tumor-weighted crops."""


class BoundaryTrainer_4mm_run2(BoundaryTrainer_4mm):
    pass


class BoundaryTrainer_4mm_nnUNetCrops(Budget4mm, BoundaryTrainer):
    """BoundaryTrainer with nnU-Net's own crop mix instead of the tumor-weighted sampler (the default since the
    benchmark chose this row on validation; pinned, so the row stays what it measured)."""

    tumor_weighted_sampling = False


class BoundaryTrainer_4mm_nnUNetCrops_run2(BoundaryTrainer_4mm_nnUNetCrops):
    pass


class BoundaryTrainer_4mm_edgeFreeCrops(Budget4mm, PaperCrops, BoundaryTrainer):
    """Fix 1 alone: crops without edges teach "no edge here" (beta capped at 0.99)."""

    min_edge_fraction = 0.01


class BoundaryTrainer_4mm_pooledEdges(Budget4mm, PaperCrops, BoundaryTrainer):
    """Fix 2 alone: coarse-scale edge targets pooled from the full-resolution edges."""

    edges_from_full_resolution = True


class BoundaryTrainer_4mm_pooledEdges_run2(BoundaryTrainer_4mm_pooledEdges):
    pass


class BoundaryTrainer_4mm_fullResBoundary(Budget4mm, PaperCrops, BoundaryTrainer):
    """Fix 3 alone: the boundary stream supervised at full resolution only (the paper)."""

    boundary_deep_supervision = False


class BoundaryTrainer_4mm_fixed(Budget4mm, PaperCrops, SupervisionFixes, BoundaryTrainer):
    """Fixes 1 and 2 together with the paper's sampler, boundary deep supervision kept."""


class BoundaryTrainer_4mm_nnUNetCrops_fixed(SupervisionFixes, BoundaryTrainer_4mm_nnUNetCrops):
    """Fixes 1 and 2 on today's default (nnU-Net's crops): against ``…_nnUNetCrops`` what the fixes do once the
    sampler is out of the way (``…_fixed`` measured them with the sampler)."""


class BoundaryTrainer_Paper_4mm(Budget4mm, BoundaryTrainer_Paper):
    """The paper's recipe at the benchmark's budget (1,500 steps, in epochs of one pass each)."""

    keep_total_steps = True


class BoundaryTrainer_4mm_equalWidths(Budget4mm, PaperCrops, BoundaryTrainer):
    """Control row: the boundary network at the baseline's widths (32-256 instead of the paper's 16-128), so that
    its comparison with the baseline is not one of network size."""

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True) -> torch.nn.Module:
        return BoundaryTrainer.build_network_architecture(
            plans_manager, with_arch_kwargs(configuration_manager, features_per_stage=[32, 64, 128, 256]),
            num_input_channels, num_output_channels, enable_deep_supervision)


class BoundaryTrainer_4mm_equalWidths_nnUNetCrops(BoundaryTrainer_4mm_equalWidths):
    """The equal-width control with nnU-Net's own crop mix: against ``…_nnUNetCrops`` the network's width
    alone, once the sampler (which costs the boundary network composite Dice at 48^3) is out of the way."""

    tumor_weighted_sampling = False


class BoundaryTrainer_4mm_equalWidths_nnUNetCrops_run2(BoundaryTrainer_4mm_equalWidths_nnUNetCrops):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork(Budget4mm, BoundaryTrainer_nnUNetNetwork):
    """The boundary stream and its loss on the baseline's own network (PlainConvUNet 32-256, nnU-Net's crops):
    against the baseline, what the stream adds to nnU-Net -- the product's claim, apart from the paper's
    SegResNet-style network, which loses to nnU-Net's at its widths and at the baseline's alike."""


class BoundaryTrainer_4mm_nnUNetNetwork_run2(BoundaryTrainer_4mm_nnUNetNetwork):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream(Budget4mm, BoundaryTrainer_nnUNetNetwork_noStream):
    """The boundary loss on the baseline's own network without the stream: against the baseline, what the loss
    alone does to nnU-Net's features; against ``…_nnUNetNetwork``, what the stream adds."""


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_run2(BoundaryTrainer_4mm_nnUNetNetwork_noStream):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_run3(BoundaryTrainer_4mm_nnUNetNetwork_noStream):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16(CpuMixedPrecision, BoundaryTrainer_4mm_nnUNetNetwork_noStream):
    """The final row trained in bfloat16 mixed precision on the CPU: against ``BaselineTrainer_4mm_bf16``, the
    headline comparison at a third of the training time; against ``…_noStream``, what the precision costs it."""


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_run2(BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_run3(BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed(SupervisionFixes, BoundaryTrainer_4mm_nnUNetNetwork_noStream):
    """Fixes 1 and 2 on the boundary loss without the stream: nnU-Net's crops leave most crops without a tumor
    edge, where eq. 2 teaches the edge heads nothing; against ``…_noStream``, what the fixes do to the one
    boundary variant that does not lose to nnU-Net."""


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed_run2(BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed):
    pass


class BaselineTrainer_4mm_3000steps(Budget4mm3000, BaselineTrainer_4mm):
    pass


class BoundaryTrainer_4mm_3000steps(Budget4mm3000, BoundaryTrainer_4mm):
    pass


class BoundaryTrainer_4mm_run2_3000steps(Budget4mm3000, BoundaryTrainer_4mm_run2):
    pass


class BoundaryTrainer_4mm_fixed_3000steps(Budget4mm3000, BoundaryTrainer_4mm_fixed):
    pass


class BoundaryTrainer_4mm_nnUNetCrops_3000steps(Budget4mm3000, BoundaryTrainer_4mm_nnUNetCrops):
    pass


class BaselineTumorSampler_4mm_3000steps(Budget4mm3000, BaselineTumorSampler_4mm):
    pass


class BoundaryTrainer_4mm_architectureOnly_3000steps(Budget4mm3000, BoundaryTrainer_4mm_architectureOnly):
    pass


class BoundaryTrainer_4mm_edgeFreeCrops_3000steps(Budget4mm3000, BoundaryTrainer_4mm_edgeFreeCrops):
    pass


class BoundaryTrainer_4mm_pooledEdges_3000steps(Budget4mm3000, BoundaryTrainer_4mm_pooledEdges):
    pass


class BoundaryTrainer_4mm_pooledEdges_run2_3000steps(Budget4mm3000, BoundaryTrainer_4mm_pooledEdges_run2):
    pass


class BoundaryTrainer_4mm_fullResBoundary_3000steps(Budget4mm3000, BoundaryTrainer_4mm_fullResBoundary):
    pass


class BoundaryTrainer_Paper_4mm_3000steps(Budget4mm3000, BoundaryTrainer_Paper_4mm):
    pass


class BaselineTrainer_4mm_run2_3000steps(Budget4mm3000, BaselineTrainer_4mm_run2):
    pass


class BaselineTrainer_4mm_run3_3000steps(Budget4mm3000, BaselineTrainer_4mm_run3):
    pass


class BoundaryTrainer_4mm_nnUNetCrops_run2_3000steps(Budget4mm3000, BoundaryTrainer_4mm_nnUNetCrops_run2):
    pass


class BaselineTrainer_4mm_bf16_3000steps(Budget4mm3000, BaselineTrainer_4mm_bf16):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_3000steps(Budget4mm3000,
                                                              BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16):
    pass


class BaselineTrainer_4mm_bf16_run2_3000steps(Budget4mm3000, BaselineTrainer_4mm_bf16_run2):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_run2_3000steps(
        Budget4mm3000, BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_run2):
    pass


class BaselineTrainer_4mm_bf16_run3_3000steps(Budget4mm3000, BaselineTrainer_4mm_bf16_run3):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_run3_3000steps(
        Budget4mm3000, BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_run3):
    pass


class BoundaryTrainer_4mm_equalWidths_3000steps(Budget4mm3000, BoundaryTrainer_4mm_equalWidths):
    pass


class BoundaryTrainer_4mm_equalWidths_nnUNetCrops_3000steps(Budget4mm3000, BoundaryTrainer_4mm_equalWidths_nnUNetCrops):
    pass


class BoundaryTrainer_4mm_nnUNetCrops_fixed_3000steps(Budget4mm3000, BoundaryTrainer_4mm_nnUNetCrops_fixed):
    pass


class BoundaryTrainer_4mm_equalWidths_nnUNetCrops_run2_3000steps(Budget4mm3000,
                                                                  BoundaryTrainer_4mm_equalWidths_nnUNetCrops_run2):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_3000steps(Budget4mm3000, BoundaryTrainer_4mm_nnUNetNetwork):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_run2_3000steps(Budget4mm3000, BoundaryTrainer_4mm_nnUNetNetwork_run2):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_3000steps(Budget4mm3000, BoundaryTrainer_4mm_nnUNetNetwork_noStream):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_run2_3000steps(Budget4mm3000,
                                                              BoundaryTrainer_4mm_nnUNetNetwork_noStream_run2):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_run3_3000steps(Budget4mm3000,
                                                              BoundaryTrainer_4mm_nnUNetNetwork_noStream_run3):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed_3000steps(Budget4mm3000,
                                                               BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed):
    pass


class BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed_run2_3000steps(
        Budget4mm3000, BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed_run2):
    pass


def with_arch_kwargs(configuration_manager: ConfigurationManager, network_class_name: str = None,
                     **changes) -> ConfigurationManager:
    """A copy of the configuration whose network kwargs carry ``changes`` and, if given, whose network class is
    ``network_class_name`` (the plans stay untouched)."""
    configuration = copy.deepcopy(configuration_manager.configuration)
    configuration['architecture']['arch_kwargs'].update(changes)
    if network_class_name is not None:
        configuration['architecture']['network_class_name'] = network_class_name
    return ConfigurationManager(configuration)
