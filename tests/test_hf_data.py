"""`datasets` as the data layer: every source (parquet, arrow, save_to_disk, a directory of csv files, GLUE TSVs)
gives the same encoded splits, the tokenisation cache is used on the second run, and bad sources are refused."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from mate_kd.cli import main
from mate_kd.config import parse_args
from mate_kd.errors import ConfigError, DataError
from mate_kd.hf_data import CACHE_SUBDIR
from mate_kd.pipeline import encode_split, load_models, resolve_task
from mate_kd.tasks import get_task, read_split

HERE = Path(__file__).parent
GLUE = HERE / "fixtures" / "glue"
ROOT = HERE.parent
SMALL = ["--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--max_seq_length", "32",
         "--logging_steps", "2", "--save_steps", "0", "--max_steps", "2", "--learning_rate", "1e-3"]
SST2_HUB = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"]),
                     "idx": Value("int32")})
MNLI_HUB = Features({"premise": Value("string"), "hypothesis": Value("string"),
                     "label": ClassLabel(names=["entailment", "neutral", "contradiction"]), "idx": Value("int32")})


def hub_sst2(split: str, test_idx_base: int = 100) -> Dataset:
    """The fixture's SST-2 split as nyu-mll/glue holds it (ClassLabel negative/positive; test labels -1)."""
    examples = read_split(get_task("sst-2"), str(GLUE / "SST-2"), split)
    test = split == "test"
    return Dataset.from_dict({"sentence": [e.text_a for e in examples],
                              "label": [-1 if test else int(e.label) for e in examples],
                              "idx": [test_idx_base + i if test else i for i in range(len(examples))]},
                             features=SST2_HUB)


def hub_mnli(split: str) -> Dataset:
    """The fixture's MNLI split with the hub's label order (entailment, neutral, contradiction), unlike the TSVs'."""
    examples = read_split(get_task("mnli"), str(GLUE / "MNLI"), split)
    names = MNLI_HUB["label"].names
    return Dataset.from_dict({"premise": [e.text_a for e in examples], "hypothesis": [e.text_b for e in examples],
                              "label": [names.index(e.label) for e in examples],
                              "idx": list(range(len(examples)))}, features=MNLI_HUB)


def custom_rows(split: str) -> Dataset:
    """SST-2 fixture text with string labels neg/pos, as own data."""
    examples = read_split(get_task("sst-2"), str(GLUE / "SST-2"), split)
    return Dataset.from_dict({"text": [e.text_a for e in examples],
                              "label": ["pos" if e.label == "1" else "neg" for e in examples]})


def encoded(argv: list[str], split: str, paths: dict, limit=None, seed=None):
    args = parse_args(["--method", "finetune", "--model_name_or_path", paths["student"], "--output_dir", "unused",
                       "--max_seq_length", "32", *argv])
    task = resolve_task(args)
    models = load_models(args, task)  # as training loads them: labels in the task's order
    return task, models, encode_split(args, task, models, split, limit, seed)


def same_split(a, b) -> None:
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert (a.segments is None) == (b.segments is None)
    if a.segments is not None:
        np.testing.assert_array_equal(a.segments, b.segments)
    np.testing.assert_array_equal(a.labels, b.labels)


