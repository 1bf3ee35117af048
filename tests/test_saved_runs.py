"""Per-case results that outlive the benchmark's work folder: runs.json, its dataset fingerprint, and the ablation
analysis pairing new runs with saved ones."""
import json

import numpy as np
import pytest

from nnunet_boundary.benchmark import ablation, saved_runs
from kits_files import write_label_map
from test_ablation import CASES, per_case


def _held_out_cases(raw_dataset, tumor_voxel=(2, 2, 2)):
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[1:5, 1:7, 1:7] = 1
    labels[tumor_voxel] = 2
    write_label_map(labels, raw_dataset / 'labelsTs' / 'case_00000.nii.gz', spacing=(4.0, 4.0, 4.0))
    write_label_map(labels.astype(np.int16) * 100, raw_dataset / 'imagesTs' / 'case_00000_0000.nii.gz',
                    spacing=(4.0, 4.0, 4.0))


def _run(offset, boundary=True, commit='abc1234'):
    return {'configuration': '3d_fullres', 'boundary_supervised': boundary, 'per_case': per_case(offset),
            'per_case_postprocessed': None, 'validation_dice': 0.7, 'commit': commit, 'steps': 3000}


def test_the_fingerprint_follows_the_held_out_voxels_and_a_mismatch_is_refused(tmp_path):
    _held_out_cases(tmp_path / 'a')
    _held_out_cases(tmp_path / 'b')
    _held_out_cases(tmp_path / 'c', tumor_voxel=(3, 3, 3))
    a, b, c = (saved_runs.held_out_fingerprint(tmp_path / name) for name in 'abc')
    assert a == b != c
    runs = tmp_path / 'runs.json'
    saved_runs.save_runs(runs, 'Dataset915_KiTS19', a, {'Baseline': _run(0.0, boundary=False)})
    assert saved_runs.load_runs(runs, 'Dataset915_KiTS19', b) == json.loads(json.dumps({'Baseline': _run(0.0, False)}))
    with pytest.raises(SystemExit, match='move it away'):
        saved_runs.load_runs(runs, 'Dataset915_KiTS19', c)
    assert saved_runs.load_runs(tmp_path / 'none.json', 'Dataset915_KiTS19', c) == {}


def test_only_evaluated_runs_are_listed_as_saved(tmp_path, capsys):
    unevaluated = dict(_run(0.0), per_case=None)
    saved_runs.save_runs(tmp_path / 'runs.json', 'D', 'f', {'Baseline': _run(0.0), 'Variant': unevaluated})
    saved_runs.main([str(tmp_path / 'runs.json')])
    assert capsys.readouterr().out.split() == ['Baseline']
    saved_runs.main([str(tmp_path / 'missing.json')])
    assert capsys.readouterr().out == ''


def test_a_rows_runs_are_grouped_first_run_first():
    rows = ablation.group_rows({'B_run2_3000steps': _run(0.1), 'A_3000steps': _run(0.0), 'B_3000steps': _run(0.0)})
    assert list(rows) == ['B_3000steps', 'A_3000steps']
    assert [r['trainer'] for r in rows['B_3000steps']['runs']] == ['B_3000steps', 'B_run2_3000steps']


def test_a_fresh_work_folder_pairs_its_new_runs_with_the_saved_ones(tmp_path, monkeypatch):
    raw = tmp_path / 'raw'
    _held_out_cases(raw / 'Dataset915_KiTS19')
    for variable in ('nnUNet_raw', 'nnUNet_preprocessed', 'nnUNet_results'):
        monkeypatch.setenv(variable, str(raw if variable == 'nnUNet_raw' else tmp_path / variable))
    benchmark, out = tmp_path / 'work', tmp_path / 'report'
    benchmark.mkdir()
    (benchmark / 'results.json').write_text(json.dumps({'dataset': 'Dataset915_KiTS19', 'test_cases': CASES,
                                                        'rows': []}))
    new_runs = {'Baseline': _run(0.0, boundary=False, commit='aaaaaaa')}
    monkeypatch.setattr(ablation, 'collect_runs', lambda *args: dict(new_runs))
    with pytest.raises(SystemExit, match='no run of the baseline Variant'):
        ablation.analyse(benchmark, 'Variant', out, log=lambda *_: None)
    assert list(json.loads((out / 'runs.json').read_text())['runs']) == ['Baseline']   # saved before the error

    new_runs = {'Variant': _run(0.1, commit='bbbbbbb')}   # the work folder lost the baseline's model
    analysis = ablation.analyse(benchmark, 'Baseline', out, log=lambda *_: None)
    assert analysis['rows']['Variant']['raw']['vs_baseline']['tumor_dice']['difference'][0] == pytest.approx(0.1)
    assert analysis['rows']['Baseline']['commits'] == ['aaaaaaa']
    assert list(json.loads((out / 'runs.json').read_text())['runs']) == ['Baseline', 'Variant']
    assert 'Baseline aaaaaaa; Variant bbbbbbb' in (out / 'RESULTS.md').read_text()
