"""From settings to ready inputs: the task, its splits (read and tokenised once) and the checked models."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from . import hf_data
from .config import RunArgs
from .data import EncodedSplit
from .errors import ConfigError, DataError
from .lock import LOCK_FILE
from .models import (check_max_length, check_model_dir, check_vocabularies, label_order, load_classifier,
                     load_fine_tuned, load_generator, load_teacher, load_tokenizer)
from .tasks import Example, TaskSpec, custom_task, get_task, infer_labels, read_split, read_table


def resolve_task(args: RunArgs) -> TaskSpec:
    """A GLUE task by name (or by its nyu-mll/glue configuration), or a custom task from the own data's labels."""
    glue = hf_data.glue_task(args)
    if args.dataset_name:
        hf_data.load_named(args)  # a dataset that is missing or out of reach is refused before any model loads
    if args.task_name:
        return get_task(args.task_name)
    if glue is not None:
        return glue
    if args.regression:
        return custom_task(None, regression=True)
    if args.label_list:
        return custom_task([x.strip() for x in args.label_list.split(",") if x.strip()])
    if args.dataset_name or hf_data.uses_datasets(args, "train" if args.train_file else "dev"):
        return custom_task(hf_data.infer_labels(args))
    source = args.train_file or args.validation_file
    return custom_task(infer_labels(_read_custom(args, source)))


def _read_custom(args: RunArgs, path: Optional[str], with_labels: bool = True) -> list[Example]:
    if not path:
        raise DataError("Custom data needs --train_file and --validation_file (and --test_file to predict).")
    return read_table(path, args.text_column, args.text_pair_column, args.label_column if with_labels else None)


def read_examples(args: RunArgs, task: TaskSpec, split: str) -> list[Example]:
    """Examples of one split, from the GLUE directory or the custom files."""
    if args.task_name:
        return read_split(task, args.data_dir, split)
    files = {"train": args.train_file, "dev": args.validation_file, "test": args.test_file}
    return _read_custom(args, files[split], with_labels=split != "test")


@dataclass
class Models:
    tokenizer: PreTrainedTokenizerBase
    student: PreTrainedModel
    teacher: Optional[PreTrainedModel] = None
    generator: Optional[PreTrainedModel] = None
    labels: Optional[list[str]] = field(default=None)


def load_models(args: RunArgs, task: TaskSpec, *, training: bool = True) -> Models:
    """Tokenizer, teacher (frozen), student and generator, refused early when they do not fit."""
    common = {"cache_dir": args.cache_dir, "trust_remote_code": args.trust_remote_code}
    check_model_dir(args.model_name_or_path, "student" if training else "model", "--model_name_or_path")
    tokenizer_path = args.tokenizer_name or args.model_name_or_path
    tokenizer = load_tokenizer(tokenizer_path, "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path",
                               **common)
    teacher = generator = None
    if training and args.method in ("kd", "mate-kd"):
        teacher = load_teacher(args.teacher_path, **common)
    if training and args.method == "mate-kd":
        generator = load_generator(args.generator_path, **common)
        if tokenizer.mask_token_id is None:
            raise ConfigError(f"The tokenizer at {tokenizer_path} has no mask token; MATE-KD masks text.")
    if training:
        labels = label_order(task, teacher.config if teacher is not None else None, "teacher")
        student = load_classifier(args.model_name_or_path, "student", "--model_name_or_path", task.num_labels, labels,
                                  **common)
    else:
        student, labels = load_fine_tuned(args.model_name_or_path, task, **common)
    models = {"student": student, "teacher": teacher, "generator": generator}
    models = {k: v for k, v in models.items() if v is not None}
    dirs = {"teacher": args.teacher_path, "generator": args.generator_path} if training else {}
    check_vocabularies(tokenizer, models, {k: v for k, v in dirs.items() if k in models})
    check_max_length(args.max_seq_length, models)
    return Models(tokenizer, student, teacher, generator, labels)


def encode_split(args: RunArgs, task: TaskSpec, models: Models, split: str, limit: Optional[int] = None,
                 shuffle_seed: Optional[int] = None) -> EncodedSplit:
    """Read and tokenise one split (through the tokenisation cache); `limit` keeps the first N (after a seeded
    shuffle if given)."""
    if hf_data.uses_datasets(args, split):
        return hf_data.encode_split(args, task, models.tokenizer, models.labels, split, limit, shuffle_seed)
    examples = read_examples(args, task, split)
    rows = hf_data.subset_rows(len(examples), limit, shuffle_seed)
    if rows is not None:
        examples = [examples[i] for i in rows]
    with_labels = split not in task.test_splits
    return hf_data.encode_examples(examples, models.tokenizer, args.max_seq_length, task, models.labels,
                                   with_labels=with_labels, overwrite=args.overwrite_cache, cache_root=args.cache_dir,
                                   desc=f"tokenize {split}")


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """Ids never masked: [CLS], [SEP], [PAD], <s>, </s>, ... ([MASK] and [UNK] included)."""
    return torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)


def prepare_output_dir(path: str, overwrite: bool, leftovers: frozenset[str] | set[str] = frozenset()) -> None:
    """Refuse to mix results into a non-empty directory (beyond `leftovers` and the run's lock) unless told to."""
    if os.path.isdir(path) and set(os.listdir(path)) - set(leftovers) - {LOCK_FILE} and not overwrite:
        raise ConfigError(f"Output directory {path} exists and is not empty: pass --overwrite_output_dir "
                          "to write into it, or choose another --output_dir.")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_test")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as err:
        raise ConfigError(f"Cannot write to output directory {path}: {err.strerror}. Choose a writable "
                          "--output_dir.") from None
