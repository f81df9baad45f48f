"""`datasets` as the data layer: hub datasets, saved datasets, data directories, .parquet/.arrow files, and one
on-disk tokenisation cache for every source, the GLUE TSVs included.

Every split is tokenised by `datasets.map` into the datasets cache (``--cache_dir``, else ``HF_DATASETS_CACHE``),
under a fingerprint of its text, the tokenizer and ``max_seq_length``; a second run with the same data and
settings loads the token ids from there instead of tokenising (MNLI: docs/performance.md), and
``--overwrite_cache`` tokenises again. The result is the same flat `EncodedSplit` (ids + offsets) as before, so
batching, length grouping and the teacher cache are unchanged.
"""

from __future__ import annotations

import functools
import os
import random
from dataclasses import dataclass
from typing import Optional, Sequence

import datasets
import numpy as np
from accelerate import PartialState
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

from .config import RunArgs
from .data import EncodedSplit
from .data import _label_array as example_label_array
from .errors import ConfigError, DataError
from .tasks import Example, TaskSpec, get_task

#: File types read through `datasets` (the others go through the package's own readers in tasks.py).
FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}
GLUE_DATASETS = ("nyu-mll/glue", "glue")
#: Bumped when the layout of a tokenised cache file changes, so that old files are not read back.
CACHE_FORMAT = "mate-kd tokenized v1"
CACHE_SUBDIR = "mate_kd_tokenized"
TOKEN_FEATURES = Features({"input_ids": List(Value("int32")), "token_type_ids": List(Value("int8"))})


@dataclass(frozen=True)
class HubColumns:
    """How a GLUE task looks on the hub: its configuration of nyu-mll/glue and its text columns."""

    config: str
    text_a: str
    text_b: Optional[str]
    #: The ClassLabel names, where they are not the registry's labels (binary tasks: 0/1 in the TSVs).
    label_names: Optional[tuple[str, ...]] = None
    label: str = "label"


#: The task registry's GLUE tasks as nyu-mll/glue holds them (splits: train, validation[_matched|_mismatched],
#: test[_matched|_mismatched]; test labels are -1; `idx` is the index GLUE submissions need).
GLUE_HUB: dict[str, HubColumns] = {
    "cola": HubColumns("cola", "sentence", None, ("unacceptable", "acceptable")),
    "sst-2": HubColumns("sst2", "sentence", None, ("negative", "positive")),
    "mrpc": HubColumns("mrpc", "sentence1", "sentence2", ("not_equivalent", "equivalent")),
    "sts-b": HubColumns("stsb", "sentence1", "sentence2"),
    "qqp": HubColumns("qqp", "question1", "question2", ("not_duplicate", "duplicate")),
    "mnli": HubColumns("mnli", "premise", "hypothesis"),
    "qnli": HubColumns("qnli", "question", "sentence"),
    "rte": HubColumns("rte", "sentence1", "sentence2"),
    "wnli": HubColumns("wnli", "sentence1", "sentence2", ("not_entailment", "entailment")),
    "ax": HubColumns("ax", "premise", "hypothesis"),
}


def is_dataset_file(path: Optional[str]) -> bool:
    """Whether a --train_file/--validation_file/--test_file is read through `datasets` (.parquet, .arrow)."""
    return bool(path) and os.path.splitext(path)[1].lower() in FILE_BUILDERS


def split_file(args: RunArgs, split: str) -> Optional[str]:
    """The own-data file of a split ("train", "dev", "test")."""
    return {"train": args.train_file, "dev": args.validation_file, "test": args.test_file}.get(split)


def uses_datasets(args: RunArgs, split: str) -> bool:
    """Whether this split is loaded by `datasets` (a --dataset_name, or a .parquet/.arrow own-data file)."""
    return bool(args.dataset_name) or (not args.task_name and is_dataset_file(split_file(args, split)))


def _is_glue(name: str) -> bool:
    return name.strip().lower() in GLUE_DATASETS


