#!/usr/bin/env python
"""GPU check of the boundary-aware network (Myronenko & Hatamizadeh 2019) at the paper's scale, through
nnU-Net's own trainer step and predictor. Prints one JSON line of figures.

1. training iterations (nnU-Net's ``train_step``: AMP on CUDA, grad clipping, SGD) of BoundaryTrainer
   and of nnU-Net's PlainConvUNet baseline (``3d_fullres_baseline``), same patch, batch and targets:
   median seconds per iteration and peak CUDA memory;
2. sliding-window prediction (``nnUNetPredictor.predict_sliding_window_return_logits``, step 0.5,
   Gaussian, no mirroring) of one synthetic CT of KiTS size at 1 mm with the boundary network;
3. with >= 2 visible GPUs (or ``--num-gpus N``): ``nnUNetv2_train ... -tr BoundaryTrainer_smoke
   -num_gpus 2`` on a small synthetic dataset, i.e. nnU-Net's DDP launcher, NCCL and our losses' all-gathers.

    python scripts/gpu_check.py                                    # CUDA, 176^3, the plans' batch
    python scripts/gpu_check.py --device cpu --patch 32 --iterations 2 --predict-shape 48 48 48

``--num-gpus N`` first checks that N GPUs are visible: nnU-Net's ``-num_gpus`` does not (a rank without a
GPU dies in ``torch.cuda.set_device`` with "invalid device ordinal").
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.network.activation_memory import saved_activation_bytes
from nnunet_boundary.planning.reference_plans import nnunet_ct_plans
from nnunet_boundary.planning.templates import BASELINE_CONFIGURATION, PLANS_NAME, apply_template, load_template, \
    validate_template
from nnunet_boundary.regions import KITS19_DATASET_JSON
from nnunet_boundary.training.initialization import initialized_trainer

DATASET_JSON = dict(KITS19_DATASET_JSON, numTraining=1)
GIB = 2 ** 30


def check_plans(template_name: str, patch: int, batch_size: int = None) -> dict:
    template = load_template(template_name)
    template['patch_size'] = [patch] * 3
    if batch_size is not None:
        template['batch_size'] = batch_size
    validate_template(template, f'{template_name} with patch {patch}^3')
    return apply_template(nnunet_ct_plans(median_shape=(300, 400, 400)), template)


def make_trainer(trainer_class, plans: dict, configuration: str, device: torch.device):
    """A trainer for KiTS19's dataset.json, initialized by nnU-Net (network, loss, optimizer) without data."""
    return initialized_trainer(trainer_class, plans, configuration, DATASET_JSON, device)


def synthetic_batch(trainer, device: torch.device) -> dict:
    """CT-like noise and nested kidney / tumor boxes, with targets at every deep-supervision scale."""
    patch, batch = trainer.configuration_manager.patch_size, trainer.batch_size
    target = torch.zeros(batch, 2, *patch)
    p = patch[0]
    target[:, 0, p // 4:3 * p // 4, p // 4:3 * p // 4, p // 3:2 * p // 3] = 1
    target[:, 1, 3 * p // 8:p // 2, 3 * p // 8:p // 2, 3 * p // 8:p // 2] = 1
    targets = [torch.nn.functional.interpolate(target, scale_factor=[float(s) for s in scale], mode='nearest-exact')
               for scale in trainer._get_deep_supervision_scales()]
    return {'data': torch.randn(batch, 1, *patch, device=device), 'target': [t.to(device) for t in targets]}


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _peak_and_reset(device: torch.device):
    if device.type != 'cuda':
        return None
    peak = torch.cuda.max_memory_allocated(device) / GIB
    torch.cuda.reset_peak_memory_stats(device)
    return round(peak, 3)


def time_training(trainer, device: torch.device, iterations: int) -> dict:
    batch = synthetic_batch(trainer, device)
    trainer.network.train()
    trainer.train_step(batch)  # warm-up: cuDNN autotuning, allocator
    _sync(device)
    _peak_and_reset(device)
    seconds, losses = [], []
    for _ in range(iterations):
        start = time.perf_counter()
        losses.append(float(trainer.train_step(batch)['loss']))
        _sync(device)
        seconds.append(time.perf_counter() - start)
    patch = trainer.configuration_manager.patch_size
    return {'network': type(trainer.network).__name__, 'iteration_s_median': round(statistics.median(seconds), 4),
            'peak_memory_gib': _peak_and_reset(device), 'loss_first': round(losses[0], 4),
            'loss_last': round(losses[-1], 4),
            'fp32_saved_activations_gib': round(
                saved_activation_bytes(trainer.network, (trainer.batch_size, 1, *patch)) / GIB, 3),
            'parameters_m': round(sum(p.numel() for p in trainer.network.parameters()) / 1e6, 3)}


def time_prediction(trainer, device: torch.device, shape) -> dict:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    trainer.set_deep_supervision_enabled(False)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=device.type == 'cuda', device=device, verbose=False,
                                allow_tqdm=False)
    predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager, None,
                                    DATASET_JSON, type(trainer).__name__, None)
    image = torch.randn(1, *shape)
    _peak_and_reset(device)
    start = time.perf_counter()
    logits = predictor.predict_sliding_window_return_logits(image)
    _sync(device)
    return {'shape': list(shape), 'seconds': round(time.perf_counter() - start, 3),
            'peak_memory_gib': _peak_and_reset(device), 'logits_shape': list(logits.shape)}


