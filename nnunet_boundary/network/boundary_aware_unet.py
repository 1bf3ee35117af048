"""Boundary-aware asymmetric residual encoder-decoder.

Myronenko A., Hatamizadeh A. "3D Kidneys and Kidney Tumor Semantic Segmentation using
Boundary-Aware Networks", KiTS19 challenge, arXiv:1909.06684 (2019).

Main branch (§3.1, after SegResNet, Myronenko, BrainLes 2018): :class:`SegResEncoder` (MONAI's name
for this topology), a 3x3x3 convolution to ``features_per_stage[0]`` filters, then per resolution
level a residual block followed by a strided convolution that halves the size and (with the plans'
widths) doubles the features; ``n_blocks_per_stage[-1]`` residual blocks at the bottom. The encoder
exposes dynamic-network-architectures' encoder interface (``output_channels``, ``strides``,
``kernel_sizes``, ``conv_op``, ``conv_bias``, norm and nonlinearity ops and kwargs), and the decoder
and the boundary stream are built from it, as d-n-a's ``UNetDecoder(encoder, ...)`` is. The
decoder goes back up one level at a time: 1x1x1 convolution to the level's width, (tri)linear
upsampling, *addition* of the encoder's features of that level, one residual block.

Boundary stream (§3.2): an attention-driven decoder next to the main one. It starts one level
above the bottom from the bottom features upsampled and concatenated with the encoder's
features of that level, through a residual block; at every level an :class:`AttentionGate` fed
by the encoder's features and the stream multiplies the stream, which is then projected and
upsampled to the next level. The decoder's output is concatenated with the stream's output and
a 1x1x1 convolution gives the region logits, one per nested region (KiTS19: kidney+tumor, tumor);
a 1x1x1 convolution of the stream alone gives the boundary (edge) logits of the same regions.

Output contract, for nnU-Net's trainer and predictor:

* deep supervision off (inference): one tensor ``(B, num_classes, *patch)`` of region logits;
* deep supervision on (training): a :class:`BoundaryAwareOutput`, which *is* the list of region
  logits nnU-Net expects (full resolution first, ``len(strides) - 1`` entries, so
  ``output[0]`` is what validation looks at) and carries the boundary logits at the same scales
  in ``.boundary``.

Both modes have identical parameters (the heads of all scales always exist), so a checkpoint
trained with deep supervision loads strictly into the inference network. The switch is
``network.decoder.deep_supervision``, the attribute nnU-Net's
``set_deep_supervision_enabled`` toggles.

CPU speed: the plans' ``nn.Conv3d`` is built as
:class:`~nnunet_boundary.network.onednn_convolution.OneDNNConv3d`, the same convolution that on the
CPU always runs oneDNN in channels-last layout. PyTorch would otherwise run ``slow_conv3d`` on every
narrow level of nnU-Net's batch-1 sliding window (6x slower prediction at a 32^3 window). Values,
parameter names and shapes do not depend on it; on CUDA it is ``nn.Conv3d``.

Training memory: :meth:`BoundaryAwareUNet.compute_conv_feature_map_size` is the interface nnU-Net's
planners call (d-n-a's networks have it too); here it counts the elements per sample of every
feature map autograd keeps for the backward pass of a training step (deep supervision on), which
:func:`~nnunet_boundary.network.activation_memory.training_memory_bytes` turns into bytes
(``tests/test_planner.py`` checks the count against the tensors a forward pass on PyTorch's meta
device saves).
"""
from typing import List, Sequence, Type, Union

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim, maybe_convert_scalar_to_list
from dynamic_network_architectures.building_blocks.residual import StackedResidualBlocks
from dynamic_network_architectures.initialization.weight_init import InitWeights_He
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_boundary.network.attention_gate import AttentionGate
from nnunet_boundary.network.onednn_convolution import onednn_conv_op

IntOrSeq = Union[int, Sequence[int]]