def glue_task(args: RunArgs) -> Optional[TaskSpec]:
    """The GLUE task named by --dataset_name nyu-mll/glue --dataset_config_name X (None for other data)."""
    if not args.dataset_name or args.task_name or not _is_glue(args.dataset_name):
        return None
    configs = {cols.config: name for name, cols in GLUE_HUB.items()}
    if not args.dataset_config_name:
        raise ConfigError(f"--dataset_name {args.dataset_name} needs --dataset_config_name, one of "
                          f"{', '.join(configs)} (or pass --task_name).")
    if args.dataset_config_name not in configs:
        raise ConfigError(f"--dataset_config_name {args.dataset_config_name} is not a GLUE task of the registry; "
                          f"choose one of {', '.join(configs)} (mnli evaluates matched and mismatched together).")
    return get_task(configs[args.dataset_config_name])


def _hub_config(args: RunArgs) -> Optional[str]:
    """The configuration to load: the one given, or the GLUE task's when --task_name picks from nyu-mll/glue."""
    if args.task_name and _is_glue(args.dataset_name):
        wanted = GLUE_HUB[get_task(args.task_name).name].config
        if args.dataset_config_name and args.dataset_config_name != wanted:
            raise ConfigError(f"--task_name {args.task_name} is configuration {wanted!r} of {args.dataset_name}, "
                              f"not --dataset_config_name {args.dataset_config_name}: drop one of the two flags.")
        return wanted
    return args.dataset_config_name


@functools.lru_cache(maxsize=4)
def _load_named(name: str, config: Optional[str], cache_dir: Optional[str], cache_root: str) -> DatasetDict:
    """A DatasetDict from a save_to_disk directory, a directory of data files, or the hub (loaded once per run;
    `cache_root`, the datasets cache in use, is only part of the memo's key)."""
    if os.path.isdir(name):
        if config:
            raise ConfigError(f"--dataset_config_name {config} applies to hub datasets, but {name} is a local "
                              "directory: drop it (pass --task_name to say which GLUE task the data is).")
        if os.path.isfile(os.path.join(name, "dataset_dict.json")):
            return datasets.load_from_disk(name)
        if os.path.isfile(os.path.join(name, "state.json")):
            raise DataError(f"{name} holds a single saved Dataset, without split names: save a DatasetDict "
                            "(DatasetDict(train=..., validation=...).save_to_disk(DIR)) or pass its files with "
                            "--train_file/--validation_file.")
        return _call_datasets(name, lambda: datasets.load_dataset(name, cache_dir=cache_dir))
    if os.path.exists(name) or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise DataError(f"--dataset_name {name} is not a directory: pass a directory written by save_to_disk, a "
                        "directory of data files (train.csv, validation.csv, ...), or a hub name such as "
                        "nyu-mll/glue.")
    try:
        return _call_datasets(name, lambda: datasets.load_dataset(name, config, cache_dir=cache_dir))
    except (ConnectionError, datasets.exceptions.DatasetNotFoundError) as err:
        offline = " (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)" if datasets.config.HF_HUB_OFFLINE else ""
        raise ConfigError(f"Cannot load dataset {name!r} from the Hugging Face Hub{offline}: {err}. Without network, "
                          f"save it once where there is network (load_dataset({name!r}"
                          f"{', ' + repr(config) if config else ''}).save_to_disk(DIR)) and pass --dataset_name DIR, "
                          "or pass local files with --train_file/--validation_file (.parquet, .arrow, .csv, .tsv, "
                          ".json, .jsonl), or a GLUE directory with --data_dir.") from None


def _call_datasets(where: str, load):
    """Run a datasets loader, turning its complaints about the data into DataError naming the source."""
    try:
        return load()
    except (ConnectionError, datasets.exceptions.DatasetNotFoundError):
        raise  # not the data's fault: the hub is out of reach, or has no such dataset
    except (ValueError, OSError, datasets.exceptions.DatasetGenerationError) as err:
        cause = err.__cause__ or err
        raise DataError(f"{where}: `datasets` could not read it ({type(cause).__name__}: {cause}).") from None


def load_named(args: RunArgs) -> DatasetDict:
    """The --dataset_name dataset with all its splits (memoised: the first call loads, or refuses, it)."""
    return _load_named(args.dataset_name, _hub_config(args), args.cache_dir, _cache_root(args))


