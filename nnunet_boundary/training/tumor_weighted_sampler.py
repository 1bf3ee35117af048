"""Tumor-weighted patch sampling (Myronenko & Hatamizadeh 2019, §3.4).

Each training crop is centred on a tumor voxel with probability ``p_tumor`` (paper: 0.8), on a
voxel of any foreground (kidney or tumor) with ``p_foreground`` (0.1), and anywhere with the
rest (0.1). A case without tumor falls back to foreground, a case without foreground to a
random crop. Voxels are drawn from the ``class_locations`` nnU-Net's preprocessing stored for
each region, and the crop geometry is nnU-Net's own (``nnUNetDataLoader.get_bbox``); only the
choice of what to centre on differs from nnU-Net's fixed foreground oversampling.
"""
from typing import Optional

import numpy as np
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

from nnunet_boundary.regions import Region


class TumorWeightedDataLoader(nnUNetDataLoader):
    def __init__(self, *args, tumor_region: Region, foreground_region: Region, p_tumor: float = 0.8,
                 p_foreground: float = 0.1, **kwargs):
        super().__init__(*args, **kwargs)
        if not (0 <= p_tumor and 0 <= p_foreground and p_tumor + p_foreground <= 1):
            raise ValueError(f"need p_tumor, p_foreground >= 0 with sum <= 1, got {p_tumor}, {p_foreground}")
        self.tumor_region = tumor_region
        self.foreground_region = foreground_region
        self.p_tumor = p_tumor
        self.p_foreground = p_foreground

    def draw_crop_centre_region(self) -> Optional[Region]:
        """The region to centre the next crop on, or None for a random crop."""
        u = np.random.uniform()
        if u < self.p_tumor:
            return self.tumor_region
        if u < self.p_tumor + self.p_foreground:
            return self.foreground_region
        return None

    def get_bbox(self, data_shape, force_fg, class_locations, overwrite_class=None, verbose=False):
        """Ignores nnU-Net's ``force_fg`` (its batch-position rule) in favour of the paper's draw."""
        wanted = self.draw_crop_centre_region()
        fallbacks = {self.tumor_region: (self.tumor_region, self.foreground_region),
                     self.foreground_region: (self.foreground_region,), None: ()}[wanted]
        for region in fallbacks:
            if len(class_locations.get(region, ())) > 0:
                return super().get_bbox(data_shape, True, class_locations, overwrite_class=region, verbose=verbose)
        return super().get_bbox(data_shape, False, class_locations, verbose=verbose)
