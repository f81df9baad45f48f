"""The two MATE-KD objectives, written as in the paper (SPEC.md).

Maximisation (generator step):  L_G = -D(S(x'), T(x')), x' built in embedding space from a
straight-through Gumbel sample so the gradient reaches the generator.
Minimisation (student step):    L_S = w_ce CE(S(x), y) + w_adv D(S(x'), T(x')) + w_kd D(S(x), T(x)),
x' built as token ids by the current generator, without gradients through T or G.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from .losses import divergence, task_loss
from .models import forward_inputs
from .perturb import (choose_mask, forbid, masked_lm_logits, never_sampled, perturbed_embeddings, perturbed_ids,
                      sample_ids, straight_through_sample)


@dataclass
class Settings:
    mask_prob: float = 0.3
    gumbel_temperature: float = 1.0
    kd_temperature: float = 1.0
    divergence: str = "soft_ce"
    ce_weight: float = 1 / 3
    kd_weight: float = 1 / 3
    adv_weight: float = 1 / 3
    forbid_special_tokens: bool = False


class MateKD:
    """Teacher, student and generator with the two objectives.

    `student` and `generator` may be wrappers (DDP); each step calls the wrapper of the model it
    updates and the bare module of the one it only reads, so gradient synchronisation happens
    exactly for the model being trained.
    """

    def __init__(self, student: nn.Module, teacher: Optional[nn.Module], generator: Optional[nn.Module],
                 settings: Settings, special_ids: Tensor, mask_token_id: Optional[int],
                 unwrap=lambda m: m, teacher_cache: Optional[Tensor] = None) -> None:
        self.student, self.teacher, self.generator = student, teacher, generator
        self.teacher_cache = teacher_cache  # T(x) per training example (row = batch["idx"]), or None
        self.bare_student = unwrap(student)
        self.bare_generator = unwrap(generator) if generator is not None else None
        self.settings, self.special_ids, self.mask_token_id = settings, special_ids, mask_token_id
        self.never_sampled = never_sampled(special_ids, settings.forbid_special_tokens, self.bare_student, teacher)
        self._inputs = {id(m): forward_inputs(m) for m in (self.bare_student, teacher, self.bare_generator)
                        if m is not None}

    def _extra(self, model: nn.Module, batch: dict[str, Tensor], rows: int) -> dict[str, Tensor]:
        """token_type_ids, repeated to `rows`, for models that take them (DistilBERT does not). A model this
        objective was not built with (the adversary probe's frozen generator) is looked at each time."""
        accepted = self._inputs.get(id(model))
        if "token_type_ids" in batch and "token_type_ids" in (forward_inputs(model) if accepted is None else accepted):
            segments = batch["token_type_ids"]
            return {"token_type_ids": segments.repeat(rows // len(segments), 1)}
        return {}

    def _logits(self, model: nn.Module, batch: dict[str, Tensor], bare: nn.Module, **inputs: Tensor) -> Tensor:
        rows = len(next(iter(inputs.values())))
        return model(attention_mask=batch["attention_mask"].repeat(rows // len(batch["attention_mask"]), 1),
                     **inputs, **self._extra(bare, batch, rows)).logits

    def _mask_and_fill(self, generator: nn.Module, batch: dict[str, Tensor],
                       bare: Optional[nn.Module] = None) -> tuple[Tensor, Tensor]:
        """Mask a fresh p of the tokens and return (mask, generator logits at the masked positions).

        `bare` is the unwrapped `generator` (default: the generator being trained)."""
        bare = self.bare_generator if bare is None else bare
        ids, attention = batch["input_ids"], batch["attention_mask"]
        mask = choose_mask(ids, attention, self.special_ids, self.settings.mask_prob)
        masked = ids.masked_fill(mask, self.mask_token_id)
        logits = masked_lm_logits(generator, masked, attention, mask, bare, **self._extra(bare, batch, len(ids)))
        return mask, forbid(logits, self.never_sampled)

    def _d(self, s: Tensor, t: Tensor) -> Tensor:
        return divergence(s, t, self.settings.divergence, self.settings.kd_temperature)

    def generator_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """-D(S(x'), T(x')) with x' = m * (onehot @ E) + (1 - m) * E[x]; gradient flows to G only."""
        ids = batch["input_ids"]
        mask, logits = self._mask_and_fill(self.generator, batch)
        one_hot = straight_through_sample(logits, self.settings.gumbel_temperature)
        s, t = self.bare_student, self.teacher
        s_adv = self._logits(s, batch, s, inputs_embeds=perturbed_embeddings(s, ids, mask, one_hot))
        t_adv = self._logits(t, batch, t, inputs_embeds=perturbed_embeddings(t, ids, mask, one_hot))
        return -self._d(s_adv, t_adv)

    def _teacher_logits(self, batch: dict[str, Tensor], ids: Tensor) -> Tensor:
        """T on x (and x' after it); T(x) comes from the cache when there is one (the teacher is frozen)."""
        n = len(batch["input_ids"])
        if self.teacher_cache is None or "idx" not in batch:
            return self._logits(self.teacher, batch, self.teacher, input_ids=ids)
        clean = self.teacher_cache[batch["idx"]]
        if len(ids) == n:
            return clean
        return torch.cat([clean, self._logits(self.teacher, batch, self.teacher, input_ids=ids[n:]).float()])

    @torch.no_grad()
    def perturbed_ids(self, batch: dict[str, Tensor], generator: Optional[nn.Module] = None) -> tuple[Tensor, Tensor]:
        """(mask, x' as token ids) for a batch, sampled from `generator` (default: the one being trained)."""
        generator = self.bare_generator if generator is None else generator
        mask, logits = self._mask_and_fill(generator, batch, generator)
        return mask, perturbed_ids(batch["input_ids"], mask, sample_ids(logits))

    def student_loss(self, batch: dict[str, Tensor],
                     stats: Optional[dict[str, Tensor]] = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted CE on x, D on x' and D on x; one student pass over x and x' together.

        With `stats`, the masked tokens (`masked`) and those the generator replaced by another token (`replaced`)
        are added into it, as tensors: counting them needs no device sync."""
        w, ids, n = self.settings, batch["input_ids"], len(batch["input_ids"])
        with torch.no_grad():
            if w.adv_weight > 0:
                mask, perturbed = self.perturbed_ids(batch)
                if stats is not None:
                    stats["masked"] = stats.get("masked", 0) + mask.sum()
                    stats["replaced"] = stats.get("replaced", 0) + ((perturbed != ids) & mask).sum()
                ids = torch.cat([ids, perturbed])
            if w.kd_weight > 0 or w.adv_weight > 0:
                t = self._teacher_logits(batch, ids)
        s = self._logits(self.student, batch, self.bare_student, input_ids=ids)
        terms = {"ce": task_loss(s[:n], batch["labels"])}
        if w.kd_weight > 0:
            terms["kd"] = self._d(s[:n], t[:n])
        if w.adv_weight > 0:
            terms["adv"] = self._d(s[n:], t[n:])
        weights = {"ce": w.ce_weight, "kd": w.kd_weight, "adv": w.adv_weight}
        return sum(weights[k] * v for k, v in terms.items()), terms
