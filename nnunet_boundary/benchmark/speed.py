"""Speed and memory of a boundary trainer vs a baseline trainer on the same plans, patch and batch.

Each model is measured in its own fresh process (:func:`measure_model`, run by
:func:`measure_speed`), so peak RSS / CUDA memory of one never includes the other; processes
alternate boundary/baseline in ABBA order so that a shared, busy CPU slows both alike:

* train step: nnU-Net's ``train_step`` (forward, loss, backward, optimizer step; AMP on CUDA as
  nnU-Net does) on one fixed batch from the trainer's own loader, after warm-up; median;
* prediction: nnU-Net's sliding window (``nnUNetPredictor``, step 0.5, Gaussian, no mirroring)
  on the same preprocessed case; median;
* parameters and FLOPs of one forward pass of one patch (``torch.utils.flop_counter``);
* peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, the process's peak RSS on CPU.

:func:`loader_throughput` compares the tumor-weighted sampler with nnU-Net's
``nnUNetDataLoader`` on the same preprocessed cases (sampling, loading and cropping; no
augmentation, which both share), interleaved in blocks.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

from nnunet_boundary.environment import dataset_name
from nnunet_boundary.errors import NnUNetBoundaryError


def time_calls(fn: Callable[[], object], n: int, warmup: int, device: torch.device) -> List[float]:
    """Seconds per call of ``fn`` for ``n`` calls after ``warmup`` untimed ones."""
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        sync()
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return times


def count_parameters(network: torch.nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def forward_flops(network: torch.nn.Module, input_shape: Sequence[int], device: torch.device) -> int:
    """FLOPs of one inference forward pass on an input of ``input_shape`` (batch included). The counter
    knows PyTorch's generic convolution, so oneDNN's direct calls (OneDNNConv3d) are switched off here."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(tuple(input_shape), device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False), counter:
        network(x)
    return int(counter.get_total_flops())


