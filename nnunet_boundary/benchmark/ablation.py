"""Ablation analysis of a benchmark run (``benchmarks/kits19_phantom_4mm``): every row against the
baseline on the held-out test cases, with and without nnU-Net's postprocessing, as paired per-case
differences with 95 % bootstrap intervals; the final BoundaryTrainer chosen on fold-0 validation, never
on the test cases. Reads what :func:`~nnunet_boundary.benchmark.run.run_benchmark` wrote (``results.json``,
the test predictions) and the models in ``nnUNet_results``; writes ``results.json`` and ``RESULTS.md``, and
keeps every run's per-case metrics in ``runs.json`` (:mod:`~nnunet_boundary.benchmark.saved_runs`), so runs
whose work folder is gone still take part.

Postprocessing is nnU-Net's standard pipeline: ``nnUNetv2_determine_postprocessing`` on the model's own
fold-0 validation predictions, ``nnUNetv2_apply_postprocessing`` with the result on its test predictions.
Rows named ``X_run2`` are a second, independent training run of row ``X``: metrics are averaged per case
over a row's runs before pairing. Besides the challenge's metrics every case gets ``far_tumor_ml``, the
predicted tumor farther than 20 mm from the reference kidney (tumor called in far tissue, the signature the
issue's diagnosis run tied to the tumor-weighted crop sampler). Where both rows of a pair in
:data:`COMPONENTS` ran, the report gives that component's own effect (row with it minus row without it,
paired per case, with its interval): the sampler, the boundary loss, the network, the widths, each fix; where a
row ran twice, its second run against its first shows how much one training seed alone moves the numbers.

    python -m nnunet_boundary.benchmark.ablation BENCHMARK_DIR --baseline BaselineTrainer_4mm --out DIR
"""
import argparse
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import SimpleITK as sitk

from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.benchmark.saved_runs import held_out_fingerprint, load_runs, save_runs
from nnunet_boundary.benchmark.statistics import compare
from nnunet_boundary.benchmark.trainers import find_trainer_class, model_folder
from nnunet_boundary.environment import with_trainer_dir
from nnunet_boundary.kits19.io import find_segmentations, read_label_map
from nnunet_boundary.nnunet_commands import nnunet_environment, run_nnunet
from nnunet_boundary.training.boundary_trainer import BoundaryTrainer
from nnunet_boundary.training.cpu_mixed_precision import CpuMixedPrecision

HEADLINE_METRICS = ('composite_dice', 'tumor_dice', 'tumor_nsd', 'tumor_hd95')
TABLE_METRICS = ('kidney_dice', 'tumor_dice', 'composite_dice', 'tumor_nsd', 'tumor_hd95', 'kidney_hd95',
                 'far_tumor_ml')
