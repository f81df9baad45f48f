"""Shared fixtures: tiny offline models (built once per session), batches, and small helpers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from mate_kd.tiny import build_single, build_tiny_models

# Tiny models gain nothing from intra-op threads, and on a shared machine spinning threads make
# every op several times slower.
torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
GLUE = FIXTURES / "glue"
CUSTOM = FIXTURES / "custom"

SENTENCES = ["the movie is good .", "a bad , slow film that i did not like at all .", "fun !",
             "the story is dull and the music is loud ."]
SECONDS = ["it is great .", "no .", "the film is long and the plot is thin .", "i like it ."]


def spread(path: str, seed: int = 0) -> str:
    """Redraw a saved classifier's matrices at unit output scale and save it back.

    Freshly initialised tiny models (std 0.02) give nearly the same logits for every input, so
    a loss check would pass even with the wrong text fed to a model; these models react to their input.
    """
    model = AutoModelForSequenceClassification.from_pretrained(path)
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 2:
                param.normal_(0.0, param.shape[1] ** -0.5)
    model.save_pretrained(path)
    return path


def build(out_dir: str, **kwargs) -> dict[str, str]:
    """build_tiny_models, with input-sensitive teacher and student."""
    paths = build_tiny_models(out_dir, **kwargs)
    spread(paths["teacher"], seed=1)
    spread(paths["student"], seed=2)
    return paths


@pytest.fixture(scope="session", autouse=True)
def datasets_cache(tmp_path_factory) -> Path:
    """Every tokenisation cache and `datasets` download of the session goes to a temporary directory (also for the
    subprocesses that tests start), never into the user's ~/.cache."""
    import datasets

    path = tmp_path_factory.mktemp("hf_datasets_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_CACHE", str(path))
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def tiny_bert(models_root) -> dict[str, str]:
    """BERT teacher, DistilBERT student, BERT MLM generator; two unnamed labels."""
    return build(str(models_root / "bert"), family="bert")


@pytest.fixture(scope="session")
def tiny_bert_student_bert(models_root) -> dict[str, str]:
    """As tiny_bert but with a BERT (not DistilBERT) student."""
    return build(str(models_root / "bert_bert"), family="bert", student_arch="bert", seed=1)


@pytest.fixture(scope="session")
def tiny_roberta(models_root) -> dict[str, str]:
    return build(str(models_root / "roberta"), family="roberta")


@pytest.fixture(scope="session")
def tiny_regression(models_root) -> dict[str, str]:
    """One-output teacher and student (STS-B)."""
    return build(str(models_root / "regression"), family="bert", num_labels=1)


@pytest.fixture(scope="session")
def teacher_dir(models_root) -> Callable[..., str]:
    """A BERT teacher sharing tiny_bert's vocabulary, with the given labels (built once per setting)."""
    cache: dict[tuple, str] = {}

    def make(num_labels: int = 2, id2label: Optional[dict[int, str]] = None) -> str:
        key = (num_labels, tuple(sorted((id2label or {}).items())))
        if key not in cache:
            name = f"teacher_{num_labels}_" + "_".join(v for _, v in key[1])
            cache[key] = spread(build_single("teacher", "bert", str(models_root / name), num_labels=num_labels,
                                             id2label=id2label), seed=num_labels)
        return cache[key]

    return make


def load_trio(paths: dict[str, str], num_labels: Optional[int] = None):
    """(tokenizer, student, teacher, generator), all in eval mode so repeated calls agree exactly."""
    tokenizer = AutoTokenizer.from_pretrained(paths["student"])
    kwargs = {} if num_labels is None else {"num_labels": num_labels, "ignore_mismatched_sizes": True}
    student = AutoModelForSequenceClassification.from_pretrained(paths["student"], **kwargs).eval()
    teacher = AutoModelForSequenceClassification.from_pretrained(paths["teacher"]).eval().requires_grad_(False)
    generator = AutoModelForMaskedLM.from_pretrained(paths["generator"]).eval()
    return tokenizer, student, teacher, generator


@pytest.fixture
def trio() -> Callable:
    return load_trio


def make_batch(tokenizer, pairs: bool = False, labels: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
    """A right-padded batch of four examples (with token_type_ids only when they are not all zero)."""
    enc = tokenizer(SENTENCES, SECONDS if pairs else None, padding=True, return_tensors="pt",
                    return_token_type_ids=True)
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if enc["token_type_ids"].any():
        batch["token_type_ids"] = enc["token_type_ids"]
    batch["labels"] = torch.tensor([1, 0, 1, 0]) if labels is None else labels
    assert (batch["attention_mask"] == 0).any(), "the batch must contain padding"
    return batch


@pytest.fixture
def batch_for() -> Callable:
    return make_batch


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def snapshot() -> tuple[Callable, Callable]:
    return state, same_state


def glue_dir(task: str) -> str:
    return os.fspath(GLUE / task)


@pytest.fixture
def glue() -> Callable[[str], str]:
    return glue_dir


@pytest.fixture(scope="session")
def no_dropout(tiny_bert, tmp_path_factory) -> dict[str, str]:
    """The tiny trio with every dropout set to 0, so differently split batches compute the same gradients."""
    import json
    import shutil

    root = tmp_path_factory.mktemp("nodrop")
    out = {}
    for role, path in tiny_bert.items():
        shutil.copytree(path, root / role)
        config = json.loads((root / role / "config.json").read_text())
        config.update({k: 0.0 for k in config if "dropout" in k and isinstance(config[k], float)})
        (root / role / "config.json").write_text(json.dumps(config))
        out[role] = str(root / role)
    return out
