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
from nnunet_boundary.benchmark.loader_speed import loader_throughput
from nnunet_boundary.benchmark.predictions import MODES, predict_and_evaluate, test_cases
from nnunet_boundary.benchmark.report import accuracy_row, accuracy_targets, speed_targets, write_results
from nnunet_boundary.benchmark.speed import measure_speed
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
    setup = _benchmark_setup(dataset_id, trainers, n_proc)
    boundary, baseline = setup['boundary'], setup['baseline']
    log(f"{setup['dataset_name']}: trainers {setup['configurations']}, folds {list(folds)}, "
        f"{len(setup['cases'])} test cases, out {out}")
    fold_status = _train_all(dataset_id, trainers, folds, setup, out, device, log)
    rows = [accuracy_row(name, setup['configurations'][name], mode, folds,
                         _predict_and_evaluate(dataset_id, name, mode, folds, setup, out, device, log))
            for mode in modes for name in trainers]
    results = {'dataset': setup['dataset_name'], 'dataset_id': dataset_id, 'plans': PLANS_NAME, 'folds': list(folds),
               'test_cases': setup['cases'],
               'trainers': {n: {'configuration': setup['configurations'][n], 'folds': fold_status[n]}
                            for n in trainers},
               'rows': sorted(rows, key=lambda r: (r['trainer'] != boundary, r['trainer'], r['mode'] != 'single')),
               'accuracy_targets': accuracy_targets(rows, boundary, baseline) if boundary and baseline else {},
               'environment': environment_summary(device, command)}
    write_results(results, out)  # accuracy first: the speed section takes minutes more
    if speed and boundary and baseline:
        results['speed'] = _speed(dataset_id, boundary, baseline, setup, out / 'speed.json', device, log)
        results['speed_targets'] = speed_targets(results['speed'])
    results['environment']['benchmark_seconds_this_run'] = round(time.time() - started)
    write_results(results, out)
    log(f"done: {out / 'RESULTS.md'}")
    return results


def _benchmark_setup(dataset_id: int, trainers: Sequence[str], n_proc: int) -> dict:
    """Folders, nnU-Net environment, test cases and each trainer's configuration, checked."""
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
    classes = {name: find_trainer_class(name) for name in trainers}
    return {'dataset_name': dataset_name, 'env': env, 'raw': raw, 'plans_file': plans_file, 'file_ending': file_ending,
            'cases': cases, 'configurations': {name: configuration_for(c) for name, c in classes.items()},
            'boundary': next((n for n, c in classes.items() if issubclass(c, BoundaryTrainer)), None),
            'baseline': next((n for n, c in classes.items() if not issubclass(c, BoundaryTrainer)), None)}


def _train_all(dataset_id, trainers, folds, setup, out: Path, device: str, log) -> dict:
    """Fold by fold, the trainers back to back, so that a shared machine's load hits them alike."""
    fold_status = {name: {} for name in trainers}
    for fold in folds:
        for name in trainers:
            configuration = setup['configurations'][name]
            fold_status[name].update(train_folds(
                dataset_id, name, configuration,
                model_folder(Path(os.environ['nnUNet_results']), setup['dataset_name'], name, configuration),
                [fold], setup['env'], out / 'logs', device, log))
    return fold_status


def _predict_and_evaluate(dataset_id, name, mode, folds, setup, out: Path, device: str, log) -> dict:
    raw = setup['raw']
    return predict_and_evaluate(dataset_id, name, setup['configurations'][name], mode, folds, raw / 'imagesTs',
                                raw / 'labelsTs', out / 'predictions' / name / predictions.output_name(mode, folds),
                                setup['env'], out / 'logs', device, setup['file_ending'], log)


def _speed(dataset_id, boundary: str, baseline: str, setup, speed_file: Path, device: str, log) -> dict:
    """Speed and memory of the boundary and the baseline trainer, measured once and cached in ``speed_file``."""
    if speed_file.is_file():
        log("speed and memory: measured by an earlier run, reusing speed.json")
        return json.loads(speed_file.read_text())
    split = json.loads((setup['plans_file'].parent / 'splits_final.json').read_text())
    speed_results = measure_speed(boundary, baseline, dataset_id, sorted(split[0]['train'])[0], setup['env'],
                                  device=device, log=log)
    speed_results['loader'] = loader_throughput(boundary, dataset_id, log=log)
    write_json_atomically(speed_results, speed_file)
    return speed_results
