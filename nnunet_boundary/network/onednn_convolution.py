"""3D convolution that runs PyTorch's oneDNN kernel on the CPU whatever the batch and width.

PyTorch picks a CPU convolution kernel by heuristics (``ConvParams::use_mkldnn`` in
``aten/src/ATen/native/Convolution.cpp``): for a float32 3D convolution with kernels of at most 3
it takes oneDNN only when the batch is larger than 1 or ``N * C * D * H > 20480``; otherwise it
falls back to ``slow_conv3d`` (im2col + GEMM). nnU-Net's sliding window predicts one window at a
time (batch 1), so every narrow level of a small network took the slow kernel: a 16 -> 16
channel 3x3x3 convolution on a 32^3 window runs 43 ms there and 2.6 ms in oneDNN with
channels-last weights (2 cores, torch 2.14).

:class:`OneDNNConv3d` is ``torch.nn.Conv3d`` with the same parameters, state-dict keys and values;
on the CPU in float32 it calls ``aten::mkldnn_convolution`` (the op PyTorch itself dispatches to
when its heuristic says so) with the weight in channels-last (NDHWC) layout, in which oneDNN is
fastest at few channels and which instance normalisation in between cannot undo (it returns the
default layout, so a channels-last *input* alone would be lost after the first block). The weight
is *stored* in PyTorch's default layout, so device moves, checkpoints and optimizers see an ordinary
convolution; the channels-last copy per call costs well under 1 % of a forward pass.

Under ``torch.compile`` (nnU-Net's ``nnUNet_compile``) the call goes through a small custom
operator, ``nnunet_boundary::mkldnn_convolution``, with a shape function and a backward
(PyTorch's ``convolution_backward``), since the aten op has no shape function for tracing. Everywhere else (CUDA,
``meta``, half precision, CPU autocast, non-zero padding modes, oneDNN switched off) the module is
``nn.Conv3d``; under CPU autocast that is what casts the convolution to bfloat16, which PyTorch always gives
to oneDNN.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from torch import Tensor, nn


@torch.library.custom_op('nnunet_boundary::mkldnn_convolution', mutates_args=())
def traceable_mkldnn_convolution(input: Tensor, weight: Tensor, bias: Optional[Tensor], padding: List[int],
                                 stride: List[int], dilation: List[int], groups: int) -> Tensor:
    """``aten::mkldnn_convolution`` for ``torch.compile``, which has no shape function for the aten op."""
    return torch.ops.aten.mkldnn_convolution(input, weight, bias, padding, stride, dilation, groups)


@traceable_mkldnn_convolution.register_fake
def _output_like(input, weight, bias, padding, stride, dilation, groups):
    output = F.conv3d(input, weight, bias, stride, padding, dilation, groups)
    channels_last = weight.is_contiguous(memory_format=torch.channels_last_3d) and not weight.is_contiguous()
    return output.contiguous(memory_format=torch.channels_last_3d) if channels_last else output


def _save_for_backward(ctx, inputs, output):
    input, weight, bias, ctx.padding, ctx.stride, ctx.dilation, ctx.groups = inputs
    ctx.has_bias = bias is not None
    ctx.save_for_backward(input, weight)


def _backward(ctx, grad_output):
    input, weight = ctx.saved_tensors
    grad_input, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
        grad_output, input, weight, [weight.shape[0]] if ctx.has_bias else None, ctx.stride, ctx.padding,
        ctx.dilation, False, [0] * len(ctx.stride), ctx.groups, [*ctx.needs_input_grad[:2], ctx.has_bias])
    return grad_input, grad_weight, grad_bias, None, None, None, None


traceable_mkldnn_convolution.register_autograd(_backward, setup_context=_save_for_backward)


_BUILT_WITH_ONEDNN = torch.backends.mkldnn.is_available()  # a constant; torch.compile cannot trace the call


def takes_onednn(input: Tensor, conv: nn.Conv3d) -> bool:
    """Whether :class:`OneDNNConv3d` routes this call to oneDNN."""
    return (input.device.type == 'cpu' and input.dtype == torch.float32 and not torch.is_autocast_enabled('cpu')
            and conv.padding_mode == 'zeros' and not isinstance(conv.padding, str)
            and _BUILT_WITH_ONEDNN and torch.backends.mkldnn.enabled)


class OneDNNConv3d(nn.Conv3d):
    """``nn.Conv3d`` that runs oneDNN in channels-last layout on the CPU (see the module docstring)."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        if not takes_onednn(input, self):
            return super()._conv_forward(input, weight, bias)
        weight = weight.contiguous(memory_format=torch.channels_last_3d)
        # eager: the aten op directly (a custom op's Python dispatch would cost ~0.1 ms per call)
        convolution = traceable_mkldnn_convolution if torch.compiler.is_compiling() else \
            torch.ops.aten.mkldnn_convolution
        return convolution(input, weight, bias, list(self.padding), list(self.stride), list(self.dilation),
                           self.groups)


def onednn_conv_op(conv_op: type) -> type:
    """:class:`OneDNNConv3d` for ``nn.Conv3d`` (what nnU-Net's plans name), any other op unchanged."""
    return OneDNNConv3d if conv_op is nn.Conv3d else conv_op


class OneDNNPlainConvUNet(PlainConvUNet):
    """dynamic-network-architectures' ``PlainConvUNet`` from the same constructor kwargs (as nnU-Net's plans give
    them), with ``conv_op`` ``nn.Conv3d`` built as :class:`OneDNNConv3d`: numerically the same network. The base
    of our networks on nnU-Net's own, and the ablation benchmark's baselines."""

    def __init__(self, input_channels: int, n_stages: int, features_per_stage, conv_op: type, *args, **kwargs):
        super().__init__(input_channels, n_stages, features_per_stage, onednn_conv_op(conv_op), *args, **kwargs)
