"""Speed and memory of a boundary trainer vs a baseline trainer on the same plans, patch and batch.

Each model is measured in its own fresh process (:func:`~nnunet_boundary.benchmark.speed_worker.measure_model`,
run by :func:`measure_speed`), so peak RSS / CUDA memory of one never includes the other; processes
alternate boundary/baseline in ABBA order so that a shared, busy CPU slows both alike:

* train step: nnU-Net's ``train_step`` (forward, loss, backward, optimizer step; AMP on CUDA as
  nnU-Net does) on one fixed batch from the trainer's own loader, after warm-up; median;
* prediction: nnU-Net's sliding window (``nnUNetPredictor``, step 0.5, Gaussian, no mirroring)
  on the same preprocessed case; median;
* parameters and FLOPs of one forward pass of one patch (``torch.utils.flop_counter``);
* peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, the process's peak RSS on CPU.

The sampler's throughput is measured by :mod:`nnunet_boundary.benchmark.loader_speed`.
"""
import statistics
from typing import Callable, Dict, List, Optional

from nnunet_boundary.benchmark.speed_worker import run_worker


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
