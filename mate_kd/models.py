"""Load teacher, student and generator with Auto classes, and refuse combinations that cannot work.

MATE-KD feeds the generator's one-hot samples through the teacher's and the student's
embedding matrices, so all three must index one vocabulary; the teacher must also predict
the task's labels. Both are checked here, before any training starts.
"""

from __future__ import annotations

import inspect
import os
from typing import Optional, Sequence

from torch import nn
from transformers import (AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer,
                          PreTrainedModel, PreTrainedTokenizerBase)

from .errors import ModelError
from .tasks import TaskSpec

LAYOUT = ("The paper's layout (SPEC): bert_models/{distilbert-base,distilroberta-base,uncased_L-6_H-768_A-12,"
          "uncased_L-4_H-256_A-4} for students and generators, ckpts/{teachers_bert_base,teachers_roberta_large}/TASK "
          "for fine-tuned teachers (make one with `mate-kd train --method finetune`), glue_data/TASK for data.")


def _looks_local(path: str) -> bool:
    return path.startswith((".", "/", "~")) or path.count("/") > 1 or os.path.isdir(path.split("/")[0])


def check_model_dir(path: Optional[str], role: str, flag: str) -> str:
    """A directory that exists and holds a config.json, or a hub name; otherwise a message naming the layout."""
    if not path:
        raise ModelError(f"No {role} given: pass {flag}. {LAYOUT}")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ModelError(f"{role} directory {path} has no config.json: it should be a save_pretrained "
                             f"directory (config.json plus weights). {LAYOUT}")
        return path
    if _looks_local(path):
        raise ModelError(f"{role} directory {path} ({flag}) does not exist. {LAYOUT}")
    return path


def _load(loader, path: str, role: str, flag: str, **kwargs):
    path = check_model_dir(path, role, flag)
    try:
        return loader.from_pretrained(path, **kwargs)
    except OSError as err:
        raise ModelError(f"Could not load the {role} from {path} ({flag}): {err}. {LAYOUT}") from None
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelError(f"The {role} at {path} ({flag}) needs Python code shipped with the model (auto_map in "
                             "its config.json). mate-kd never runs it unless you pass --trust_remote_code: read "
                             "that code first, or use a model that transformers supports natively.") from None
        raise ModelError(f"Could not load the {role} from {path} ({flag}): {err}") from None


def load_tokenizer(path: str, flag: str = "--tokenizer_name", **kwargs) -> PreTrainedTokenizerBase:
    return _load(AutoTokenizer, path, "tokenizer", flag, **kwargs)


def _named_labels(model: PreTrainedModel) -> Optional[list[str]]:
    """Label names from the config, or None when they are transformers' placeholders LABEL_i."""
    names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
    return None if all(n == f"LABEL_{i}" for i, n in enumerate(names)) else names


def label_order(task: TaskSpec, model: Optional[PreTrainedModel], role: str = "teacher") -> Optional[list[str]]:
    """The model's label order when its config names the labels, else the task's; refuse a misfit."""
    if task.is_regression:
        if model is not None and model.config.num_labels != 1:
            raise ModelError(f"The {role} has {model.config.num_labels} outputs but {task.name} is a regression "
                             "task with 1 output: fine-tune a teacher for this task.")
        return None
    expected = list(task.labels)
    if model is None:
        return expected
    if model.config.num_labels != len(expected):
        raise ModelError(f"The {role} predicts {model.config.num_labels} labels but {task.name} has "
                         f"{len(expected)} ({expected}): it was fine-tuned for another task.")
    names = _named_labels(model)
    if names is None:
        return expected
    if sorted(names) != sorted(expected):
        raise ModelError(f"The {role}'s labels {names} (config.id2label) are not {task.name}'s labels {expected}: "
                         "it was fine-tuned for another task or label set.")
    return names


