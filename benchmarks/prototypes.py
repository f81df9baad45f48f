"""Prototypes of optimisations not (yet) in the package, to measure their gain before building them.

* `compile_models`: `nn.Module.compile` in place on the three models (same objects, so the
  package's objective and update functions run unchanged).
* `fused_adamw`: the run's AdamW settings with `fused=True` (one kernel over all parameters
  instead of a Python loop of per-tensor ops; supported on CPU and CUDA).
"""

from __future__ import annotations

import torch
from transformers import get_linear_schedule_with_warmup

from mate_kd.loop import Run
from mate_kd.objectives import MateKD


def compile_models(objective: MateKD) -> None:
    """Compile teacher, student and generator in place (dynamic shapes: batches are dynamically padded)."""
    for model in (objective.teacher, objective.bare_student, objective.bare_generator):
        if model is not None:
            model.compile(dynamic=True)


def fused_adamw(run: Run) -> tuple[torch.optim.Optimizer, object, torch.optim.Optimizer | None]:
    """Student optimizer, its schedule and the generator optimizer of `run`, rebuilt with fused=True."""
    a = run.args
    student = torch.optim.AdamW(run.objective.bare_student.parameters(), lr=a.learning_rate, eps=a.adam_epsilon,
                                weight_decay=a.weight_decay, fused=True)
    schedule = get_linear_schedule_with_warmup(student, a.warmup_steps, run.total_updates)
    generator = None
    if run.generator_optimizer is not None:
        generator = torch.optim.AdamW(run.objective.bare_generator.parameters(), lr=a.generator_learning_rate,
                                      weight_decay=0.0, fused=True)
    return student, schedule, generator
