"""GLUE task registry and readers for the original GLUE TSV layout and for custom tables.

The GLUE files are read the way the SPEC decides: ``utf-8-sig`` (the MRPC header starts
with a byte-order mark) and ``csv.QUOTE_NONE`` (some sentences contain an unbalanced double
quote that must be kept verbatim). CoLA train/dev have no header row. Every row must have the
field count of its layout, and every label must belong to the task, so that a damaged or
misplaced file fails loudly with its path and line instead of training on garbage.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from mate_kd.errors import ConfigError, DataError

__all__ = [
    "Example",
    "Layout",
    "TaskSpec",
    "GLUE_TASKS",
    "get_task",
    "read_split",
    "read_table",
    "custom_task",
    "infer_labels",
]


@dataclass(frozen=True)
class Example:
    """One input pair; ``label`` is the raw label string, a float for STS-B, None for test."""

    guid: str
    text_a: str
    text_b: str | None
    label: str | float | None


@dataclass(frozen=True)
class Layout:
    """Column layout of one GLUE split file.

    ``header`` is the header row the original file has (None: no header row, then
    ``n_fields`` gives the field count). Column indices are 0-based; ``guid`` is the id
    column used for test splits, whose predictions must be written back under that id.
    """

    header: tuple[str, ...] | None
    text_a: int
    text_b: int | None
    label: int | None
    guid: int | None = None
    n_fields: int | None = None

    @property
    def field_count(self) -> int:
        """Number of fields every row of this file must have."""
        if self.header is not None:
            return len(self.header)
        assert self.n_fields is not None
        return self.n_fields


@dataclass(frozen=True)
class TaskSpec:
    """Everything the pipeline needs to know about a task: files, labels, metrics."""

    name: str
    dir_name: str
    labels: tuple[str, ...] | None
    train_split: str | None
    eval_splits: tuple[str, ...]
    test_splits: tuple[str, ...]
    submission_files: dict[str, str] = field(hash=False)
    selection_metric: str
    metrics: tuple[str, ...]
    layouts: dict[str, Layout] = field(default_factory=dict, hash=False, repr=False)
    score_range: tuple[float, float] | None = None  # regression: the scores a data file may hold

    @property
    def is_regression(self) -> bool:
        """True for a one-output regression task (STS-B, custom regression)."""
        return self.labels is None

    @property
    def num_labels(self) -> int:
        """Number of model outputs: 1 for regression, else the number of classes."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def label2id(self) -> dict[str, int]:
        """Class name -> output index in the canonical order (empty for regression)."""
        return {} if self.labels is None else {lab: i for i, lab in enumerate(self.labels)}

    @property
    def splits(self) -> tuple[str, ...]:
        """All split names of the task: train, eval, then test splits."""
        train = (self.train_split,) if self.train_split else ()
        return train + self.eval_splits + self.test_splits


_BINARY = ("0", "1")
_NLI3 = ("contradiction", "entailment", "neutral")
_NLI2 = ("entailment", "not_entailment")

_MRPC_TRAIN = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
_MRPC_TEST = ("index", "#1 ID", "#2 ID", "#1 String", "#2 String")
_STSB_TEST = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
              "sentence1", "sentence2")
_STSB_TRAIN = _STSB_TEST + ("score",)
_MNLI_TEST = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
              "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
              "sentence1", "sentence2")
_MNLI_TRAIN = _MNLI_TEST + ("label1", "gold_label")
_MNLI_DEV = _MNLI_TEST + ("label1", "label2", "label3", "label4", "label5", "gold_label")
_PAIR_TRAIN = ("index", "sentence1", "sentence2", "label")
_PAIR_TEST = ("index", "sentence1", "sentence2")
_QNLI_TRAIN = ("index", "question", "sentence", "label")
_QNLI_TEST = ("index", "question", "sentence")


