"""One model's speed and memory, measured in a fresh Python process: :func:`run_worker` starts this module
with the keyword arguments of :func:`measure_model` as JSON and reads its result, one JSON line, back."""
import argparse
import json
import os
import subprocess
import sys
from typing import Dict, Optional

import torch

from nnunet_boundary.benchmark.preprocessed_trainer import load_trainer
from nnunet_boundary.benchmark.timing import count_parameters, forward_flops, peak_memory_bytes, time_calls
from nnunet_boundary.errors import NnUNetBoundaryError


def measure_model(trainer_name: str, dataset_id: int, fold: int, device: str, steps: int, warmup: int,
                  predict_case: str, predict_repeats: int, plans: Optional[dict] = None) -> dict:
    """Everything about one model, in this process (run it in a fresh one: see
    :mod:`nnunet_boundary.benchmark.speed`)."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    device = torch.device(device)
    if device.type == 'cpu':
        torch.set_num_threads(os.cpu_count())
    trainer = load_trainer(trainer_name, dataset_id, fold, device, plans)
    loader, _ = trainer.get_dataloaders()
    batch = next(loader)
    step_times = time_calls(lambda: trainer.train_step(batch), steps, warmup, device)

    trainer.set_deep_supervision_enabled(False)
    trainer.network.eval()
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=True, device=device, verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager, None,
                                    trainer.dataset_json, trainer.__class__.__name__, None)
    dataset, _ = trainer.get_tr_and_val_datasets()
    data = torch.from_numpy(dataset.load_case(predict_case)[0][:])
    predict_times = time_calls(lambda: predictor.predict_sliding_window_return_logits(data),
                               predict_repeats, 1, device)
    patch = list(trainer.configuration_manager.patch_size)
    return {
        'trainer': trainer_name, 'network': type(trainer.network).__name__, 'device': str(device),
        'patch_size': patch, 'batch_size': trainer.batch_size, 'predict_case': predict_case,
        'predict_case_shape': list(data.shape[1:]),
        'step_seconds': step_times, 'predict_seconds': predict_times,
        'parameters': count_parameters(trainer.network),
        'forward_flops_per_patch': forward_flops(trainer.network, [1, data.shape[0], *patch], device),
        **peak_memory_bytes(device),
    }


def run_worker(spec: dict, env: Dict[str, str]) -> dict:
    """:func:`measure_model` in a fresh Python process."""
    result = subprocess.run([sys.executable, '-m', 'nnunet_boundary.benchmark.speed_worker', json.dumps(spec)],
                            env=dict(env, nnUNet_n_proc_DA='0', nnUNet_compile='false'),
                            capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise NnUNetBoundaryError(f"speed measurement of {spec['trainer_name']} failed (exit {result.returncode}):\n"
                                  f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='internal: measure one model (see run_worker)')
    parser.add_argument('spec', help='JSON keyword arguments of measure_model')
    print(json.dumps(measure_model(**json.loads(parser.parse_args().spec))), flush=True)
