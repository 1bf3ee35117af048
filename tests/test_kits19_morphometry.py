"""Morphometry on boxes and spheres with known volumes, diameters and sides."""
import csv
import math

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_boundary.cli.morphometry import main
from nnunet_boundary.kits19.io import KiTS19Error, write_kits_nifti
from nnunet_boundary.kits19.morphometry import max_extent, measure_folder, measure_segmentation

SPACING = (3.0, 1.0, 0.8)  # (slices, rows, columns) as in a KiTS19 file: axis 2 runs to patient left


def kits_volume(shape=(12, 40, 60)):
    """Kidneys at low (patient right) and high (patient left) column index; a 4x6x10 tumor box in the left one."""
    labels = np.zeros(shape, np.uint8)
    labels[2:10, 10:30, 5:20] = 1
    labels[2:10, 10:30, 40:55] = 1
    labels[3:7, 12:18, 44:54] = 2
    labels[9, 25, 6] = 2  # one-voxel fragment (2.4 uL) in the right kidney
    return labels


def test_box_volume_diameters_and_side(tmp_path):
    write_kits_nifti(kits_volume(), SPACING, tmp_path / 'case_00001' / 'segmentation.nii.gz')
    result = measure_segmentation(sitk.ReadImage(str(tmp_path / 'case_00001' / 'segmentation.nii.gz')), 'case_00001')
    voxel_ml = np.prod(SPACING) / 1000
    assert result.right_kidney_ml == pytest.approx((8 * 20 * 15 - 1) * voxel_ml)
    assert result.left_kidney_ml == pytest.approx((8 * 20 * 15 - 4 * 6 * 10) * voxel_ml)
    assert len(result.tumors) == 1 and result.ignored_tumor_fragments == 1
    tumor = result.tumors[0]
    assert tumor.side == 'left'
    assert tumor.volume_ml == pytest.approx(4 * 6 * 10 * voxel_ml)
    extent = np.array([4 * 3.0, 6 * 1.0, 10 * 0.8])  # edge to edge, mm
    assert tumor.max_diameter_3d_cm == pytest.approx(np.linalg.norm(extent) / 10)
    assert tumor.max_axial_diameter_cm == pytest.approx(np.linalg.norm(extent[1:]) / 10)


def test_sides_follow_the_file_orientation(tmp_path):
    labels = kits_volume()
    labels[labels == 1] = 0
    labels[labels == 2] = 0
    labels[2:10, 10:30, 40:55] = 2  # a single tumor-only blob at high column index
    # LPS file with identity direction: the last array axis (x) increases to patient left
    lps = sitk.GetImageFromArray(labels)
    sitk.WriteImage(lps, str(tmp_path / 'lps.nii.gz'))
    # RAS file (nibabel identity affine) of the array transposed so that x is the first NIfTI axis: +x is right
    nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0).copy(), np.eye(4)), str(tmp_path / 'ras.nii.gz'))
    # KiTS19 file: column axis runs to patient left
    write_kits_nifti(labels, SPACING, tmp_path / 'kits.nii.gz')
    sides = {name: measure_segmentation(sitk.ReadImage(str(tmp_path / f'{name}.nii.gz')), name).tumors[0].side
             for name in ('lps', 'ras', 'kits')}
    assert sides == {'lps': 'left', 'ras': 'right', 'kits': 'left'}


def test_sphere_diameter():
    radius = 10
    z, y, x = np.meshgrid(*(np.arange(-12, 13),) * 3, indexing='ij')
    sphere = (z ** 2 + y ** 2 + x ** 2 <= radius ** 2).astype(np.uint8) * 2
    result = measure_segmentation(sitk.GetImageFromArray(sphere), 'sphere')
    tumor = result.tumors[0]
    assert tumor.volume_ml == pytest.approx(4 / 3 * math.pi * radius ** 3 / 1000, rel=0.03)
    assert 2 * radius + 1 <= tumor.max_diameter_3d_cm * 10 <= 2 * radius + 2
    assert 2 * radius + 1 <= tumor.max_axial_diameter_cm * 10 <= 2 * radius + 1.5


