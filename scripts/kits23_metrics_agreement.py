#!/usr/bin/env python
"""Agreement of ``nnunet_boundary_evaluate --kits23`` with the official KiTS23 metrics on real label maps.

Reads real KiTS23 ground truth (``DATASET/case_XXXXX/segmentation.nii.gz``, by default
``../shared/kits23/dataset``; nothing is copied into the repository), crops each case to its foreground
with a margin (spacing and direction kept), builds perturbed "predictions" (erosion, dilation, one-voxel
shifts, label swaps, removed tumor, boundary noise, an empty map, a reference without tumor) and writes
both as NIfTI files to a temporary folder. Each pair is scored by our
:func:`~nnunet_boundary.kits19.metrics.evaluate_folders` (``KITS23_CHALLENGE``: reads the folders and
computes every metric, as the CLI does) and by a transcription of the official per-case function below;
the script reports the largest absolute difference per region and metric (Dice and Surface Dice) and
writes it to ``--out`` with the commit it ran at and the command. Example::

    python scripts/kits23_metrics_agreement.py   # 12 cases x 11 perturbations, a few minutes on 2 cores
"""
import argparse
import hashlib
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Tuple

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import binary_dilation, binary_erosion, find_objects
from surface_distance import compute_surface_dice_at_tolerance, compute_surface_distances

from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.kits19 import metrics as metrics_module
from nnunet_boundary.kits19.metrics import KITS23_CHALLENGE, evaluate_folders, surface_voxels

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-6

# --- Transcription of the official metrics -------------------------------------------------------------------
# github.com/neheller/kits23 at commit dc69ce0e6e8ff669b49e5d0ad9c82b1918a0ad8c:
# kits23/evaluation/metrics.py (compute_metrics_for_case, compute_metrics_for_label), kits23/evaluation/dice.py
# (dice), kits23/evaluation/generate_bool_masks_for_hec.py (construct_HEC_from_segmentation); the regions and
# tolerances are KITS_HEC_LABEL_MAPPING and HEC_SD_TOLERANCES_MM of kits23/configuration/labels.py at commit
# 2b0905033291b9b0ae23eaf636ca218cd76451f8. Same statements in the same order, leaving out the shape assert
# (always true as written there: it tests non-empty lists) and the print when the two spacings differ; the
# official package is not imported (it is not a dependency).
OFFICIAL_SOURCE = {'repository': 'https://github.com/neheller/kits23',
                   'commit': 'dc69ce0e6e8ff669b49e5d0ad9c82b1918a0ad8c',
                   'files': ['kits23/evaluation/metrics.py', 'kits23/evaluation/dice.py',
                             'kits23/evaluation/generate_bool_masks_for_hec.py'],
                   'labels_commit': '2b0905033291b9b0ae23eaf636ca218cd76451f8 (kits23/configuration/labels.py)'}
HEC_LABELS = {'kidney_and_mass': (1, 2, 3), 'mass': (2, 3), 'tumor': (2,)}
HEC_SD_TOLERANCES_MM = {'kidney_and_mass': 1.0330772532390826, 'mass': 1.1328796488598762,
                        'tumor': 1.1498198361434828}


def official_hec_mask(segmentation: np.ndarray, labels: Tuple[int, ...]) -> np.ndarray:
    """construct_HEC_from_segmentation."""
    if len(labels) == 1:
        return segmentation == labels[0]
    mask = np.zeros(segmentation.shape, dtype=bool)
    for label in labels:
        mask[segmentation == label] = True
    return mask


def official_dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """dice (both empty gives NaN there, a case compute_metrics_for_label never passes on)."""
    intersection = np.count_nonzero(prediction & reference)
    numel_pred, numel_ref = np.count_nonzero(prediction), np.count_nonzero(reference)
    if numel_ref == 0 and numel_pred == 0:
        return np.nan
    return 2 * intersection / (numel_ref + numel_pred)


def official_metrics_for_label(predicted: np.ndarray, reference: np.ndarray, labels: Tuple[int, ...],
                               spacing: Tuple[float, ...], sd_tolerance_mm: float) -> Tuple[float, float]:
    """compute_metrics_for_label: (Dice, Surface Dice)."""
    mask_pred, mask_gt = official_hec_mask(predicted, labels), official_hec_mask(reference, labels)
    gt_empty, pred_empty = np.count_nonzero(mask_gt) == 0, np.count_nonzero(mask_pred) == 0
    if gt_empty and pred_empty:
        return 1, 1
    if gt_empty or pred_empty:
        return 0, 0
    dc = official_dice(mask_pred, mask_gt)
    dist = compute_surface_distances(mask_gt, mask_pred, spacing)
    return dc, compute_surface_dice_at_tolerance(dist, tolerance_mm=sd_tolerance_mm)


