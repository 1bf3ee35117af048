"""``nnunet_boundary_morphometry``: kidney volumes, tumor sizes and cysts from KiTS19 or KiTS21/23 label maps."""
import argparse
from pathlib import Path

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.kits19.io import require_output_file
from nnunet_boundary.kits19.morphometry import measure_folder, write_report


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Per segmentation (SEG_DIR/*.nii.gz or SEG_DIR/case_*/segmentation.nii.gz): left and right "
                    "kidney volume (mL), tumor count (26-connected components of label 2 of at least "
                    "--min-tumor-ml), and per tumor its volume (mL), maximum 3D and maximum axial diameter (cm, "
                    "edge to edge) and kidney side (patient left/right from the image's physical orientation); cyst "
                    "count and total volume (mL; 26-connected components of label 3 of at least --min-cyst-ml, "
                    "present in KiTS21/23 maps only: KiTS19 maps report 0).")
    parser.add_argument('seg_dir', type=Path, help='folder of label maps (0 background, 1 kidney, 2 tumor, 3 cyst)')
    parser.add_argument('-o', '--output', type=Path, help='CSV report, one row per tumor')
    parser.add_argument('--min-tumor-ml', type=float, default=0.1,
                        help='smaller label-2 components are fragments, not tumors (default 0.1 mL)')
    parser.add_argument('--min-cyst-ml', type=float, default=0.1,
                        help='smaller label-3 components are fragments, not cysts (default 0.1 mL)')
    parser.add_argument('-np', type=int, default=1, help='worker processes (default 1)')
    args = parser.parse_args(argv)
    require_output_file(args.output, 'report.csv')
    results = measure_folder(args.seg_dir, args.min_tumor_ml, args.np, log=print, min_cyst_ml=args.min_cyst_ml)
    print(f"{'case':<14}{'left kidney mL':>16}{'right kidney mL':>17}{'cysts':>7}{'cyst mL':>9}{'tumors':>8}"
          f"  largest tumor")
    for r in results:
        largest = (f'{r.tumors[0].volume_ml:.1f} mL, {r.tumors[0].max_axial_diameter_cm:.1f} cm axial, '
                   f'{r.tumors[0].max_diameter_3d_cm:.1f} cm 3D, {r.tumors[0].side}') if r.tumors else '-'
        print(f'{r.case:<14}{r.left_kidney_ml:>16.1f}{r.right_kidney_ml:>17.1f}{len(r.cysts_ml):>7}'
              f'{sum(r.cysts_ml):>9.1f}{len(r.tumors):>8}  {largest}')
    if args.output:
        write_report(results, args.output)
        print(f'report: {args.output}')
