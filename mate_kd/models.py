"""Load teacher, student and generator with Auto classes, and refuse combinations that cannot work.

MATE-KD feeds the generator's one-hot samples through the teacher's and the student's
embedding matrices, so all three must index one vocabulary; the teacher must also predict
the task's labels. Both are checked here, before any training starts.
"""

from __future__ import annotations

import inspect
import os
from typing import Optional, Sequence

from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import (AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer,
                          PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase)

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


def _unreadable_weights(path: str) -> list[str]:
    """The .safetensors files of a model directory that safetensors cannot open (truncated, or not safetensors)."""
    bad = []
    for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
        if name.endswith(".safetensors"):
            try:
                with safe_open(os.path.join(path, name), "pt"):
                    pass
            except SafetensorError:
                bad.append(os.path.join(path, name))
    return bad


def _load(loader, path: str, role: str, flag: str, **kwargs):
    path = check_model_dir(path, role, flag)
    try:
        return loader.from_pretrained(path, **kwargs)
    except SafetensorError as err:
        files = ", ".join(_unreadable_weights(path)) or f"a .safetensors file in {path}"
        raise ModelError(f"The {role} weights {files} ({flag}) cannot be read: {err}. The file is truncated or "
                         "corrupt (an interrupted copy or download leaves such a file): copy or download the model "
                         "again, or save it again with save_pretrained.") from None
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


def _named_labels(config: PretrainedConfig) -> Optional[list[str]]:
    """Label names from the config, or None when they are transformers' placeholders LABEL_i."""
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    return None if all(n == f"LABEL_{i}" for i, n in enumerate(names)) else names


def _fine_tuned_for(task: TaskSpec, role: str) -> str:
    """What to pass instead of a classifier that does not fit the task."""
    if role == "teacher":
        return f"Use a teacher fine-tuned for {task.name} (make one with `mate-kd train --method finetune`)."
    return (f"Pass a model fine-tuned for {task.name}: the best/ or final/ directory of a `mate-kd train` run on "
            "this task.")


def label_order(task: TaskSpec, config: Optional[PretrainedConfig], role: str = "teacher") -> Optional[list[str]]:
    """The label order of a model's config when it names the labels, else the task's; refuse a misfit."""
    if task.is_regression:
        if config is not None and config.num_labels != 1:
            raise ModelError(f"The {role} has {config.num_labels} outputs but {task.name} is a regression task "
                             f"with 1 output. {_fine_tuned_for(task, role)}")
        return None
    expected = list(task.labels)
    if config is None:
        return expected
    if config.num_labels != len(expected):
        raise ModelError(f"The {role} predicts {config.num_labels} labels but {task.name} has {len(expected)} "
                         f"({expected}): it was fine-tuned for another task. {_fine_tuned_for(task, role)}")
    names = _named_labels(config)
    if names is None:
        return expected
    if sorted(names) != sorted(expected):
        raise ModelError(f"The {role}'s labels {names} (config.id2label) are not {task.name}'s labels {expected}: "
                         f"it was fine-tuned for another task or label set. {_fine_tuned_for(task, role)}")
    return names


def load_classifier(path: str, role: str, flag: str, num_labels: int, labels: Optional[Sequence[str]],
                    **kwargs) -> PreTrainedModel:
    """A sequence classifier to train, with the task's labels (a new head if the checkpoint has another)."""
    check_model_dir(path, role, flag)
    label_kwargs = {"num_labels": num_labels}
    if labels:
        label_kwargs["id2label"] = dict(enumerate(labels))
        label_kwargs["label2id"] = {n: i for i, n in enumerate(labels)}
    return _load(AutoModelForSequenceClassification, path, role, flag, ignore_mismatched_sizes=True,
                 **label_kwargs, **kwargs)


def _missing_head(model: PreTrainedModel, info: dict) -> list[str]:
    """Weights outside the encoder that the checkpoint lacked, so that loading initialised them at random."""
    base = model.base_model_prefix + "."
    return sorted(k for k in info["missing_keys"] if not k.startswith(base))


def _trained_classifier(path: str, role: str, flag: str, fix: str, **kwargs) -> PreTrainedModel:
    """A classifier loaded with its own head as saved, refused when the checkpoint has no head to load."""
    model, info = _load(AutoModelForSequenceClassification, path, role, flag, output_loading_info=True, **kwargs)
    missing = _missing_head(model, info)
    if missing:
        raise ModelError(f"The {role} at {path} ({flag}) has no trained classification head: its checkpoint lacks "
                         f"{missing[:4]}, so its predictions would be random (it is a pretrained encoder or a masked "
                         f"LM). {fix}")
    return model


def load_fine_tuned(path: str, task: TaskSpec, flag: str = "--model_name_or_path",
                    **kwargs) -> tuple[PreTrainedModel, Optional[list[str]]]:
    """The classifier that evaluate and predict score, and its label order: it must be fine-tuned for this task.

    Its head is used as saved (training may replace a head; scoring must not), so a model with other labels, or
    with no trained head at all, is refused instead of scored at random. The labels are checked on the config,
    before any weights are read.
    """
    labels = label_order(task, _load(AutoConfig, path, "model", flag, **kwargs), "model")
    return _trained_classifier(path, "model", flag, _fine_tuned_for(task, "model"), **kwargs), labels


def load_teacher(path: str, **kwargs) -> PreTrainedModel:
    """The frozen teacher: eval mode, no parameter gradients."""
    teacher = _trained_classifier(path, "teacher", "--teacher_path", "Use a fine-tuned teacher (make one with "
                                  "`mate-kd train --method finetune`).", **kwargs)
    teacher.eval().requires_grad_(False)
    return teacher


def load_generator(path: str, **kwargs) -> PreTrainedModel:
    """A masked LM whose head weights are really in the checkpoint (not freshly initialised)."""
    generator, info = _load(AutoModelForMaskedLM, path, "generator", "--generator_path",
                            output_loading_info=True, **kwargs)
    missing_head = _missing_head(generator, info)
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
