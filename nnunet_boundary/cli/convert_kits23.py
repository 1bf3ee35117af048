"""``nnunet_boundary_convert_kits23``: KiTS23 official layout (labels with cysts) -> nnU-Net v2 raw dataset."""
from nnunet_boundary.cli.convert_kits19 import run
from nnunet_boundary.cli.errors import exits_cleanly
from nnunet_boundary.kits19.io import KITS23


@exits_cleanly
def main(argv=None) -> None:
    run(KITS23, argv)
