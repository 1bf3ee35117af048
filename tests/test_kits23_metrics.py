"""KiTS23 metrics: the official regions, tolerances and empty-region conventions, on synthetic label maps.

The official Surface Dice (kits23/evaluation/metrics.py) is DeepMind's surface_distance at each region's
tolerance; the tests compute it directly with that package and compare.
"""
import csv
import json
import re

import numpy as np
import pytest
import SimpleITK as sitk
from surface_distance import compute_surface_dice_at_tolerance, compute_surface_distances

from nnunet_boundary.cli.evaluate import main
from nnunet_boundary.kits19.metrics import KITS19_CHALLENGE, KITS23_CHALLENGE, case_metrics, evaluate_folders
from kits_files import write_label_map

SHAPE = (14, 40, 40)
OFFICIAL_TOLERANCES_MM = {'kidney_and_mass': 1.0330772532390826, 'mass': 1.1328796488598762,
                          'tumor': 1.1498198361434828}


def box(labels, corner, side, value):
    labels[tuple(slice(c, c + s) for c, s in zip(corner, side))] = value
    return labels


def kits23_map(cyst=True):
    """Kidney box with a tumor box and (optionally) a separate cyst box inside it."""
    labels = box(np.zeros(SHAPE, np.uint8), (2, 8, 8), (10, 24, 24), 1)
    box(labels, (4, 10, 10), (5, 8, 8), 2)
    return box(labels, (4, 22, 22), (4, 6, 6), 3) if cyst else labels


def official_surface_dice(pred, gt, labels, spacing, tolerance_mm):
    mask_pred, mask_gt = np.isin(pred, labels), np.isin(gt, labels)
    return compute_surface_dice_at_tolerance(compute_surface_distances(mask_gt, mask_pred, spacing), tolerance_mm)


def test_regions_and_tolerances_are_the_official_ones():
    assert {r.name: r.labels for r in KITS23_CHALLENGE.regions} == {'kidney_and_mass': (1, 2, 3), 'mass': (2, 3),
                                                          'tumor': (2,)}
    assert {r.name: r.surface_dice_tolerance_mm for r in KITS23_CHALLENGE.regions} == OFFICIAL_TOLERANCES_MM
    assert {r.name: r.labels for r in KITS19_CHALLENGE.regions} == {'kidney': (1, 2), 'tumor': (2,)}


def test_cyst_counts_in_kidney_and_mass_and_mass_not_in_tumor():
    gt = kits23_map()
    tumor, cyst = 5 * 8 * 8, 4 * 6 * 6
    cyst_as_kidney = np.where(gt == 3, 1, gt)
    m = case_metrics(cyst_as_kidney, gt, (3.0, 0.8, 0.8), challenge=KITS23_CHALLENGE)
    assert (m['kidney_and_mass_dice'], m['tumor_dice']) == (1.0, 1.0)
    assert m['mass_dice'] == pytest.approx(2 * tumor / (2 * tumor + cyst))
    assert m['mean_dice'] == pytest.approx((2 + m['mass_dice']) / 3)
    swapped = np.choose(gt, [0, 1, 3, 2]).astype(np.uint8)  # tumor <-> cyst
    m = case_metrics(swapped, gt, (3.0, 0.8, 0.8), challenge=KITS23_CHALLENGE)
    assert (m['kidney_and_mass_dice'], m['mass_dice'], m['tumor_dice']) == (1.0, 1.0, 0.0)
    assert (m['kidney_and_mass_surface_dice'], m['mass_surface_dice']) == (1.0, 1.0)
    assert m['tumor_surface_dice'] < 0.3 and m['mean_surface_dice'] == pytest.approx((2 + m['tumor_surface_dice']) / 3)