def _glue(
    name: str,
    dir_name: str,
    labels: tuple[str, ...] | None,
    selection_metric: str,
    metrics: tuple[str, ...],
    train: Layout | None,
    dev: Layout | None,
    test: Layout,
    eval_splits: tuple[str, ...] = ("dev",),
    test_splits: tuple[str, ...] = ("test",),
    submission_files: dict[str, str] | None = None,
    score_range: tuple[float, float] | None = None,
) -> TaskSpec:
    layouts: dict[str, Layout] = {}
    if train is not None:
        layouts["train"] = train
    if dev is not None:
        for split in eval_splits:
            layouts[split] = dev
    for split in test_splits:
        layouts[split] = test
    return TaskSpec(
        name=name,
        dir_name=dir_name,
        labels=labels,
        train_split="train" if train is not None else None,
        eval_splits=eval_splits if dev is not None else (),
        test_splits=test_splits,
        submission_files=submission_files or {"test": f"{dir_name}.tsv"},
        selection_metric=selection_metric,
        metrics=metrics,
        layouts=layouts,
        score_range=score_range,
    )


def _pair(header: tuple[str, ...], labelled: bool) -> Layout:
    """Layout of QNLI/RTE/WNLI/AX files: index, first text, second text[, label]."""
    return Layout(header, text_a=1, text_b=2, label=3 if labelled else None,
                  guid=None if labelled else 0)


_ACC = ("acc",)
_ACC_F1 = ("acc", "f1", "acc_and_f1")
_CORR = ("pearson", "spearmanr", "corr")

GLUE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _glue("cola", "CoLA", _BINARY, "mcc", ("mcc",),
              train=Layout(None, text_a=3, text_b=None, label=1, n_fields=4),
              dev=Layout(None, text_a=3, text_b=None, label=1, n_fields=4),
              test=Layout(("index", "sentence"), text_a=1, text_b=None, label=None, guid=0)),
        _glue("sst-2", "SST-2", _BINARY, "acc", _ACC,
              train=Layout(("sentence", "label"), text_a=0, text_b=None, label=1),
              dev=Layout(("sentence", "label"), text_a=0, text_b=None, label=1),
              test=Layout(("index", "sentence"), text_a=1, text_b=None, label=None, guid=0)),
        _glue("mrpc", "MRPC", _BINARY, "acc_and_f1", _ACC_F1,
              train=Layout(_MRPC_TRAIN, text_a=3, text_b=4, label=0),
              dev=Layout(_MRPC_TRAIN, text_a=3, text_b=4, label=0),
              test=Layout(_MRPC_TEST, text_a=3, text_b=4, label=None, guid=0)),
        _glue("sts-b", "STS-B", None, "corr", _CORR,
              train=Layout(_STSB_TRAIN, text_a=7, text_b=8, label=9),
              dev=Layout(_STSB_TRAIN, text_a=7, text_b=8, label=9),
              test=Layout(_STSB_TEST, text_a=7, text_b=8, label=None, guid=0), score_range=(0.0, 5.0)),
        _glue("qqp", "QQP", _BINARY, "acc_and_f1", _ACC_F1,
              train=Layout(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                           text_a=3, text_b=4, label=5),
              dev=Layout(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                         text_a=3, text_b=4, label=5),
              test=Layout(("id", "question1", "question2"), text_a=1, text_b=2, label=None,
                          guid=0)),
        _glue("mnli", "MNLI", _NLI3, "acc", _ACC,
              train=Layout(_MNLI_TRAIN, text_a=8, text_b=9, label=11),
              dev=Layout(_MNLI_DEV, text_a=8, text_b=9, label=15),
              test=Layout(_MNLI_TEST, text_a=8, text_b=9, label=None, guid=0),
              eval_splits=("dev_matched", "dev_mismatched"),
              test_splits=("test_matched", "test_mismatched"),
              submission_files={"test_matched": "MNLI-m.tsv",
                                "test_mismatched": "MNLI-mm.tsv"}),
        _glue("qnli", "QNLI", _NLI2, "acc", _ACC,
              train=_pair(_QNLI_TRAIN, True), dev=_pair(_QNLI_TRAIN, True),
              test=_pair(_QNLI_TEST, False)),
        _glue("rte", "RTE", _NLI2, "acc", _ACC,
              train=_pair(_PAIR_TRAIN, True), dev=_pair(_PAIR_TRAIN, True),
              test=_pair(_PAIR_TEST, False)),
        _glue("wnli", "WNLI", _BINARY, "acc", _ACC,
              train=_pair(_PAIR_TRAIN, True), dev=_pair(_PAIR_TRAIN, True),
              test=_pair(_PAIR_TEST, False)),
        _glue("ax", "AX", _NLI3, "acc", _ACC,
              train=None, dev=None, test=_pair(_PAIR_TEST, False)),
    )
}