def ddp_training(num_gpus: int, workdir: Path) -> dict:
    """``nnUNetv2_train 900 3d_fullres 0 -tr BoundaryTrainer_smoke -p nnUNetBoundaryPlans -num_gpus N`` on
    16 synthetic cases (cpu_smoke template, 32^3, global batch 2 per GPU): 10 epochs x 15 iterations and
    the final validation, through nnU-Net's launcher."""
    from nnunet_boundary.data.synthetic import write_synthetic_dataset
    from nnunet_boundary.demo import DATASET_ID, DATASET_NAME
    from nnunet_boundary.nnunet_commands import nnunet_environment, run_nnunet
    from nnunet_boundary.planning.plan_and_preprocess import plan_and_preprocess
    raw, preprocessed, results = workdir / 'nnUNet_raw', workdir / 'nnUNet_preprocessed', workdir / 'nnUNet_results'
    env = nnunet_environment(raw, preprocessed, results, n_proc=4)
    os.environ.update({k: env[k] for k in ('nnUNet_raw', 'nnUNet_preprocessed', 'nnUNet_results')})
    write_synthetic_dataset(raw / DATASET_NAME, 16, 1, shape=(32, 48, 48), spacing_zyx=(2.5, 2.5, 2.5))
    template = load_template('cpu_smoke')
    template['batch_size'] = 2 * num_gpus
    plan_and_preprocess(DATASET_ID, template, num_processes=4)
    start = time.perf_counter()
    command = ['nnUNetv2_train', DATASET_ID, '3d_fullres', 0, '-tr', 'BoundaryTrainer_smoke', '-p', PLANS_NAME,
               '-num_gpus', num_gpus]
    try:
        run_nnunet(command, env, workdir / 'ddp_train.log')
    except NnUNetBoundaryError as e:
        return {'num_gpus': num_gpus, 'ok': False, 'error': str(e)[-2000:]}
    final = results / DATASET_NAME / f'BoundaryTrainer_smoke__{PLANS_NAME}__3d_fullres' / 'fold_0' / \
        'checkpoint_final.pth'
    return {'num_gpus': num_gpus, 'ok': final.is_file(), 'seconds': round(time.perf_counter() - start, 1)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda', choices=('cuda', 'cpu'))
    parser.add_argument('--template', default='kits19_176', help='plans template (default: the paper\'s)')
    parser.add_argument('--patch', type=int, default=176, help='cubic patch edge (default 176)')
    parser.add_argument('--batch', type=int, default=None, help="global batch (default: the template's)")
    parser.add_argument('--iterations', type=int, default=10, help='timed training iterations per network')
    parser.add_argument('--predict-shape', type=int, nargs=3, default=(300, 400, 400),
                        help='voxels of the synthetic CT to predict (default: KiTS case at 1 mm)')
    parser.add_argument('--num-gpus', type=int, default=None,
                        help='GPUs for the DDP run (default: 2 if >= 2 are visible, else no DDP run)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault('nnUNet_compile', 'false')
    visible = torch.cuda.device_count()
    try:
        if args.device == 'cuda' and visible == 0:
            raise NnUNetBoundaryError("no CUDA GPU visible (torch.cuda.device_count() == 0); check the driver and "
                                      "CUDA_VISIBLE_DEVICES, or run with --device cpu")
        num_gpus = args.num_gpus if args.num_gpus is not None else (2 if visible >= 2 else 0)
        if num_gpus > visible:
            raise NnUNetBoundaryError(f"--num-gpus {num_gpus} but only {visible} GPU(s) visible: nnUNetv2_train "
                                      f"-num_gpus {num_gpus} would fail in its ranks. Use -num_gpus <= {visible} "
                                      f"or make more GPUs visible (CUDA_VISIBLE_DEVICES).")
        device = torch.device(args.device, 0) if args.device == 'cuda' else torch.device('cpu')
        plans = check_plans(args.template, args.patch, args.batch)
    except NnUNetBoundaryError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunet_boundary.training.boundary_trainer import BoundaryTrainer
    figures = {'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
               'gpus_visible': visible, 'torch': torch.__version__, 'patch': [args.patch] * 3,
               'amp': device.type == 'cuda', 'iterations': args.iterations}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ['nnUNet_results'] = tmp  # the trainers' log files
        boundary = make_trainer(BoundaryTrainer, plans, '3d_fullres', device)
        figures['batch'] = boundary.batch_size
        figures['boundary'] = time_training(boundary, device, args.iterations)
        figures['predict'] = time_prediction(boundary, device, args.predict_shape)
        del boundary
        baseline = make_trainer(nnUNetTrainer, plans, BASELINE_CONFIGURATION, device)
        figures['baseline'] = time_training(baseline, device, args.iterations)
        del baseline
        figures['ddp'] = ddp_training(num_gpus, Path(tmp)) if num_gpus >= 2 else \
            {'skipped': f'{visible} GPU(s) visible; needs 2'}
    print(json.dumps(figures))
    return 0 if figures['ddp'].get('ok', True) else 1


if __name__ == '__main__':
    sys.exit(main())
