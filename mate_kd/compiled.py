"""--torch_compile: which models are compiled, and why not all of each.

`nn.Module.compile` compiles in place, so parameter names, `save_pretrained`, checkpoints and the
objective's calls stay as they are. Batches are padded to their own length, so every shape is dynamic.
The student and the teacher are compiled whole. Of the generator only the encoder is: its MLM head
gets a forward pre-hook at every call (it runs only at the masked positions, perturb.py), and a hook
that comes and goes would make torch recompile the whole model at every step.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .errors import ConfigError


def check_backend(backend: str) -> None:
    """Refuse a backend torch does not have, before anything loads (torch would only fail at the first step)."""
    known = torch._dynamo.list_backends(exclude_tags=())
    if backend not in known:
        raise ConfigError(f"--torch_compile_backend {backend} is not a torch.compile backend: choose one of "
                          f"{', '.join(sorted(known))} (default inductor).")


def compile_models(student: nn.Module, teacher: Optional[nn.Module], generator: Optional[nn.Module],
                   backend: Optional[str] = None) -> None:
    """Compile the bare (unwrapped) models in place, before the first forward (`backend` None: inductor)."""
    options = {"dynamic": True, "backend": backend or "inductor"}
    student.compile(**options)
    if teacher is not None:
        teacher.compile(**options)
    if generator is not None:
        generator.base_model.compile(**options)
