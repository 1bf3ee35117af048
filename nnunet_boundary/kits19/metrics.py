"""KiTS evaluation: Dice, surface Dice and HD95 of the challenge's nested regions.

A :class:`Challenge` holds its regions, each a set of labels evaluated as one boolean mask, the means over
its regions it ranks by, and the reader that checks its label values:

* KiTS19 (Heller et al., arXiv:1904.00445): *kidney* is labels 1+2 (kidney and tumor), *tumor* is label 2;
  the challenge ranked by the composite score, the mean of the two Dice values.
* KiTS21/KiTS23: labels 1 kidney, 2 tumor, 3 cyst and three nested "hierarchical evaluation classes"
  named as the official code names them, *kidney_and_mass* {1, 2, 3}, *mass* {2, 3} and *tumor* {2}
  (``KITS_HEC_LABEL_MAPPING`` in ``kits23/configuration/labels.py`` of github.com/neheller/kits23 at
  commit 2b0905033291b9b0ae23eaf636ca218cd76451f8), each with Dice and Surface Dice at the region's own
  tolerance (``HEC_SD_TOLERANCES_MM``, same file). The challenge ranks by their means over the three
  regions (``rank_participants`` in ``kits23/evaluation/ranking.py``, commit 091bf168d17596ba5380d28162eca66357f81c62).

Every region gets:

* Dice; both masks empty gives 1, exactly one empty gives 0 (as ``compute_metrics_for_label`` does).
* Surface Dice, only for regions with an official tolerance (KiTS23): exactly as the official
  ``compute_metrics_for_label`` in ``kits23/evaluation/metrics.py`` (commit
  dc69ce0e6e8ff669b49e5d0ad9c82b1918a0ad8c): DeepMind's ``surface_distance.compute_surface_distances``
  (ground truth first) and ``compute_surface_dice_at_tolerance``, surfels weighted by their area; both
  empty gives 1, exactly one empty 0. The official code takes the prediction's spacing; we require both
  grids to agree and use the ground truth's. ``scripts/kits23_metrics_agreement.py`` checks the
  agreement on real KiTS23 masks.
* NSD, the normalised surface Dice of Nikolov et al. 2018 (arXiv:1809.04430) at ``tolerance_mm``
  (default 2 mm): the fraction of both surfaces lying within the tolerance of the other surface, counted
  over surface voxels (the voxel approximation of their surfel areas).
* HD95: the larger of the two directed 95th-percentile surface distances, in mm.

NSD and HD95 use the voxels on each region's surface (voxels of the region with a 6-neighbour outside
it) and Euclidean distance transforms in mm (``scipy.ndimage.distance_transform_edt`` with the voxel
spacing). Empty regions: both empty gives NSD 1, HD95 0 (perfect agreement); exactly one empty gives
NSD 0 and HD95 equal to the image diagonal in mm (the largest distance possible in that image), so that
every value is finite and means over cases stay defined.
"""
import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure
from surface_distance import compute_surface_dice_at_tolerance, compute_surface_distances

from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.kits19.io import (KITS19, KITS23, KiTS19Error, KiTSEdition, find_segmentations,
                                       geometry_mismatch, read_label_map)

#: per-region metrics in the order the outputs list them (each followed by the challenge's mean of it, if any)
METRIC_KINDS = ('dice', 'surface_dice', 'nsd', 'hd95')


@dataclass(frozen=True)
class Region:
    """The voxels holding any of ``labels``, evaluated as one boolean mask."""
    name: str
    labels: Tuple[int, ...]
    surface_dice_tolerance_mm: Optional[float] = None  # the official (KiTS23) Surface Dice at this tolerance

    def mask(self, label_map: np.ndarray) -> np.ndarray:
        return np.isin(label_map, self.labels)

    @property
    def kinds(self) -> Tuple[str, ...]:
        return tuple(k for k in METRIC_KINDS if k != 'surface_dice' or self.surface_dice_tolerance_mm is not None)


