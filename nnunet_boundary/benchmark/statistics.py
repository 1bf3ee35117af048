"""Paired comparison of two models on the same test cases: per-case differences, their mean and a
percentile bootstrap confidence interval (cases resampled with replacement; Efron & Tibshirani 1993,
ch. 13). With one training run per model and 10-20 cases, differences of a few Dice points are within
noise; an interval that contains zero is reported as "no measurable difference".

That interval treats each trained model as fixed, so it does not see training noise: a second seed of one recipe
can move it by more than its width. Where a side has several training runs, :func:`compare` also gives a
two-level bootstrap that resamples the runs of each side and then the cases (the hierarchical bootstrap of
Davison & Hinkley 1997, sec. 3.8; Saravanan et al. 2020, "Application of the hierarchical bootstrap to
multi-level data in neuroscience"). With two or three runs a side it still understates the training noise
(a bootstrap of n runs has (n - 1) / n of their variance), and a side with one run contributes none."""
from typing import Dict, List, Sequence

import numpy as np

#: metric -> True when larger is better
METRIC_DIRECTIONS = {'composite_dice': True, 'tumor_dice': True, 'tumor_nsd': True, 'tumor_hd95': False,
                     'kidney_dice': True, 'kidney_nsd': True, 'kidney_hd95': False, 'far_tumor_ml': False}


def paired_bootstrap(differences: Sequence[float], n_resamples: int = 10000, confidence: float = 0.95,
                     seed: int = 0) -> List[float]:
    """``[mean, low, high]`` of per-case paired differences, the interval by percentile bootstrap."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        raise ValueError("no paired cases")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return [float(d.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]


def seed_and_case_bootstrap(model: np.ndarray, baseline: np.ndarray, n_resamples: int = 10000,
                            confidence: float = 0.95, seed: int = 0) -> List[float]:
    """``[mean, low, high]`` of the mean paired difference ``model - baseline`` (arrays of runs x cases), the
    interval by resampling each side's runs, then the cases, with replacement."""
    rng = np.random.default_rng(seed)
    per_case = (model[rng.integers(0, len(model), (n_resamples, len(model)))].mean(axis=1)
                - baseline[rng.integers(0, len(baseline), (n_resamples, len(baseline)))].mean(axis=1))
    cases = rng.integers(0, per_case.shape[1], per_case.shape)
    means = np.take_along_axis(per_case, cases, axis=1).mean(axis=1)
    alpha = (1 - confidence) / 2
    return [float((model.mean(axis=0) - baseline.mean(axis=0)).mean()), float(np.quantile(means, alpha)),
            float(np.quantile(means, 1 - alpha))]


def mean_over_runs(runs: Sequence[Dict[str, Dict[str, float]]], metric: str) -> Dict[str, float]:
    """Per case: the metric averaged over independent training runs (``runs``: per_case dicts)."""
    cases = sorted(runs[0])
    if any(sorted(r) != cases for r in runs):
        raise ValueError("runs were evaluated on different test cases")
    return {c: float(np.mean([r[c][metric] for r in runs])) for c in cases}


def compare(model_runs: Sequence[dict], baseline_runs: Sequence[dict], metric: str, **kwargs) -> dict:
    """Paired comparison of one metric, model minus baseline, per case (averaged over each side's runs); where a
    side has several runs, also the interval with the runs resampled (``difference_seeds_and_cases``; not for a
    row against itself)."""
    model, baseline = mean_over_runs(model_runs, metric), mean_over_runs(baseline_runs, metric)
    if sorted(model) != sorted(baseline):
        raise ValueError("model and baseline were evaluated on different test cases")
    differences = [model[c] - baseline[c] for c in sorted(model)]
    mean, low, high = paired_bootstrap(differences, **kwargs)
    better = METRIC_DIRECTIONS[metric]
    result = {'difference': [mean, low, high], 'cases': len(differences),
              'cases_better': int(sum((d > 0) if better else (d < 0) for d in differences)),
              'verdict': verdict(low, high, better)}
    if max(len(model_runs), len(baseline_runs)) > 1 and list(model_runs) != list(baseline_runs):
        runs_by_cases = [np.array([[r[c][metric] for c in sorted(model)] for r in runs])
                         for runs in (model_runs, baseline_runs)]
        mean, low, high = seed_and_case_bootstrap(*runs_by_cases, **kwargs)
        result.update(difference_seeds_and_cases=[mean, low, high],
                      verdict_seeds_and_cases=verdict(low, high, better))
    return result


def verdict(low: float, high: float, larger_is_better: bool) -> str:
    """'better', 'worse', or 'no measurable difference' (the interval contains zero)."""
    if low > 0:
        return 'better' if larger_is_better else 'worse'
    if high < 0:
        return 'worse' if larger_is_better else 'better'
    return 'no measurable difference'