def _cache_root(args: RunArgs) -> str:
    return args.cache_dir or datasets.config.HF_DATASETS_CACHE


def source_split(args: RunArgs, split: str) -> tuple[Dataset, str]:
    """One split as a `datasets.Dataset`, and how to name it in messages."""
    if args.dataset_name:
        loaded = load_named(args)
        candidates = [split] + ([split.replace("dev", "validation", 1)] if split.startswith("dev") else [])
        found = next((c for c in candidates if c in loaded), None)
        if found is None:
            raise DataError(f"--dataset_name {args.dataset_name} has no {' or '.join(map(repr, candidates))} split; "
                            f"its splits are {', '.join(loaded) or 'none'}.")
        return loaded[found], f"{args.dataset_name} [{found}]"
    path = split_file(args, split)
    flag = {"train": "--train_file", "dev": "--validation_file", "test": "--test_file"}[split]
    if not path:
        raise DataError(f"Own data needs {flag} for the {split} split.")
    if not os.path.isfile(path):
        raise DataError(f"{flag} {path} " + ("is a directory; pass a file, or pass the directory as --dataset_name"
                                            if os.path.isdir(path) else "not found."))
    builder = FILE_BUILDERS[os.path.splitext(path)[1].lower()]
    return _call_datasets(path, lambda: datasets.load_dataset(builder, data_files=path, split="train",
                                                               cache_dir=args.cache_dir)), path


def _columns(args: RunArgs, task: TaskSpec) -> tuple[str, Optional[str], str, str]:
    """(text, text pair, label, which flags choose them) for this task."""
    if task.name in GLUE_HUB:
        cols = GLUE_HUB[task.name]
        return cols.text_a, cols.text_b, cols.label, f"the nyu-mll/glue {cols.config} columns"
    return args.text_column, args.text_pair_column, args.label_column, \
        "--text_column/--text_pair_column/--label_column"


def _column(ds: Dataset, name: str):
    """One column as a pyarrow ChunkedArray, rows as `ds` selects them (`ds.data` ignores a `select`)."""
    return ds.with_format("arrow")[name]


def _check_columns(ds: Dataset, where: str, wanted: Sequence[str], text: Sequence[str], chooser: str) -> None:
    for column in wanted:
        if column not in ds.column_names:
            raise DataError(f"{where}: column {column!r} not found; columns present: {', '.join(ds.column_names)}. "
                            f"Expected {chooser}.")
    for column in text:
        feature = ds.features[column]
        if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
            raise DataError(f"{where}: column {column!r} should hold text, but holds {feature}; choose the text "
                            f"columns with {chooser}.")
        nulls = _column(ds, column).null_count
        if nulls:
            raise DataError(f"{where}: column {column!r} has {nulls} empty (null) values; fill or drop those rows.")


def _label_strings(ds: Dataset, column: str, task: Optional[TaskSpec], where: str) -> list[str]:
    """The label column as label names of `task`: ClassLabel indices mapped by name, or by index where the names
    are those nyu-mll/glue gives a task whose registry labels are 0/1."""
    feature = ds.features[column]
    values = _column(ds, column).to_pylist()
    if isinstance(feature, ClassLabel):
        names = feature.names
        task_labels = list(task.labels or ()) if task else []
        hub = GLUE_HUB.get(task.name) if task else None
        if not set(names) <= set(task_labels):
            if hub is not None and tuple(names) == hub.label_names:
                names = [str(i) for i in range(len(names))]
            else:
                raise DataError(f"{where}: the label names {names} of column {column!r} do not match the task's "
                                f"labels {list(task_labels)}; pass --label_list or the right task.")
        for row, value in enumerate(values):
            if value is None or not 0 <= value < len(names):
                raise DataError(f"{where}, row {row}: column {column!r} has no label ({value!r}; -1 marks an "
                                "unlabelled row, as in GLUE's test splits). Every training and dev row needs one.")
        return [names[v] for v in values]
    out = []
    for row, value in enumerate(values):
        if value is None or value == "" or isinstance(value, (bool, list, dict)):
            raise DataError(f"{where}, row {row}: column {column!r} has no usable label ({value!r}); every "
                            "training and dev row needs a label.")
        out.append(str(int(value)) if isinstance(value, float) and value.is_integer() else str(value))
    return out


