"""``nnunet_boundary_phantoms``: CT-like phantoms around real KiTS19 or KiTS23 label maps."""
import argparse
from pathlib import Path

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.kits19.phantoms import generate_phantoms


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Synthesize arterial-phase CT-like volumes (HU, int16) around KiTS19 or KiTS23 label maps "
                    "(KiTS23 cysts, label 3, as water with a thin enhancing wall) and write "
                    "OUT_DIR/case_XXXXX/{imaging,segmentation}.nii.gz in the official layout and NIfTI convention, "
                    "plus the clinical records kits.json (KiTS19) or kits23.json (KiTS23) if MASK_ROOT has them: "
                    "OUT_DIR is then a KiTS19 data or KiTS23 dataset folder for nnunet_boundary_convert_kits19 "
                    "or nnunet_boundary_convert_kits23. Deterministic per case and --seed; rerunning skips finished "
                    "cases.")
    parser.add_argument('mask_root', type=Path,
                        help='KiTS19 data or KiTS23 dataset folder with case_XXXXX/segmentation.nii.gz (kits19/data, '
                             'kits23/dataset), or the repository holding it')
    parser.add_argument('out_dir', type=Path, help='output folder')
    parser.add_argument('--spacing', type=float, default=None, metavar='MM',
                        help='resample to this voxel size in mm first (axes already coarser are kept), e.g. 4; '
                             'default: keep the original grid')
    parser.add_argument('--cases', nargs='+', help='only these cases (case_00007 or 7); default all')
    parser.add_argument('--seed', type=int, default=0, help='random seed, combined with the case number (default 0)')
    parser.add_argument('-np', type=int, default=1, help='worker processes (default 1)')
    args = parser.parse_args(argv)
    generate_phantoms(args.mask_root, args.out_dir, args.spacing, args.cases, args.seed, args.np)
