"""End to end through `mate-kd train | evaluate | predict` on tiny models, settings files, and refusals."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mate_kd.cli import main
from mate_kd.config import parse_args
from mate_kd.errors import ConfigError
from mate_kd.tasks import get_task, read_split

HERE = Path(__file__).parent
GLUE = HERE / "fixtures" / "glue"
CUSTOM = HERE / "fixtures" / "custom"
SST2_SAMPLE = HERE.parent / "mate_kd" / "assets" / "sst2_sample"
SMALL = ["--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--max_seq_length", "64",
         "--logging_steps", "2", "--evaluate_during_training", "--learning_rate", "1e-3", "--save_steps", "0",
         "--seed", "5"]


def model_flags(paths: dict, method: str) -> list[str]:
    flags = ["--method", method, "--model_name_or_path", paths["student"]]
    if method in ("kd", "mate-kd"):
        flags += ["--teacher_path", paths["teacher"]]
    if method == "mate-kd":
        flags += ["--generator_path", paths["generator"], "--n_generator_steps", "2", "--n_student_steps", "3"]
    return flags


def read_json(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_log(out) -> list[dict]:
    with open(Path(out) / "log.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_tsv(path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


SST2_DATA = ["--task_name", "sst-2", "--data_dir", str(SST2_SAMPLE), "--max_train_samples", "48",
             "--max_eval_samples", "40"]


@pytest.fixture(scope="module", params=["finetune", "kd", "mate-kd"])
def sst2_run(request, tiny_bert, tmp_path_factory):
    method = request.param
    out = tmp_path_factory.mktemp(f"sst2_{method}") / "out"
    code = main(["train", *model_flags(tiny_bert, method), *SST2_DATA, *SMALL, "--max_steps", "6",
                 "--output_dir", str(out)])
    return method, code, out


def test_train_exits_zero_and_writes_outputs(sst2_run):
    method, code, out = sst2_run
    assert code == 0
    for name in ("best", "final"):
        assert (out / name / "config.json").is_file() and (out / name / "model.safetensors").is_file()
        assert any((out / name / f).is_file() for f in ("tokenizer.json", "vocab.txt"))
    assert (out / "generator" / "model.safetensors").is_file() == (method == "mate-kd")
    assert (out / "run_config.yaml").is_file()
    assert yaml.safe_load((out / "run_config.yaml").read_text())["method"] == method
    results = read_json(out / "eval_results.json")
    assert results["final"]["step"] == 6 and 0.0 <= results["final"]["metrics"]["dev"]["acc"] <= 1.0
    assert results["best"]["step"] in (2, 4, 6)
    assert results["best"]["metrics"]["dev"]["acc"] >= max(results["final"]["metrics"]["dev"]["acc"], 0.0)
    assert results["progress"]["student_updates"] == 6
    assert results["progress"]["generator_updates"] == (4 if method == "mate-kd" else 0)


def test_train_log_lines(sst2_run):
    method, _, out = sst2_run
    events = read_log(out)
    steps = [e for e in events if "lr" in e]
    assert [e["step"] for e in steps] == [2, 4, 6]
    expected_terms = {"finetune": {"ce"}, "kd": {"ce", "kd"}, "mate-kd": {"ce", "kd", "adv"}}[method]
    for e in steps:
        terms = {k[len("loss_"):] for k in e if k.startswith("loss_")} - {"student", "generator"}
        assert terms == expected_terms
        assert all(math.isfinite(e[f"loss_{t}"]) for t in terms | {"student"})
        assert e["lr"] >= 0 and e["examples_per_s"] > 0
    assert "eval" in steps[0] and "acc" in steps[0]["eval"]["dev"]
    assert steps[0]["lr"] > steps[1]["lr"] > steps[2]["lr"] == 0.0
    assert ("loss_generator" in steps[0]) == (method == "mate-kd")
    final = [e for e in events if "final_eval" in e]
    assert len(final) == 1 and final[0]["final_eval"] == read_json(out / "eval_results.json")["final"]["metrics"]


def test_evaluate_reproduces_best_dev_metric(sst2_run, tmp_path):
    _, _, out = sst2_run
    best = read_json(out / "eval_results.json")["best"]["metrics"]
    code = main(["evaluate", "--model_name_or_path", str(out / "best"), "--task_name", "sst-2", "--data_dir",
                 str(SST2_SAMPLE), "--max_eval_samples", "40", "--per_device_eval_batch_size", "7",
                 "--max_seq_length", "64", "--output_dir", str(tmp_path / "eval")])
    assert code == 0
    scored = read_json(tmp_path / "eval" / "eval_results.json")
    assert scored["dev"]["acc"] == pytest.approx(best["dev"]["acc"], abs=1e-9)
    final = read_json(out / "eval_results.json")["final"]["metrics"]
    assert main(["evaluate", "--model_name_or_path", str(out / "final"), "--task_name", "sst-2", "--data_dir",
                 str(SST2_SAMPLE), "--max_eval_samples", "40", "--max_seq_length", "64", "--output_dir",
                 str(tmp_path / "eval_final")]) == 0
    assert read_json(tmp_path / "eval_final" / "eval_results.json")["dev"]["acc"] == pytest.approx(
        final["dev"]["acc"], abs=1e-9)


@pytest.fixture(scope="module")
def mnli_run(tiny_bert, teacher_dir, tmp_path_factory):
    paths = {**tiny_bert, "teacher": teacher_dir(3)}
    out = tmp_path_factory.mktemp("mnli") / "out"
    code = main(["train", *model_flags(paths, "mate-kd"), "--task_name", "mnli", "--data_dir", str(GLUE / "MNLI"),
                 *SMALL, "--per_device_train_batch_size", "3", "--max_steps", "3", "--output_dir", str(out)])
    return code, out


def test_mnli_evaluates_matched_and_mismatched(mnli_run):
    code, out = mnli_run
    assert code == 0
    results = read_json(out / "eval_results.json")
    assert set(results["final"]["metrics"]) == {"dev_matched", "dev_mismatched"}
    assert set(results["best"]["metrics"]) == {"dev_matched", "dev_mismatched"}
    assert results["selection_metric"] == "dev_matched/acc"
    assert set(read_log(out)[0]["eval"]) == {"dev_matched", "dev_mismatched"}


def _test_rows(task_dir: Path, name: str) -> list[list[str]]:
    return read_tsv(task_dir / name)[1:]


def _renumbered_copy(task_dir: Path, dest: Path) -> Path:
    """The task's files with test indices that are not row numbers (7000, 7003, ...)."""
    shutil.copytree(task_dir, dest)
    for path in dest.glob("test*.tsv"):
        rows = read_tsv(path)
        for i, row in enumerate(rows[1:]):
            row[0] = str(7000 + 3 * i)
        with open(path, "w", encoding="utf-8", newline="") as f:
            csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n").writerows(rows)
    return dest