FAR_TUMOR_MM = 20.0
RUN_SUFFIX = re.compile(r'_run\d+(?=$|_)')
STEPS_SUFFIX = re.compile(r'_\d+steps$')
#: What each component does: (component, row with it, row without it); row names without the set-up's
#: ``_<N>steps`` suffix. Effect = with minus without, paired per held-out case.
COMPONENTS = (
    ('tumor-weighted sampler (boundary network)', 'BoundaryTrainer_4mm', 'BoundaryTrainer_4mm_nnUNetCrops'),
    ('tumor-weighted sampler (plain network)', 'BaselineTumorSampler_4mm', 'BaselineTrainer_4mm'),
    ('boundary loss (nnU-Net crops)', 'BoundaryTrainer_4mm_nnUNetCrops', 'BoundaryTrainer_4mm_architectureOnly'),
    ('boundary network instead of nnU-Net\'s (no boundary loss, nnU-Net crops)',
     'BoundaryTrainer_4mm_architectureOnly', 'BaselineTrainer_4mm'),
    ('boundary stream and loss on nnU-Net\'s network (nnU-Net crops)', 'BoundaryTrainer_4mm_nnUNetNetwork',
     'BaselineTrainer_4mm'),
    ('boundary loss without the stream on nnU-Net\'s network (edge heads)',
     'BoundaryTrainer_4mm_nnUNetNetwork_noStream', 'BaselineTrainer_4mm'),
    ('boundary stream on nnU-Net\'s network (boundary loss in both)', 'BoundaryTrainer_4mm_nnUNetNetwork',
     'BoundaryTrainer_4mm_nnUNetNetwork_noStream'),
    ('paper widths 16-128 instead of 32-256', 'BoundaryTrainer_4mm', 'BoundaryTrainer_4mm_equalWidths'),
    ('paper widths 16-128 instead of 32-256 (nnU-Net crops)', 'BoundaryTrainer_4mm_nnUNetCrops',
     'BoundaryTrainer_4mm_equalWidths_nnUNetCrops'),
    ('supervision fixes 1 + 2', 'BoundaryTrainer_4mm_fixed', 'BoundaryTrainer_4mm'),
    ('supervision fixes 1 + 2 (nnU-Net crops)', 'BoundaryTrainer_4mm_nnUNetCrops_fixed',
     'BoundaryTrainer_4mm_nnUNetCrops'),
    ('supervision fixes 1 + 2 (edge heads on nnU-Net\'s network)', 'BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed',
     'BoundaryTrainer_4mm_nnUNetNetwork_noStream'),
    ('fix 1: edge-free crops teach "no edge"', 'BoundaryTrainer_4mm_edgeFreeCrops', 'BoundaryTrainer_4mm'),
    ('fix 2: coarse edges pooled from full resolution', 'BoundaryTrainer_4mm_pooledEdges', 'BoundaryTrainer_4mm'),
    ('fix 3: boundary supervised at full resolution only', 'BoundaryTrainer_4mm_fullResBoundary',
     'BoundaryTrainer_4mm'),
    ('bfloat16 mixed precision on the CPU (the baseline)', 'BaselineTrainer_4mm_bf16', 'BaselineTrainer_4mm'),
    ('bfloat16 mixed precision on the CPU (edge heads on nnU-Net\'s network)',
     'BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16', 'BoundaryTrainer_4mm_nnUNetNetwork_noStream'),
    ('boundary loss without the stream on nnU-Net\'s network, both in bfloat16',
     'BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16', 'BaselineTrainer_4mm_bf16'),
)
COMPONENT_METRICS = HEADLINE_METRICS + ('far_tumor_ml',)
RUN_COMMAND = 'bash benchmarks/kits19_phantom_4mm/run.sh'


def row_name(trainer: str) -> str:
    """``X_run2`` -> ``X``, ``X_run2_3000steps`` -> ``X_3000steps``: the row a training run belongs to."""
    return RUN_SUFFIX.sub('', trainer)


def far_tumor_ml(predictions: Path, labels: Path) -> Dict[str, float]:
    """Per case in ``predictions``: the predicted tumor (label 2), in mL, farther than ``FAR_TUMOR_MM`` from the
    reference kidney (labels 1 and 2) of the same case in ``labels``."""
    from nnunet_boundary.kits19.metrics import far_volume_ml
    references = find_segmentations(labels)
    volumes = {}
    for case, path in find_segmentations(predictions).items():
        pred, gt = (read_label_map(p, case) for p in (path, references[case]))
        volumes[case] = far_volume_ml(sitk.GetArrayFromImage(pred) == 2, sitk.GetArrayFromImage(gt) > 0,
                                      gt.GetSpacing()[::-1], FAR_TUMOR_MM)
    return volumes


def with_far_tumor(per_case: Optional[Dict[str, dict]], predictions: Path, labels: Path) -> Optional[Dict[str, dict]]:
    """``per_case`` with every case's ``far_tumor_ml`` added (None stays None)."""
    if per_case is None:
        return None
    far = far_tumor_ml(predictions, labels)
    return {case: {**metrics, 'far_tumor_ml': far[case]} for case, metrics in per_case.items()}


