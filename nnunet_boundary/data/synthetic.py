"""Small synthetic CT-like kidney/tumor volumes, written as an nnU-Net v2 raw dataset.

Each case is an abdomen-like cross-section: air, a body ellipse of soft tissue with a rim of
subcutaneous fat, a bright vertebra, two kidneys (ellipsoids with a bright cortex and darker
medulla, as in the arterial phase) and a heterogeneous tumor growing out of one kidney's
surface; partial-volume blur and noise on a Hounsfield-like scale. Labels follow KiTS19
(0 background, 1 kidney, 2 tumor) and the dataset declares the two nested regions the
boundary-aware network predicts. With ``cysts=True`` the other kidney also carries a water-like
cyst (label 3) and the dataset declares KiTS23's three nested regions. Everything is deterministic
in ``seed``; ``cysts=False`` gives the same cases as before cysts existed.
"""
import json
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import gaussian_filter

from nnunet_boundary.atomic_files import write_image_atomically
from nnunet_boundary.regions import KITS19_DATASET_JSON, KITS23_DATASET_JSON


def ellipsoid(grid: Sequence[np.ndarray], centre: Sequence[float], radii: Sequence[float]) -> np.ndarray:
    """Normalised squared distance from ``centre`` (< 1 inside the ellipsoid of semi-axes ``radii``),
    broadcast over the coordinate arrays of ``grid`` (synthetic cases and the phantoms' organs)."""
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii))


def synthetic_case(shape: Tuple[int, int, int] = (40, 64, 64), seed: int = 0,
                   cyst: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """One case: ``(image in HU as float32, labels as uint8)``, both ``(z, y, x)``; ``cyst`` adds a
    KiTS23 cyst (label 3) to the kidney without the tumor."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in shape), indexing='ij')
    nz, ny, nx = shape
    image = np.full(shape, -1000, np.float32)
    body = ellipsoid((y, x), (ny * 0.5, nx * 0.5), (ny * 0.42, nx * 0.47)) < 1
    image[body] = -100 + rng.normal(0, 5)                      # subcutaneous fat
    image[ellipsoid((y, x), (ny * 0.5, nx * 0.5), (ny * 0.36, nx * 0.41)) < 1] = 45  # muscle / soft tissue
    spine = ellipsoid((y, x), (ny * 0.7, nx * 0.5), (ny * 0.08, nx * 0.07)) < 1
    image[spine] = 500

    labels = np.zeros(shape, np.uint8)
    kidney_depth = np.zeros(shape, np.float32)
    for side in (-1, 1):
        centre = (nz * rng.uniform(0.42, 0.58), ny * rng.uniform(0.55, 0.65),
                  nx * (0.5 + side * rng.uniform(0.2, 0.25)))
        radii = (nz * rng.uniform(0.22, 0.3), ny * rng.uniform(0.1, 0.13), nx * rng.uniform(0.07, 0.09))
        d = ellipsoid((z, y, x), centre, radii)
        labels[d < 1] = 1
        kidney_depth = np.maximum(kidney_depth, np.clip(1 - d, 0, 1))
    # tumor: a sphere centred near the surface of one kidney, so it bulges out of it
    kidney_voxels = np.argwhere((labels == 1) & (kidney_depth < 0.25))
    tumor_centre = kidney_voxels[rng.integers(len(kidney_voxels))]
    tumor_radius = rng.uniform(0.06, 0.11) * min(ny, nx)
    tumor = ellipsoid((z, y, x), tumor_centre, (tumor_radius * 0.8, tumor_radius, tumor_radius)) < 1
    labels[tumor & body] = 2
    if cyst:
        _add_cyst(labels, (z, y, x), kidney_depth, tumor_centre, min(ny, nx), rng)

    kidney = labels == 1
    image[kidney] = 80 + 140 * np.clip(1 - kidney_depth[kidney] / 0.5, 0, 1)  # bright cortex, darker medulla
    texture = gaussian_filter(rng.normal(0, 1, shape).astype(np.float32), 1.5)
    texture /= texture.std()
    image[labels == 2] = 100 + 35 * texture[labels == 2]                        # heterogeneous tumor
    image[labels == 3] = 10                                                     # water-like cyst
    image = gaussian_filter(image, 0.7)                                         # partial volume
    image += rng.normal(0, 15, shape).astype(np.float32)                        # quantum noise
    return image.astype(np.float32), labels


def _add_cyst(labels: np.ndarray, grid, kidney_depth: np.ndarray, tumor_centre, size: int,
              rng: np.random.Generator) -> None:
    """A spherical cyst (label 3) at the surface of the kidney on the other side from the tumor."""
    other_side = (grid[2] < labels.shape[2] / 2) != (tumor_centre[2] < labels.shape[2] / 2)
    candidates = np.argwhere((labels == 1) & (kidney_depth < 0.3) & other_side)
    centre = candidates[rng.integers(len(candidates))]
    radius = rng.uniform(0.05, 0.08) * size
    labels[(ellipsoid(grid, centre, (radius, radius, radius)) < 1) & (labels != 2)] = 3


def _write(array: np.ndarray, spacing_zyx, path: Path) -> None:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))
    write_image_atomically(img, path)


def write_synthetic_dataset(out_dir: Path, num_train: int = 20, num_test: int = 4,
                            shape: Tuple[int, int, int] = (40, 64, 64),
                            spacing_zyx: Tuple[float, float, float] = (2.0, 2.0, 2.0), seed: int = 0,
                            cysts: bool = False) -> Path:
    """Write ``imagesTr``/``labelsTr`` (+ held-out ``imagesTs``/``labelsTs``) and ``dataset.json``
    into ``out_dir`` (e.g. ``$nnUNet_raw/Dataset900_SyntheticKidney``). Existing cases are kept.
    ``cysts``: every case has a cyst, and the dataset is KiTS23's three nested regions."""
    out_dir = Path(out_dir)
    for split, first, count in (('Tr', 0, num_train), ('Ts', num_train, num_test)):
        (out_dir / f'images{split}').mkdir(parents=True, exist_ok=True)
        (out_dir / f'labels{split}').mkdir(parents=True, exist_ok=True)
        for i in range(first, first + count):
            case = f'case_{i:05d}'
            image_file = out_dir / f'images{split}' / f'{case}_0000.nii.gz'
            label_file = out_dir / f'labels{split}' / f'{case}.nii.gz'
            if image_file.exists() and label_file.exists():
                continue
            image, labels = synthetic_case(shape, seed * 100003 + i, cyst=cysts)
            _write(image, spacing_zyx, image_file)
            _write(labels, spacing_zyx, label_file)
    dataset_json = dict(KITS23_DATASET_JSON if cysts else KITS19_DATASET_JSON, name=out_dir.name, numTraining=num_train,
                        description='Synthetic CT-like kidney/tumor phantoms (nnunet-boundary)')
    (out_dir / 'dataset.json').write_text(json.dumps(dataset_json, indent=4) + '\n')
    return out_dir