def peak_memory_bytes(device: torch.device) -> Dict[str, int]:
    """Peak RSS of this process (Linux reports KiB) and, on CUDA, the peak allocated memory."""
    peak = {'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if device.type == 'cuda':
        peak['cuda_max_allocated_bytes'] = int(torch.cuda.max_memory_allocated(device))
    return peak


def load_trainer(trainer_name: str, dataset_id: int, fold: int, device: torch.device, plans: Optional[dict] = None):
    """The trainer nnUNetv2_train would build for ``-tr trainer_name -p nnUNetBoundaryPlans``,
    initialized (network, loss, optimizer), with ``plans`` overriding the preprocessed plans."""
    from nnunetv2.paths import nnUNet_preprocessed

    from nnunet_boundary.benchmark.trainers import configuration_for, find_trainer_class
    from nnunet_boundary.planning.templates import PLANS_NAME

    folder = Path(nnUNet_preprocessed.get()) / dataset_name(dataset_id)
    plans = plans or json.loads((folder / f'{PLANS_NAME}.json').read_text())
    dataset_json = json.loads((folder / 'dataset.json').read_text())
    trainer_class = find_trainer_class(trainer_name)
    # nnU-Net 2.8's trainer pops this flag, which nnUNetv2_train puts into the plans
    trainer = trainer_class(dict(plans, continue_training=False), configuration_for(trainer_class), fold,
                            dataset_json, device)
    trainer.initialize()
    return trainer


def measure_model(trainer_name: str, dataset_id: int, fold: int, device: str, steps: int, warmup: int,
                  predict_case: str, predict_repeats: int, plans: Optional[dict] = None) -> dict:
    """Everything about one model, in this process (run it in a fresh one: see the module doc)."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    device = torch.device(device)
    if device.type == 'cpu':
        torch.set_num_threads(os.cpu_count())
    trainer = load_trainer(trainer_name, dataset_id, fold, device, plans)
    loader, _ = trainer.get_dataloaders()
    batch = next(loader)
    step_times = time_calls(lambda: trainer.train_step(batch), steps, warmup, device)

    trainer.set_deep_supervision_enabled(False)
    trainer.network.eval()
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=True, device=device, verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager, None,
                                    trainer.dataset_json, trainer.__class__.__name__, None)
    dataset, _ = trainer.get_tr_and_val_datasets()
    data = torch.from_numpy(dataset.load_case(predict_case)[0][:])
    predict_times = time_calls(lambda: predictor.predict_sliding_window_return_logits(data),
                               predict_repeats, 1, device)
    patch = list(trainer.configuration_manager.patch_size)
    return {
        'trainer': trainer_name, 'network': type(trainer.network).__name__, 'device': str(device),
        'patch_size': patch, 'batch_size': trainer.batch_size, 'predict_case': predict_case,
        'predict_case_shape': list(data.shape[1:]),
        'step_seconds': step_times, 'predict_seconds': predict_times,
        'parameters': count_parameters(trainer.network),
        'forward_flops_per_patch': forward_flops(trainer.network, [1, data.shape[0], *patch], device),
        **peak_memory_bytes(device),
    }


def run_worker(spec: dict, env: Dict[str, str]) -> dict:
    """:func:`measure_model` in a fresh Python process."""
    result = subprocess.run([sys.executable, '-m', 'nnunet_boundary.benchmark.speed', json.dumps(spec)],
                            env=dict(env, nnUNet_n_proc_DA='0', nnUNet_compile='false'),
                            capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise NnUNetBoundaryError(f"speed measurement of {spec['trainer_name']} failed (exit {result.returncode}):\n"
                                  f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def abba(boundary: str, baseline: str, rounds: int) -> List[str]:
    """Interleaved order: boundary, baseline, baseline, boundary, boundary, baseline, ..."""
    return [name for r in range(rounds) for name in ((boundary, baseline) if r % 2 == 0 else (baseline, boundary))]


def summarize(measurements: List[dict]) -> dict:
    """One model's measurements (several processes) merged: medians of times, max of memory."""
    first = measurements[0]
    steps = [t for m in measurements for t in m['step_seconds']]
    predicts = [t for m in measurements for t in m['predict_seconds']]
    summary = {k: first[k] for k in ('trainer', 'network', 'device', 'patch_size', 'batch_size', 'predict_case',
                                     'predict_case_shape', 'parameters', 'forward_flops_per_patch')}
    summary.update(train_step_seconds_median=statistics.median(steps), train_steps_timed=len(steps),
                   predict_seconds_median=statistics.median(predicts), predictions_timed=len(predicts))
    for key in ('peak_rss_bytes', 'cuda_max_allocated_bytes'):
        if key in first:
            summary[key] = max(m[key] for m in measurements)
    return summary


RATIOS = {'train_step_seconds_median': 'train_step_time', 'predict_seconds_median': 'predict_time_per_case',
          'peak_rss_bytes': 'peak_rss', 'cuda_max_allocated_bytes': 'cuda_max_allocated',
          'parameters': 'parameters', 'forward_flops_per_patch': 'flops_per_patch'}


def ratios(boundary: dict, baseline: dict) -> Dict[str, float]:
    """boundary / baseline for every measured quantity."""
    return {name: boundary[key] / baseline[key] for key, name in RATIOS.items() if key in boundary and key in baseline}


def measure_speed(boundary: str, baseline: str, dataset_id: int, predict_case: str, env: Dict[str, str],
                  fold: int = 0, device: str = 'cpu', rounds: int = 2, steps_per_round: int = 10, warmup: int = 2,
                  predict_repeats: int = 2, plans: Optional[dict] = None,
                  log: Callable[[str], None] = print) -> dict:
    """Per-model summaries and boundary/baseline ratios, one fresh process per model and round."""
    runs = {boundary: [], baseline: []}
    for i, name in enumerate(abba(boundary, baseline, rounds)):
        log(f"speed {i + 1}/{2 * rounds}: {name} ({warmup} warm-up + {steps_per_round} timed train steps, "
            f"{predict_repeats} predictions of {predict_case}) on {device}")
        runs[name].append(run_worker({'trainer_name': name, 'dataset_id': dataset_id, 'fold': fold, 'device': device,
                                      'steps': steps_per_round, 'warmup': warmup, 'predict_case': predict_case,
                                      'predict_repeats': predict_repeats, 'plans': plans}, env))
    models = {name: summarize(m) for name, m in runs.items()}
    return {'models': models, 'ratios': ratios(models[boundary], models[baseline]),
            'boundary': boundary, 'baseline': baseline}


def loader_throughput(boundary: str, dataset_id: int, fold: int = 0, batches_per_block: int = 10, blocks: int = 4,
                      plans: Optional[dict] = None, log: Callable[[str], None] = print) -> dict:
    """Batches per second of the tumor-weighted sampler (as the boundary trainer configures it) and of
    nnU-Net's default ``nnUNetDataLoader`` (its foreground oversampling), same cases, batch and
    patch, alternating blocks of ``batches_per_block`` batches."""
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

    from nnunet_boundary.benchmark.trainers import find_trainer_class
    from nnunet_boundary.planning.templates import PLANS_NAME

    folder = Path(nnUNet_preprocessed.get()) / dataset_name(dataset_id)
    plans = dict(plans or json.loads((folder / f'{PLANS_NAME}.json').read_text()), continue_training=False)
    trainer = find_trainer_class(boundary)(plans, '3d_fullres', fold, json.loads((folder / 'dataset.json').read_text()),
                                           torch.device('cpu'))
    trainer._set_batch_size_and_oversample()
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


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='internal: measure one model (see run_worker)')
    parser.add_argument('spec', help='JSON keyword arguments of measure_model')
    print(json.dumps(measure_model(**json.loads(parser.parse_args().spec))), flush=True)