def test_max_extent_of_single_and_collinear_voxels():
    assert max_extent(np.zeros((1, 2)), (1.0, 2.0)) == pytest.approx(math.hypot(1, 2))
    line = np.column_stack([np.arange(20.0), np.zeros(20)])
    assert max_extent(line, (1.0, 1.0)) == pytest.approx(math.hypot(20, 1))


def test_cli_report(tmp_path, capsys):
    seg_dir = tmp_path / 'labelsTr'
    seg_dir.mkdir()
    image = sitk.GetImageFromArray(kits_volume())
    image.SetSpacing(SPACING[::-1])
    sitk.WriteImage(image, str(seg_dir / 'case_00002.nii.gz'))
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 4, 4), np.uint8)), str(seg_dir / 'case_00003.nii.gz'))
    main([str(seg_dir), '-o', str(tmp_path / 'report.csv')])
    assert 'case_00002' in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / 'report.csv')))
    assert [(r['case'], r['tumor_count'], r['tumor_side']) for r in rows] == [('case_00002', '1', 'left'),
                                                                             ('case_00003', '0', '')]
    assert [r.case for r in measure_folder(seg_dir, num_processes=2)] == ['case_00002', 'case_00003']


def test_a_pool_keeps_the_case_order_logs_progress_and_raises_a_bad_case(tmp_path):
    seg_dir = tmp_path / 'data'
    for i in (1, 2, 3):
        write_kits_nifti(kits_volume(), SPACING, seg_dir / f'case_0000{i}' / 'segmentation.nii.gz')
    logs = []
    results = measure_folder(seg_dir, num_processes=2, log=logs.append)
    assert [r.case for r in results] == ['case_00001', 'case_00002', 'case_00003']
    assert logs == [f'[{i}/3] case_0000{i}: 1 tumor(s), 0 cyst(s)' for i in (1, 2, 3)]
    write_kits_nifti(np.full((4, 8, 8), 7, np.uint8), SPACING, seg_dir / 'case_00002' / 'segmentation.nii.gz')
    with pytest.raises(KiTS19Error, match='case_00002'):
        measure_folder(seg_dir, num_processes=2)


def test_cysts_in_kits23_maps_and_none_in_kits19_maps(tmp_path, capsys):
    seg_dir = tmp_path / 'dataset'
    kits23 = kits_volume()
    kits23[3:7, 20:28, 8:16] = 3  # a 4x8x8 cyst in the right kidney
    kits23[8, 28, 52] = 3  # one-voxel fragment (2.4 uL) in the left kidney
    write_kits_nifti(kits23, SPACING, seg_dir / 'case_00400' / 'segmentation.nii.gz')
    write_kits_nifti(kits_volume(), SPACING, seg_dir / 'case_00001' / 'segmentation.nii.gz')
    voxel_ml = np.prod(SPACING) / 1000
    result = measure_segmentation(sitk.ReadImage(str(seg_dir / 'case_00400' / 'segmentation.nii.gz')), 'case_00400')
    assert result.cysts_ml == [pytest.approx(4 * 8 * 8 * voxel_ml)] and result.ignored_cyst_fragments == 1
    assert result.right_kidney_ml == pytest.approx((8 * 20 * 15 - 1 - 4 * 8 * 8) * voxel_ml)
    assert measure_segmentation(sitk.ReadImage(str(seg_dir / 'case_00400' / 'segmentation.nii.gz')), 'case_00400',
                                min_cyst_ml=1.0).cysts_ml == []
    main([str(seg_dir), '-o', str(tmp_path / 'report.csv')])
    assert 'case_00400: 1 tumor(s), 1 cyst(s)' in capsys.readouterr().out
    rows = {r['case']: r for r in csv.DictReader(open(tmp_path / 'report.csv'))}
    assert (rows['case_00400']['cyst_count'], rows['case_00400']['cyst_ml']) == ('1', str(round(256 * voxel_ml, 2)))
    assert (rows['case_00001']['cyst_count'], rows['case_00001']['cyst_ml']) == ('0', '0.0')
