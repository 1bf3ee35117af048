"""The benchmark's logic on fake results and a tiny network: fold bookkeeping, cached predictions,
report assembly, speed-measurement plumbing. No training, no wall-clock assertions."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.benchmark import folds, predictions, report, speed, timing
from nnunet_boundary.benchmark.trainers import configuration_for, find_trainer_class
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.planning.templates import apply_template, load_template
from nnunet_boundary.training.variants import BaselineTrainer_cpu, BoundaryTrainer_cpu
from tests.helpers import tiny_network
from tests.test_planning import nnunet_like_plans
from tests.test_trainers import DATASET_JSON

CASES = ['case_00010', 'case_00011', 'case_00012']


def fake_metrics(offset: float) -> dict:
    per_case = {c: {'kidney_dice': 0.9 + offset, 'tumor_dice': 0.5 + offset + 0.1 * i,
                    'composite_dice': 0.7 + offset, 'kidney_nsd': 0.8 + offset, 'tumor_nsd': 0.4 + offset,
                    'kidney_hd95': 4.0, 'tumor_hd95': float('inf')}
                for i, c in enumerate(CASES)}
    mean = {m: sum(v[m] for v in per_case.values()) / len(per_case) for m in report.METRICS}
    return {'per_case': per_case, 'mean': mean}


def fake_model(name: str, step: float, rss: int) -> dict:
    return {'trainer': name, 'network': 'Net', 'device': 'cpu', 'patch_size': [48, 48, 48], 'batch_size': 2,
            'predict_case': 'case_00000', 'predict_case_shape': [70, 70, 58], 'parameters': 1000,
            'forward_flops_per_patch': 2e9, 'step_seconds': [step] * 12, 'predict_seconds': [2 * step] * 2,
            'peak_rss_bytes': rss}


def test_trainer_configurations():
    assert configuration_for(find_trainer_class('BoundaryTrainer_cpu')) == '3d_fullres'
    assert configuration_for(find_trainer_class('BaselineTrainer_cpu')) == '3d_fullres_baseline'
    assert configuration_for(nnUNetTrainer) == '3d_fullres_baseline'
    # the boundary stream on nnU-Net's network trains nnU-Net's configuration
    assert configuration_for(find_trainer_class('BoundaryTrainer_4mm_nnUNetNetwork')) == '3d_fullres_baseline'
    with pytest.raises(NnUNetBoundaryError, match='unknown trainer'):
        find_trainer_class('NoSuchTrainer_xyz')


def test_cpu_budgets_are_identical_for_both_trainers(monkeypatch, tmp_path):
    monkeypatch.setenv('nnUNet_results', str(tmp_path))
    plans = dict(apply_template(nnunet_like_plans(), load_template('cpu_smoke')), continue_training=False)
    budgets = []
    for cls, configuration in ((BoundaryTrainer_cpu, '3d_fullres'), (BaselineTrainer_cpu, '3d_fullres_baseline')):
        trainer = cls(dict(plans), configuration, 0, DATASET_JSON, torch.device('cpu'))
        budgets.append([getattr(trainer, a) for a in ('num_epochs', 'num_iterations_per_epoch',
                                                      'num_val_iterations_per_epoch', 'save_every')])
    assert budgets[0] == budgets[1] == [30, 20, 1, 1]


def test_fold_action_and_training_skips_finished_folds(tmp_path, monkeypatch):
    model = tmp_path / 'model'
    (model / 'fold_0' / 'validation').mkdir(parents=True)
    (model / 'fold_0' / 'checkpoint_final.pth').touch()
    (model / 'fold_0' / 'validation' / 'summary.json').touch()
    (model / 'fold_1').mkdir()
    (model / 'fold_1' / 'checkpoint_final.pth').touch()
    (model / 'fold_2').mkdir()
    (model / 'fold_2' / 'checkpoint_latest.pth').touch()
    assert [folds.fold_action(model / f'fold_{f}') for f in range(4)] == ['done', 'validate', 'resume', 'train']

    calls = []
    monkeypatch.setattr(folds, 'run_nnunet', lambda args, env, log_file, prefix='': calls.append(list(args)))
    done = folds.train_folds(5, 'BoundaryTrainer_cpu', '3d_fullres', model, [0, 1, 2, 3], {}, tmp_path,
                             log=lambda m: None)
    assert done == {0: 'done', 1: 'validate', 2: 'resume', 3: 'train'}
    assert [c[3] for c in calls] == [1, 2, 3]
    assert calls[0][-1] == '--val' and calls[1][-1] == '--c' and calls[2][-1] == 'cpu'
    assert calls[2][:9] == ['nnUNetv2_train', 5, '3d_fullres', 3, '-tr', 'BoundaryTrainer_cpu', '-p',
                            'nnUNetBoundaryPlans', '-device']


def test_predictions_use_the_papers_two_settings_and_a_complete_cache(tmp_path, monkeypatch):
    labels = tmp_path / 'labelsTs'
    labels.mkdir()
    for c in CASES:
        (labels / f'{c}.nii.gz').touch()
    calls = []
    monkeypatch.setattr(predictions, 'run_nnunet', lambda args, env, log_file, prefix='': calls.append(list(args)))
    monkeypatch.setitem(sys.modules, 'nnunet_boundary.kits19.metrics', None)  # stop at the evaluation
    with pytest.raises(ImportError):
        predictions.predict_and_evaluate(7, 'B', '3d_fullres', 'single', [0, 1, 2], tmp_path / 'imagesTs', labels,
                                         tmp_path / 'single', {}, tmp_path, log=lambda m: None)
    single = calls[0]
    assert single[single.index('-f') + 1:single.index('-device')] == [0] and '--disable_tta' in single

    cached = {'metrics': fake_metrics(0.0), 'seconds': 12.0}
    write_json_atomically(cached, tmp_path / 'ens' / 'metrics.json')
    calls.clear()
    result = predictions.predict_and_evaluate(7, 'B', '3d_fullres', 'ensemble_tta', [0, 1, 2], tmp_path, labels,
                                              tmp_path / 'ens', {}, tmp_path, log=lambda m: None)
    assert calls == [] and result['seconds'] == 12.0
    assert predictions.mode_folds('ensemble_tta', [0, 1, 2]) == [0, 1, 2]
    assert predictions.output_name('ensemble_tta', [0, 1, 2]) == 'ensemble_tta_folds_0-1-2'
    assert predictions.output_name('single', [0, 1, 2]) == 'single_fold_0'


def test_results_table_json_and_plot_from_fake_metrics(tmp_path):
    rows = [report.accuracy_row('BoundaryTrainer_cpu', '3d_fullres', mode, [0, 1],
                                {'metrics': fake_metrics(0.01), 'seconds': 5.0}) for mode in ('single', 'ensemble_tta')]
    rows += [report.accuracy_row('BaselineTrainer_cpu', '3d_fullres_baseline', mode, [0, 1],
                                 {'metrics': fake_metrics(0.0), 'seconds': 4.0}) for mode in ('single', 'ensemble_tta')]
    targets = report.accuracy_targets(rows, 'BoundaryTrainer_cpu', 'BaselineTrainer_cpu')
    assert targets['ensemble_tta']['tumor_nsd']['met']
    assert targets['single']['composite_dice']['difference'] == pytest.approx(0.01)

    models = {'B': speed.summarize([fake_model('B', 1.2, 300 * 2 ** 20)]),
              'N': speed.summarize([fake_model('N', 1.0, 200 * 2 ** 20)])}
    speed_results = {'models': models, 'ratios': speed.ratios(models['B'], models['N']), 'boundary': 'B',
                     'baseline': 'N', 'loader': {'batches_per_second': {'tumor_weighted': 9.0, 'nnunet_default': 10.0},
                                                 'batches_timed': 40, 'ratio': 0.9}}
    checked = report.speed_targets(speed_results)
    assert checked['train_step_time'] == {'ratio': pytest.approx(1.2), 'target': '<= 1.25', 'met': True}
    assert not checked['sampler_throughput']['met']

    results = {'dataset': 'Dataset999_X', 'plans': 'nnUNetBoundaryPlans', 'folds': [0, 1], 'test_cases': CASES,
               'rows': rows, 'accuracy_targets': targets, 'speed': speed_results, 'environment': {'torch': '2'}}
    report.write_results(results, tmp_path)
    markdown = (tmp_path / 'RESULTS.md').read_text()
    table = [line for line in markdown.splitlines() if line.startswith('| BoundaryTrainer_cpu') or
             line.startswith('| BaselineTrainer_cpu')]
    assert len(table) == 4 and '| 0.910 |' in table[0] and '| inf |' in table[0]
    assert '| single model (fold 0, no TTA) |' in table[0] and '| 2-fold ensemble + mirroring TTA |' in table[1]
    assert '| train step (s, median) | 1.200 | 1.000 | 1.20 | <= 1.25: met |' in markdown
    assert 'NOT met' in markdown  # the loader ratio 0.9 misses its target
    assert json.loads((tmp_path / 'results.json').read_text().replace('Infinity', '1e999'))['test_cases'] == CASES
    assert (tmp_path / 'benchmark.png').stat().st_size > 0
    assert not list(tmp_path.glob('*.tmp*'))


def test_speed_of_two_trainers_without_the_sampler_has_no_loader_row_or_target():
    """E.g. a trainer against itself in bfloat16 (``benchmarks/cpu_mixed_precision``): no tumor-weighted loader."""
    models = {'B': speed.summarize([fake_model('B', 0.4, 300 * 2 ** 20)]),
              'N': speed.summarize([fake_model('N', 1.0, 200 * 2 ** 20)])}
    speed_results = {'models': models, 'ratios': speed.ratios(models['B'], models['N']), 'boundary': 'B',
                     'baseline': 'N'}
    assert 'sampler_throughput' not in report.speed_targets(speed_results)
    table = report.speed_table(speed_results)
    assert '| train step (s, median) | 0.400 | 1.000 | 0.40 | <= 1.25: met |' in table
    assert not any('loader' in line for line in table)


def test_speed_building_blocks_on_a_tiny_network():
    network = tiny_network(n_stages=2, deep_supervision=False)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01)
    x = torch.randn(1, 1, 16, 16, 16)

    def step():
        optimizer.zero_grad()
        network(x).mean().backward()
        optimizer.step()

    times = timing.time_calls(step, 3, 1, torch.device('cpu'))
    assert len(times) == 3 and all(t > 0 for t in times)
    assert timing.count_parameters(network) == sum(p.numel() for p in network.parameters())
    conv = torch.nn.Conv3d(1, 2, 3, padding=1, bias=False)
    assert timing.forward_flops(conv, [1, 1, 8, 8, 8], torch.device('cpu')) == 2 * 8 ** 3 * 2 * 27
    assert timing.peak_memory_bytes(torch.device('cpu'))['peak_rss_bytes'] > 0


def test_measure_speed_interleaves_fresh_processes_and_takes_medians(monkeypatch):
    order = []

    def worker(spec, env):
        order.append(spec['trainer_name'])
        step = 1.5 if spec['trainer_name'] == 'B' else 1.0
        return fake_model(spec['trainer_name'], step + 0.1 * len(order), 100 * len(order))

    monkeypatch.setattr(speed, 'run_worker', worker)
    result = speed.measure_speed('B', 'N', 1, 'case_00000', {}, rounds=3, log=lambda m: None)
    assert order == ['B', 'N', 'N', 'B', 'B', 'N']
    b = result['models']['B']
    assert b['train_steps_timed'] == 36 and b['peak_rss_bytes'] == 500
    assert b['train_step_seconds_median'] == pytest.approx(1.5 + 0.4)
    assert math.isclose(result['ratios']['parameters'], 1.0)


@pytest.mark.parametrize('args, message', [
    (['--baseline-widths', '8', '16', '32', '64'], '--baseline-widths needs --template'),
    (['--template', 'kits19_cpu', '--baseline-widths', '8', '16', '32', '64'], 'dataset 913'),
])
def test_speed_script_refuses_bad_input_clearly(tmp_path, args, message):
    script = Path(__file__).resolve().parents[1] / 'scripts' / 'speed_memory.py'
    env = dict(os.environ, **{v: str(tmp_path / v) for v in ('nnUNet_raw', 'nnUNet_preprocessed', 'nnUNet_results')})
    result = subprocess.run([sys.executable, str(script), '-d', '913', '--device', 'cpu', *args],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and message in result.stderr and 'Traceback' not in result.stderr


def test_whole_benchmark_trains_each_fold_back_to_back_and_predicts_each_setting(tmp_path, monkeypatch):
    """run_benchmark's orchestration with nnU-Net's training and prediction replaced by records of the calls."""
    from nnunet_boundary.benchmark import run
    raw, pre = tmp_path / 'raw' / 'Dataset951_Bench', tmp_path / 'pre' / 'Dataset951_Bench'
    (raw / 'labelsTs').mkdir(parents=True)
    pre.mkdir(parents=True)
    (raw / 'dataset.json').write_text(json.dumps({'file_ending': '.nii.gz'}))
    (pre / 'nnUNetBoundaryPlans.json').write_text('{}')
    for case in CASES:
        (raw / 'labelsTs' / f'{case}.nii.gz').touch()
    for name, folder in (('nnUNet_raw', raw.parent), ('nnUNet_preprocessed', pre.parent),
                         ('nnUNet_results', tmp_path / 'res')):
        monkeypatch.setenv(name, str(folder))
    trained, predicted = [], []
    monkeypatch.setattr(run, 'train_folds', lambda d, name, cfg, model, folds, *a: trained.append((folds[0], name))
                        or {folds[0]: 'train'})
    monkeypatch.setattr(run, 'predict_and_evaluate', lambda d, name, cfg, mode, *a: predicted.append((name, mode, cfg))
                        or {'metrics': fake_metrics(0.0), 'seconds': 1.0})
    results = run.run_benchmark(951, ['BoundaryTrainer_cpu', 'BaselineTrainer_cpu'], tmp_path / 'out', folds=[0, 1],
                                speed=False, modes=['single'], log=lambda m: None)
    assert trained == [(0, 'BoundaryTrainer_cpu'), (0, 'BaselineTrainer_cpu'), (1, 'BoundaryTrainer_cpu'),
                       (1, 'BaselineTrainer_cpu')]
    assert predicted == [('BoundaryTrainer_cpu', 'single', '3d_fullres'),
                         ('BaselineTrainer_cpu', 'single', '3d_fullres_baseline')]
    assert results['test_cases'] == CASES and set(results['accuracy_targets']) == {'single'}
    assert (tmp_path / 'out' / 'RESULTS.md').is_file() and (tmp_path / 'out' / 'results.json').is_file()
