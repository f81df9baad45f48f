"""Masked adversarial text: choose positions, let the generator fill them, build x'.

The generator's MLM head runs only at masked positions (a forward pre-hook on its output
embedding layer gathers those rows), which works for any masked LM in transformers because
every one of them ends in `get_output_embeddings()`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ModelError


def choose_mask(input_ids: Tensor, attention_mask: Tensor, special_ids: Tensor, p: float) -> Tensor:
    """Bernoulli(p) over real, non-special tokens; every chosen token becomes [MASK] (no 80/10/10)."""
    maskable = attention_mask.bool() & ~torch.isin(input_ids, special_ids)
    return maskable & (torch.rand(input_ids.shape, device=input_ids.device) < p)


@contextmanager
def _head_only_at(model: nn.Module, positions: Tensor) -> Iterator[list[int]]:
    """Gather the masked rows before the output embedding; yields [rows gathered] once the head has run."""
    gathered: list[int] = []

    def gather(_module: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        rows = inputs[0][positions]
        gathered.append(len(rows))
        return (rows,) + inputs[1:]

    handle = model.get_output_embeddings().register_forward_pre_hook(gather)
    try:
        yield gathered
    finally:
        handle.remove()


def masked_lm_logits(generator: nn.Module, masked_ids: Tensor, attention_mask: Tensor, mask: Tensor,
                     bare: nn.Module | None = None, **inputs: Tensor) -> Tensor:
    """Vocabulary logits at the masked positions only, shape (n_masked, vocab), row-major order.

    `bare` is the unwrapped model when `generator` is a DDP wrapper (the hook goes on its head). A model whose
    MLM head does not run through `get_output_embeddings()` would return every position's logits, and x' would
    silently take the wrong rows: that is refused (the row count is known without a device sync).
    """
    with _head_only_at(bare if bare is not None else generator, mask) as gathered:
        logits = generator(input_ids=masked_ids, attention_mask=attention_mask, **inputs).logits
    if gathered != [logits.shape[0]] or logits.dim() != 2:
        model = type(bare if bare is not None else generator).__name__
        raise ModelError(f"The generator ({model}) returned logits of shape {tuple(logits.shape)}, not one row per "
                         f"masked position ({gathered[0] if gathered else 'its output embedding never ran'}): its "
                         "MLM head does not run through get_output_embeddings(), so mate-kd cannot use it as a "
                         "generator. Use a transformers *ForMaskedLM model.")
    return logits


def never_sampled(special_ids: Tensor, forbid_special_tokens: bool, *readers: Optional[nn.Module]) -> Tensor:
    """Token ids the generator may never put into a masked slot.

    The pad id of every model that reads x' as ids, always: RoBERTa derives its position ids from
    `input_ids != pad`, so a sampled pad would shift every later position in the ids path (the student step)
    but not in the embedding path (the generator step). With `forbid_special_tokens`, every special token.
    """
    pads = {m.config.pad_token_id for m in readers
            if m is not None and getattr(m.config, "pad_token_id", None) is not None}
    ids = set(special_ids.tolist()) if forbid_special_tokens else set()
    return torch.tensor(sorted(ids | pads), dtype=torch.long, device=special_ids.device)


def forbid(logits: Tensor, token_ids: Tensor) -> Tensor:
    """Make the given tokens impossible to sample."""
    return logits.index_fill(-1, token_ids, float("-inf"))


def straight_through_sample(logits: Tensor, temperature: float) -> Tensor:
    """One-hot sample forward, soft Gumbel-softmax gradient backward (torch's hard=True)."""
    return F.gumbel_softmax(logits.float(), tau=temperature, hard=True)


def sample_ids(logits: Tensor) -> Tensor:
    """One token id per row, drawn from softmax(logits): the distribution of a hard Gumbel-softmax sample.

    Inverts each row's CDF with one uniform number, where `Categorical.sample` draws one random number
    per vocabulary entry (about 10x the time at a 30k vocabulary on CPU). The CDF is summed in float64
    so that tokens far below float32 resolution keep their probability; u lies in (0, total], so a
    token of probability 0 (forbidden, -inf logit) can never be chosen.
    """
    if logits.shape[0] == 0:  # nothing masked in this batch (short texts, small batches)
        return torch.empty(0, dtype=torch.long, device=logits.device)
    wide = torch.float32 if logits.device.type == "mps" else torch.float64  # MPS has no float64
    cdf = torch.softmax(logits.float(), dim=-1).to(wide).cumsum(dim=-1)
    u = (1.0 - torch.rand((logits.shape[0], 1), dtype=wide, device=logits.device)) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).squeeze(1)


def perturbed_ids(input_ids: Tensor, mask: Tensor, sampled: Tensor) -> Tensor:
    """x' as token ids: sampled tokens at masked positions, the original elsewhere."""
    return input_ids.masked_scatter(mask, sampled.to(input_ids.dtype))


def perturbed_embeddings(model: nn.Module, input_ids: Tensor, mask: Tensor, one_hot: Tensor) -> Tensor:
    """e' = m * (one_hot @ E) + (1 - m) * E[x], computing one_hot @ E only where m = 1."""
    embedding = model.get_input_embeddings()
    clean = embedding(input_ids)
    sampled = one_hot.to(embedding.weight.dtype) @ embedding.weight
    return clean.masked_scatter(mask.unsqueeze(-1), sampled.to(clean.dtype))
