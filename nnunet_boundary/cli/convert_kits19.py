"""``nnunet_boundary_convert_kits19``: KiTS19 official layout -> nnU-Net v2 raw dataset.

:func:`run` serves every KiTS edition (``nnunet_boundary_convert_kits23`` too); only the edition differs.
"""
import argparse
from pathlib import Path
from typing import Sequence

from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.kits19.converter import convert_kits
from nnunet_boundary.kits19.io import KITS19, KiTSEdition


def run(edition: KiTSEdition, argv: Sequence[str] = None) -> None:
    """Parse the converter's command line for ``edition`` and convert."""
    cases = f'{edition.name.lower()}/{edition.cases_folder}'
    regions = ' ⊃ '.join(k for k in edition.dataset_json['labels'] if k != 'background')
    parser = argparse.ArgumentParser(
        prog=edition.converter,
        description=f"Convert the {edition.name} {edition.cases_folder} folder (case_XXXXX/imaging.nii.gz + "
                    f"segmentation.nii.gz with labels {edition.label_listing}) into the nnU-Net v2 raw dataset "
                    f"$nnUNet_raw/DatasetXXX_{edition.name} (imagesTr/labelsTr, dataset.json with the nested "
                    f"regions {regions}). Geometry is kept as is. Rerunning skips converted cases.")
    parser.add_argument('kits_dir', type=Path, metavar=f'{edition.name.upper()}_DIR',
                        help=f'{edition.name} {edition.cases_folder} folder holding case_XXXXX/ ({cases}), '
                             f'or the repository holding it')
    parser.add_argument('-d', type=int, required=True, help='nnU-Net dataset ID to write (e.g. 64)')
    parser.add_argument('--cases', nargs='+', help='only these cases (case_00007 or 7); default all')
    parser.add_argument('--strict', action='store_true',
                        help='fail on cases lacking imaging or segmentation instead of skipping them')
    parser.add_argument('--num-test', type=int, default=0,
                        help='put the last N cases into imagesTs/labelsTs as a held-out test set (default 0)')
    args = parser.parse_args(argv)
    convert_kits(args.kits_dir, args.d, args.cases, args.strict, args.num_test, edition=edition)


@exits_cleanly
def main(argv=None) -> None:
    run(KITS19, argv)