_ALIASES = {"diagnostic": "ax"}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


_LOOKUP: dict[str, str] = {_normalise(key): key for key in GLUE_TASKS}
_LOOKUP.update(_ALIASES)


def get_task(name: str) -> TaskSpec:
    """Look up a GLUE task by name, forgiving case and dashes ("SST-2", "sst2", "stsb")."""
    key = _LOOKUP.get(_normalise(name))
    if key is None:
        known = ", ".join(GLUE_TASKS)
        raise ConfigError(
            f"unknown task {name!r}; known GLUE tasks: {known}. "
            "For your own data, pass --train_file (and a dev file) instead of a GLUE task name."
        )
    return GLUE_TASKS[key]


def _expected_layout(task: TaskSpec, data_dir: str) -> str:
    names = ",".join(task.layouts)
    return (f"expected {data_dir}/{{{names}}}.tsv, the original GLUE layout "
            f"(glue_data/{task.dir_name}/ as written by the GLUE download script"
            + ("; AX is the GLUE diagnostic set diagnostic.tsv saved as AX/test.tsv"
               if task.name == "ax" else "") + ")")


#: First bytes of files that are not UTF-8 text: what the file is, and how to make a UTF-8 text file of it.
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed", "Decompress it first: mv {path} {path}.gz && gunzip {path}.gz"),
    (b"PK\x03\x04", "a zip archive", "Extract the data file from it: unzip {path}"),
    (b"\xff\xfe\x00\x00", "UTF-32 (it starts with a UTF-32 byte-order mark)",
     "Convert it: iconv -f UTF-32 -t UTF-8 {path} > {path}.utf8 && mv {path}.utf8 {path}"),
    (b"\x00\x00\xfe\xff", "UTF-32 (it starts with a UTF-32 byte-order mark)",
     "Convert it: iconv -f UTF-32 -t UTF-8 {path} > {path}.utf8 && mv {path}.utf8 {path}"),
    (b"\xff\xfe", "UTF-16 (it starts with the UTF-16 byte-order mark FF FE)",
     "Convert it: iconv -f UTF-16 -t UTF-8 {path} > {path}.utf8 && mv {path}.utf8 {path}"),
    (b"\xfe\xff", "UTF-16 (it starts with the UTF-16 byte-order mark FE FF)",
     "Convert it: iconv -f UTF-16 -t UTF-8 {path} > {path}.utf8 && mv {path}.utf8 {path}"),
)
_EXPECTED = "Data files must be UTF-8 text (a UTF-8 byte-order mark is fine)."


