"""nnU-Net's own network trained with the paper's boundary loss but without its boundary stream.

Myronenko A., Hatamizadeh A. "3D Kidneys and Kidney Tumor Semantic Segmentation using
Boundary-Aware Networks", KiTS19 challenge, arXiv:1909.06684 (2019), supervise region edges (§3.3: edge
Dice + beta-weighted BCE) through a separate, attention-gated boundary stream (§3.2). This network keeps the
loss and drops the stream: every decoder stage of dynamic-network-architectures' ``PlainConvUNet`` gets, next
to its own segmentation head, a 1x1x1 edge head on the same features, so the edge loss can only act through
the features the regions are predicted from. It is the ablation that separates the two: against
:class:`~nnunet_boundary.network.plain_conv_boundary_unet.PlainConvUNetWithBoundaryStream` it measures what
the stream adds, against ``PlainConvUNet`` what the edge loss alone does.

The region logits are ``PlainConvUNet``'s, computed by its own modules (the same parameters under
``decoder.seg_layers.<s>.region``); output contract, deep-supervision switch and oneDNN convolutions on the
CPU are :class:`~nnunet_boundary.network.boundary_aware_unet.BoundaryAwareUNet`'s. At inference the
full-resolution edge head still runs and its output is dropped: ``C x num_classes`` multiply-adds a voxel (64 at
nnU-Net's 32 full-resolution features and two regions), against ``27 x 32 x 32`` for each of the two 3x3x3
convolutions of the same stage, so well under 1 % of a forward pass -- not worth a second code path.
"""
from typing import Tuple, Union

import torch
from torch import nn

from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareOutput
from nnunet_boundary.network.onednn_convolution import OneDNNPlainConvUNet


class RegionAndEdgeHead(nn.Module):
    """A decoder stage's segmentation head (``region``, d-n-a's) and an edge head (``edge``) on the same
    features; returns both logits, so d-n-a's decoder passes them on at every deep-supervision scale."""

    def __init__(self, region: nn.Module, edge: nn.Module):
        super().__init__()
        self.region, self.edge = region, edge

    def forward(self, features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.region(features), self.edge(features)


class PlainConvUNetWithEdgeHeads(OneDNNPlainConvUNet):
    """``PlainConvUNet`` (its constructor kwargs, as nnU-Net's plans give them) with one edge head per decoder
    stage; see the module docstring.

    Args:
        As :class:`~nnunet_boundary.network.onednn_convolution.OneDNNPlainConvUNet` (d-n-a's ``PlainConvUNet``);
        ``num_classes`` is the number of nested regions, one region and one edge channel each.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        conv_op, num_classes = self.encoder.conv_op, self.decoder.num_classes
        self.decoder.seg_layers = nn.ModuleList(
            RegionAndEdgeHead(head, conv_op(head.in_channels, num_classes, 1, 1, 0, bias=True))
            for head in self.decoder.seg_layers)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, BoundaryAwareOutput]:
        outputs = self.decoder(self.encoder(x))  # (region, edge) per scale, full resolution first, or one pair
        if not self.decoder.deep_supervision:
            return outputs[0]
        regions, edges = zip(*outputs)
        return BoundaryAwareOutput(list(regions), list(edges))
