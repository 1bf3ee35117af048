"""Paired comparison of models with a baseline on KiTS23's three nested regions (``benchmarks/kits23_phantom_cpu``).

Input: each model's ``nnunet_boundary_evaluate --kits23`` metrics of the same held-out test cases. For every
region (kidney_and_mass, mass, tumor) and every metric (Dice, Surface Dice at the official tolerance, NSD@2mm,
HD95) the per-case difference model minus baseline, its mean and 95 % percentile-bootstrap interval
(:mod:`~nnunet_boundary.benchmark.statistics`). Writes ``results.json`` (with every run's per-case metrics,
so a run whose work folder is gone takes part in later analyses without training again) and ``RESULTS.md``;
a ``VERDICT.md`` in the output folder (written by hand, after reading the numbers) opens ``RESULTS.md``.

    python -m nnunet_boundary.benchmark.kits23_comparison --baseline NAME=BASE/metrics.json \
        --model NAME=MODEL/metrics.json [--model ...] --out DIR [--header TEXT] [--command TEXT]
"""
import argparse
import json
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

from nnunet_boundary.atomic_files import atomic_output, write_json_atomically
from nnunet_boundary.benchmark.statistics import paired_bootstrap, verdict
from nnunet_boundary.kits19.metrics import KITS23_CHALLENGE

REGIONS = [r.name for r in KITS23_CHALLENGE.regions]
KINDS = {'dice': ('Dice', True), 'surface_dice': ('Surface Dice', True), 'nsd': ('NSD@2mm', True),
         'hd95': ('HD95 (mm)', False)}


def compare(model: dict, baseline: dict) -> Dict[str, dict]:
    """``{metric: {'model', 'baseline', 'difference': [mean, low, high], 'verdict'}}`` over the shared cases."""
    cases = sorted(baseline['per_case'])
    if sorted(model['per_case']) != cases:
        raise SystemExit("error: the two models were evaluated on different test cases")
    out = {}
    for region in REGIONS:
        for kind, (_, larger_is_better) in KINDS.items():
            metric = f'{region}_{kind}'
            differences = [model['per_case'][c][metric] - baseline['per_case'][c][metric] for c in cases]
            mean, low, high = paired_bootstrap(differences)
            out[metric] = {'model': model['mean'][metric], 'baseline': baseline['mean'][metric],
                           'difference': [mean, low, high], 'verdict': verdict(low, high, larger_is_better)}
    return out


def table(name: str, baseline_name: str, comparison: Dict[str, dict], n_cases: int) -> List[str]:
    lines = [f'## {name} − {baseline_name}', '',
             f'{n_cases} held-out test cases; {name} minus {baseline_name}, per case, mean and 95 % bootstrap '
             f'interval (10,000 resamples of the cases).', '',
             f'| region | metric | {baseline_name} | {name} | difference [95 % CI] | verdict |',
             '|---|---|---|---|---|---|']
    for metric, c in comparison.items():
        region, kind = next((r, metric[len(r) + 1:]) for r in REGIONS if metric.startswith(r + '_'))
        digits = 2 if kind == 'hd95' else 3
        mean, low, high = c['difference']
        lines.append(f"| {region} | {KINDS[kind][0]} | {c['baseline']:.{digits}f} | {c['model']:.{digits}f} | "
                     f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] | {c['verdict']} |")
    return lines + ['']


def saved_per_case(out: Path) -> Dict[str, dict]:
    """Every run's per-case metrics in ``out/results.json`` from an earlier analysis (empty if none)."""
    results = Path(out) / 'results.json'
    return json.loads(results.read_text())['per_case'] if results.is_file() else {}


def read_metrics(spec: str, saved: Dict[str, dict]) -> Tuple[str, dict]:
    """``NAME=metrics.json`` -> ``(NAME, metrics)``; where the file is gone (a cleared work folder), NAME's per-case
    metrics saved by an earlier analysis, so that run need not be trained again."""
    name, path = spec.split('=', 1)
    if Path(path).is_file():
        return name, json.loads(Path(path).read_text())
    if name not in saved:
        raise SystemExit(f"error: no {path}, and no per-case metrics of {name} saved by an earlier analysis")
    per_case = saved[name]
    metrics = next(iter(per_case.values()))
    return name, {'per_case': per_case,
                  'mean': {m: sum(case[m] for case in per_case.values()) / len(per_case) for m in metrics}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Paired comparison of models' KiTS23 metrics with a baseline's "
                                                 "(nnunet_boundary_evaluate --kits23 -o metrics.json of each).")
    parser.add_argument('--baseline', required=True, help='NAME=metrics.json of the baseline')
    parser.add_argument('--model', required=True, action='append',
                        help='NAME=metrics.json of a model compared with it (repeatable)')
    parser.add_argument('--out', type=Path, required=True,
                        help='folder for results.json and RESULTS.md; a NAME whose metrics.json is gone is read '
                             'from the per-case metrics an earlier results.json there saved')
    parser.add_argument('--header', default='# KiTS23 phantoms: BoundaryTrainer vs baseline nnU-Net',
                        help='first lines of RESULTS.md (Markdown)')
    parser.add_argument('--command', help='the command that reproduces the numbers, for RESULTS.md')
    args = parser.parse_args(argv)
    saved = saved_per_case(args.out)
    base_name, baseline = read_metrics(args.baseline, saved)
    models = dict(read_metrics(spec, saved) for spec in args.model)
    comparisons = {name: compare(model, baseline) for name, model in models.items()}
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomically({'baseline': base_name, 'models': list(models), 'cases': sorted(baseline['per_case']),
                           'comparisons': comparisons, 'analysis_commit': commit,
                           'per_case': {base_name: baseline['per_case'],
                                        **{name: model['per_case'] for name, model in models.items()}}},
                          args.out / 'results.json')
    verdict_file = args.out / 'VERDICT.md'
    lines = [args.header, ''] + ([verdict_file.read_text().strip(), ''] if verdict_file.is_file() else [])
    for name, comparison in comparisons.items():
        lines += table(name, base_name, comparison, len(baseline['per_case']))
    lines += [f"Analysis by commit {commit}" + (f"; reproduce: `{args.command}`" if args.command else '') + '.']
    with atomic_output(args.out / 'RESULTS.md') as tmp:
        tmp.write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
