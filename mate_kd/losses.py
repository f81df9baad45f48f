"""The divergence D between student and teacher, and the supervised task loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def divergence(student_logits: Tensor, teacher_logits: Tensor, kind: str = "soft_ce",
               temperature: float = 1.0) -> Tensor:
    """D(s, t), averaged over the batch.

    soft_ce (as released): -sum_c softmax(t/tau)_c log_softmax(s/tau)_c, which is KL plus the
    teacher's entropy (same student gradient, different value). kl: KL(teacher || student).
    mse: mean squared error between logits (used for regression whatever `kind` says).
    """
    s, t = student_logits.float(), teacher_logits.float()
    if kind == "mse" or s.shape[-1] == 1:
        return F.mse_loss(s, t)
    log_p_s = F.log_softmax(s / temperature, dim=-1)
    if kind == "soft_ce":
        return -(F.softmax(t / temperature, dim=-1) * log_p_s).sum(-1).mean()
    if kind == "kl":
        return F.kl_div(log_p_s, F.log_softmax(t / temperature, dim=-1), log_target=True, reduction="batchmean")
    raise ValueError(f"unknown divergence {kind!r}; use soft_ce, kl or mse")


def task_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy against gold labels, or MSE against gold scores for regression."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.float().squeeze(-1), labels.float())
    return F.cross_entropy(logits.float(), labels)