def postprocessed_folder(predictions: Path) -> Path:
    """Where a run's test predictions go after nnU-Net's postprocessing (next to ``predictions``)."""
    return predictions.parent / f'{predictions.name}_postprocessed'


def postprocessed_metrics(trainer: str, model: Path, predictions: Path, results: dict, env: Dict[str, str],
                          log=print) -> Optional[dict]:
    """The test metrics after nnU-Net's postprocessing, determined on the model's fold-0 validation
    (cached in ``predictions/../<name>_postprocessed/metrics.json``); None while fold 0 is unfinished."""
    from nnunet_boundary.kits19.metrics import evaluate_folders
    validation = model / 'fold_0' / 'validation'
    out = postprocessed_folder(predictions)
    if (out / 'metrics.json').is_file():
        return json.loads((out / 'metrics.json').read_text())
    if not (validation / 'summary.json').is_file():
        return None
    logs = predictions.parent.parent.parent / 'logs'
    if not (validation / 'postprocessing.pkl').is_file():
        log(f"{trainer}: determining postprocessing on its fold-0 validation")
        reference = Path(env['nnUNet_preprocessed']) / results['dataset'] / 'gt_segmentations'
        run_nnunet(['nnUNetv2_determine_postprocessing', '-i', validation, '-ref', reference, '-plans_json',
                    model / 'plans.json', '-dataset_json', model / 'dataset.json', '-np', 2,
                    '--remove_postprocessed'], env, logs / f'postprocessing_{trainer}.log')
    run_nnunet(['nnUNetv2_apply_postprocessing', '-i', predictions, '-o', out, '-pp_pkl_file',
                validation / 'postprocessing.pkl', '-plans_json', model / 'plans.json', '-dataset_json',
                model / 'dataset.json', '-np', 2], env, logs / f'postprocessing_{trainer}.log')
    labels = Path(env['nnUNet_raw']) / results['dataset'] / 'labelsTs'
    metrics = evaluate_folders(out, labels)
    metrics['postprocessing'] = json.loads((validation / 'postprocessing.json').read_text())
    write_json_atomically(metrics, out / 'metrics.json')
    return metrics


def training_commit(fold: Path) -> Optional[str]:
    """The commit of this package that was checked out when the run's training started (from the name of
    nnU-Net's first training log in ``fold``, ``training_log_YYYY_MM_DD_HH_MM_SS.txt``, and ``git log``)."""
    logs = sorted(fold.glob('training_log_*.txt'))
    if not logs:
        return None
    y, mo, d, h, mi, s = logs[0].stem.split('_')[2:8]
    git = subprocess.run(['git', 'log', '-1', '--format=%h', f'--before={y}-{mo}-{d} {h}:{mi}:{s} +0000'],
                         cwd=Path(__file__).parent, capture_output=True, text=True)
    return git.stdout.strip() or None


def validation_dice(fold: Path) -> Optional[float]:
    """nnU-Net's fold-0 validation: mean Dice over the regions (what variants are chosen on)."""
    summary = fold / 'validation' / 'summary.json'
    return json.loads(summary.read_text())['foreground_mean']['Dice'] if summary.is_file() else None


def training_steps(fold: Path) -> Optional[int]:
    """The run's step budget, epochs x iterations per epoch, from nnU-Net's ``debug.json`` in ``fold``."""
    debug = fold / 'debug.json'
    if not debug.is_file():
        return None
    attributes = json.loads(debug.read_text())
    return int(attributes['num_epochs']) * int(attributes['num_iterations_per_epoch'])


def boundary_supervised(trainer: str) -> bool:
    """Whether ``trainer`` trains with the boundary loss (a :class:`BoundaryTrainer` with a boundary loss weight):
    only such rows can be the final BoundaryTrainer; the architecture-only row (weight 0) cannot."""
    trainer_class = find_trainer_class(trainer)
    return issubclass(trainer_class, BoundaryTrainer) and trainer_class.boundary_loss_weight > 0


