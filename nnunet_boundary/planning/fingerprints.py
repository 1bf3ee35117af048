"""A dataset as nnU-Net's planner sees it, without images: ``dataset.json`` and
``dataset_fingerprint.json`` for cases of one spacing and shape. For planning tables and tests
(``scripts/planner_table.py``, ``tests/test_planner.py``); planning it needs no image file, only
preprocessing does.

:data:`KITS19_AT_1MM` is KiTS19 (210 training cases) resampled to the paper's 1 mm: the median
extent of the 160 label maps in ``../shared/kits19`` is 345.75 x 409 x 409 mm (slices x rows x
columns; median spacing 3 x 0.80 x 0.80 mm, 111.5 x 512 x 512 voxels), read from their NIfTI headers.
"""
import json
from pathlib import Path
from typing import Sequence

from nnunet_boundary.regions import KITS19_DATASET_JSON

KITS19_AT_1MM = dict(spacing=(1.0, 1.0, 1.0), shape=(346, 409, 409), num_cases=210)

#: nnU-Net's CT statistics of the foreground (used by CT normalisation only; any plausible values plan alike)
_CT_FOREGROUND = {'mean': 100.0, 'median': 100.0, 'std': 80.0, 'min': -1000.0, 'max': 2000.0,
                  'percentile_99_5': 300.0, 'percentile_00_5': -80.0}


def write_fingerprint_dataset(raw: Path, preprocessed: Path, dataset_name: str, spacing: Sequence[float],
                              shape: Sequence[int], num_cases: int, dataset_json: dict = None) -> None:
    """``raw/dataset_name/dataset.json`` (KiTS19's regions unless given, cases listed but not written) and
    ``preprocessed/dataset_name/dataset_fingerprint.json`` with every case of ``spacing`` and ``shape``
    (axes in the images' z, y, x order)."""
    cases = [f'case_{i:05d}' for i in range(num_cases)]
    dataset = dict(dataset_json or KITS19_DATASET_JSON, numTraining=num_cases,
                   overwrite_image_reader_writer='SimpleITKIO',
                   dataset={c: {'images': [f'imagesTr/{c}_0000.nii.gz'], 'label': f'labelsTr/{c}.nii.gz'}
                            for c in cases})
    fingerprint = {'spacings': [list(spacing)] * num_cases, 'shapes_after_crop': [list(shape)] * num_cases,
                   'foreground_intensity_properties_per_channel': {'0': _CT_FOREGROUND},
                   'median_relative_size_after_cropping': 1.0}
    for folder, name, content in ((raw, 'dataset.json', dataset), (preprocessed, 'dataset_fingerprint.json',
                                                                    fingerprint)):
        (Path(folder) / dataset_name).mkdir(parents=True, exist_ok=True)
        (Path(folder) / dataset_name / name).write_text(json.dumps(content, indent=2))
