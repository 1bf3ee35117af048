"""Loss of the boundary stream: soft Dice + beta-balanced BCE (Myronenko & Hatamizadeh 2019, §3.3, eq. 2).

Edges are a small fraction of a patch. Eq. 2 weights the binary cross-entropy of edge voxels by
beta, the fraction of *non*-edge voxels, and that of non-edge voxels by 1 - beta (after the
class-balanced loss of HED, Xie & Tu, ICCV 2015). Beta is computed per sample and per region,
so the loss does not depend on how a batch is split across DDP ranks.
"""
import torch
import torch.nn.functional as F
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from torch import nn


class BetaBalancedBCEWithLogitsLoss(nn.Module):
    """Eq. 2: ``-beta * y * log(p) - (1 - beta) * (1 - y) * log(1 - p)``, averaged over voxels,
    then over regions and samples; beta = fraction of non-edge voxels of that sample and region.

    Computed in float32 whatever the autocast dtype, so fp16/bf16 logits cannot overflow it.

    Eq. 2 as written gives a crop without any edge of a region beta = 1, i.e. weight 0 on every
    voxel: the edge channel learns nothing from it (and the soft Dice of an empty target has a
    vanishing gradient), although most crops without tumor are exactly where a tumor edge must not
    be predicted. ``min_edge_fraction`` (an addition of ours; 0 = eq. 2 exactly) caps beta at
    ``1 - min_edge_fraction``: an edge-free crop then weighs its voxels as a crop with that edge
    fraction weighs its non-edge voxels, so "no edge here" is taught with a gradient of the same
    order as a crop with edges; crops with more edges than that are unchanged.
    """

    def __init__(self, min_edge_fraction: float = 0.0):
        super().__init__()
        if not 0 <= min_edge_fraction < 1:
            raise ValueError(f"min_edge_fraction must lie in [0, 1), got {min_edge_fraction}")
        self.min_edge_fraction = min_edge_fraction

    def forward(self, logits: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        edges = edges.float()
        axes = tuple(range(2, logits.ndim))
        beta = 1 - edges.mean(axes, keepdim=True).clamp(min=self.min_edge_fraction)
        weight = beta * edges + (1 - beta) * (1 - edges)
        bce = F.binary_cross_entropy_with_logits(logits, edges, weight=weight, reduction='none')
        return bce.mean(axes).mean()


class BoundaryLoss(nn.Module):
    """Soft Dice (nnU-Net's own, sigmoid, all regions) plus beta-balanced BCE on edge logits."""

    def __init__(self, batch_dice: bool, ddp: bool, weight_dice: float = 1.0, weight_bce: float = 1.0,
                 min_edge_fraction: float = 0.0):
        super().__init__()
        self.weight_dice = weight_dice
        self.weight_bce = weight_bce
        self.dice = MemoryEfficientSoftDiceLoss(apply_nonlin=torch.sigmoid, batch_dice=batch_dice, do_bg=True,
                                                smooth=1e-5, ddp=ddp)
        self.bce = BetaBalancedBCEWithLogitsLoss(min_edge_fraction)

    def forward(self, logits: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        return self.weight_dice * self.dice(logits, edges) + self.weight_bce * self.bce(logits, edges)