def cpu_mixed_precision(trainer: str) -> bool:
    """Whether ``trainer`` trains in bfloat16 on the CPU: such rows measure what the precision costs, and the final
    BoundaryTrainer is chosen among the float32 rows, the benchmark's set-up."""
    return issubclass(find_trainer_class(trainer), CpuMixedPrecision)


def collect_runs(benchmark: Path, results: dict, env: Dict[str, str], log=print) -> Dict[str, dict]:
    """Per training run (trainer name): its per-case test metrics without and with postprocessing, its
    validation Dice, the commit that trained it and its step budget."""
    runs: Dict[str, dict] = {}
    labels = Path(env['nnUNet_raw']) / results['dataset'] / 'labelsTs'
    for r in results['rows']:
        if r['mode'] != 'single':
            continue
        predictions = benchmark / 'predictions' / r['trainer'] / 'single_fold_0'
        model = model_folder(Path(env['nnUNet_results']), results['dataset'], r['trainer'], r['configuration'])
        post = postprocessed_metrics(r['trainer'], model, predictions, results, env, log)
        runs[r['trainer']] = {'configuration': r['configuration'],
                              'boundary_supervised': boundary_supervised(r['trainer']),
                              'cpu_mixed_precision': cpu_mixed_precision(r['trainer']),
                              'per_case': with_far_tumor(r['per_case'], predictions, labels),
                              'per_case_postprocessed': with_far_tumor(post and post['per_case'],
                                                                       postprocessed_folder(predictions), labels),
                              'validation_dice': validation_dice(model / 'fold_0'),
                              'commit': training_commit(model / 'fold_0'),
                              'steps': training_steps(model / 'fold_0')}
    return runs


def group_rows(runs: Dict[str, dict]) -> Dict[str, dict]:
    """The runs grouped into rows (``X`` and ``X_run2`` are one row), each row's runs in name order (its
    first run first)."""
    rows: Dict[str, dict] = {}
    for trainer, run in runs.items():
        row = rows.setdefault(row_name(trainer), {'runs': [], 'configuration': run['configuration'],
                                                  'boundary_supervised': run['boundary_supervised'],
                                                  'cpu_mixed_precision': run.get('cpu_mixed_precision', False)})
        row['runs'].append(dict(run, trainer=trainer))
    for row in rows.values():
        row['runs'].sort(key=lambda r: r['trainer'])
    return rows


def mean_metrics(runs: List[Dict[str, dict]]) -> Dict[str, float]:
    """Means over the cases of all runs (``runs``: per_case dicts)."""
    cases = [case for run in runs for case in run.values()]
    return {m: sum(c[m] for c in cases) / len(cases) for m in TABLE_METRICS}


def summarize_row(row: dict, baseline: dict) -> dict:
    """Means over cases and runs, and paired differences against the baseline, per setting."""
    summary = {'runs': [r['trainer'] for r in row['runs']], 'commits': [r.get('commit') for r in row['runs']],
               'steps': [r.get('steps') for r in row['runs']],
               'configuration': row['configuration'],
               'boundary_supervised': row['boundary_supervised'],
               'cpu_mixed_precision': row['cpu_mixed_precision'],
               'validation_dice': [r['validation_dice'] for r in row['runs']]}
    for key, label in (('per_case', 'raw'), ('per_case_postprocessed', 'postprocessed')):
        runs = [r[key] for r in row['runs'] if r[key] is not None]
        base = [r[key] for r in baseline['runs'] if r[key] is not None]
        if len(runs) < len(row['runs']) or not base:
            continue
        summary[label] = {'mean': mean_metrics(runs),
                          'vs_baseline': {m: compare(runs, base, m) for m in HEADLINE_METRICS}}
    return summary


