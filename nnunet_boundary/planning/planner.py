"""``BoundaryPlanner``: nnU-Net's experiment planner for the boundary-aware network.

Myronenko & Hatamizadeh (2019, §3.1 and §4) trained 16-256 filters, one residual block per level and
four at the bottom, on 176^3 patches at 1 mm on 16 GB V100s. The planner keeps that network and lets
nnU-Net choose the rest for any dataset and GPU, as nnU-Net's residual-encoder planners
(``nnUNetPlannerResEncM/L/XL``) do for theirs:

* spacing, normalisation, resampling and median shape: nnU-Net's :class:`ExperimentPlanner`, unchanged;
* strides and kernel sizes: nnU-Net's ``get_pool_and_conv_props`` for the spacing and patch
  (in-plane-only strides and 1x3x3 kernels where the spacing is anisotropic);
* widths 16 * 2^i capped at nnU-Net's 320 (3D) / 512 (2D), one residual block per level and four at
  the bottom, ReLU, nnU-Net's instance norm;
* memory: :func:`~nnunet_boundary.network.activation_memory.training_memory_bytes` (activations under
  AMP, weights, gradients, optimizer state) must fit into the budget, ``gpu_memory_target_in_gb`` GiB
  less ``memory_reserve`` (20 %) for what it does not count: the loss and its targets, the gradients
  in flight during backward, cuDNN workspaces (a whole float32 train step on the CPU peaks at about
  1.06x the estimate's float32 equivalent, ``scripts/planner_table.py``);
* patch: nnU-Net's own loop (``get_plans_for_configuration``) shrinks the patch, starting from 256^3
  voxels in the spacing's aspect ratio clipped to the median shape, until two samples fit;
* batch: as many samples as fit at that patch (at least two, and at most nnU-Net's 5 % of the
  dataset's voxels per step). nnU-Net *rounds* budget / estimate x 2, which can exceed the budget by
  half a sample; the planner floors.

The plans hold ``3d_fullres`` (the boundary network) and ``3d_fullres_baseline``: nnU-Net's default
PlainConvUNet (widths 32-320, two convolutions per stage) on the same strides, inheriting data, patch
and batch, so that the baseline trains on exactly the boundary network's data.
"""
from pathlib import Path
from typing import List, Tuple, Union

import numpy as np
import torch
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.json_export import recursive_fix_for_json_export

from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.class_paths import class_path
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.network.activation_memory import training_memory_bytes
from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareUNet
from nnunet_boundary.planning.templates import BASELINE_CONFIGURATION, PLANS_NAME

GIB = 2 ** 30


def build_network(architecture: dict, input_channels: int, num_classes: int) -> torch.nn.Module:
    """The plans' network on the meta device (no memory, no initialisation), for counting."""
    with torch.device('meta'):
        return get_network_from_plans(architecture['network_class_name'], architecture['arch_kwargs'],
                                      architecture['_kw_requires_import'], input_channels, num_classes,
                                      allow_init=False, deep_supervision=True)


def network_channels(dataset_json: dict) -> Tuple[int, int]:
    """Input channels and outputs of the network for a dataset: one output per region for
    region-based training, else one per label (background included), as nnU-Net's label manager."""
    outputs = dataset_json.get('regions_class_order') or dataset_json['labels']
    return len(dataset_json['channel_names']), len(outputs)


def configuration_memory_bytes(configuration: dict, dataset_json: dict) -> int:
    """Estimated training memory of a plans configuration (its network, patch and batch)."""
    network = build_network(configuration['architecture'], *network_channels(dataset_json))
    return training_memory_bytes(network, configuration['patch_size'], configuration['batch_size'])


def describe_configuration(configuration: dict, dataset_json: dict, gpu_memory_target_in_gb: float) -> str:
    """One line: spacing, patch, batch, strides, widths and the estimated training memory against the target."""
    kwargs = configuration['architecture']['arch_kwargs']
    memory = configuration_memory_bytes(configuration, dataset_json) / GIB
    return (f"spacing {[round(float(s), 3) for s in configuration['spacing']]} mm, patch "
            f"{list(configuration['patch_size'])}, batch {configuration['batch_size']}, strides "
            f"{kwargs['strides'][1:]}, widths {kwargs['features_per_stage']}, estimated training memory "
            f"{memory:.1f} GiB ({100 * memory / gpu_memory_target_in_gb:.0f} % of {gpu_memory_target_in_gb:g} GiB)")


