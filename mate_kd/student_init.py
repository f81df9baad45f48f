"""`mate-kd make-student`: a shallower student initialised from a deeper model by layer selection.

DistilBERT initialised its student from every other layer of BERT; a student that starts
from the teacher family's own weights learns far faster than a random one. Here the chosen
encoder layers are kept (in the order given) together with the embeddings, the pooler and
any head. The layer stack is found generically (the nn.ModuleList of length
num_hidden_layers in the base model), so BERT, RoBERTa, DistilBERT and their relatives share
one code path.
"""

from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

import torch
import transformers
from torch import nn
from transformers import AutoModel, AutoModelForSequenceClassification, PreTrainedModel

from .checkpoint import save_model
from .errors import ConfigError, ModelError
from .models import check_model_dir, load_tokenizer


def num_layers(model: PreTrainedModel) -> int:
    """The encoder depth from the config (`num_hidden_layers`, or an alias of it such as DistilBERT's)."""
    depth = getattr(model.config, "num_hidden_layers", None)
    if not isinstance(depth, int) or depth < 1:
        raise ModelError(f"{type(model).__name__} has no num_hidden_layers in its config: layer selection needs a "
                         "BERT- or RoBERTa-family encoder.")
    return depth


def find_layer_list(model: PreTrainedModel) -> nn.ModuleList:
    """The encoder's stack of layers: the one outermost nn.ModuleList of length num_hidden_layers."""
    depth = num_layers(model)
    candidates = {name: m for name, m in model.base_model.named_modules()
                  if isinstance(m, nn.ModuleList) and len(m) == depth}
    outermost = [n for n in candidates if not any(n != o and n.startswith(o + ".") for o in candidates)]
    if len(outermost) != 1:
        found = ", ".join(outermost) or "none"
        raise ModelError(f"Cannot find the encoder layer stack of {type(model).__name__}: expected one "
                         f"nn.ModuleList of {depth} layers in the base model, found: {found}.")
    return candidates[outermost[0]]


def parse_layers(text: str | Sequence[int], depth: int) -> list[int]:
    """Layer indices from "0,2,4" (or a sequence), checked against the model's depth."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            layers = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"--layers {text!r} must be comma-separated layer indices, e.g. 0,2,4.") from None
    else:
        layers = list(text)
    if not layers:
        raise ConfigError("--layers is empty: name at least one encoder layer to keep, e.g. 0,2,4.")
    bad = [i for i in layers if not 0 <= i < depth]
    if bad:
        raise ConfigError(f"--layers {bad} out of range: the model has {depth} layers (0..{depth - 1}).")
    duplicates = sorted({i for i in layers if layers.count(i) > 1})
    if duplicates:
        raise ConfigError(f"--layers repeats {duplicates}: each layer can be kept once.")
    return layers


def select_layers(model: PreTrainedModel, layers: Sequence[int]) -> PreTrainedModel:
    """Keep only `layers` (in that order) of the encoder, in place; returns the model."""
    stack = find_layer_list(model)
    layers = parse_layers(layers, len(stack))
    kept = [stack[i] for i in layers]
    for new_index, layer in enumerate(kept):
        for module in layer.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new_index
    stack._modules.clear()
    stack.extend(kept)
    types = getattr(model.config, "layer_types", None)
    if isinstance(types, list) and len(types) == model.config.num_hidden_layers:
        model.config.layer_types = [types[i] for i in layers]
    model.config.num_hidden_layers = len(kept)
    return model


def _model_class(path: str):
    """The class the checkpoint was saved as (so its head, if any, is kept), else AutoModel."""
    config = transformers.AutoConfig.from_pretrained(path)
    for name in config.architectures or []:
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and issubclass(cls, PreTrainedModel):
            return cls
    return AutoModel


def make_student(source: str, layers: str | Sequence[int], output_dir: str, num_labels: Optional[int] = None,
                 seed: int = 42, overwrite: bool = False) -> PreTrainedModel:
    """Write a student with the chosen layers of `source` to `output_dir`; returns the model.

    Without `num_labels` the source's architecture and head are kept; with it, the student is a
    sequence classifier with that many labels (a fresh head, seeded, if the source has none of that size).
    """
    check_model_dir(source, "source model", "--from")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise ConfigError(f"Output directory {output_dir} exists and is not empty: choose another --output_dir "
                          "or pass --overwrite_output_dir.")
    if num_labels is not None and num_labels < 1:
        raise ConfigError(f"--num_labels must be >= 1, got {num_labels}.")
    tokenizer = load_tokenizer(source, "--from")
    torch.manual_seed(seed)
    if num_labels is None:
        model = _model_class(source).from_pretrained(source)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_labels,
                                                                   ignore_mismatched_sizes=True)
    select_layers(model, parse_layers(layers, num_layers(model)))
    save_model(model, tokenizer, output_dir)
    return model


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="mate-kd make-student",
                                     description="Initialise a student from chosen encoder layers of a model "
                                                 "(DistilBERT-style): embeddings, pooler and head are kept.")
    parser.add_argument("--from", dest="source", required=True, help="Model directory (encoder, classifier or MLM).")
    parser.add_argument("--layers", required=True, help="Encoder layers to keep, in order, e.g. 0,2,4.")
    parser.add_argument("--output_dir", required=True, help="Where the student is saved (safetensors + tokenizer).")
    parser.add_argument("--num_labels", type=int, default=None,
                        help="Save as a sequence classifier with this many labels (default: keep the source's class).")
    parser.add_argument("--seed", type=int, default=42, help="Seed for a freshly initialised classifier head.")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="Write into a non-empty --output_dir.")
    args = parser.parse_args(argv)
    model = make_student(args.source, args.layers, args.output_dir, args.num_labels, args.seed,
                         args.overwrite_output_dir)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.output_dir}: {type(model).__name__}, layers {args.layers} of {args.source} "
          f"({model.config.num_hidden_layers} layers, {params / 1e6:.1f}M parameters)")
