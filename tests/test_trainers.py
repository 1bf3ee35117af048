"""Trainers without data: network from plans, loss composition, optimizer of each variant."""
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nnunet_boundary.benchmark.trainers import configuration_for
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.losses.boundary_aware_loss import BoundaryAwareLoss
from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareOutput
from nnunet_boundary.planning.templates import apply_template, load_template
from nnunet_boundary.regions import KITS19_DATASET_JSON
from nnunet_boundary.training.boundary_trainer import BoundaryTrainer
from nnunet_boundary.training.initialization import initialized_trainer
from nnunet_boundary.training.variants import (BaselineTrainer_4mm, BaselineTrainer_smoke, BoundaryTrainer_4mm,
                                              BoundaryTrainer_Paper, BoundaryTrainer_Paper_4mm,
                                              BoundaryTrainer_smoke, iterations_per_pass)
from test_planning import nnunet_like_plans

DATASET_JSON = dict(KITS19_DATASET_JSON, numTraining=10)


@pytest.fixture
def plans(monkeypatch, tmp_path):
    monkeypatch.setenv('nnUNet_results', str(tmp_path))
    monkeypatch.delenv('nnUNet_preprocessed', raising=False)
    return apply_template(nnunet_like_plans(), load_template('cpu_smoke'))


def make(trainer_class, plans, configuration='3d_fullres', dataset_json=DATASET_JSON):
    return initialized_trainer(trainer_class, plans, configuration, dataset_json, torch.device('cpu'))


def fake_targets(trainer, batch=2, tumor=True):
    patch = trainer.configuration_manager.patch_size
    target = torch.zeros(batch, 2, *patch)
    target[:, 0, 8:24, 8:24, 8:24] = 1
    target[:, 1, 12:18, 12:18, 12:18] = float(tumor)
    scales = trainer._get_deep_supervision_scales()
    return [torch.nn.functional.interpolate(target, scale_factor=[float(s) for s in sc], mode='nearest-exact')
            for sc in scales]


@pytest.mark.parametrize('trainer_class', [BoundaryTrainer, BoundaryTrainer_smoke, BoundaryTrainer_Paper])
def test_loss_composes_on_the_networks_training_output(trainer_class, plans):
    trainer = make(trainer_class, plans)
    assert isinstance(trainer.loss, BoundaryAwareLoss)
    patch = trainer.configuration_manager.patch_size
    value = trainer.loss(trainer.network(torch.randn(2, 1, *patch)), fake_targets(trainer))
    value.backward()
    assert torch.isfinite(value)
    assert trainer.network.boundary_heads[0].weight.grad.abs().sum() > 0


def test_paper_variant_uses_adam_with_poly_decay(plans):
    trainer = make(BoundaryTrainer_Paper, plans)
    assert isinstance(trainer.optimizer, torch.optim.Adam) and trainer.optimizer.param_groups[0]['lr'] == 5e-5
    assert trainer.num_epochs == 300 and trainer.lr_scheduler.exponent == 0.9


def _loss_at_one_scale(trainer, logits: torch.Tensor, target: torch.Tensor) -> float:
    """The trainer's loss with the same logits and target at every deep-supervision scale: nnU-Net's scale
    weights sum to 1 (and the paper's full-resolution-only boundary weights too), so this is one scale's loss."""
    n = len(trainer._get_deep_supervision_scales())
    return trainer.loss(BoundaryAwareOutput([logits] * n, [logits] * n), [target] * n).item()


def test_paper_region_loss_is_nnunets_without_its_cross_entropy(plans):
    """The paper's Dice-only region loss: exactly nnU-Net's Dice + BCE minus the BCE of the region logits."""
    paper, standard = make(BoundaryTrainer_Paper, plans), make(BoundaryTrainer, plans)
    target = fake_targets(standard)[0]
    logits = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    bce = F.binary_cross_entropy_with_logits(logits, target).item()
    assert _loss_at_one_scale(standard, logits, target) - _loss_at_one_scale(paper, logits, target) == \
        pytest.approx(bce, rel=1e-5)


