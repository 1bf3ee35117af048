"""The whole benchmark: train every trainer on every fold, predict the held-out test cases in the
paper's two settings, evaluate, measure speed and memory, write the report. Every stage skips what
an earlier, interrupted run finished."""
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from nnunet_boundary.benchmark.folds import train_folds
from nnunet_boundary.benchmark import predictions
from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.benchmark.predictions import MODES, predict_and_evaluate, test_cases
from nnunet_boundary.benchmark.report import accuracy_row, accuracy_targets, write_results
from nnunet_boundary.benchmark.speed import loader_throughput, measure_speed
from nnunet_boundary.benchmark.trainers import configuration_for, find_trainer_class, model_folder
from nnunet_boundary.environment import dataset_name as dataset_name_for, require_nnunet_paths
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.nnunet_commands import nnunet_environment
from nnunet_boundary.planning.templates import PLANS_NAME
from nnunet_boundary.training.boundary_trainer import BoundaryTrainer


def environment_summary(device: str, command: str) -> dict:
    """Versions and machine, for the report."""
    from importlib.metadata import version
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=Path(__file__).parent, text=True,
                                capture_output=True).stdout.strip() or None
    except OSError:
        commit = None
    cpu = next((line.split(':', 1)[1].strip() for line in Path('/proc/cpuinfo').read_text().splitlines()
                if line.startswith('model name')), platform.processor()) if Path('/proc/cpuinfo').exists() else \
        platform.processor()
    gpu = torch.cuda.get_device_name(0) if device == 'cuda' and torch.cuda.is_available() else None
    return {'command': command, 'nnunet_boundary commit': commit,
            'nnunetv2': version('nnunetv2'), 'torch': torch.__version__, 'python': platform.python_version(),
            'machine': f'{platform.machine()}, {os.cpu_count()} CPU cores ({cpu}), '
                       f'{os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30:.0f} GiB RAM'
                       + (f', GPU {gpu}' if gpu else ''),
            'device': device}


def run_benchmark(dataset_id: int, trainers: Sequence[str], out: Path, folds: Sequence[int] = (0, 1, 2, 3, 4),
                  device: str = 'cpu', n_proc: int = 2, speed: bool = True, command: str = '',
                  modes: Sequence[str] = tuple(MODES),
                  log: Optional[Callable[[str], None]] = None) -> dict:
    """Run (or continue) the benchmark and write ``out/results.json``, ``RESULTS.md``, ``benchmark.png``."""
    require_nnunet_paths('nnUNet_raw', 'nnUNet_preprocessed', 'nnUNet_results')
    out = Path(out).resolve()
    started = time.time()
    log = log or (lambda msg: print(f"[benchmark {time.time() - started:6.0f}s] {msg}", flush=True))
    if 0 not in folds:
        raise NnUNetBoundaryError("--folds must include fold 0: the single-model row uses it")
    dataset_name = dataset_name_for(dataset_id)
    env = nnunet_environment(Path(os.environ['nnUNet_raw']), Path(os.environ['nnUNet_preprocessed']),
                             Path(os.environ['nnUNet_results']), n_proc=n_proc)
    raw = Path(os.environ['nnUNet_raw']) / dataset_name
    plans_file = Path(os.environ['nnUNet_preprocessed']) / dataset_name / f'{PLANS_NAME}.json'
    if not plans_file.is_file():
        raise NnUNetBoundaryError(f"no {plans_file}; run `nnunet_boundary_plan_and_preprocess -d {dataset_id}` first")
    file_ending = json.loads((raw / 'dataset.json').read_text()).get('file_ending', '.nii.gz')
    cases = test_cases(raw / 'labelsTs', file_ending)
    if not cases:
        raise NnUNetBoundaryError(f"{raw / 'labelsTs'} holds no test labels; convert with a held-out test set "
                                  f"(e.g. nnunet_boundary_convert_kits19 ... --num-test N)")
    configurations = {name: configuration_for(find_trainer_class(name)) for name in trainers}
    boundary = next((n for n in trainers if issubclass(find_trainer_class(n), BoundaryTrainer)), None)
    baseline = next((n for n in trainers if not issubclass(find_trainer_class(n), BoundaryTrainer)), None)
    log(f"{dataset_name}: trainers {configurations}, folds {list(folds)}, {len(cases)} test cases, out {out}")

    # fold by fold, boundary and baseline back to back, so that a shared machine's load hits both alike
    fold_status = {name: {} for name in trainers}
    for fold in folds:
        for name in trainers:
            fold_status[name].update(train_folds(
                dataset_id, name, configurations[name],
                model_folder(Path(os.environ['nnUNet_results']), dataset_name, name, configurations[name]),
                [fold], env, out / 'logs', device, log))
    rows = []
    for mode in modes:
        for name in trainers:
            evaluation = predict_and_evaluate(
                dataset_id, name, configurations[name], mode, folds, raw / 'imagesTs', raw / 'labelsTs',
                out / 'predictions' / name / predictions.output_name(mode, folds), env, out / 'logs', device,
                file_ending, log)
            rows.append(accuracy_row(name, configurations[name], mode, folds, evaluation))
    results = {'dataset': dataset_name, 'dataset_id': dataset_id, 'plans': PLANS_NAME, 'folds': list(folds),
               'test_cases': cases, 'trainers': {n: {'configuration': configurations[n], 'folds': fold_status[n]}
                                                 for n in trainers},
               'rows': sorted(rows, key=lambda r: (r['trainer'] != boundary, r['trainer'], r['mode'] != 'single')),
               'accuracy_targets': accuracy_targets(rows, boundary, baseline) if boundary and baseline else {},
               'environment': environment_summary(device, command)}
    write_results(results, out)  # accuracy first: the speed section takes minutes more
    if speed and boundary and baseline:
        speed_file = out / 'speed.json'
        if speed_file.is_file():
            log("speed and memory: measured by an earlier run, reusing speed.json")
            results['speed'] = json.loads(speed_file.read_text())
        else:
            preprocessed_case = sorted(json.loads((plans_file.parent / 'splits_final.json').read_text())[0]['train'])[0]
            speed_results = measure_speed(boundary, baseline, dataset_id, preprocessed_case, env, device=device,
                                          log=log)
            speed_results['loader'] = loader_throughput(boundary, dataset_id, log=log)
            write_json_atomically(speed_results, speed_file)
            results['speed'] = speed_results
        from nnunet_boundary.benchmark.report import speed_targets
        results['speed_targets'] = speed_targets(results['speed'])
    results['environment']['benchmark_seconds_this_run'] = round(time.time() - started)
    write_results(results, out)
    log(f"done: {out / 'RESULTS.md'}")
    return results
