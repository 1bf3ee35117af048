"""Attention gate of the boundary stream (Myronenko & Hatamizadeh 2019, §3.2, Fig. 1).

The gate looks at two inputs at one resolution: the main encoder's features there and the
boundary stream's current features. Each input goes through a 3x3x3 convolution to a common
width, the results are summed, passed through the network's nonlinearity (the paper's ReLU) and a
1x1x1 convolution to a single channel; its sigmoid is the attention map that multiplies the
stream's features, so that the stream keeps only what the encoder says lies near a boundary
(after the gated shape stream of Takikawa et al., Gated-SCNN, ICCV 2019).
"""
from typing import Sequence, Type, Union

import numpy as np
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd


class AttentionGate(nn.Module):
    """``nonlin(**nonlin_kwargs)`` after the sum; ``nonlin=None`` means none, as in
    dynamic-network-architectures' blocks."""

    def __init__(self, conv_op: Type[_ConvNd], encoder_channels: int, stream_channels: int,
                 kernel_size: Sequence[int], conv_bias: bool = True,
                 nonlin: Union[None, Type[nn.Module]] = nn.ReLU, nonlin_kwargs: dict = None):
        super().__init__()
        padding = [(k - 1) // 2 for k in kernel_size]
        self.encoder_conv = conv_op(encoder_channels, stream_channels, kernel_size, 1, padding, bias=conv_bias)
        self.stream_conv = conv_op(stream_channels, stream_channels, kernel_size, 1, padding, bias=conv_bias)
        self.nonlin = nn.Identity() if nonlin is None else nonlin(**(nonlin_kwargs or {}))
        self.to_map = conv_op(stream_channels, 1, 1, 1, 0, bias=True)

    def attention_map(self, encoder_features: torch.Tensor, stream: torch.Tensor) -> torch.Tensor:
        """The sigmoid attention map, shape (B, 1, *spatial)."""
        summed = self.encoder_conv(encoder_features) + self.stream_conv(stream)
        return torch.sigmoid(self.to_map(self.nonlin(summed)))

    def forward(self, encoder_features: torch.Tensor, stream: torch.Tensor) -> torch.Tensor:
        return stream * self.attention_map(encoder_features, stream)

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        """Elements per sample that backward keeps beyond the two inputs: the summed map after the
        nonlinearity, the one-channel attention map and the gated stream."""
        return np.prod([2 * self.to_map.in_channels + 1, *input_size], dtype=np.int64)
