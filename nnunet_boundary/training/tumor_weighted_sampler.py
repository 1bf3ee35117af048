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
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

from nnunet_boundary.regions import Region, kidney_tumor_regions


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


class TumorWeightedSampling:
    """Trainer mixin (before an ``nnUNetTrainer`` in the bases): the training loader crops centred on
    tumor / foreground / anywhere with probabilities ``p_tumor`` / ``p_foreground`` / rest (§3.4);
    ``tumor_weighted_sampling = False`` keeps nnU-Net's own loaders. Validation and augmentation are
    nnU-Net's."""

    tumor_weighted_sampling = True
    p_tumor = 0.8
    p_foreground = 0.1

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        self.foreground_region, self.tumor_region = kidney_tumor_regions(dataset_json)
        super().__init__(plans, configuration, fold, dataset_json, device)

    def get_dataloaders(self):
        """nnU-Net's ``get_dataloaders`` (2.8) with the tumor-weighted training loader."""
        if not self.tumor_weighted_sampling:
            return super().get_dataloaders()
        deep_supervision_scales = self._get_deep_supervision_scales()
        rotation, dummy_2d, initial_patch_size, mirror_axes = \
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        regions = self.label_manager.foreground_regions
        patch_size = self.configuration_manager.patch_size
        tr_transforms = self.get_training_transforms(
            patch_size, rotation, deep_supervision_scales, mirror_axes, dummy_2d,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm, is_cascaded=self.is_cascaded,
            foreground_labels=self.label_manager.foreground_labels, regions=regions,
            ignore_label=self.label_manager.ignore_label)
        val_transforms = self.get_validation_transforms(
            deep_supervision_scales, is_cascaded=self.is_cascaded,
            foreground_labels=self.label_manager.foreground_labels, regions=regions,
            ignore_label=self.label_manager.ignore_label)
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        dl_tr = TumorWeightedDataLoader(dataset_tr, self.batch_size, initial_patch_size, patch_size,
                                        self.label_manager, transforms=tr_transforms,
                                        tumor_region=self.tumor_region, foreground_region=self.foreground_region,
                                        p_tumor=self.p_tumor, p_foreground=self.p_foreground)
        dl_val = nnUNetDataLoader(dataset_val, self.batch_size, patch_size, patch_size, self.label_manager,
                                  oversample_foreground_percent=self.oversample_foreground_percent,
                                  transforms=val_transforms)
        n_proc = get_allowed_n_proc_DA()
        if n_proc == 0:
            return SingleThreadedAugmenter(dl_tr, None), SingleThreadedAugmenter(dl_val, None)
        pin = self.device.type == 'cuda'
        return (NonDetMultiThreadedAugmenter(dl_tr, None, n_proc, max(6, n_proc // 2), None, pin, 0.002),
                NonDetMultiThreadedAugmenter(dl_val, None, max(1, n_proc // 2), max(3, n_proc // 4), None, pin,
                                             0.002))
