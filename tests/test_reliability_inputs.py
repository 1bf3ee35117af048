"""Bad input is refused before any compute, naming the case or file and the fix.

Raw datasets: :func:`check_raw_dataset` (run by ``nnunet_boundary_plan_and_preprocess`` before
fingerprinting). Prediction: ``nnunet_boundary_predict``'s checks, which run before a model loads.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_boundary.checks.dataset_integrity import check_raw_dataset
from nnunet_boundary.cli.plan_and_preprocess import main as plan_main
from nnunet_boundary.cli.predict import main as predict_main
from nnunet_boundary.data.synthetic import write_synthetic_dataset
from nnunet_boundary.environment import TRAINER_DIR
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.planning.templates import patch_exceeds_image

SHAPE = (16, 24, 24)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """Three clean tiny cases in ``$nnUNet_raw/Dataset950_Checks`` (imagesTs empty)."""
    return write_synthetic_dataset(tmp_path / 'raw' / 'Dataset950_Checks', num_train=3, num_test=0, shape=SHAPE)


def read(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path))


def write(image: sitk.Image, path: Path) -> None:
    sitk.WriteImage(image, str(path), True)


def image_file(dataset, case=1) -> Path:
    return dataset / 'imagesTr' / f'case_{case:05d}_0000.nii.gz'


def label_file(dataset, case=1) -> Path:
    return dataset / 'labelsTr' / f'case_{case:05d}.nii.gz'


def edit_json(dataset, **changes):
    path = dataset / 'dataset.json'
    content = json.loads(path.read_text())
    content.update(changes)
    path.write_text(json.dumps({k: v for k, v in content.items() if v is not None}))


def with_voxels(path: Path, change) -> None:
    """Rewrite ``path`` with ``change(array)`` applied, keeping its geometry."""
    image = read(path)
    array = sitk.GetArrayFromImage(image)
    array = change(array)
    edited = sitk.GetImageFromArray(array)
    edited.CopyInformation(image)
    write(edited, path)


def with_geometry(path: Path, **setters) -> None:
    image = read(path)
    for name, value in setters.items():
        getattr(image, f'Set{name}')(value)
    write(image, path)


def test_a_clean_dataset_passes_without_warnings(dataset):
    assert check_raw_dataset(dataset) == []


@pytest.mark.parametrize('changes, message', [
    ({'labels': {'background': 0, 'kidney': 1, 'tumor': 2}}, 'outermost region must be a list of labels'),
    ({'regions_class_order': None}, "'regions_class_order' with 2 entries \\(one per region\\) is required"),
    ({'labels': {'background': 0, 'kidney': [1, 2, 3], 'tumor': 2, 'cyst': 3}},
     "region 'cyst' 3 must lie strictly inside .* \\(KiTS23: "),
    ({'labels': {'background': 0, 'kidney': [1, 3], 'tumor': 3}, 'regions_class_order': [1, 3]}, 'consecutive'),
    ({'regions_class_order': [1, 3]}, "'regions_class_order' \\[1, 3\\] does not match the nesting"),
    ({'file_ending': None}, "missing \\['file_ending'\\]"),
    ({'numTraining': 5}, 'numTraining=5 but there are 3 training cases; set numTraining to 3'),
    ({'numTraining': '3'}, "'numTraining' must be a whole number \\(\"numTraining\": 3\\), got '3'"),
    ({'labels': {'background': 0, 'kidney': [1, 2], 'tumor': 2, 'ignore': 3}}, "the 'ignore' label .* is not supported"),
])
def test_dataset_json_that_the_trainer_cannot_use_is_refused(dataset, changes, message):
    edit_json(dataset, **changes)
    with pytest.raises(NnUNetBoundaryError, match=message) as error:
        check_raw_dataset(dataset)
    assert 'Dataset950_Checks' in str(error.value)


def test_label_values_outside_the_declared_labels_name_the_file_and_values(dataset):
    with_voxels(label_file(dataset), lambda a: np.where(a == 2, 3, a).astype(np.uint8))
    with pytest.raises(NnUNetBoundaryError, match=r'case_00001: labelsTr/case_00001.nii.gz has label values \[3\] '
                                                  r'that dataset.json does not declare \(declared: \[0, 1, 2\]\)'):
        check_raw_dataset(dataset)


def test_interpolated_label_values_are_refused(dataset):
    with_voxels(label_file(dataset), lambda a: a.astype(np.float32) * 0.5)
    with pytest.raises(NnUNetBoundaryError, match='case_00001: labelsTr/case_00001.nii.gz has non-integer label values '
                                                  r'\[0.5\].*nearest neighbour'):
        check_raw_dataset(dataset)


@pytest.mark.parametrize('setters, what', [
    ({'Spacing': (1.0, 1.0, 3.0)}, 'spacing'),
    ({'Origin': (5.0, 0.0, 0.0)}, 'origin'),
    ({'Direction': (-1.0, 0, 0, 0, 1, 0, 0, 0, 1)}, 'direction'),
])
def test_label_not_on_the_image_grid_is_refused_with_the_fix(dataset, setters, what):
    with_geometry(label_file(dataset), **setters)
    with pytest.raises(NnUNetBoundaryError, match=f'case_00001: labelsTr/case_00001.nii.gz and '
                                                  f'imagesTr/case_00001_0000.nii.gz differ in {what} .*CopyInformation'):
        check_raw_dataset(dataset)


def test_sub_tolerance_geometry_differences_are_accepted(dataset):
    image = read(image_file(dataset))
    with_geometry(label_file(dataset), Spacing=[s * (1 + 1e-5) for s in image.GetSpacing()],
                  Origin=[o + 1e-4 for o in image.GetOrigin()])
    assert check_raw_dataset(dataset) == []


def test_label_of_another_shape_is_refused(dataset):
    write(read(label_file(dataset))[:, :, :-2], label_file(dataset))
    with pytest.raises(NnUNetBoundaryError, match=r'case_00001: .* differ in shape \(x, y, z\) \(24, 24, 14\) vs '
                                                  r'\(24, 24, 16\)'):
        check_raw_dataset(dataset)


@pytest.mark.parametrize('value, counts', [(np.nan, '5 NaN and 0 Inf'), (np.inf, '0 NaN and 5 Inf')])
def test_non_finite_image_voxels_are_refused(dataset, value, counts):
    def spoil(array):
        array.flat[:5] = value
        return array
    with_voxels(image_file(dataset, 2), spoil)
    with pytest.raises(NnUNetBoundaryError, match=f'case_00002: imagesTr/case_00002_0000.nii.gz has {counts} voxels'):
        check_raw_dataset(dataset)


def test_all_zero_image_is_refused(dataset):
    with_voxels(image_file(dataset), np.zeros_like)
    with pytest.raises(NnUNetBoundaryError, match='case_00001: imagesTr/case_00001_0000.nii.gz is blank'):
        check_raw_dataset(dataset)


def test_truncated_nifti_is_refused_although_simpleitk_reads_it(dataset):
    path = image_file(dataset)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    sitk.ReadImage(str(path))  # SimpleITK, nnU-Net's reader, zero-fills the missing part without complaint
    with pytest.raises(NnUNetBoundaryError, match='case_00001: imagesTr/case_00001_0000.nii.gz is truncated or '
                                                  'corrupt: the gzip stream is cut off'):
        check_raw_dataset(dataset)


def test_uncompressed_truncated_nifti_is_refused(dataset):
    edit_json(dataset, file_ending='.nii')
    for folder in ('imagesTr', 'labelsTr'):
        for path in (dataset / folder).glob('*.nii.gz'):
            write(read(path), path.with_name(path.name[:-len('.gz')]))
            path.unlink()
    path = dataset / 'labelsTr' / 'case_00000.nii'
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(NnUNetBoundaryError, match='case_00000: labelsTr/case_00000.nii is truncated or corrupt: holds'):
        check_raw_dataset(dataset)


def test_unreadable_file_is_named(dataset):
    label_file(dataset).write_text('not an image')
    with pytest.raises(NnUNetBoundaryError, match='case_00001: labelsTr/case_00001.nii.gz is truncated or corrupt: no '
                                                  'readable NIfTI header'):
        check_raw_dataset(dataset)


def test_missing_label_and_missing_channel_are_named(dataset):
    label_file(dataset).unlink()
    with pytest.raises(NnUNetBoundaryError, match='case_00001: labelsTr/case_00001.nii.gz is missing'):
        check_raw_dataset(dataset)
    edit_json(dataset, channel_names={'0': 'CT', '1': 'CT2'})
    with pytest.raises(NnUNetBoundaryError, match=r'case_00000: has channel files _0000.nii.gz but the model expects 2 '
                                                  r'channel\(s\) _0000.nii.gz, _0001.nii.gz'):
        check_raw_dataset(dataset)


def test_image_without_channel_index_is_named(dataset):
    image_file(dataset).rename(dataset / 'imagesTr' / 'case_00001.nii.gz')
    with pytest.raises(NnUNetBoundaryError, match='imagesTr/case_00001.nii.gz has no channel index: name it '
                                                  'CASE_0000.nii.gz'):
        check_raw_dataset(dataset)


def test_every_problem_is_reported_at_once(dataset):
    with_voxels(image_file(dataset, 0), np.zeros_like)
    with_geometry(label_file(dataset, 2), Origin=(9.0, 9.0, 9.0))
    with pytest.raises(NnUNetBoundaryError, match='2 problem\\(s\\) in 2 of 3 training cases') as error:
        check_raw_dataset(dataset, num_processes=2)
    assert 'case_00000:' in str(error.value) and 'case_00002:' in str(error.value)


def test_cases_without_tumor_or_foreground_are_warnings_with_their_consequence(dataset):
    with_voxels(label_file(dataset, 0), lambda a: np.where(a == 2, 1, a).astype(np.uint8))
    with_voxels(label_file(dataset, 1), np.zeros_like)
    assert check_raw_dataset(dataset) == [
        '1 training case(s) have no tumor (case_00000); their crops fall back to kidney voxels',
        '1 training case(s) have no foreground (case_00001); their crops are drawn at random']


def test_plan_and_preprocess_refuses_a_bad_dataset_before_fingerprinting(dataset, monkeypatch, capsys):
    preprocessed = dataset.parent.parent / 'preprocessed'
    monkeypatch.setenv('nnUNet_raw', str(dataset.parent))
    monkeypatch.setenv('nnUNet_preprocessed', str(preprocessed))
    with_voxels(image_file(dataset), lambda a: np.full_like(a, np.nan))
    with pytest.raises(SystemExit) as exit_info:
        plan_main(['-d', '950', '--template', 'cpu_smoke', '-np', '1'])
    assert exit_info.value.code == 2
    assert 'error: ' in capsys.readouterr().err
    assert not (preprocessed / 'Dataset950_Checks' / 'dataset_fingerprint.json').exists()


def test_patch_larger_than_the_image_warns_and_says_what_happens():
    notes = patch_exceeds_image([176, 176, 176], [150.4, 300, 300])
    assert len(notes) == 1
    assert notes[0].startswith('axis 0: patch 176 > median image size 150 voxels. nnU-Net pads every case smaller')
    assert 'training and prediction run but spend compute on padding' in notes[0]
    assert 'at most 150 on axis 0' in notes[0]


# ---- nnunet_boundary_predict: checks before a model is loaded ----

@pytest.fixture
def results(tmp_path, monkeypatch):
    """A fake trained model (fold 0 finished, fold 1 interrupted) and an input folder of 2 cases."""
    dataset_dir = tmp_path / 'results' / 'Dataset950_Checks'
    model = dataset_dir / 'BoundaryTrainer_smoke__nnUNetBoundaryPlans__3d_fullres'
    for fold, checkpoint in ((0, 'checkpoint_final.pth'), (1, 'checkpoint_latest.pth')):
        (model / f'fold_{fold}').mkdir(parents=True)
        torch.save({}, model / f'fold_{fold}' / checkpoint)
    (model / 'dataset.json').write_text(json.dumps({'channel_names': {'0': 'CT'}, 'file_ending': '.nii.gz'}))
    inputs = tmp_path / 'in'
    inputs.mkdir()
    for case in ('a', 'b'):
        write(sitk.Image(4, 4, 4, sitk.sitkFloat32), inputs / f'{case}_0000.nii.gz')
    monkeypatch.setenv('nnUNet_results', str(tmp_path / 'results'))
    monkeypatch.setenv('nnUNet_extTrainer', str(TRAINER_DIR))
    monkeypatch.delenv('nnUNet_raw', raising=False)
    monkeypatch.delenv('nnUNet_preprocessed', raising=False)
    return tmp_path


def predict_error(root, capsys, *extra, folds=('0',), trainer='BoundaryTrainer_smoke') -> str:
    with pytest.raises(SystemExit) as exit_info:
        predict_main(['-i', str(root / 'in'), '-o', str(root / 'out'), '-d', '950', '-tr', trainer, '-f', *folds,
                      '-device', 'cpu', *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ')
    return err


def test_predict_names_missing_folds_and_those_that_exist(results, capsys):
    err = predict_error(results, capsys, folds=('0', '1', '2'))
    assert 'fold(s) [1, 2] have no checkpoint_final.pth; folds with it: [\'0\']' in err
    assert "Fold(s) [1] have only checkpoint_latest.pth" in err and '--c' in err


def test_predict_names_the_model_folders_that_exist(results, capsys):
    err = predict_error(results, capsys, trainer='BoundaryTrainer')
    assert 'no trained model at' in err and "holds ['BoundaryTrainer_smoke__nnUNetBoundaryPlans__3d_fullres']" in err


def test_predict_requires_our_trainer_folder_on_nnunet_extTrainer(results, capsys, monkeypatch):
    monkeypatch.delenv('nnUNet_extTrainer')
    assert 'export nnUNet_extTrainer=$(nnunet_boundary_trainer_dir)' in predict_error(results, capsys)


def test_predict_requires_nnunet_results(results, capsys, monkeypatch):
    monkeypatch.delenv('nnUNet_results')
    assert 'export nnUNet_results=' in predict_error(results, capsys)


def test_predict_refuses_input_whose_channels_differ_from_training(results, capsys):
    write(sitk.Image(4, 4, 4, sitk.sitkFloat32), results / 'in' / 'b_0001.nii.gz')
    err = predict_error(results, capsys)
    assert 'wrong input channels in 1 case(s)' in err
    assert 'b: has channel files _0000.nii.gz, _0001.nii.gz but the model expects 1 channel(s) _0000.nii.gz' in err


def test_predict_refuses_input_files_without_channel_index(results, capsys):
    (results / 'in' / 'a_0000.nii.gz').rename(results / 'in' / 'a.nii.gz')
    assert 'file(s) without the channel index nnU-Net needs (a.nii.gz)' in predict_error(results, capsys)


def test_a_regions_class_order_against_the_nesting_is_refused_naming_the_right_one():
    """[2, 1] would make nnU-Net write kidney where it predicts tumor and the reverse, silently."""
    from nnunet_boundary.errors import NnUNetBoundaryError
    from nnunet_boundary.regions import nested_regions
    reversed_order = {'labels': {'background': 0, 'kidney': [1, 2], 'tumor': 2}, 'regions_class_order': [2, 1]}
    with pytest.raises(NnUNetBoundaryError, match=r'swapped or merged. Use "regions_class_order": \[1, 2\]'):
        nested_regions(reversed_order)
    assert nested_regions(dict(reversed_order, regions_class_order=[1, 2])) == ((1, 2), 2)


def test_predict_never_writes_into_a_datasets_label_folder(results, capsys):
    labels = results / 'Dataset950_Checks' / 'labelsTs'
    labels.mkdir(parents=True)
    (labels.parent / 'dataset.json').write_text('{}')
    write(sitk.Image(4, 4, 4, sitk.sitkUInt8), labels / 'a.nii.gz')
    with pytest.raises(SystemExit):
        predict_main(['-i', str(results / 'in'), '-o', str(labels), '-d', '950', '-tr', 'BoundaryTrainer_smoke',
                      '-f', '0', '-device', 'cpu', '--overwrite'])
    assert 'is the label folder of the dataset Dataset950_Checks' in capsys.readouterr().err
    assert sitk.ReadImage(str(labels / 'a.nii.gz')).GetPixelID() == sitk.sitkUInt8  # untouched


def test_predict_replaces_existing_outputs_only_when_told(results, capsys):
    (results / 'out').mkdir()
    write(sitk.Image(4, 4, 4, sitk.sitkUInt8), results / 'out' / 'a.nii.gz')
    err = predict_error(results, capsys)
    assert 'already holds 1 of the outputs (a): pass --overwrite' in err


def test_cases_added_after_a_first_planning_are_not_left_out_of_the_folds(dataset, monkeypatch, capsys):
    """Old splits would keep new cases out of every fold: refused, saying what to do; a stale fingerprint is redone."""
    preprocessed = dataset.parent.parent / 'preprocessed' / 'Dataset950_Checks'
    preprocessed.mkdir(parents=True)
    old_cases = ['case_00000', 'case_00001']  # the dataset now has case_00002 too
    (preprocessed / 'splits_final.json').write_text(json.dumps([{'train': old_cases[:1], 'val': old_cases[1:]}] * 5))
    monkeypatch.setenv('nnUNet_raw', str(dataset.parent))
    monkeypatch.setenv('nnUNet_preprocessed', str(preprocessed.parent))
    with pytest.raises(SystemExit) as exit_info:
        plan_main(['-d', '950', '--template', 'cpu_smoke', '-np', '1'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count('\n') == 1
    assert "splits 2 cases but the dataset has 3 (1 not in any fold, e.g. ['case_00002']" in err and 'mv ' in err

    from nnunet_boundary.checks.stale_preprocessing import stale_fingerprint
    (preprocessed / 'dataset_fingerprint.json').write_text(json.dumps({'shapes_after_crop': [[1, 1, 1]] * 2}))
    assert 'describes 2 training cases, the dataset has 3: recomputing' in stale_fingerprint(preprocessed, 3)
    assert stale_fingerprint(preprocessed, 2) is None
    (preprocessed / 'dataset_fingerprint.json').write_text('{"shapes_after_crop": [[1, 1')  # half-written
    assert 'unreadable' in stale_fingerprint(preprocessed, 2)


def test_planning_warns_about_fewer_cases_than_folds_and_replans_a_half_written_plans_file(dataset, monkeypatch,
                                                                                           capsys):
    """Three cases: nnU-Net's 5 folds would fail in scikit-learn at training, so planning warns (and goes on);
    a plans file an interrupted run left half-written is replaced (nnU-Net's own ``save_plans`` would read it to
    keep its other configurations and stop with a JSONDecodeError)."""
    preprocessed = dataset.parent.parent / 'preprocessed' / 'Dataset950_Checks'
    preprocessed.mkdir(parents=True)
    (preprocessed / 'nnUNetBoundaryPlans.json').write_text('{"dataset_name": "Dataset950_Checks", "configura')
    monkeypatch.setenv('nnUNet_raw', str(dataset.parent))
    monkeypatch.setenv('nnUNet_preprocessed', str(preprocessed.parent))
    plan_main(['-d', '950', '--template', 'cpu_smoke', '-np', '1', '--no_pp'])
    out = capsys.readouterr().out
    assert "WARNING: 3 training case(s): nnU-Net's 5-fold cross-validation needs at least 5" in out
    assert "train fold 'all'" in out
    plans = json.loads((preprocessed / 'nnUNetBoundaryPlans.json').read_text())
    assert set(plans['configurations']) == {'3d_fullres', '3d_fullres_baseline'}


def test_predict_explains_comma_separated_folds(results, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_main(['-i', str(results / 'in'), '-o', str(results / 'out'), '-d', '950', '-f', '0,1'])
    assert exit_info.value.code == 2
    assert "-f takes fold numbers separated by spaces (e.g. -f 0 1 2 3 4) or 'all', got 0,1" in capsys.readouterr().err


@pytest.mark.parametrize('text, message', [
    (None, 'no dataset.json'),
    ('{"labels": {"background": 0,}}', 'is not valid JSON'),
])
def test_planning_reports_an_unreadable_dataset_json_in_one_line(dataset, monkeypatch, capsys, text, message):
    if text is None:
        (dataset / 'dataset.json').unlink()
    else:
        (dataset / 'dataset.json').write_text(text)
    monkeypatch.setenv('nnUNet_raw', str(dataset.parent))
    monkeypatch.setenv('nnUNet_preprocessed', str(dataset.parent.parent / 'preprocessed'))
    with pytest.raises(SystemExit) as exit_info:
        plan_main(['-d', '950', '--template', 'cpu_smoke', '-np', '1'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith('error: ') and message in err and 'Traceback' not in err


def test_predict_warns_about_input_files_it_will_not_predict(results, capsys):
    write(sitk.Image(4, 4, 4, sitk.sitkFloat32), results / 'in' / 'c_0000.nii')
    (results / 'out').mkdir()
    write(sitk.Image(4, 4, 4, sitk.sitkUInt8), results / 'out' / 'a.nii.gz')
    with pytest.raises(SystemExit):  # stops at the existing output, after the input checks
        predict_main(['-i', str(results / 'in'), '-o', str(results / 'out'), '-d', '950', '-tr',
                      'BoundaryTrainer_smoke', '-f', '0', '-device', 'cpu'])
    assert "1 file(s) not ending in the model's '.nii.gz' are not predicted (c_0000.nii)" in capsys.readouterr().out
