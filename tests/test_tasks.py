"""Task registry and readers: every GLUE layout, the SPEC's reading quirks, every error."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from mate_kd.errors import ConfigError, DataError
from mate_kd.tasks import (
    GLUE_TASKS,
    Example,
    custom_task,
    get_task,
    infer_labels,
    read_split,
    read_table,
)

FIXTURES = Path(__file__).parent / "fixtures"
GLUE = FIXTURES / "glue"
CUSTOM = FIXTURES / "custom"
REAL_GLUE = "/work/shared/data/glue"

# task -> split -> number of examples in the fixture file
EXPECTED_COUNTS = {
    "cola": {"train": 8, "dev": 6, "test": 5},
    "sst-2": {"train": 10, "dev": 6, "test": 5},
    "mrpc": {"train": 8, "dev": 6, "test": 5},
    "sts-b": {"train": 8, "dev": 6, "test": 5},
    "qqp": {"train": 8, "dev": 6, "test": 5},
    "mnli": {"train": 9, "dev_matched": 6, "dev_mismatched": 6,
             "test_matched": 5, "test_mismatched": 5},
    "qnli": {"train": 8, "dev": 6, "test": 5},
    "rte": {"train": 8, "dev": 6, "test": 5},
    "wnli": {"train": 6, "dev": 6, "test": 5},
    "ax": {"test": 6},
}
PAIR_TASKS = {"mrpc", "sts-b", "qqp", "mnli", "qnli", "rte", "wnli", "ax"}


def read(task_name: str, split: str) -> list[Example]:
    task = get_task(task_name)
    return read_split(task, str(GLUE / task.dir_name), split)


def copy_task(tmp_path: Path, dir_name: str) -> Path:
    dst = tmp_path / dir_name
    shutil.copytree(GLUE / dir_name, dst)
    return dst


def write_lines(path: Path, lines: list[str], bom: bool = False) -> None:
    text = ("\ufeff" if bom else "") + "".join(line + "\n" for line in lines)
    path.write_text(text, encoding="utf-8", newline="")


# ---------------------------------------------------------------- registry


def test_registry_has_all_glue_tasks():
    assert set(GLUE_TASKS) == set(EXPECTED_COUNTS)


@pytest.mark.parametrize("alias, key", [
    ("SST-2", "sst-2"), ("sst2", "sst-2"), ("sst-2", "sst-2"), ("STS-B", "sts-b"),
    ("stsb", "sts-b"), ("MNLI", "mnli"), ("CoLA", "cola"), ("qqp", "qqp"), ("AX", "ax"),
    (" rte ", "rte"), ("WNLI", "wnli"), ("QNLI", "qnli"), ("MRPC", "mrpc"),
])
def test_get_task_aliases(alias, key):
    assert get_task(alias).name == key


def test_unknown_task_lists_known_tasks_and_custom_option():
    with pytest.raises(ConfigError) as info:
        get_task("imdb")
    msg = str(info.value)
    assert "imdb" in msg
    for name in GLUE_TASKS:
        assert name in msg
    assert "--train_file" in msg


@pytest.mark.parametrize("name, labels, metric", [
    ("cola", ("0", "1"), "mcc"), ("sst-2", ("0", "1"), "acc"),
    ("mrpc", ("0", "1"), "acc_and_f1"), ("qqp", ("0", "1"), "acc_and_f1"),
    ("sts-b", None, "corr"), ("wnli", ("0", "1"), "acc"),
    ("mnli", ("contradiction", "entailment", "neutral"), "acc"),
    ("ax", ("contradiction", "entailment", "neutral"), "acc"),
    ("qnli", ("entailment", "not_entailment"), "acc"),
    ("rte", ("entailment", "not_entailment"), "acc"),
])
def test_labels_and_selection_metric(name, labels, metric):
    task = get_task(name)
    assert task.labels == labels
    assert task.selection_metric == metric
    assert task.is_regression == (labels is None)
    assert task.num_labels == (1 if labels is None else len(labels))


def test_splits_and_submission_files():
    mnli = get_task("mnli")
    assert mnli.train_split == "train"
    assert mnli.eval_splits == ("dev_matched", "dev_mismatched")
    assert mnli.test_splits == ("test_matched", "test_mismatched")
    assert mnli.submission_files == {"test_matched": "MNLI-m.tsv",
                                     "test_mismatched": "MNLI-mm.tsv"}
    ax = get_task("ax")
    assert ax.train_split is None and ax.eval_splits == () and ax.test_splits == ("test",)
    assert ax.submission_files == {"test": "AX.tsv"}
    expected = {"cola": "CoLA.tsv", "sst-2": "SST-2.tsv", "mrpc": "MRPC.tsv",
                "sts-b": "STS-B.tsv", "qqp": "QQP.tsv", "qnli": "QNLI.tsv",
                "rte": "RTE.tsv", "wnli": "WNLI.tsv"}
    for name, file_name in expected.items():
        task = get_task(name)
        assert task.eval_splits == ("dev",) and task.test_splits == ("test",)
        assert task.submission_files == {"test": file_name}
    assert get_task("sts-b").dir_name == "STS-B"


def test_taskspec_is_hashable_and_frozen():
    task = get_task("rte")
    assert hash(task) == hash(get_task("RTE"))
    with pytest.raises(AttributeError):
        task.name = "x"  # type: ignore[misc]


# ---------------------------------------------------------------- GLUE fixtures


@pytest.mark.parametrize("name, split, count", [
    (name, split, count)
    for name, splits in EXPECTED_COUNTS.items() for split, count in splits.items()
])
def test_every_split_reads(name, split, count):
    task = get_task(name)
    assert split in task.splits
    examples = read(name, split)
    assert len(examples) == count
    is_test = split in task.test_splits
    for i, ex in enumerate(examples):
        assert isinstance(ex, Example)
        assert ex.text_a and ex.text_a == ex.text_a.lstrip()
        assert (ex.text_b is not None) == (name in PAIR_TASKS)
        if is_test:
            assert ex.label is None
            assert ex.guid == str(i)
        elif task.is_regression:
            assert isinstance(ex.label, float)
        else:
            assert ex.label in task.labels
            assert ex.guid.startswith(f"{split}-")
    if not is_test and not task.is_regression:
        assert {ex.label for ex in examples} == set(task.labels)
    assert len({ex.guid for ex in examples}) == count


def test_all_splits_of_each_task_are_covered():
    for name, splits in EXPECTED_COUNTS.items():
        assert set(get_task(name).splits) == set(splits)


def test_cola_has_no_header_and_right_columns():
    examples = read("cola", "train")
    assert examples[0] == Example("train-1", "the cat sat on the mat .", None, "1")
    assert examples[1] == Example("train-2", "the cat sat the on mat .", None, "0")
    test = read("cola", "test")
    assert test[0] == Example("0", "the bird sings .", None, None)


def test_unbalanced_quote_is_read_verbatim():
    sst = read("sst-2", "train")
    assert sst[2] == Example("train-4", 'a warm and "funny story . ', None, "1")
    assert sst[3] == Example("train-5", "i do not like this film . ", None, "0")
    cola = read("cola", "train")
    assert cola[4].text_a == 'he said "hello to me .'
    assert cola[5].text_a == "him went to school ."


def test_mrpc_bom_header_and_columns():
    assert (GLUE / "MRPC" / "train.tsv").read_bytes().startswith(b"\xef\xbb\xbf")
    train = read("mrpc", "train")
    assert train[0] == Example("train-2", "the man is in the house .", "the man is at home .", "1")
    assert train[1].label == "0"
    test = read("mrpc", "test")
    assert test[0] == Example("0", "the cat is black .", "the cat has black fur .", None)


def test_stsb_columns_and_float_scores():
    train = read("sts-b", "train")
    assert train[0] == Example("train-2", "a man is playing a guitar .",
                               "a man plays a guitar .", 5.0)
    assert [ex.label for ex in train[:3]] == [5.0, 0.5, 3.8]


def test_qqp_columns():
    train = read("qqp", "train")
    assert train[0].text_a == "how do i learn to cook ?"
    assert train[0].text_b == "what is the best way to learn cooking ?"
    assert train[0].label == "1"
    test = read("qqp", "test")
    assert test[1] == Example("1", "how do i learn to cook ?", "where can i buy a car ?", None)


def test_mnli_columns_train_dev_test():
    train = read("mnli", "train")
    assert train[1] == Example("train-3", "the man is sleeping on the bed .",
                               "the man is running outside .", "contradiction")
    dev = read("mnli", "dev_mismatched")
    assert dev[0].text_a == "two girls eat lunch at school ."
    assert dev[0].label == "entailment"
    test = read("mnli", "test_mismatched")
    assert test[0] == Example("0", "two girls eat lunch at school .",
                              "the girls are swimming .", None)


def test_qnli_rte_wnli_ax_columns():
    assert read("qnli", "train")[1] == Example(
        "train-3", "what color is the sky ?", "birds can fly very high .", "not_entailment")
    assert read("rte", "dev")[0] == Example(
        "dev-2", "she moved to a new city in june .", "she moved .", "entailment")
    assert read("wnli", "test")[1] == Example(
        "1", "the cup did not fit in the box because it was big .", "the box was big .", None)
    assert read("ax", "test")[2].text_b == "the man is tired after work ."


def test_crlf_line_endings_are_accepted(tmp_path):
    d = copy_task(tmp_path, "RTE")
    text = (d / "dev.tsv").read_text(encoding="utf-8")
    (d / "dev.tsv").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    examples = read_split(get_task("rte"), str(d), "dev")
    assert examples == read("rte", "dev")


# ---------------------------------------------------------------- errors


def test_unknown_split_is_config_error():
    with pytest.raises(ConfigError, match="dev_matched"):
        read_split(get_task("mnli"), str(GLUE / "MNLI"), "dev")
    with pytest.raises(ConfigError, match="train"):
        read_split(get_task("ax"), str(GLUE / "AX"), "train")


def test_missing_directory(tmp_path):
    missing = tmp_path / "MNLI"
    with pytest.raises(DataError) as info:
        read_split(get_task("mnli"), str(missing), "train")
    msg = str(info.value)
    assert str(missing) in msg
    assert "{train,dev_matched,dev_mismatched,test_matched,test_mismatched}.tsv" in msg
    assert "original GLUE layout" in msg


def test_missing_file(tmp_path):
    d = copy_task(tmp_path, "RTE")
    (d / "dev.tsv").unlink()
    with pytest.raises(DataError) as info:
        read_split(get_task("rte"), str(d), "dev")
    msg = str(info.value)
    assert str(d / "dev.tsv") in msg and "original GLUE layout" in msg


@pytest.mark.parametrize("content", ["", "\n", "sentence\tlabel\n"])
def test_empty_file(tmp_path, content):
    d = tmp_path / "SST-2"
    d.mkdir()
    (d / "train.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_split(get_task("sst-2"), str(d), "train")
    assert "train.tsv" in str(info.value)


def test_empty_headerless_file(tmp_path):
    d = tmp_path / "CoLA"
    d.mkdir()
    (d / "dev.tsv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no examples"):
        read_split(get_task("cola"), str(d), "dev")


def test_wrong_field_count_names_file_line_and_counts(tmp_path):
    d = copy_task(tmp_path, "RTE")
    lines = (d / "train.tsv").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3] + "\textra"
    write_lines(d / "train.tsv", lines)
    with pytest.raises(DataError) as info:
        read_split(get_task("rte"), str(d), "train")
    msg = str(info.value)
    assert "train.tsv" in msg and "line 4" in msg
    assert "expected 4" in msg and "got 5" in msg


def test_wrong_field_count_headerless_cola(tmp_path):
    d = copy_task(tmp_path, "CoLA")
    lines = (d / "dev.tsv").read_text(encoding="utf-8").splitlines()
    lines[1] = "gj04\t1\tno star column"
    write_lines(d / "dev.tsv", lines)
    with pytest.raises(DataError) as info:
        read_split(get_task("cola"), str(d), "dev")
    msg = str(info.value)
    assert "dev.tsv" in msg and "line 2" in msg and "expected 4" in msg and "got 3" in msg


def test_mrpc_row_shorter_than_bom_header(tmp_path):
    d = copy_task(tmp_path, "MRPC")
    lines = (d / "dev.tsv").read_text(encoding="utf-8-sig").splitlines()
    lines[2] = "1\t7\t8\tonly one sentence ."
    write_lines(d / "dev.tsv", lines, bom=True)
    with pytest.raises(DataError, match=r"line 3.*expected 5.*got 4"):
        read_split(get_task("mrpc"), str(d), "dev")


def test_label_not_in_label_set(tmp_path):
    d = copy_task(tmp_path, "MNLI")
    lines = (d / "dev_matched.tsv").read_text(encoding="utf-8").splitlines()
    fields = lines[5].split("\t")
    fields[-1] = "-"
    lines[5] = "\t".join(fields)
    write_lines(d / "dev_matched.tsv", lines)
    with pytest.raises(DataError) as info:
        read_split(get_task("mnli"), str(d), "dev_matched")
    msg = str(info.value)
    assert "dev_matched.tsv" in msg and "line 6" in msg and "'-'" in msg
    assert "contradiction, entailment, neutral" in msg


def test_stsb_score_not_a_float(tmp_path):
    d = copy_task(tmp_path, "STS-B")
    lines = (d / "dev.tsv").read_text(encoding="utf-8").splitlines()
    fields = lines[2].split("\t")
    fields[-1] = "high"
    lines[2] = "\t".join(fields)
    write_lines(d / "dev.tsv", lines)
    with pytest.raises(DataError) as info:
        read_split(get_task("sts-b"), str(d), "dev")
    msg = str(info.value)
    assert "dev.tsv" in msg and "line 3" in msg and "'high'" in msg



@pytest.mark.parametrize("split,score", [("train", "5.1"), ("dev", "-0.5")])
def test_stsb_score_outside_0_to_5(tmp_path, split, score):
    d = copy_task(tmp_path, "STS-B")
    lines = (d / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    lines[4] = "\t".join(lines[4].split("\t")[:-1] + [score])
    write_lines(d / f"{split}.tsv", lines)
    with pytest.raises(DataError, match=rf"{split}.tsv, line 5: score '{score}' is outside \[0, 5\], the range of STS-B "
                                        "similarity scores; fix or drop this row"):
        read_split(get_task("sts-b"), str(d), split)
    lines[4] = "\t".join(lines[4].split("\t")[:-1] + ["5"])
    write_lines(d / f"{split}.tsv", lines)
    assert read_split(get_task("sts-b"), str(d), split)[3].label == 5.0

def test_test_file_in_place_of_dev_is_refused(tmp_path):
    d = copy_task(tmp_path, "SST-2")
    shutil.copy(d / "test.tsv", d / "dev.tsv")
    with pytest.raises(DataError, match=r"dev.tsv, line 1: header"):
        read_split(get_task("sst-2"), str(d), "dev")


def test_header_with_wrong_field_count(tmp_path):
    d = copy_task(tmp_path, "MNLI")
    shutil.copy(d / "train.tsv", d / "dev_matched.tsv")
    with pytest.raises(DataError, match=r"line 1: header has 12 fields, expected 16"):
        read_split(get_task("mnli"), str(d), "dev_matched")


# ---------------------------------------------------------------- custom data


def test_custom_csv_and_jsonl():
    train = read_table(str(CUSTOM / "train.csv"), "text", None, "label")
    assert len(train) == 9
    assert train[0] == Example("train.csv-2", "the movie is good .", None, "pos")
    assert train[-1].text_a == "good, warm and funny ."
    dev = read_table(str(CUSTOM / "dev.csv"), "text", None, "label")
    assert [ex.label for ex in dev] == ["pos", "neg", "pos", "neg"]
    test = read_table(str(CUSTOM / "test.jsonl"), "text", None, None)
    assert len(test) == 4 and all(ex.label is None for ex in test)
    assert test[0] == Example("test.jsonl-1", "a good film .", None, None)
    labelled = read_table(str(CUSTOM / "test.jsonl"), "text", None, "label")
    assert [ex.label for ex in labelled] == ["pos", "neg", "pos", "neg"]
    assert infer_labels(train) == ("neg", "pos")


def test_custom_tsv_pair_and_regression(tmp_path):
    path = tmp_path / "data.tsv"
    write_lines(path, ["a\tb\tscore", "one cat\ttwo cats\t1.5", "a dog\ta car\t0"])
    examples = read_table(str(path), "a", "b", "score", regression=True)
    assert examples[0] == Example("data.tsv-2", "one cat", "two cats", 1.5)
    assert examples[1].label == 0.0
    as_text = read_table(str(path), "a", "b", "score")
    assert as_text[1].label == "0"


def test_custom_json_numeric_labels(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"text": "a", "label": 1}, {"text": "b", "label": 0.0}]) + "\n", encoding="utf-8")
    examples = read_table(str(path), "text", None, "label")
    assert [ex.label for ex in examples] == ["1", "0"]


def test_custom_missing_column_names_columns_present():
    with pytest.raises(DataError) as info:
        read_table(str(CUSTOM / "train.csv"), "sentence", None, "label")
    msg = str(info.value)
    assert "'sentence'" in msg and "text, label" in msg and "train.csv" in msg
    with pytest.raises(DataError, match="'gold'.*text, label"):
        read_table(str(CUSTOM / "test.jsonl"), "text", None, "gold")


def test_custom_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_table(str(tmp_path / "nope.csv"), "text", None, "label")
    bad = tmp_path / "x.parquet"
    bad.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"\.csv, \.tsv"):
        read_table(str(bad), "text", None, "label")
    empty = tmp_path / "e.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="no examples"):
        read_table(str(empty), "text", None, "label")
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"text": "a", "label": "pos"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DataError, match="b.jsonl, line 2"):
        read_table(str(broken), "text", None, "label")
    ragged = tmp_path / "r.csv"
    ragged.write_text("text,label\na,pos\nb,neg,extra\n", encoding="utf-8")
    with pytest.raises(DataError, match="r.csv, line 3"):
        read_table(str(ragged), "text", None, "label")
    nolabel = tmp_path / "n.csv"
    nolabel.write_text("text,label\na,\n", encoding="utf-8")
    with pytest.raises(DataError, match="n.csv, line 2"):
        read_table(str(nolabel), "text", None, "label")
    notnum = tmp_path / "s.csv"
    notnum.write_text("text,label\na,high\n", encoding="utf-8")
    with pytest.raises(DataError, match="s.csv, line 2.*'high'"):
        read_table(str(notnum), "text", None, "label", regression=True)


@pytest.mark.parametrize("ext, sep", [(".tsv", "\t"), (".csv", ",")])
def test_custom_table_refuses_a_record_swallowing_lines(tmp_path, ext, sep):
    """An unbalanced opening quote would silently merge the following rows into one text."""
    path = tmp_path / f"d{ext}"
    write_lines(path, [f"text{sep}label", f"fine{sep}pos", f'"Wow{sep}pos', f"next{sep}neg", f"last{sep}pos"])
    with pytest.raises(DataError, match=rf"d\{ext}, lines 3-5: one record spans 3 lines.*\.jsonl"):
        read_table(str(path), "text", None, "label")
    quoted = tmp_path / f"q{ext}"
    write_lines(quoted, [f"text{sep}label", f'"""Hi"" she said{sep} twice"{sep}pos', f"plain{sep}neg"])
    examples = read_table(str(quoted), "text", None, "label")
    assert [ex.text_a for ex in examples] == [f'"Hi" she said{sep} twice', "plain"]
    assert [ex.guid for ex in examples] == [f"q{ext}-2", f"q{ext}-3"]


