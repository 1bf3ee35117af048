"""nnU-Net's own network plus the paper's boundary stream.

Myronenko A., Hatamizadeh A. "3D Kidneys and Kidney Tumor Semantic Segmentation using
Boundary-Aware Networks", KiTS19 challenge, arXiv:1909.06684 (2019), §3.2, on the network nnU-Net
plans by default (dynamic-network-architectures' ``PlainConvUNet``) instead of the paper's SegResNet-style
main branch (:class:`~nnunet_boundary.network.boundary_aware_unet.BoundaryAwareUNet`).

This is the product's claim taken literally -- "nnU-Net plus the boundary stream": ``PlainConvUNet``'s
encoder and decoder are d-n-a's, unchanged and built from the same kwargs the plans hold for it; the
:class:`~nnunet_boundary.network.boundary_aware_unet.BoundaryStream` reads the encoder's skips as it does in
the paper's network. The paper's region head is a 1x1x1 convolution of the decoder's and the stream's
features concatenated; a 1x1x1 convolution of a concatenation is the sum of one per part, so here the
region logits are d-n-a's own segmentation head on the decoder's features plus a 1x1x1 projection of the
stream (no bias), at every deep-supervision scale. With that projection at zero the network computes
exactly ``PlainConvUNet``.

Output contract, deep-supervision switch (``decoder.deep_supervision``), He initialisation and oneDNN
convolutions on the CPU are :class:`BoundaryAwareUNet`'s.
"""
from typing import Union

import torch
from torch import nn

from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareOutput, BoundaryStream
from nnunet_boundary.network.onednn_convolution import OneDNNPlainConvUNet


class PlainConvUNetWithBoundaryStream(OneDNNPlainConvUNet):
    """``PlainConvUNet`` (its constructor kwargs, as nnU-Net's plans give them) plus the boundary stream;
    see the module docstring.

    Args:
        As :class:`~nnunet_boundary.network.onednn_convolution.OneDNNPlainConvUNet` (d-n-a's ``PlainConvUNet``);
        ``num_classes`` is the number of nested regions, one region and one boundary channel each.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.boundary_stream = BoundaryStream(self.encoder)
        features, conv_op = self.encoder.output_channels[:-1], self.encoder.conv_op
        num_classes = self.decoder.num_classes
        self.stream_region_heads = nn.ModuleList(conv_op(f, num_classes, 1, 1, 0, bias=False) for f in features)
        self.boundary_heads = nn.ModuleList(conv_op(f, num_classes, 1, 1, 0, bias=True) for f in features)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, BoundaryAwareOutput]:
        skips = self.encoder(x)
        regions = self.decoder(skips)  # d-n-a's logits: full resolution first, or the full-resolution tensor
        stream = self.boundary_stream(skips)[::-1]  # full resolution first
        if not self.decoder.deep_supervision:
            return regions + self.stream_region_heads[0](stream[0])
        return BoundaryAwareOutput([r + head(b) for r, head, b in zip(regions, self.stream_region_heads, stream)],
                                   [head(b) for head, b in zip(self.boundary_heads, stream)])