class BoundaryPlanner(ExperimentPlanner):
    """See the module docstring. The inherited ``UNet_*`` attributes that shape the architecture stay
    nnU-Net's: they describe the PlainConvUNet that nnU-Net's loop builds and that becomes the baseline;
    the boundary network's are ``boundary_*``."""

    #: §3.1: 16 filters at full resolution, doubling per level (capped at nnU-Net's maximum widths)
    boundary_base_features = 16
    #: §3.1: one residual block per level, four at the bottom
    boundary_blocks_per_level = 1
    boundary_blocks_at_bottom = 4
    #: share of the GPU memory target kept free for what the estimate does not count
    memory_reserve = 0.2

    def __init__(self, dataset_name_or_id: Union[str, int], gpu_memory_target_in_gb: float = 8,
                 preprocessor_name: str = 'DefaultPreprocessor', plans_name: str = PLANS_NAME,
                 overwrite_target_spacing: Union[List[float], Tuple[float, ...]] = None,
                 suppress_transpose: bool = False):
        super().__init__(dataset_name_or_id, gpu_memory_target_in_gb, preprocessor_name, plans_name,
                         overwrite_target_spacing, suppress_transpose)
        # nnU-Net's loop compares the estimate (bytes at the smallest batch) with reference_val * target / corresp_GB
        self.UNet_reference_val_3d = self.UNet_reference_val_2d = (1 - self.memory_reserve) * GIB
        self.UNet_reference_val_corresp_GB = 1
        self.UNet_reference_val_corresp_bs_3d = self.UNet_reference_val_corresp_bs_2d = self.UNet_min_batch_size
        self.lowres_creation_threshold = 0  # 3d_fullres only: no cascade for the boundary network
        self.baseline_architectures = {}  # data identifier -> nnU-Net's PlainConvUNet planned for it

    @property
    def memory_budget_bytes(self) -> float:
        return self.UNet_vram_target_GB * GIB * (1 - self.memory_reserve)

    def boundary_architecture(self, nnunet_architecture: dict) -> dict:
        """The boundary network on the stages, strides, kernel sizes and norm nnU-Net planned."""
        kwargs = nnunet_architecture['arch_kwargs']
        n_stages = kwargs['n_stages']
        cap = self.UNet_max_features_2d if len(kwargs['strides'][0]) == 2 else self.UNet_max_features_3d
        return {
            'network_class_name': class_path(BoundaryAwareUNet),
            'arch_kwargs': {
                'n_stages': n_stages,
                'features_per_stage': [min(self.boundary_base_features * 2 ** i, cap) for i in range(n_stages)],
                'conv_op': kwargs['conv_op'],
                'kernel_sizes': [list(k) for k in kwargs['kernel_sizes']],
                'strides': [list(s) for s in kwargs['strides']],
                'n_blocks_per_stage': [self.boundary_blocks_per_level] * (n_stages - 1) +
                                      [self.boundary_blocks_at_bottom],
                'conv_bias': True,
                'norm_op': kwargs['norm_op'],
                'norm_op_kwargs': kwargs['norm_op_kwargs'],
                'nonlin': 'torch.nn.ReLU',
                'nonlin_kwargs': {'inplace': True},
            },
            '_kw_requires_import': ['conv_op', 'norm_op', 'nonlin'],
        }

    def static_estimate_VRAM_usage(self, patch_size, input_channels, output_channels, arch_class_name, arch_kwargs,
                                   arch_kwargs_req_import) -> int:
        """nnU-Net's loop hook (there a static method building the planned network): training memory in
        bytes of the boundary network on the topology nnU-Net's loop passes, at the smallest batch (with
        one output per region where nnU-Net's loop counts labels)."""
        architecture = self.boundary_architecture({'arch_kwargs': arch_kwargs})
        network = build_network(architecture, *network_channels(self.dataset_json))
        return training_memory_bytes(network, patch_size, self.UNet_min_batch_size)

    def batch_size(self, configuration: dict, approximate_n_voxels_dataset: float) -> int:
        """The most samples that fit into the target at the configuration's patch, within nnU-Net's bounds."""
        network = build_network(configuration['architecture'], *network_channels(self.dataset_json))
        fixed = training_memory_bytes(network, configuration['patch_size'], 0)
        per_sample = training_memory_bytes(network, configuration['patch_size'], 1) - fixed
        fits = int((self.memory_budget_bytes - fixed) // per_sample)
        dataset_share = round(approximate_n_voxels_dataset * self.max_dataset_covered /
                              np.prod(configuration['patch_size'], dtype=np.float64))
        return max(min(fits, dataset_share), self.UNet_min_batch_size)

    def get_plans_for_configuration(self, spacing, median_shape, data_identifier: str,
                                    approximate_n_voxels_dataset: float, _cache: dict) -> dict:
        """nnU-Net's configuration (spacing, normalisation, resampling, topology, patch), then the boundary
        network in place of its PlainConvUNet and the batch that fits."""
        plan = super().get_plans_for_configuration(spacing, median_shape, data_identifier,
                                                   approximate_n_voxels_dataset, _cache)
        self.baseline_architectures[data_identifier] = plan['architecture']
        plan['architecture'] = self.boundary_architecture(plan['architecture'])
        plan['batch_size'] = self.batch_size(plan, approximate_n_voxels_dataset)
        return plan

    def save_plans(self, plans: dict) -> None:
        """Keep ``3d_fullres``, add ``3d_fullres_baseline`` and write the file whole (nnU-Net's own
        ``save_plans`` would keep other configurations of an earlier file of the same name)."""
        if '3d_fullres' not in plans['configurations']:
            raise NnUNetBoundaryError(f"{self.dataset_name}: nnU-Net planned no 3d_fullres configuration (a 2D "
                                      f"dataset?); the boundary-aware network is planned for 3D images only")
        fullres = plans['configurations']['3d_fullres']
        plans['configurations'] = {
            '3d_fullres': fullres,
            BASELINE_CONFIGURATION: {'inherits_from': '3d_fullres',
                                     'architecture': self.baseline_architectures[fullres['data_identifier']]},
        }
        recursive_fix_for_json_export(plans)
        write_json_atomically(plans, Path(nnUNet_preprocessed) / self.dataset_name / f'{self.plans_identifier}.json',
                              indent=4)
