"""Prototypes of optimisations not (yet) in the package, to measure their gain before building them.

* `categorical_sample_ids`: the package's earlier sampler of x' (`Categorical.sample`, one random
  number per vocabulary entry), kept to measure its replacement (inverse CDF) in one run.
"""

from __future__ import annotations

from contextlib import contextmanager
from types import ModuleType
from typing import Callable, Iterator

import torch
from torch import Tensor


def categorical_sample_ids(logits: Tensor) -> Tensor:
    """Token ids drawn from softmax(logits) by `torch.distributions.Categorical` (the earlier sampler)."""
    if logits.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=logits.device)
    return torch.distributions.Categorical(logits=logits.float()).sample()


@contextmanager
def sampler(module: ModuleType, sample_ids: Callable[[Tensor], Tensor]) -> Iterator[None]:
    """Use `sample_ids` as `module.sample_ids` inside the block (the objective looks it up at each step)."""
    previous = module.sample_ids
    module.sample_ids = sample_ids
    try:
        yield
    finally:
        module.sample_ids = previous
