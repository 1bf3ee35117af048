#!/usr/bin/env python
"""What BoundaryPlanner chooses for a KiTS19-like dataset at 1 mm per GPU memory target, and the
calibration of the memory estimate it plans by. Prints three tables and writes them as JSON.

1. calibration: ``2 x compute_conv_feature_map_size`` (bytes per sample under AMP) against the tensors
   a forward pass on PyTorch's meta device saves in half precision (batch 2 minus batch 1), for
   several patch / width / stride configurations;
2. planner: patch, batch, stages and estimated training memory for each target, on the fingerprint
   ``nnunet_boundary.planning.fingerprints.KITS19_AT_1MM`` (210 cases, median 346 x 409 x 409 at 1 mm;
   no data needed), with nnU-Net's PlainConvUNet baseline at the same patch and batch;
3. train step: peak memory of one nnU-Net ``train_step`` of BoundaryTrainer against the estimate, in
   a fresh process: on CUDA (AMP) ``torch.cuda.max_memory_allocated`` for every target's plans; on the
   CPU (float32, no AMP) the growth of the resident set at a 64^3 patch, batch 2.

    python scripts/planner_table.py                      # the README's numbers
    python scripts/planner_table.py --targets 8 16 --device cuda --out /tmp/planner
"""
import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

SCRIPTS = Path(__file__).resolve().parent
GIB, MIB = 2 ** 30, 2 ** 20

#: (name, widths, strides, kernel sizes, blocks per stage, outputs, patch); conv dim from the patch
CALIBRATION = [
    ('paper 16-256, 64^3', [16, 32, 64, 128, 256], [[1] * 3] + [[2] * 3] * 4, 3, [1, 1, 1, 1, 4], 2, (64, 64, 64)),
    ('paper 16-256, 96^3', [16, 32, 64, 128, 256], [[1] * 3] + [[2] * 3] * 4, 3, [1, 1, 1, 1, 4], 2, (96, 96, 96)),
    ('planner 16-320, 6 stages, 64x96x128', [16, 32, 64, 128, 256, 320], [[1] * 3] + [[2] * 3] * 5, 3,
     [1] * 5 + [4], 2, (64, 96, 128)),
    ('anisotropic 16-256, 3 regions, 16x128x128', [16, 32, 64, 128, 256],
     [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]], [[1, 3, 3]] + [[3, 3, 3]] * 4, [1, 1, 1, 1, 4], 3,
     (16, 128, 128)),
    ('half width 8-64, 56^3', [8, 16, 32, 64], [[1] * 3] + [[2] * 3] * 3, 3, [1, 1, 1, 2], 2, (56, 56, 56)),
    ('wide 32-320, 2 blocks everywhere, 48^3', [32, 64, 128, 256, 320], [[1] * 3] + [[2] * 3] * 4, 3, [2] * 5, 2,
     (48, 48, 48)),
    ('2D 16-512, 256x320', [16, 32, 64, 128, 256, 512], [[1, 1]] + [[2, 2]] * 5, 3, [1] * 5 + [4], 2, (256, 320)),
]


def calibration_network(widths, strides, kernels, blocks, outputs, dim):
    from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareUNet
    conv, norm = {2: (torch.nn.Conv2d, torch.nn.InstanceNorm2d), 3: (torch.nn.Conv3d, torch.nn.InstanceNorm3d)}[dim]
    with torch.device('meta'):
        return BoundaryAwareUNet(1, outputs, len(widths), widths, conv, kernels, strides, blocks, norm_op=norm,
                                 norm_op_kwargs={'eps': 1e-5, 'affine': True}, nonlin=torch.nn.ReLU,
                                 nonlin_kwargs={'inplace': True}, deep_supervision=True)


