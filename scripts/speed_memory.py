#!/usr/bin/env python
"""Speed and memory only: boundary trainer vs baseline trainer (train step, prediction per case,
peak memory, parameters, FLOPs per patch, and sampler throughput), as ratios boundary / baseline.

On CUDA (``--device cuda``) the networks are the paper's (plans template ``kits19_176``: patch
176^3, batch 1, widths 16-256; baseline nnU-Net's PlainConvUNet with its default widths 32-320)
with nnU-Net's AMP; on CPU the dataset's own plans (e.g. the ``kits19_cpu`` template's 56^3).
``--baseline-widths`` replaces the baseline's widths, e.g. with the boundary network's own to
measure what the boundary stream costs at equal widths. Needs a dataset planned and preprocessed
with ``nnunet_boundary_plan_and_preprocess`` and the nnU-Net folder variables. Examples::

    python scripts/speed_memory.py -d 913 --device cuda --out speed_cuda.json
    python scripts/speed_memory.py -d 913 --device cpu --template kits19_cpu --baseline-widths 8 16 32 64
"""
import argparse
import json
import os
from copy import deepcopy
from pathlib import Path

import torch

from nnunet_boundary.benchmark.loader_speed import loader_throughput
from nnunet_boundary.benchmark.report import speed_table, speed_targets
from nnunet_boundary.benchmark.speed import measure_speed
from nnunet_boundary.benchmark.trainers import find_trainer_class
from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.environment import dataset_name, require_nnunet_paths
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.nnunet_commands import nnunet_environment
from nnunet_boundary.planning.templates import (BASELINE_CONFIGURATION, PLANS_NAME, baseline_architecture,
                                                load_template, validate_template)
from nnunet_boundary.training.tumor_weighted_sampler import TumorWeightedSampling

NNUNET_3D_WIDTHS = [32, 320]  # nnU-Net's 3D default: 32 features at full resolution, at most 320


def plans_with_template(plans: dict, template: dict) -> dict:
    """The dataset's plans with the template's network, patch and batch (spacing and data unchanged,
    so the preprocessed cases are reused; patches larger than a case are zero-padded by nnU-Net)."""
    plans = deepcopy(plans)
    plans['configurations']['3d_fullres'].update(patch_size=list(template['patch_size']),
                                                 batch_size=int(template['batch_size']),
                                                 architecture=deepcopy(template['architecture']))
    nnunet_architecture = deepcopy(plans['configurations'][BASELINE_CONFIGURATION]['architecture'])
    nnunet_architecture['arch_kwargs']['features_per_stage'] = NNUNET_3D_WIDTHS
    plans['configurations'][BASELINE_CONFIGURATION]['architecture'] = baseline_architecture(nnunet_architecture,
                                                                                           template)
    return plans


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-d', type=int, required=True, help='dataset ID (planned and preprocessed)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--template', help='plans template for the networks, patch and batch (default: kits19_176 '
                                           'on CUDA, the dataset plans on CPU)')
    parser.add_argument('--trainers', nargs=2, default=['BoundaryTrainer_cpu', 'BaselineTrainer_cpu'],
                        metavar=('BOUNDARY', 'BASELINE'), help='trainer classes (their budget is irrelevant here)')
    parser.add_argument('--rounds', type=int, default=2, help='fresh processes per model, interleaved (default 2)')
    parser.add_argument('--steps', type=int, default=10, help='timed train steps per process (default 10)')
    parser.add_argument('--baseline-widths', type=int, nargs='+', metavar='W',
                        help="the baseline PlainConvUNet's features per stage (default: the template's, else "
                             "nnU-Net's 32 * 2^i up to 320); needs --template or CUDA")
    parser.add_argument('--out', type=Path, help='write the measurements as JSON here')
    args = parser.parse_args(argv)
    template = args.template or ('kits19_176' if args.device == 'cuda' else None)
    if args.baseline_widths and not template:
        raise NnUNetBoundaryError("--baseline-widths needs --template (on CPU the default is the dataset's own plans)")
    require_nnunet_paths('nnUNet_raw', 'nnUNet_preprocessed')
    folder = Path(os.environ['nnUNet_preprocessed']) / dataset_name(args.d)
    plans = None  # the dataset's own plans
    if template:
        chosen = load_template(template)
        if args.baseline_widths:
            chosen['baseline_features_per_stage'] = args.baseline_widths
            validate_template(chosen, f'{template} with --baseline-widths {args.baseline_widths}')
        plans = plans_with_template(json.loads((folder / f'{PLANS_NAME}.json').read_text()), chosen)
    case = sorted(p.name[:-len('.pkl')] for p in (folder / f'{PLANS_NAME}_3d_fullres').glob('*.pkl'))[0]
    env = nnunet_environment(Path(os.environ['nnUNet_raw']), folder.parent,
                             Path(os.environ.get('nnUNet_results', folder.parent / 'speed_results')))
    results = measure_speed(*args.trainers, args.d, case, env, device=args.device, rounds=args.rounds,
                            steps_per_round=args.steps, plans=plans)
    if issubclass(find_trainer_class(args.trainers[0]), TumorWeightedSampling):
        results['loader'] = loader_throughput(args.trainers[0], args.d, plans=plans)
    results['speed_targets'] = speed_targets(results)
    results['template'] = template or 'dataset plans'
    if args.baseline_widths:
        results['baseline_widths'] = args.baseline_widths
    print('\n'.join(speed_table(results)))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + '\n')


if __name__ == '__main__':
    main()
