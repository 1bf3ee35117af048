"""Cross-validation training through ``nnUNetv2_train``, restartable fold by fold."""
from pathlib import Path
from typing import Callable, Dict, Sequence

from nnunet_boundary.nnunet_commands import run_nnunet
from nnunet_boundary.planning.templates import PLANS_NAME


def fold_action(fold_dir: Path) -> str:
    """What a fold still needs: ``'done'`` (trained and validated), ``'validate'`` (trained, the
    final validation was interrupted: ``--val``), ``'resume'`` (interrupted training: ``--c``) or
    ``'train'``."""
    if (fold_dir / 'checkpoint_final.pth').is_file():
        return 'done' if (fold_dir / 'validation' / 'summary.json').is_file() else 'validate'
    return 'resume' if (fold_dir / 'checkpoint_latest.pth').is_file() else 'train'


FLAGS = {'train': [], 'resume': ['--c'], 'validate': ['--val']}


def train_folds(dataset_id: int, trainer_name: str, configuration: str, model_dir: Path, folds: Sequence[int],
                env: Dict[str, str], log_dir: Path, device: str = 'cpu',
                log: Callable[[str], None] = print) -> Dict[int, str]:
    """Train ``trainer_name`` on each fold that still needs it; returns what was done per fold."""
    done = {}
    for fold in folds:
        action = fold_action(Path(model_dir) / f'fold_{fold}')
        done[fold] = action
        if action == 'done':
            log(f"{trainer_name} fold {fold}: already trained, skipping")
            continue
        args = ['nnUNetv2_train', dataset_id, configuration, fold, '-tr', trainer_name, '-p', PLANS_NAME,
                '-device', device, *FLAGS[action]]
        log(f"{trainer_name} fold {fold}: {action} ({' '.join(map(str, args))})")
        run_nnunet(args, env, Path(log_dir) / f'train_{trainer_name}_fold_{fold}.log',
                   prefix=f'  {trainer_name} fold {fold}: ')
    return done
