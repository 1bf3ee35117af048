"""Mixed-precision training on the CPU: nnU-Net's own AMP, in bfloat16.

nnU-Net trains in mixed precision on CUDA (``train_step`` and ``validation_step`` run the network and the loss
under ``torch.autocast`` to float16, with a gradient scaler) and in float32 everywhere else. On CPUs with
bfloat16 matrix units (Intel AMX, AVX-512 BF16) autocast to bfloat16 runs the 3D convolutions in oneDNN's
bfloat16 kernels: nnU-Net's 32-256 PlainConvUNet trains a 48^3 batch of 2 in 0.72 s instead of 2.08 s per step
on 2 cores of a Xeon with AMX (``benchmarks/cpu_mixed_precision``). bfloat16 keeps float32's exponent range,
so no gradient scaler is needed; parameters, gradients and optimizer state stay float32, as under nnU-Net's
AMP. The backward pass and the optimizer step run inside the context too (nnU-Net's step has no hook between
forward and backward): autocast casts only the forward ops on its lists, and the gradients are bit for bit
those of a backward pass outside it. Prediction (``nnUNetPredictor``, also nnU-Net's end-of-training
validation) is untouched and runs in float32. Without bfloat16 units oneDNN emulates bfloat16 (nnU-Net's
``train_step`` calls CPU autocast "slow as heck"): measure on your CPU first.
"""
import torch


def cpu_autocast(device: torch.device) -> torch.autocast:
    """Autocast to bfloat16 on the CPU; a no-op context on any other device (nnU-Net's CUDA AMP stays)."""
    return torch.autocast('cpu', dtype=torch.bfloat16, enabled=device.type == 'cpu')


class CpuMixedPrecision:
    """Trainer mixin (before ``nnUNetTrainer`` in the bases): nnU-Net's training and validation steps, as they
    are, under bfloat16 autocast when the trainer runs on the CPU."""

    def train_step(self, batch: dict) -> dict:
        with cpu_autocast(self.device):
            return super().train_step(batch)

    def validation_step(self, batch: dict) -> dict:
        with cpu_autocast(self.device):
            return super().validation_step(batch)