def component_effects(rows: Dict[str, dict], baseline: str) -> List[dict]:
    """Each of :data:`COMPONENTS` whose two rows ran: the paired per-case effect of adding the component
    (row with it minus row without it, held-out cases, no postprocessing) on :data:`COMPONENT_METRICS`."""
    suffix = STEPS_SUFFIX.search(baseline)
    suffix = suffix.group(0) if suffix else ''
    effects = []
    for component, with_row, without_row in COMPONENTS:
        pair = [rows.get(name + suffix) for name in (with_row, without_row)]
        if None in pair:
            continue
        runs = [[r['per_case'] for r in row['runs']] for row in pair]
        effects.append({'component': component, 'with': with_row + suffix, 'without': without_row + suffix,
                        'effect': paired_effect(runs[0], runs[1])})
    return effects


def paired_effect(with_runs: List[dict], without_runs: List[dict]) -> Dict[str, dict]:
    """Per metric of :data:`COMPONENT_METRICS`: ``with_runs`` minus ``without_runs``, paired per case."""
    return {m: compare(with_runs, without_runs, m) for m in COMPONENT_METRICS}


def seed_to_seed(rows: Dict[str, dict]) -> List[dict]:
    """Each row trained more than once: every later run minus its first, paired per held-out case, in the shape
    of :func:`component_effects` -- how far training noise alone moves a row, which the case bootstrap of a
    one-seed comparison does not see (it treats each trained model as fixed)."""
    effects = []
    for name, row in rows.items():
        first, *later = row['runs']
        for run in later:
            if first['per_case'] and run['per_case']:
                effects.append({'component': f'another training run of {name}', 'with': run['trainer'],
                                'without': first['trainer'],
                                'effect': paired_effect([run['per_case']], [first['per_case']])})
    return effects


def choose_final(summaries: Dict[str, dict]) -> Optional[str]:
    """The boundary-supervised float32 row with the best fold-0 validation Dice (never chosen on the test cases)."""
    candidates = {name: sum(s['validation_dice']) / len(s['validation_dice']) for name, s in summaries.items()
                  if s['boundary_supervised'] and not s['cpu_mixed_precision']
                  and None not in s['validation_dice']}
    return max(candidates, key=candidates.get) if candidates else None


def headline(summaries: Dict[str, dict], baseline: str, final: str, setting: str) -> dict:
    b, n = summaries[final][setting], summaries[baseline][setting]
    return {'baseline_trainer': baseline, 'boundary_trainer': final,
            'setting': f'single model (fold 0, no TTA), {setting}, held-out test cases',
            'baseline': {m: n['mean'][m] for m in HEADLINE_METRICS},
            'boundary': {m: b['mean'][m] for m in HEADLINE_METRICS},
            'paired_difference_ci95': {m: b['vs_baseline'][m]['difference'] for m in HEADLINE_METRICS}}


def markdown_table(summaries: Dict[str, dict], setting: str) -> List[str]:
    lines = [f"| row | runs | val. Dice | {' | '.join(TABLE_METRICS)} | " + ' | '.join(
        f'Δ {m} [95 % CI]' for m in HEADLINE_METRICS) + ' |', '|' + '---|' * (3 + len(TABLE_METRICS) +
                                                                            len(HEADLINE_METRICS))]
    for name, s in summaries.items():
        if setting not in s:
            continue
        val = ', '.join('—' if v is None else f'{v:.3f}' for v in s['validation_dice'])
        means = ' | '.join(f"{s[setting]['mean'][m]:.1f}" if m.endswith(('hd95', 'ml')) else
                           f"{s[setting]['mean'][m]:.3f}" for m in TABLE_METRICS)
        diffs = ' | '.join(_difference_cell(s[setting]['vs_baseline'][m]) for m in HEADLINE_METRICS)
        lines.append(f"| {name} | {len(s['runs'])} | {val} | {means} | {diffs} |")
    return lines