@dataclass(frozen=True)
class Challenge:
    """A challenge's regions, the means over its regions it ranks by (``{kind: metric name}``) and its
    edition, whose labels the label maps must hold (:func:`~nnunet_boundary.kits19.io.read_label_map`)."""
    regions: Tuple[Region, ...]
    region_means: Dict[str, str]
    edition: KiTSEdition

    @property
    def metrics(self) -> Tuple[str, ...]:
        names = []
        for kind in METRIC_KINDS:
            names += [f'{r.name}_{kind}' for r in self.regions if kind in r.kinds]
            names += [self.region_means[kind]] if kind in self.region_means else []
        return tuple(names)


KITS19_CHALLENGE = Challenge((Region('kidney', (1, 2)), Region('tumor', (2,))), {'dice': 'composite_dice'}, KITS19)
#: regions and tolerances of kits23/configuration/labels.py (see the module doc)
KITS23_CHALLENGE = Challenge((Region('kidney_and_mass', (1, 2, 3), 1.0330772532390826),
                              Region('mass', (2, 3), 1.1328796488598762),
                              Region('tumor', (2,), 1.1498198361434828)),
                             {'dice': 'mean_dice', 'surface_dice': 'mean_surface_dice'}, KITS23)
METRICS = KITS19_CHALLENGE.metrics


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; 1 when both are empty."""
    total = int(pred.sum()) + int(gt.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred, gt).sum()) / total


def surface_dice(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], tolerance_mm: float) -> float:
    """The official KiTS23 Surface Dice of two boolean masks (``compute_metrics_for_label``, module doc)."""
    pred_empty, gt_empty = not pred.any(), not gt.any()
    if pred_empty or gt_empty:
        return 1.0 if pred_empty and gt_empty else 0.0
    distances = compute_surface_distances(gt, pred, tuple(spacing))
    return float(compute_surface_dice_at_tolerance(distances, tolerance_mm))


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """The voxels of ``mask`` with a face neighbour (6-connectivity in 3D) outside it; the image border counts
    as outside."""
    return mask & ~binary_erosion(mask, generate_binary_structure(mask.ndim, 1), border_value=0)


def surface_distances(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]):
    """Distances (mm) from each surface voxel of ``pred`` to ``gt``'s surface, and back.

    Both masks must be non-empty. Computed on their joint bounding box, which holds both
    surfaces, so the distances are exact.
    """
    union = pred | gt
    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in np.nonzero(union))
    pred_surface, gt_surface = surface_voxels(pred[box]), surface_voxels(gt[box])
    to_gt = distance_transform_edt(~gt_surface, sampling=spacing)
    to_pred = distance_transform_edt(~pred_surface, sampling=spacing)
    return to_gt[pred_surface], to_pred[gt_surface]


def region_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], tolerance_mm: float) -> Dict[str, float]:
    """Dice, NSD at ``tolerance_mm`` and HD95 (mm) of two boolean masks (conventions in the module doc)."""
    values = {'dice': dice(pred, gt)}
    pred_empty, gt_empty = not pred.any(), not gt.any()
    if pred_empty and gt_empty:
        values.update(nsd=1.0, hd95=0.0)
    elif pred_empty or gt_empty:
        values.update(nsd=0.0, hd95=float(math.hypot(*(n * s for n, s in zip(gt.shape, spacing)))))
    else:
        pred_to_gt, gt_to_pred = surface_distances(pred, gt, spacing)
        within = int((pred_to_gt <= tolerance_mm).sum()) + int((gt_to_pred <= tolerance_mm).sum())
        values.update(nsd=within / (pred_to_gt.size + gt_to_pred.size),
                      hd95=float(max(np.percentile(pred_to_gt, 95), np.percentile(gt_to_pred, 95))))
    return values


def far_volume_ml(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], distance_mm: float) -> float:
    """The volume (mL) of boolean mask ``pred`` lying farther than ``distance_mm`` from every voxel of ``gt``:
    false positives in far tissue, which Dice and HD95 mix up with errors at the boundary. All of ``pred``
    when ``gt`` is empty."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    if not gt.any():
        return int(pred.sum()) * voxel_ml
    far = distance_transform_edt(~gt, sampling=spacing) > distance_mm
    return int((pred & far).sum()) * voxel_ml


