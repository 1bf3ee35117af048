from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunet_boundary.training.tumor_weighted_sampler import (TumorWeightedDataLoader,
                                                              default_crop_centre_probabilities)

PATCH = (8, 8, 8)
SHAPE = (64, 64, 64)
TUMOR_VOXEL = (0, 10, 10, 10)     # class_locations hold (channel, z, y, x)
KIDNEY_VOXEL = (0, 40, 40, 40)
FOREGROUND, TUMOR = (1, 2), 2


def make_loader(**kwargs):
    label_manager = LabelManager({'background': 0, 'kidney': [1, 2], 'tumor': 2}, regions_class_order=[1, 2])
    data = SimpleNamespace(identifiers=['a'])
    return TumorWeightedDataLoader(data, 1, PATCH, PATCH, label_manager, regions=(FOREGROUND, TUMOR), **kwargs)


def crop_centres(loader, class_locations, draws=20000):
    np.random.seed(1234)
    counts = Counter()
    for _ in range(draws):
        lbs, _ = loader.get_bbox(np.array(SHAPE), force_fg=False, class_locations=class_locations)
        centre = tuple(lb + p // 2 for lb, p in zip(lbs, PATCH))
        counts['tumor' if centre == TUMOR_VOXEL[1:] else 'kidney' if centre == KIDNEY_VOXEL[1:] else 'random'] += 1
    return {k: v / draws for k, v in counts.items()}


def locations(tumor=True, foreground=True):
    return {FOREGROUND: np.array([KIDNEY_VOXEL]) if foreground else np.zeros((0, 4), int),
            TUMOR: np.array([TUMOR_VOXEL]) if tumor else np.zeros((0, 4), int)}


def test_paper_frequencies_tumor_foreground_random():
    freq = crop_centres(make_loader(), locations())
    assert freq['tumor'] == pytest.approx(0.8, abs=0.012)
    assert freq['kidney'] == pytest.approx(0.1, abs=0.012)
    assert freq['random'] == pytest.approx(0.1, abs=0.012)


def test_case_without_tumor_falls_back_to_foreground():
    freq = crop_centres(make_loader(), locations(tumor=False))
    assert freq.get('tumor', 0) == 0
    assert freq['kidney'] == pytest.approx(0.9, abs=0.012)


def test_case_without_foreground_falls_back_to_random():
    freq = crop_centres(make_loader(), locations(tumor=False, foreground=False), draws=2000)
    assert freq['random'] == 1.0


def test_custom_probabilities_and_validation():
    freq = crop_centres(make_loader(crop_centre_probabilities=(0.5, 0.5)), locations())
    assert freq['tumor'] == pytest.approx(0.5, abs=0.015) and freq.get('random', 0) == 0
    with pytest.raises(ValueError):
        make_loader(crop_centre_probabilities=(0.3, 0.8))
    with pytest.raises(ValueError, match='one crop centring probability'):
        make_loader(crop_centre_probabilities=(0.9,))


def test_draws_are_deterministic_under_a_seed():
    loader = make_loader()
    draw = lambda: [loader.get_bbox(np.array(SHAPE), False, locations())[0] for _ in range(50)]
    np.random.seed(7)
    first = draw()
    np.random.seed(7)
    assert draw() == first


# --- three nested regions (KiTS23: kidney_and_mass {1, 2, 3} ⊃ mass {2, 3} ⊃ tumor {2}) ---------------
KITS23 = ((1, 2, 3), (2, 3), 2)
CYST_VOXEL = (0, 30, 30, 30)


def kits23_loader(**kwargs):
    label_manager = LabelManager({'background': 0, 'kidney_and_mass': [1, 2, 3], 'mass': [2, 3], 'tumor': 2},
                                 regions_class_order=[1, 3, 2])
    return TumorWeightedDataLoader(SimpleNamespace(identifiers=['a']), 1, PATCH, PATCH, label_manager,
                                   regions=KITS23, **kwargs)


def kits23_locations(tumor=True):
    return {KITS23[0]: np.array([KIDNEY_VOXEL]), KITS23[1]: np.array([CYST_VOXEL]),
            KITS23[2]: np.array([TUMOR_VOXEL]) if tumor else np.zeros((0, 4), int)}


def kits23_crop_centres(loader, class_locations, draws=20000):
    np.random.seed(99)
    names = {TUMOR_VOXEL[1:]: 'tumor', CYST_VOXEL[1:]: 'mass', KIDNEY_VOXEL[1:]: 'kidney_and_mass'}
    counts = Counter()
    for _ in range(draws):
        lbs, _ = loader.get_bbox(np.array(SHAPE), force_fg=False, class_locations=class_locations)
        counts[names.get(tuple(lb + p // 2 for lb, p in zip(lbs, PATCH)), 'random')] += 1
    return {k: v / draws for k, v in counts.items()}


def test_default_probabilities_innermost_08_outermost_01_any_number_of_regions():
    assert default_crop_centre_probabilities(2) == pytest.approx((0.1, 0.8))
    assert default_crop_centre_probabilities(3) == pytest.approx((0.1, 0.0, 0.8))
    assert default_crop_centre_probabilities(1) == pytest.approx((0.9,))


def test_three_regions_paper_default_centres_on_tumor_outermost_and_random():
    freq = kits23_crop_centres(kits23_loader(), kits23_locations())
    assert freq['tumor'] == pytest.approx(0.8, abs=0.012)
    assert freq['kidney_and_mass'] == pytest.approx(0.1, abs=0.012)
    assert freq.get('mass', 0) == 0


def test_three_regions_per_region_probabilities_and_fallback_to_the_next_region_outwards():
    freq = kits23_crop_centres(kits23_loader(crop_centre_probabilities=(0.2, 0.3, 0.5)), kits23_locations())
    assert (freq['kidney_and_mass'], freq['mass'], freq['tumor']) == pytest.approx((0.2, 0.3, 0.5), abs=0.015)
    without_tumor = kits23_crop_centres(kits23_loader(crop_centre_probabilities=(0.2, 0.3, 0.5)),
                                        kits23_locations(tumor=False))
    assert without_tumor.get('tumor', 0) == 0
    assert without_tumor['mass'] == pytest.approx(0.8, abs=0.015)  # tumor draws fall back to mass, not kidney
