"""BoundaryTrainer under nnU-Net's DDP, on CPU with gloo.

What holds exactly, for a global batch B split evenly over N ranks (B/N each, nnU-Net's
``_set_batch_size_and_oversample``):

* batch-dice terms (region Dice and boundary Dice): every rank all-gathers tp / sums through
  nnU-Net's ``AllGatherGrad`` and computes the *global* Dice; its backward sums the gradient over
  ranks, i.e. N times each rank's share, which DDP's gradient averaging divides by N again;
* per-rank means (region BCE, beta-balanced boundary BCE): the mean over ranks of per-rank means
  of B/N samples is the mean over B samples, and so is DDP's averaged gradient.

So the mean of the per-rank losses (what nnU-Net logs as ``train_loss``) equals the single-process
loss on the whole batch, and the DDP gradients equal the single-process gradients, up to float32
summation order. With uneven shares the per-rank means would not average to the batch mean,
which is why BoundaryTrainer refuses a batch size that the number of ranks does not divide.
"""
import os
import tempfile

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.planning.templates import apply_template, load_template
from nnunet_boundary.training.boundary_trainer import BoundaryTrainer
from nnunet_boundary.training.initialization import initialized_trainer
from nnunet_boundary.training.variants import BoundaryTrainer_Paper
from test_planning import nnunet_like_plans
from test_trainers import DATASET_JSON

WORLD_SIZE = 2
BATCH = 4
PATCH = [16, 16, 16]
TRAINERS = {'BoundaryTrainer': BoundaryTrainer, 'BoundaryTrainer_Paper': BoundaryTrainer_Paper}


def tiny_plans(batch_size: int = BATCH) -> dict:
    """cpu_smoke plans narrowed to tests/helpers.py's tiny network (3 stages, widths 4-16) on 16^3,
    with batch Dice on, as nnU-Net plans 3d_fullres for KiTS."""
    template = load_template('cpu_smoke')
    template.update(patch_size=PATCH, batch_size=batch_size)
    template['architecture']['arch_kwargs'].update(
        n_stages=3, features_per_stage=[4, 8, 16], kernel_sizes=[[3, 3, 3]] * 3,
        strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], n_blocks_per_stage=[1, 1, 2])
    plans = apply_template(nnunet_like_plans(), template)
    plans['configurations']['3d_fullres']['batch_dice'] = True
    return plans


def make_trainer(trainer_class, plans) -> BoundaryTrainer:
    """The trainer as constructed, not initialized (under DDP nnU-Net's ``initialize`` needs CUDA: see _rank)."""
    return trainer_class(dict(plans, continue_training=False), '3d_fullres', 0, DATASET_JSON, torch.device('cpu'))


def make_batch(trainer: BoundaryTrainer):
    """Random CT-like input and nested region targets (a different kidney and tumor per sample) at
    every deep-supervision scale, as nnU-Net's transforms deliver them."""
    g = torch.Generator().manual_seed(0)
    data = torch.randn(BATCH, 1, *PATCH, generator=g)
    target = torch.zeros(BATCH, 2, *PATCH)
    for b in range(BATCH):
        lo = torch.randint(1, 6, (3,), generator=g).tolist()
        target[b, 0, lo[0]:lo[0] + 9, lo[1]:lo[1] + 8, lo[2]:lo[2] + 7] = 1
        target[b, 1, lo[0] + 2:lo[0] + 5 + b % 2, lo[1] + 2:lo[1] + 5, lo[2] + 1:lo[2] + 4] = 1
    targets = [torch.nn.functional.interpolate(target, scale_factor=[float(s) for s in scale], mode='nearest-exact')
               for scale in trainer._get_deep_supervision_scales()]
    return data, targets