@pytest.mark.parametrize('shift_spacing_mm, exact', [
    (1.14, {'tumor'}),  # between the mass (1.1329) and tumor (1.1498) tolerances
    (1.10, {'mass', 'tumor'}),  # between the kidney_and_mass (1.0331) and mass tolerances
    (1.00, {'kidney_and_mass', 'mass', 'tumor'}),
])
def test_each_region_uses_its_own_tolerance(shift_spacing_mm, exact):
    """A one-voxel shift along an axis of spacing s moves the surfaces by s: Surface Dice is 1 exactly in the
    regions whose tolerance is at least s, and equals surface_distance's value in every region."""
    spacing = (3.0, shift_spacing_mm, 0.8)
    gt = kits23_map()
    pred = np.roll(gt, 1, axis=1)
    m = case_metrics(pred, gt, spacing, challenge=KITS23_CHALLENGE)
    for region in KITS23_CHALLENGE.regions:
        official = official_surface_dice(pred, gt, region.labels, spacing, OFFICIAL_TOLERANCES_MM[region.name])
        assert m[f'{region.name}_surface_dice'] == pytest.approx(official, abs=1e-12)
        assert (m[f'{region.name}_surface_dice'] == 1.0) == (region.name in exact)


def test_surface_dice_agrees_with_surface_distance_on_irregular_masks():
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing='ij')
    gt = ((z - 7) ** 2 / 25 + (y - 20) ** 2 / 150 + (x - 20) ** 2 / 150 < 1).astype(np.uint8)
    gt[((z - 7) ** 2 / 9 + (y - 16) ** 2 / 30 + (x - 18) ** 2 / 40 < 1)] = 2
    gt[((z - 6) ** 2 / 4 + (y - 27) ** 2 / 10 + (x - 24) ** 2 / 10 < 1)] = 3
    pred = np.where(rng.random(SHAPE) < 0.1, np.roll(gt, (1, -2, 1), axis=(0, 1, 2)), gt)
    spacing = (2.5, 0.7, 0.9)
    m = case_metrics(pred, gt, spacing, challenge=KITS23_CHALLENGE)
    for region in KITS23_CHALLENGE.regions:
        p, g = np.isin(pred, region.labels), np.isin(gt, region.labels)
        assert m[f'{region.name}_dice'] == 2 * np.count_nonzero(p & g) / (np.count_nonzero(p) + np.count_nonzero(g))
        official = official_surface_dice(pred, gt, region.labels, spacing, OFFICIAL_TOLERANCES_MM[region.name])
        assert m[f'{region.name}_surface_dice'] == pytest.approx(official, abs=1e-12)
        assert 0.5 < m[f'{region.name}_surface_dice'] < 1.0


def test_empty_region_conventions():
    """As compute_metrics_for_label: empty in both masks 1, in one mask 0, for Dice and Surface Dice."""
    no_cyst = kits23_map(cyst=False)
    kidney_only = np.where(no_cyst == 2, 1, no_cyst)
    m = case_metrics(kidney_only, kidney_only, (3.0, 0.8, 0.8), challenge=KITS23_CHALLENGE)
    assert all(m[f'{r}_{k}'] == 1.0 for r in ('mass', 'tumor') for k in ('dice', 'surface_dice', 'nsd'))
    assert m['tumor_hd95'] == 0.0
    m = case_metrics(kidney_only, no_cyst, (3.0, 0.8, 0.8), challenge=KITS23_CHALLENGE)
    assert all(m[f'{r}_{k}'] == 0.0 for r in ('mass', 'tumor') for k in ('dice', 'surface_dice', 'nsd'))
    m = case_metrics(no_cyst, kidney_only, (3.0, 0.8, 0.8), challenge=KITS23_CHALLENGE)
    assert (m['tumor_dice'], m['tumor_surface_dice'], m['mean_surface_dice']) == (0.0, 0.0, pytest.approx(1 / 3))


