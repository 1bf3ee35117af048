"""KiTS19 metrics against values computed by hand on cubes."""
import csv
import json
import math
import re

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_boundary.cli.evaluate import main
from nnunet_boundary.kits19.io import KiTS19Error
from nnunet_boundary.kits19.metrics import METRICS, case_metrics, evaluate_folders, far_volume_ml
from kits_files import write_label_map

SHAPE, SPACING = (12, 40, 40), (3.0, 0.8, 0.8)


def cube(shape=SHAPE, corner=(2, 10, 10), side=(6, 16, 16), label=1):
    labels = np.zeros(shape, np.uint8)
    labels[tuple(slice(c, c + s) for c, s in zip(corner, side))] = label
    return labels


def with_tumor(labels, corner=(3, 14, 14), side=(4, 8, 8)):
    labels = labels.copy()
    labels[tuple(slice(c, c + s) for c, s in zip(corner, side))] = 2
    return labels


def test_identical_masks_are_perfect():
    gt = with_tumor(cube())
    m = case_metrics(gt, gt, SPACING)
    assert m == {'kidney_dice': 1.0, 'tumor_dice': 1.0, 'composite_dice': 1.0, 'kidney_nsd': 1.0,
                 'tumor_nsd': 1.0, 'kidney_hd95': 0.0, 'tumor_hd95': 0.0}


@pytest.mark.parametrize('axis, shift', [(0, 1), (1, 2), (2, 3)])
def test_shifted_cube(axis, shift):
    gt = cube()
    corner = [2, 10, 10]
    corner[axis] += shift
    pred = cube(corner=corner)
    side = (6, 16, 16)[axis]
    m = case_metrics(pred, gt, SPACING, tolerance_mm=2.0)
    assert m['kidney_dice'] == pytest.approx((side - shift) / side)
    assert m['kidney_hd95'] == pytest.approx(shift * SPACING[axis])
    # all surface voxels lie within shift * spacing of the other surface
    assert case_metrics(pred, gt, SPACING, tolerance_mm=shift * SPACING[axis])['kidney_nsd'] == 1.0
    if shift * SPACING[axis] > 2.0:
        assert m['kidney_nsd'] < 1.0


def test_nsd_and_hd95_on_single_voxels():
    # gt: voxel a; pred: a and b, 3 voxels (2.4 mm) away along x. Every isolated voxel is surface.
    # pred->gt distances [0, 2.4], gt->pred [0]: NSD(2 mm) = (1 + 1) / (2 + 1);
    # HD95 = 95th percentile of [0, 2.4] = 0.95 * 2.4 (linear interpolation).
    gt, pred = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    gt[5, 20, 20] = pred[5, 20, 20] = pred[5, 20, 23] = 1
    m = case_metrics(pred, gt, SPACING, tolerance_mm=2.0)
    assert m['kidney_dice'] == pytest.approx(2 / 3)
    assert m['kidney_nsd'] == pytest.approx(2 / 3)
    assert m['kidney_hd95'] == pytest.approx(0.95 * 2.4)
    assert case_metrics(pred, gt, SPACING, tolerance_mm=2.5)['kidney_nsd'] == 1.0


def test_empty_conventions():
    gt = cube()  # kidney only, no tumor
    m = case_metrics(gt, gt, SPACING)
    assert (m['tumor_dice'], m['tumor_nsd'], m['tumor_hd95']) == (1.0, 1.0, 0.0)
    m = case_metrics(with_tumor(gt), gt, SPACING)
    diagonal = math.sqrt(sum((n * s) ** 2 for n, s in zip(SHAPE, SPACING)))
    assert (m['tumor_dice'], m['tumor_nsd']) == (0.0, 0.0)
    assert m['tumor_hd95'] == pytest.approx(diagonal)
    assert m['composite_dice'] == pytest.approx(0.5)


def test_far_volume_counts_only_voxels_beyond_the_distance():
    gt = cube() > 0  # x from 10 to 25 at 0.8 mm
    pred = np.zeros(SHAPE, bool)
    pred[4, 15, [20, 27, 28, 39]] = True  # inside, 1.6 mm, 2.4 mm and 11.2 mm from the cube
    voxel_ml = 3.0 * 0.8 * 0.8 / 1000
    assert far_volume_ml(pred, gt, SPACING, distance_mm=2.0) == pytest.approx(2 * voxel_ml)
    assert far_volume_ml(pred, gt, SPACING, distance_mm=12.0) == 0.0
    assert far_volume_ml(pred, np.zeros(SHAPE, bool), SPACING, distance_mm=2.0) == pytest.approx(4 * voxel_ml)


