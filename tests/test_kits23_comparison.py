"""The KiTS23 benchmark's paired comparison: per region and metric, sign, interval and verdict."""
import json

import pytest

from nnunet_boundary.benchmark.kits23_comparison import compare, main
from nnunet_boundary.kits19.metrics import KITS23_CHALLENGE


def metrics(per_case):
    names = KITS23_CHALLENGE.metrics
    return {'per_case': per_case, 'mean': {m: sum(c[m] for c in per_case.values()) / len(per_case) for m in names}}


def cases(offset, tumor_hd95):
    return {f'case_{i:05d}': dict({m: 0.5 + offset + 0.01 * i for m in KITS23_CHALLENGE.metrics},
                                  tumor_hd95=tumor_hd95 + i) for i in range(10)}


def test_a_model_better_on_every_case_is_better_with_an_interval_clear_of_zero():
    result = compare(metrics(cases(0.1, 5.0)), metrics(cases(0.0, 9.0)))
    assert set(result) == {f'{r}_{k}' for r in ('kidney_and_mass', 'mass', 'tumor')
                           for k in ('dice', 'surface_dice', 'nsd', 'hd95')}
    dice = result['tumor_dice']
    assert dice['difference'] == pytest.approx([0.1, 0.1, 0.1])
    assert dice['verdict'] == 'better'
    assert result['tumor_hd95']['difference'][0] == pytest.approx(-4.0)
    assert result['tumor_hd95']['verdict'] == 'better'  # smaller HD95 is better


def test_cli_writes_results_and_a_table(tmp_path):
    base, model = tmp_path / 'base.json', tmp_path / 'model.json'
    base.write_text(json.dumps(metrics(cases(0.0, 9.0))))
    noisy = cases(0.0, 9.0)
    for i, values in enumerate(noisy.values()):
        values['mass_dice'] += 0.05 if i % 2 else -0.05
    model.write_text(json.dumps(metrics(noisy)))
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'VERDICT.md').write_text('**No measurable difference.**\n')
    main(['--baseline', f'B={base}', '--model', f'M={model}', '--out', str(tmp_path / 'out'),
          '--command', 'bash run.sh'])
    results = json.loads((tmp_path / 'out' / 'results.json').read_text())
    assert results['comparisons']['M']['mass_dice']['verdict'] == 'no measurable difference'
    report = (tmp_path / 'out' / 'RESULTS.md').read_text().splitlines()
    assert report[:3] == ['# KiTS23 phantoms: BoundaryTrainer vs baseline nnU-Net', '', '**No measurable difference.**']
    assert any(line.startswith('| mass | Dice | 0.545 | 0.545 |') for line in report)
    assert report[-1].endswith('reproduce: `bash run.sh`.')


def test_a_run_whose_metrics_are_gone_is_read_from_the_saved_per_case_metrics_and_models_get_a_table_each(tmp_path):
    base, model, other = tmp_path / 'base.json', tmp_path / 'model.json', tmp_path / 'other.json'
    base.write_text(json.dumps(metrics(cases(0.0, 9.0))))
    model.write_text(json.dumps(metrics(cases(0.1, 5.0))))
    out = tmp_path / 'out'
    main(['--baseline', f'B={base}', '--model', f'M={model}', '--out', str(out)])
    base.unlink(), model.unlink()  # a cleared work folder
    other.write_text(json.dumps(metrics(cases(-0.1, 9.0))))
    main(['--baseline', f'B={base}', '--model', f'M={model}', '--model', f'N={other}', '--out', str(out)])
    results = json.loads((out / 'results.json').read_text())
    assert results['models'] == ['M', 'N'] and set(results['per_case']) == {'B', 'M', 'N'}
    assert results['comparisons']['M']['tumor_dice']['difference'] == pytest.approx([0.1, 0.1, 0.1])
    assert results['comparisons']['N']['tumor_dice']['verdict'] == 'worse'
    report = (out / 'RESULTS.md').read_text()
    assert report.index('## M − B') < report.index('## N − B')
    with pytest.raises(SystemExit, match='no .*gone.json, and no per-case metrics of X saved'):
        main(['--baseline', f'B={base}', '--model', f'X={tmp_path / "gone.json"}', '--out', str(out)])
