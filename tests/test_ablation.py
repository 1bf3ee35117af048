"""The ablation analysis on fake per-case metrics: paired bootstrap, verdicts, rows of runs, the choice of
the final variant on validation only; far-tissue tumor on small label maps."""
import numpy as np
import pytest

from nnunet_boundary.benchmark import ablation
from nnunet_boundary.benchmark.statistics import compare, paired_bootstrap, verdict
from helpers import CASES, ablation_row, per_case
from kits_files import write_label_map


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_agreement():
    mean, low, high = paired_bootstrap([0.1, 0.2, 0.3, 0.0, 0.15, 0.25])
    assert low < mean < high and mean == pytest.approx(0.1667, abs=1e-3)
    assert paired_bootstrap([0.05] * 10) == pytest.approx([0.05, 0.05, 0.05])
    assert paired_bootstrap([1.0, -1.0] * 5)[1] < 0 < paired_bootstrap([1.0, -1.0] * 5)[2]


def test_verdicts_follow_the_interval_and_the_metrics_direction():
    assert verdict(0.01, 0.05, True) == 'better' and verdict(0.01, 0.05, False) == 'worse'
    assert verdict(-0.05, -0.01, False) == 'better' and verdict(-0.02, 0.03, True) == 'no measurable difference'


def test_comparison_pairs_cases_and_averages_runs_first():
    result = compare([per_case(0.1), per_case(0.1)], [per_case(0.0, spread=0.05)], 'tumor_dice')
    assert result['difference'][0] == pytest.approx(0.1) and result['verdict'] == 'better'
    hd = compare([per_case(0.1)], [per_case(0.0)], 'tumor_hd95')
    assert hd['difference'][0] == pytest.approx(-1.0) and hd['verdict'] == 'better' and hd['cases_better'] == 12
    with pytest.raises(ValueError, match='different test cases'):
        compare([per_case(0.1)], [{c: v for c, v in per_case(0.0).items() if c != CASES[0]}], 'tumor_dice')


def test_resampling_the_seeds_too_sees_training_noise_that_the_case_bootstrap_does_not():
    seeds_disagree = compare([per_case(0.2), per_case(-0.1)], [per_case(0.0)], 'tumor_dice')
    assert seeds_disagree['difference'] == pytest.approx([0.05, 0.05, 0.05]) and seeds_disagree['verdict'] == 'better'
    mean, low, high = seeds_disagree['difference_seeds_and_cases']
    assert mean == pytest.approx(0.05) and low == pytest.approx(-0.1) and high == pytest.approx(0.2)
    assert seeds_disagree['verdict_seeds_and_cases'] == 'no measurable difference'
    seeds_agree = compare([per_case(0.1, spread=0.05)] * 2, [per_case(0.0)] * 3, 'tumor_dice')
    assert seeds_agree['difference_seeds_and_cases'] == pytest.approx(seeds_agree['difference'], abs=5e-3)
    assert 'difference_seeds_and_cases' not in compare([per_case(0.1)], [per_case(0.0)], 'tumor_dice')
    assert 'difference_seeds_and_cases' not in compare([per_case(0.1), per_case(0.0)] * 2,
                                                       [per_case(0.1), per_case(0.0)] * 2, 'tumor_dice')


def test_rows_summarize_against_the_baseline_and_the_final_is_chosen_on_validation_not_test():
    baseline = ablation_row([per_case(0.0), per_case(0.0)], boundary=False, validation=(0.9, 0.9))
    def summary(runs, **kwargs):
        return ablation.summarize_row(ablation_row(runs, **kwargs), baseline)
    summaries = {'Baseline': ablation.summarize_row(baseline, baseline),
                 'BestOnTest': summary([per_case(0.2)], validation=(0.60,)),
                 'BestOnValidation': summary([per_case(-0.1)], validation=(0.70,)),
                 'UnsupervisedBoundaryStream': summary([per_case(0.0)], boundary=False, validation=(0.80,)),
                 'BestOnValidationInBfloat16': summary([per_case(0.0)], validation=(0.85,), bf16=True)}
    assert 'postprocessed' not in summaries['Baseline']
    assert summaries['BestOnTest']['raw']['vs_baseline']['tumor_dice']['verdict'] == 'better'
    assert ablation.choose_final(summaries) == 'BestOnValidation'
    head = ablation.headline(summaries, 'Baseline', 'BestOnValidation', 'raw')
    assert set(head) == {'baseline_trainer', 'boundary_trainer', 'setting', 'baseline', 'boundary',
                         'paired_difference_ci95'}
    assert set(head['paired_difference_ci95']) == {'composite_dice', 'tumor_dice', 'tumor_nsd', 'tumor_hd95'}
    assert head['paired_difference_ci95']['tumor_dice'][0] == pytest.approx(-0.1)


def test_only_rows_that_train_the_boundary_stream_can_be_the_final_boundary_trainer():
    assert ablation.boundary_supervised('BoundaryTrainer_4mm_nnUNetCrops_3000steps')
    assert not ablation.boundary_supervised('BoundaryTrainer_4mm_architectureOnly_3000steps')
    assert not ablation.boundary_supervised('BaselineTumorSampler_4mm_3000steps')
    assert ablation.cpu_mixed_precision('BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_3000steps')
    assert not ablation.cpu_mixed_precision('BoundaryTrainer_4mm_nnUNetNetwork_noStream_3000steps')


