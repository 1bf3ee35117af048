"""Training memory of a network without a GPU.

:func:`saved_activation_bytes` measures what autograd keeps for the backward pass by running the
forward pass on PyTorch's ``meta`` device (shapes only, no data, no allocation);
:func:`training_memory_bytes` is the estimate the planner sizes patch and batch by, from the
network's own count (``compute_conv_feature_map_size``, the interface nnU-Net's planners call) and
its parameters. ``tests/test_planner.py`` checks the one against the other.
"""
import copy
from typing import Sequence

import torch
from torch import nn

#: bytes per feature-map element under nnU-Net's AMP (``torch.autocast`` to float16 on CUDA): the
#: convolutions compute and save half precision, and so do the instance norms, nonlinearities and
#: upsamplings after them (none of them is on autocast's float32 list)
AMP_ACTIVATION_BYTES = 2
#: bytes per parameter in nnU-Net's training step: float32 weight, float32 gradient, SGD's float32
#: momentum, and the float16 copy autocast keeps of every convolution weight for backward
TRAINING_BYTES_PER_PARAMETER = 4 + 4 + 4 + 2


def saved_activation_bytes(network: nn.Module, input_shape: Sequence[int], dtype: torch.dtype = torch.float32) -> int:
    """Bytes of the tensors autograd saves for backward in one training forward pass of ``network`` on an
    input of ``input_shape`` (batch included), with network and input in ``dtype``: the activations,
    which grow linearly with the batch, plus the weights the convolutions keep, which do not. Counts the
    network only (not the loss). ``torch.float16`` stands in for nnU-Net's AMP, under which the
    convolutions and everything after them save half precision. A copy of the network runs on the meta
    device; ``network`` is left untouched."""
    meta = copy.deepcopy(network).to(device='meta', dtype=dtype).train()
    saved = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[id(tensor)] = tensor.numel() * tensor.element_size()  # the graph keeps it alive: ids are unique
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        meta(torch.empty(*input_shape, device='meta', dtype=dtype, requires_grad=True))
    return sum(saved.values())


def training_memory_bytes(network: nn.Module, patch_size: Sequence[int], batch_size: int) -> int:
    """Estimated GPU memory of one nnU-Net training step with AMP: the activations backward keeps
    (``network.compute_conv_feature_map_size(patch_size)`` elements per sample, in half precision)
    plus weights, gradients, optimizer state and autocast's half-precision weights. Leaves out the
    loss and its targets, the input batch, cuDNN workspaces and the CUDA context."""
    activations = int(network.compute_conv_feature_map_size(patch_size)) * AMP_ACTIVATION_BYTES * batch_size
    return activations + TRAINING_BYTES_PER_PARAMETER * sum(p.numel() for p in network.parameters())
