"""scripts/gpu_check.py on CPU with tiny settings (its CUDA path needs a GPU), and the meta-device
activation measure it reports."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from helpers import tiny_network
from nnunet_boundary.network.activation_memory import saved_activation_bytes

SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'gpu_check.py'


def test_gpu_check_runs_on_cpu_and_prints_one_json_line_of_figures(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), '--device', 'cpu', '--template', 'cpu_smoke', '--patch',
                             '32', '--iterations', '2', '--predict-shape', '40', '40', '40'],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures['batch'] == 2 and figures['patch'] == [32, 32, 32] and not figures['amp']
    assert figures['boundary']['network'] == 'BoundaryAwareUNet' and figures['baseline']['network'] == 'PlainConvUNet'
    for name in ('boundary', 'baseline'):
        assert figures[name]['iteration_s_median'] > 0 and figures[name]['fp32_saved_activations_gib'] > 0
    assert figures['predict']['logits_shape'] == [2, 40, 40, 40]
    assert 'skipped' in figures['ddp']


def test_gpu_check_refuses_more_gpus_than_visible():
    result = subprocess.run([sys.executable, str(SCRIPT), '--device', 'cpu', '--num-gpus', '64'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and 'only 0 GPU(s) visible' in result.stderr


def test_meta_device_measure_equals_the_saved_tensors_of_a_real_forward():
    network, shape = tiny_network(3), (2, 1, 16, 16, 16)
    real = {}

    def pack(tensor):
        real[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        network(torch.randn(*shape, requires_grad=True))
    assert saved_activation_bytes(network, shape) == sum(real.values())
    # the weights the convolutions keep do not depend on the batch; the activations grow linearly with it
    per_sample = [saved_activation_bytes(network, (b, *shape[1:])) for b in (1, 2, 3)]
    assert per_sample[2] - per_sample[1] == per_sample[1] - per_sample[0] > 0
    assert all(p.device.type == 'cpu' for p in network.parameters())