def _rank(rank: int, init_file: str, inputs_file: str, out_dir: str) -> None:
    """One DDP rank, set up as nnU-Net's ``run_ddp`` + ``nnUNetTrainer.initialize`` do, except for gloo and
    CPU (so DDP gets no ``device_ids``) instead of NCCL and ``cuda:rank``: under DDP the trainer puts itself on
    ``cuda:rank``, so the rank calls ``initialize``'s hooks itself."""
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=WORLD_SIZE)
    try:
        inputs = torch.load(inputs_file)
        report = {'np_draws': np.random.uniform(size=4), 'torch_draws': torch.rand(4)}
        for name, trainer_class in TRAINERS.items():
            trainer = make_trainer(trainer_class, inputs['plans'])
            assert trainer.is_ddp
            trainer._set_batch_size_and_oversample()
            network = trainer.build_network_architecture(trainer.plans_manager, trainer.configuration_manager, 1,
                                                         trainer.label_manager.num_segmentation_heads, True)
            network.load_state_dict(inputs['state'])
            ddp_network = DistributedDataParallel(network)
            loss = trainer._build_loss()
            share = slice(rank * trainer.batch_size, (rank + 1) * trainer.batch_size)
            value = loss(ddp_network(inputs['data'][share]), [t[share] for t in inputs['targets']])
            value.backward()
            logged = [None] * WORLD_SIZE
            dist.all_gather_object(logged, value.item())  # as nnUNetTrainer.on_train_epoch_end
            report[name] = {'batch_size': trainer.batch_size, 'loss': float(np.mean(logged)),
                            'weights': loss.region_loss.weight_factors,
                            'grads': {n: p.grad for n, p in network.named_parameters()}}
        torch.save(report, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def ddp_run():
    """Both trainers on 2 gloo ranks x 2 samples; the single-process references on the same 4 samples."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ['nnUNet_results'] = tmp  # the trainers write their logs here; spawned ranks inherit it
        os.environ.pop('nnUNet_preprocessed', None)
        plans = tiny_plans()
        torch.manual_seed(0)
        reference = {name: initialized_trainer(cls, plans, '3d_fullres', DATASET_JSON, torch.device('cpu'))
                     for name, cls in TRAINERS.items()}
        state = reference['BoundaryTrainer'].network.state_dict()
        data, targets = make_batch(reference['BoundaryTrainer'])
        inputs_file = os.path.join(tmp, 'inputs.pt')
        torch.save({'plans': plans, 'state': state, 'data': data, 'targets': targets}, inputs_file)
        mp.spawn(_rank, args=(os.path.join(tmp, 'init'), inputs_file, tmp), nprocs=WORLD_SIZE, join=True)
        ranks = [torch.load(os.path.join(tmp, f'rank{r}.pt'), weights_only=False) for r in range(WORLD_SIZE)]
        single = {}
        for name, trainer in reference.items():
            network, loss = trainer.network, trainer.loss
            network.load_state_dict(state)
            # nnU-Net gives the lowest deep-supervision output weight 1e-6 instead of 0 under DDP (else DDP
            # reports unused parameters); the reference uses the very weights the ranks used
            loss.region_loss.weight_factors = loss.boundary_loss.weight_factors = ranks[0][name]['weights']
            value = loss(network(data), targets)
            value.backward()
            single[name] = {'batch_size': trainer.batch_size, 'loss': value.item(),
                            'grads': {n: p.grad for n, p in network.named_parameters()}}
        os.environ.clear()
        os.environ.update(saved)
        yield ranks, single


@pytest.mark.parametrize('name', list(TRAINERS))
def test_ddp_splits_the_batch_as_nnunet_does(ddp_run, name):
    ranks, single = ddp_run
    assert single[name]['batch_size'] == BATCH
    assert [r[name]['batch_size'] for r in ranks] == [BATCH // WORLD_SIZE] * WORLD_SIZE


@pytest.mark.parametrize('name', list(TRAINERS))
def test_every_parameter_gets_a_gradient_under_ddp(ddp_run, name):
    ranks, _ = ddp_run
    assert [p for p, grad in ranks[0][name]['grads'].items() if grad is None] == []


@pytest.mark.parametrize('name', list(TRAINERS))
def test_ddp_loss_and_gradients_equal_the_single_process_ones(ddp_run, name):
    """With a parameter left without gradient DDP would never complete its all-reduce and the ranks would
    keep their own gradients: every head must be in the loss, the lowest ones with nnU-Net's DDP weight 1e-6."""
    ranks, single = ddp_run
    assert ranks[0][name]['loss'] == pytest.approx(single[name]['loss'], rel=1e-6, abs=0)
    for parameter, grad in single[name]['grads'].items():
        # DDP leaves the same averaged gradient on every rank
        assert torch.equal(ranks[0][name]['grads'][parameter], ranks[1][name]['grads'][parameter])
        torch.testing.assert_close(ranks[0][name]['grads'][parameter], grad, rtol=1e-4, atol=1e-6,
                                   msg=lambda m: f'{name}, {parameter}: {m}')


def test_ranks_draw_different_crops(ddp_run):
    """The tumor-weighted sampler draws from numpy's global generator (SingleThreadedAugmenter) or from that
    of NonDetMultiThreadedAugmenter's workers, which reseed numpy from OS entropy (seeds=None); torch.rand
    (mirroring) runs in the workers on the rank's generator, forked. nnU-Net spawns each rank as a fresh
    interpreter, whose numpy and torch generators start from OS entropy, so the ranks' streams differ."""
    ranks, _ = ddp_run
    assert not np.allclose(ranks[0]['np_draws'], ranks[1]['np_draws'])
    assert not torch.allclose(ranks[0]['torch_draws'], ranks[1]['torch_draws'])


@pytest.fixture
def two_ranks(monkeypatch, tmp_path):
    """A trainer that believes it is rank 0 of 2 (nnU-Net reads both through torch.distributed)."""
    monkeypatch.setenv('nnUNet_results', str(tmp_path))
    monkeypatch.setattr(dist, 'get_world_size', lambda *a, **k: 2)
    monkeypatch.setattr(dist, 'get_rank', lambda *a, **k: 0)

    def trainer(batch_size: int) -> BoundaryTrainer:
        t = make_trainer(BoundaryTrainer, tiny_plans(batch_size))
        t.is_ddp = True
        return t
    return trainer


@pytest.mark.parametrize('batch_size', [1, 3])
def test_batch_size_not_divisible_by_the_ranks_is_refused_with_the_fix(two_ranks, batch_size):
    with pytest.raises(NnUNetBoundaryError, match=f'batch_size {batch_size} .* multiple of 2. Set "batch_size" to'):
        two_ranks(batch_size)._set_batch_size_and_oversample()


def test_batch_size_divisible_by_the_ranks_is_split(two_ranks):
    trainer = two_ranks(4)
    trainer._set_batch_size_and_oversample()
    assert trainer.batch_size == 2
