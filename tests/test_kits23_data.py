"""KiTS23 data path on tiny synthetic cases in the official layout (``dataset/case_XXXXX/``, ``kits23.json``):
conversion with cysts (label 3) and the three nested regions, write-back into KiTS geometry, phantoms with cysts."""
import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import binary_erosion

from nnunet_boundary.cli.convert_kits19 import main as convert_kits19_main
from nnunet_boundary.cli.convert_kits23 import main as convert_kits23_main
from nnunet_boundary.kits19.converter import convert_kits, write_prediction_in_kits_geometry
from nnunet_boundary.kits19.io import KITS23, KiTS19Error, kits_affine, kits_case_dirs, write_kits_nifti
from nnunet_boundary.kits19.phantoms import generate_phantoms, synthesize_ct
from nnunet_boundary.regions import KITS23_DATASET_JSON
from kits_files import write_kits_case

SPACING = (3.0, 0.8, 0.75)


def kidney_tumor_cyst(shape):
    """Two kidneys, a tumor in the patient's left one and an exophytic cyst on the right one (labels 1, 2, 3)."""
    z, y, x = np.meshgrid(*(np.arange(n) / n for n in shape), indexing='ij')
    labels = np.zeros(shape, np.uint8)
    for centre_x in (0.3, 0.7):
        labels[((z - 0.5) / 0.38) ** 2 + ((y - 0.57) / 0.13) ** 2 + ((x - centre_x) / 0.09) ** 2 < 1] = 1
    labels[((z - 0.5) / 0.25) ** 2 + ((y - 0.52) / 0.07) ** 2 + ((x - 0.77) / 0.07) ** 2 < 1] = 2
    labels[((z - 0.5) / 0.3) ** 2 + ((y - 0.6) / 0.09) ** 2 + ((x - 0.2) / 0.08) ** 2 < 1] = 3
    return labels


def make_case(cases_folder, name, shape=(10, 32, 36), seed=0):
    return write_kits_case(cases_folder, name, kidney_tumor_cyst(shape), SPACING, seed)


@pytest.fixture
def kits23(tmp_path):
    """``kits23/dataset`` with three cases that have imaging, and the clinical records."""
    dataset = tmp_path / 'kits23' / 'dataset'
    cases = {f'case_{i:05d}': make_case(dataset, f'case_{i:05d}', seed=i) for i in (400, 401, 402)}
    (dataset / 'kits23.json').write_text(json.dumps([{'case_id': c, 'radiographic_size': 2.0} for c in cases]))
    return dataset, cases


def convert(root, tmp_path, **kwargs):
    logs = []
    return convert_kits(root, 65, nnunet_raw=tmp_path / 'raw', log=logs.append, edition=KITS23, **kwargs), logs


def test_dataset_json_regions_and_test_split(kits23, tmp_path):
    dataset, _ = kits23
    out, _ = convert(dataset.parent, tmp_path, num_test=1)  # the repository folder holding dataset/
    assert out == tmp_path / 'raw' / 'Dataset065_KiTS23'
    assert sorted(p.name for p in (out / 'labelsTr').iterdir()) == ['case_00400.nii.gz', 'case_00401.nii.gz']
    assert [p.name for p in (out / 'imagesTs').iterdir()] == ['case_00402_0000.nii.gz']
    meta = json.loads((out / 'dataset.json').read_text())
    assert {k: meta[k] for k in KITS23_DATASET_JSON} == KITS23_DATASET_JSON
    assert meta['numTraining'] == 2 and meta['name'] == 'KiTS23' and 'kits23' in meta['reference']


def test_geometry_and_labels_kept_and_prediction_written_back_exactly(kits23, tmp_path):
    dataset, cases = kits23
    out, _ = convert(dataset, tmp_path)  # the dataset folder itself
    image = sitk.ReadImage(str(out / 'imagesTr' / 'case_00401_0000.nii.gz'))
    label = sitk.ReadImage(str(out / 'labelsTr' / 'case_00401.nii.gz'))
    assert np.allclose(label.GetDirection(), (0, 0, 1, 0, 1, 0, -1, 0, 0)) and label.GetSpacing() == image.GetSpacing()
    assert np.array_equal(sitk.GetArrayFromImage(image).transpose(), cases['case_00401'][0])
    converted = sitk.GetArrayFromImage(label).transpose()
    assert np.array_equal(converted, cases['case_00401'][1]) and set(np.unique(converted)) == {0, 1, 2, 3}
    back = tmp_path / 'prediction' / 'case_00401.nii.gz'
    write_prediction_in_kits_geometry(out / 'labelsTr' / 'case_00401.nii.gz',
                                      dataset / 'case_00401' / 'segmentation.nii.gz', back)
    original, restored = nib.load(str(dataset / 'case_00401' / 'segmentation.nii.gz')), nib.load(str(back))
    assert np.array_equal(restored.affine, original.affine)
    assert np.array_equal(restored.affine, kits_affine(SPACING).astype(np.float32))
    assert int(restored.header['sform_code']) == 2 and int(restored.header['qform_code']) == 0
    assert np.array_equal(np.asanyarray(restored.dataobj), cases['case_00401'][1])


