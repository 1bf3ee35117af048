"""The main job on embedded synthetic data: synthesize, plan, preprocess, 5-fold training,
ensemble prediction with mirroring TTA, evaluation and an overlay, all through nnU-Net's own
commands. Rerunning continues where an interrupted run stopped.

Seeded by default (``NNUNET_BOUNDARY_SEED``, data augmentation in the training process), so that a
rerun on the same machine repeats the numbers; ``seed=None`` uses nnU-Net's multi-process augmentation
(faster on many cores, numbers vary from run to run)."""
import os
import platform
import time
from pathlib import Path
from typing import Optional, Sequence

import SimpleITK as sitk

from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.benchmark.folds import train_folds
from nnunet_boundary.benchmark.trainers import model_folder
from nnunet_boundary.data.synthetic import write_synthetic_dataset
from nnunet_boundary.kits19.metrics import evaluate_folders
from nnunet_boundary.kits19.overlay import save_overlay
from nnunet_boundary.nnunet_commands import nnunet_environment, run_nnunet
from nnunet_boundary.planning.templates import PLANS_NAME
from nnunet_boundary.training.seeding import SEED_VARIABLE

DATASET_ID = 900
DATASET_NAME = 'Dataset900_SyntheticKidney'
TRAINER = 'BoundaryTrainer_smoke'


def run_demo(out: Path, folds: Sequence[int] = (0, 1, 2, 3, 4), device: str = 'cpu', num_train: int = 20,
             num_test: int = 4, n_proc: int = 2, seed: Optional[int] = 0) -> dict:
    out = Path(out).resolve()
    raw, preprocessed, results = out / 'nnUNet_raw', out / 'nnUNet_preprocessed', out / 'nnUNet_results'
    env = nnunet_environment(raw, preprocessed, results, n_proc=n_proc, n_proc_da=None if seed is None else 0)
    env.pop(SEED_VARIABLE, None)
    if seed is not None:
        env[SEED_VARIABLE] = str(seed)
    started = time.time()
    step = lambda msg: print(f"[demo {time.time() - started:6.0f}s] {msg}", flush=True)

    step(f"synthesizing {num_train} training + {num_test} test cases in {raw / DATASET_NAME}")
    dataset = write_synthetic_dataset(raw / DATASET_NAME, num_train, num_test, shape=(32, 48, 48),
                                      spacing_zyx=(2.5, 2.5, 2.5))

    step("planning (nnU-Net fingerprint + planner + cpu_smoke template) and preprocessing")
    run_nnunet(['nnunet_boundary_plan_and_preprocess', '-d', DATASET_ID, '--template', 'cpu_smoke', '-np', n_proc],
               env, out / 'logs' / 'plan_and_preprocess.log')

    # finished folds are skipped, interrupted ones resumed (--c) or validated (--val)
    train_folds(DATASET_ID, TRAINER, '3d_fullres', model_folder(results, DATASET_NAME, TRAINER, '3d_fullres'), folds,
                env, out / 'logs', device, step)

    predictions = out / 'predictions_ensemble_tta'
    step(f"predicting {num_test} held-out cases with the {len(folds)}-fold ensemble and mirroring TTA")
    run_nnunet(['nnUNetv2_predict', '-i', dataset / 'imagesTs', '-o', predictions, '-d', DATASET_ID,
                '-c', '3d_fullres', '-tr', TRAINER, '-p', PLANS_NAME, '-f', *folds, '-device', device,
                '-npp', 1, '-nps', 1, '--continue_prediction', '--disable_progress_bar'],
               env, out / 'logs' / 'predict.log', prefix='  ')

    step("evaluating against the held-out labels")
    metrics = evaluate_folders(predictions, dataset / 'labelsTs')
    case = sorted(metrics['per_case'])[0]
    read = lambda p: sitk.GetArrayFromImage(sitk.ReadImage(str(p)))
    save_overlay(read(dataset / 'imagesTs' / f'{case}_0000.nii.gz'), read(dataset / 'labelsTs' / f'{case}.nii.gz'),
                 read(predictions / f'{case}.nii.gz'), out / 'overlay.png',
                 title=f'{case}: ground truth vs {len(folds)}-fold ensemble + TTA')
    summary = {
        'dataset': DATASET_NAME, 'trainer': TRAINER, 'plans': PLANS_NAME, 'folds': list(folds), 'seed': seed,
        'held_out_cases': sorted(metrics['per_case']),
        'mean': metrics['mean'], 'per_case': metrics['per_case'],
        'region_dice': {'kidney_and_tumor': metrics['mean']['kidney_dice'], 'tumor': metrics['mean']['tumor_dice']},
        'seconds': round(time.time() - started, 1), 'device': device,
        'machine': f'{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}',
    }
    write_json_atomically(summary, out / 'summary.json')
    step(f"done: Dice kidney+tumor {summary['region_dice']['kidney_and_tumor']:.3f}, "
         f"tumor {summary['region_dice']['tumor']:.3f}; wrote {out / 'summary.json'} and {out / 'overlay.png'}")
    return summary