def test_boundary_and_baseline_smoke_budgets_are_identical(plans):
    boundary = make(BoundaryTrainer_smoke, plans)
    baseline = BaselineTrainer_smoke(dict(plans, continue_training=False), '3d_fullres_baseline', 0, DATASET_JSON,
                                     device=torch.device('cpu'))
    for attribute in ('num_epochs', 'num_iterations_per_epoch', 'num_val_iterations_per_epoch', 'initial_lr',
                      'weight_decay'):
        assert getattr(boundary, attribute) == getattr(baseline, attribute)
    assert boundary.configuration_manager.patch_size == baseline.configuration_manager.patch_size
    assert boundary.configuration_manager.batch_size == baseline.configuration_manager.batch_size


def test_boundary_trainer_refuses_plans_without_the_boundary_network(plans):
    with pytest.raises(NnUNetBoundaryError, match='nnunet_boundary_plan_and_preprocess'):
        make(BoundaryTrainer, plans, '3d_fullres_baseline')


@pytest.mark.parametrize('trainer_name, network_name', [
    ('BoundaryTrainer_nnUNetNetwork', 'PlainConvUNetWithBoundaryStream'),
    ('BoundaryTrainer_nnUNetNetwork_noStream', 'PlainConvUNetWithEdgeHeads')])
def test_nnunet_network_trainers_build_on_the_baseline_configuration_and_supervise_edges(plans, trainer_name,
                                                                                        network_name):
    from nnunet_boundary.training import variants
    trainer_class = getattr(variants, trainer_name)
    trainer = make(trainer_class, plans, '3d_fullres_baseline')
    baseline = make(BaselineTrainer_smoke, plans, '3d_fullres_baseline')
    assert type(trainer.network).__name__ == network_name
    assert trainer.network.encoder.output_channels == baseline.network.encoder.output_channels
    assert isinstance(trainer.loss, BoundaryAwareLoss)
    patch = trainer.configuration_manager.patch_size
    out = trainer.network(torch.randn(2, 1, *patch))
    full_resolution_edges_grad, = torch.autograd.grad(trainer.loss(out, fake_targets(trainer)), out.boundary[0])
    assert full_resolution_edges_grad.abs().sum() > 0
    with pytest.raises(NnUNetBoundaryError, match='3d_fullres_baseline of nnUNetBoundaryPlans'):
        make(trainer_class, plans, '3d_fullres')


def test_boundary_trainer_refuses_a_dataset_without_regions(plans):
    labels_only = dict(DATASET_JSON, labels={'background': 0, 'kidney': 1, 'tumor': 2})
    with pytest.raises(NnUNetBoundaryError, match='outermost region must be a list of labels'):
        BoundaryTrainer(dict(plans, continue_training=False), '3d_fullres', 0, labels_only, torch.device('cpu'))


def test_deep_supervision_is_required(plans):
    trainer = make(BoundaryTrainer, plans)
    trainer.enable_deep_supervision = False
    with pytest.raises(NnUNetBoundaryError, match='deep supervision'):
        trainer._build_loss()


def _boundary_loss_with_coarse_outputs_shifted(trainer, shift: float) -> float:
    torch.manual_seed(0)
    patch = trainer.configuration_manager.patch_size
    output = trainer.network(torch.randn(2, 1, *patch))
    output.boundary[1:] = [b + shift for b in output.boundary[1:]]
    return trainer.loss(output, fake_targets(trainer)).item()


def test_boundary_supervision_at_full_resolution_only_ignores_the_coarse_boundary_outputs(plans):
    """The paper supervises the boundary stream at full resolution; our deep supervision of it is a switch."""
    full_resolution_only = make(type('FullResolutionOnly', (BoundaryTrainer,), {'boundary_deep_supervision': False}),
                                plans)
    assert _boundary_loss_with_coarse_outputs_shifted(full_resolution_only, 0.0) == pytest.approx(
        _boundary_loss_with_coarse_outputs_shifted(full_resolution_only, 5.0), rel=1e-6)
    every_scale = make(BoundaryTrainer, plans)
    assert _boundary_loss_with_coarse_outputs_shifted(every_scale, 0.0) != pytest.approx(
        _boundary_loss_with_coarse_outputs_shifted(every_scale, 5.0), rel=1e-3)