def test_label_outside_kits23_is_a_one_line_error_naming_the_case(kits23, tmp_path, monkeypatch, capsys):
    dataset, cases = kits23
    labels = cases['case_00401'][1].copy()
    labels[0, 0, 0] = 5
    write_kits_nifti(labels, SPACING, dataset / 'case_00401' / 'segmentation.nii.gz')
    monkeypatch.setenv('nnUNet_raw', str(tmp_path / 'raw'))
    with pytest.raises(SystemExit) as exit_info:
        convert_kits23_main([str(dataset), '-d', '65'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "case_00401: " in err and "label values [5] outside KiTS23's 0 background, 1 kidney, 2 tumor, 3 cyst" in err
    assert (tmp_path / 'raw' / 'Dataset065_KiTS23' / 'labelsTr' / 'case_00400.nii.gz').is_file()


def test_kits19_converter_refuses_cysts_and_points_to_kits23(kits23, tmp_path, monkeypatch, capsys):
    dataset, _ = kits23
    monkeypatch.setenv('nnUNet_raw', str(tmp_path / 'raw'))
    with pytest.raises(SystemExit):
        convert_kits19_main([str(dataset), '-d', '64', '--cases', '400'])
    err = capsys.readouterr().err
    assert "label values [3] outside KiTS19's" in err and 'converted by nnunet_boundary_convert_kits23' in err
    assert not (tmp_path / 'raw' / 'Dataset064_KiTS19' / 'labelsTr' / 'case_00400.nii.gz').exists()


def test_cases_without_imaging_are_skipped_and_a_kits19_folder_is_not_taken_for_kits23(kits23, tmp_path,
                                                                                      monkeypatch, capsys):
    dataset, _ = kits23
    (dataset / 'case_00400' / 'imaging.nii.gz').unlink()
    monkeypatch.setenv('nnUNet_raw', str(tmp_path / 'raw'))
    convert_kits23_main([str(dataset), '-d', '65'])  # the command, as a KiTS23 user runs it
    assert 'skipping 1 incomplete case(s): case_00400 (no imaging.nii.gz)' in capsys.readouterr().out
    labels = tmp_path / 'raw' / 'Dataset065_KiTS23' / 'labelsTr'
    assert sorted(p.name for p in labels.iterdir()) == ['case_00401.nii.gz', 'case_00402.nii.gz']
    kits19 = tmp_path / 'kits19'
    make_case(kits19 / 'data', 'case_00000')
    with pytest.raises(KiTS19Error, match=r'no case_XXXXX folders in .*kits19; pass the KiTS23 dataset folder'):
        kits_case_dirs(kits19, [KITS23])


def test_phantom_cysts_are_homogeneous_water_and_differ_from_tumor():
    labels = kidney_tumor_cyst((20, 96, 96))
    image = synthesize_ct(labels, (3.0, 4.0, 4.0), np.random.default_rng(0))
    cyst, tumor = labels == 3, labels == 2
    fluid = binary_erosion(cyst, iterations=2)
    assert -10 < image[fluid].mean() < 25 and image[fluid].std() < 20  # water, noise only
    assert image[cyst].mean() < 25  # a wall thinner than these voxels hardly shows
    assert image[tumor].mean() > image[fluid].mean() + 40 and image[tumor].std() > image[fluid].std() + 10


def test_phantom_cyst_wall_enhances_on_a_fine_grid():
    labels = kidney_tumor_cyst((40, 80, 80))
    image = synthesize_ct(labels, (1.0, 1.0, 1.0), np.random.default_rng(0))
    cyst = labels == 3
    second_layer = binary_erosion(cyst) & ~binary_erosion(cyst, iterations=2)  # inside the wall, not blurred with fat
    fluid = binary_erosion(cyst, iterations=4)
    assert -10 < image[fluid].mean() < 25
    assert image[second_layer].mean() > image[fluid].mean() + 25


def test_phantoms_keep_the_kits23_layout_and_convert(tmp_path):
    dataset = tmp_path / 'kits23' / 'dataset'
    labels = kidney_tumor_cyst((12, 96, 96))
    write_kits_nifti(labels, (2.0, 2.0, 2.0), dataset / 'case_00410' / 'segmentation.nii.gz')
    (dataset / 'kits23.json').write_text(json.dumps([{'case_id': 'case_00410', 'radiographic_size': 4.1}]))
    out = tmp_path / 'phantoms'
    generate_phantoms(tmp_path / 'kits23', out, spacing_mm=4.0, seed=2, log=lambda _: None)
    seg = nib.load(str(out / 'case_00410' / 'segmentation.nii.gz'))
    image = np.asanyarray(nib.load(str(out / 'case_00410' / 'imaging.nii.gz')).dataobj)
    assert seg.shape == image.shape == (6, 48, 48) and nib.aff2axcodes(seg.affine) == ('I', 'P', 'L')
    coarse = np.asanyarray(seg.dataobj)
    assert set(np.unique(coarse)) == {0, 1, 2, 3}
    assert image[coarse == 2].mean() > image[coarse == 3].mean() + 30
    assert sorted(p.name for p in out.iterdir()) == ['case_00410', 'kits23.json']
    records = json.loads((out / 'kits23.json').read_text())
    assert records[0]['voxel_spacing'] == {'x_spacing': 4.0, 'y_spacing': 4.0, 'z_spacing': 4.0}
    converted, _ = convert(out, tmp_path)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(converted / 'labelsTr' / 'case_00410.nii.gz')))
                          .transpose(), coarse)
