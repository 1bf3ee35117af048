"""A tiny synthetic dataset planned and preprocessed with nnU-Net, and nnU-Net's commands run as a
user would run them, for the reliability tests (one dataset per test module)."""
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

from nnunet_boundary.data.synthetic import write_synthetic_dataset
from nnunet_boundary.environment import TRAINER_DIR
from nnunet_boundary.planning.templates import PLANS_NAME
from nnunet_boundary.training.seeding import SEED_VARIABLE

BIN = Path(sys.executable).parent
SHAPE = (24, 40, 40)
SPACING = (2.5, 2.5, 2.5)


def nnunet_env(root: Path, *trainer_dirs: Path) -> Dict[str, str]:
    """nnU-Net's folders under ``root``, single-process data loading, our trainers on the lookup path, and a
    seeded training (``NNUNET_BOUNDARY_SEED``, default 0): the tests that train 150 iterations and then check
    that the kidneys were learned must not depend on an unseeded initialisation (one collapsed to
    background in CI). Set ``NNUNET_BOUNDARY_SEED`` to run them with another seed."""
    return dict(os.environ, nnUNet_raw=str(root / 'raw'), nnUNet_preprocessed=str(root / 'pre'),
                nnUNet_results=str(root / 'res'), nnUNet_def_n_proc='1', nnUNet_n_proc_DA='0', nnUNet_compile='false',
                nnUNet_extTrainer=os.pathsep.join(map(str, (TRAINER_DIR, *trainer_dirs))),
                **{SEED_VARIABLE: os.environ.get(SEED_VARIABLE, '0')})


def run(args, env: Dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / args[0]), *map(str, args[1:])], env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def train_and_predict(env: Dict[str, str], dataset_id: int, images: Path, out: Path,
                      trainer: str = 'BoundaryTrainer_smoke', configuration: str = '3d_fullres') -> Path:
    """Fold 0 of ``trainer`` (``configuration`` of nnUNetBoundaryPlans) through ``nnUNetv2_train`` on the CPU, then
    ``nnUNetv2_predict`` of the ``images`` folder with that fold into ``out``; returns ``out``."""
    run(['nnUNetv2_train', dataset_id, configuration, 0, '-tr', trainer, '-p', PLANS_NAME, '-device', 'cpu'], env)
    run(['nnUNetv2_predict', '-i', images, '-o', out, '-d', dataset_id, '-c', configuration, '-tr', trainer,
         '-p', PLANS_NAME, '-f', 0, '-device', 'cpu', '-npp', 1, '-nps', 1, '--disable_progress_bar'], env)
    return out


def planned_tiny_dataset(root: Path, dataset_id: int, num_train: int = 5, num_test: int = 3,
                         preprocess: bool = True) -> Tuple[Path, Dict[str, str]]:
    """Write ``Dataset{id}_Tiny`` under ``root/raw`` and plan (and preprocess) it with the cpu_smoke template;
    returns the raw dataset folder and the environment."""
    env = nnunet_env(root)
    dataset = write_synthetic_dataset(root / 'raw' / f'Dataset{dataset_id}_Tiny', num_train=num_train,
                                      num_test=num_test, shape=SHAPE, spacing_zyx=SPACING)
    run(['nnunet_boundary_plan_and_preprocess', '-d', dataset_id, '--template', 'cpu_smoke', '-np', 1,
         *([] if preprocess else ['--no_pp'])], env)
    return dataset, env
