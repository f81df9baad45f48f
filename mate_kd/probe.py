"""Looking inside the adversary: is the text of the generator being trained harder for the student than
the text of the generator it started from?

At each evaluation the probe perturbs a fixed set of training examples twice, with the current
generator and with a frozen copy of the initial one, using the same masks and the same random
numbers for both, and reports D(S(x'), T(x')) for each, D(S(x), T(x)) on the clean text, and the
share of masked tokens whose sample differs from the original token. It runs in eval mode under a
forked RNG, so training draws exactly the numbers it would draw without the probe.
"""

from __future__ import annotations

from typing import Optional

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from .objectives import MateKD


class AdversaryProbe:
    """D(S(x'), T(x')) for x' from the current and from the frozen generator, on fixed batches."""

    def __init__(self, objective: MateKD, batches: list[dict[str, Tensor]], frozen: nn.Module,
                 accelerator: Accelerator, seed: int = 0) -> None:
        self.objective, self.batches, self.frozen = objective, batches, frozen.eval().requires_grad_(False)
        self.accelerator, self.seed = accelerator, seed

    def _divergence(self, batch: dict[str, Tensor], ids: Tensor) -> Tensor:
        o = self.objective
        s = o._logits(o.bare_student, batch, o.bare_student, input_ids=ids)
        t = o._logits(o.teacher, batch, o.teacher, input_ids=ids)
        return o._d(s.float(), t.float())

    def _perturbed(self, generator: nn.Module) -> dict[str, float]:
        """Mean D(S(x'), T(x')) and share of masked tokens replaced, with the probe's own fixed random numbers."""
        device = self.accelerator.device
        d, replaced, masked, rows = 0.0, 0, 0, 0
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            for batch in self.batches:
                mask, ids = self.objective.perturbed_ids(batch, generator)
                d += len(ids) * float(self._divergence(batch, ids))
                replaced += int((ids != batch["input_ids"])[mask].sum())
                masked, rows = masked + int(mask.sum()), rows + len(ids)
        return {"d_adv": d / rows, "replaced": replaced / max(masked, 1), "masked_tokens": masked}

    @torch.no_grad()
    def measure(self) -> dict[str, float]:
        o = self.objective
        models = [o.bare_student, o.bare_generator]
        modes = [m.training for m in models]
        for m in models:
            m.eval()
        try:
            with self.accelerator.autocast():
                current, frozen = self._perturbed(o.bare_generator), self._perturbed(self.frozen)
                rows = sum(len(b["input_ids"]) for b in self.batches)
                clean = sum(len(b["input_ids"]) * float(self._divergence(b, b["input_ids"])) for b in self.batches)
        finally:
            for m, mode in zip(models, modes):
                m.train(mode)
        return {"d_adv_current": current["d_adv"], "d_adv_frozen": frozen["d_adv"], "d_clean": clean / rows,
                "replaced_current": current["replaced"], "replaced_frozen": frozen["replaced"],
                "masked_tokens": current["masked_tokens"], "examples": rows}


def probe_batches(loader, device: torch.device, limit: int) -> list[dict[str, Tensor]]:
    """The first `limit` examples of an (unshuffled) loader, on `device`."""
    out, seen = [], 0
    for batch in loader:
        take = min(len(batch["input_ids"]), limit - seen)
        out.append({k: v[:take].to(device) for k, v in batch.items()})
        seen += take
        if seen >= limit:
            break
    return out


def maybe_probe(objective: MateKD, frozen: Optional[nn.Module], loader, accelerator: Accelerator,
                samples: int) -> Optional[AdversaryProbe]:
    """The probe when asked for (samples > 0) and there is an adversary to look at."""
    if samples <= 0 or objective.bare_generator is None or objective.teacher is None:
        return None
    return AdversaryProbe(objective, probe_batches(loader, accelerator.device, samples), frozen or
                          objective.bare_generator, accelerator)