def test_paper_epochs_are_passes_and_a_budget_keeps_its_total_steps(plans):
    assert iterations_per_pass(51, 2) == 26 and iterations_per_pass(1, 8) == 1
    cases_64 = dict(DATASET_JSON, numTraining=64)  # fold 0 of nnU-Net's 5-fold split trains on 51 of them
    paper = make(BoundaryTrainer_Paper_4mm, plans, dataset_json=cases_64)
    assert paper.num_iterations_per_epoch == iterations_per_pass(51, paper.configuration_manager.batch_size)
    baseline = BaselineTrainer_4mm(dict(plans, continue_training=False), '3d_fullres_baseline', 0, DATASET_JSON,
                                   device=torch.device('cpu'))
    baseline_steps = baseline.num_epochs * baseline.num_iterations_per_epoch
    assert baseline_steps == 1500
    assert abs(paper.num_epochs * paper.num_iterations_per_epoch - baseline_steps) <= paper.num_iterations_per_epoch
    assert paper.lr_scheduler.max_steps == paper.num_epochs  # the poly schedule ends with the budget
    full = make(BoundaryTrainer_Paper, plans, dataset_json=cases_64)
    assert full.num_epochs == 300  # the paper's 300 passes


def test_benchmark_4mm_rows_share_one_budget(plans):
    boundary = make(BoundaryTrainer_4mm, plans)
    baseline = BaselineTrainer_4mm(dict(plans, continue_training=False), '3d_fullres_baseline', 0, DATASET_JSON,
                                   device=torch.device('cpu'))
    for attribute in ('num_epochs', 'num_iterations_per_epoch', 'num_val_iterations_per_epoch', 'initial_lr'):
        assert getattr(boundary, attribute) == getattr(baseline, attribute)


def test_onednn_baseline_is_nnunets_network_with_the_same_values(plans):
    """The ablation benchmark's baselines: nnU-Net's PlainConvUNet, same parameters and outputs, oneDNN kernels;
    refused on a configuration whose network is not nnU-Net's."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunet_boundary.network.onednn_convolution import OneDNNConv3d
    trainer = BaselineTrainer_4mm(dict(plans, continue_training=False), '3d_fullres_baseline', 0, DATASET_JSON,
                                  device=torch.device('cpu'))
    args = (trainer.plans_manager, trainer.configuration_manager, 1, 2, False)
    fast, stock = trainer.build_network_architecture(*args), nnUNetTrainer.build_network_architecture(*args)
    assert isinstance(fast, type(stock)) and any(isinstance(m, OneDNNConv3d) for m in fast.modules())
    fast.load_state_dict(stock.state_dict(), strict=True)
    x = torch.randn(1, 1, *trainer.configuration_manager.patch_size)
    with torch.no_grad():
        torch.testing.assert_close(fast.eval()(x), stock.eval()(x), rtol=1e-4, atol=1e-4)
    boundary_configuration = trainer.plans_manager.get_configuration('3d_fullres')
    with pytest.raises(NnUNetBoundaryError, match='3d_fullres_baseline of nnUNetBoundaryPlans'):
        trainer.build_network_architecture(trainer.plans_manager, boundary_configuration, 1, 2, False)


def test_boundary_trainer_crops_like_nnunet_and_the_rows_trained_with_the_papers_sampler_keep_it(plans):
    """The default follows the benchmark's choice on validation (nnU-Net's crops); the paper's recipe and the
    committed rows that trained with the tumor-weighted sampler keep it, or their numbers would not reproduce."""
    from nnunet_boundary.training import variants
    assert not make(BoundaryTrainer, plans).tumor_weighted_sampling
    assert not make(variants.BoundaryTrainer_smoke, plans).tumor_weighted_sampling
    for row in ('BoundaryTrainer_Paper', 'BoundaryTrainer_cpu', 'BoundaryTrainer_4mm', 'BoundaryTrainer_4mm_fixed',
                'BoundaryTrainer_4mm_edgeFreeCrops', 'BoundaryTrainer_4mm_pooledEdges',
                'BoundaryTrainer_4mm_fullResBoundary', 'BoundaryTrainer_4mm_equalWidths', 'BoundaryTrainer_Paper_4mm'):
        assert getattr(variants, row).tumor_weighted_sampling, row


def tumor_edge_gradient(loss, out, targets) -> float:
    """Size of the loss's gradient on the full-resolution tumor-edge logits."""
    gradient, = torch.autograd.grad(loss(out, targets), out.boundary[0], retain_graph=True)
    return gradient[:, 1].abs().sum().item()


