"""``nnunet_boundary_plan_and_preprocess``: nnU-Net's fingerprint and planner, a plans template on
top (saved as nnUNetBoundaryPlans), then nnU-Net's preprocessing."""
import argparse

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.planning.plan_and_preprocess import plan_and_preprocess
from nnunet_boundary.planning.templates import PLANS_NAME, available_templates, load_template


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=f"Plan and preprocess a kidney/tumor dataset for BoundaryTrainer. Runs nnU-Net's fingerprint "
                    f"extraction and experiment planner, applies a plans template (network, patch, spacing, "
                    f"batch) and saves the result as plans '{PLANS_NAME}' with configurations 3d_fullres "
                    f"(BoundaryTrainer) and 3d_fullres_baseline (nnUNetTrainer on the same data), then runs "
                    f"nnU-Net's preprocessing. Then: nnUNetv2_train ID 3d_fullres FOLD -tr BoundaryTrainer "
                    f"-p {PLANS_NAME}")
    parser.add_argument('-d', type=int, required=True, help='dataset ID (as for nnUNetv2_plan_and_preprocess)')
    parser.add_argument('-c', default='3d_fullres', help='nnU-Net configuration to build on (default 3d_fullres)')
    parser.add_argument('--template', default='kits19_176',
                        help=f'plans template: a shipped name ({", ".join(available_templates())}) or a JSON path '
                             f'(default kits19_176, the paper\'s 1 mm / 176^3 set-up)')
    parser.add_argument('-np', type=int, default=2, help='processes for fingerprinting and preprocessing (default 2)')
    parser.add_argument('--verify_dataset_integrity', action='store_true',
                        help="run nnU-Net's dataset integrity check first (recommended for new data)")
    parser.add_argument('--clean', action='store_true', help='recompute an existing dataset fingerprint')
    parser.add_argument('--no_pp', action='store_true', help='plan only, do not preprocess')
    args = parser.parse_args(argv)
    template = load_template(args.template)
    plan_and_preprocess(args.d, template, args.c, args.np, args.verify_dataset_integrity, args.clean,
                        not args.no_pp)