def test_custom_task():
    task = custom_task(("neg", "pos"))
    assert task.labels == ("neg", "pos") and task.num_labels == 2
    assert task.eval_splits == ("dev",) and task.test_splits == ("test",)
    assert task.selection_metric == "acc"
    assert task.submission_files == {"test": "custom.tsv"}
    reg = custom_task(None, regression=True, name="scores")
    assert reg.is_regression and reg.num_labels == 1 and reg.selection_metric == "corr"
    assert reg.name == "scores"
    with pytest.raises(ConfigError):
        custom_task(None)
    with pytest.raises(ConfigError):
        custom_task(["a"])
    with pytest.raises(ConfigError):
        custom_task(["a", "a"])
    with pytest.raises(ConfigError):
        custom_task(["a", "b"], regression=True)
    with pytest.raises(ConfigError, match="read_table"):
        read_split(task, str(CUSTOM), "dev")


def test_infer_labels_needs_labels():
    with pytest.raises(DataError):
        infer_labels([Example("1", "a", None, None)])


# ---------------------------------------------------------------- real GLUE data


@pytest.mark.skipif(not os.path.isdir(REAL_GLUE), reason="real GLUE data not on this machine")
@pytest.mark.parametrize("name, split, size", [
    ("rte", "train", 2490), ("rte", "dev", 277),
    ("mrpc", "train", 3668), ("mrpc", "dev", 408),
    ("sst-2", "train", 67349), ("sst-2", "dev", 872),
])
def test_real_glue_sizes(name, split, size):
    task = get_task(name)
    data_dir = os.path.join(REAL_GLUE, task.dir_name)
    if not os.path.isfile(os.path.join(data_dir, f"{split}.tsv")):
        pytest.skip(f"{data_dir}/{split}.tsv not present")
    examples = read_split(task, data_dir, split)
    assert len(examples) == size
    assert {ex.label for ex in examples} == set(task.labels)
    assert all(ex.text_a for ex in examples)