@pytest.mark.parametrize('row, reference, configuration, papers_sampler', [
    ('BoundaryTrainer_4mm_fixed', 'BoundaryTrainer_4mm', '3d_fullres', True),
    ('BoundaryTrainer_4mm_nnUNetCrops_fixed', 'BoundaryTrainer_4mm_nnUNetCrops', '3d_fullres', False),
    ('BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed', 'BoundaryTrainer_4mm_nnUNetNetwork_noStream',
     '3d_fullres_baseline', False)])
def test_fixed_rows_switch_on_both_supervision_fixes_and_differ_from_their_reference_only_there(
        plans, row, reference, configuration, papers_sampler):
    """Each fixed row is its reference row (network, crops, budget) plus fixes 1 and 2, so the ablation's
    difference between the two is the fixes' effect alone."""
    from nnunet_boundary.training import variants
    fixed = make(getattr(variants, row), plans, configuration)
    plain = make(getattr(variants, reference), plans, configuration)
    assert type(fixed.network) is type(plain.network)
    assert fixed.tumor_weighted_sampling == plain.tumor_weighted_sampling == papers_sampler
    assert (fixed.min_edge_fraction, fixed.edges_from_full_resolution) == (0.01, True)
    assert (plain.min_edge_fraction, plain.edges_from_full_resolution) == (0.0, False)
    assert fixed.boundary_deep_supervision == plain.boundary_deep_supervision
    out = fixed.network(torch.randn(2, 1, *fixed.configuration_manager.patch_size))
    with_tumor, tumor_free = fake_targets(fixed), fake_targets(fixed, tumor=False)
    ratio = {name: tumor_edge_gradient(t.loss, out, tumor_free) / tumor_edge_gradient(t.loss, out, with_tumor)
             for name, t in {'fixed': fixed, 'plain': plain}.items()}
    # fix 1 reaches the trainer's loss: a tumor-free crop trains the tumor-edge logits within about a decade of a
    # crop with a tumor (0.08-1 at initialisation here), against ~1e-8 without it
    assert 0.01 < ratio['fixed'] < 10 and ratio['plain'] < 1e-4, ratio
    assert fixed.num_epochs * fixed.num_iterations_per_epoch == plain.num_epochs * plain.num_iterations_per_epoch


@pytest.mark.parametrize('row', ['BoundaryTrainer_4mm_equalWidths', 'BoundaryTrainer_4mm_equalWidths_nnUNetCrops'])
def test_equal_width_control_rows_build_the_boundary_network_at_the_baselines_widths(plans, row):
    from nnunet_boundary.training import variants
    trainer = make(getattr(variants, row), plans)
    widths = trainer.network.encoder.output_channels
    assert widths == [32, 64, 128, 256][:len(widths)]
    assert trainer.configuration_manager.network_arch_init_kwargs['features_per_stage'][0] != 32  # plans untouched
    assert trainer.tumor_weighted_sampling == (not row.endswith('nnUNetCrops'))


def test_every_benchmark_row_has_a_3000_step_variant_that_changes_only_the_budget(plans):
    from nnunet_boundary.training import variants
    long_rows = {name: cls for name, cls in vars(variants).items() if name.endswith('_3000steps')}
    run_sh = (Path(__file__).parents[1] / 'benchmarks' / 'kits19_phantom_4mm' / 'run.sh').read_text()
    default_rows = re.search(r'rows=\$\{ROWS:-"([^"]+)"\}', run_sh).group(1).split()
    assert set(long_rows) == {f'{row}_3000steps' for row in ['BaselineTrainer_4mm'] + default_rows}
    cases_64 = dict(DATASET_JSON, numTraining=64)
    for name, long_row in long_rows.items():
        row = getattr(variants, name[:-len('_3000steps')])
        assert issubclass(long_row, row) and not set(vars(long_row)) - {'__module__', '__qualname__', '__doc__'}
        trainer = make(long_row, plans, configuration_for(row), cases_64)
        steps = trainer.num_epochs * trainer.num_iterations_per_epoch
        assert abs(steps - 3000) < trainer.num_iterations_per_epoch, name
