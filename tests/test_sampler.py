from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunet_boundary.training.tumor_weighted_sampler import TumorWeightedDataLoader

PATCH = (8, 8, 8)
SHAPE = (64, 64, 64)
TUMOR_VOXEL = (0, 10, 10, 10)     # class_locations hold (channel, z, y, x)
KIDNEY_VOXEL = (0, 40, 40, 40)
FOREGROUND, TUMOR = (1, 2), 2


def make_loader(**kwargs):
    label_manager = LabelManager({'background': 0, 'kidney': [1, 2], 'tumor': 2}, regions_class_order=[1, 2])
    data = SimpleNamespace(identifiers=['a'])
    return TumorWeightedDataLoader(data, 1, PATCH, PATCH, label_manager, tumor_region=TUMOR,
                                   foreground_region=FOREGROUND, **kwargs)


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
    freq = crop_centres(make_loader(p_tumor=0.5, p_foreground=0.5), locations())
    assert freq['tumor'] == pytest.approx(0.5, abs=0.015) and freq.get('random', 0) == 0
    with pytest.raises(ValueError):
        make_loader(p_tumor=0.8, p_foreground=0.3)


def test_draws_are_deterministic_under_a_seed():
    loader = make_loader()
    draw = lambda: [loader.get_bbox(np.array(SHAPE), False, locations())[0] for _ in range(50)]
    np.random.seed(7)
    first = draw()
    np.random.seed(7)
    assert draw() == first
