"""Boundary (edge) targets from region masks (Myronenko & Hatamizadeh 2019, §3.3).

The boundary stream is supervised with the edges of each region. They are computed on the
device inside the training step, from the very region targets the main branch sees at every
deep-supervision scale, so they can never drift from the augmented segmentation.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def region_edges(regions: torch.Tensor) -> torch.Tensor:
    """Morphological gradient (3^d dilation minus 3^d erosion) of each region channel.

    :param regions: binary region masks, shape ``(B, C, *spatial)``, any dtype.
    :return: float tensor of the same shape, 1 on the two-voxel-wide band where a region meets
        its outside, 0 elsewhere. The patch border is not an edge: max pooling pads with -inf,
        so erosion there only looks at voxels inside the patch.
    """
    pool = _MAX_POOL[regions.ndim - 2]
    x = regions.float()
    dilated = pool(x, kernel_size=3, stride=1, padding=1)
    eroded = -pool(-x, kernel_size=3, stride=1, padding=1)
    return dilated - eroded


def edges_per_scale(targets: List[torch.Tensor], from_full_resolution: bool) -> List[torch.Tensor]:
    """Edge targets for every deep-supervision scale (full resolution first).

    * ``from_full_resolution=False``: :func:`region_edges` of each scale's own region target, i.e.
      of nnU-Net's nearest-neighbour-downsampled masks. The band is two voxels of *that* scale
      (2, 4, 8 ... voxels of the full grid wide), so at coarse scales small regions become all
      edge or vanish.
    * ``True``: the full-resolution edges max-pooled onto each coarser grid, so a coarse voxel is an
      edge exactly when it covers a full-resolution edge voxel: every scale marks the same surface.
    """
    if not from_full_resolution:
        return [region_edges(t) for t in targets]
    full = region_edges(targets[0])
    pool = _MAX_POOL[full.ndim - 2]
    return [full] + [pool(full, kernel_size=_pooling_factors(full, t), ceil_mode=True) for t in targets[1:]]


def _pooling_factors(full: torch.Tensor, coarse: torch.Tensor) -> Tuple[int, ...]:
    factors = tuple(-(-f // c) for f, c in zip(full.shape[2:], coarse.shape[2:]))  # ceil division
    if any(-(-f // k) != c for f, k, c in zip(full.shape[2:], factors, coarse.shape[2:])):
        raise ValueError(f"deep-supervision target of shape {tuple(coarse.shape[2:])} is no integer "
                         f"downsampling of {tuple(full.shape[2:])}")
    return factors
