"""The two nested regions the boundary-aware network predicts (KiTS19: kidney+tumor, tumor).

Myronenko & Hatamizadeh (2019, §3.1) predict two sigmoid channels, region "kidney and tumor"
and region "tumor", i.e. nnU-Net's region-based training with
``"labels": {"background": 0, "kidney": [1, 2], "tumor": 2}`` and
``"regions_class_order": [1, 2]``.
"""
from typing import Tuple, Union

from nnunet_boundary.errors import NnUNetBoundaryError

Region = Union[int, Tuple[int, ...]]

#: nnU-Net's dataset.json for KiTS19 CT with the two regions (``numTraining`` and descriptive keys added by callers)
KITS19_DATASET_JSON = {
    "channel_names": {"0": "CT"},
    "labels": {"background": 0, "kidney": [1, 2], "tumor": 2},
    "regions_class_order": [1, 2],
    "file_ending": ".nii.gz",
}

EXAMPLE = ('"labels": {"background": 0, "kidney": [1, 2], "tumor": 2}, "regions_class_order": [1, 2]')


def _as_set(region) -> set:
    return set(region) if isinstance(region, (list, tuple)) else {region}


def kidney_tumor_regions(dataset_json: dict, source: str = 'dataset.json') -> Tuple[Region, Region]:
    """Check that ``dataset_json`` declares two nested regions and return them as nnU-Net keys them
    (lists become tuples): ``(foreground_region, tumor_region)``.

    :raises NnUNetBoundaryError: naming what is missing and showing the expected declaration.
    """
    labels = dataset_json.get('labels')
    if not isinstance(labels, dict) or labels.get('background') != 0:
        raise NnUNetBoundaryError(f"{source}: 'labels' must map 'background' to 0; expected {EXAMPLE}")
    regions = [v for k, v in labels.items() if k not in ('background', 'ignore')]
    if len(regions) != 2:
        kits23 = (" Three nested regions (KiTS21/23: kidney and masses, masses, tumor) are not supported yet; "
                  "to train on such data now, relabel cysts (3) as kidney (1) in every label map and declare the "
                  "two KiTS19 regions, which gives up the cyst class.") if len(regions) > 2 else ''
        raise NnUNetBoundaryError(
            f"{source}: the boundary-aware network predicts exactly two regions (kidney+tumor, tumor), "
            f"found {len(regions)} foreground entries {regions}; expected {EXAMPLE}.{kits23}")
    outer, inner = regions
    if not (isinstance(outer, (list, tuple)) and len(set(outer)) > 1):
        raise NnUNetBoundaryError(f"{source}: the first region must combine several labels (kidney+tumor), "
                                  f"got {outer!r}; expected {EXAMPLE}")
    if not _as_set(inner) < _as_set(outer):
        raise NnUNetBoundaryError(f"{source}: the second region {inner!r} must lie inside the first {outer!r} "
                                  f"(tumor inside kidney+tumor); expected {EXAMPLE}")
    order = dataset_json.get('regions_class_order')
    if not isinstance(order, (list, tuple)) or len(order) != 2:
        raise NnUNetBoundaryError(f"{source}: 'regions_class_order' with two entries is required for "
                                  f"region-based training, got {order!r}; expected {EXAMPLE}")
    require_order_matches_nesting(order, [outer, inner], source)
    as_key = lambda r: tuple(r) if isinstance(r, list) else r
    return as_key(outer), as_key(inner)


def require_order_matches_nesting(order, regions, source: str = 'dataset.json') -> None:
    """nnU-Net turns region outputs back into a label map by writing ``order[i]`` wherever region i is
    predicted, later regions over earlier ones. With regions nested outermost first, ``order[i]`` must
    be a label of region i that is not in region i + 1 (the label the voxels of region i keep when
    the next region does not claim them); any other order swaps labels silently."""
    for i, (label, region) in enumerate(zip(order, regions)):
        inner = _as_set(regions[i + 1]) if i + 1 < len(regions) else set()
        if label not in _as_set(region) or label in inner:
            wanted = [sorted(_as_set(r) - (_as_set(regions[j + 1]) if j + 1 < len(regions) else set()))[0]
                      for j, r in enumerate(regions)]
            raise NnUNetBoundaryError(
                f"{source}: 'regions_class_order' {list(order)} does not match the nesting of the regions "
                f"{list(regions)}: entry {i} ({label}) must be a label of region {region!r} outside the next region; "
                f"predicted labels would come out swapped. Use \"regions_class_order\": {wanted}")
