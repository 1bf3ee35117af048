"""``nnunet_boundary_benchmark``: boundary trainer vs baseline nnU-Net (see :mod:`nnunet_boundary.benchmark`)."""
import argparse
import sys

import torch

from nnunet_boundary.benchmark.predictions import MODES
from nnunet_boundary.benchmark.run import run_benchmark
from nnunet_boundary.cli.errors import exits_cleanly


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Benchmark boundary-aware trainers against baseline nnU-Net trainers on the same dataset, plans "
                    "(nnUNetBoundaryPlans) and splits: train each trainer on each fold (nnUNetv2_train; finished folds "
                    "are skipped, interrupted ones resumed with --c), predict the held-out imagesTs with fold 0 "
                    "without TTA and with the fold ensemble plus mirroring TTA (nnUNetv2_predict), evaluate with the "
                    "KiTS metrics against labelsTs, and measure speed and memory. Writes OUT/results.json, "
                    "OUT/RESULTS.md and OUT/benchmark.png. Needs nnUNet_raw, nnUNet_preprocessed, nnUNet_results.")
    parser.add_argument('-d', type=int, required=True,
                        help='dataset ID (planned with nnunet_boundary_plan_and_preprocess)')
    parser.add_argument('--folds', type=int, nargs='+', default=[0, 1, 2, 3, 4],
                        help='cross-validation folds to train and ensemble (default 0 1 2 3 4; must include 0)')
    parser.add_argument('--trainers', nargs='+', default=['BoundaryTrainer_cpu', 'BaselineTrainer_cpu'],
                        help='trainer classes; subclasses of BoundaryTrainer run 3d_fullres, the others '
                             '3d_fullres_baseline (default BoundaryTrainer_cpu BaselineTrainer_cpu)')
    parser.add_argument('--out', default='benchmark_out', help='output folder (default ./benchmark_out)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu or cuda (default: cuda when available)')
    parser.add_argument('-np', type=int, default=2, help='worker processes for nnU-Net (default 2)')
    parser.add_argument('--settings', nargs='+', choices=list(MODES), default=list(MODES),
                        help='test-prediction settings: single (fold 0, no TTA), ensemble_tta (the folds + mirroring); '
                             'default both')
    parser.add_argument('--no-speed', action='store_true', help='skip the speed and memory measurements')
    args = parser.parse_args(argv)
    if not set(args.folds) <= set(range(5)):
        parser.error('--folds must be among 0 1 2 3 4')
    run_benchmark(args.d, args.trainers, args.out, folds=sorted(set(args.folds)), device=args.device,
                  n_proc=args.np, speed=not args.no_speed, modes=args.settings,
                  command=' '.join(['nnunet_boundary_benchmark', *(sys.argv[1:] if argv is None else argv)]))
