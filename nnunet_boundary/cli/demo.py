"""``nnunet_boundary_demo``: the whole pipeline on embedded synthetic data (see :mod:`nnunet_boundary.demo`)."""
import argparse

import torch

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.demo import run_demo


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Run the boundary-aware pipeline end to end on a small synthetic CT-like kidney/tumor "
                    "dataset: plan + preprocess, train BoundaryTrainer_smoke on each fold with nnUNetv2_train, "
                    "predict held-out cases with the fold ensemble and mirroring TTA (nnUNetv2_predict), evaluate. "
                    "Writes DIR/summary.json and DIR/overlay.png. Rerun to continue an interrupted run.")
    parser.add_argument('--out', required=True, help='output folder (nnU-Net folders, logs, summary)')
    parser.add_argument('--folds', type=int, default=5, help='number of cross-validation folds to train (1-5, '
                                                              'default 5)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu or cuda (default: cuda when available)')
    parser.add_argument('-np', type=int, default=2, help='worker processes for nnU-Net (default 2)')
    seeding = parser.add_mutually_exclusive_group()
    seeding.add_argument('--seed', type=int, default=0,
                         help='seed of each training (NNUNET_BOUNDARY_SEED; augmentation then runs in the training '
                              'process), so that a rerun repeats the numbers (default 0)')
    seeding.add_argument('--no-seed', action='store_true',
                         help="unseeded, with nnU-Net's multi-process augmentation: faster on many cores, numbers "
                              "vary from run to run")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error('--seed must be a non-negative integer')
    if not 1 <= args.folds <= 5:
        parser.error('--folds must be between 1 and 5')
    run_demo(args.out, folds=tuple(range(args.folds)), device=args.device, n_proc=args.np,
             seed=None if args.no_seed else args.seed)
