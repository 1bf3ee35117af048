"""Total loss of the boundary-aware network: region loss + weighted boundary loss (§3.3)."""
from typing import List

import torch
from torch import nn

from nnunet_boundary.losses.edges import edges_per_scale
from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareOutput


class BoundaryAwareLoss(nn.Module):
    """``region_loss(output, target) + boundary_weight * boundary_loss(output.boundary, edges(target))``.

    Both losses take lists over deep-supervision scales (nnU-Net's ``DeepSupervisionWrapper``);
    the edge targets are derived from the region targets on the fly
    (:func:`~nnunet_boundary.losses.edges.edges_per_scale`, from each scale's own target or pooled
    from the full-resolution edges).
    """

    def __init__(self, region_loss: nn.Module, boundary_loss: nn.Module, boundary_weight: float = 1.0,
                 edges_from_full_resolution: bool = False):
        super().__init__()
        self.region_loss = region_loss
        self.boundary_loss = boundary_loss
        self.boundary_weight = boundary_weight
        self.edges_from_full_resolution = edges_from_full_resolution

    def forward(self, output: BoundaryAwareOutput, target: List[torch.Tensor]) -> torch.Tensor:
        if not isinstance(output, BoundaryAwareOutput):
            raise TypeError("BoundaryAwareLoss needs the network's deep-supervision output (a BoundaryAwareOutput); "
                            f"got {type(output).__name__}. Is deep supervision enabled?")
        edges = edges_per_scale(target, self.edges_from_full_resolution)
        return self.region_loss(output, target) + self.boundary_weight * self.boundary_loss(output.boundary, edges)