def components_table(effects: List[dict]) -> List[str]:
    lines = ['| component | rows (with − without) | ' + ' | '.join(f'Δ {m} [95 % CI]' for m in COMPONENT_METRICS)
             + ' |', '|' + '---|' * (2 + len(COMPONENT_METRICS))]
    for e in effects:
        cells = ' | '.join(_difference_cell(e['effect'][m]) for m in COMPONENT_METRICS)
        lines.append(f"| {e['component']} | {e['with']} − {e['without']} | {cells} |")
    return lines


def _difference_cell(c: dict) -> str:
    mean, low, high = c['difference']
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] {c['verdict']} ({c['cases_better']}/{c['cases']} better)"


def budget_sentence(analysis: dict) -> str:
    """'the same 1,500-step budget', or every row's budget where they differ (a row trained elsewhere)."""
    budgets = {name: s['steps'] for name, s in analysis['rows'].items()}
    distinct = {b for steps in budgets.values() for b in steps}
    if len(distinct) == 1 and None not in distinct:
        return f'the same {distinct.pop():,}-step budget'
    return 'step budgets ' + ', '.join(f"{name} {'/'.join(f'{b:,}' if b else '?' for b in steps)}"
                                      for name, steps in budgets.items())


def write_report(analysis: dict, out: Path) -> None:
    lines = [f"# The boundary claim on KiTS19 phantoms at 4 mm ({analysis['dataset']})", '']
    verdict = out / 'VERDICT.md'
    if verdict.is_file():
        lines += [verdict.read_text().strip(), '']
    lines += [f"Held-out test cases ({len(analysis['test_cases'])}): {', '.join(analysis['test_cases'])}. "
              f"Every row: fold 0 only, {budget_sentence(analysis)}, single model without TTA. Δ = row minus "
              f"baseline ({analysis['baseline']}) per case, mean with 95 % percentile-bootstrap interval "
              f"(10,000 resamples of the cases); an interval containing zero is 'no measurable difference'. "
              f"HD95 in mm (lower is better). far_tumor_ml: predicted tumor farther than {FAR_TUMOR_MM:.0f} mm "
              f"from the reference kidney, mL per case (false positives in far tissue). val. Dice: nnU-Net's "
              f"fold-0 validation (13 cases), the only number variants are chosen on.", '']
    for setting, title in (('raw', 'Without postprocessing'), ('postprocessed', "With nnU-Net's postprocessing")):
        lines += [f'## {title}', ''] + markdown_table(analysis['rows'], setting) + ['']
    if analysis.get('components'):
        lines += ['## What each component does (without postprocessing)', '',
                  'Paired per held-out case, the row with the component minus the row without it.', '']
        lines += components_table(analysis['components']) + ['']
    if analysis.get('seed_to_seed'):
        lines += ['## Seed to seed (without postprocessing)', '',
                  'The same row trained again (another run minus the first, paired per held-out case): what training '
                  'noise alone moves. The intervals above resample the cases of fixed trained models, so a one-seed '
                  'difference no larger than these is not evidence of an effect.', '']
        lines += components_table(analysis['seed_to_seed']) + ['']
    if analysis.get('headline'):
        lines += ['## Headline (results.json "headline")', '', '```', json.dumps(analysis['headline'], indent=1),
                  '```', '']
    lines += ['## Provenance', '', f"- analysis by commit {analysis['commit']}; each run trained by the commit "
              f"checked out when it started: " + '; '.join(
                  f"{run} {commit or '?'}" for s in analysis['rows'].values() for run, commit in
                  zip(s['runs'], s.get('commits', [None] * len(s['runs'])))),
              f"- reproduce: `{analysis['command']}` (restartable; see its header)", '']
    (out / 'RESULTS.md').write_text('\n'.join(lines))