def _label_indices(ds: Dataset, column: str, task: TaskSpec, order: Optional[Sequence[str]],
                   where: str) -> np.ndarray:
    """Labels as indices in `order` (the model's), or float scores for a regression task."""
    if task.is_regression:
        try:
            values = np.asarray(_column(ds, column).to_numpy(), dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{where}: column {column!r} holds {ds.features[column]}, not numbers, as a regression "
                            "task needs; choose the score column with --label_column.") from None
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(f"{where}, row {int(bad[0])}: column {column!r} is not a finite number, as a regression "
                            "task needs.")
        return values.astype(np.float32)
    names = list(order or task.labels)
    index = {name: i for i, name in enumerate(names)}
    strings = _label_strings(ds, column, task, where)
    out = np.fromiter((index.get(s, -1) for s in strings), dtype=np.int64, count=len(strings))
    bad = np.flatnonzero(out < 0)
    if bad.size:
        raise DataError(f"{where}, row {int(bad[0])}: label {strings[bad[0]]!r} is not one of the task's labels "
                        f"{names}. Fix the data or pass the right --task_name / --label_list.")
    return out


def infer_labels(args: RunArgs) -> tuple[str, ...]:
    """Label names of own data loaded by `datasets`: a ClassLabel's names in its order, else the sorted values."""
    split = "train" if args.dataset_name or uses_datasets(args, "train") else "dev"
    ds, where = source_split(args, split)
    column = args.label_column
    _check_columns(ds, where, [column], [], "--label_column")
    feature = ds.features[column]
    if isinstance(feature, ClassLabel):
        return tuple(feature.names)
    if isinstance(feature, Value) and feature.dtype.startswith("float") and not _column(ds, column).null_count:
        values = np.asarray(_column(ds, column).to_numpy(), dtype=np.float64)
        if not np.all(np.isfinite(values) & (values == np.round(values))):
            raise DataError(f"{where}: column {column!r} holds real numbers; pass --regression to train a regression "
                            "model on them, or --label_column for the column with the classes.")
    labels = sorted(set(_label_strings(ds, column, None, where)))
    if not labels:
        raise DataError(f"{where}: no labels found in column {column!r}.")
    return tuple(labels)


def subset_rows(n: int, limit: Optional[int], shuffle_seed: Optional[int]) -> Optional[list[int]]:
    """Row indices to keep: the first `limit`, after a seeded shuffle if given (None: all rows)."""
    if limit is None or limit >= n:
        return None
    order = list(range(n))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    return order[:limit]


def _checked_split(args: RunArgs, task: TaskSpec, split: str, label_order: Optional[Sequence[str]],
                   limit: Optional[int] = None,
                   shuffle_seed: Optional[int] = None) -> tuple[Dataset, str, Optional[np.ndarray]]:
    """A split's rows (subset), how to name it, and its label indices: every check short of tokenising."""
    text_a, text_b, label, chooser = _columns(args, task)
    with_labels = split not in task.test_splits
    ds, where = source_split(args, split)
    text = [text_a] + ([text_b] if text_b else [])
    _check_columns(ds, where, text + ([label] if with_labels else []), text, chooser)
    if len(ds) == 0:
        raise DataError(f"{where} has no rows.")
    rows = subset_rows(len(ds), limit, shuffle_seed)
    if rows is not None:
        ds = ds.select(rows)
    ds = ds.select_columns(text + ([label] if with_labels else []) + (["idx"] if "idx" in ds.column_names else []))
    ds = ds.rename_columns({text_a: "text_a", **({text_b: "text_b"} if text_b else {})})
    return ds, where, _label_indices(ds, label, task, label_order, where) if with_labels else None


