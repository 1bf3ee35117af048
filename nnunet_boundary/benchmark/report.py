"""Assemble the benchmark's ``results.json``, ``RESULTS.md`` and ``benchmark.png``."""
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from nnunet_boundary.atomic_files import atomic_output, write_json_atomically
from nnunet_boundary.benchmark.predictions import MODES, mode_label
from nnunet_boundary.benchmark.speed import RATIOS
from nnunet_boundary.kits19.metrics import METRICS

METRIC_LABELS = {'kidney_dice': 'kidney Dice', 'tumor_dice': 'tumor Dice', 'composite_dice': 'composite Dice',
                 'kidney_nsd': 'kidney NSD@2mm', 'tumor_nsd': 'tumor NSD@2mm', 'kidney_hd95': 'kidney HD95 (mm)',
                 'tumor_hd95': 'tumor HD95 (mm)'}
#: boundary / baseline ratio targets of the speed section: (quantity, comparison, bound)
SPEED_TARGETS = {'train_step_time': ('<=', 1.25), 'predict_time_per_case': ('<=', 1.0),
                 'sampler_throughput': ('>=', 0.95)}
COMPOSITE_DICE_TOLERANCE = 0.005


def accuracy_row(trainer: str, configuration: str, mode: str, folds: Sequence[int], evaluation: dict) -> dict:
    """One table row from :func:`~nnunet_boundary.benchmark.predictions.predict_and_evaluate`'s result."""
    return {'trainer': trainer, 'configuration': configuration, 'mode': mode, 'setting': mode_label(mode, folds),
            'mean': evaluation['metrics']['mean'], 'per_case': evaluation['metrics']['per_case'],
            'predict_seconds': evaluation.get('seconds')}


def accuracy_targets(rows: Sequence[dict], boundary: str, baseline: str) -> Dict[str, dict]:
    """Per setting: tumor NSD of the boundary trainer >= the baseline's, composite Dice not lower by
    more than :data:`COMPOSITE_DICE_TOLERANCE`."""
    by_key = {(r['trainer'], r['mode']): r['mean'] for r in rows}
    targets = {}
    for mode in MODES:
        if (boundary, mode) in by_key and (baseline, mode) in by_key:
            b, n = by_key[boundary, mode], by_key[baseline, mode]
            targets[mode] = {
                'tumor_nsd': {'boundary': b['tumor_nsd'], 'baseline': n['tumor_nsd'],
                              'met': bool(b['tumor_nsd'] >= n['tumor_nsd'])},
                'composite_dice': {'boundary': b['composite_dice'], 'baseline': n['composite_dice'],
                                   'difference': b['composite_dice'] - n['composite_dice'],
                                   'met': bool(b['composite_dice'] >= n['composite_dice'] - COMPOSITE_DICE_TOLERANCE)}}
    return targets


def speed_targets(speed: dict) -> Dict[str, dict]:
    """The speed section's ratios against :data:`SPEED_TARGETS` (the sampler's only where it was measured)."""
    measured = dict(speed['ratios'])
    if 'loader' in speed:
        measured['sampler_throughput'] = speed['loader']['ratio']
    out = {}
    for name, (op, bound) in SPEED_TARGETS.items():
        if name not in measured:
            continue
        value = measured[name]
        out[name] = {'ratio': value, 'target': f'{op} {bound}', 'met': bool(value <= bound if op == '<=' else
                                                                            value >= bound)}
    return out


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return '-'
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def accuracy_table(rows: Sequence[dict]) -> List[str]:
    lines = ['| trainer | setting | ' + ' | '.join(METRIC_LABELS[m] for m in METRICS) + ' |',
             '|' + '---|' * (len(METRICS) + 2)]
    for r in rows:
        lines.append(f"| {r['trainer']} | {r['setting']} | "
                     + ' | '.join(_fmt(r['mean'].get(m), 2 if 'hd95' in m else 3) for m in METRICS) + ' |')
    return lines


def _bytes(n: Optional[int]) -> str:
    return '-' if n is None else f'{n / 2 ** 20:.0f} MiB'


SPEED_ROWS = (('train step (s, median)', 'train_step_seconds_median', lambda v: f'{v:.3f}'),
              ('prediction per case (s, median)', 'predict_seconds_median', lambda v: f'{v:.2f}'),
              ('peak RSS', 'peak_rss_bytes', _bytes),
              ('CUDA max allocated', 'cuda_max_allocated_bytes', _bytes),
              ('parameters', 'parameters', lambda v: f'{v:,}'),
              ('forward GFLOPs per patch', 'forward_flops_per_patch', lambda v: f'{v / 1e9:.2f}'))