def test_mnli_predict_writes_both_submission_files(mnli_run, tmp_path):
    _, out = mnli_run
    data = _renumbered_copy(GLUE / "MNLI", tmp_path / "MNLI")
    code = main(["predict", "--model_name_or_path", str(out / "best"), "--task_name", "mnli", "--data_dir",
                 str(data), "--output_dir", str(tmp_path / "pred"), "--max_seq_length", "64"])
    assert code == 0
    assert sorted(os.listdir(tmp_path / "pred")) == ["MNLI-m.tsv", "MNLI-mm.tsv"]
    for name, source in (("MNLI-m.tsv", "test_matched.tsv"), ("MNLI-mm.tsv", "test_mismatched.tsv")):
        rows = read_tsv(tmp_path / "pred" / name)
        assert rows[0] == ["index", "prediction"]
        indices = [r[0] for r in _test_rows(data, source)]
        assert indices[0] == "7000" and [r[0] for r in rows[1:]] == indices
        assert all(len(r) == 2 and r[1] in {"contradiction", "entailment", "neutral"} for r in rows[1:])


@pytest.fixture(scope="module")
def stsb_run(tiny_regression, tmp_path_factory):
    out = tmp_path_factory.mktemp("stsb") / "out"
    code = main(["train", *model_flags(tiny_regression, "mate-kd"), "--task_name", "sts-b", "--data_dir",
                 str(GLUE / "STS-B"), *SMALL, "--per_device_train_batch_size", "4", "--max_steps", "3",
                 "--do_predict", "--output_dir", str(out)])
    return code, out