class BoundaryAwareOutput(list):
    """Region logits per deep-supervision scale (full resolution first) plus ``.boundary``,
    the boundary logits at the same scales."""

    def __init__(self, regions: List[torch.Tensor], boundary: List[torch.Tensor]):
        super().__init__(regions)
        self.boundary = boundary


def _per_stage(value: IntOrSeq, n_stages: int, dim: int, name: str) -> List[List[int]]:
    """Expand an int / per-axis list / per-stage list of per-axis lists to per-stage lists."""
    if isinstance(value, int):
        return [[value] * dim for _ in range(n_stages)]
    value = list(value)
    if len(value) == n_stages and all(isinstance(v, (list, tuple)) for v in value):
        return [list(v) for v in value]
    if len(value) == dim and all(isinstance(v, int) for v in value):
        return [list(value) for _ in range(n_stages)]
    raise ValueError(f"{name} must be an int, one value per axis or one per-axis list per stage "
                     f"({n_stages} stages, {dim} axes), got {value}")


def _per_level(value: Union[int, Sequence[int]], n_stages: int, name: str) -> List[int]:
    values = [value] * n_stages if isinstance(value, int) else list(value)
    if len(values) != n_stages:
        raise ValueError(f"{name} needs one entry per stage ({n_stages}), got {values}")
    return values