def speed_table(speed: dict) -> List[str]:
    b, n = speed['models'][speed['boundary']], speed['models'][speed['baseline']]
    targets = speed_targets(speed)
    lines = [f"| quantity | {speed['boundary']} | {speed['baseline']} | ratio | target |", '|---|---|---|---|---|']
    for label, key, fmt in SPEED_ROWS:
        if key not in b:
            continue
        name = RATIOS[key]
        target = targets.get(name)
        verdict = f"{target['target']}: {'met' if target['met'] else 'NOT met'}" if target else ''
        lines.append(f"| {label} | {fmt(b[key])} | {fmt(n[key])} | {speed['ratios'][name]:.2f} | {verdict} |")
    if 'loader' not in speed:
        return lines
    loader = speed['loader']
    t = targets['sampler_throughput']
    lines.append(f"| loader throughput (batches/s) | {loader['batches_per_second']['tumor_weighted']:.1f} "
                 f"(tumor-weighted) | {loader['batches_per_second']['nnunet_default']:.1f} (nnUNetDataLoader) | "
                 f"{loader['ratio']:.2f} | {t['target']}: {'met' if t['met'] else 'NOT met'} |")
    return lines


def results_markdown(results: dict) -> str:
    """RESULTS.md: accuracy table (rows trainer x setting), targets, speed/memory table, set-up."""
    speed = results.get('speed')
    lines = [f"# Boundary-aware network vs baseline nnU-Net on {results['dataset']}", '',
             f"Held-out test cases ({len(results['test_cases'])}, never used in training or validation): "
             f"{', '.join(results['test_cases'])}. Plans `{results['plans']}`, folds {results['folds']}; "
             f"NSD tolerance 2 mm, HD95 in mm, means over test cases.", '', '## Accuracy', '',
             *accuracy_table(results['rows']), '']
    targets = results.get('accuracy_targets', {})
    for mode, t in targets.items():
        lines.append(f"- {mode_label(mode, results['folds'])}: tumor NSD {t['tumor_nsd']['boundary']:.3f} vs "
                     f"{t['tumor_nsd']['baseline']:.3f} (target >=: {'met' if t['tumor_nsd']['met'] else 'NOT met'}); "
                     f"composite Dice difference {t['composite_dice']['difference']:+.3f} (target >= "
                     f"-{COMPOSITE_DICE_TOLERANCE}: {'met' if t['composite_dice']['met'] else 'NOT met'})")
    if speed:
        b = speed['models'][speed['boundary']]
        lines += ['', '## Speed and memory (boundary / baseline)', '',
                  f"Same plans, patch {b['patch_size']}, batch {b['batch_size']}, device {b['device']}; "
                  f"{b['train_steps_timed']} timed train steps and {b['predictions_timed']} timed predictions of "
                  f"{b['predict_case']} (shape {b['predict_case_shape']}) per model, each model in fresh processes "
                  f"interleaved with the other's; loader throughput over {speed['loader']['batches_timed']} batches "
                  f"each.", '', *speed_table(speed)]
    env = results.get('environment', {})
    if env:
        lines += ['', '## Set-up', ''] + [f"- {k}: {v}" for k, v in env.items()]
    return '\n'.join(lines) + '\n'


def plot_per_case(rows: Sequence[dict], path: Path,
                  metrics: Sequence[str] = ('composite_dice', 'kidney_dice', 'tumor_dice', 'kidney_nsd', 'tumor_nsd',
                                            'tumor_hd95')) -> None:
    """One panel per metric: its value on every test case for every row (trainer x setting)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    cases = sorted(rows[0]['per_case'])
    trainers = sorted({r['trainer'] for r in rows})
    fig, axes = plt.subplots(2, math.ceil(len(metrics) / 2), figsize=(5 * math.ceil(len(metrics) / 2), 7.5),
                             squeeze=False)
    markers = {'single': 'o', 'ensemble_tta': 's'}
    for ax, metric in zip(axes.flat, metrics):
        for i, row in enumerate(rows):
            values = [row['per_case'].get(c, {}).get(metric, float('nan')) for c in cases]
            ax.plot(range(len(cases)), values, marker=markers.get(row['mode'], 'x'),
                    linestyle='-' if row['mode'] == 'ensemble_tta' else ':', color=f'C{trainers.index(row["trainer"])}',
                    label=f"{row['trainer']}, {row['mode']}")
        ax.set_title(METRIC_LABELS[metric])
        ax.set_xticks(range(len(cases)), [c.replace('case_', '') for c in cases], rotation=90, fontsize=7)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle('Per held-out case: boundary-aware vs baseline (solid: fold ensemble + mirroring TTA, dotted: fold 0 '
                 'without TTA)')
    fig.tight_layout()
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def write_results(results: dict, out: Path) -> None:
    """``out/results.json``, ``out/RESULTS.md`` and ``out/benchmark.png`` (each written atomically)."""
    out = Path(out)
    write_json_atomically(results, out / 'results.json')
    with atomic_output(out / 'RESULTS.md') as tmp:
        tmp.write_text(results_markdown(results))
    if results['rows']:
        plot_per_case(results['rows'], out / 'benchmark.png')