def test_stsb_regression_end_to_end(stsb_run):
    code, out = stsb_run
    assert code == 0
    results = read_json(out / "eval_results.json")
    metrics = results["final"]["metrics"]["dev"]
    assert set(metrics) == {"pearson", "spearmanr", "corr"}
    assert all(-1.0 <= v <= 1.0 for v in metrics.values())
    events = [e for e in read_log(out) if "lr" in e]
    assert all({"loss_ce", "loss_kd", "loss_adv"} <= set(e) for e in events) and "loss_generator" in events[0]


def test_stsb_predictions_are_scores_in_range(stsb_run):
    _, out = stsb_run
    rows = read_tsv(out / "predictions" / "STS-B.tsv")
    assert rows[0] == ["index", "prediction"]
    assert [r[0] for r in rows[1:]] == [r[0] for r in _test_rows(GLUE / "STS-B", "test.tsv")]
    assert all(0.0 <= float(r[1]) <= 5.0 for r in rows[1:])


def test_custom_csv_data_end_to_end(tiny_bert, tmp_path):
    out = tmp_path / "out"
    code = main(["train", *model_flags(tiny_bert, "mate-kd"), "--train_file", str(CUSTOM / "train.csv"),
                 "--validation_file", str(CUSTOM / "dev.csv"), "--test_file", str(CUSTOM / "test.jsonl"), *SMALL,
                 "--per_device_train_batch_size", "4", "--max_steps", "3", "--do_predict",
                 "--output_dir", str(out)])
    assert code == 0
    results = read_json(out / "eval_results.json")
    assert set(results["final"]["metrics"]["dev"]) == {"acc", "macro_f1"}
    config = read_json(out / "best" / "config.json")
    assert config["id2label"] == {"0": "neg", "1": "pos"}
    rows = read_tsv(out / "predictions" / "custom.tsv")
    with open(CUSTOM / "test.jsonl", encoding="utf-8") as f:
        n_test = sum(1 for line in f if line.strip())
    assert rows[0] == ["index", "prediction"] and len(rows) == n_test + 1
    assert all(r[1] in {"neg", "pos"} for r in rows[1:])


def test_teacher_label_order_used_end_to_end(tiny_bert, teacher_dir, tmp_path):
    paths = {**tiny_bert, "teacher": teacher_dir(2, {0: "not_entailment", 1: "entailment"})}
    out = tmp_path / "out"
    assert main(["train", *model_flags(paths, "kd"), "--task_name", "rte", "--data_dir", str(GLUE / "RTE"), *SMALL,
                 "--max_steps", "2", "--do_predict", "--output_dir", str(out)]) == 0
    for name in ("best", "final"):
        assert read_json(out / name / "config.json")["id2label"] == {"0": "not_entailment", "1": "entailment"}
    rows = read_tsv(out / "predictions" / "RTE.tsv")
    examples = read_split(get_task("rte"), str(GLUE / "RTE"), "test")
    assert [r[0] for r in rows[1:]] == [e.guid for e in examples]
    model = AutoModelForSequenceClassification.from_pretrained(out / "best").eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "best")
    enc = tokenizer([e.text_a for e in examples], [e.text_b for e in examples], padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**enc).logits.argmax(-1).tolist()
    assert [r[1] for r in rows[1:]] == [["not_entailment", "entailment"][i] for i in predicted]


# ---- refusals through the command line: exit code 1, a message on stderr, nothing destroyed


def _train_argv(paths, out, method="mate-kd", task="sst-2", data=GLUE / "SST-2"):
    return ["train", *model_flags(paths, method), "--task_name", task, "--data_dir", str(data), "--output_dir",
            str(out), "--max_steps", "1"]


def test_non_empty_output_dir_refused_and_kept(tiny_bert, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "best").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    (out / "best" / "config.json").write_text("{}")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(_train_argv(tiny_bert, out)) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite_output_dir" in err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (out / "notes.txt").read_text() == "keep me" and (out / "best" / "config.json").read_text() == "{}"


@pytest.mark.parametrize("method,missing,message", [
    ("kd", "--teacher_path", "--method kd needs --teacher_path"),
    ("mate-kd", "--teacher_path", "--method mate-kd needs --teacher_path"),
    ("mate-kd", "--generator_path", "--method mate-kd needs --generator_path"),
])
def test_missing_teacher_or_generator_refused(tiny_bert, tmp_path, capsys, method, missing, message):
    argv = _train_argv(tiny_bert, tmp_path / "out", method)
    i = argv.index(missing)
    del argv[i:i + 2]
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_task_refused(tiny_bert, tmp_path, capsys):
    assert main(_train_argv(tiny_bert, tmp_path / "out", task="sst3")) == 1
    err = capsys.readouterr().err
    assert err.startswith("mate-kd train: error:") and "unknown task 'sst3'" in err and "sst-2" in err


