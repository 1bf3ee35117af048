"""``nnunet_boundary_trainer_dir``: print the folder to put on ``nnUNet_extTrainer``."""
import argparse

from nnunet_boundary.environment import TRAINER_DIR


def main(argv=None) -> None:
    argparse.ArgumentParser(
        description="Print the folder that holds nnunet-boundary's trainers for nnU-Net's external trainer "
                    "lookup. Use: export nnUNet_extTrainer=$(nnunet_boundary_trainer_dir)").parse_args(argv)
    print(TRAINER_DIR)