# ---- files that are not UTF-8 text: refused with the file, the line and the encoding expected


SST2_TRAIN = "sentence\tlabel\na fine film .\t1\nun film tr\u00e8s long .\t0\n"
CSV_TRAIN = "text,label\na fine film .,pos\nun film tr\u00e8s long .,neg\n"
JSONL_TRAIN = ('{"text": "a fine film .", "label": "pos"}\n{"text": "a dull film .", "label": "neg"}\n'
               '{"text": "un film tr\u00e8s long .", "label": "neg"}\n')
#: id -> (bytes of the file from its UTF-8 text, fragments the message must contain)
ENCODINGS = {
    "utf16_bom": (lambda t: t.encode("utf-16"), ["line 1: the file is UTF-16 (it starts with the UTF-16 byte-order "
                                                  "mark FF FE)", "iconv -f UTF-16 -t UTF-8"]),
    "utf16_be_bom": (lambda t: b"\xfe\xff" + t.encode("utf-16-be"), ["line 1: the file is UTF-16", "FE FF"]),
    "utf32_bom": (lambda t: t.encode("utf-32"), ["line 1: the file is UTF-32", "iconv -f UTF-32"]),
    "utf16_no_bom": (lambda t: t.encode("utf-16-le"), ["line 1: the file contains NUL bytes", "UTF-16 without a "
                                                        "byte-order mark"]),
    "latin1": (lambda t: t.encode("latin-1"), ["line 3: byte 0xE8 (at byte ", "of the line, near b", "is not UTF-8",
                                               "probably Latin-1 or Windows-1252", "iconv -f WINDOWS-1252"]),
    "gzip": (lambda t: gzip.compress(t.encode()), ["line 1: the file is gzip-compressed, not UTF-8 text",
                                                   "gunzip"]),
    "zip": (lambda t: b"PK\x03\x04" + t.encode(), ["line 1: the file is a zip archive", "unzip"]),
}


