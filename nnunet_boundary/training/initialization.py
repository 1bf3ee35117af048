"""A trainer built and initialized as ``nnUNetv2_train`` does it, with or without preprocessed data.

``nnUNetTrainer.initialize`` builds the network (on the trainer's device), the optimizer with its learning-rate
schedule and the loss from the plans and dataset.json. Of the preprocessed data it reads only the file names in
the configuration's folder, to choose the dataset class (``infer_dataset_class``) that loading data uses later;
``BoundaryTrainer_Paper.initialize`` also counts the training cases of the fold's split (its epochs are passes).
Without that folder (GPU check, tests) :func:`initialized_trainer` supplies both while ``initialize`` runs: no
dataset class (nnU-Net's ``do_split`` infers it when data is first loaded) and the split nnU-Net would make of
dataset.json's ``numTraining`` cases (its seeded 5-fold split, so folds 0-4 and at least 5 cases).
"""
import os
from typing import List, Tuple
from unittest import mock

import torch
from nnunetv2.utilities.crossval_split import generate_crossval_split

#: where nnUNetTrainer.initialize looks ``infer_dataset_class`` up
INFER_DATASET_CLASS = 'nnunetv2.training.nnUNetTrainer.nnUNetTrainer.infer_dataset_class'


def initialized_trainer(trainer_class: type, plans: dict, configuration: str, dataset_json: dict,
                        device: torch.device, fold: int = 0):
    """``trainer_class`` as ``nnUNetv2_train`` builds it, initialized by nnU-Net's own ``initialize`` (network,
    optimizer, learning-rate schedule, loss); the preprocessed data is used if there is any (module doc)."""
    # nnU-Net 2.8's trainer pops this flag, which nnUNetv2_train puts into the plans
    trainer = trainer_class(dict(plans, continue_training=False), configuration, fold, dataset_json, device)
    data = trainer.preprocessed_dataset_folder
    if data is not None and os.path.isdir(data):
        trainer.initialize()
        return trainer
    with mock.patch(INFER_DATASET_CLASS, lambda folder: None), \
            mock.patch.object(trainer, 'do_split', lambda: default_split(dataset_json['numTraining'], fold)):
        trainer.initialize()
    return trainer


def default_split(n_cases: int, fold: int) -> Tuple[List[str], List[str]]:
    """Training and validation cases of ``fold`` in nnU-Net's split of ``n_cases`` cases without a
    splits_final.json (``do_split``); the names stand in for the cases' identifiers."""
    split = generate_crossval_split([f'case_{i:05d}' for i in range(n_cases)], seed=12345, n_splits=5)[fold]
    return split['train'], split['val']
