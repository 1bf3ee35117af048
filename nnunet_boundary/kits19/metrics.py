"""KiTS19 evaluation: Dice of the kidney and tumor regions, surface Dice (NSD) and HD95.

Regions follow the KiTS19 challenge (Heller et al., arXiv:1904.00445): *kidney* is labels
1+2 (kidney and tumor), *tumor* is label 2; the challenge ranked by the composite score, the
mean of the two Dice values. Surface metrics use the voxels on each region's surface (voxels of
the region with a 6-neighbour outside it) and Euclidean distance transforms in mm
(``scipy.ndimage.distance_transform_edt`` with the voxel spacing):

* NSD, the normalised surface Dice of Nikolov et al. 2018 (arXiv:1809.04430): the fraction of
  both surfaces lying within ``tolerance_mm`` of the other surface, counted over surface voxels
  (the voxel approximation of their surfel areas).
* HD95: the larger of the two directed 95th-percentile surface distances, in mm.

Empty regions: both empty gives Dice 1, NSD 1, HD95 0 (perfect agreement); exactly one empty
gives Dice 0, NSD 0 and HD95 equal to the image diagonal in mm (the largest distance possible
in that image), so that every value is finite and means over cases stay defined.
"""
import csv
import math
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure

from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.kits19.io import KiTS19Error, find_segmentations, geometry_mismatch, read_label_map

METRICS = ('kidney_dice', 'tumor_dice', 'composite_dice', 'kidney_nsd', 'tumor_nsd', 'kidney_hd95', 'tumor_hd95')
REGIONS = {'kidney': lambda labels: labels > 0, 'tumor': lambda labels: labels == 2}


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; 1 when both are empty."""
    total = int(pred.sum()) + int(gt.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred, gt).sum()) / total


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


def case_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], tolerance_mm: float = 2.0) -> Dict[str, float]:
    """The KiTS19 metrics of one case: label arrays (0/1/2) of one shape, ``spacing`` in mm per axis."""
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {pred.shape} differs from ground truth {gt.shape}')
    result = {}
    for name, region in REGIONS.items():
        for metric, value in region_metrics(region(pred), region(gt), spacing, tolerance_mm).items():
            result[f'{name}_{metric}'] = value
    result['composite_dice'] = (result['kidney_dice'] + result['tumor_dice']) / 2
    return {m: result[m] for m in METRICS}


def evaluate_folders(pred_dir: Path, gt_dir: Path, tolerance_mm: float = 2.0,
                     log: Optional[Callable[[str], None]] = None) -> dict:
    """Evaluate every prediction in ``pred_dir`` against the same case in ``gt_dir``.

    Both folders may use the nnU-Net layout (``<case>.nii.gz``) or the KiTS19 layout
    (``case_XXXXX/segmentation.nii.gz``). Returns ``{"per_case": {case: {metric: value}},
    "mean": {metric: value}, "tolerance_mm": ..., "gt_without_prediction": [...]}``.
    """
    predictions, references = find_segmentations(Path(pred_dir)), find_segmentations(Path(gt_dir))
    unmatched = [c for c in predictions if c not in references]
    if unmatched:
        raise KiTS19Error(f"no ground truth in {gt_dir} for prediction(s) {', '.join(unmatched[:5])}; "
                          f"check that PRED_DIR and GT_DIR hold the same cases")
    per_case = {}
    for i, (case, pred_path) in enumerate(predictions.items(), 1):
        pred, gt = read_label_map(pred_path, case), read_label_map(references[case], case)
        mismatch = geometry_mismatch(pred, gt)
        if mismatch:
            raise KiTS19Error(f'{case}: prediction {pred_path} and ground truth {references[case]} differ in '
                              f'{mismatch}; predictions must be on the ground-truth grid')
        per_case[case] = case_metrics(sitk.GetArrayFromImage(pred), sitk.GetArrayFromImage(gt),
                                      gt.GetSpacing()[::-1], tolerance_mm)
        if log:
            log(f'[{i}/{len(predictions)}] {case}: composite Dice {per_case[case]["composite_dice"]:.4f}')
    mean = {m: float(np.mean([v[m] for v in per_case.values()])) for m in METRICS}
    return {'per_case': per_case, 'mean': mean, 'tolerance_mm': tolerance_mm,
            'gt_without_prediction': sorted(set(references) - set(predictions))}


def format_table(results: dict) -> str:
    """Plain-text table of the per-case and mean metrics."""
    header = f"{'case':<14}" + ''.join(f'{m:>15}' for m in METRICS)
    rows = [f'{case:<14}' + ''.join(f'{v[m]:>15.4f}' for m in METRICS) for case, v in results['per_case'].items()]
    rows.append(f"{'mean':<14}" + ''.join(f"{results['mean'][m]:>15.4f}" for m in METRICS))
    return '\n'.join([header, '-' * len(header)] + rows)


def write_csv(results: dict, path: Path) -> None:
    """One row per case and a final ``mean`` row."""
    with atomic_output(Path(path)) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(('case',) + METRICS)
        for case, values in list(results['per_case'].items()) + [('mean', results['mean'])]:
            writer.writerow([case] + [f'{values[m]:.6g}' for m in METRICS])