@pytest.mark.parametrize("case", sorted(ENCODINGS))
@pytest.mark.parametrize("name", ["train.tsv (GLUE)", "d.csv", "d.tsv", "d.jsonl"])
def test_file_not_in_utf8_names_file_line_and_encoding(tmp_path, case, name):
    to_bytes, fragments = ENCODINGS[case]
    if name.endswith("(GLUE)"):
        path = tmp_path / "SST-2" / "train.tsv"
        path.parent.mkdir()
        path.write_bytes(to_bytes(SST2_TRAIN))
        read = lambda: read_split(get_task("sst-2"), str(path.parent), "train")  # noqa: E731
    else:
        path = tmp_path / name
        text = {".csv": CSV_TRAIN, ".tsv": CSV_TRAIN.replace(",", "\t"), ".jsonl": JSONL_TRAIN}[path.suffix]
        path.write_bytes(to_bytes(text))
        read = lambda: read_table(str(path), "text", None, "label")  # noqa: E731
    with pytest.raises(DataError) as info:
        read()
    message = str(info.value)
    assert message.startswith(f"{path}, line ")
    assert all(fragment in message for fragment in fragments), message
    assert "Data files must be UTF-8 text" in message


def test_utf8_with_and_without_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "d.csv"
    for prefix in (b"", b"\xef\xbb\xbf"):
        path.write_bytes(prefix + CSV_TRAIN.encode())
        assert read_table(str(path), "text", None, "label")[1].text_a == "un film tr\u00e8s long ."


def test_directory_where_a_file_belongs_is_named_as_one(tmp_path):
    with pytest.raises(DataError, match=f"data file {tmp_path} is a directory; pass a .csv, .tsv, .json or .jsonl "
                                        "file"):
        read_table(str(tmp_path), "text", None, "label")
    d = copy_task(tmp_path, "RTE")
    (d / "dev.tsv").unlink()
    (d / "dev.tsv").mkdir()
    with pytest.raises(DataError, match=r"dev.tsv is a directory, not a file"):
        read_split(get_task("rte"), str(d), "dev")
    with pytest.raises(DataError, match=rf"train.tsv is a file, not a directory; pass the directory that holds the "
                                        rf"task's files, e.g. --data_dir {d}: expected {d}/"):
        read_split(get_task("rte"), str(d / "train.tsv"), "train")
