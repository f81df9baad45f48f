"""The package's one optimizer factory, the learning-rate schedules of `train`, and the accelerator.

Every trainer in the package (the student and generator of `train`, and `pretrain-generator`)
builds its AdamW here, so `--optim` means the same everywhere.
"""

from __future__ import annotations

import warnings

import torch
from accelerate import Accelerator
from torch.optim.lr_scheduler import LRScheduler
from transformers import get_scheduler


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device,
                   optim: str = "adamw_torch_fused", eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW over the model's parameters; fused (one kernel over all tensors) where torch has the kernel.

    The fused kernel is the same algorithm; on CPU it cut the student's optimizer step from 0.40 s to
    0.04 s at the MiniLM scale (docs/performance.md). Built before accelerate moves the model, so the
    choice follows the device the parameters will live on.
    """
    params = list(model.parameters())
    fused = (optim == "adamw_torch_fused" and device.type in ("cpu", "cuda")
             and all(p.is_floating_point() for p in params))
    return torch.optim.AdamW(params, lr=lr, eps=eps, weight_decay=weight_decay, fused=fused or None)


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, warmup: int, updates: int) -> LRScheduler:
    """transformers' schedule `name` over `updates` optimizer steps, the first `warmup` of them warming up.

    The student's and the generator's schedules each count their own model's updates only (the released code
    counted the two together: README, "How this differs").
    """
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=updates)


def cpu_has_native(precision: str) -> bool:
    """Whether this CPU computes `precision` (bf16, fp16) in hardware (AVX512-BF16, AMX); else torch emulates it."""
    probe = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[precision]
    try:
        return bool(getattr(torch.ops.mkldnn, probe)())
    except (AttributeError, RuntimeError):
        return False


def warn_if_emulated(precision: str, on_cpu: bool) -> None:
    """Autocast on a CPU without native support is emulated and much slower than fp32: say so."""
    if on_cpu and precision != "no" and not cpu_has_native(precision):
        warnings.warn(f"--mixed_precision {precision} on a CPU without native {precision} (AVX512-BF16/AMX): "
                      "torch emulates it and every step runs many times slower than fp32 (20x on an AVX2 CPU, "
                      "docs/performance.md). Use --mixed_precision no on this machine.", stacklevel=3)


def make_accelerator(args) -> Accelerator:
    """The Accelerator for settings with `mixed_precision` and `no_cuda` (train's and pretrain-generator's).

    accelerate only sets up multi-process CPU (gloo) when told it runs on CPU, so say so without a GPU.
    """
    on_cpu = args.no_cuda or not torch.cuda.is_available()
    warn_if_emulated(args.mixed_precision, on_cpu)
    return Accelerator(mixed_precision=args.mixed_precision, cpu=on_cpu)
