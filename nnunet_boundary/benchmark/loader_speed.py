"""Throughput of the tumor-weighted sampler vs nnU-Net's ``nnUNetDataLoader`` on the same preprocessed cases
(sampling, loading and cropping; no augmentation, which both share), interleaved in blocks."""
from typing import Callable, Optional

import torch

from nnunet_boundary.benchmark.preprocessed_trainer import load_trainer
from nnunet_boundary.benchmark.timing import time_calls


def loader_throughput(boundary: str, dataset_id: int, fold: int = 0, batches_per_block: int = 10, blocks: int = 4,
                      plans: Optional[dict] = None, log: Callable[[str], None] = print) -> dict:
    """Batches per second of the tumor-weighted sampler (as the boundary trainer configures it) and of
    nnU-Net's default ``nnUNetDataLoader`` (its foreground oversampling), same cases, batch and
    patch, alternating blocks of ``batches_per_block`` batches."""
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

    trainer = load_trainer(boundary, dataset_id, fold, torch.device('cpu'), plans)
    dataset, _ = trainer.get_tr_and_val_datasets()
    _, _, initial_patch, _ = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    configuration = trainer.configuration_manager
    loaders = {
        'tumor_weighted': trainer.build_training_loader(dataset, initial_patch, None),
        'nnunet_default': nnUNetDataLoader(dataset, trainer.batch_size, initial_patch, configuration.patch_size,
                                           trainer.label_manager,
                                           oversample_foreground_percent=trainer.oversample_foreground_percent),
    }
    seconds = {name: 0.0 for name in loaders}
    for block in range(blocks):
        order = list(loaders) if block % 2 == 0 else list(loaders)[::-1]
        for name in order:
            warmup = 1 if block == 0 else 0
            seconds[name] += sum(time_calls(loaders[name].generate_train_batch, batches_per_block, warmup,
                                            torch.device('cpu')))
        log(f"loader throughput: block {block + 1}/{blocks}")
    per_second = {name: blocks * batches_per_block / s for name, s in seconds.items()}
    return {'batches_per_second': per_second, 'batches_timed': blocks * batches_per_block,
            'ratio': per_second['tumor_weighted'] / per_second['nnunet_default']}