def case_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], tolerance_mm: float = 2.0,
                 challenge: Challenge = KITS19_CHALLENGE) -> Dict[str, float]:
    """The metrics of one case in ``challenge.metrics`` order: label arrays of one shape, ``spacing`` in mm per
    axis, ``tolerance_mm`` the NSD tolerance."""
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {pred.shape} differs from ground truth {gt.shape}')
    result = {}
    for region in challenge.regions:
        pred_mask, gt_mask = region.mask(pred), region.mask(gt)
        values = region_metrics(pred_mask, gt_mask, spacing, tolerance_mm)
        if region.surface_dice_tolerance_mm is not None:
            values['surface_dice'] = surface_dice(pred_mask, gt_mask, spacing, region.surface_dice_tolerance_mm)
        result.update({f'{region.name}_{kind}': value for kind, value in values.items()})
    for kind, name in challenge.region_means.items():
        values = [result[f'{r.name}_{kind}'] for r in challenge.regions]
        result[name] = sum(values) / len(values)
    return {m: result[m] for m in challenge.metrics}


def evaluate_folders(pred_dir: Path, gt_dir: Path, tolerance_mm: float = 2.0,
                     log: Optional[Callable[[str], None]] = None, challenge: Challenge = KITS19_CHALLENGE) -> dict:
    """Evaluate every prediction in ``pred_dir`` against the same case in ``gt_dir``.

    Both folders may use the nnU-Net layout (``<case>.nii.gz``) or the KiTS layout
    (``case_XXXXX/segmentation.nii.gz``). Returns ``{"per_case": {case: {metric: value}},
    "mean": {metric: value}, "tolerance_mm": ..., "gt_without_prediction": [...]}``, for KiTS23 also
    ``"surface_dice_tolerance_mm": {region: tolerance}``.
    """
    predictions, references = find_segmentations(Path(pred_dir)), find_segmentations(Path(gt_dir))
    unmatched = [c for c in predictions if c not in references]
    if unmatched:
        raise KiTS19Error(f"no ground truth in {gt_dir} for prediction(s) {', '.join(unmatched[:5])}; "
                          f"check that PRED_DIR and GT_DIR hold the same cases")
    per_case = {}
    for i, (case, pred_path) in enumerate(predictions.items(), 1):
        pred, gt = (read_label_map(path, case, challenge.edition) for path in (pred_path, references[case]))
        mismatch = geometry_mismatch(pred, gt)
        if mismatch:
            raise KiTS19Error(f'{case}: prediction {pred_path} and ground truth {references[case]} differ in '
                              f'{mismatch}; predictions must be on the ground-truth grid')
        per_case[case] = case_metrics(sitk.GetArrayFromImage(pred), sitk.GetArrayFromImage(gt),
                                      gt.GetSpacing()[::-1], tolerance_mm, challenge)
        if log:
            log(f'[{i}/{len(predictions)}] {case}: ' + ', '.join(
                f"{name.replace('_', ' ').replace('dice', 'Dice')} {per_case[case][name]:.4f}"
                for name in challenge.region_means.values()))
    mean = {m: float(np.mean([v[m] for v in per_case.values()])) for m in challenge.metrics}
    tolerances = {r.name: r.surface_dice_tolerance_mm for r in challenge.regions
                  if r.surface_dice_tolerance_mm is not None}
    results = {'per_case': per_case, 'mean': mean, 'tolerance_mm': tolerance_mm,
               'gt_without_prediction': sorted(set(references) - set(predictions))}
    if tolerances:
        results['surface_dice_tolerance_mm'] = tolerances
    return results


def format_table(results: dict) -> str:
    """Plain-text table of the per-case and mean metrics."""
    widths = {m: max(15, len(m) + 1) for m in results['mean']}
    header = f"{'case':<14}" + ''.join(f'{m:>{w}}' for m, w in widths.items())
    rows = [f'{case:<14}' + ''.join(f'{values[m]:>{w}.4f}' for m, w in widths.items())
            for case, values in list(results['per_case'].items()) + [('mean', results['mean'])]]
    return '\n'.join([header, '-' * len(header)] + rows)


def write_csv(results: dict, path: Path) -> None:
    """One row per case and a final ``mean`` row."""
    metrics = tuple(results['mean'])
    with atomic_output(Path(path)) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(('case',) + metrics)
        for case, values in list(results['per_case'].items()) + [('mean', results['mean'])]:
            writer.writerow([case] + [f'{values[m]:.6g}' for m in metrics])
