"""Training memory of a network without a GPU: what autograd keeps for the backward pass, measured by
running the forward pass on PyTorch's ``meta`` device (shapes only, no data, no allocation)."""
import copy
from typing import Sequence

import torch
from torch import nn


def saved_activation_bytes(network: nn.Module, input_shape: Sequence[int], dtype: torch.dtype = torch.float32) -> int:
    """Bytes of the tensors autograd saves for backward in one training forward pass of ``network`` on an
    input of ``input_shape`` (batch included), in ``dtype``: the activations, which grow linearly with the
    batch, plus the weights the convolutions keep, which do not. Counts the network only (not the loss)
    and no AMP: under autocast the convolutions save half-precision inputs. A copy of the network runs
    on the meta device; ``network`` is left untouched."""
    meta = copy.deepcopy(network).to('meta').train()
    saved = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[id(tensor)] = tensor.numel() * tensor.element_size()  # the graph keeps it alive: ids are unique
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        meta(torch.empty(*input_shape, device='meta', dtype=dtype, requires_grad=True))
    return sum(saved.values())
