"""bfloat16 mixed-precision training on the CPU (``CpuMixedPrecision``) and our oneDNN convolution under it."""
import pytest
import torch

from nnunet_boundary.network.onednn_convolution import OneDNNConv3d
from nnunet_boundary.training.cpu_mixed_precision import cpu_autocast
from nnunet_boundary.training.variants import (BaselineTrainer_4mm, BaselineTrainer_4mm_bf16,
                                              BaselineTrainer_4mm_bf16_3000steps, BaselineTrainer_4mm_3000steps,
                                              BaselineTrainer_cpuBfloat16, BoundaryTrainer_cpuBfloat16)
from test_trainers import DATASET_JSON, fake_targets, make, plans  # noqa: F401 (fixture)


def convolution_output_dtypes(network: torch.nn.Module) -> set:
    """Records the dtype of every 3D convolution's output while the network runs."""
    dtypes = set()
    for module in network.modules():
        if isinstance(module, torch.nn.Conv3d):
            module.register_forward_hook(lambda m, args, output: dtypes.add(output.dtype))
    return dtypes


def fake_batch(trainer) -> dict:
    torch.manual_seed(0)
    return {'data': torch.randn(2, 1, *trainer.configuration_manager.patch_size), 'target': fake_targets(trainer)}


@pytest.mark.parametrize('trainer_class, configuration, dtype', [
    (BaselineTrainer_4mm_bf16, '3d_fullres_baseline', torch.bfloat16),
    (BaselineTrainer_4mm, '3d_fullres_baseline', torch.float32),
    (BaselineTrainer_cpuBfloat16, '3d_fullres_baseline', torch.bfloat16),
    (BoundaryTrainer_cpuBfloat16, '3d_fullres', torch.bfloat16)])
def test_training_step_runs_the_convolutions_in_bfloat16_and_keeps_float32_parameters(plans, trainer_class,
                                                                                    configuration, dtype):
    trainer = make(trainer_class, plans, configuration)
    dtypes = convolution_output_dtypes(trainer.network)
    before = [p.detach().clone() for p in trainer.network.parameters()]
    loss = trainer.train_step(fake_batch(trainer))['loss']
    assert dtypes == {dtype}
    assert all(p.dtype == torch.float32 for p in trainer.network.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in trainer.network.parameters())
    assert sum(not torch.equal(a, p) for a, p in zip(before, trainer.network.parameters())) > len(before) // 2
    assert loss.dtype.kind == 'f' and loss == loss  # a finite, real loss (numpy scalar)
    assert not torch.is_autocast_enabled('cpu')  # nothing leaks out of the step


def test_validation_step_runs_in_bfloat16_and_reports_nnunets_counts(plans):
    trainer = make(BaselineTrainer_4mm_bf16, plans, '3d_fullres_baseline')
    dtypes = convolution_output_dtypes(trainer.network)
    result = trainer.validation_step(fake_batch(trainer))
    assert dtypes == {torch.bfloat16}
    assert {'loss', 'tp_hard', 'fp_hard', 'fn_hard'} <= set(result) and len(result['tp_hard']) == 2


def test_mixed_precision_rows_differ_from_theirs_only_in_precision(plans):
    mixed, plain = make(BaselineTrainer_4mm_bf16_3000steps, plans, '3d_fullres_baseline'), \
        make(BaselineTrainer_4mm_3000steps, plans, '3d_fullres_baseline')
    for attribute in ('num_epochs', 'num_iterations_per_epoch', 'num_val_iterations_per_epoch', 'initial_lr'):
        assert getattr(mixed, attribute) == getattr(plain, attribute)
    assert type(mixed.network) is type(plain.network)


def test_onednn_convolution_leaves_autocast_to_pytorch():
    """Under CPU autocast our oneDNN call (which autocast does not see) steps aside, so the convolution is cast."""
    torch.manual_seed(0)
    conv, x = OneDNNConv3d(4, 8, 3, padding=1), torch.randn(1, 4, 8, 8, 8)
    with cpu_autocast(torch.device('cpu')):
        mixed = conv(x)
    assert mixed.dtype == torch.bfloat16
    torch.testing.assert_close(mixed.float(), conv(x), rtol=0.05, atol=0.05)


def test_autocast_is_for_the_cpu_only():
    with cpu_autocast(torch.device('meta')):
        assert not torch.is_autocast_enabled('cpu')
    with cpu_autocast(torch.device('cpu')):
        assert torch.is_autocast_enabled('cpu') and torch.get_autocast_dtype('cpu') == torch.bfloat16
