"""Run nnU-Net's own command-line tools as a user would, with our trainers on the lookup path.

Output goes to a log file; the lines a person wants to follow (epochs, Dice, prediction
progress) are echoed with a prefix. A failing command raises with the log's path and tail.
"""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

from nnunet_boundary.environment import with_trainer_dir
from nnunet_boundary.errors import NnUNetBoundaryError

PROGRESS = re.compile(r'(Epoch \d+$|Pseudo dice|Mean Validation Dice|train_loss|Predicting |Done with )')


def nnunet_environment(raw: Path, preprocessed: Path, results: Path, n_proc: int = 2,
                       n_proc_da: Optional[int] = None) -> Dict[str, str]:
    """``os.environ`` plus nnU-Net's folders, its process counts and our trainer folder (and unbuffered
    output, so that progress shows as it happens)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', nnUNet_raw=str(raw), nnUNet_preprocessed=str(preprocessed),
               nnUNet_results=str(results), nnUNet_def_n_proc=str(n_proc),
               nnUNet_n_proc_DA=str(n_proc if n_proc_da is None else n_proc_da))
    env['nnUNet_extTrainer'] = with_trainer_dir(env.get('nnUNet_extTrainer', ''))
    return env


def run_nnunet(args: Sequence[str], env: Dict[str, str], log_file: Path, prefix: str = '') -> None:
    """Run ``args`` (e.g. ``['nnUNetv2_train', ...]``), logging everything to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    executable = Path(sys.executable).parent / args[0]
    command = [str(executable) if executable.exists() else args[0], *map(str, args[1:])]
    with open(log_file, 'a') as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   bufsize=1)
        tail = []
        for line in process.stdout:
            log.write(line)
            tail = (tail + [line])[-25:]
            if PROGRESS.search(line):
                print(f"{prefix}{line.rstrip()}", flush=True)
        if process.wait() != 0:
            raise NnUNetBoundaryError(f"{args[0]} failed (exit {process.returncode}); full log: {log_file}\n"
                                      + ''.join(tail))
