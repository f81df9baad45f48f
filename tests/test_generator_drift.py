"""scripts/generator_drift.py: the collapse column finds a generator that puts one token everywhere."""

import importlib.util
import os

import torch

from mate_kd.tiny import build_tokenizer

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "generator_drift.py")


def _drift():
    spec = importlib.util.spec_from_file_location("generator_drift", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_collapse_counts_distinct_top_tokens_and_the_commonest_share():
    collapse = _drift().collapse
    tokenizer = build_tokenizer("bert", model_max_length=64)
    logits = torch.zeros(8, len(tokenizer))
    logits[torch.arange(8), torch.tensor([5, 5, 5, 5, 5, 5, 7, 9])] = 3.0
    token = tokenizer.convert_ids_to_tokens(5)
    assert collapse(logits.log_softmax(-1), tokenizer) == f"3 | {token!r} 75.0%"
    logits[:, 5] = 10.0  # collapsed: one token is the most likely everywhere
    assert collapse(logits.log_softmax(-1), tokenizer) == f"1 | {token!r} 100.0%"
