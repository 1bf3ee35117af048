#!/usr/bin/env python
"""Predict a folder with one fold of a BoundaryTrainer model through nnU-Net's predictor (no TTA), saving
segmentations and probabilities, using whatever ``nnunet_boundary`` is first on ``PYTHONPATH``: run it
once with an older checkout of the package and once with this one, then ``--compare`` the two outputs.
Only interfaces both versions share are used (``BoundaryTrainer.build_network_architecture`` and
nnU-Net's predictor), so the checkpoint's own trainer name need not exist in the older version.

    PYTHONPATH=/path/to/old/checkout python predict_with_checkpoint.py MODEL_FOLDER IMAGES OUT_BEFORE
    python predict_with_checkpoint.py MODEL_FOLDER IMAGES OUT_AFTER
    python predict_with_checkpoint.py --compare OUT_BEFORE OUT_AFTER [--json F]
"""
import argparse
import json
from pathlib import Path

import numpy as np


def predict(model: Path, images: Path, out: Path, fold: int = 0) -> None:
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    import nnunet_boundary
    from nnunet_boundary.training.boundary_trainer import BoundaryTrainer
    print(f"nnunet_boundary from {Path(nnunet_boundary.__file__).parent}")
    checkpoint = torch.load(model / f'fold_{fold}' / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    plans_manager = PlansManager(json.loads((model / 'plans.json').read_text()))
    configuration = plans_manager.get_configuration(checkpoint['init_args']['configuration'])
    dataset_json = json.loads((model / 'dataset.json').read_text())
    label_manager = plans_manager.get_label_manager(dataset_json)
    network = BoundaryTrainer.build_network_architecture(plans_manager, configuration, 1,
                                                         label_manager.num_segmentation_heads, False)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=True, device=torch.device('cpu'), allow_tqdm=False)
    predictor.manual_initialization(network, plans_manager, configuration, [checkpoint['network_weights']],
                                    dataset_json, 'BoundaryTrainer', None)
    predictor.predict_from_files(str(images), str(out), save_probabilities=True, overwrite=True,
                                 num_processes_preprocessing=1, num_processes_segmentation_export=1)


def compare(before: Path, after: Path) -> dict:
    """Voxels whose label differs, and how close the two probabilities were wherever they differ."""
    import SimpleITK as sitk
    per_case, total, differing = {}, 0, 0
    for seg in sorted(before.glob('*.nii.gz')):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(seg)))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(after / seg.name)))
        case = seg.name[:-len('.nii.gz')]
        pa, pb = (np.load(folder / f'{case}.npz')['probabilities'] for folder in (before, after))
        changed = a != b
        per_case[case] = {'voxels': int(a.size), 'labels_differing': int(changed.sum()),
                          'max_probability_difference': float(np.abs(pa - pb).max()),
                          'max_probability_difference_where_labels_differ':
                              float(np.abs(pa - pb)[:, changed].max()) if changed.any() else 0.0,
                          # per differing voxel, the region probability nearest the 0.5 threshold (a tie)
                          'largest_distance_from_a_tie_where_labels_differ':
                              float(np.abs(pb[:, changed] - 0.5).min(axis=0).max()) if changed.any() else None}
        total += a.size
        differing += int(changed.sum())
    return {'cases': len(per_case), 'voxels': total, 'labels_differing': differing,
            'max_probability_difference': max(c['max_probability_difference'] for c in per_case.values()),
            'per_case': per_case}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('paths', nargs='+', type=Path, help='MODEL_FOLDER IMAGES OUT, or with --compare: BEFORE AFTER')
    parser.add_argument('--compare', action='store_true', help='compare two prediction folders')
    parser.add_argument('--json', type=Path, help='with --compare: write the comparison here')
    args = parser.parse_args()
    if args.compare:
        result = compare(*args.paths)
        print(json.dumps({k: v for k, v in result.items() if k != 'per_case'}, indent=1))
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + '\n')
    else:
        predict(*args.paths)


if __name__ == '__main__':
    main()
