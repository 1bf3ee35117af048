"""``nnunet_boundary_evaluate``: KiTS19 metrics of a folder of predictions."""
import argparse
import json
from pathlib import Path

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.kits19.io import require_output_file
from nnunet_boundary.kits19.metrics import evaluate_folders, format_table, write_csv


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="KiTS19 metrics per case and mean: kidney Dice (labels 1+2), tumor Dice (label 2), their "
                    "mean (the KiTS19 composite), surface Dice/NSD at a tolerance (Nikolov et al. 2018) and HD95 "
                    "in mm for both regions. Folders may use the nnU-Net (<case>.nii.gz) or KiTS19 "
                    "(case_XXXXX/segmentation.nii.gz) layout. One region empty in one of the masks: Dice 0, "
                    "NSD 0, HD95 = image diagonal; empty in both: Dice 1, NSD 1, HD95 0.")
    parser.add_argument('pred_dir', type=Path, help='predicted label maps')
    parser.add_argument('gt_dir', type=Path, help='ground-truth label maps (same cases and grids)')
    parser.add_argument('-o', '--output', type=Path, help='write the metrics as JSON here')
    parser.add_argument('--csv', type=Path, help='write the metrics as CSV here (one row per case, then the mean)')
    parser.add_argument('--tolerance-mm', type=float, default=2.0, help='NSD tolerance in mm (default 2)')
    args = parser.parse_args(argv)
    require_output_file(args.output, 'metrics.json')
    require_output_file(args.csv, 'metrics.csv', '--csv')
    results = evaluate_folders(args.pred_dir, args.gt_dir, args.tolerance_mm, log=print)
    print(format_table(results))
    if results['gt_without_prediction']:
        print(f"note: {len(results['gt_without_prediction'])} ground-truth case(s) have no prediction and were "
              f"not evaluated")
    if args.output:
        with atomic_output(args.output) as tmp:
            tmp.write_text(json.dumps(results, indent=2))
    if args.csv:
        write_csv(results, args.csv)