def test_component_effects_pair_the_rows_with_and_without_each_component():
    rows = {'BaselineTrainer_4mm_3000steps': ablation_row([per_case(0.0), per_case(0.0)], boundary=False),
            'BoundaryTrainer_4mm_3000steps': ablation_row([per_case(-0.2)]),
            'BoundaryTrainer_4mm_nnUNetCrops_3000steps': ablation_row([per_case(-0.05)])}
    effects = ablation.component_effects(rows, 'BaselineTrainer_4mm_3000steps')
    assert [e['component'] for e in effects] == ['tumor-weighted sampler (boundary network)']
    sampler = effects[0]['effect']
    assert sampler['tumor_dice']['difference'][0] == pytest.approx(-0.15)
    assert sampler['far_tumor_ml']['difference'][0] == pytest.approx(0.15)
    assert sampler['tumor_dice']['verdict'] == sampler['far_tumor_ml']['verdict'] == 'worse'
    header, _, line = ablation.components_table(effects)
    assert 'Δ far_tumor_ml' in header
    assert 'BoundaryTrainer_4mm_3000steps − BoundaryTrainer_4mm_nnUNetCrops_3000steps' in line
    assert ablation.component_effects(rows, 'BaselineTrainer_4mm') == []


def test_a_rows_second_run_is_compared_with_its_first_as_the_seed_to_seed_noise(tmp_path):
    rows = {'Baseline': ablation_row([per_case(0.0), per_case(0.1)], boundary=False, validation=(0.9, 0.9)),
            'Boundary': ablation_row([per_case(-0.2)])}
    noise, = ablation.seed_to_seed(rows)
    assert (noise['with'], noise['without']) == ('T1', 'T0') and 'Baseline' in noise['component']
    assert noise['effect']['tumor_dice']['difference'][0] == pytest.approx(0.1)
    assert noise['effect']['far_tumor_ml']['difference'][0] == pytest.approx(-0.1)
    baseline = rows['Baseline']
    analysis = {'dataset': 'Dataset915_KiTS19', 'test_cases': CASES, 'baseline': 'Baseline', 'commit': 'abc1234',
                'command': 'run.sh', 'seed_to_seed': [noise],
                'rows': {name: dict(ablation.summarize_row(row, baseline), steps=[3000] * len(row['runs']))
                         for name, row in rows.items()}}
    ablation.write_report(analysis, tmp_path)
    report = (tmp_path / 'RESULTS.md').read_text()
    assert '## Seed to seed' in report and '| another training run of Baseline | T1 − T0 | ' in report


def test_second_runs_belong_to_their_row():
    assert ablation.row_name('BaselineTrainer_4mm_run2') == 'BaselineTrainer_4mm'
    assert ablation.row_name('BoundaryTrainer_4mm_fixed') == 'BoundaryTrainer_4mm_fixed'
    assert ablation.row_name('BaselineTrainer_4mm_run2_3000steps') == 'BaselineTrainer_4mm_3000steps'


def test_forest_plot_is_written(tmp_path):
    baseline = ablation_row([per_case(0.0)], boundary=False)
    rows = {'Baseline': ablation.summarize_row(baseline, baseline),
            'Variant': ablation.summarize_row(ablation_row([per_case(0.05, spread=0.02)]), baseline)}
    ablation.write_forest_plot({'rows': rows, 'baseline': 'Baseline'}, tmp_path)
    assert (tmp_path / 'differences.png').stat().st_size > 1000


def test_the_report_states_the_budget_the_runs_trained_and_flags_unequal_ones():
    equal = {'rows': {'Baseline': {'steps': [1500, 1500]}, 'Boundary': {'steps': [1500]}}}
    assert ablation.budget_sentence(equal) == 'the same 1,500-step budget'
    unequal = {'rows': {'Baseline': {'steps': [3000]}, 'Boundary': {'steps': [1500]}}}
    assert ablation.budget_sentence(unequal) == 'step budgets Baseline 3,000, Boundary 1,500'
    unknown = {'rows': {'Baseline': {'steps': [3000]}, 'Boundary': {'steps': [None]}}}
    assert ablation.budget_sentence(unknown) == 'step budgets Baseline 3,000, Boundary ?'


def test_far_tumor_is_the_predicted_tumor_beyond_20_mm_of_the_reference_kidney(tmp_path):
    reference = np.zeros((20, 30, 30), np.uint8)
    reference[5:10, 5:10, 5:10] = 1
    prediction = reference.copy()
    prediction[6:8, 6:8, 6:8] = 2  # tumor inside the kidney
    prediction[15:17, 25:28, 25:28] = 2  # 18 voxels of tumor more than 20 mm away
    prediction[5:10, 11, 5:10] = 2  # next to the kidney (4 mm)
    write_label_map(reference, tmp_path / 'labels' / 'case_00000.nii.gz', spacing=(4.0, 4.0, 4.0))
    write_label_map(prediction, tmp_path / 'pred' / 'case_00000.nii.gz', spacing=(4.0, 4.0, 4.0))
    far = ablation.far_tumor_ml(tmp_path / 'pred', tmp_path / 'labels')
    assert far == {'case_00000': pytest.approx(18 * 0.064)}
    metrics = {'case_00000': {'tumor_dice': 0.5}}
    added = ablation.with_far_tumor(metrics, tmp_path / 'pred', tmp_path / 'labels')
    assert added == {'case_00000': {'tumor_dice': 0.5, 'far_tumor_ml': pytest.approx(18 * 0.064)}}
    assert ablation.with_far_tumor(None, tmp_path / 'pred', tmp_path / 'labels') is None


def test_the_tables_report_far_tumor_per_row():
    baseline = ablation_row([per_case(0.0)], boundary=False)
    rows = {'Baseline': ablation.summarize_row(baseline, baseline),
            'Variant': ablation.summarize_row(ablation_row([per_case(0.3)]), baseline)}
    header, _, base_line, variant_line = ablation.markdown_table(rows, 'raw')
    assert header.split(' | ')[9] == 'far_tumor_ml'
    assert base_line.split(' | ')[9] == '1.0' and variant_line.split(' | ')[9] == '0.7'
