"""What the speed benchmark measures of one model, in the process that runs it: seconds per call, parameters,
FLOPs of one forward pass, peak memory."""
import resource
import time
from typing import Callable, Dict, List, Sequence

import torch


def time_calls(fn: Callable[[], object], n: int, warmup: int, device: torch.device) -> List[float]:
    """Seconds per call of ``fn`` for ``n`` calls after ``warmup`` untimed ones."""
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        sync()
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return times


def count_parameters(network: torch.nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def forward_flops(network: torch.nn.Module, input_shape: Sequence[int], device: torch.device) -> int:
    """FLOPs of one inference forward pass on an input of ``input_shape`` (batch included). The counter
    knows PyTorch's generic convolution, so oneDNN's direct calls (OneDNNConv3d) are switched off here."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(tuple(input_shape), device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False), counter:
        network(x)
    return int(counter.get_total_flops())


def peak_memory_bytes(device: torch.device) -> Dict[str, int]:
    """Peak RSS of this process (Linux reports KiB) and, on CUDA, the peak allocated memory."""
    peak = {'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if device.type == 'cuda':
        peak['cuda_max_allocated_bytes'] = int(torch.cuda.max_memory_allocated(device))
    return peak