@contextmanager
def _utf8(path: str) -> Iterator[TextIO]:
    """Open a data file as UTF-8 text, refusing what is not: a message names the file, the line and the fix.

    Compressed and UTF-16/32 files are recognised by their first bytes (a UTF-16 file without a byte-order mark
    by its NUL bytes, which csv would read as text); any other byte that is not UTF-8 is reported with its line.
    """
    with open(path, "rb") as f:
        head = f.read(4096)
    for signature, kind, fix in _SIGNATURES:
        if head.startswith(signature):
            raise DataError(f"{path}, line 1: the file is {kind}, not UTF-8 text. {_EXPECTED} "
                            + fix.format(path=path))
    if b"\x00" in head:
        line = head[:head.index(b"\x00")].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: the file contains NUL bytes, so it is not UTF-8 text (UTF-16 without "
                        f"a byte-order mark, or a binary file?). {_EXPECTED} Convert it, e.g. iconv -f UTF-16LE "
                        f"-t UTF-8 {path} > {path}.utf8 && mv {path}.utf8 {path}")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            yield f
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _not_utf8(path: str) -> DataError:
    """The first line of a file that does not decode as UTF-8, with the offending byte."""
    with open(path, "rb") as f:
        for line, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                near = raw[max(0, err.start - 15):err.start + 15].rstrip(b"\r\n")
                return DataError(
                    f"{path}, line {line}: byte 0x{raw[err.start]:02X} (at byte {err.start + 1} of the line, near "
                    f"{near!r}) is not UTF-8; the file is in another encoding, probably Latin-1 or Windows-1252. "
                    f"{_EXPECTED} Convert it, e.g. iconv -f WINDOWS-1252 -t UTF-8 {path} > {path}.utf8 && "
                    f"mv {path}.utf8 {path}"
                )
    return DataError(f"{path} is not UTF-8 text. {_EXPECTED}")