def encode_split(args: RunArgs, task: TaskSpec, tokenizer: PreTrainedTokenizerBase,
                 label_order: Optional[Sequence[str]], split: str, limit: Optional[int] = None,
                 shuffle_seed: Optional[int] = None) -> EncodedSplit:
    """A split loaded by `datasets`, checked, subset, tokenised (or loaded from the tokenisation cache).

    Before the training split is tokenised (minutes for MNLI on a first run), the dev splits are checked, so a
    missing split, column or label is refused before that work.
    """
    if split == task.train_split:
        for other in task.eval_splits:
            if uses_datasets(args, other):
                _checked_split(args, task, other, label_order, args.max_eval_samples)
    ds, where, labels = _checked_split(args, task, split, label_order, limit, shuffle_seed)
    guids = [str(v) for v in _column(ds, "idx").to_pylist()] if "idx" in ds.column_names else \
        [f"{split}-{i}" for i in range(len(ds))]
    texts = ds.select_columns([c for c in ("text_a", "text_b") if c in ds.column_names])
    ids, segments, offsets = tokenize(texts, tokenizer, args.max_seq_length, overwrite=args.overwrite_cache,
                                      cache_root=_cache_root(args), desc=f"tokenize {split}")
    return EncodedSplit(ids, segments, offsets, labels, guids)


def encode_examples(examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase, max_length: int,
                    task: TaskSpec, label_order: Optional[Sequence[str]] = None, *, with_labels: bool = True,
                    overwrite: bool = False, cache_root: Optional[str] = None, desc: str = "tokenize") -> EncodedSplit:
    """`data.encode` through the tokenisation cache: examples read by the package's own readers (GLUE TSVs,
    .csv/.tsv/.json/.jsonl), fingerprinted by their text, so the readers' checks run on every run."""
    if not examples:
        raise DataError("No examples to encode: the data file is empty or every row was filtered out.")
    columns = {"text_a": [e.text_a for e in examples]}
    if examples[0].text_b is not None:
        columns["text_b"] = [e.text_b or "" for e in examples]
    labels = example_label_array(examples, task, label_order) if with_labels else None
    ids, segments, offsets = tokenize(Dataset.from_dict(columns), tokenizer, max_length, overwrite=overwrite,
                                      cache_root=cache_root or datasets.config.HF_DATASETS_CACHE, desc=desc)
    return EncodedSplit(ids, segments, offsets, labels, [e.guid for e in examples])



def _tokenize_batch(batch: dict, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict:
    enc = tokenizer(batch["text_a"], batch.get("text_b"), truncation=True, max_length=max_length,
                    return_token_type_ids=True, return_attention_mask=False)
    return {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"]}


def tokenize(texts: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, *, overwrite: bool,
             cache_root: str, desc: str = "tokenize") -> tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """(flat ids, flat segment ids or None when all zero, offsets) of `texts` (columns text_a[, text_b]).

    The cache file is named by a fingerprint of the text (datasets' own fingerprint of `texts`: content for
    in-memory data, source files for loaded data), the tokenizer (datasets' Hasher pickles its whole state)
    and max_length. It lives in CACHE_ROOT/mate_kd_tokenized/, not beside a saved dataset, so a user's dataset
    directory is never written to. The local main process tokenises first; the others then load its file.
    """
    # datasets has no public accessor for a dataset's fingerprint; `_fingerprint` is what its own transforms use.
    fingerprint = Hasher.hash([CACHE_FORMAT, texts._fingerprint, tokenizer, max_length])
    path = os.path.join(cache_root, CACHE_SUBDIR, f"tokenized-{fingerprint}.arrow")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = PartialState()
    with state.local_main_process_first():
        out = texts.map(_tokenize_batch, batched=True, batch_size=10_000, fn_kwargs={"tokenizer": tokenizer,
                        "max_length": max_length}, remove_columns=texts.column_names, features=TOKEN_FEATURES,
                        cache_file_name=path, new_fingerprint=fingerprint, desc=desc,
                        load_from_cache_file=not overwrite or not state.is_local_main_process)
    ids = out.data.column("input_ids").combine_chunks()
    offsets = ids.offsets.to_numpy().astype(np.int64)
    segments = out.data.column("token_type_ids").combine_chunks().flatten().to_numpy()
    return ids.flatten().to_numpy(), segments if segments.any() else None, offsets - offsets[0]
