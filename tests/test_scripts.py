"""The shell scripts and configs run the real CLI on tiny models laid out as the SPEC says.

One script runs end to end in a subprocess (`python -m mate_kd`). The others run with MATE_KD
pointing at a recorder that saves the command line they built; that exact command line is
then run through `mate_kd.cli.main` in this process, which saves a Python start-up per test.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from mate_kd import cli
from mate_kd.config import parse_args
from mate_kd.tasks import get_task
from mate_kd.tiny import build_single

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "glue")
LIMITS = "--max_steps 3 --max_train_samples 16 --max_eval_samples 8 --logging_steps 2"
TASK_DIRS = {"cola": "CoLA", "sst-2": "SST-2", "mrpc": "MRPC", "sts-b": "STS-B", "qqp": "QQP", "mnli": "MNLI",
             "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}
PATH_KEYS = ("GLUE_DIR", "BERT_MODELS", "CKPTS", "OUTPUT_DIR", "EXTRA_ARGS", "MATE_KD", "RUN_DIR", "TEACHER_INIT")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """glue_data/, bert_models/ and ckpts/ as in the SPEC, holding tiny models and the GLUE fixtures."""
    root = tmp_path_factory.mktemp("layout")
    models = {
        "bert_models/distilbert-base": ("student", "bert", 2),
        "bert_models/uncased_L-4_H-256_A-4": ("generator", "bert", 2),
        "bert_models/bert-base-uncased": ("teacher", "bert", 2),
        "ckpts/teachers_bert_base/MNLI": ("teacher", "bert", 3),
        "bert_models/distilroberta-base": ("generator", "roberta", 2),
        "ckpts/teachers_roberta_large/MNLI": ("teacher", "roberta", 3),
        "ckpts/teachers_roberta_large/RTE": ("teacher", "roberta", 2),
    }
    for path, (kind, family, labels) in models.items():
        build_single(kind, family, str(root / path), num_labels=labels)
    for task in ("MNLI", "RTE"):
        shutil.copytree(os.path.join(FIXTURES, task), root / "glue_data" / task)
    return root


def _env(**values):
    env = {k: v for k, v in os.environ.items() if k not in PATH_KEYS}
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models; spare a shared machine spinning threads
    env.update({k: str(v) for k, v in values.items()})
    return env


def _paths(root):
    return {"GLUE_DIR": root / "glue_data", "BERT_MODELS": root / "bert_models", "CKPTS": root / "ckpts"}


def _record(tmp_path, script, *args, cwd=None, **env):
    """Run a script with MATE_KD set to a recorder; return the recorded argv (or None) and the process."""
    argv_file = tmp_path / "argv.txt"
    recorder = tmp_path / "record.sh"
    recorder.write_text(f"#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > {argv_file}\n")
    recorder.chmod(0o755)
    proc = subprocess.run(["bash", os.path.join(SCRIPTS, script), *args], cwd=cwd or tmp_path,
                          env=_env(MATE_KD=recorder, **env), capture_output=True, text=True, timeout=60)
    argv = argv_file.read_text().splitlines() if argv_file.exists() else None
    return argv, proc


def _flag(argv, name):
    """The value of the last occurrence of a flag (later flags win, as in the parser)."""
    return argv[len(argv) - 1 - argv[::-1].index(name) + 1]


def _check_run(out, eval_splits):
    for name in ("best", "final", "eval_results.json", "log.jsonl", "run_config.yaml"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "eval_results.json")) as f:
        results = json.load(f)
    assert sorted(results["final"]["metrics"]) == sorted(eval_splits)
    assert results["progress"]["student_updates"] == 3
    return results


def test_bert_mnli_script_end_to_end(layout, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", os.path.join(SCRIPTS, "adversarial_train_mnli.sh")], cwd=tmp_path,
                          env=_env(MATE_KD=f"{sys.executable} -m mate_kd", OUTPUT_DIR=out, EXTRA_ARGS=LIMITS,
                                   **_paths(layout)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = _check_run(out, ["dev_matched", "dev_mismatched"])
    assert results["progress"]["generator_updates"] == 10  # the released 10 / 100 alternation
    assert os.path.isfile(out / "generator" / "config.json")
    with open(out / "run_config.yaml") as f:
        settings = yaml.safe_load(f)
    assert settings["method"] == "mate-kd"
    assert settings["per_device_train_batch_size"] == 32
    assert settings["learning_rate"] == 2e-5 and settings["num_train_epochs"] == 30
    assert settings["warmup_steps"] == 2138 and settings["seed"] == 42
    assert settings["teacher_path"] == str(layout / "ckpts/teachers_bert_base/MNLI")
    assert settings["generator_path"] == str(layout / "bert_models/uncased_L-4_H-256_A-4")


def test_roberta_mnli_script_default_layout(layout, tmp_path, monkeypatch):
    """No path variables: the script reads glue_data/, bert_models/, ckpts/ under the working directory."""
    argv, proc = _record(tmp_path, "run_adversarial_train_mnli_roberta.sh", cwd=layout,
                         OUTPUT_DIR=tmp_path / "out", EXTRA_ARGS=LIMITS)
    assert proc.returncode == 0, proc.stderr
    assert argv[0] == "train"
    assert _flag(argv, "--model_name_or_path") == _flag(argv, "--generator_path") == "bert_models/distilroberta-base"
    assert _flag(argv, "--teacher_path") == "ckpts/teachers_roberta_large/MNLI"
    assert _flag(argv, "--data_dir") == "glue_data/MNLI"
    assert "--do_lower_case" not in argv
    monkeypatch.chdir(layout)
    assert cli.main(argv) == 0
    _check_run(tmp_path / "out", ["dev_matched", "dev_mismatched"])


def test_run_task_bert_mnli_rewrites_paths(layout, tmp_path):
    argv, proc = _record(tmp_path, "run_task.sh", os.path.join(ROOT, "configs/bert/mnli.yaml"),
                         "--n_generator_steps", "1", "--n_student_steps", "2",
                         OUTPUT_DIR=tmp_path / "out", EXTRA_ARGS=LIMITS, **_paths(layout))
    assert proc.returncode == 0, proc.stderr
    assert argv[:3] == ["train", "--config", os.path.join(ROOT, "configs/bert/mnli.yaml")]
    assert _flag(argv, "--data_dir") == str(layout / "glue_data/MNLI")
    assert _flag(argv, "--teacher_path") == str(layout / "ckpts/teachers_bert_base/MNLI")
    assert _flag(argv, "--generator_path") == str(layout / "bert_models/uncased_L-4_H-256_A-4")
    assert _flag(argv, "--output_dir") == str(tmp_path / "out")
    assert cli.main(argv) == 0
    results = _check_run(tmp_path / "out", ["dev_matched", "dev_mismatched"])
    assert results["progress"]["generator_updates"] == 2  # the command-line flags beat the config's 10 / 100


def test_run_task_roberta_rte(layout, tmp_path):
    argv, proc = _record(tmp_path, "run_task.sh", os.path.join(ROOT, "configs/roberta/rte.yaml"),
                         OUTPUT_DIR=tmp_path / "out", EXTRA_ARGS=LIMITS, **_paths(layout))
    assert proc.returncode == 0, proc.stderr
    assert _flag(argv, "--teacher_path") == str(layout / "ckpts/teachers_roberta_large/RTE")
    assert cli.main(argv) == 0
    _check_run(tmp_path / "out", ["dev"])
    with open(tmp_path / "out" / "run_config.yaml") as f:
        settings = yaml.safe_load(f)
    assert settings["warmup_steps"] == 0 and settings["warmup_ratio"] == 0.06


def test_finetune_teacher_script(layout, tmp_path):
    ckpts = tmp_path / "ckpts"
    argv, proc = _record(tmp_path, "finetune_teacher.sh", "rte", "bert", "--max_steps", "3",
                         GLUE_DIR=layout / "glue_data", BERT_MODELS=layout / "bert_models", CKPTS=ckpts,
                         EXTRA_ARGS="--max_train_samples 16 --max_eval_samples 8 --logging_steps 2")
    # The recorder trains nothing, so the script stops at copying the best model; run the argv for real.
    assert proc.returncode != 0 and argv is not None
    assert _flag(argv, "--method") == "finetune"
    assert _flag(argv, "--model_name_or_path") == str(layout / "bert_models/bert-base-uncased")
    assert _flag(argv, "--data_dir") == str(layout / "glue_data/RTE")
    assert _flag(argv, "--learning_rate") == "2e-5" and _flag(argv, "--num_train_epochs") == "3"
    run_dir = _flag(argv, "--output_dir")
    assert run_dir == str(ckpts / "runs/teacher_bert_base_RTE")
    assert cli.main(argv) == 0
    _check_run(run_dir, ["dev"])

    real = subprocess.run(["bash", os.path.join(SCRIPTS, "finetune_teacher.sh"), "RTE", "bert"], cwd=tmp_path,
                          env=_env(MATE_KD="true", GLUE_DIR=layout / "glue_data", BERT_MODELS=layout / "bert_models",
                                   CKPTS=ckpts), capture_output=True, text=True, timeout=60)
    assert real.returncode == 0, real.stderr
    assert os.path.isfile(ckpts / "teachers_bert_base/RTE/config.json")  # best/ copied where MATE-KD reads it


@pytest.mark.parametrize("script,missing,hint", [
    ("adversarial_train_mnli.sh", "teachers_bert_base/MNLI/config.json", "finetune_teacher.sh MNLI bert"),
    ("run_adversarial_train_mnli_roberta.sh", "teachers_roberta_large/MNLI/config.json",
     "finetune_teacher.sh MNLI roberta"),
])
def test_missing_teacher_refused_with_layout(layout, tmp_path, script, missing, hint):
    paths = _paths(layout)
    paths["CKPTS"] = tmp_path / "empty"
    argv, proc = _record(tmp_path, script, **paths)
    assert proc.returncode != 0
    assert argv is None  # refused before running anything
    assert missing in proc.stderr and hint in proc.stderr and "CKPTS" in proc.stderr
    assert proc.stderr.count("error: missing") == 1  # only the teacher is reported missing


def test_missing_everything_lists_each_item(tmp_path):
    argv, proc = _record(tmp_path, "adversarial_train_mnli.sh", GLUE_DIR=tmp_path, BERT_MODELS=tmp_path,
                         CKPTS=tmp_path)
    assert proc.returncode != 0 and argv is None
    assert proc.stderr.count("error: missing") == 4
    for needle in ("MNLI/train.tsv", "distilbert-base/config.json", "uncased_L-4_H-256_A-4/config.json",
                   "hf download", "GLUE_DIR", "BERT_MODELS"):
        assert needle in proc.stderr


def test_run_task_missing_model_refused(layout, tmp_path):
    argv, proc = _record(tmp_path, "run_task.sh", os.path.join(ROOT, "configs/bert/mnli.yaml"),
                         GLUE_DIR=layout / "glue_data", BERT_MODELS=tmp_path / "nothing", CKPTS=layout / "ckpts")
    assert proc.returncode != 0 and argv is None
    assert "nothing/distilbert-base/config.json" in proc.stderr and "BERT_MODELS" in proc.stderr


def test_finetune_teacher_unknown_task(tmp_path):
    argv, proc = _record(tmp_path, "finetune_teacher.sh", "ax")
    assert proc.returncode == 2 and argv is None
    assert "unknown GLUE task" in proc.stderr and "MNLI" in proc.stderr


CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*", "*.yaml")))


def test_every_task_has_both_configs():
    names = {os.path.relpath(p, os.path.join(ROOT, "configs")) for p in CONFIGS}
    assert names == {f"{family}/{task}.yaml" for family in ("bert", "roberta") for task in TASK_DIRS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_parses_with_released_values(path):
    args = parse_args(["--config", path])
    family, task = os.path.basename(os.path.dirname(path)), os.path.splitext(os.path.basename(path))[0]
    spec = get_task(args.task_name)
    assert args.task_name == task and args.data_dir == f"glue_data/{spec.dir_name}" == f"glue_data/{TASK_DIRS[task]}"
    teacher = {"bert": "teachers_bert_base", "roberta": "teachers_roberta_large"}[family]
    assert args.teacher_path == f"ckpts/{teacher}/{spec.dir_name}"
    if family == "bert":
        assert (args.model_name_or_path, args.generator_path) == ("bert_models/distilbert-base",
                                                                  "bert_models/uncased_L-4_H-256_A-4")
    else:
        assert args.model_name_or_path == args.generator_path == "bert_models/distilroberta-base"
    assert (args.method, args.learning_rate, args.num_train_epochs, args.per_device_train_batch_size) == (
        "mate-kd", 2e-5, 30, 32)
    assert (args.max_seq_length, args.seed, args.logging_steps, args.evaluate_during_training) == (128, 42, 500, True)
    assert (args.mask_prob, args.n_generator_steps, args.n_student_steps) == (0.3, 10, 100)
    assert (args.generator_learning_rate, args.divergence) == (5e-7, "soft_ce")
    small = spec.dir_name in ("CoLA", "STS-B", "MRPC", "RTE", "WNLI")
    assert (args.warmup_steps, args.warmup_ratio) == ((0, 0.06) if small else (2138, 0.0))