def _rows(path: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based line number, fields) of a GLUE TSV, skipping blank lines."""
    with _utf8(path) as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for row in reader:
            if not row:
                continue
            yield reader.line_num, row


def _check_header(path: str, line: int, row: list[str], layout: Layout, split: str,
                  task: TaskSpec) -> None:
    assert layout.header is not None
    expected = "\t".join(layout.header)
    if len(row) != len(layout.header):
        raise DataError(
            f"{path}, line {line}: header has {len(row)} fields, expected "
            f"{len(layout.header)} ({expected!r}) for the {task.dir_name} {split} split of "
            "the original GLUE layout; check that this is the right file for this split"
        )
    used = [c for c in (layout.text_a, layout.text_b, layout.label, layout.guid) if c is not None]
    for col in used:
        if row[col].strip() != layout.header[col]:
            raise DataError(
                f"{path}, line {line}: header column {col + 1} is {row[col]!r}, expected "
                f"{layout.header[col]!r} (full header {expected!r}) for the {task.dir_name} "
                f"{split} split of the original GLUE layout; check that this is the right "
                "file for this split"
            )


def _parse_label(task: TaskSpec, raw: str, path: str, line: int) -> str | float:
    if task.labels is None:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(
                f"{path}, line {line}: score {raw!r} is not a finite number; "
                f"{task.dir_name} scores must be floats such as 3.8"
            )
        if task.score_range and not task.score_range[0] <= value <= task.score_range[1]:
            low, high = task.score_range
            raise DataError(
                f"{path}, line {line}: score {raw!r} is outside [{low:g}, {high:g}], the range of "
                f"{task.dir_name} similarity scores; fix or drop this row"
            )
        return value
    if raw not in task.labels:
        raise DataError(
            f"{path}, line {line}: label {raw!r} is not a {task.dir_name} label; "
            f"allowed labels: {', '.join(task.labels)}. Fix or drop this row"
        )
    return raw


def read_split(task: TaskSpec, data_dir: str, split: str) -> list[Example]:
    """Read ``data_dir/{split}.tsv`` of a GLUE task in its original layout.

    ``data_dir`` is the task directory (e.g. ``glue_data/MNLI``). Train/dev guids are
    ``f"{split}-{line}"`` with the file's 1-based line number, so a problem example can be
    found in the file; test guids are the file's index column, which GLUE submissions need.
    """
    if not task.layouts:
        raise ConfigError(
            f"task {task.name!r} has no GLUE file layout; read custom data with read_table"
        )
    if split not in task.layouts:
        raise ConfigError(
            f"unknown split {split!r} for task {task.name}; its splits are "
            f"{', '.join(task.layouts)}"
        )
    layout = task.layouts[split]
    if os.path.isfile(data_dir):
        parent = os.path.dirname(data_dir) or "."
        raise DataError(f"task directory {data_dir} is a file, not a directory; pass the directory that holds the "
                        f"task's files, e.g. --data_dir {parent}: {_expected_layout(task, parent)}")
    if not os.path.isdir(data_dir):
        raise DataError(f"task directory {data_dir} not found; {_expected_layout(task, data_dir)}")
    path = os.path.join(data_dir, f"{split}.tsv")
    if os.path.isdir(path):
        raise DataError(f"data file {path} is a directory, not a file; {_expected_layout(task, data_dir)}")
    if not os.path.isfile(path):
        raise DataError(f"data file {path} not found; {_expected_layout(task, data_dir)}")

    is_test = split in task.test_splits
    rows = _rows(path)
    if layout.header is not None:
        first = next(rows, None)
        if first is None:
            raise DataError(f"{path} is empty; it should start with the header "
                            f"{chr(9).join(layout.header)!r} followed by examples. "
                            "Re-download the GLUE data")
        _check_header(path, first[0], first[1], layout, split, task)

    n_fields = layout.field_count
    examples: list[Example] = []
    for line, row in rows:
        if len(row) != n_fields:
            raise DataError(
                f"{path}, line {line}: expected {n_fields} tab-separated fields, got "
                f"{len(row)}; the file does not follow the original GLUE layout of "
                f"{task.dir_name} {split} (a stray tab or newline inside a sentence?). "
                "Fix or remove this line"
            )
        text_b = row[layout.text_b] if layout.text_b is not None else None
        if is_test:
            assert layout.guid is not None
            guid, label = row[layout.guid], None
        else:
            assert layout.label is not None
            guid = f"{split}-{line}"
            label = _parse_label(task, row[layout.label], path, line)
        examples.append(Example(guid=guid, text_a=row[layout.text_a], text_b=text_b, label=label))
    if not examples:
        raise DataError(f"{path} has no examples; re-download the GLUE data for "
                        f"{task.dir_name} ({_expected_layout(task, data_dir)})")
    return examples


def _table_records(path: str) -> Iterator[tuple[int, Mapping[str, object], list[str]]]:
    """Yield (1-based line, record, columns present) from a .csv/.tsv/.json/.jsonl file."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".csv", ".tsv"):
        with _utf8(path) as f:
            reader = csv.reader(f, delimiter="," if ext == ".csv" else "\t")
            header: list[str] | None = None
            start = 1
            for row in reader:
                first, start = start, reader.line_num + 1
                if first != reader.line_num:
                    raise DataError(
                        f"{path}, lines {first}-{reader.line_num}: one record spans {reader.line_num - first + 1} "
                        "lines. A field that starts with a double quote runs to the next closing quote, so an "
                        "unbalanced quote swallows the lines after it. If the quote is part of the text, wrap "
                        'the field in quotes and double the quote inside ("""Hi"" she said"), or write the '
                        "data as .jsonl; remove line breaks inside fields"
                    )
                if not row:
                    continue
                if header is None:
                    header = [h.strip() for h in row]
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{path}, line {reader.line_num}: expected {len(header)} fields as in "
                        f"the header, got {len(row)}; quote fields that contain the delimiter"
                    )
                yield reader.line_num, dict(zip(header, row)), header
    elif ext in (".json", ".jsonl"):
        with _utf8(path) as f:
            for line, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"{path}, line {line}: not valid JSON ({exc.msg}); write one JSON "
                        "object per line (JSON Lines)"
                    ) from None
                if not isinstance(record, dict):
                    raise DataError(
                        f"{path}, line {line}: expected a JSON object per line, got "
                        f"{type(record).__name__}; write one JSON object per line (JSON Lines)"
                    )
                yield line, record, list(record)
    else:
        raise DataError(
            f"{path}: unsupported file type {ext or '(none)'!r}; use .csv, .tsv (with a "
            "header row) or .json/.jsonl (one JSON object per line)"
        )


def _text_value(value: object, column: str, path: str, line: int) -> str:
    if not isinstance(value, str):
        raise DataError(f"{path}, line {line}: column {column!r} should be text, got "
                        f"{type(value).__name__} {value!r}")
    return value


