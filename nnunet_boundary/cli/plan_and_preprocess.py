"""``nnunet_boundary_plan_and_preprocess``: nnU-Net's fingerprint, then plans by BoundaryPlanner (or a
plans template over nnU-Net's default plans), then nnU-Net's preprocessing."""
import argparse

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.planning.plan_and_preprocess import plan_and_preprocess
from nnunet_boundary.planning.templates import PLANS_NAME, available_templates, load_template


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of GiB, got {text}")
    return value


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=f"Plan and preprocess a kidney/tumor dataset for BoundaryTrainer. Runs nnU-Net's fingerprint "
                    f"extraction, then BoundaryPlanner: nnU-Net's spacing, normalisation and strides with the "
                    f"paper's network, patch and batch sized to fit --gpu_memory_target. With --template, the "
                    f"template's fixed network, patch, spacing and batch over nnU-Net's default plans instead "
                    f"(the planner's choice is printed for comparison). Saves plans '{PLANS_NAME}' (or "
                    f"--plans_name) with configurations 3d_fullres (BoundaryTrainer) and 3d_fullres_baseline "
                    f"(nnUNetTrainer on the same data), then runs nnU-Net's preprocessing. Then: nnUNetv2_train ID "
                    f"3d_fullres FOLD -tr BoundaryTrainer -p {PLANS_NAME}")
    parser.add_argument('-d', type=int, required=True, help='dataset ID (as for nnUNetv2_plan_and_preprocess)')
    parser.add_argument('--gpu_memory_target', type=_positive_float, default=8.0, metavar='GB',
                        help="GPU memory (GiB) the planner sizes patch and batch for (default 8, nnU-Net's "
                             "default); the planner's estimate fills at most 80 %% of it, the rest is for what the "
                             "estimate does not count (loss, gradients in flight, cuDNN workspaces)")
    parser.add_argument('--template', metavar='NAME|PATH',
                        help=f'use a fixed plans template instead of the planner: a shipped name '
                             f'({", ".join(available_templates())}; kits19_176 is the paper\'s 1 mm / 176^3 '
                             f'set-up) or a JSON path')
    parser.add_argument('-c', default='3d_fullres',
                        help='nnU-Net configuration a --template builds on (default 3d_fullres; the planner plans '
                             '3d_fullres only)')
    parser.add_argument('--plans_name', default=PLANS_NAME, help=f'name of the written plans (default {PLANS_NAME})')
    parser.add_argument('-np', type=int, default=2, help='processes for fingerprinting and preprocessing (default 2)')
    parser.add_argument('--verify_dataset_integrity', action='store_true',
                        help="run nnU-Net's dataset integrity check first (recommended for new data)")
    parser.add_argument('--clean', action='store_true', help='recompute an existing dataset fingerprint')
    parser.add_argument('--no_pp', action='store_true', help='plan only, do not preprocess')
    args = parser.parse_args(argv)
    template = None if args.template is None else load_template(args.template)
    plan_and_preprocess(args.d, template, args.c, args.np, args.verify_dataset_integrity, args.clean,
                        not args.no_pp, args.gpu_memory_target, args.plans_name)
