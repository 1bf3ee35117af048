"""Paired comparison of two models on KiTS23's three nested regions (``benchmarks/kits23_phantom_cpu``).

Input: each model's ``nnunet_boundary_evaluate --kits23`` metrics of the same held-out test cases. For every
region (kidney_and_mass, mass, tumor) and every metric (Dice, Surface Dice at the official tolerance, NSD@2mm,
HD95) the per-case difference model minus baseline, its mean and 95 % percentile-bootstrap interval
(:mod:`~nnunet_boundary.benchmark.statistics`). Writes ``results.json`` and ``RESULTS.md``; a ``VERDICT.md``
in the output folder (written by hand, after reading the numbers) opens ``RESULTS.md``.

    python -m nnunet_boundary.benchmark.kits23_comparison --baseline NAME=BASE/metrics.json \
        --model NAME=MODEL/metrics.json --out DIR [--header TEXT] [--command TEXT]
"""
import argparse
import json
import subprocess
from pathlib import Path
from typing import Dict

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


def markdown(name: str, baseline_name: str, comparison: Dict[str, dict], n_cases: int, header: str,
             verdict_text: str = '') -> str:
    lines = [header, ''] + ([verdict_text, ''] if verdict_text else [])
    lines += [f'{n_cases} held-out test cases; {name} minus {baseline_name}, per case, mean and 95 % '
              f'bootstrap interval (10,000 resamples of the cases).', '',
              f'| region | metric | {baseline_name} | {name} | difference [95 % CI] | verdict |',
              '|---|---|---|---|---|---|']
    for metric, c in comparison.items():
        region, kind = next((r, metric[len(r) + 1:]) for r in REGIONS if metric.startswith(r + '_'))
        digits = 2 if kind == 'hd95' else 3
        mean, low, high = c['difference']
        lines.append(f"| {region} | {KINDS[kind][0]} | {c['baseline']:.{digits}f} | {c['model']:.{digits}f} | "
                     f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] | {c['verdict']} |")
    return '\n'.join(lines) + '\n'


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Paired comparison of two models' KiTS23 metrics "
                                                 "(nnunet_boundary_evaluate --kits23 -o metrics.json of each).")
    parser.add_argument('--baseline', required=True, help='NAME=metrics.json of the baseline')
    parser.add_argument('--model', required=True, help='NAME=metrics.json of the model compared with it')
    parser.add_argument('--out', type=Path, required=True, help='folder for results.json and RESULTS.md')
    parser.add_argument('--header', default='# KiTS23 phantoms: BoundaryTrainer vs baseline nnU-Net',
                        help='first lines of RESULTS.md (Markdown)')
    parser.add_argument('--command', help='the command that reproduces the numbers, for RESULTS.md')
    args = parser.parse_args(argv)
    (base_name, base_file), (name, model_file) = (a.split('=', 1) for a in (args.baseline, args.model))
    baseline, model = (json.loads(Path(f).read_text()) for f in (base_file, model_file))
    comparison = compare(model, baseline)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomically({'baseline': base_name, 'model': name, 'cases': sorted(baseline['per_case']),
                           'comparison': comparison, 'analysis_commit': commit,
                           'per_case': {base_name: baseline['per_case'], name: model['per_case']}},
                          args.out / 'results.json')
    verdict_file = args.out / 'VERDICT.md'
    text = markdown(name, base_name, comparison, len(baseline['per_case']), args.header,
                    verdict_file.read_text().strip() if verdict_file.is_file() else '')
    text += f"\nAnalysis by commit {commit}" + (f"; reproduce: `{args.command}`" if args.command else '') + '.\n'
    with atomic_output(args.out / 'RESULTS.md') as tmp:
        tmp.write_text(text)
    print(text)


if __name__ == '__main__':
    main()