def test_kits19_maps_score_as_in_kits19_mode():
    """Without cysts, kidney_and_mass is KiTS19's kidney region and tumor its tumor region."""
    gt = kits23_map(cyst=False)
    pred = np.roll(gt, (1, 2), axis=(0, 2))
    kits19 = case_metrics(pred, gt, (3.0, 0.8, 0.8))
    kits23 = case_metrics(pred, gt, (3.0, 0.8, 0.8), challenge=KITS23_CHALLENGE)
    for metric in ('dice', 'nsd', 'hd95'):
        assert kits23[f'kidney_and_mass_{metric}'] == kits19[f'kidney_{metric}']
        assert kits23[f'tumor_{metric}'] == kits23[f'mass_{metric}'] == kits19[f'tumor_{metric}']


@pytest.fixture
def folders(tmp_path):
    gt_dir, pred_dir = tmp_path / 'gt', tmp_path / 'pred'
    gt = kits23_map()
    for case, pred in (('case_00400', gt), ('case_00401', np.where(gt == 3, 1, gt).astype(np.uint8))):
        write_label_map(gt, gt_dir / case / 'segmentation.nii.gz')  # KiTS layout
        write_label_map(pred, pred_dir / f'{case}.nii.gz')  # nnU-Net layout
    return pred_dir, gt_dir


def test_cli_writes_per_case_and_mean_for_the_three_regions(folders, tmp_path, capsys):
    pred_dir, gt_dir = folders
    main([str(pred_dir), str(gt_dir), '--kits23', '-o', str(tmp_path / 'm.json'), '--csv', str(tmp_path / 'm.csv')])
    out = capsys.readouterr().out
    assert 'case_00401: mean Dice' in out and 'kidney_and_mass_surface_dice' in out
    saved = json.loads((tmp_path / 'm.json').read_text())
    assert saved['surface_dice_tolerance_mm'] == OFFICIAL_TOLERANCES_MM
    assert list(saved['per_case']) == ['case_00400', 'case_00401']
    for values in list(saved['per_case'].values()) + [saved['mean']]:
        assert list(values) == list(KITS23_CHALLENGE.metrics)
    assert saved['per_case']['case_00400']['mass_surface_dice'] == 1.0
    assert saved['per_case']['case_00401']['mass_surface_dice'] < 1.0
    assert saved['mean']['mass_dice'] == pytest.approx((1 + saved['per_case']['case_00401']['mass_dice']) / 2)
    rows = list(csv.DictReader(open(tmp_path / 'm.csv')))
    assert [r['case'] for r in rows] == ['case_00400', 'case_00401', 'mean'] and 'tumor_surface_dice' in rows[0]


def test_kits19_mode_refuses_cysts_and_kits23_mode_accepts_them(folders, capsys):
    pred_dir, gt_dir = folders
    assert evaluate_folders(pred_dir, gt_dir, challenge=KITS23_CHALLENGE)['mean']['kidney_and_mass_dice'] == 1.0
    with pytest.raises(SystemExit):
        main([str(pred_dir), str(gt_dir)])
    assert "label values [3] outside KiTS19's" in capsys.readouterr().err


@pytest.mark.parametrize('corrupt, message', [
    (lambda a: np.where(a == 3, 4, a).astype(np.uint8),
     r"case_00401: .*case_00401.nii.gz has label values \[4\] outside KiTS23's 0 background, 1 kidney, 2 tumor, "
     r"3 cyst"),
    (lambda a: a.astype(np.float32) * 0.5, r'case_00401: .*case_00401.nii.gz has non-integer label values'),
    (lambda a: a[a.shape[0] // 2], r'case_00401: .*case_00401.nii.gz is 2D; KiTS23 label maps are 3D volumes'),
])
def test_bad_input_gives_one_line_error(folders, capsys, corrupt, message):
    pred_dir, gt_dir = folders
    sitk.WriteImage(sitk.GetImageFromArray(corrupt(kits23_map())), str(pred_dir / 'case_00401.nii.gz'))
    with pytest.raises(SystemExit) as exit_info:
        main([str(pred_dir), str(gt_dir), '--kits23'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count('\n') == 1 and err.startswith('error: ')
    assert re.search(message, err)
