"""Class paths as the plans write them resolve, the way nnU-Net resolves them, to the class itself."""
import pydoc

import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet

from nnunet_boundary.class_paths import class_path
from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareUNet
from nnunet_boundary.network.onednn_convolution import OneDNNConv3d
from nnunet_boundary.network.plain_conv_edge_heads import PlainConvUNetWithEdgeHeads


@pytest.mark.parametrize('cls', [BoundaryAwareUNet, PlainConvUNet, PlainConvUNetWithEdgeHeads, OneDNNConv3d])
def test_class_path_resolves_to_the_class(cls):
    assert pydoc.locate(class_path(cls)) is cls


def test_class_path_is_the_defining_module_not_the_alias():
    assert class_path(torch.nn.Conv3d) == 'torch.nn.modules.conv.Conv3d'
