"""Tumor-weighted patch sampling (Myronenko & Hatamizadeh 2019, §3.4), for any number of nested regions.

The paper centres each training crop on a tumor voxel with probability 0.8, on a voxel of any
foreground (kidney or tumor) with 0.1, and anywhere with the rest (0.1). With nested regions
(outermost first: KiTS19 kidney+tumor ⊃ tumor; KiTS23 kidney_and_mass ⊃ mass ⊃ tumor) that is one
centring probability per region, by default 0.8 for the innermost region, 0.1 for the outermost and
0 in between (:func:`default_crop_centre_probabilities`). A case without voxels of the drawn region
falls back to the next region outwards that has some, and to a random crop when none has. Voxels
are drawn from the ``class_locations`` nnU-Net's preprocessing stored for each region, and the crop
geometry is nnU-Net's own (``nnUNetDataLoader.get_bbox``); only the choice of what to centre on
differs from nnU-Net's fixed foreground oversampling.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

from nnunet_boundary.regions import Region, nested_regions


def default_crop_centre_probabilities(n_regions: int) -> Tuple[float, ...]:
    """The paper's 0.8 (innermost region) / 0.1 (outermost) / 0.1 (random), regions outermost first;
    with a single region, 0.9 on it."""
    probabilities = [0.0] * n_regions
    probabilities[-1] += 0.8
    probabilities[0] += 0.1
    return tuple(probabilities)


class TumorWeightedDataLoader(nnUNetDataLoader):
    """nnU-Net's data loader whose crops are centred by region as §3.4 draws them.

    :param regions: the nested regions, outermost first, as nnU-Net keys them
        (:func:`~nnunet_boundary.regions.nested_regions`).
    :param crop_centre_probabilities: one per region, in the same order, summing to at most 1; the rest is
        the probability of a random crop. Default :func:`default_crop_centre_probabilities`.
    """

    def __init__(self, *args, regions: Sequence[Region], crop_centre_probabilities: Sequence[float] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        probabilities = crop_centre_probabilities or default_crop_centre_probabilities(len(regions))
        if len(probabilities) != len(regions) or min(probabilities) < 0 or sum(probabilities) > 1 + 1e-9:
            raise ValueError(f"need one crop centring probability >= 0 per region ({len(regions)}: {list(regions)}), "
                             f"summing to at most 1; got {list(probabilities)}")
        self.regions = tuple(regions)
        self.crop_centre_probabilities = tuple(probabilities)

    def draw_crop_centre_region(self) -> Optional[int]:
        """Index of the region to centre the next crop on, or None for a random crop. The draw runs from
        the innermost region outwards (so KiTS19's tumor / foreground draw is the same as with two
        separate probabilities)."""
        u, cumulative = np.random.uniform(), 0.0
        for index in reversed(range(len(self.regions))):
            cumulative += self.crop_centre_probabilities[index]
            if u < cumulative:
                return index
        return None

    def get_bbox(self, data_shape, force_fg, class_locations, overwrite_class=None, verbose=False):
        """Ignores nnU-Net's ``force_fg`` (its batch-position rule) in favour of the paper's draw."""
        wanted = self.draw_crop_centre_region()
        for region in () if wanted is None else reversed(self.regions[:wanted + 1]):
            if len(class_locations.get(region, ())) > 0:
                return super().get_bbox(data_shape, True, class_locations, overwrite_class=region, verbose=verbose)
        return super().get_bbox(data_shape, False, class_locations, verbose=verbose)


class TumorWeightedSampling:
    """Trainer mixin (before an ``nnUNetTrainer`` in the bases): training crops centred on each nested region
    with ``crop_centre_probabilities`` (one per region, outermost first; None = the paper's 0.8 innermost /
    0.1 outermost / 0.1 random, §3.4); ``tumor_weighted_sampling = False`` keeps nnU-Net's own loaders.
    Validation and augmentation are nnU-Net's."""

    tumor_weighted_sampling = True
    crop_centre_probabilities: Optional[Sequence[float]] = None

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        self.regions = nested_regions(dataset_json)
        super().__init__(plans, configuration, fold, dataset_json, device)

    def build_training_loader(self, dataset, initial_patch_size, transforms) -> nnUNetDataLoader:
        """The training loader: tumor-weighted crops of ``initial_patch_size`` (nnU-Net's enlarged patch,
        cut to the plans' patch after spatial augmentation)."""
        return TumorWeightedDataLoader(dataset, self.batch_size, initial_patch_size,
                                       self.configuration_manager.patch_size, self.label_manager,
                                       transforms=transforms, regions=self.regions,
                                       crop_centre_probabilities=self.crop_centre_probabilities)

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
