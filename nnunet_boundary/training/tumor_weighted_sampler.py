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

    def build_training_loader(self, dataset, initial_patch_size, transforms) -> nnUNetDataLoader:
        """The training loader: tumor-weighted crops of ``initial_patch_size`` (nnU-Net's enlarged patch,
        cut to the plans' patch after spatial augmentation)."""
        return TumorWeightedDataLoader(dataset, self.batch_size, initial_patch_size,
                                       self.configuration_manager.patch_size, self.label_manager,
                                       transforms=transforms, tumor_region=self.tumor_region,
                                       foreground_region=self.foreground_region, p_tumor=self.p_tumor,
                                       p_foreground=self.p_foreground)

    def get_dataloaders(self):
        """nnU-Net 2.8's ``nnUNetTrainer.get_dataloaders``, unchanged but for the training loader, which
        :meth:`build_training_loader` makes (nnU-Net offers no hook for it; ``tests/test_nnunet_internals.py``
        fails when nnU-Net's version of this method changes)."""
        if not self.tumor_weighted_sampling:
            return super().get_dataloaders()
        deep_supervision_scales = self._get_deep_supervision_scales()
        rotation, dummy_2d, initial_patch_size, mirror_axes = \
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        labels = self.label_manager
        regions = labels.foreground_regions if labels.has_regions else None
        tr_transforms = self.get_training_transforms(
            self.configuration_manager.patch_size, rotation, deep_supervision_scales, mirror_axes, dummy_2d,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm, is_cascaded=self.is_cascaded,
            foreground_labels=labels.foreground_labels, regions=regions, ignore_label=labels.ignore_label)
        val_transforms = self.get_validation_transforms(
            deep_supervision_scales, is_cascaded=self.is_cascaded, foreground_labels=labels.foreground_labels,
            regions=regions, ignore_label=labels.ignore_label)
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        dl_tr = self.build_training_loader(dataset_tr, initial_patch_size, tr_transforms)
        patch_size = self.configuration_manager.patch_size
        dl_val = nnUNetDataLoader(dataset_val, self.batch_size, patch_size, patch_size, labels,
                                  oversample_foreground_percent=self.oversample_foreground_percent,
                                  sampling_probabilities=None, pad_sides=None, transforms=val_transforms,
                                  probabilistic_oversampling=self.probabilistic_oversampling)
        return self._augmenters(dl_tr, dl_val)

    def _augmenters(self, dl_tr, dl_val):
        """nnU-Net's background augmenters (or in-process ones for ``nnUNet_n_proc_DA=0``), started."""
        n_proc = get_allowed_n_proc_DA()
        if n_proc == 0:
            train, val = SingleThreadedAugmenter(dl_tr, None), SingleThreadedAugmenter(dl_val, None)
        else:
            pin = self.device.type == 'cuda'
            train = NonDetMultiThreadedAugmenter(data_loader=dl_tr, transform=None, num_processes=n_proc,
                                                 num_cached=max(6, n_proc // 2), seeds=None, pin_memory=pin,
                                                 wait_time=0.002)
            val = NonDetMultiThreadedAugmenter(data_loader=dl_val, transform=None, num_processes=max(1, n_proc // 2),
                                               num_cached=max(3, n_proc // 4), seeds=None, pin_memory=pin,
                                               wait_time=0.002)
        next(train), next(val)  # as nnU-Net: start the workers now
        return train, val