def cache_files(root: Path) -> dict[str, tuple[int, int]]:
    folder = root / CACHE_SUBDIR
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("tokenized-*.arrow")} \
        if folder.is_dir() else {}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh datasets cache for one test."""
    path = tmp_path / "hf_cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(path))
    return path


def test_hub_layout_save_to_disk_matches_the_glue_tsvs(tmp_path, cache, tiny_bert):
    """A save_to_disk copy of nyu-mll/glue sst2 (ClassLabel names, idx) encodes exactly like the GLUE TSVs."""
    saved = tmp_path / "glue_sst2"
    DatasetDict(train=hub_sst2("train"), validation=hub_sst2("dev"), test=hub_sst2("test")).save_to_disk(saved)
    for split in ("train", "dev"):
        _, _, tsv = encoded(["--task_name", "sst-2", "--data_dir", str(GLUE / "SST-2")], split, tiny_bert)
        task, _, hub = encoded(["--task_name", "sst-2", "--dataset_name", str(saved)], split, tiny_bert)
        assert task.name == "sst-2"
        same_split(tsv, hub)
    _, _, test = encoded(["--task_name", "sst-2", "--dataset_name", str(saved)], "test", tiny_bert)
    assert test.labels is None and test.guids[:2] == ["100", "101"]
    assert not list(saved.rglob("tokenized-*")) and not list(saved.rglob("cache-*")), "the saved dataset was written to"


def test_mnli_hub_label_order_is_mapped_by_name(tmp_path, cache, tiny_bert):
    saved = tmp_path / "glue_mnli"
    DatasetDict(train=hub_mnli("train"), validation_matched=hub_mnli("dev_matched"),
                validation_mismatched=hub_mnli("dev_mismatched")).save_to_disk(saved)
    for split in ("train", "dev_matched", "dev_mismatched"):
        _, _, tsv = encoded(["--task_name", "mnli", "--data_dir", str(GLUE / "MNLI")], split, tiny_bert)
        _, _, hub = encoded(["--task_name", "mnli", "--dataset_name", str(saved)], split, tiny_bert)
        same_split(tsv, hub)


@pytest.mark.parametrize("kind", ["parquet", "arrow", "csv_dir"])
def test_own_data_sources_encode_alike(kind, tmp_path, cache, tiny_bert):
    train, dev = custom_rows("train"), custom_rows("dev")
    if kind == "parquet":
        train.to_parquet(str(tmp_path / "train.parquet"))
        dev.to_parquet(str(tmp_path / "dev.parquet"))
        flags = ["--train_file", str(tmp_path / "train.parquet"), "--validation_file", str(tmp_path / "dev.parquet")]
    elif kind == "arrow":
        DatasetDict(train=train, validation=dev).save_to_disk(tmp_path / "saved")
        arrow = lambda split: str(next((tmp_path / "saved" / split).glob("*.arrow")))  # noqa: E731
        flags = ["--train_file", arrow("train"), "--validation_file", arrow("validation")]
    else:
        (tmp_path / "csvs").mkdir()
        train.to_csv(str(tmp_path / "csvs" / "train.csv"), index=False)
        dev.to_csv(str(tmp_path / "csvs" / "dev.csv"), index=False)
        flags = ["--dataset_name", str(tmp_path / "csvs")]
    train.to_csv(str(tmp_path / "train.csv"), index=False)
    dev.to_csv(str(tmp_path / "dev.csv"), index=False)
    reference = ["--train_file", str(tmp_path / "train.csv"), "--validation_file", str(tmp_path / "dev.csv")]
    for split in ("train", "dev"):
        task, _, ours = encoded(flags, split, tiny_bert)
        _, _, csv = encoded(reference, split, tiny_bert)
        assert task.labels == ("neg", "pos")
        same_split(ours, csv)


def test_max_train_samples_picks_the_same_rows_as_the_tsv_reader(tmp_path, cache, tiny_bert):
    saved = tmp_path / "glue_sst2"
    DatasetDict(train=hub_sst2("train"), validation=hub_sst2("dev")).save_to_disk(saved)
    _, _, tsv = encoded(["--task_name", "sst-2", "--data_dir", str(GLUE / "SST-2")], "train", tiny_bert, 4, 0)
    _, _, hub = encoded(["--task_name", "sst-2", "--dataset_name", str(saved)], "train", tiny_bert, 4, 0)
    assert len(hub) == 4
    same_split(tsv, hub)


@pytest.mark.parametrize("source", ["glue_tsv", "save_to_disk"])
def test_second_run_loads_the_tokenised_cache_and_overwrite_cache_retokenises(source, tmp_path, cache, tiny_bert,
                                                                              caplog):
    if source == "glue_tsv":
        flags = ["--task_name", "sst-2", "--data_dir", str(GLUE / "SST-2")]
    else:
        DatasetDict(train=hub_sst2("train"), validation=hub_sst2("dev")).save_to_disk(tmp_path / "saved")
        flags = ["--task_name", "sst-2", "--dataset_name", str(tmp_path / "saved")]
    caplog.set_level(logging.INFO, logger="datasets")
    _, _, first = encoded(flags, "train", tiny_bert)
    files = cache_files(cache)
    assert len(files) == 1, files
    assert "Loading cached processed dataset" not in caplog.text
    caplog.clear()
    _, _, second = encoded(flags, "train", tiny_bert)
    assert cache_files(cache) == files, "the second run wrote the cache again"
    assert "Loading cached processed dataset" in caplog.text
    same_split(first, second)
    caplog.clear()
    _, _, third = encoded(flags + ["--overwrite_cache"], "train", tiny_bert)
    (name, (inode, _)), = files.items()
    assert cache_files(cache)[name][0] != inode, "--overwrite_cache did not tokenise again"
    assert "Loading cached processed dataset" not in caplog.text
    same_split(first, third)
    encoded(flags + ["--max_seq_length", "16"], "train", tiny_bert)
    assert len(cache_files(cache)) == 2, "another max_seq_length must not reuse the cached ids"


def test_train_on_a_directory_of_csv_files(tmp_path, cache, tiny_bert):
    (tmp_path / "data").mkdir()
    custom_rows("train").to_csv(str(tmp_path / "data" / "train.csv"), index=False)
    custom_rows("dev").to_csv(str(tmp_path / "data" / "validation.csv"), index=False)
    out = tmp_path / "out"
    code = main(["train", "--method", "finetune", "--model_name_or_path", tiny_bert["student"], "--dataset_name",
                 str(tmp_path / "data"), "--output_dir", str(out), *SMALL])
    assert code == 0
    with open(out / "eval_results.json", encoding="utf-8") as f:
        assert set(json.load(f)["final"]["metrics"]["dev"]) == {"acc", "macro_f1"}
    with open(out / "best" / "config.json", encoding="utf-8") as f:
        assert json.load(f)["id2label"] == {"0": "neg", "1": "pos"}


def test_predict_from_a_hub_layout_writes_the_idx_column(tmp_path, cache, tiny_bert):
    saved = tmp_path / "glue_sst2"
    DatasetDict(train=hub_sst2("train"), validation=hub_sst2("dev"), test=hub_sst2("test", 40)).save_to_disk(saved)
    out = tmp_path / "sub"
    assert main(["predict", "--model_name_or_path", tiny_bert["student"], "--task_name", "sst-2", "--dataset_name",
                 str(saved), "--output_dir", str(out)]) == 0
    rows = (out / "SST-2.tsv").read_text().splitlines()
    assert rows[0] == "index\tprediction" and [r.split("\t")[0] for r in rows[1:]] == [str(40 + i) for i in range(5)]


def test_offline_hub_name_is_refused_with_the_way_out(tmp_path, tiny_bert):
    """HF_HUB_OFFLINE=1 and a fresh cache: nyu-mll/glue cannot be resolved, and the message says what to do."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "fresh_cache"),
           "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mate_kd", "train", "--method", "finetune", "--model_name_or_path",
                           tiny_bert["student"], "--dataset_name", "nyu-mll/glue", "--dataset_config_name", "sst2",
                           "--output_dir", str(out), *SMALL], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("mate-kd train: error: Cannot load dataset 'nyu-mll/glue' from the Hugging Face Hub")
    assert "HF_HUB_OFFLINE" in message and "save_to_disk" in message and "--dataset_name DIR" in message
    assert not (out / "best").exists()


