import os

import pytest
import torch

# keep the suite within two CPU cores, whatever the machine
torch.set_num_threads(2)
os.environ.setdefault('nnUNet_compile', 'false')


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
