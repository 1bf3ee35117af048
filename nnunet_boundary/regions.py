"""Nested regions, the targets the boundary-aware network predicts (one sigmoid channel each).

Myronenko & Hatamizadeh (2019, §3.1) predict two nested regions for KiTS19, "kidney and tumor"
and "tumor", i.e. nnU-Net's region-based training with
``"labels": {"background": 0, "kidney": [1, 2], "tumor": 2}`` and ``"regions_class_order": [1, 2]``.
The same holds for any number of regions each inside the previous one: KiTS21/23's
kidney_and_mass ⊃ mass ⊃ tumor, BraTS' whole tumor ⊃ tumor core ⊃ enhancing tumor, or a single
region. :func:`nested_regions` checks a dataset.json for that shape.
"""
from typing import Sequence, Tuple, Union

from nnunet_boundary.errors import NnUNetBoundaryError

Region = Union[int, Tuple[int, ...]]

#: nnU-Net's dataset.json for KiTS19 CT with the two regions (``numTraining`` and descriptive keys added by callers)
KITS19_DATASET_JSON = {
    "channel_names": {"0": "CT"},
    "labels": {"background": 0, "kidney": [1, 2], "tumor": 2},
    "regions_class_order": [1, 2],
    "file_ending": ".nii.gz",
}

#: the same for KiTS21/KiTS23 (labels 1 kidney, 2 tumor, 3 cyst) with the three official nested regions
#: ("hierarchical evaluation classes"), named as the official evaluation code names them
KITS23_DATASET_JSON = {
    "channel_names": {"0": "CT"},
    "labels": {"background": 0, "kidney_and_mass": [1, 2, 3], "mass": [2, 3], "tumor": 2},
    "regions_class_order": [1, 3, 2],
    "file_ending": ".nii.gz",
}

EXAMPLE = ('"labels": {"background": 0, "kidney": [1, 2], "tumor": 2}, "regions_class_order": [1, 2] '
           '(KiTS23: "labels": {"background": 0, "kidney_and_mass": [1, 2, 3], "mass": [2, 3], "tumor": 2}, '
           '"regions_class_order": [1, 3, 2])')


def _as_set(region) -> set:
    return set(region) if isinstance(region, (list, tuple)) else {region}


def _as_key(region) -> Region:
    """A region as nnU-Net's label manager keys it (lists become tuples)."""
    return tuple(region) if isinstance(region, list) else region


def nested_regions(dataset_json: dict, source: str = 'dataset.json') -> Tuple[Region, ...]:
    """Check that ``dataset_json`` declares region-based training on nested regions, each strictly
    inside the previous one, with a ``regions_class_order`` that matches the nesting, and return the
    regions outermost first as nnU-Net keys them (lists become tuples).

    :raises NnUNetBoundaryError: naming what is wrong and showing the expected declaration.
    """
    labels = dataset_json.get('labels')
    if not isinstance(labels, dict) or labels.get('background') != 0:
        raise NnUNetBoundaryError(f"{source}: 'labels' must map 'background' to 0; expected {EXAMPLE}")
    names = [k for k in labels if k not in ('background', 'ignore')]  # 'ignore' is refused by checks.dataset_integrity
    regions = [labels[k] for k in names]
    if not regions:
        raise NnUNetBoundaryError(f"{source}: no foreground region declared; expected {EXAMPLE}")
    if not isinstance(regions[0], (list, tuple)):
        raise NnUNetBoundaryError(
            f"{source}: the boundary-aware network trains on regions (nnU-Net's region-based training), so the "
            f"first, outermost region must be a list of labels, got {names[0]!r}: {regions[0]!r}; expected {EXAMPLE}")
    for (outer_name, outer), (inner_name, inner) in zip(zip(names, regions), zip(names[1:], regions[1:])):
        if not _as_set(inner) < _as_set(outer):
            raise NnUNetBoundaryError(
                f"{source}: region {inner_name!r} {inner!r} must lie strictly inside the region before it, "
                f"{outer_name!r} {outer!r}: the boundary-aware network needs nested regions, outermost first; "
                f"expected {EXAMPLE}")
    order = dataset_json.get('regions_class_order')
    if not isinstance(order, (list, tuple)) or len(order) != len(regions):
        raise NnUNetBoundaryError(f"{source}: 'regions_class_order' with {len(regions)} entries (one per region) is "
                                  f"required for region-based training, got {order!r}; expected {EXAMPLE}")
    require_order_matches_nesting(order, regions, source)
    return tuple(_as_key(r) for r in regions)


def require_order_matches_nesting(order: Sequence[int], regions: Sequence, source: str = 'dataset.json') -> None:
    """nnU-Net turns region outputs back into a label map by writing ``order[i]`` wherever region i is
    predicted, later regions over earlier ones. With regions nested outermost first, ``order[i]`` must
    be a label of region i that is not in region i + 1 (the label the voxels of region i keep when
    the next region does not claim them); any other order swaps labels silently.

    The label must also be the *only* such label, or voxels of the others come back as ``order[i]``."""
    for i, (label, region) in enumerate(zip(order, regions)):
        own = _own_labels(regions, i)
        if label not in own or len(own) > 1:
            wanted = [sorted(_own_labels(regions, j))[0] for j in range(len(regions))]
            problem = (f"region {region!r} has several labels {sorted(own)} outside the next region, so nnU-Net "
                       f"cannot give each back its label" if len(own) > 1 else
                       f"entry {i} ({label}) must be the label of region {region!r} outside the next region")
            raise NnUNetBoundaryError(
                f"{source}: 'regions_class_order' {list(order)} does not match the nesting of the regions "
                f"{list(regions)}: {problem}; predicted labels would come out swapped or merged."
                + (f" Use \"regions_class_order\": {wanted}" if len(own) == 1 else ''))


def _own_labels(regions: Sequence, i: int) -> set:
    """Labels of region i that the next region does not contain."""
    return _as_set(regions[i]) - (_as_set(regions[i + 1]) if i + 1 < len(regions) else set())
