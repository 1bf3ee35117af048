"""The index of a benchmark tried on several set-ups (``benchmarks/kits19_phantom_4mm``): each set-up
(patch and step budget) has its own folder of results (:mod:`~nnunet_boundary.benchmark.ablation`), and the
benchmark's own ``results.json`` and ``RESULTS.md`` speak for the one set-up the verdict rests on.

Issue 11 asks for the verdict on a set-up "where tumors are learned" — nnU-Net's baseline at held-out tumor
Dice ≥ 0.25 — so the main set-up must meet that precondition; the others are listed with their baseline's
tumor Dice, to show why they are not the main one.

    python -m nnunet_boundary.benchmark.setup_index BENCHMARK_DIR --main 48_patch_3000_steps
"""
import argparse
import json
from pathlib import Path
from typing import Dict

from nnunet_boundary.atomic_files import write_json_atomically

#: Issue 11's precondition: the baseline's held-out tumor Dice on a set-up "where tumors are learned".
LEARNS_TUMORS_DICE = 0.25
#: The component table's metrics and their titles.
COMPONENT_COLUMNS = {'composite_dice': 'composite Dice', 'tumor_nsd': 'tumor NSD@2mm', 'tumor_hd95': 'tumor HD95 (mm)',
                     'far_tumor_ml': 'far-tissue tumor (mL)'}


def summarize_setup(analysis: dict) -> dict:
    """One set-up's analysis in a line: its baseline's held-out tumor Dice, its final row and the headline's
    paired differences (None where no boundary row ran)."""
    rows = analysis['rows']
    baseline_tumor_dice = rows[analysis['baseline']]['raw']['mean']['tumor_dice']
    return {'dataset': analysis['dataset'], 'baseline': analysis['baseline'],
            'baseline_tumor_dice': baseline_tumor_dice,
            'learns_tumors': baseline_tumor_dice >= LEARNS_TUMORS_DICE,
            'steps': sorted({s for row in rows.values() for s in row['steps'] if s}),
            'rows': len(rows), 'runs': sum(len(row['runs']) for row in rows.values()),
            'final_boundary_trainer': analysis.get('final_boundary_trainer'),
            'paired_difference_ci95': analysis.get('headline', {}).get('paired_difference_ci95')}


