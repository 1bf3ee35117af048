"""KiTS19 -> nnU-Net v2 conversion on tiny synthetic cases in the KiTS19 NIfTI convention."""
import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_boundary.cli.convert_kits19 import main
from nnunet_boundary.kits19.converter import convert_kits, write_prediction_in_kits_geometry
from nnunet_boundary.atomic_files import partial_path
from nnunet_boundary.kits19.io import KiTS19Error, kits_affine, write_kits_nifti
from kits_files import write_kits_case

SPACING = (3.0, 0.8, 0.75)


def make_case(root, name, shape=(12, 40, 44), label_dtype=np.uint8, seed=0):
    labels = np.zeros(shape, label_dtype)
    labels[3:9, 10:25, 5:20] = 1
    labels[4:7, 12:18, 8:14] = 2
    return write_kits_case(root, name, labels, SPACING, seed)


@pytest.fixture
def kits(tmp_path):
    root = tmp_path / 'kits19' / 'data'
    cases = {f'case_{i:05d}': make_case(root, f'case_{i:05d}', seed=i) for i in range(3)}
    return root, cases


def convert(root, tmp_path, **kwargs):
    logs = []
    out = convert_kits(root, 64, nnunet_raw=tmp_path / 'raw', log=logs.append, **kwargs)
    return out, logs


def test_dataset_layout_and_json(kits, tmp_path):
    root, _ = kits
    out, _ = convert(root, tmp_path, num_test=1)
    assert out.name == 'Dataset064_KiTS19'
    assert sorted(p.name for p in (out / 'imagesTr').iterdir()) == ['case_00000_0000.nii.gz', 'case_00001_0000.nii.gz']
    assert [p.name for p in (out / 'labelsTs').iterdir()] == ['case_00002.nii.gz']
    meta = json.loads((out / 'dataset.json').read_text())
    assert meta['channel_names'] == {'0': 'CT'}
    assert meta['labels'] == {'background': 0, 'kidney': [1, 2], 'tumor': 2}
    assert meta['regions_class_order'] == [1, 2] and meta['numTraining'] == 2 and meta['file_ending'] == '.nii.gz'


def test_geometry_round_trip_is_exact(kits, tmp_path):
    root, cases = kits
    out, _ = convert(root, tmp_path)
    image = sitk.ReadImage(str(out / 'imagesTr' / 'case_00001_0000.nii.gz'))
    label = sitk.ReadImage(str(out / 'labelsTr' / 'case_00001.nii.gz'))
    assert image.GetDirection() == label.GetDirection() and image.GetSpacing() == label.GetSpacing()
    assert np.allclose(image.GetDirection(), (0, 0, 1, 0, 1, 0, -1, 0, 0))
    assert label.GetPixelID() == sitk.sitkUInt8
    # a "prediction" as nnU-Net writes it: the label array on the converted image's grid
    back = tmp_path / 'prediction_00001.nii.gz'
    write_prediction_in_kits_geometry(out / 'labelsTr' / 'case_00001.nii.gz',
                                      root / 'case_00001' / 'segmentation.nii.gz', back)
    original, restored = nib.load(str(root / 'case_00001' / 'imaging.nii.gz')), nib.load(str(back))
    assert np.array_equal(restored.affine, original.affine)
    assert np.array_equal(restored.affine, kits_affine(SPACING).astype(np.float32))
    assert nib.aff2axcodes(restored.affine) == ('I', 'P', 'L')
    assert int(restored.header['sform_code']) == 2 and int(restored.header['qform_code']) == 0
    assert np.array_equal(np.asanyarray(restored.dataobj), cases['case_00001'][1])
    assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(sitk.ReadImage(
        str(root / 'case_00001' / 'imaging.nii.gz'))))


def test_prediction_on_wrong_grid_is_refused(kits, tmp_path):
    root, _ = kits
    wrong = sitk.GetImageFromArray(np.zeros((5, 5, 5), np.uint8))
    sitk.WriteImage(wrong, str(tmp_path / 'case_00000.nii.gz'))
    with pytest.raises(KiTS19Error, match='case_00000.*size'):
        write_prediction_in_kits_geometry(tmp_path / 'case_00000.nii.gz', root / 'case_00000' / 'segmentation.nii.gz',
                                          tmp_path / 'x.nii.gz')