def write_forest_plot(analysis: dict, out: Path) -> None:
    """``differences.png``: per headline metric, each row's paired difference to the baseline with its 95 %
    interval, without (circles) and with (squares) postprocessing."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [n for n in analysis['rows'] if n != analysis['baseline']]
    fig, axes = plt.subplots(1, len(HEADLINE_METRICS), figsize=(4 * len(HEADLINE_METRICS), 0.5 * len(rows) + 1.5),
                             sharey=True)
    for ax, metric in zip(axes, HEADLINE_METRICS):
        for offset, (setting, marker) in zip((-0.15, 0.15), (('raw', 'o'), ('postprocessed', 's'))):
            for y, name in enumerate(rows):
                if setting in analysis['rows'][name]:
                    mean, low, high = analysis['rows'][name][setting]['vs_baseline'][metric]['difference']
                    ax.errorbar(mean, y + offset, xerr=[[mean - low], [high - mean]], fmt=marker, color='k',
                                capsize=3, label=setting if y == 0 else None)
        ax.axvline(0, color='grey', lw=0.8)
        ax.set_title(f'Δ {metric}' + (' (mm, lower is better)' if 'hd95' in metric else ''), fontsize=9)
    axes[0].set_yticks(range(len(rows)), rows, fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / 'differences.png', dpi=110)
    plt.close(fig)


def analyse(benchmark: Path, baseline: str, out: Path, command: str = RUN_COMMAND, log=print) -> dict:
    from nnunet_boundary.benchmark.run import environment_summary
    results = json.loads((benchmark / 'results.json').read_text())
    env = nnunet_environment(Path(os.environ['nnUNet_raw']), Path(os.environ['nnUNet_preprocessed']),
                             Path(os.environ['nnUNet_results']))
    fingerprint = held_out_fingerprint(Path(env['nnUNet_raw']) / results['dataset'])
    runs = {**load_runs(out / 'runs.json', results['dataset'], fingerprint),
            **collect_runs(benchmark, results, env, log)}
    out.mkdir(parents=True, exist_ok=True)
    save_runs(out / 'runs.json', results['dataset'], fingerprint, runs)
    rows = group_rows(runs)
    if baseline not in rows:
        raise SystemExit(f"error: no run of the baseline {baseline} in {benchmark / 'results.json'} or "
                         f"{out / 'runs.json'} (the other runs are saved in the latter)")
    summaries = {name: summarize_row(row, rows[baseline]) for name, row in rows.items()}
    final = choose_final(summaries)
    analysis = {'dataset': results['dataset'], 'test_cases': results['test_cases'], 'baseline': baseline,
                'final_boundary_trainer': final, 'commit': environment_summary('cpu', '')['nnunet_boundary commit'],
                'command': command, 'rows': summaries, 'components': component_effects(rows, baseline),
                'seed_to_seed': seed_to_seed(rows)}
    if final:
        analysis['headline'] = headline(summaries, baseline, final, 'raw')
        if 'postprocessed' in summaries[final] and 'postprocessed' in summaries[baseline]:
            analysis['headline_postprocessed'] = headline(summaries, baseline, final, 'postprocessed')
    write_json_atomically(analysis, out / 'results.json')
    write_report(analysis, out)
    if len(summaries) > 1:
        write_forest_plot(analysis, out)
    return analysis


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('benchmark', type=Path, help='the benchmark folder (nnunet_boundary_benchmark --out)')
    parser.add_argument('--baseline', required=True, help='the baseline row (e.g. BaselineTrainer_4mm)')
    parser.add_argument('--out', type=Path, required=True, help='where results.json and RESULTS.md go')
    parser.add_argument('--command', default=RUN_COMMAND,
                        help=f"the command that reproduces the benchmark, for RESULTS.md (default: '{RUN_COMMAND}')")
    args = parser.parse_args(argv)
    os.environ['nnUNet_extTrainer'] = with_trainer_dir(os.environ.get('nnUNet_extTrainer', ''))
    analyse(args.benchmark, args.baseline, args.out, args.command)


if __name__ == '__main__':
    main()