def official_metrics_for_case(fname_pred: Path, fname_ref: Path) -> Dict[str, Tuple[float, float]]:
    """compute_metrics_for_case, by region name instead of a 3 x 2 array: the prediction's spacing, reversed."""
    img_pred, img_ref = sitk.ReadImage(str(fname_pred)), sitk.ReadImage(str(fname_ref))
    spacing_pred = list(img_pred.GetSpacing())[::-1]
    pred, ref = sitk.GetArrayFromImage(img_pred), sitk.GetArrayFromImage(img_ref)
    return {hec: official_metrics_for_label(pred, ref, labels, tuple(spacing_pred), HEC_SD_TOLERANCES_MM[hec])
            for hec, labels in HEC_LABELS.items()}
# --- end of the transcription ---------------------------------------------------------------------------------


def _roll(labels: np.ndarray, shift: Dict[int, int]) -> np.ndarray:
    return np.roll(labels, tuple(shift.values()), axis=tuple(shift))


def perturbations(slice_axis: int, seed: int) -> Dict[str, Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]]:
    """Name -> (ground truth -> (prediction, reference)). The crop margin keeps shifted voxels inside the crop
    unless the foreground touches the image border (then ``np.roll`` wraps them: an odd prediction, still valid)."""
    in_plane = [a for a in range(3) if a != slice_axis]

    def boundary_noise(a):
        surface = surface_voxels(a > 0)
        return np.where(surface & (np.random.default_rng(seed).random(a.shape) < 0.5), 0, a).astype(a.dtype)

    def no_tumor_in_either(a):
        reference = np.where(a == 2, 1, a).astype(a.dtype)
        return _roll(reference, {in_plane[0]: 1}), reference

    return {
        'identical': lambda a: (a, a),
        'foreground_eroded_1_voxel': lambda a: (np.where(binary_erosion(a > 0), a, 0).astype(a.dtype), a),
        'tumor_dilated_2_voxels': lambda a: (np.where(binary_dilation(a == 2, iterations=2), 2, a).astype(a.dtype), a),
        'shifted_1_slice': lambda a: (_roll(a, {slice_axis: 1}), a),
        'shifted_2_1_voxels_in_plane': lambda a: (_roll(a, {in_plane[0]: 2, in_plane[1]: -1}), a),
        'tumor_and_cyst_swapped': lambda a: (np.choose(a, [0, 1, 3, 2]).astype(a.dtype), a),
        'tumor_removed': lambda a: (np.where(a == 2, 1, a).astype(a.dtype), a),
        'cysts_as_kidney': lambda a: (np.where(a == 3, 1, a).astype(a.dtype), a),
        'boundary_noise': lambda a: (boundary_noise(a), a),
        'empty_prediction': lambda a: (np.zeros_like(a), a),
        'no_tumor_in_either': no_tumor_in_either,
    }


def cropped_ground_truth(path: Path, margin: int) -> sitk.Image:
    """The label map cropped to its foreground bounding box plus ``margin`` voxels (spacing and direction kept)."""
    image = sitk.ReadImage(str(path))
    box = find_objects((sitk.GetArrayViewFromImage(image) > 0).astype(np.uint8))[0]
    box = tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(box, image.GetSize()[::-1]))
    return image[box[::-1]]  # SimpleITK indexes x, y, z


