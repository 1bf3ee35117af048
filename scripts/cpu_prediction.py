#!/usr/bin/env python
"""CPU prediction cost at the paper's scale (1 mm, patch 176^3), boundary network vs nnU-Net's baseline.

* ``window``: one 176^3 window, forward pass in eval mode (batch 1, as nnU-Net's sliding window runs
  it): median seconds and the process's peak RSS;
* ``whole_ct``: one whole KiTS-size synthetic CT (default 300 x 400 x 400 voxels at 1 mm) through
  nnU-Net's own predictor (``nnUNetPredictor.predict_from_files_sequential``: preprocessing,
  sliding window with step 0.5 and Gaussian weighting, resampling and export, all in one process),
  one fold, no TTA: minutes per case and the process's peak RSS -- what a hospital without a GPU waits.

Networks: plans template ``kits19_176`` (BoundaryAwareUNet 16-256) and nnU-Net's PlainConvUNet at its
default widths 32-320 on the same strides (``3d_fullres_baseline``). Weights are freshly initialised:
time and memory do not depend on their values. Every measurement runs in a fresh process, boundary and
baseline alternating, so one model's memory never counts for the other. Example::

    python scripts/cpu_prediction.py --out benchmarks/cpu_prediction/paper_scale.json
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.data.synthetic import synthetic_case
from nnunet_boundary.regions import KITS19_DATASET_JSON as DATASET_JSON
from nnunet_boundary.environment import with_trainer_dir
from nnunet_boundary.planning.reference_plans import nnunet_ct_plans
from nnunet_boundary.planning.templates import BASELINE_CONFIGURATION, apply_template, load_template

MODELS = {'boundary': ('BoundaryTrainer', '3d_fullres'), 'baseline': ('nnUNetTrainer', BASELINE_CONFIGURATION)}
CT_INTENSITIES = {'0': {'mean': 100.0, 'std': 60.0, 'percentile_00_5': -80.0, 'percentile_99_5': 300.0,
                        'median': 100.0, 'min': -1000.0, 'max': 1500.0}}

#: nnU-Net's default resampling (what its planner writes for an isotropic dataset)
NNUNET_RESAMPLING = {
    'resampling_fn_data': 'resample_data_or_seg_to_shape', 'resampling_fn_seg': 'resample_data_or_seg_to_shape',
    'resampling_fn_probabilities': 'resample_data_or_seg_to_shape',
    'resampling_fn_data_kwargs': {'is_seg': False, 'order': 3, 'order_z': 0, 'force_separate_z': None},
    'resampling_fn_seg_kwargs': {'is_seg': True, 'order': 1, 'order_z': 0, 'force_separate_z': None},
    'resampling_fn_probabilities_kwargs': {'is_seg': False, 'order': 1, 'order_z': 0, 'force_separate_z': None}}


def paper_plans() -> dict:
    plans = apply_template(nnunet_ct_plans(median_shape=(300, 400, 400)), load_template('kits19_176'))
    plans['foreground_intensity_properties_per_channel'] = CT_INTENSITIES
    plans['configurations']['3d_fullres'].update(NNUNET_RESAMPLING)
    return plans


def build_network(model: str, plans: dict) -> torch.nn.Module:
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_boundary.benchmark.trainers import find_trainer_class
    trainer_name, configuration = MODELS[model]
    plans_manager = PlansManager(plans)
    network = find_trainer_class(trainer_name).build_network_architecture(
        plans_manager, plans_manager.get_configuration(configuration), 1, 2, enable_deep_supervision=False)
    return network.eval()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_window(model: str, patch: int, repeats: int) -> dict:
    torch.set_num_threads(os.cpu_count())
    network = build_network(model, paper_plans())
    x = torch.randn(1, 1, patch, patch, patch)
    seconds = []
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first call warms up
            started = time.perf_counter()
            network(x)
            seconds.append(time.perf_counter() - started)
    return {'forward_seconds': seconds[1:], 'forward_seconds_median': statistics.median(seconds[1:]),
            'peak_rss_bytes': peak_rss_bytes()}


def write_model_folder(model: str, folder: Path) -> None:
    """A model folder as nnUNetv2_train leaves it (plans, dataset.json, fold_0/checkpoint_final.pth)."""
    trainer_name, configuration = MODELS[model]
    plans = paper_plans()
    (folder / 'fold_0').mkdir(parents=True, exist_ok=True)
    (folder / 'plans.json').write_text(json.dumps(plans))
    (folder / 'dataset.json').write_text(json.dumps(dict(DATASET_JSON, numTraining=1)))
    torch.save({'network_weights': build_network(model, plans).state_dict(), 'trainer_name': trainer_name,
                'init_args': {'plans': plans, 'configuration': configuration, 'fold': 0,
                              'dataset_json': DATASET_JSON, 'device': 'cpu'},
                'inference_allowed_mirroring_axes': (0, 1, 2)}, folder / 'fold_0' / 'checkpoint_final.pth')


def write_ct(shape, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    image, _ = synthetic_case(tuple(shape), seed=0)
    sitk_image = sitk.GetImageFromArray(image.astype(np.int16))
    sitk_image.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(sitk_image, str(folder / 'case_00000_0000.nii.gz'))


def measure_whole_ct(model: str, shape) -> dict:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    torch.set_num_threads(os.cpu_count())
    os.environ['nnUNet_extTrainer'] = with_trainer_dir(os.environ.get('nnUNet_extTrainer', ''))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_model_folder(model, tmp / 'model')
        write_ct(shape, tmp / 'in')
        (tmp / 'out').mkdir()  # nnU-Net's sequential prediction does not create it
        predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                    perform_everything_on_device=True, device=torch.device('cpu'), verbose=False,
                                    verbose_preprocessing=False, allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(str(tmp / 'model'), (0,), 'checkpoint_final.pth')
        started = time.perf_counter()
        predictor.predict_from_files_sequential(str(tmp / 'in'), str(tmp / 'out'), False, True, None)
        seconds = time.perf_counter() - started
        written = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp / 'out' / 'case_00000.nii.gz'))).shape
    return {'seconds': seconds, 'minutes': seconds / 60, 'peak_rss_bytes': peak_rss_bytes(),
            'output_shape': list(written)}


def in_fresh_process(kind: str, **kwargs) -> dict:
    result = subprocess.run([sys.executable, __file__, '--worker', json.dumps(dict(kwargs, kind=kind))],
                            capture_output=True, text=True, env=dict(os.environ, nnUNet_compile='false'))
    if result.returncode != 0:
        sys.exit(f"error: {kind} measurement of {kwargs['model']} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(kinds, patch: int, repeats: int, shape, log=print) -> dict:
    results = {'patch': patch, 'whole_ct_shape': list(shape), 'torch_threads': os.cpu_count(), 'torch': torch.__version__}
    for kind in kinds:
        results[kind] = {}
        for model in ('boundary', 'baseline'):  # boundary first, then baseline: one fresh process each
            log(f"{kind}: {model} ...")
            args = dict(model=model, patch=patch, repeats=repeats) if kind == 'window' else dict(model=model,
                                                                                               shape=list(shape))
            results[kind][model] = in_fresh_process(kind, **args)
            log(f"{kind}: {model}: {json.dumps(results[kind][model])}")
        key = 'forward_seconds_median' if kind == 'window' else 'seconds'
        results[kind]['ratio_time'] = results[kind]['boundary'][key] / results[kind]['baseline'][key]
        results[kind]['ratio_peak_rss'] = (results[kind]['boundary']['peak_rss_bytes']
                                           / results[kind]['baseline']['peak_rss_bytes'])
    return results


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--measure', nargs='+', choices=['window', 'whole_ct'], default=['window', 'whole_ct'],
                        help='what to measure (default: both)')
    parser.add_argument('--patch', type=int, default=176, help='window edge in voxels (default 176)')
    parser.add_argument('--repeats', type=int, default=3, help='timed forward passes per window (default 3)')
    parser.add_argument('--shape', type=int, nargs=3, default=[300, 400, 400], metavar=('Z', 'Y', 'X'),
                        help='whole-CT size in voxels at 1 mm (default 300 400 400)')
    parser.add_argument('--out', type=Path, help='write the measurements as JSON here')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        kind = spec.pop('kind')
        print(json.dumps(measure_window(**spec) if kind == 'window' else measure_whole_ct(**spec)), flush=True)
        return
    results = measure(args.measure, args.patch, args.repeats, args.shape)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(results, args.out)


if __name__ == '__main__':
    main()
