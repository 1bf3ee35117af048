"""The benchmark's index over its set-ups: the headline comes from the main set-up, which must learn tumors."""
import json

import pytest

from nnunet_boundary.benchmark import ablation, setup_index
from helpers import ablation_row, per_case


def write_setup(root, name, baseline_offset, steps, baseline_runs=1):
    """A set-up folder as the ablation analysis leaves it: a baseline whose held-out tumor Dice is
    0.4 + ``baseline_offset`` (``baseline_runs`` identical runs) and one boundary row 0.2 better on every metric
    (HD95 2 mm lower)."""
    rows = {'Baseline': ablation_row([per_case(baseline_offset)] * baseline_runs, boundary=False,
                                     validation=(0.8,) * baseline_runs),
            'Boundary': ablation_row([per_case(baseline_offset + 0.2)], validation=(0.7,))}
    summaries = {n: dict(ablation.summarize_row(r, rows['Baseline']), steps=[steps]) for n, r in rows.items()}
    analysis = {'dataset': 'Dataset915_KiTS19', 'baseline': 'Baseline', 'rows': summaries,
                'final_boundary_trainer': 'Boundary',
                'headline': ablation.headline(summaries, 'Baseline', 'Boundary', 'raw'),
                'components': [{'component': 'boundary stream', 'with': 'Boundary', 'without': 'Baseline',
                                'effect': ablation.paired_effect(*[[r['per_case'] for r in rows[n]['runs']]
                                                                   for n in ('Boundary', 'Baseline')])}]}
    (root / name).mkdir()
    (root / name / 'results.json').write_text(json.dumps(analysis))
    return analysis


def test_the_index_carries_the_main_setups_headline_and_lists_every_setup(tmp_path):
    write_setup(tmp_path, '32_patch_1500_steps', -0.35, 1500)
    main = write_setup(tmp_path, '48_patch_3000_steps', 0.0, 3000, baseline_runs=2)
    (tmp_path / 'VERDICT.md').write_text('**Verdict: level.**\n')
    index = setup_index.write_index(tmp_path, '48_patch_3000_steps')
    saved = json.loads((tmp_path / 'results.json').read_text())
    assert saved == index and saved['headline'] == main['headline'] and saved['main_setup'] == '48_patch_3000_steps'
    small, large = saved['setups']['32_patch_1500_steps'], saved['setups']['48_patch_3000_steps']
    assert small['baseline_tumor_dice'] == pytest.approx(0.05) and not small['learns_tumors']
    assert large['learns_tumors'] and large['steps'] == [3000] and (large['rows'], large['runs']) == (2, 3)
    assert saved['headline_seeds_and_cases_ci95']['tumor_hd95'] == pytest.approx([-2, -2, -2])
    assert large['paired_difference_ci95']['composite_dice'][0] == pytest.approx(0.2)
    report = (tmp_path / 'RESULTS.md').read_text()
    assert report.index('**Verdict: level.**') < report.index('## Set-ups') < report.index('## What each component')
    assert report.index('## What each component does (48_patch_3000_steps') < report.index('## Headline')
    assert '| boundary stream | `Boundary` (1) − `Baseline` (2) | +0.200 [+0.200, +0.200] seeds: [+0.200, +0.200] | ' \
           '+0.200 [+0.200, +0.200] seeds: [+0.200, +0.200] | -2 [-2, -2] seeds: [-2, -2] |' in report
    assert 'With the training runs resampled too (`"headline_seeds_and_cases_ci95"`): composite_dice +0.200' in report
    assert '| [`48_patch_3000_steps/`](48_patch_3000_steps/RESULTS.md) (main) | 3,000 | 0.400 | yes | 2 (3) | ' \
           'Boundary | +0.200 [+0.200, +0.200] | +0.200 [+0.200, +0.200] |' in report
    assert '| [`32_patch_1500_steps/`](32_patch_1500_steps/RESULTS.md) | 1,500 | 0.050 | no |' in report


def test_a_setup_that_does_not_learn_tumors_or_is_missing_cannot_carry_the_headline(tmp_path):
    write_setup(tmp_path, '32_patch_1500_steps', -0.35, 1500)
    with pytest.raises(SystemExit, match='tumor Dice 0.050 .needs ≥ 0.25'):
        setup_index.write_index(tmp_path, '32_patch_1500_steps')
    with pytest.raises(SystemExit, match='no .*48_patch_3000_steps/results.json; set-ups found: 32_patch_1500_steps'):
        setup_index.write_index(tmp_path, '48_patch_3000_steps')
    assert not (tmp_path / 'results.json').exists()