def calibration() -> list:
    from nnunet_boundary.network.activation_memory import AMP_ACTIVATION_BYTES, saved_activation_bytes
    rows = []
    for name, widths, strides, kernels, blocks, outputs, patch in CALIBRATION:
        network = calibration_network(widths, strides, kernels, blocks, outputs, len(patch))
        saved = [saved_activation_bytes(network, (b, 1, *patch), torch.float16) for b in (1, 2)]
        estimate = int(network.compute_conv_feature_map_size(patch)) * AMP_ACTIVATION_BYTES
        rows.append({'configuration': name, 'patch': list(patch), 'estimate_mib_per_sample': estimate / MIB,
                     'meta_device_mib_per_sample': (saved[1] - saved[0]) / MIB,
                     'estimate_over_measured': estimate / (saved[1] - saved[0])})
    return rows


def kits19_like_dataset(root: Path) -> dict:
    """nnU-Net folders under ``root`` holding the KiTS19-at-1-mm fingerprint as dataset 500; its dataset.json."""
    from nnunet_boundary.planning.fingerprints import KITS19_AT_1MM, write_fingerprint_dataset
    os.environ.update(nnUNet_raw=str(root / 'raw'), nnUNet_preprocessed=str(root / 'pre'),
                      nnUNet_results=str(root / 'res'))
    write_fingerprint_dataset(root / 'raw', root / 'pre', 'Dataset500_KiTS19at1mm', **KITS19_AT_1MM)
    return json.loads((root / 'raw' / 'Dataset500_KiTS19at1mm' / 'dataset.json').read_text())


def baseline_memory_bytes(plans: dict, dataset_json: dict) -> int:
    """nnU-Net's PlainConvUNet baseline at the same patch and batch: saved tensors measured on the meta device
    (half precision, AMP's weight copies included) plus float32 weights, gradients and momentum."""
    from nnunet_boundary.network.activation_memory import saved_activation_bytes
    from nnunet_boundary.planning.planner import build_network, network_channels
    config = plans['configurations']['3d_fullres']
    network = build_network(plans['configurations']['3d_fullres_baseline']['architecture'],
                            *network_channels(dataset_json))
    saved = saved_activation_bytes(network, (config['batch_size'], 1, *config['patch_size']), torch.float16)
    return saved + 12 * sum(p.numel() for p in network.parameters())


def planner_table(root: Path, targets) -> list:
    from nnunet_boundary.planning.planner import BoundaryPlanner, configuration_memory_bytes
    dataset_json = kits19_like_dataset(root)
    rows = []
    for target in targets:
        with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net prints every configuration it plans
            plans = BoundaryPlanner(500, target).plan_experiment()
        config = plans['configurations']['3d_fullres']
        kwargs = config['architecture']['arch_kwargs']
        estimate = configuration_memory_bytes(config, dataset_json)
        plans_file = root / f'plans_{target:g}.json'
        plans_file.write_text(json.dumps(plans))
        rows.append({'target_gib': target, 'patch': list(config['patch_size']), 'batch': config['batch_size'],
                     'stages': kwargs['n_stages'], 'strides': kwargs['strides'][1:],
                     'widths': kwargs['features_per_stage'], 'estimate_gib': estimate / GIB,
                     'share_of_target': estimate / GIB / target,
                     'baseline_estimate_gib': baseline_memory_bytes(plans, dataset_json) / GIB,
                     'plans_file': str(plans_file)})
    return rows


def measure_step(plans_file: str, device: str, patch=None, batch=None) -> dict:
    """One BoundaryTrainer train_step in this process: its peak memory and the estimate for the same step."""
    sys.path.insert(0, str(SCRIPTS))
    from gpu_check import make_trainer, synthetic_batch
    from nnunet_boundary.network.activation_memory import training_memory_bytes
    from nnunet_boundary.training.boundary_trainer import BoundaryTrainer
    plans = json.loads(Path(plans_file).read_text())
    config = plans['configurations']['3d_fullres']
    config.update({k: v for k, v in (('patch_size', patch), ('batch_size', batch)) if v is not None})
    trainer = make_trainer(BoundaryTrainer, plans, '3d_fullres', torch.device(device))
    data = synthetic_batch(trainer, torch.device(device))
    network, patch_size = trainer.network, config['patch_size']
    parameters = sum(p.numel() for p in network.parameters())
    if device == 'cuda':
        torch.backends.cudnn.benchmark = True
        trainer.train_step(data)  # cuDNN autotuning; then the step as every later one
        torch.cuda.reset_peak_memory_stats()
        trainer.train_step(data)
        batch_bytes = sum(t.numel() * t.element_size() for t in [data['data'], *data['target']])
        peak = torch.cuda.max_memory_allocated() - batch_bytes
        estimate = training_memory_bytes(network, patch_size, trainer.batch_size)
    else:  # float32 without AMP: 4 bytes per element, no half-precision weight copies
        resident = int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
        trainer.train_step(data)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - resident + 4 * parameters
        estimate = 4 * int(network.compute_conv_feature_map_size(patch_size)) * trainer.batch_size + 12 * parameters
    return {'device': device, 'patch': list(patch_size), 'batch': trainer.batch_size, 'peak_gib': peak / GIB,
            'estimate_gib': estimate / GIB, 'peak_over_estimate': peak / estimate}


