"""Determinism: byte-identical plans from the same data and template; deterministic edge targets;
a seeded CPU training (``NNUNET_BOUNDARY_SEED``, ``nnUNet_n_proc_DA=0``) reproduces its first
epoch's losses. (The sampler's draws under a seed: ``test_sampler.py``.)"""
import json

import numpy as np
import pytest
import torch

from nnunet_boundary.losses.edges import region_edges
from nnunet_boundary.planning.plan_and_preprocess import plan_and_preprocess
from nnunet_boundary.planning.templates import PLANS_NAME, load_template
from nnunet_boundary.training.seeding import SEED_VARIABLE
from nnunet_boundary.training.variants import BoundaryTrainer_smoke
from tiny_nnunet import planned_tiny_dataset

DATASET_ID = 970


@pytest.fixture(scope='module')
def planned(tmp_path_factory):
    root = tmp_path_factory.mktemp('determinism')
    dataset, env = planned_tiny_dataset(root, DATASET_ID, num_test=0)
    return root, dataset, env


def plans_bytes(preprocessed, dataset) -> bytes:
    return (preprocessed / dataset.name / f'{PLANS_NAME}.json').read_bytes()


def test_same_data_and_template_give_byte_identical_plans(planned, monkeypatch):
    root, dataset, env = planned
    first = plans_bytes(root / 'pre', dataset)
    monkeypatch.setenv('nnUNet_raw', env['nnUNet_raw'])
    monkeypatch.setenv('nnUNet_n_proc_DA', '1')
    for preprocessed, clean in ((root / 'pre', False), (root / 'pre', True), (root / 'pre_again', False)):
        monkeypatch.setenv('nnUNet_preprocessed', str(preprocessed))
        plan_and_preprocess(DATASET_ID, load_template('cpu_smoke'), num_processes=1, clean_fingerprint=clean,
                            preprocess=False)
        assert plans_bytes(preprocessed, dataset) == first, preprocessed


def test_edge_targets_are_deterministic():
    mask = (torch.rand(2, 2, 16, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    first = region_edges(mask)
    torch.use_deterministic_algorithms(True)
    try:
        assert torch.equal(region_edges(mask), first)
    finally:
        torch.use_deterministic_algorithms(False)


def first_epoch_losses(root, dataset, env, monkeypatch, seed: int, iterations: int = 2):
    """The per-iteration losses of a BoundaryTrainer_smoke's first epoch (shortened), seeded with ``seed``."""
    for name in ('nnUNet_raw', 'nnUNet_preprocessed', 'nnUNet_results'):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv('nnUNet_n_proc_DA', '0')
    monkeypatch.setenv(SEED_VARIABLE, str(seed))
    pre = root / 'pre' / dataset.name
    plans = dict(json.loads((pre / f'{PLANS_NAME}.json').read_text()), continue_training=False)
    trainer = BoundaryTrainer_smoke(plans, '3d_fullres', 0,
                                    json.loads((pre / 'dataset.json').read_text()), device=torch.device('cpu'))
    trainer.num_iterations_per_epoch = iterations
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    return [float(trainer.train_step(next(trainer.dataloader_train))['loss']) for _ in range(iterations)]


def test_seeded_training_reproduces_its_first_epoch(planned, monkeypatch):
    first = first_epoch_losses(*planned, monkeypatch, seed=12345)
    np.testing.assert_allclose(first_epoch_losses(*planned, monkeypatch, seed=12345), first, rtol=1e-6)
    assert not np.allclose(first_epoch_losses(*planned, monkeypatch, seed=54321), first, rtol=1e-6)


def test_seed_is_offset_by_the_ddp_rank(monkeypatch):
    from nnunet_boundary.training.seeding import seed_from_environment
    monkeypatch.setenv('NNUNET_BOUNDARY_SEED', '5')
    draws = {}
    for rank in (0, 1, 0):
        assert seed_from_environment(rank) == 5 + rank
        draws.setdefault(rank, []).append((np.random.rand(), torch.rand(1).item()))
    assert draws[0][0] == draws[0][1] and draws[0][0] != draws[1][0]


@pytest.mark.parametrize('seed, seed_variable, augmentation_processes', [(3, '3', '0'), (None, None, '2')])
def test_the_demo_trains_seeded_with_augmentation_in_the_training_process(tmp_path, monkeypatch, seed, seed_variable,
                                                                          augmentation_processes):
    """A seeded demo repeats its numbers only if every nnU-Net command it runs gets the seed and in-process
    augmentation (nnU-Net's augmentation workers are unseeded); ``--no-seed`` gets neither."""
    import nnunet_boundary.demo as demo

    class Stop(Exception):
        pass

    def first_command(args, env, *_, **__):
        seen.update(env)
        raise Stop

    seen = {}
    monkeypatch.setenv(SEED_VARIABLE, '99')  # a seed in the caller's environment never leaks into --no-seed
    monkeypatch.setattr(demo, 'run_nnunet', first_command)
    with pytest.raises(Stop):
        demo.run_demo(tmp_path, num_train=1, num_test=0, seed=seed)
    assert seen.get(SEED_VARIABLE) == seed_variable and seen['nnUNet_n_proc_DA'] == augmentation_processes
