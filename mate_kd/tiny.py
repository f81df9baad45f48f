"""Tiny, randomly initialised teacher / student / generator directories for offline runs.

Tests, the quickstart and benchmarks must run without the hub, yet exercise the
real code paths: a real tokenizer, real Hugging Face model classes and
`from_pretrained` loading. The models built here are untrained and small (a
4000-entry vocabulary, 32/64-wide encoders), and all three share one tokenizer,
as MATE-KD requires.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
from transformers import (
    AddedToken,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaTokenizerFast,
)

from .errors import ConfigError

ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
FAMILIES = ("bert", "roberta")
KINDS = ("teacher", "student", "generator")
STUDENT_ARCHS = {"bert": ("distilbert", "bert"), "roberta": ("roberta",)}


@dataclass(frozen=True)
class TinySizes:
    """Encoder shape of one tiny model; defaults are the teacher's."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 128
    max_position_embeddings: int = 128


TEACHER_SIZES = TinySizes()
STUDENT_SIZES = TinySizes(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
GENERATOR_SIZES = TinySizes(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
DEFAULT_SIZES = {"teacher": TEACHER_SIZES, "student": STUDENT_SIZES, "generator": GENERATOR_SIZES}


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; use one of {', '.join(FAMILIES)}")


def build_tokenizer(family: str, model_max_length: int = 512) -> PreTrainedTokenizerBase:
    """The shipped small tokenizer of a family: lower-cased WordPiece ("bert") or byte-level BPE ("roberta").

    Files are read into a vocab dict (and merge pairs) explicitly: in transformers 5
    the `vocab_file=` keyword is silently ignored and yields a 5-token tokenizer.
    As in roberta-base, "<mask>" absorbs the space before it.
    """
    _check_family(family)
    if family == "bert":
        with open(os.path.join(ASSETS_DIR, "wordpiece_vocab.txt"), encoding="utf-8") as f:
            vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        return BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=model_max_length)
    with open(os.path.join(ASSETS_DIR, "bpe", "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(ASSETS_DIR, "bpe", "merges.txt"), encoding="utf-8") as f:
        merges = [tuple(line.rstrip("\n").split(" ")) for line in f if line.strip() and not line.startswith("#version")]
    mask = AddedToken("<mask>", lstrip=True, rstrip=False, special=True)
    return RobertaTokenizerFast(vocab=vocab, merges=merges, mask_token=mask, model_max_length=model_max_length)


def _label_kwargs(num_labels: int, id2label: dict[int, str] | None) -> dict:
    if id2label is None:
        return {"num_labels": num_labels}
    id2label = {int(k): str(v) for k, v in id2label.items()}
    if sorted(id2label) != list(range(num_labels)):
        raise ConfigError(f"id2label keys {sorted(id2label)} do not match num_labels={num_labels}; give ids 0..{num_labels - 1}")
    return {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}


def build_model(
    kind: str,
    family: str,
    tokenizer: PreTrainedTokenizerBase,
    sizes: TinySizes | None = None,
    num_labels: int = 2,
    id2label: dict[int, str] | None = None,
    student_arch: str | None = None,
) -> PreTrainedModel:
    """A randomly initialised tiny model whose vocabulary and special ids come from `tokenizer`."""
    _check_family(family)
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; use one of {', '.join(KINDS)}")
    sizes = sizes or DEFAULT_SIZES[kind]
    arch = family
    if kind == "student":
        arch = student_arch or STUDENT_ARCHS[family][0]
        if arch not in STUDENT_ARCHS[family]:
            raise ConfigError(f"student_arch {arch!r} does not fit family {family!r}; use one of {STUDENT_ARCHS[family]}")
    labels = _label_kwargs(num_labels, id2label) if kind != "generator" else {}
    common = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if arch == "distilbert":
        config = DistilBertConfig(
            dim=sizes.hidden_size, n_layers=sizes.num_layers, n_heads=sizes.num_heads, hidden_dim=sizes.intermediate_size,
            max_position_embeddings=sizes.max_position_embeddings, **common, **labels,
        )
        return DistilBertForSequenceClassification(config)
    encoder = {
        "hidden_size": sizes.hidden_size, "num_hidden_layers": sizes.num_layers, "num_attention_heads": sizes.num_heads,
        "intermediate_size": sizes.intermediate_size,
    }
    if arch == "bert":
        config = BertConfig(max_position_embeddings=sizes.max_position_embeddings, **encoder, **common, **labels)
        return BertForMaskedLM(config) if kind == "generator" else BertForSequenceClassification(config)
    config = RobertaConfig(
        max_position_embeddings=sizes.max_position_embeddings + tokenizer.pad_token_id + 1, type_vocab_size=1,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **encoder, **common, **labels,
    )
    return RobertaForMaskedLM(config) if kind == "generator" else RobertaForSequenceClassification(config)


def _write(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_single(
    kind: str,
    family: str,
    out_dir: str,
    sizes: TinySizes | None = None,
    num_labels: int = 2,
    id2label: dict[int, str] | None = None,
    student_arch: str | None = None,
    seed: int = 0,
) -> str:
    """Write one tiny model and its tokenizer to `out_dir` (safetensors) and return the path."""
    _check_family(family)
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; use one of {', '.join(KINDS)}")
    sizes = sizes or DEFAULT_SIZES[kind]
    tokenizer = build_tokenizer(family, model_max_length=sizes.max_position_embeddings)
    torch.manual_seed(seed)
    return _write(build_model(kind, family, tokenizer, sizes, num_labels, id2label, student_arch), tokenizer, out_dir)


def build_tiny_models(
    out_dir: str,
    family: str = "bert",
    num_labels: int = 2,
    id2label: dict[int, str] | None = None,
    student_arch: str | None = None,
    seed: int = 0,
    teacher: TinySizes | None = None,
    student: TinySizes | None = None,
    generator: TinySizes | None = None,
) -> dict[str, str]:
    """Write `out_dir/{teacher,student,generator}` sharing one tokenizer; return their paths.

    The saved tokenizers' model_max_length is the smallest position table of the
    three, so `truncation=True` never produces ids a model cannot embed.
    """
    _check_family(family)
    if student_arch is not None and student_arch not in STUDENT_ARCHS[family]:
        raise ConfigError(f"student_arch {student_arch!r} does not fit family {family!r}; use one of {STUDENT_ARCHS[family]}")
    sizes = {"teacher": teacher or TEACHER_SIZES, "student": student or STUDENT_SIZES, "generator": generator or GENERATOR_SIZES}
    tokenizer = build_tokenizer(family, model_max_length=min(s.max_position_embeddings for s in sizes.values()))
    paths = {}
    for kind in KINDS:
        torch.manual_seed(seed)
        model = build_model(kind, family, tokenizer, sizes[kind], num_labels, id2label, student_arch)
        paths[kind] = _write(model, tokenizer, os.path.join(out_dir, kind))
    return paths