def train_steps(planner_rows: list, device: str) -> list:
    """``measure_step`` in a fresh process per plans (CUDA: every target; CPU: the smallest, at 64^3, batch 2)."""
    runs = [(row['plans_file'], []) for row in planner_rows] if device == 'cuda' else \
        [(planner_rows[0]['plans_file'], ['--patch', '64', '64', '64', '--batch', '2'])]
    rows = []
    for plans_file, extra in runs:
        result = subprocess.run([sys.executable, __file__, '--measure-step', plans_file, '--device', device, *extra],
                                capture_output=True, text=True, env=dict(os.environ, nnUNet_compile='false'))
        if result.returncode != 0:
            raise RuntimeError(f"train step measurement failed:\n{result.stderr[-3000:]}")
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return rows


def print_tables(figures: dict) -> None:
    print('calibration: activations per sample under AMP, estimate vs meta device')
    for r in figures['calibration']:
        print(f"  {r['configuration']:<44} {r['estimate_mib_per_sample']:9.1f} MiB "
              f"{r['meta_device_mib_per_sample']:9.1f} MiB  ratio {r['estimate_over_measured']:.4f}")
    print('planner: KiTS19-like at 1 mm (median 346 x 409 x 409 voxels, 210 cases)')
    print('  | target | patch | batch | stages | estimated training memory | share of target | '
          'baseline, same patch and batch |')
    print('  |---|---|---|---|---|---|---|')
    for r in figures['planner']:
        print(f"  | {r['target_gib']:g} GB | {' × '.join(map(str, r['patch']))} | {r['batch']} | {r['stages']} | "
              f"{r['estimate_gib']:.1f} GiB | {100 * r['share_of_target']:.0f} % | "
              f"{r['baseline_estimate_gib']:.1f} GiB |")
    print('train step: measured peak vs estimate')
    for r in figures['train_step']:
        print(f"  {r['device']} patch {r['patch']} batch {r['batch']}: peak {r['peak_gib']:.2f} GiB, estimate "
              f"{r['estimate_gib']:.2f} GiB, ratio {r['peak_over_estimate']:.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--targets', type=float, nargs='+', default=[8, 16, 24, 40, 80], metavar='GB')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', choices=('cuda', 'cpu'),
                        help='where the train step is measured (default: cuda when available)')
    parser.add_argument('--out', type=Path, default=SCRIPTS.parent / 'benchmarks' / 'planner',
                        help='folder for planner.json (default benchmarks/planner)')
    parser.add_argument('--measure-step', metavar='PLANS_JSON', help=argparse.SUPPRESS)
    parser.add_argument('--patch', type=int, nargs='+', help=argparse.SUPPRESS)
    parser.add_argument('--batch', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_step:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ['nnUNet_results'] = tmp  # the trainer's log file
            print(json.dumps(measure_step(args.measure_step, args.device, args.patch, args.batch)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = {'calibration': calibration()}
        figures['planner'] = planner_table(Path(tmp), args.targets)
        figures['train_step'] = train_steps(figures['planner'], args.device)
    for row in figures['planner']:
        del row['plans_file']
    figures['torch'] = torch.__version__
    print_tables(figures)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'planner.json').write_text(json.dumps(figures, indent=2) + '\n')
    print(f"wrote {args.out / 'planner.json'}")


if __name__ == '__main__':
    main()
