"""The trainer ``nnUNetv2_train`` would build for a preprocessed dataset, as the speed benchmarks use it."""
import json
from pathlib import Path
from typing import Optional

import torch

from nnunet_boundary.environment import dataset_name


def load_trainer(trainer_name: str, dataset_id: int, fold: int, device: torch.device, plans: Optional[dict] = None):
    """The trainer nnUNetv2_train would build for ``-tr trainer_name -p nnUNetBoundaryPlans``,
    initialized (network, loss, optimizer), with ``plans`` overriding the preprocessed plans."""
    from nnunetv2.paths import nnUNet_preprocessed

    from nnunet_boundary.benchmark.trainers import configuration_for, find_trainer_class
    from nnunet_boundary.planning.templates import PLANS_NAME
    from nnunet_boundary.training.initialization import initialized_trainer

    folder = Path(nnUNet_preprocessed.get()) / dataset_name(dataset_id)
    plans = plans or json.loads((folder / f'{PLANS_NAME}.json').read_text())
    dataset_json = json.loads((folder / 'dataset.json').read_text())
    trainer_class = find_trainer_class(trainer_name)
    return initialized_trainer(trainer_class, plans, configuration_for(trainer_class), dataset_json, device, fold)
