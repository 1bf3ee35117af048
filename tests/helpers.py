"""Small builders shared by the tests."""
import torch

from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareUNet


def tiny_network(n_stages: int = 3, features=None, strides=None, dim: int = 3, deep_supervision: bool = True,
                 num_classes: int = 2) -> BoundaryAwareUNet:
    conv, norm = {2: (torch.nn.Conv2d, torch.nn.InstanceNorm2d), 3: (torch.nn.Conv3d, torch.nn.InstanceNorm3d)}[dim]
    return BoundaryAwareUNet(
        input_channels=1, num_classes=num_classes, n_stages=n_stages,
        features_per_stage=features or [4 * 2 ** i for i in range(n_stages)], conv_op=conv, kernel_sizes=3,
        strides=strides or [[1] * dim] + [[2] * dim] * (n_stages - 1),
        n_blocks_per_stage=[1] * (n_stages - 1) + [2], norm_op=norm, norm_op_kwargs={'affine': True},
        nonlin=torch.nn.ReLU, nonlin_kwargs={'inplace': True}, deep_supervision=deep_supervision)


CASES = [f'case_{i:05d}' for i in range(12)]


def per_case(offset: float, spread: float = 0.0) -> dict:
    """Fake held-out metrics for :data:`CASES`: tumor Dice 0.4 + ``offset`` (± ``spread`` by case), and every other
    metric ``offset`` better too (HD95 ``10 * offset`` mm lower)."""
    return {c: {'kidney_dice': 0.9, 'tumor_dice': 0.4 + offset + spread * (i % 3 - 1), 'composite_dice': 0.65 + offset,
                'tumor_nsd': 0.3 + offset, 'tumor_hd95': 20.0 - 10 * offset, 'kidney_hd95': 5.0, 'kidney_nsd': 0.8,
                'far_tumor_ml': 1.0 - offset}
            for i, c in enumerate(CASES)}


def ablation_row(runs, boundary=True, validation=(0.5,), bf16=False):
    """A row as the ablation analysis groups runs: one run per per-case dict in ``runs``."""
    return {'runs': [{'trainer': f'T{i}', 'per_case': r, 'per_case_postprocessed': None, 'validation_dice': v}
                     for i, (r, v) in enumerate(zip(runs, validation))], 'configuration': '3d_fullres',
            'boundary_supervised': boundary, 'cpu_mixed_precision': bf16}