def test_model_refusal_reaches_the_command_line(tiny_bert, tmp_path, capsys):
    argv = _train_argv(tiny_bert, tmp_path / "out")
    argv[argv.index("--generator_path") + 1] = str(tmp_path / "bert_models" / "uncased_L-4_H-256_A-4")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "generator directory" in err and "does not exist" in err and "bert_models/" in err


def test_an_internal_error_is_one_message_and_a_traceback_file(tmp_path, capsys, monkeypatch):
    """A bug (an exception that is not a MateKDError) ends in one message that names the error and a file that
    holds the traceback, with exit code 3; no traceback reaches the terminal."""
    from mate_kd import cli, predict

    def broken(args):
        raise KeyError("token_type_ids")

    monkeypatch.setattr(predict, "evaluate_saved", broken)
    monkeypatch.setattr(cli.tempfile, "tempdir", str(tmp_path))
    assert main(["evaluate", "--model_name_or_path", "m", "--task_name", "rte", "--data_dir", "d",
                 "--output_dir", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("mate-kd evaluate: internal error: KeyError: 'token_type_ids'\n") and "Traceback" not in err
    assert "bug in mate-kd" in err and "is kept" in err
    path = err.strip().rsplit(" ", 1)[1]
    assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith("mate-kd-evaluate-")
    report = Path(path).read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in report and "in broken" in report and "KeyError" in report


def test_unknown_command_and_help(capsys):
    assert main(["distil"]) == 2
    assert "unknown command 'distil'" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out


# ---- settings: YAML file under command-line flags


BASE = ["--model_name_or_path", "s", "--teacher_path", "t", "--generator_path", "g", "--task_name", "mnli",
        "--data_dir", "d", "--output_dir", "o"]


def test_yaml_config_read_and_overridden_by_flags(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"learning_rate": 3e-5, "seed": 1, "n_generator_steps": 7,
                                      "per_gpu_train_batch_size": 16, "evaluate_during_training": True,
                                      "divergence": "kl", "warmup_steps": 2138}))
    args = parse_args(["--config", str(config), *BASE, "--seed", "9", "--divergence", "mse"])
    assert args.learning_rate == 3e-5 and args.n_generator_steps == 7 and args.warmup_steps == 2138
    assert args.per_device_train_batch_size == 16 and args.evaluate_during_training is True
    assert args.seed == 9 and args.divergence == "mse"
    defaults = parse_args(BASE)
    assert (defaults.learning_rate, defaults.seed, defaults.n_generator_steps, defaults.divergence) == \
        (2e-5, 42, 10, "soft_ce")


def test_yaml_unknown_key_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 3.0e-5\nlearnig_rate: 1.0e-3\n")
    with pytest.raises(ConfigError, match="unknown settings \\['learnig_rate'\\]"):
        parse_args(["--config", str(config), *BASE])


def test_yaml_unknown_key_refused_on_the_command_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("n_generator_step: 3\n")
    assert main(["train", "--config", str(config), *BASE[:-1], str(tmp_path / "o")]) == 1
    assert "n_generator_step" in capsys.readouterr().err


def test_per_gpu_train_batch_size_sets_the_batch(tiny_bert, tmp_path):
    args = parse_args([*BASE, "--per_gpu_train_batch_size", "32", "--per_gpu_eval_batch_size", "5"])
    assert args.per_device_train_batch_size == 32 and args.per_device_eval_batch_size == 5
    from mate_kd.loop import build_run
    run = build_run(parse_args(["--model_name_or_path", tiny_bert["student"], "--method", "finetune",
                                "--task_name", "sst-2", "--data_dir", str(GLUE / "SST-2"), "--output_dir",
                                str(tmp_path / "o"), "--per_gpu_train_batch_size", "3"]))
    assert [len(b["input_ids"]) for b in run.train_loader] == [3, 3, 3, 1]


def test_a_command_ends_the_process_group_it_ran_in(tmp_path):
    """Under torchrun the process group is closed before exit (gloo left to shutdown can abort the process)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert main(["train"]) == 1  # refused (no data), and still the group is closed
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