def load_classifier(path: str, role: str, flag: str, num_labels: int, labels: Optional[Sequence[str]],
                    **kwargs) -> PreTrainedModel:
    """A sequence classifier with the task's number of labels (a new head if the checkpoint has another)."""
    check_model_dir(path, role, flag)
    label_kwargs = {"num_labels": num_labels}
    if labels:
        label_kwargs["id2label"] = dict(enumerate(labels))
        label_kwargs["label2id"] = {n: i for i, n in enumerate(labels)}
    return _load(AutoModelForSequenceClassification, path, role, flag, ignore_mismatched_sizes=True,
                 **label_kwargs, **kwargs)


def load_teacher(path: str, **kwargs) -> PreTrainedModel:
    """The frozen teacher: eval mode, no parameter gradients."""
    teacher = _load(AutoModelForSequenceClassification, path, "teacher", "--teacher_path", **kwargs)
    teacher.eval().requires_grad_(False)
    return teacher


def load_generator(path: str, **kwargs) -> PreTrainedModel:
    """A masked LM whose head weights are really in the checkpoint (not freshly initialised)."""
    generator, info = _load(AutoModelForMaskedLM, path, "generator", "--generator_path",
                            output_loading_info=True, **kwargs)
    base = generator.base_model_prefix + "."
    missing_head = [k for k in info["missing_keys"] if not k.startswith(base)]
    if missing_head:
        raise ModelError(f"The generator at {path} is not a masked LM: its checkpoint lacks the MLM head "
                         f"({missing_head[:3]}...). Use an MLM checkpoint, or build one with "
                         "`mate-kd pretrain-generator --from DIR`.")
    return generator


def check_vocabularies(tokenizer: PreTrainedTokenizerBase, models: dict[str, PreTrainedModel],
                       tokenizer_dirs: dict[str, str]) -> None:
    """All models index one vocabulary: same embedding rows, same token-to-id map where a tokenizer is saved."""
    reference = tokenizer.get_vocab()
    rows = {role: m.get_input_embeddings().num_embeddings for role, m in models.items()}
    if "generator" in models:
        rows["generator output"] = models["generator"].get_output_embeddings().weight.shape[0]
    if len(set(rows.values())) > 1:
        raise ModelError(f"Vocabulary mismatch: embedding rows differ between models {rows}. Teacher, student "
                         "and generator must share one vocabulary (e.g. all bert-base-uncased WordPiece, or all "
                         "RoBERTa byte-level BPE).")
    if min(rows.values()) < len(reference):
        raise ModelError(f"Vocabulary mismatch: the models have {min(rows.values())} embedding rows but the "
                         f"tokenizer has {len(reference)} tokens. Teacher, student and generator must share one "
                         "vocabulary.")
    for role, path in tokenizer_dirs.items():
        if not os.path.isdir(path) or not any(
                os.path.isfile(os.path.join(path, f)) for f in ("tokenizer.json", "vocab.txt", "vocab.json")):
            continue
        other = AutoTokenizer.from_pretrained(path).get_vocab()
        if other != reference:
            diff = len(set(other.items()) ^ set(reference.items()))
            raise ModelError(f"Vocabulary mismatch: the {role} tokenizer in {path} differs from the student's "
                             f"({diff} token-id pairs differ). Teacher, student and generator must share one "
                             "vocabulary.")


def check_max_length(max_seq_length: int, models: dict[str, PreTrainedModel]) -> None:
    """Refuse a max_seq_length longer than a model's position embeddings."""
    for role, model in models.items():
        positions = getattr(model.config, "max_position_embeddings", None)
        if positions is None:
            continue
        usable = positions - (model.config.pad_token_id + 1 if model.config.model_type in
                              ("roberta", "xlm-roberta", "camembert") else 0)
        if max_seq_length > usable:
            raise ModelError(f"--max_seq_length {max_seq_length} is longer than the {role} supports ({usable} "
                             "positions): lower it.")


def forward_inputs(model: nn.Module) -> frozenset[str]:
    """Names of the batch fields a model's forward accepts (DistilBERT takes no token_type_ids)."""
    return frozenset(inspect.signature(model.forward).parameters)
