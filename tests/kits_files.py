"""KiTS files written by the tests: cases in the official layout, label maps as nnU-Net and the metrics read them."""
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from nnunet_boundary.kits19.io import write_kits_nifti


def write_kits_case(cases_folder: Path, name: str, labels: np.ndarray, spacing: Sequence[float],
                    seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``cases_folder/name/{imaging,segmentation}.nii.gz`` in the KiTS NIfTI convention: random HU of the label
    map's shape, and the label map; returns both."""
    image = np.random.default_rng(seed).integers(-1000, 1000, labels.shape).astype(np.int16)
    write_kits_nifti(image, spacing, cases_folder / name / 'imaging.nii.gz')
    write_kits_nifti(labels, spacing, cases_folder / name / 'segmentation.nii.gz')
    return image, labels


def write_label_map(labels: np.ndarray, path: Path, spacing: Sequence[float] = (3.0, 0.8, 0.8)) -> None:
    """A (z, y, x) label map with ``spacing`` (z, y, x, mm) as SimpleITK writes it (nnU-Net's predictions)."""
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(spacing[::-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