def _saved(tmp_path, **splits) -> str:
    path = tmp_path / "saved"
    DatasetDict(**splits).save_to_disk(path)
    return str(path)


@pytest.mark.parametrize("case, error, message", [
    ("with_data_dir", ConfigError, "both name the data"),
    ("config_alone", ConfigError, "--dataset_config_name sst2 needs --dataset_name"),
    ("glue_without_config", ConfigError, "needs --dataset_config_name, one of cola, sst2"),
    ("glue_unknown_config", ConfigError, "mnli_matched is not a GLUE task"),
    ("task_and_config_disagree", ConfigError, "--task_name rte is configuration 'rte'"),
    ("no_validation_split", DataError, "has no 'dev' or 'validation' split; its splits are train"),
    ("missing_column", DataError, "column 'sentence' not found; columns present: text, label"),
    ("unlabelled_dev_row", DataError, "[validation], row 0: column 'label' has no label (-1"),
    ("label_names_differ", DataError, "the label names ['bad', 'good'] of column 'label' do not match"),
    ("single_dataset", DataError, "holds a single saved Dataset"),
    ("missing_file", DataError, "--train_file"),
    ("not_a_directory", DataError, "is not a directory"),
    ("regression_values", DataError, "holds real numbers; pass --regression"),
    ("corrupt_parquet", DataError, "`datasets` could not read it"),
])
def test_bad_sources_are_refused(case, error, message, tmp_path, cache, tiny_bert):
    glue = ["--task_name", "sst-2"]
    if case == "with_data_dir":
        flags = ["--dataset_name", "nyu-mll/glue", "--data_dir", str(GLUE / "SST-2")]
    elif case == "config_alone":
        flags = ["--dataset_config_name", "sst2", "--train_file", "x.csv"]
    elif case == "glue_without_config":
        flags = ["--dataset_name", "nyu-mll/glue"]
    elif case == "glue_unknown_config":
        flags = ["--dataset_name", "nyu-mll/glue", "--dataset_config_name", "mnli_matched"]
    elif case == "task_and_config_disagree":
        flags = ["--task_name", "rte", "--dataset_name", "nyu-mll/glue", "--dataset_config_name", "sst2"]
    elif case == "no_validation_split":
        flags = glue + ["--dataset_name", _saved(tmp_path, train=hub_sst2("train"))]
    elif case == "missing_column":
        flags = glue + ["--dataset_name", _saved(tmp_path, train=custom_rows("train"), validation=custom_rows("dev"))]
    elif case == "unlabelled_dev_row":
        flags = glue + ["--dataset_name", _saved(tmp_path, train=hub_sst2("train"), validation=hub_sst2("test"))]
    elif case == "label_names_differ":
        other = hub_sst2("train").cast_column("label", ClassLabel(names=["bad", "good"]))
        flags = glue + ["--dataset_name", _saved(tmp_path, train=other, validation=other)]
    elif case == "single_dataset":
        hub_sst2("train").save_to_disk(tmp_path / "one")
        flags = glue + ["--dataset_name", str(tmp_path / "one")]
    elif case == "missing_file":
        flags = ["--train_file", str(tmp_path / "nope.parquet"), "--validation_file", str(tmp_path / "nope.parquet")]
    elif case == "not_a_directory":
        flags = ["--dataset_name", "./no/such/dir"]
    elif case == "regression_values":
        Dataset.from_dict({"text": ["a", "b"], "label": [0.5, 1.5]}).to_parquet(str(tmp_path / "reg.parquet"))
        flags = ["--train_file", str(tmp_path / "reg.parquet"), "--validation_file", str(tmp_path / "reg.parquet")]
    else:
        (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
        flags = ["--train_file", str(tmp_path / "bad.parquet"), "--validation_file", str(tmp_path / "bad.parquet")]
    with pytest.raises(error) as info:
        encoded(flags, "train", tiny_bert)
    assert message in str(info.value)
