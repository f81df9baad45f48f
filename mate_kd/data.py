"""Tokenise once into flat arrays, batch with dynamic padding.

A split is stored as one int32 array of token ids plus offsets (no per-example tensors or
Python lists), so MNLI's 393k pairs stay small; batches are padded to their longest member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from .errors import DataError
from .tasks import Example, TaskSpec


@dataclass
class EncodedSplit(Dataset):
    """Token ids, segment ids and labels of one split, flat."""

    ids: np.ndarray
    segments: Optional[np.ndarray]
    offsets: np.ndarray
    labels: Optional[np.ndarray]
    guids: list[str]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> list[int]:
        return np.diff(self.offsets).tolist()

    def __getitem__(self, i: int) -> dict:
        a, b = self.offsets[i], self.offsets[i + 1]
        item = {"input_ids": self.ids[a:b].tolist(), "idx": i}
        if self.segments is not None:
            item["token_type_ids"] = self.segments[a:b].tolist()
        if self.labels is not None:
            item["labels"] = self.labels[i].item()
        return item

    def select(self, n: int) -> "EncodedSplit":
        """The first n examples."""
        n = min(n, len(self))
        end = self.offsets[n]
        return EncodedSplit(self.ids[:end], None if self.segments is None else self.segments[:end],
                            self.offsets[: n + 1], None if self.labels is None else self.labels[:n], self.guids[:n])


def encode(examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase, max_length: int,
           task: TaskSpec, label_order: Optional[Sequence[str]] = None, *, with_labels: bool = True,
           chunk: int = 10_000) -> EncodedSplit:
    """Tokenise every example once; labels become indices in `label_order` (the model's order)."""
    if not examples:
        raise DataError("No examples to encode: the data file is empty or every row was filtered out.")
    ids, segments, lengths = [], [], []
    pair = examples[0].text_b is not None
    for start in range(0, len(examples), chunk):
        part = examples[start:start + chunk]
        enc = tokenizer([e.text_a for e in part], [e.text_b or "" for e in part] if pair else None,
                        truncation=True, max_length=max_length, return_token_type_ids=True,
                        return_attention_mask=False)
        for row, seg in zip(enc["input_ids"], enc["token_type_ids"]):
            ids.append(np.asarray(row, dtype=np.int32))
            segments.append(np.asarray(seg, dtype=np.int8))
            lengths.append(len(row))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat_segments = np.concatenate(segments)
    labels = _label_array(examples, task, label_order) if with_labels else None
    return EncodedSplit(np.concatenate(ids), flat_segments if flat_segments.any() else None, offsets, labels,
                        [e.guid for e in examples])


def _label_array(examples: Sequence[Example], task: TaskSpec, label_order: Optional[Sequence[str]]) -> np.ndarray:
    if task.is_regression:
        return np.asarray([float(e.label) for e in examples], dtype=np.float32)
    order = list(label_order or task.labels)
    index = {name: i for i, name in enumerate(order)}
    out = np.empty(len(examples), dtype=np.int64)
    for i, e in enumerate(examples):
        if e.label not in index:
            raise DataError(f"Example {e.guid} has label {e.label!r}, not one of the task's labels {order}. "
                            "Fix the data or pass the right --task_name / --label_list.")
        out[i] = index[e.label]
    return out


def make_loader(split: EncodedSplit, tokenizer: PreTrainedTokenizerBase, batch_size: int, *, train: bool,
                seed: int = 0, group_by_length: bool = False, pad_to_length: Optional[int] = None,
                num_workers: int = 0, order: Optional[Sequence[int]] = None,
                collate_fn: Optional[Callable] = None) -> DataLoader:
    """Batches padded to their longest example (or to `pad_to_length`), optionally length-grouped.

    `order` (evaluation only) visits the examples in that order instead of 0, 1, 2, ...;
    `collate_fn` replaces the padding collator (pretrain-generator masks in its collator).
    """
    collate = collate_fn or DataCollatorWithPadding(tokenizer, padding="max_length" if pad_to_length else "longest",
                                                    max_length=pad_to_length, return_tensors="pt")
    generator = torch.Generator().manual_seed(seed)
    if train and group_by_length:
        sampler = LengthGroupedSampler(batch_size, lengths=split.lengths(), generator=generator)
    elif train:
        sampler = RandomSampler(split, generator=generator)
    elif order is not None:
        sampler = order
    else:
        sampler = SequentialSampler(split)
    # A DataLoader draws a seed for its workers each time it is iterated: from its own generator here, never from
    # the global RNG, so that when and how often a run evaluates cannot change the masks and noise it trains with.
    worker_seeds = torch.Generator().manual_seed(seed + 1)
    return DataLoader(split, batch_size=batch_size, sampler=sampler, collate_fn=collate,
                      num_workers=num_workers, drop_last=False, generator=worker_seeds)
