"""Interruption and resume: SIGKILL mid-training then ``nnUNetv2_train --c``; an interrupted
``nnunet_boundary_predict`` continued with ``--continue_prediction``; checkpoints that survive a kill
while saving; finite training steps on degenerate patches. One tiny preprocessed dataset and one
short training per module."""
import json
import os
import re
import signal
import subprocess
import textwrap
import time

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_boundary.checks.nifti_files import nifti_truncation
from nnunet_boundary.checks.prediction_outputs import remove_incomplete_predictions
from nnunet_boundary.training.variants import BoundaryTrainer_smoke
from tiny_nnunet import BIN, nnunet_env, planned_tiny_dataset, run

DATASET_ID = 960
TRAINER = 'BoundaryTrainer_resumable'
EPOCHS = 3
KILL_IN_EPOCH = 1
RESUMABLE_TRAINER_MODULE = f'''
import torch

from nnunet_boundary.training.variants import BoundaryTrainer_smoke


class {TRAINER}(BoundaryTrainer_smoke):
    """BoundaryTrainer_smoke (a checkpoint every epoch) on a budget short enough for a test."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = {EPOCHS}
        self.num_iterations_per_epoch = 3
        self.num_val_iterations_per_epoch = 1
'''


def start(args, env, log_file) -> subprocess.Popen:
    """Start a command in its own process group (so that a kill reaches its workers too)."""
    return subprocess.Popen([str(BIN / args[0]), *map(str, args[1:])], env=env, stdout=open(log_file, 'w'),
                            stderr=subprocess.STDOUT, start_new_session=True)


def kill_when(process: subprocess.Popen, condition, what: str, timeout: float = 300) -> None:
    """SIGKILL ``process`` and its group as soon as ``condition()`` holds."""
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, f"the command ended before {what}"
        assert time.time() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope='module')