def _level_sizes(strides: Sequence[Sequence[int]], input_size: Sequence[int]) -> List[List[int]]:
    """Spatial size of every level for an input of ``input_size``, full resolution first."""
    sizes = [list(input_size)]
    for stride in strides[1:]:
        sizes.append([i // s for i, s in zip(sizes[-1], stride)])
    return sizes


def _maps(channels: int, size: Sequence[int]) -> np.int64:
    """Elements of one sample's feature map."""
    return np.prod([channels, *size], dtype=np.int64)


def _residual_maps(stack: StackedResidualBlocks, size: Sequence[int]) -> np.int64:
    """Elements per sample that backward keeps inside d-n-a's ``BasicBlockD`` blocks (stride 1): each
    convolution's output for its norm and each norm's output after the nonlinearity (the next
    convolution's or the block's output); the projection's output for its norm where the widths differ."""
    total = np.int64(0)
    for block in stack.blocks:
        normed = int(hasattr(block.conv1, 'norm'))
        projected = int(isinstance(block.skip, nn.Sequential))
        total += _maps((2 + 2 * normed + projected * normed) * block.output_channels, size)
    return total


def block_kwargs(encoder: nn.Module) -> dict:
    """The residual blocks' convolution, norm and nonlinearity settings, read from an encoder with d-n-a's
    interface (ours or d-n-a's ``PlainConvEncoder``), for the encoder's own blocks and the decoders'."""
    return dict(conv_bias=encoder.conv_bias, norm_op=encoder.norm_op, norm_op_kwargs=encoder.norm_op_kwargs,
                nonlin=encoder.nonlin, nonlin_kwargs=encoder.nonlin_kwargs)


class _Upsample(nn.Module):
    """1x1x1 convolution to the target width, then (tri)linear upsampling by ``scale``."""

    def __init__(self, conv_op: Type[_ConvNd], in_channels: int, out_channels: int, scale: Sequence[int]):
        super().__init__()
        self.project = conv_op(in_channels, out_channels, 1, 1, 0, bias=False)
        mode = {1: 'linear', 2: 'bilinear', 3: 'trilinear'}[convert_conv_op_to_dim(conv_op)]
        self.upsample = nn.Upsample(scale_factor=tuple(float(s) for s in scale), mode=mode, align_corners=False)

    def forward(self, x):
        return self.upsample(self.project(x))


class SegResEncoder(nn.Module):
    """Initial convolution, then per level residual block(s) and a strided convolution (§3.1).

    Keyword arguments and attributes as dynamic-network-architectures' ``ResidualEncoder``
    (``output_channels``, ``strides``, ``kernel_sizes``, ``conv_op``, ``conv_bias``, ``norm_op``,
    ``norm_op_kwargs``, ``nonlin``, ``nonlin_kwargs``); it always returns the features of every level."""

    def __init__(self, input_channels: int, n_stages: int, features_per_stage: Union[int, Sequence[int]],
                 conv_op: Type[_ConvNd], kernel_sizes: IntOrSeq, strides: IntOrSeq,
                 n_blocks_per_stage: Union[int, Sequence[int]], conv_bias: bool = True,
                 norm_op: Union[None, Type[nn.Module]] = None, norm_op_kwargs: dict = None,
                 nonlin: Union[None, Type[nn.Module]] = None, nonlin_kwargs: dict = None):
        super().__init__()
        dim = convert_conv_op_to_dim(conv_op)
        self.input_channels = input_channels
        self.output_channels = _per_level(features_per_stage, n_stages, 'features_per_stage')
        self.kernel_sizes = _per_stage(kernel_sizes, n_stages, dim, 'kernel_sizes')
        self.strides = _per_stage(strides, n_stages, dim, 'strides')
        if any(s != 1 for s in self.strides[0]):
            raise ValueError(f"strides[0] must be all ones (the initial convolution keeps full resolution), "
                             f"got {self.strides[0]}")
        self.conv_op, self.conv_bias = conv_op, conv_bias
        self.norm_op, self.norm_op_kwargs = norm_op, norm_op_kwargs
        self.nonlin, self.nonlin_kwargs = nonlin, nonlin_kwargs
        features, kernels = self.output_channels, self.kernel_sizes
        self.stem = conv_op(input_channels, features[0], kernels[0], 1, [(k - 1) // 2 for k in kernels[0]],
                            bias=conv_bias)
        self.stages = nn.ModuleList(
            StackedResidualBlocks(n, conv_op, f, f, k, 1, **block_kwargs(self))
            for n, f, k in zip(_per_level(n_blocks_per_stage, n_stages, 'n_blocks_per_stage'), features, kernels))
        self.downsamples = nn.ModuleList(
            conv_op(features[s - 1], features[s], kernels[s], self.strides[s], [(k - 1) // 2 for k in kernels[s]],
                    bias=conv_bias)
            for s in range(1, n_stages))

    def forward(self, x) -> List[torch.Tensor]:
        """Features of every level, full resolution first, bottom last."""
        x = self.stem(x)
        skips = []
        for s, stage in enumerate(self.stages):
            if s > 0:
                x = self.downsamples[s - 1](x)
            x = stage(x)
            skips.append(x)
        return skips

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        """Elements per sample that backward keeps: the input (for the stem), the stem's and every
        strided convolution's output, and the residual blocks' maps."""
        sizes = _level_sizes(self.strides, input_size)
        total = _maps(self.input_channels, sizes[0])
        for f, size, stage in zip(self.output_channels, sizes, self.stages):
            total += _maps(f, size) + _residual_maps(stage, size)
        return total


class AdditiveDecoder(nn.Module):
    """SegResNet decoder built from ``encoder``: project, upsample, add the encoder's features, one
    residual block. ``deep_supervision`` is the attribute nnU-Net toggles."""

    def __init__(self, encoder: SegResEncoder, deep_supervision: bool):
        super().__init__()
        self.deep_supervision = deep_supervision
        features, conv_op = encoder.output_channels, encoder.conv_op
        self.strides = encoder.strides
        levels = range(len(features) - 1)
        self.upsamples = nn.ModuleList(_Upsample(conv_op, features[s + 1], features[s], encoder.strides[s + 1])
                                       for s in levels)
        self.blocks = nn.ModuleList(StackedResidualBlocks(1, conv_op, features[s], features[s],
                                                          encoder.kernel_sizes[s], 1, **block_kwargs(encoder))
                                    for s in levels)

    def forward(self, skips: List[torch.Tensor]) -> List[torch.Tensor]:
        """Decoder features of levels ``len(skips) - 2`` .. 0 (coarse to fine)."""
        x = skips[-1]
        out = []
        for s in reversed(range(len(skips) - 1)):
            x = self.blocks[s](self.upsamples[s](x) + skips[s])
            out.append(x)
        return out

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        """Elements per sample that backward keeps: per level the sum of the upsampled and the encoder's
        features (the block's input) and the block's maps."""
        return sum((_maps(block.blocks[-1].output_channels, size) + _residual_maps(block, size)
                    for block, size in zip(self.blocks, _level_sizes(self.strides, input_size))), np.int64(0))


class BoundaryStream(nn.Module):
    """Attention-driven boundary decoder (§3.2) built from ``encoder`` (:class:`SegResEncoder` or any encoder
    with d-n-a's interface, such as ``PlainConvEncoder``): one attention gate per level below the bottom,
    each with the encoder's nonlinearity."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        features, conv_op, strides = encoder.output_channels, encoder.conv_op, encoder.strides
        kernel_sizes = [maybe_convert_scalar_to_list(conv_op, k) for k in encoder.kernel_sizes]
        bottom = len(features) - 1
        self.strides = strides
        mode = {1: 'linear', 2: 'bilinear', 3: 'trilinear'}[convert_conv_op_to_dim(conv_op)]
        self.entry_upsample = nn.Upsample(scale_factor=tuple(float(s) for s in strides[bottom]), mode=mode,
                                          align_corners=False)
        self.entry = StackedResidualBlocks(1, conv_op, features[bottom] + features[bottom - 1], features[bottom - 1],
                                           kernel_sizes[bottom - 1], 1, **block_kwargs(encoder))
        self.gates = nn.ModuleList(AttentionGate(conv_op, features[s], features[s], kernel_sizes[s],
                                                 encoder.conv_bias, encoder.nonlin, encoder.nonlin_kwargs)
                                   for s in range(bottom))
        self.upsamples = nn.ModuleList(_Upsample(conv_op, features[s + 1], features[s], strides[s + 1])
                                       for s in range(bottom - 1))

    def forward(self, skips: List[torch.Tensor]) -> List[torch.Tensor]:
        """Stream features of levels ``len(skips) - 2`` .. 0 (coarse to fine)."""
        bottom = len(skips) - 1
        x = self.entry(torch.cat((self.entry_upsample(skips[bottom]), skips[bottom - 1]), dim=1))
        out = []
        for s in reversed(range(bottom)):
            if s < bottom - 1:
                x = self.upsamples[s](x)
            x = self.gates[s](skips[s], x)
            out.append(x)
        return out

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        """Elements per sample that backward keeps: the entry's concatenated input and block maps, the
        upsampled stream at every level below the entry and the gates' maps."""
        sizes = _level_sizes(self.strides, input_size)
        entry_size = sizes[len(self.gates) - 1]
        total = _maps(self.entry.blocks[0].input_channels, entry_size) + _residual_maps(self.entry, entry_size)
        for s, gate in enumerate(self.gates):
            total += gate.compute_conv_feature_map_size(sizes[s])
        for s, upsample in enumerate(self.upsamples):
            total += _maps(upsample.project.out_channels, sizes[s])
        return total


class BoundaryAwareUNet(nn.Module):
    """Boundary-aware network of Myronenko & Hatamizadeh (2019); see the module docstring.

    Configured wholly by constructor kwargs, which nnU-Net reads from the plans'
    ``architecture.arch_kwargs`` (``input_channels``, ``num_classes`` and ``deep_supervision``
    come from nnU-Net).

    Args:
        input_channels: image channels (1 for CT).
        num_classes: region outputs, one sigmoid channel per nested region (KiTS19: 2, kidney+tumor
            and tumor; KiTS23: 3), and as many boundary channels.
        n_stages: resolution levels, bottom included (``len(strides)``).
        features_per_stage: width of each level, or one width for all (paper: 16, 32, 64, 128, 256).
        conv_op: ``nn.Conv3d`` (or ``nn.Conv2d``); ``nn.Conv3d`` is built as
            :class:`~nnunet_boundary.network.onednn_convolution.OneDNNConv3d`.
        kernel_sizes: kernel size per level (an int, one per axis, or one per-axis list per level;
            paper: 3 everywhere).
        strides: stride per level in the same forms; ``strides[0]`` must be all ones (the initial
            convolution keeps full resolution), ``strides[s]`` is the downsampling into level s.
        n_blocks_per_stage: residual blocks per encoder level; the last entry is the bottom
            (paper: 1 per level, 4 at the bottom).
        conv_bias: whether convolutions have a bias (nnU-Net: True).
        norm_op, norm_op_kwargs: normalisation of the residual blocks (nnU-Net: instance norm, affine;
            the paper: group norm with 8 groups).
        nonlin, nonlin_kwargs: activation of the residual blocks and the attention gates (paper: ReLU).
        deep_supervision: return the outputs of every level (training) instead of one tensor
            (inference); nnU-Net toggles ``decoder.deep_supervision``.
    """

    def __init__(self,
                 input_channels: int,
                 num_classes: int,
                 n_stages: int,
                 features_per_stage: Union[int, Sequence[int]],
                 conv_op: Type[_ConvNd],
                 kernel_sizes: IntOrSeq,
                 strides: IntOrSeq,
                 n_blocks_per_stage: Union[int, Sequence[int]],
                 conv_bias: bool = True,
                 norm_op: Union[None, Type[nn.Module]] = None,
                 norm_op_kwargs: dict = None,
                 nonlin: Union[None, Type[nn.Module]] = None,
                 nonlin_kwargs: dict = None,
                 deep_supervision: bool = False):
        super().__init__()
        if n_stages < 2:
            raise ValueError(f"BoundaryAwareUNet needs at least 2 stages, got n_stages={n_stages}")
        self.encoder = SegResEncoder(input_channels, n_stages, features_per_stage, onednn_conv_op(conv_op),
                                     kernel_sizes, strides, n_blocks_per_stage, conv_bias, norm_op, norm_op_kwargs,
                                     nonlin, nonlin_kwargs)
        self.decoder = AdditiveDecoder(self.encoder, deep_supervision)
        self.boundary_stream = BoundaryStream(self.encoder)
        self.num_classes = num_classes
        self.strides = self.encoder.strides
        features, conv_op = self.encoder.output_channels[:-1], self.encoder.conv_op
        self.region_heads = nn.ModuleList(conv_op(2 * f, num_classes, 1, 1, 0, bias=True) for f in features)
        self.boundary_heads = nn.ModuleList(conv_op(f, num_classes, 1, 1, 0, bias=True) for f in features)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, BoundaryAwareOutput]:
        skips = self.encoder(x)
        # both lists run coarse to fine; heads are indexed by level (0 = full resolution)
        decoded = self.decoder(skips)
        stream = self.boundary_stream(skips)
        levels = list(reversed(range(len(decoded))))
        if not self.decoder.deep_supervision:
            return self.region_heads[0](torch.cat((decoded[-1], stream[-1]), dim=1))
        regions = [self.region_heads[s](torch.cat((d, b), dim=1)) for s, d, b in zip(levels, decoded, stream)]
        boundary = [self.boundary_heads[s](b) for s, b in zip(levels, stream)]
        return BoundaryAwareOutput(regions[::-1], boundary[::-1])

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        """Elements per sample of the feature maps a training step (deep supervision on) keeps for
        backward: encoder, decoder, boundary stream and the region heads' concatenated inputs; the
        interface nnU-Net's planners call (``input_size`` is the patch, without batch and channels)."""
        sizes = _level_sizes(self.strides, input_size)
        heads = sum((_maps(head.in_channels, size) for head, size in zip(self.region_heads, sizes)), np.int64(0))
        return (self.encoder.compute_conv_feature_map_size(input_size) + heads +
                self.decoder.compute_conv_feature_map_size(input_size) +
                self.boundary_stream.compute_conv_feature_map_size(input_size))

    @staticmethod
    def initialize(module: nn.Module) -> None:
        """He initialisation, as nnU-Net does for its own networks (``network.apply(network.initialize)``)."""
        InitWeights_He(1e-2)(module)
