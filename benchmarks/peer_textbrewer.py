"""Plain KD through TextBrewer (a peer toolkit, `pip install textbrewer`), on the benchmark's own models and batches.

TextBrewer's own training loop runs (`BasicDistiller.train` inside `with distiller:`, as its
documentation shows: teacher in eval mode, student in train mode): teacher forward under
no_grad, student forward, soft cross-entropy + hard-label loss, backward, clipping, optimizer
and scheduler steps, its TensorBoard loss logging. The loss is the package's kd loss: 1/2
CE(S(x), y) + 1/2 soft-CE(S(x), T(x)) at temperature 1 (tests/test_bench_smoke.py checks it).
Steps are timed between consecutive calls of the distiller's per-step `write_loss` (made right
after each forward), so the checkpoint TextBrewer writes after its last step is not timed. With
`cache=True`, TextBrewer's `is_caching_logits` computes the teacher's logits once before
training, like the package's teacher cache.
"""

from __future__ import annotations

import tempfile
import time
from typing import Callable, Optional

import torch
from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

#: What the models take from a package batch (the package adds "idx", its row in the teacher cache).
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels")


def _textbrewer():
    try:
        import textbrewer
    except ImportError:
        raise SystemExit("the textbrewer-* modes need TextBrewer: pip install textbrewer") from None
    return textbrewer


def model_batch(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}


def kd_distiller(teacher: torch.nn.Module, student: torch.nn.Module, device: str, out_dir: str, cache: bool = False,
                 on_step: Optional[Callable[[], None]] = None):
    """TextBrewer's BasicDistiller set up as the package's kd (1/2 hard-label CE + 1/2 soft-CE, T = 1)."""
    textbrewer = _textbrewer()

    class Distiller(textbrewer.BasicDistiller):
        def write_loss(self, total_loss, writer_step, losses_dict=None):
            super().write_loss(total_loss, writer_step, losses_dict)
            if on_step is not None:
                on_step()

    return Distiller(textbrewer.TrainingConfig(device=device, output_dir=out_dir, log_dir=out_dir, ckpt_steps=10**9),
                     textbrewer.DistillationConfig(temperature=1.0, kd_loss_type="ce", kd_loss_weight=0.5,
                                                   hard_label_weight=0.5, is_caching_logits=cache),
                     teacher, student,
                     adaptor_T=lambda batch, out: {"logits": out.logits},
                     adaptor_S=lambda batch, out: {"logits": out.logits, "losses": out.loss})


def time_textbrewer_kd(teacher_dir: str, student_dir: str, batches: list[dict], *, max_grad_norm: float,
                       warmup: int, device: str, cache: bool,
                       make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]) -> list[float]:
    """Seconds of each TextBrewer KD step on batches[warmup:] (batches[:warmup] run untimed first)."""
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).to(device)
    student = AutoModelForSequenceClassification.from_pretrained(student_dir).to(device)
    stamps: list[float] = []

    def stamp() -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    data = [model_batch(b) for b in batches]
    data.append(data[-1])  # one more step, so the last timed step ends at a write_loss too
    optimizer = make_optimizer(student)
    schedule = {"num_warmup_steps": 0, "num_training_steps": len(data)}
    with tempfile.TemporaryDirectory(prefix="textbrewer_") as out:
        distiller = kd_distiller(teacher, student, device, out, cache, stamp)
        with distiller:
            if cache:  # TextBrewer caches logits only in its epoch loop (which shuffles the cached batches)
                distiller.train(optimizer, data, num_epochs=1, scheduler_class=get_linear_schedule_with_warmup,
                                scheduler_args=schedule, max_grad_norm=max_grad_norm)
            else:
                distiller.train(optimizer, data, num_steps=len(data), scheduler_class=get_linear_schedule_with_warmup,
                                scheduler_args=schedule, max_grad_norm=max_grad_norm)
        distiller.tb_writer.close()
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    return steps[warmup:]
