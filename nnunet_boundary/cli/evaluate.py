"""``nnunet_boundary_evaluate``: KiTS19 or KiTS23 metrics of a folder of predictions."""
import argparse
import json
from pathlib import Path

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.atomic_files import atomic_output
from nnunet_boundary.kits19.io import require_output_file
from nnunet_boundary.kits19.metrics import (KITS19_CHALLENGE, KITS23_CHALLENGE, evaluate_folders, format_table,
                                            write_csv)


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Metrics per case and mean of predicted label maps against the ground truth. Folders may use\n"
                    "the nnU-Net (<case>.nii.gz) or KiTS (case_XXXXX/segmentation.nii.gz) layout.\n\n"
                    "KiTS19 (default): regions kidney (labels 1+2) and tumor (2): Dice, composite_dice (their mean,\n"
                    "  the KiTS19 ranking), NSD (surface Dice of Nikolov et al. 2018) at --tolerance-mm, HD95 in mm.\n"
                    "KiTS23 (--kits23): labels 0 background, 1 kidney, 2 tumor, 3 cyst; regions kidney_and_mass\n"
                    "  (1+2+3), mass (2+3), tumor (2): Dice and Surface Dice at the official tolerances 1.0331,\n"
                    "  1.1329, 1.1498 mm, as kits23/evaluation/metrics.py computes them; mean_dice and\n"
                    "  mean_surface_dice over the regions (the KiTS23 ranking); NSD and HD95 as for KiTS19.\n\n"
                    "A region empty in one mask only: Dice, Surface Dice, NSD 0 and HD95 the image diagonal;\n"
                    "empty in both: Dice, Surface Dice, NSD 1 and HD95 0.")
    parser.add_argument('pred_dir', type=Path, help='predicted label maps')
    parser.add_argument('gt_dir', type=Path, help='ground-truth label maps (same cases and grids)')
    parser.add_argument('--kits23', action='store_true',
                        help='KiTS21/23 label maps (0 background, 1 kidney, 2 tumor, 3 cyst) and regions')
    parser.add_argument('-o', '--output', type=Path, help='write the metrics as JSON here')
    parser.add_argument('--csv', type=Path, help='write the metrics as CSV here (one row per case, then the mean)')
    parser.add_argument('--tolerance-mm', type=float, default=2.0,
                        help='NSD tolerance in mm (default 2; the KiTS23 Surface Dice keeps its official tolerances)')
    args = parser.parse_args(argv)
    require_output_file(args.output, 'metrics.json')
    require_output_file(args.csv, 'metrics.csv', '--csv')
    results = evaluate_folders(args.pred_dir, args.gt_dir, args.tolerance_mm, log=print,
                               challenge=KITS23_CHALLENGE if args.kits23 else KITS19_CHALLENGE)
    print(format_table(results))
    if results['gt_without_prediction']:
        print(f"note: {len(results['gt_without_prediction'])} ground-truth case(s) have no prediction and were "
              f"not evaluated")
    if args.output:
        with atomic_output(args.output) as tmp:
            tmp.write_text(json.dumps(results, indent=2))
    if args.csv:
        write_csv(results, args.csv)
