"""CT-like phantoms around KiTS19-style label maps: intensities, determinism, pinned output, layout, restart."""
import json

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from nnunet_boundary.cli.phantoms import main
from nnunet_boundary.atomic_files import partial_path
from nnunet_boundary.kits19.io import KiTS19Error, write_kits_nifti
from nnunet_boundary.kits19.phantoms import generate_phantoms, synthesize_ct

SPACING = (3.0, 4.0, 4.0)


def kidneys(shape=(16, 96, 96)):
    """Two ellipsoidal kidneys either side of the midline, a tumor on the patient's left one."""
    z, y, x = np.meshgrid(*(np.arange(n) / n for n in shape), indexing='ij')
    labels = np.zeros(shape, np.uint8)
    for centre_x in (0.3, 0.7):
        labels[((z - 0.5) / 0.38) ** 2 + ((y - 0.57) / 0.13) ** 2 + ((x - centre_x) / 0.09) ** 2 < 1] = 1
    labels[((z - 0.5) / 0.2) ** 2 + ((y - 0.52) / 0.07) ** 2 + ((x - 0.77) / 0.07) ** 2 < 1] = 2
    return labels


def test_intensities_are_ct_like():
    labels = kidneys()
    image = synthesize_ct(labels, SPACING, np.random.default_rng(0))
    assert image.dtype == np.int16 and image.shape == labels.shape
    assert np.median(image[0, :3, :3]) < -900  # air in the corner
    kidney, tumor = labels == 1, labels == 2
    below_surface = binary_erosion(kidney) & ~binary_erosion(kidney, iterations=2)  # outermost layer is blurred
    core = binary_erosion(kidney, iterations=4)
    assert np.median(image[below_surface]) > 120 and 40 < np.median(image[core]) < 110  # cortex over medulla
    assert np.median(image[below_surface]) > np.median(image[core]) + 40
    assert 20 < np.median(image[tumor]) < 130
    assert image.max() > 300  # bone / aorta


def test_synthesis_is_deterministic_per_seed():
    labels = kidneys()
    a = synthesize_ct(labels, SPACING, np.random.default_rng(5))
    b = synthesize_ct(labels, SPACING, np.random.default_rng(5))
    c = synthesize_ct(labels, SPACING, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_phantoms_are_pinned():
    """A phantom rendered today, pinned: the committed benchmarks (benchmarks/kits19_phantom_*, kits23_phantom_cpu)
    were run on phantoms from synthesize_ct, so when this fails because the phantoms changed (a tissue level, a
    random draw added, removed or reordered), those benchmarks must be rerun and these values updated with them.
    The draw count (the generator's next number) does not depend on floating-point details; mean and std (to
    1e-3 HU) catch a changed tissue or texture without failing on a library or CPU that rounds a few voxels
    differently (a byte hash would)."""
    labels = kidneys()
    z, y, x = np.meshgrid(*(np.arange(n) / n for n in labels.shape), indexing='ij')
    labels[((z - 0.5) / 0.25) ** 2 + ((y - 0.57) / 0.06) ** 2 + ((x - 0.3) / 0.05) ** 2 < 1] = 3  # cyst, right kidney
    rng = np.random.default_rng(2024)
    image = synthesize_ct(labels, SPACING, rng)
    assert rng.random() == 0.3294404931012823
    assert float(image.mean()) == pytest.approx(-341.1784, abs=1e-3)
    assert float(image.std()) == pytest.approx(467.0243, abs=1e-3)


@pytest.fixture
def masks(tmp_path):
    root = tmp_path / 'masks'
    for i in (3, 4):
        write_kits_nifti(kidneys((10, 48, 48)), (2.0, 1.0, 1.0), root / f'case_{i:05d}' / 'segmentation.nii.gz')
    (root / 'kits.json').write_text(json.dumps([{'case_id': 'case_00003', 'radiographic_size': 2.0},
                                                {'case_id': 'case_00004', 'radiographic_size': 3.0}]))
    return root


def test_layout_resampling_and_kits_json(masks, tmp_path):
    out = tmp_path / 'phantoms'
    generate_phantoms(masks, out, spacing_mm=4.0, seed=1, log=lambda _: None)
    image = nib.load(str(out / 'case_00003' / 'imaging.nii.gz'))
    seg = nib.load(str(out / 'case_00003' / 'segmentation.nii.gz'))
    assert image.shape == seg.shape == (5, 12, 12)
    expected = np.array([[0, 0, -4, 0], [0, -4, 0, 0], [-4, 0, 0, 0], [0, 0, 0, 1]])
    assert np.array_equal(image.affine, expected) and np.array_equal(seg.affine, expected)
    assert nib.aff2axcodes(image.affine) == ('I', 'P', 'L') and int(image.header['qform_code']) == 0
    assert image.get_data_dtype() == np.int16 and seg.get_data_dtype() == np.uint8
    assert set(np.unique(np.asanyarray(seg.dataobj))) == {0, 1, 2}
    records = json.loads((out / 'kits.json').read_text())
    assert records[0]['voxel_spacing'] == {'x_spacing': 4.0, 'y_spacing': 4.0, 'z_spacing': 4.0}


def test_rerun_skips_and_same_seed_same_files(masks, tmp_path):
    out = tmp_path / 'phantoms'
    generate_phantoms(masks, out, spacing_mm=4.0, cases=['3'], seed=7, log=lambda _: None)
    first = np.asanyarray(nib.load(str(out / 'case_00003' / 'imaging.nii.gz')).dataobj)
    stale = partial_path(out / 'case_00004' / 'imaging.nii.gz')
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'half written')
    logs = []
    status = generate_phantoms(masks, out, spacing_mm=4.0, seed=7, num_processes=2, log=logs.append)
    assert status == {'case_00003': 'skipped', 'case_00004': 'written'} and not stale.exists()
    assert any(line.startswith('[') and '/2] case_0000' in line for line in logs)
    again = tmp_path / 'again'
    generate_phantoms(masks, again, spacing_mm=4.0, cases=['case_00003'], seed=7, log=lambda _: None)
    assert np.array_equal(first, np.asanyarray(nib.load(str(again / 'case_00003' / 'imaging.nii.gz')).dataobj))


def test_bad_mask_names_the_case(masks, tmp_path, capsys):
    write_kits_nifti(np.full((4, 8, 8), 5, np.uint8), (2.0, 1.0, 1.0), masks / 'case_00004' / 'segmentation.nii.gz')
    with pytest.raises(KiTS19Error, match='case_00004'):
        generate_phantoms(masks, tmp_path / 'out', cases=['4'], log=lambda _: None)
    with pytest.raises(SystemExit) as exit_info:
        main([str(masks), str(tmp_path / 'out'), '--cases', '4'])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith('error: case_00004')


def test_a_broken_kits_json_is_reported_before_any_phantom_is_written(masks, tmp_path):
    (masks / 'kits.json').write_text('[{"case_id": "case_00003",}]')
    with pytest.raises(KiTS19Error, match='kits.json is not valid JSON'):
        generate_phantoms(masks, tmp_path / 'out', log=lambda _: None)
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())