def as_image(labels: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(like)
    return image


def write_pairs(case_paths: Dict[str, Path], margin: int, work: Path) -> int:
    """Write every (prediction, reference) pair: ``work/<perturbation>/{gt/<case>/segmentation.nii.gz,
    pred/<case>.nii.gz}``. Returns the number of pairs."""
    pairs = 0
    for index, (case, path) in enumerate(case_paths.items()):
        gt = cropped_ground_truth(path, margin)
        labels = sitk.GetArrayFromImage(gt)
        slice_axis = int(np.argmax(gt.GetSpacing()[::-1]))
        for name, perturb in perturbations(slice_axis, seed=index).items():
            pred, reference = perturb(labels)
            (work / name / 'gt' / case).mkdir(parents=True, exist_ok=True)
            (work / name / 'pred').mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(as_image(reference, gt), str(work / name / 'gt' / case / 'segmentation.nii.gz'), True)
            sitk.WriteImage(as_image(pred, gt), str(work / name / 'pred' / f'{case}.nii.gz'), True)
            pairs += 1
        print(f'{case}: crop {labels.shape}, spacing {np.round(gt.GetSpacing()[::-1], 3).tolist()} mm', flush=True)
    return pairs


def emptiness(pred: np.ndarray, reference: np.ndarray, labels: Tuple[int, ...]) -> str:
    """Which of the official branches a region takes: both masks present, one empty, both empty."""
    present = [np.isin(a, labels).any() for a in (pred, reference)]
    return 'both_present' if all(present) else 'one_empty' if any(present) else 'both_empty'


def compare(work: Path) -> dict:
    """Our metrics against the transcription, per perturbation and case; differences per region and metric."""
    differences = {f'{hec}_{m}': 0.0 for hec in HEC_LABELS for m in ('dice', 'surface_dice')}
    by_perturbation, regions_by_emptiness = {}, {'both_present': 0, 'one_empty': 0, 'both_empty': 0}
    for perturbation_dir in sorted(p for p in work.iterdir() if p.is_dir()):
        ours = evaluate_folders(perturbation_dir / 'pred', perturbation_dir / 'gt',
                                challenge=KITS23_CHALLENGE)['per_case']
        official_means = {k: [] for k in differences}
        for case, metrics in ours.items():
            pred_file = perturbation_dir / 'pred' / f'{case}.nii.gz'
            ref_file = perturbation_dir / 'gt' / case / 'segmentation.nii.gz'
            pred, reference = (sitk.GetArrayFromImage(sitk.ReadImage(str(f))) for f in (pred_file, ref_file))
            for hec, (dc, sd) in official_metrics_for_case(pred_file, ref_file).items():
                for metric, value in ((f'{hec}_dice', dc), (f'{hec}_surface_dice', sd)):
                    differences[metric] = max(differences[metric], abs(metrics[metric] - float(value)))
                    official_means[metric].append(float(value))
                regions_by_emptiness[emptiness(pred, reference, HEC_LABELS[hec])] += 1
        by_perturbation[perturbation_dir.name] = {k: round(float(np.mean(v)), 4) for k, v in official_means.items()}
        print(f"{perturbation_dir.name:<30} max |ours - official| so far {max(differences.values()):.2e}", flush=True)
    return {'max_abs_difference': differences, 'region_evaluations_by_emptiness': regions_by_emptiness,
            'official_mean_by_perturbation': by_perturbation}


def git_state() -> dict:
    """The commit, whether the working tree differs from it, and the hash of the metrics module that ran."""
    def git(*args):
        return subprocess.run(['git', *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {'commit': git('rev-parse', 'HEAD'), 'uncommitted_changes': git('status', '--porcelain') != '',
            'metrics_module_sha256': hashlib.sha256(Path(metrics_module.__file__).read_bytes()).hexdigest()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', type=Path, default=REPO.parent / 'shared' / 'kits23' / 'dataset',
                        help='folder of case_XXXXX/segmentation.nii.gz (default ../shared/kits23/dataset)')
    parser.add_argument('--cases', type=int, default=12, help='number of cases, evenly spaced by case id (default 12)')
    parser.add_argument('--margin', type=int, default=10, help='voxels kept around the foreground (default 10)')
    parser.add_argument('--out', type=Path, default=REPO / 'benchmarks' / 'kits23_metrics_agreement' / 'agreement.json')
    args = parser.parse_args(argv)
    available = sorted(args.dataset.glob('case_*/segmentation.nii.gz'))
    if not available:
        sys.exit(f'error: no case_*/segmentation.nii.gz in {args.dataset}; pass the KiTS23 dataset folder')
    chosen = [available[i] for i in np.unique(np.linspace(0, len(available) - 1, args.cases).round().astype(int))]
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = write_pairs({p.parent.name: p for p in chosen}, args.margin, Path(tmp))
        result = compare(Path(tmp))
    worst = max(result['max_abs_difference'].values())
    report = {'max_abs_difference_overall': worst, 'tolerance': TOLERANCE, 'agrees': worst <= TOLERANCE,
              'case_perturbations': pairs, 'cases': [p.parent.name for p in chosen],
              'perturbations': list(perturbations(0, 0)), **result, 'official_source': OFFICIAL_SOURCE,
              **git_state(), 'command': shlex.join(['python', *sys.argv]), 'seconds': round(time.time() - start)}
    write_json_atomically(report, args.out)
    for metric, value in result['max_abs_difference'].items():
        print(f'{metric:<30} max |ours - official| = {value:.3e}')
    print(f"{pairs} case-perturbations, overall max difference {worst:.3e} "
          f"({'within' if report['agrees'] else 'ABOVE'} {TOLERANCE:g}); written to {args.out}")


if __name__ == '__main__':
    main()