def _label_value(value: object, column: str, path: str, line: int,
                 regression: bool) -> str | float:
    if value is None or value == "" or isinstance(value, (bool, list, dict)):
        raise DataError(f"{path}, line {line}: column {column!r} has no usable label "
                        f"({value!r}); every training and dev row needs a label")
    if regression:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise DataError(f"{path}, line {line}: label {value!r} in column {column!r} is "
                            "not a finite number, as a regression task needs")
        return number
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_table(
    path: str,
    text_column: str,
    text_pair_column: str | None,
    label_column: str | None,
    *,
    regression: bool = False,
) -> list[Example]:
    """Read custom data from .csv/.tsv (header row) or .json/.jsonl (one object per line).

    Labels are kept as strings (numbers from JSON are converted with ``str``) so that they
    can be matched against the task's label names; with ``regression=True`` they are parsed
    as floats. Without ``label_column`` (test data) labels are None. Guids are
    ``f"{basename}-{line}"`` so a bad example can be traced back to its line.
    """
    if os.path.isdir(path):
        raise DataError(f"data file {path} is a directory; pass a .csv, .tsv, .json or .jsonl file (for a "
                        "directory in the GLUE layout, pass --task_name and --data_dir instead)")
    if not os.path.isfile(path):
        raise DataError(f"data file {path} not found; pass an existing .csv, .tsv, .json or "
                        ".jsonl file")
    wanted = [c for c in (text_column, text_pair_column, label_column) if c is not None]
    stem = os.path.basename(path)
    examples: list[Example] = []
    for line, record, present in _table_records(path):
        for column in wanted:
            if column not in record:
                raise DataError(
                    f"{path}, line {line}: column {column!r} not found; columns present: "
                    f"{', '.join(map(str, present))}. Choose the columns with the text, "
                    "text-pair and label column options"
                )
        text_b = (_text_value(record[text_pair_column], text_pair_column, path, line)
                  if text_pair_column is not None else None)
        label = (_label_value(record[label_column], label_column, path, line, regression)
                 if label_column is not None else None)
        examples.append(Example(
            guid=f"{stem}-{line}",
            text_a=_text_value(record[text_column], text_column, path, line),
            text_b=text_b,
            label=label,
        ))
    if not examples:
        raise DataError(f"{path} has no examples; it needs a header row (csv/tsv) and at "
                        "least one data row")
    return examples


def infer_labels(examples: Sequence[Example]) -> tuple[str, ...]:
    """Sorted unique label strings, the label set of a custom classification task."""
    labels = sorted({str(ex.label) for ex in examples if ex.label is not None})
    if not labels:
        raise DataError("no labels found in the training examples; give a label column")
    return tuple(labels)


def custom_task(labels: Sequence[str] | None, regression: bool = False,
                name: str = "custom") -> TaskSpec:
    """A task for user data: accuracy (plus macro-F1) or Pearson/Spearman, one dev split."""
    if regression:
        if labels is not None:
            raise ConfigError("a regression task has no label names; pass labels=None")
        label_tuple: tuple[str, ...] | None = None
    else:
        if labels is None:
            raise ConfigError("a classification task needs its label names; infer them from "
                              "the training data with infer_labels or pass them explicitly")
        label_tuple = tuple(str(lab) for lab in labels)
        if len(label_tuple) < 2:
            raise ConfigError(f"a classification task needs at least 2 labels, got "
                              f"{list(label_tuple)}")
        if len(set(label_tuple)) != len(label_tuple):
            raise ConfigError(f"duplicate label names in {list(label_tuple)}")
    return TaskSpec(
        name=name,
        dir_name=name,
        labels=label_tuple,
        train_split="train",
        eval_splits=("dev",),
        test_splits=("test",),
        submission_files={"test": "custom.tsv"},
        selection_metric="corr" if regression else "acc",
        metrics=_CORR if regression else ("acc", "macro_f1"),
    )
