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