def test_uint16_labels_and_non_square_slices(tmp_path):
    root = tmp_path / 'data'
    _, labels = make_case(root, 'case_00015', shape=(6, 30, 48), label_dtype=np.uint16)
    out, _ = convert(root, tmp_path)
    label = sitk.ReadImage(str(out / 'labelsTr' / 'case_00015.nii.gz'))
    assert label.GetPixelID() == sitk.sitkUInt8 and label.GetSize() == (6, 30, 48)
    assert np.array_equal(sitk.GetArrayFromImage(label).transpose(), labels)


def test_incomplete_cases_are_skipped_or_strict_error(kits, tmp_path):
    root, _ = kits
    (root / 'case_00001' / 'imaging.nii.gz').unlink()
    out, logs = convert(root, tmp_path)
    assert any('skipping 1 incomplete case(s): case_00001 (no imaging.nii.gz)' in line for line in logs)
    assert json.loads((out / 'dataset.json').read_text())['numTraining'] == 2
    with pytest.raises(KiTS19Error, match='case_00001'):
        convert(root, tmp_path, strict=True)


def test_restart_skips_done_cases_and_overwrites_stale_partial(kits, tmp_path):
    root, cases = kits
    out, _ = convert(root, tmp_path, cases=['0'])
    stale = partial_path(out / 'labelsTr' / 'case_00001.nii.gz')
    stale.write_bytes(b'half written')
    _, logs = convert(root, tmp_path)
    assert any('case_00000: already converted, skipped' in line for line in logs)
    assert not stale.exists()
    label = sitk.ReadImage(str(out / 'labelsTr' / 'case_00001.nii.gz'))
    assert np.array_equal(sitk.GetArrayFromImage(label).transpose(), cases['case_00001'][1])
    assert json.loads((out / 'dataset.json').read_text())['numTraining'] == 3


@pytest.mark.parametrize('breakage, message', [
    ('shape', 'case_00002: imaging and segmentation differ in size'),
    ('affine', 'case_00002: imaging and segmentation differ in spacing'),
    ('labels', r"case_00002: .* label values \[3\] outside KiTS19's 0 background, 1 kidney, 2 tumor; KiTS23 label maps "
               r"\(0 background, 1 kidney, 2 tumor, 3 cyst\) are converted by nnunet_boundary_convert_kits23"),
    ('truncated', 'case_00002: .*segmentation.nii.gz'),
])
def test_bad_input_names_the_case(kits, tmp_path, breakage, message):
    root, _ = kits
    seg = root / 'case_00002' / 'segmentation.nii.gz'
    if breakage == 'shape':
        write_kits_nifti(np.zeros((12, 40, 40), np.uint8), SPACING, seg)
    elif breakage == 'affine':
        write_kits_nifti(np.zeros((12, 40, 44), np.uint8), (2.0, 0.8, 0.75), seg)
    elif breakage == 'labels':
        write_kits_nifti(np.full((12, 40, 44), 3, np.uint8), SPACING, seg)
    else:
        data = seg.read_bytes()
        seg.write_bytes(data[:len(data) // 2])
    with pytest.raises(KiTS19Error, match=message):
        convert(root, tmp_path)


def test_cli_errors_are_one_line(kits, tmp_path, monkeypatch, capsys):
    root, _ = kits
    monkeypatch.delenv('nnUNet_raw', raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main([str(root), '-d', '64'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'export nnUNet_raw=' in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv('nnUNet_raw', str(tmp_path / 'raw'))
    main([str(root), '-d', '64', '--cases', '1'])
    assert (tmp_path / 'raw' / 'Dataset064_KiTS19' / 'labelsTr' / 'case_00001.nii.gz').is_file()


def test_every_bad_case_is_reported_in_one_run_and_the_good_ones_converted(kits, tmp_path):
    root, _ = kits
    for case in ('case_00000', 'case_00002'):
        write_kits_nifti(np.full((12, 40, 44), 3, np.uint8), SPACING, root / case / 'segmentation.nii.gz')
    with pytest.raises(KiTS19Error, match=r'2 of 3 case\(s\) could not be converted') as error:
        convert(root, tmp_path)
    assert 'case_00000: ' in str(error.value) and 'case_00002: ' in str(error.value)
    assert (tmp_path / 'raw' / 'Dataset064_KiTS19' / 'labelsTr' / 'case_00001.nii.gz').is_file()