@pytest.fixture
def folders(tmp_path):
    gt_dir, pred_dir = tmp_path / 'gt', tmp_path / 'pred'
    gt = with_tumor(cube())
    for case, pred in (('case_00000', gt), ('case_00001', cube(corner=(3, 10, 10)))):
        write_label_map(gt, gt_dir / case / 'segmentation.nii.gz')  # KiTS layout
        write_label_map(pred, pred_dir / f'{case}.nii.gz')  # nnU-Net layout
    return pred_dir, gt_dir


def test_evaluate_folders_and_cli_outputs(folders, tmp_path, capsys):
    pred_dir, gt_dir = folders
    results = evaluate_folders(pred_dir, gt_dir)
    assert list(results['per_case']) == ['case_00000', 'case_00001'] and set(results['mean']) == set(METRICS)
    assert results['per_case']['case_00001']['kidney_dice'] == pytest.approx(5 / 6)
    assert results['mean']['tumor_dice'] == pytest.approx(0.5)
    main([str(pred_dir), str(gt_dir), '-o', str(tmp_path / 'm.json'), '--csv', str(tmp_path / 'm.csv')])
    assert 'composite_dice' in capsys.readouterr().out
    saved = json.loads((tmp_path / 'm.json').read_text())
    assert saved['mean'] == pytest.approx(results['mean'])
    rows = list(csv.DictReader(open(tmp_path / 'm.csv')))
    assert [r['case'] for r in rows] == ['case_00000', 'case_00001', 'mean']


def test_grid_mismatch_names_the_case(folders, capsys):
    pred_dir, gt_dir = folders
    write_label_map(cube(), pred_dir / 'case_00001.nii.gz', spacing=(2.0, 0.8, 0.8))
    with pytest.raises(KiTS19Error, match='case_00001: .*differ in spacing'):
        evaluate_folders(pred_dir, gt_dir)
    with pytest.raises(SystemExit) as exit_info:
        main([str(pred_dir), str(gt_dir)])
    assert exit_info.value.code == 2 and 'error: case_00001' in capsys.readouterr().err


def test_prediction_without_ground_truth_is_an_error(folders):
    pred_dir, gt_dir = folders
    write_label_map(cube(), pred_dir / 'case_00009.nii.gz')
    with pytest.raises(KiTS19Error, match='case_00009'):
        evaluate_folders(pred_dir, gt_dir)


@pytest.mark.parametrize('corrupt, message', [
    (lambda a: np.where(a == 1, 3, a).astype(np.uint8), "label values \\[3\\] outside KiTS19's 0 background"),
    (lambda a: a.astype(np.float32) * 0.5, 'non-integer label values'),
    (lambda a: a[a.shape[0] // 2], 'is 2D; KiTS19 label maps are 3D volumes'),
])
def test_label_maps_that_would_score_wrongly_are_refused_with_the_file(tmp_path, capsys, corrupt, message):
    """A kidney stored as 3 scored composite Dice 1.0 against a prediction without kidney before."""
    from nnunet_boundary.cli.evaluate import main as evaluate_main
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[1:5, 2:6, 2:6], labels[2:4, 3:5, 3:5] = 1, 2
    for folder, array in (('pred', labels), ('gt', corrupt(labels))):
        (tmp_path / folder).mkdir()
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / folder / 'case_00000.nii.gz'))
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main([str(tmp_path / 'pred'), str(tmp_path / 'gt')])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith('error: case_00000: ') and 'gt' in err
    assert re.search(message, err)


def test_an_output_path_that_is_a_folder_is_refused(tmp_path, capsys):
    from nnunet_boundary.cli.evaluate import main as evaluate_main
    with pytest.raises(SystemExit):
        evaluate_main([str(tmp_path), str(tmp_path), '-o', str(tmp_path)])
    assert f'-o {tmp_path} is a folder; give a file name, e.g. {tmp_path}/metrics.json' in capsys.readouterr().err
