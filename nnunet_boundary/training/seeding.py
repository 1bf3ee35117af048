"""Opt-in seeding of a training run, for reproducible CPU runs: nnU-Net seeds only its data splits.

``NNUNET_BOUNDARY_SEED=N nnUNetv2_train ...`` seeds Python's, NumPy's and torch's global random
generators when the trainer is created, i.e. before the network's initialisation, the
tumor-weighted crop draws and nnU-Net's augmentation (NumPy and torch). Runs are reproducible
when data loading runs in the training process (``nnUNet_n_proc_DA=0``); nnU-Net's multi-process
augmenter gives its workers unseeded generators and delivers batches in arrival order.
"""
import os
import random
from typing import Optional

import numpy as np
import torch

from nnunet_boundary.errors import NnUNetBoundaryError

SEED_VARIABLE = 'NNUNET_BOUNDARY_SEED'


def seed_from_environment(rank: int = 0) -> Optional[int]:
    """Seed ``random``, ``numpy`` and ``torch`` from ``$NNUNET_BOUNDARY_SEED`` plus the DDP ``rank`` (so ranks
    draw different crops); the seed used, or None if unset."""
    value = os.environ.get(SEED_VARIABLE, '').strip()
    if not value:
        return None
    if not value.isdigit():
        raise NnUNetBoundaryError(f"{SEED_VARIABLE}={value!r}: the seed must be a non-negative integer")
    seed = int(value) + rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed
