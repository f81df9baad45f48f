"""MATE-KD steps structured the way the authors' released code structures them (benchmark baseline only).

The released training loop computes the same mathematics as `mate_kd` but spends its time
differently, and this module reproduces that structure so the speed-up of the package is a
measured ratio, not a claim:

* every batch is padded to `max_length` (128);
* the generator's MLM head runs over the full vocabulary at every position;
* the straight-through Gumbel sample is a dense (batch, length, vocab) one-hot, multiplied by
  the teacher's and the student's embedding matrices at every position;
* every batch (generator or student) runs generator -> x' -> teacher(x'), student(x');
  a student batch then runs teacher(x) and student(x) as separate passes;
* nothing is wrapped in no_grad: the student step backpropagates through the teacher's graph
  into the generator (whose gradients accumulate unused until the next generator step), and the
  generator step computes the student's parameter gradients too (cleared before use).

The teacher is frozen (eval mode, no parameter gradients), as in the released code. This is not
part of the package and is not meant for training.
"""

from __future__ import annotations

import inspect
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import get_linear_schedule_with_warmup


def pad_batch(batch: dict[str, Tensor], length: int, pad_token_id: int) -> dict[str, Tensor]:
    """The same examples padded to `length`, as the released collate function pads every batch."""
    out = {}
    for key, value in batch.items():
        if value.dim() != 2:
            out[key] = value
            continue
        fill = pad_token_id if key == "input_ids" else 0
        extra = length - value.shape[1]
        out[key] = F.pad(value, (0, extra), value=fill) if extra > 0 else value[:, :length]
    return out


def soft_cross_entropy(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """-sum_c softmax(t)_c log_softmax(s)_c, averaged over the batch (the released divergence, tau = 1)."""
    return -(F.softmax(teacher_logits, -1) * F.log_softmax(student_logits, -1)).sum(-1).mean()


def dense_gumbel_one_hot(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Straight-through Gumbel-softmax over every position and the whole vocabulary, as released."""
    uniform = torch.rand_like(logits)
    noise = -torch.log(-torch.log(uniform + 1e-20) + 1e-20)
    soft = F.softmax((F.log_softmax(logits, -1) + noise) / temperature, -1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return (hard - soft).detach() + soft


class NaiveReference:
    """Generator and student steps with the released code's structure, on the package's models."""

    def __init__(self, teacher: nn.Module, student: nn.Module, generator: nn.Module, special_ids: Tensor,
                 mask_token_id: int, pad_token_id: int, max_length: int = 128, mask_prob: float = 0.3,
                 learning_rate: float = 2e-5, generator_learning_rate: float = 5e-7, max_grad_norm: float = 5.0,
                 total_steps: int = 10_000) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.student = student.train().requires_grad_(True)
        self.generator = generator.train().requires_grad_(True)
        self.special_ids, self.mask_token_id, self.pad_token_id = special_ids, mask_token_id, pad_token_id
        self.max_length, self.mask_prob, self.max_grad_norm = max_length, mask_prob, max_grad_norm
        self.optimizer = torch.optim.Adam(student.parameters(), lr=learning_rate, eps=1e-8)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, 0, total_steps)
        self.generator_optimizer = torch.optim.AdamW(generator.parameters(), lr=generator_learning_rate, eps=1e-8,
                                                     weight_decay=0.0)
        self._takes_segments = {id(m): "token_type_ids" in inspect.signature(m.forward).parameters
                                for m in (teacher, student, generator)}

    def _call(self, model: nn.Module, batch: dict[str, Tensor], **inputs: Tensor) -> Tensor:
        if "token_type_ids" in batch and self._takes_segments[id(model)]:
            inputs["token_type_ids"] = batch["token_type_ids"]
        return model(attention_mask=batch["attention_mask"], **inputs).logits

    def choose_mask(self, batch: dict[str, Tensor]) -> Tensor:
        """Bernoulli(p) over real non-special tokens, as a float (batch, length) mask."""
        ids = batch["input_ids"]
        maskable = batch["attention_mask"].bool() & ~torch.isin(ids, self.special_ids.to(ids.device))
        return (maskable & (torch.rand(ids.shape, device=ids.device) < self.mask_prob)).float()

    def sample_one_hot(self, batch: dict[str, Tensor], mask: Tensor) -> Tensor:
        """Generator over the masked text, full-vocabulary head everywhere, dense straight-through sample."""
        masked_ids = batch["input_ids"].masked_fill(mask.bool(), self.mask_token_id)
        return dense_gumbel_one_hot(self._call(self.generator, batch, input_ids=masked_ids))

    def _embeddings(self, model: nn.Module, ids: Tensor, mask: Tensor, one_hot: Tensor) -> Tensor:
        weight = model.get_input_embeddings().weight
        m = mask.unsqueeze(-1)
        return torch.matmul(one_hot, weight) * m + model.get_input_embeddings()(ids) * (1 - m)

    def adversarial_logits(self, batch: dict[str, Tensor], mask: Tensor, one_hot: Tensor) -> tuple[Tensor, Tensor]:
        """(student, teacher) logits on x' built from one-hot @ E at every position."""
        ids = batch["input_ids"]
        s = self._call(self.student, batch, inputs_embeds=self._embeddings(self.student, ids, mask, one_hot))
        t = self._call(self.teacher, batch, inputs_embeds=self._embeddings(self.teacher, ids, mask, one_hot))
        return s, t

    def _adversarial_divergence(self, batch: dict[str, Tensor]) -> Tensor:
        mask = self.choose_mask(batch)
        s_adv, t_adv = self.adversarial_logits(batch, mask, self.sample_one_hot(batch, mask))
        return soft_cross_entropy(s_adv, t_adv)

    def pad(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return pad_batch(batch, self.max_length, self.pad_token_id)

    def generator_step(self, batch: dict[str, Tensor]) -> Tensor:
        """Maximisation step on a batch already padded by `pad`."""
        loss = -self._adversarial_divergence(batch)
        self.generator_optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.max_grad_norm)
        self.generator_optimizer.step()
        return loss.detach()

    def student_step(self, batch: dict[str, Tensor]) -> Tensor:
        """Minimisation step on a batch already padded by `pad`: 1/3 CE + 1/3 D(x') + 1/3 D(x)."""
        adversarial = self._adversarial_divergence(batch)
        t = self._call(self.teacher, batch, input_ids=batch["input_ids"])
        s = self._call(self.student, batch, input_ids=batch["input_ids"])
        loss = (F.cross_entropy(s, batch["labels"]) + adversarial + soft_cross_entropy(s, t)) / 3
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()