def load_setups(root: Path) -> Dict[str, dict]:
    """Every set-up folder under ``root`` holding a ``results.json``: its name and analysis."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob('*/results.json'))}


def build_index(analyses: Dict[str, dict], main: str) -> dict:
    """The index of the set-ups ``analyses`` with the main set-up's headline; a main set-up that is missing,
    has no final row or does not learn tumors is an error."""
    if main not in analyses:
        raise SystemExit(f"error: no {main}/results.json; set-ups found: {', '.join(analyses) or 'none'}")
    setups = {name: summarize_setup(a) for name, a in analyses.items()}
    if not setups[main]['learns_tumors'] or 'headline' not in analyses[main]:
        raise SystemExit(f"error: set-up {main} cannot carry the headline: its baseline reaches held-out tumor Dice "
                         f"{setups[main]['baseline_tumor_dice']:.3f} (needs ≥ {LEARNS_TUMORS_DICE}) and "
                         f"{'has' if 'headline' in analyses[main] else 'has no'} final boundary row")
    index = {'main_setup': main, 'headline': analyses[main]['headline']}
    if 'headline_postprocessed' in analyses[main]:
        index['headline_postprocessed'] = analyses[main]['headline_postprocessed']
    final = analyses[main]['rows'][analyses[main]['final_boundary_trainer']]['raw']['vs_baseline']
    if all('difference_seeds_and_cases' in final[m] for m in index['headline']['paired_difference_ci95']):
        index['headline_seeds_and_cases_ci95'] = {m: final[m]['difference_seeds_and_cases']
                                                  for m in index['headline']['paired_difference_ci95']}
    return {**index, 'setups': setups}


def setups_table(setups: Dict[str, dict], main: str) -> list:
    lines = ['| set-up (folder) | steps | baseline held-out tumor Dice | tumors learned (≥ 0.25) | rows (runs) | '
             'final boundary row | its Δ composite Dice [95 % CI] | Δ tumor NSD@2mm [95 % CI] |',
             '|---|---|---|---|---|---|---|---|']
    for name, s in setups.items():
        differences = s['paired_difference_ci95'] or {}
        cells = [_interval(differences.get(m), m) for m in ('composite_dice', 'tumor_nsd')]
        lines.append(f"| [`{name}/`]({name}/RESULTS.md){' (main)' if name == main else ''} | "
                     f"{'/'.join(f'{n:,}' for n in s['steps'])} | {s['baseline_tumor_dice']:.3f} | "
                     f"{'yes' if s['learns_tumors'] else 'no'} | {s['rows']} ({s['runs']}) | "
                     f"{s['final_boundary_trainer'] or '—'} | {cells[0]} | {cells[1]} |")
    return lines


def components_table(analysis: dict) -> list:
    """Each component's effect in one set-up (row with it minus row without it, paired per held-out case), with
    the number of training seeds of either row."""
    seeds = {name: len(row['runs']) for name, row in analysis['rows'].items()}
    lines = ['| component | row with it (seeds) − row without it (seeds) | ' +
             ' | '.join(f'Δ {title} [95 % CI]' for title in COMPONENT_COLUMNS.values()) + ' |',
             '|' + '---|' * (2 + len(COMPONENT_COLUMNS))]
    for e in analysis.get('components', []):
        cells = ' | '.join(_effect_cell(e['effect'][m], m) for m in COMPONENT_COLUMNS)
        lines.append(f"| {e['component']} | `{e['with']}` ({seeds[e['with']]}) − `{e['without']}` "
                     f"({seeds[e['without']]}) | {cells} |")
    return lines


def _effect_cell(effect: dict, metric: str) -> str:
    """The case-bootstrap interval, and where a row has several runs the interval with the runs resampled too."""
    cell = _interval(effect['difference'], metric)
    if 'difference_seeds_and_cases' in effect:
        _, low, high = effect['difference_seeds_and_cases']
        cell += f' seeds: [{_signed(low, metric)}, {_signed(high, metric)}]'
    return cell


def _interval(difference, metric: str) -> str:
    """``mean [low, high]``, or a dash where there is none."""
    if not difference:
        return '—'
    mean, low, high = (_signed(v, metric) for v in difference)
    return f'{mean} [{low}, {high}]'


def _signed(value: float, metric: str) -> str:
    """HD95 in whole mm, volumes to 0.1 mL, the rest to three decimals."""
    digits = {'hd95': 0, 'ml': 1}.get(metric.rsplit('_', 1)[-1], 3)
    return f'{value:+.{digits}f}'


def report(index: dict, main_analysis: dict, verdict: str) -> str:
    """``RESULTS.md``: the verdict, the set-ups, the main set-up's component effects and its headline."""
    main = index['main_setup']
    lines = ['# The boundary claim on KiTS19 phantoms at 4 mm', ''] + ([verdict, ''] if verdict else [])
    lines += ['## Set-ups', '', f"Each set-up's folder holds its `RESULTS.md` (every row with and without "
              f"nnU-Net's postprocessing, each component's effect, seed to seed), `results.json`, `differences.png` "
              f"and, where it ran after they were kept, `runs.json` (every run's per-case metrics and training "
              f"commit). The headline comes from `{main}/`, where nnU-Net's baseline learns tumors (held-out tumor "
              f"Dice ≥ {LEARNS_TUMORS_DICE}).", '']
    lines += setups_table(index['setups'], main) + ['']
    lines += [f'## What each component does ({main}, without postprocessing)', '',
              'Paired per held-out case, the row with the component minus the row without it (each averaged over '
              'its seeds first), mean with 95 % bootstrap interval over the cases; an interval containing zero is no '
              'measurable difference. "seeds:" where a row has several training runs, the interval when the runs '
              'of each row are resampled too (a two-level bootstrap that also sees training noise, which the case '
              'interval treats as fixed; `nnunet_boundary/benchmark/statistics.py`). Lower HD95 and far-tissue '
              'tumor are better.', '']
    lines += components_table(main_analysis) + ['']
    lines += [f'## Headline (results.json "headline", from `{main}/results.json`)', '', '```',
              json.dumps(index['headline'], indent=1), '```', '']
    if 'headline_seeds_and_cases_ci95' in index:
        lines += ['With the training runs resampled too (`"headline_seeds_and_cases_ci95"`): ' + ', '.join(
            f'{m} {_interval(d, m)}' for m, d in index['headline_seeds_and_cases_ci95'].items()) + '.', '']
    return '\n'.join(lines)


def write_index(root: Path, main: str) -> dict:
    """``root/results.json`` and ``root/RESULTS.md`` (opened by ``root/VERDICT.md``) from the set-ups' folders."""
    analyses = load_setups(root)
    index = build_index(analyses, main)
    write_json_atomically(index, root / 'results.json')
    verdict = root / 'VERDICT.md'
    (root / 'RESULTS.md').write_text(report(index, analyses[main],
                                            verdict.read_text().strip() if verdict.is_file() else ''))
    return index


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('benchmark', type=Path, help='the benchmark folder, one sub-folder of results per set-up')
    parser.add_argument('--main', required=True, help='the set-up folder the headline comes from')
    args = parser.parse_args(argv)
    index = write_index(args.benchmark, args.main)
    print(f"{args.benchmark / 'RESULTS.md'}: {len(index['setups'])} set-ups, headline from {args.main}")


if __name__ == '__main__':
    main()
