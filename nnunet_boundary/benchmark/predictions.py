"""Held-out test predictions through ``nnUNetv2_predict`` in the paper's two settings (Table 1),
and their KiTS metrics, each written once and reused on a rerun."""
import json
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.nnunet_commands import run_nnunet
from nnunet_boundary.planning.templates import PLANS_NAME

#: mode -> (folds to use, extra nnUNetv2_predict flags); None = all benchmark folds
MODES = {'single': ([0], ['--disable_tta']), 'ensemble_tta': (None, [])}


def test_cases(labels_ts: Path, file_ending: str = '.nii.gz') -> List[str]:
    return sorted(p.name[:-len(file_ending)] for p in Path(labels_ts).glob(f'*{file_ending}'))


def mode_folds(mode: str, folds: Sequence[int]) -> List[int]:
    chosen, _ = MODES[mode]
    return list(folds) if chosen is None else chosen


def mode_label(mode: str, folds: Sequence[int]) -> str:
    """How a setting reads in the report, e.g. ``5-fold ensemble + mirroring TTA``."""
    used = mode_folds(mode, folds)
    if mode == 'single':
        return f'single model (fold {used[0]}, no TTA)'
    return f'{len(used)}-fold ensemble + mirroring TTA' if len(used) > 1 else f'fold {used[0]} + mirroring TTA'


def output_name(mode: str, folds: Sequence[int]) -> str:
    """Folder name of a setting's predictions, naming its folds (a rerun with other folds never
    reuses them), e.g. ``single_fold_0`` or ``ensemble_tta_folds_0-1-2-3-4``."""
    used = mode_folds(mode, folds)
    return f"{mode}_fold{'s' if len(used) > 1 else ''}_{'-'.join(map(str, used))}"


def predict_and_evaluate(dataset_id: int, trainer_name: str, configuration: str, mode: str, folds: Sequence[int],
                         images_ts: Path, labels_ts: Path, out_dir: Path, env: Dict[str, str], log_dir: Path,
                         device: str = 'cpu', file_ending: str = '.nii.gz',
                         log: Callable[[str], None] = print) -> dict:
    """Predict every test case (``--continue_prediction`` skips finished ones) and evaluate.

    Returns ``{'metrics': evaluate_folders(...), 'seconds': wall time of the prediction run}``,
    cached in ``out_dir/metrics.json``; a complete cache is returned without running anything."""
    out_dir, cache = Path(out_dir), Path(out_dir) / 'metrics.json'
    cases = test_cases(labels_ts, file_ending)
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if sorted(cached['metrics']['per_case']) == cases:
            log(f"{trainer_name} {mode}: already predicted and evaluated, skipping")
            return cached
    if any(not (out_dir / f'{c}{file_ending}').is_file() for c in cases):
        use, flags = MODES[mode]
        args = ['nnUNetv2_predict', '-i', images_ts, '-o', out_dir, '-d', dataset_id, '-c', configuration,
                '-tr', trainer_name, '-p', PLANS_NAME, '-f', *mode_folds(mode, folds), '-device', device,
                '-npp', 1, '-nps', 1, '--continue_prediction', '--disable_progress_bar', *flags]
        log(f"{trainer_name} {mode}: predicting {len(cases)} test cases ({mode_label(mode, folds)})")
        started = time.time()
        run_nnunet(args, env, Path(log_dir) / f'predict_{trainer_name}_{mode}.log', prefix=f'  {trainer_name} {mode}: ')
        seconds = time.time() - started
    else:
        seconds = None  # predictions from an earlier, interrupted run; their time was not recorded
    log(f"{trainer_name} {mode}: evaluating against labelsTs")
    from nnunet_boundary.kits19.metrics import evaluate_folders
    result = {'metrics': evaluate_folders(out_dir, labels_ts), 'seconds': seconds}
    write_json_atomically(result, cache)
    return result
