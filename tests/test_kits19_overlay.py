"""Overlay PNGs: size, default slice, CLI on KiTS19-style files."""
import numpy as np
import SimpleITK as sitk
import pytest
from matplotlib.image import imread

from nnunet_boundary.cli.overlay import main
from nnunet_boundary.kits19.io import write_kits_nifti
from nnunet_boundary.kits19.overlay import default_slice, lps_array, region_boundary, save_overlay


def volumes(shape=(12, 40, 40)):
    image = np.full(shape, 40, np.int16)
    gt = np.zeros(shape, np.uint8)
    gt[2:10, 10:30, 10:30] = 1
    gt[7, 15:27, 15:27] = 2
    gt[5, 18:21, 18:21] = 2
    return image, gt


def test_png_size_and_default_slice(tmp_path):
    image, gt = volumes()
    pred = gt.copy()
    pred[pred == 2] = 1
    shown = save_overlay(image, gt, pred, tmp_path / 'o.png', spacing=(3, 1, 1), boundary=True, panel_inches=2, dpi=50)
    assert shown == default_slice(gt) == 7
    png = imread(tmp_path / 'o.png')
    assert png.shape[1] == 4 * 2 * 50  # four panels of 2 inches at 50 dpi
    assert png.shape[0] == round((2 + 0.25) * 50)


def test_boundary_is_the_region_rim():
    region = np.zeros((9, 9), bool)
    region[2:7, 2:7] = True
    rim = region_boundary(region)
    assert rim[2, 4] and rim[1, 4] and not rim[4, 4] and not rim[0, 4]


def test_mismatched_shapes_are_refused(tmp_path):
    image, gt = volumes()
    with pytest.raises(ValueError, match='one shape'):
        save_overlay(image, gt, gt[:5], tmp_path / 'o.png')


def test_cli_on_kits_files(tmp_path, capsys):
    image, gt = volumes()
    write_kits_nifti(image, (3.0, 1.0, 1.0), tmp_path / 'case_00001' / 'imaging.nii.gz')
    write_kits_nifti(gt, (3.0, 1.0, 1.0), tmp_path / 'case_00001' / 'segmentation.nii.gz')
    args = [str(tmp_path / 'case_00001' / 'imaging.nii.gz'), str(tmp_path / 'case_00001' / 'segmentation.nii.gz')]
    main(args + ['--boundary', '-o', str(tmp_path / 'o.png')])
    assert imread(tmp_path / 'o.png').shape[1] == 800
    assert 'axial slice' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(args + ['--slice', '99', '-o', str(tmp_path / 'x.png')])
    assert exit_info.value.code == 2 and '--slice 99' in capsys.readouterr().err


def test_lps_array_puts_axial_slices_first(tmp_path):
    write_kits_nifti(np.zeros((6, 20, 30), np.int16), (3.0, 1.0, 0.5), tmp_path / 'img.nii.gz')
    array, spacing = lps_array(sitk.ReadImage(str(tmp_path / 'img.nii.gz')))
    assert array.shape == (6, 20, 30) and spacing == (3.0, 1.0, 0.5)


def test_label_map_of_another_grid_is_refused(tmp_path, capsys):
    image, gt = volumes()
    write_kits_nifti(image, (3.0, 1.0, 1.0), tmp_path / 'img.nii.gz')
    write_kits_nifti(gt, (2.0, 1.0, 1.0), tmp_path / 'seg.nii.gz')
    with pytest.raises(SystemExit):
        main([str(tmp_path / 'img.nii.gz'), str(tmp_path / 'seg.nii.gz'), '-o', str(tmp_path / 'o.png')])
    assert 'differ in spacing' in capsys.readouterr().err
