"""``nnunet_boundary_convert_kits19``: KiTS19 official layout -> nnU-Net v2 raw dataset."""
import argparse
from pathlib import Path

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.kits19.converter import convert_kits19


@exits_cleanly
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert the KiTS19 data folder (case_XXXXX/imaging.nii.gz + segmentation.nii.gz) into "
                    "the nnU-Net v2 raw dataset $nnUNet_raw/DatasetXXX_KiTS19 (imagesTr/labelsTr, dataset.json "
                    "with the kidney ⊃ tumor regions). Geometry is kept as is. Rerunning skips converted cases.")
    parser.add_argument('kits19_data_dir', type=Path, help='KiTS19 data folder holding case_XXXXX/ (kits19/data)')
    parser.add_argument('-d', type=int, required=True, help='nnU-Net dataset ID to write (e.g. 64)')
    parser.add_argument('--cases', nargs='+', help='only these cases (case_00007 or 7); default all')
    parser.add_argument('--strict', action='store_true',
                        help='fail on cases lacking imaging or segmentation instead of skipping them')
    parser.add_argument('--num-test', type=int, default=0,
                        help='put the last N cases into imagesTs/labelsTs as a held-out test set (default 0)')
    args = parser.parse_args(argv)
    convert_kits19(args.kits19_data_dir, args.d, args.cases, args.strict, args.num_test)