def killed_and_resumed(tmp_path_factory):
    """Train, SIGKILL in epoch KILL_IN_EPOCH, resume with --c; returns what each step left behind."""
    root = tmp_path_factory.mktemp('resume')
    dataset, _ = planned_tiny_dataset(root, DATASET_ID)
    trainer_dir = root / 'test_trainers'
    trainer_dir.mkdir()
    (trainer_dir / 'resumable_trainers.py').write_text(textwrap.dedent(RESUMABLE_TRAINER_MODULE))
    env = nnunet_env(root, trainer_dir)
    fold = root / 'res' / dataset.name / f'{TRAINER}__nnUNetBoundaryPlans__3d_fullres' / 'fold_0'
    train = ['nnUNetv2_train', DATASET_ID, '3d_fullres', 0, '-tr', TRAINER, '-p', 'nnUNetBoundaryPlans',
             '-device', 'cpu']
    log = root / 'killed_run.log'
    process = start(train, env, log)
    kill_when(process, lambda: re.search(rf'Epoch {KILL_IN_EPOCH}$', log.read_text(), re.M), f'epoch {KILL_IN_EPOCH}')
    at_kill = torch.load(fold / 'checkpoint_latest.pth', map_location='cpu', weights_only=False)
    resumed = run(train + ['--c'], env)
    final = torch.load(fold / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    return dict(root=root, dataset=dataset, env=env, fold=fold, at_kill=at_kill, resumed_log=resumed.stdout,
                final=final)


def test_sigkill_mid_epoch_loses_at_most_that_epoch(killed_and_resumed):
    assert killed_and_resumed['at_kill']['current_epoch'] == KILL_IN_EPOCH


def test_resume_continues_from_the_checkpoint_and_its_loss_curve(killed_and_resumed):
    log, at_kill, final = (killed_and_resumed[k] for k in ('resumed_log', 'at_kill', 'final'))
    started = [int(e) for e in re.findall(r'Epoch (\d+)$', log, re.M)]
    assert started == list(range(KILL_IN_EPOCH, EPOCHS))
    before, after = at_kill['logging']['train_losses'], final['logging']['train_losses']
    assert len(before) == KILL_IN_EPOCH and len(after) == EPOCHS
    assert after[:KILL_IN_EPOCH] == before
    assert np.all(np.isfinite(after))
    assert final['current_epoch'] == EPOCHS
    assert (killed_and_resumed['fold'] / 'validation' / 'summary.json').is_file()


@pytest.fixture(scope='module')
def trainer(killed_and_resumed) -> BoundaryTrainer_smoke:
    """A BoundaryTrainer_smoke on the module's preprocessed dataset, initialised (network, loss, optimizer)."""
    env, pre = killed_and_resumed['env'], killed_and_resumed['root'] / 'pre' / killed_and_resumed['dataset'].name
    with pytest.MonkeyPatch.context() as patch:
        for name in ('nnUNet_raw', 'nnUNet_preprocessed', 'nnUNet_results', 'nnUNet_n_proc_DA'):
            patch.setenv(name, env[name])
        plans = dict(json.loads((pre / 'nnUNetBoundaryPlans.json').read_text()), continue_training=False)
        trainer = BoundaryTrainer_smoke(plans, '3d_fullres', 0, json.loads((pre / 'dataset.json').read_text()),
                                        device=torch.device('cpu'))
        trainer.initialize()
        yield trainer


def test_checkpoint_restores_boundary_stream_and_optimizer_state(killed_and_resumed, trainer):
    trainer.load_checkpoint(str(killed_and_resumed['fold'] / 'checkpoint_final.pth'))
    saved = killed_and_resumed['final']
    weights = trainer.network.state_dict()
    assert [k for k in saved['network_weights'] if k.startswith(('boundary_stream.', 'boundary_heads.'))]
    for key, value in saved['network_weights'].items():
        assert torch.equal(weights[key], value), key
    state, saved_state = trainer.optimizer.state_dict()['state'], saved['optimizer_state']['state']
    assert state.keys() == saved_state.keys()
    for index, buffers in saved_state.items():
        assert torch.equal(state[index]['momentum_buffer'], buffers['momentum_buffer'])
    names = [name for name, _ in trainer.network.named_parameters()]
    assert any(names[index].startswith('boundary_stream.') for index in state)  # SGD momentum of the boundary stream
    assert trainer.current_epoch == EPOCHS


def test_checkpoint_interrupted_while_saving_keeps_the_previous_one(trainer, monkeypatch, tmp_path):
    checkpoint = tmp_path / 'checkpoint_latest.pth'
    trainer.save_checkpoint(str(checkpoint))
    intact = checkpoint.read_bytes()

    def killed_while_writing(obj, filename):
        with open(filename, 'wb') as f:
            f.write(intact[:len(intact) // 3])
        raise KeyboardInterrupt('killed while saving')
    monkeypatch.setattr(torch, 'save', killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint(str(checkpoint))
    assert checkpoint.read_bytes() == intact
    trainer.load_checkpoint(str(checkpoint))


@pytest.mark.parametrize('content', ['no tumor', 'no foreground', 'no edge'])
def test_real_train_step_on_degenerate_patches_is_finite(trainer, content):
    patch = trainer.configuration_manager.patch_size
    target = torch.zeros(2, 2, *patch)  # regions kidney+tumor, tumor
    if content == 'no tumor':
        target[:, 0, 8:24, 8:24, 8:24] = 1
    elif content == 'no edge':
        target[:, 0] = 1  # kidney fills the patch, no tumor: neither region has a boundary inside it
    scales = trainer._get_deep_supervision_scales()
    targets = [torch.nn.functional.interpolate(target, scale_factor=[float(s) for s in scale], mode='nearest-exact')
               for scale in scales]
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    loss = trainer.train_step({'data': torch.randn(2, 1, *patch), 'target': targets})['loss']
    assert np.isfinite(loss)
    for name, p in trainer.network.named_parameters():
        assert torch.isfinite(p).all() and (p.grad is None or torch.isfinite(p.grad).all()), name
    assert any(not torch.equal(before[k], v) for k, v in trainer.network.state_dict().items())


def test_nnunet_continue_prediction_alone_would_keep_a_half_written_file(tmp_path):
    """Why the guard exists: nnU-Net skips every existing output file."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    image = sitk.GetImageFromArray(np.random.rand(8, 8, 8).astype(np.float32))
    (tmp_path / 'in').mkdir()
    sitk.WriteImage(image, str(tmp_path / 'in' / 'a_0000.nii.gz'))
    sitk.WriteImage(image, str(tmp_path / 'a.nii.gz'))
    data = (tmp_path / 'a.nii.gz').read_bytes()
    (tmp_path / 'a.nii.gz').write_bytes(data[:len(data) // 2])
    predictor = nnUNetPredictor(device=torch.device('cpu'))
    predictor.dataset_json = {'file_ending': '.nii.gz'}
    todo, _, _ = predictor._manage_input_and_output_lists(str(tmp_path / 'in'), str(tmp_path), overwrite=False)
    assert todo == []
    assert remove_incomplete_predictions(tmp_path, ['a'], '.nii.gz')[0].startswith('a.nii.gz: the gzip stream')
    assert not (tmp_path / 'a.nii.gz').exists()


def test_interrupted_prediction_continues_and_redoes_the_half_written_case(killed_and_resumed):
    root, env, dataset = killed_and_resumed['root'], killed_and_resumed['env'], killed_and_resumed['dataset']
    out = root / 'predictions'
    predict = ['nnunet_boundary_predict', '-i', dataset / 'imagesTs', '-o', out, '-d', DATASET_ID, '-tr', TRAINER,
               '-f', 0, '-device', 'cpu', '-npp', 0, '-nps', 0, '--disable_progress_bar']
    cases = sorted(p.name[:-len('_0000.nii.gz')] + '.nii.gz' for p in (dataset / 'imagesTs').iterdir())
    outputs = lambda: sorted(p.name for p in out.glob('*.nii.gz')) if out.is_dir() else []
    process = start(predict, env, root / 'predict_killed.log')
    kill_when(process, lambda: any(nifti_truncation(out / name) is None for name in outputs()), 'first prediction')
    done_at_kill = outputs()
    assert 1 <= len(done_at_kill) < len(cases), 'the prediction must be interrupted part-way'

    # a kill during nnU-Net's in-place write leaves the first half of the file
    half_written = out / done_at_kill[0]
    whole = sitk.GetArrayFromImage(sitk.ReadImage(str(half_written)))
    half_written.write_bytes(half_written.read_bytes()[:half_written.stat().st_size // 2])
    untouched = {name: (out / name).stat().st_mtime_ns for name in done_at_kill[1:]}

    result = run(predict + ['--continue_prediction'], env)
    assert f'removed a half-written output of an interrupted run, predicting it again: {half_written.name}' \
           in result.stdout
    assert outputs() == cases
    assert all(nifti_truncation(out / name) is None for name in cases)
    assert all((out / name).stat().st_mtime_ns == mtime for name, mtime in untouched.items())
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(half_written))), whole)
