"""Boundary (edge) targets from region masks (Myronenko & Hatamizadeh 2019, §3.3).

The boundary stream is supervised with the edges of each region. They are computed on the
device inside the training step, from the very region targets the main branch sees at every
deep-supervision scale, so they can never drift from the augmented segmentation.
"""
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
