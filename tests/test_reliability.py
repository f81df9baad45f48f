"""Bad input through `mate-kd train`: exit code 1, one clear message, and nothing already written changed.

Each refusal runs into an output directory that already holds a previous run's files, passing
--overwrite_output_dir so that the refusal comes from the bad input itself and not from the
non-empty directory check (tests/test_cli.py covers that one). docs/reliability.md tables them.
"""

from __future__ import annotations

import errno
import gzip
import json
import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from mate_kd.checkpoint import list_checkpoints, save_model
from mate_kd.cli import main
from mate_kd.errors import MateKDError
from mate_kd.objectives import MateKD, Settings
from mate_kd.pipeline import special_token_ids
from mate_kd.tasks import GLUE_TASKS

GLUE = Path(__file__).parent / "fixtures" / "glue"
SST2 = GLUE / "SST-2"


def train_argv(models: dict[str, str], out: Path, data: Path = SST2, *extra: str) -> list[str]:
    return ["train", "--method", "mate-kd", "--model_name_or_path", models["student"],
            "--teacher_path", models["teacher"], "--generator_path", models["generator"],
            "--task_name", "sst-2", "--data_dir", str(data), "--output_dir", str(out),
            "--max_steps", "1", "--n_generator_steps", "1", "--n_student_steps", "1",
            "--per_device_train_batch_size", "4", "--save_steps", "0", *extra]


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file and directory under root with its bytes and mtime: any change shows."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>", p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def previous_run(tmp_path) -> Path:
    """An output directory holding a previous run's results."""
    out = tmp_path / "out"
    (out / "best").mkdir(parents=True)
    (out / "best" / "config.json").write_text('{"model_type": "bert"}')
    (out / "eval_results.json").write_text('{"best": {"step": 7}}')
    (out / "log.jsonl").write_text('{"step": 7}\n')
    return out


def refused(argv: list[str], capsys) -> str:
    """Run the CLI, require exit code 1 and a one-message error (no traceback); return stderr."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"mate-kd {argv[0]}: error: " in err and "Traceback" not in err
    return err


def sst2_copy(tmp_path: Path, train_text: str | None = None, drop: str | None = None, encoding: str = "utf-8",
              compress: bool = False) -> Path:
    """The SST-2 fixture with train.tsv replaced (in that encoding, or gzip-compressed under its .tsv name)."""
    data = tmp_path / "glue_data" / "SST-2"
    shutil.copytree(SST2, data)
    if train_text is not None or encoding != "utf-8" or compress:
        text = (SST2 / "train.tsv").read_text(encoding="utf-8") if train_text is None else train_text
        raw = text.encode(encoding)
        (data / "train.tsv").write_bytes(gzip.compress(raw) if compress else raw)
    if drop:
        (data / drop).unlink()
    return data


def _with_line(line: str) -> str:
    rows = SST2.joinpath("train.tsv").read_text(encoding="utf-8").splitlines()
    rows[3] = line
    return "\n".join(rows) + "\n"


# case id -> (data directory from tmp_path, extra flags, fragments the message must contain)
DATA_CASES: dict[str, tuple[Callable[[Path], Path], list[str], list[str]]] = {
    "missing_data_dir": (lambda t: t / "glue_data" / "SST-2", [],
                         ["task directory", "glue_data/SST-2 not found", "SST-2/{train,dev,test}.tsv",
                          "original GLUE layout"]),
    "missing_train_file": (lambda t: sst2_copy(t, drop="train.tsv"), [],
                           ["data file", "train.tsv not found", "{train,dev,test}.tsv"]),
    "empty_train_file": (lambda t: sst2_copy(t, ""), [], ["train.tsv is empty", "header", "Re-download"]),
    "blank_rows_only": (lambda t: sst2_copy(t, "sentence\tlabel\n\n\n\n"), [],
                        ["train.tsv has no examples", "re-download"]),
    "wrong_field_count": (lambda t: sst2_copy(t, _with_line("a stray\ttab\t1")), [],
                          ["train.tsv, line 4: expected 2 tab-separated fields, got 3", "Fix or remove this line"]),
    "unknown_label": (lambda t: sst2_copy(t, _with_line("a fine film .\tpositive")), [],
                      ["train.tsv, line 4: label 'positive' is not a SST-2 label; allowed labels: 0, 1"]),
    "max_train_samples_0": (lambda t: SST2, ["--max_train_samples", "0"],
                            ["--max_train_samples 0 is out of range: it must be >= 1 (0 would leave no examples"]),
    "max_train_samples_negative": (lambda t: SST2, ["--max_train_samples", "-3"],
                                   ["--max_train_samples -3 is out of range: it must be >= 1"]),
    "max_eval_samples_0": (lambda t: SST2, ["--max_eval_samples", "0"],
                           ["--max_eval_samples 0 is out of range: it must be >= 1"]),
    "max_seq_length_too_long": (lambda t: SST2, ["--max_seq_length", "512"],
                                ["--max_seq_length 512 is longer than the", "(128 positions): lower it"]),
    "utf16_train_file": (lambda t: sst2_copy(t, encoding="utf-16"), [],
                         ["train.tsv, line 1: the file is UTF-16", "Data files must be UTF-8",
                          "iconv -f UTF-16 -t UTF-8"]),
    "utf16_without_bom": (lambda t: sst2_copy(t, encoding="utf-16-le"), [],
                          ["train.tsv, line 1: the file contains NUL bytes", "iconv -f UTF-16LE"]),
    "latin1_train_file": (lambda t: sst2_copy(t, _with_line("un film tr\u00e8s bon .\t1"), encoding="latin-1"), [],
                          ["train.tsv, line 4: byte 0xE8", "is not UTF-8", "Latin-1 or Windows-1252",
                           "Data files must be UTF-8"]),
    "gzip_renamed_tsv": (lambda t: sst2_copy(t, compress=True), [],
                         ["train.tsv, line 1: the file is gzip-compressed, not UTF-8 text", "gunzip"]),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data_is_refused_and_previous_run_kept(case, tiny_bert, previous_run, tmp_path, capsys):
    data_of, extra, fragments = DATA_CASES[case]
    before = tree(previous_run)
    err = refused(train_argv(tiny_bert, previous_run, data_of(tmp_path), "--overwrite_output_dir", *extra), capsys)
    for fragment in fragments:
        assert fragment in err
    assert tree(previous_run) == before


def test_unknown_task_lists_every_known_task(tiny_bert, previous_run, capsys):
    before = tree(previous_run)
    argv = train_argv(tiny_bert, previous_run, SST2, "--overwrite_output_dir")
    argv[argv.index("--task_name") + 1] = "sst3"
    err = refused(argv, capsys)
    assert "unknown task 'sst3'; known GLUE tasks: " + ", ".join(GLUE_TASKS) in err
    assert "--train_file" in err
    assert tree(previous_run) == before


def test_custom_label_outside_label_list(tiny_bert, previous_run, tmp_path, capsys):
    (tmp_path / "train.csv").write_text("text,label\ngood film,pos\nbad film,neg\nok film,neutral\n")
    (tmp_path / "dev.csv").write_text("text,label\ngood film,pos\nbad film,neg\n")
    before = tree(previous_run)
    argv = train_argv(tiny_bert, previous_run, SST2, "--overwrite_output_dir")
    i = argv.index("--task_name")
    argv[i:i + 4] = ["--train_file", str(tmp_path / "train.csv"), "--validation_file", str(tmp_path / "dev.csv"),
                     "--label_list", "neg,pos"]
    err = refused(argv, capsys)
    assert "Example train.csv-4 has label 'neutral', not one of the task's labels ['neg', 'pos']" in err
    assert tree(previous_run) == before


def test_stsb_score_outside_0_to_5_is_refused(tiny_regression, previous_run, tmp_path, capsys):
    data = tmp_path / "glue_data" / "STS-B"
    shutil.copytree(GLUE / "STS-B", data)
    rows = (data / "train.tsv").read_text(encoding="utf-8").splitlines()
    rows[2] = "\t".join(rows[2].split("\t")[:-1] + ["7.5"])
    (data / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    argv = train_argv(tiny_regression, previous_run, data, "--overwrite_output_dir")
    argv[argv.index("--task_name") + 1] = "sts-b"
    before = tree(previous_run)
    err = refused(argv, capsys)
    assert f"{data / 'train.tsv'}, line 3: score '7.5' is outside [0, 5], the range of STS-B similarity scores" in err
    assert tree(previous_run) == before


def _custom_argv(models: dict[str, str], out: Path, train: Path, dev: Path) -> list[str]:
    argv = train_argv(models, out, SST2, "--overwrite_output_dir")
    i = argv.index("--task_name")
    argv[i:i + 4] = ["--train_file", str(train), "--validation_file", str(dev)]
    return argv


def test_train_file_that_is_a_directory_says_so(tiny_bert, previous_run, tmp_path, capsys):
    (tmp_path / "dev.csv").write_text("text,label\ngood film,pos\nbad film,neg\n")
    before = tree(previous_run)
    err = refused(_custom_argv(tiny_bert, previous_run, tmp_path, tmp_path / "dev.csv"), capsys)
    assert f"data file {tmp_path} is a directory; pass a .csv, .tsv, .json or .jsonl file" in err
    assert "not found" not in err
    assert tree(previous_run) == before


@pytest.mark.parametrize("encoding,fragment", [
    ("cp1252", "train.csv, line 3: byte 0xE9"), ("utf-16", "train.csv, line 1: the file is UTF-16")],
    ids=["cp1252", "utf-16"])
def test_own_data_file_not_in_utf8_is_refused(encoding, fragment, tiny_bert, previous_run, tmp_path, capsys):
    (tmp_path / "train.csv").write_bytes("text,label\ngood film,pos\nun caf\u00e9,neg\n".encode(encoding))
    (tmp_path / "dev.csv").write_text("text,label\ngood film,pos\nbad film,neg\n")
    before = tree(previous_run)
    err = refused(_custom_argv(tiny_bert, previous_run, tmp_path / "train.csv", tmp_path / "dev.csv"), capsys)
    assert fragment in err and "Data files must be UTF-8" in err
    assert tree(previous_run) == before


# ---- settings: every numeric setting's range, on the command line and in a config file, refused before the
# output directory is touched at all

# case id -> (flags, fragments the message must contain)
SETTING_CASES: dict[str, tuple[list[str], list[str]]] = {
    "warmup_ratio_above_1": (["--warmup_ratio", "1.5"],
                             ["--warmup_ratio 1.5 is out of range: it must be in [0, 1] (a fraction of the student"]),
    "save_total_limit_0": (["--save_total_limit", "0"],
                           ["--save_total_limit 0 is out of range: it must be >= 1", "pass --save_steps 0"]),
    "max_seq_length_2": (["--max_seq_length", "2"], ["--max_seq_length 2 is out of range: it must be >= 8"]),
    "max_seq_length_0": (["--max_seq_length", "0"], ["--max_seq_length 0 is out of range: it must be >= 8"]),
    "kd_temperature_0": (["--kd_temperature", "0"], ["--kd_temperature 0 is out of range: it must be > 0."]),
    "gumbel_temperature_0": (["--gumbel_temperature", "0"],
                             ["--gumbel_temperature 0 is out of range: it must be > 0."]),
    "learning_rate_negative": (["--learning_rate", "-1"], ["--learning_rate -1 is out of range: it must be > 0."]),
    "eval_batch_size_0": (["--per_device_eval_batch_size", "0"],
                          ["--per_device_eval_batch_size 0 is out of range: it must be >= 1."]),
    "learning_rate_nan": (["--learning_rate", "nan"], ["--learning_rate nan is not a finite number: it must be > 0."]),
    "max_steps_0": (["--max_steps", "0"], ["--max_steps 0 is out of range: it must be -1 or >= 1"]),
    "all_loss_weights_0": (["--ce_weight", "0", "--kd_weight", "0", "--adv_weight", "0"],
                           ["Every loss weight of --method mate-kd is 0", "a value > 0"]),
}


@pytest.mark.parametrize("case", sorted(SETTING_CASES))
def test_setting_out_of_range_is_refused_before_anything_is_touched(case, tiny_bert, previous_run, tmp_path,
                                                                    capsys):
    flags, fragments = SETTING_CASES[case]
    before = tree(previous_run)
    err = refused(train_argv(tiny_bert, previous_run, SST2, "--overwrite_output_dir", *flags), capsys)
    assert all(fragment in err for fragment in fragments)
    assert tree(previous_run) == before
    refused(train_argv(tiny_bert, tmp_path / "new", SST2, *flags), capsys)
    assert not (tmp_path / "new").exists()


def _without(argv: list[str], flags: set[str]) -> list[str]:
    """argv less the given flags and their values."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token in flags:
            skip = True
        else:
            out.append(token)
    return out


# case id -> (config file text, fragments the message must contain; CONFIG stands for the file's path)
YAML_CASES: dict[str, tuple[str, list[str]]] = {
    "max_steps_2.5": ("max_steps: 2.5\n", ["Config file CONFIG, key max_steps: 2.5 is not a whole number"]),
    "learning_rate_fast": ("learning_rate: fast\n",
                           ["Config file CONFIG, key learning_rate: 'fast' is not a number; write a number"]),
    "learning_rate_list": ("learning_rate: [1.0e-5, 2.0e-5]\n",
                           ["Config file CONFIG, key learning_rate: [1e-05, 2e-05] is a list; write a number"]),
    "warmup_ratio_1.5": ("warmup_ratio: 1.5\n",
                         ["Config file CONFIG, key warmup_ratio: 1.5 is out of range: it must be in [0, 1]"]),
    "method_unknown": ("method: distil\n", ["Config file CONFIG, key method: 'distil' is not one of mate-kd, kd, "
                                            "finetune."]),
    "not_yaml": ("learning_rate: [2.0e-5\n", ["Config file CONFIG is not valid YAML"]),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_config_file_value_of_wrong_type_or_range_names_file_and_key(case, tiny_bert, previous_run, tmp_path,
                                                                     capsys):
    text, fragments = YAML_CASES[case]
    config = tmp_path / "run.yaml"
    config.write_text(text)
    before = tree(previous_run)
    argv = _without(train_argv(tiny_bert, previous_run, SST2, "--overwrite_output_dir"), {"--max_steps"})
    err = refused(["train", "--config", str(config), *argv[1:]], capsys)
    assert all(fragment.replace("CONFIG", str(config)) in err for fragment in fragments)
    assert tree(previous_run) == before


def test_command_line_value_over_a_bad_config_value_is_named_as_a_flag(tiny_bert, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("warmup_ratio: 0.5\n")
    argv = train_argv(tiny_bert, tmp_path / "out", SST2, "--warmup-ratio", "2")
    err = refused(["train", "--config", str(config), *argv[1:]], capsys)
    assert "--warmup_ratio 2 is out of range" in err and "Config file" not in err


@pytest.fixture
def wrong_models(tiny_bert, tiny_roberta, teacher_dir, tmp_path) -> dict[str, tuple[dict[str, str], list[str]]]:
    """case id -> (the three model paths, fragments the message must contain)."""
    return {
        "missing_student": ({**tiny_bert, "student": str(tmp_path / "bert_models" / "distilbert-base")},
                            ["student directory", "bert_models/distilbert-base (--model_name_or_path) does not exist",
                             "The paper's layout"]),
        "missing_teacher": ({**tiny_bert, "teacher": str(tmp_path / "ckpts" / "teachers_bert_base" / "SST-2")},
                            ["teacher directory", "(--teacher_path) does not exist", "ckpts/{teachers_bert_base"]),
        "vocabulary_mismatch": ({**tiny_bert, "generator": tiny_roberta["generator"]},
                                ["Vocabulary mismatch: the generator tokenizer in", "must share one vocabulary"]),
        "teacher_label_count": ({**tiny_bert, "teacher": teacher_dir(3)},
                                ["The teacher predicts 3 labels but sst-2 has 2 (['0', '1'])"]),
        "teacher_label_names": ({**tiny_bert, "teacher": teacher_dir(2, {0: "negative", 1: "positive"})},
                                ["The teacher's labels ['negative', 'positive'] (config.id2label) are not sst-2's "
                                 "labels ['0', '1']"]),
        "generator_not_masked_lm": ({**tiny_bert, "generator": tiny_bert["teacher"]},
                                    ["is not a masked LM: its checkpoint lacks the MLM head",
                                     "mate-kd pretrain-generator"]),
    }


@pytest.mark.parametrize("case", ["missing_student", "missing_teacher", "vocabulary_mismatch", "teacher_label_count",
                                  "teacher_label_names", "generator_not_masked_lm"])
def test_models_that_cannot_work_are_refused_and_previous_run_kept(case, wrong_models, previous_run, capsys):
    models, fragments = wrong_models[case]
    before = tree(previous_run)
    err = refused(train_argv(models, previous_run, SST2, "--overwrite_output_dir"), capsys)
    for fragment in fragments:
        assert fragment in err
    assert tree(previous_run) == before


@pytest.mark.parametrize("role,flag", [("student", "--model_name_or_path"), ("teacher", "--teacher_path"),
                                       ("generator", "--generator_path")], ids=["student", "teacher", "generator"])
def test_truncated_weights_name_the_role_the_file_and_the_fix(role, flag, tiny_bert, previous_run, tmp_path, capsys):
    """A copy cut off half-way (as an interrupted download or copy leaves it): safetensors' own error is wrapped."""
    broken = tmp_path / role
    shutil.copytree(tiny_bert[role], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    before = tree(previous_run)
    err = refused(train_argv({**tiny_bert, role: str(broken)}, previous_run, SST2, "--overwrite_output_dir"), capsys)
    assert f"The {role} weights {weights} ({flag}) cannot be read: " in err
    assert "truncated or corrupt" in err and "copy or download the model again" in err
    assert tree(previous_run) == before


# ---- evaluate and predict: the model must be a classifier fine-tuned for the task, and a training run's results
# are never overwritten


def eval_argv(command: str, model: str, out: Path, task: str = "sst-2", data: Path = SST2) -> list[str]:
    return [command, "--model_name_or_path", model, "--task_name", task, "--data_dir", str(data),
            "--output_dir", str(out), "--max_eval_samples", "4"]


@pytest.fixture
def unfit_models(tiny_bert, teacher_dir) -> dict[str, tuple[str, str, Path, list[str]]]:
    """case id -> (model, task, data, fragments the message must contain)."""
    return {
        "three_labels_on_sst2": (teacher_dir(3), "sst-2", SST2,
                                 ["The model predicts 3 labels but sst-2 has 2 (['0', '1']): it was fine-tuned for "
                                  "another task. Pass a model fine-tuned for sst-2"]),
        "two_labels_on_mnli": (tiny_bert["teacher"], "mnli", GLUE / "MNLI",
                               ["The model predicts 2 labels but mnli has 3"]),
        "classifier_on_regression": (tiny_bert["teacher"], "sts-b", GLUE / "STS-B",
                                     ["The model has 2 outputs but sts-b is a regression task with 1 output"]),
        "masked_lm_without_head": (tiny_bert["generator"], "sst-2", SST2,
                                   ["has no trained classification head: its checkpoint lacks ['classifier.bias', "
                                    "'classifier.weight']", "predictions would be random"]),
    }


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("case", ["three_labels_on_sst2", "two_labels_on_mnli", "classifier_on_regression",
                                  "masked_lm_without_head"])
def test_evaluate_and_predict_refuse_a_model_not_fine_tuned_for_the_task(command, case, unfit_models, tmp_path,
                                                                          capsys):
    model, task, data, fragments = unfit_models[case]
    err = refused(eval_argv(command, model, tmp_path / "scores", task, data), capsys)
    assert all(fragment in err for fragment in fragments)
    assert not (tmp_path / "scores").exists()


def test_evaluate_into_a_training_run_keeps_its_results(tiny_bert, previous_run, capsys):
    before = tree(previous_run)
    err = refused(eval_argv("evaluate", tiny_bert["teacher"], previous_run), capsys)
    assert (f"--output_dir {previous_run} holds a training run (log.jsonl): `mate-kd evaluate` would overwrite its "
            f"eval_results.json") in err and f"--output_dir {previous_run / 'eval'}" in err
    assert tree(previous_run) == before


def test_teacher_without_a_trained_head_is_refused(tiny_bert, previous_run, capsys):
    before = tree(previous_run)
    err = refused(train_argv({**tiny_bert, "teacher": tiny_bert["generator"]}, previous_run, SST2,
                             "--overwrite_output_dir"), capsys)
    assert f"The teacher at {tiny_bert['generator']} (--teacher_path) has no trained classification head" in err
    assert tree(previous_run) == before


def test_unwritable_output_dir(tiny_bert, tmp_path, capsys):
    """chmod cannot make a directory unwritable for root (the tests may run as root): its parent is a file."""
    parent = tmp_path / "results"
    parent.write_text("not a directory")
    err = refused(train_argv(tiny_bert, parent / "out"), capsys)
    assert f"Cannot write to output directory {parent / 'out'}: Not a directory. Choose a writable --output_dir." in err
    assert parent.read_text() == "not a directory"


def test_resume_from_a_directory_that_is_not_a_checkpoint(tiny_bert, previous_run, capsys):
    before, model_before = tree(previous_run), tree(Path(tiny_bert["student"]))
    err = refused(train_argv(tiny_bert, previous_run, SST2, "--resume_from_checkpoint", tiny_bert["student"]), capsys)
    assert f"--resume_from_checkpoint {tiny_bert['student']} is not a complete checkpoint (no progress.json)" in err
    assert "pass `latest`" in err
    assert tree(previous_run) == before and tree(Path(tiny_bert["student"])) == model_before


def test_resume_from_a_non_checkpoint_into_a_new_output_dir(tiny_bert, tmp_path, capsys):
    """A bad resume path is refused (not ignored) even when --output_dir does not exist yet."""
    err = refused(train_argv(tiny_bert, tmp_path / "new", SST2, "--resume_from_checkpoint", tiny_bert["student"]),
                  capsys)
    assert "is not a complete checkpoint" in err
    assert not (tmp_path / "new").exists()


def test_resume_latest_without_checkpoints_keeps_a_previous_run(tiny_bert, previous_run, capsys):
    before = tree(previous_run)
    err = refused(train_argv(tiny_bert, previous_run, SST2, "--resume_from_checkpoint", "latest"), capsys)
    assert "--overwrite_output_dir" in err
    assert tree(previous_run) == before


def test_batch_without_a_maskable_token_gives_a_finite_student_loss(tiny_bert):
    """Empty texts leave only [CLS] [SEP]: masking selects nothing and x' must equal x, not crash."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert["student"])
    student = AutoModelForSequenceClassification.from_pretrained(tiny_bert["student"])
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_bert["teacher"]).requires_grad_(False)
    generator = AutoModelForMaskedLM.from_pretrained(tiny_bert["generator"])
    objective = MateKD(student, teacher, generator, Settings(0.3, 1.0, 1.0, "soft_ce", 1 / 3, 1 / 3, 1 / 3, False),
                       special_token_ids(tokenizer), tokenizer.mask_token_id)
    enc = tokenizer(["", ""], return_tensors="pt")
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": torch.tensor([0, 1])}
    loss, terms = objective.student_loss(batch)
    assert torch.isfinite(loss) and set(terms) == {"ce", "kd", "adv"}


def test_disk_full_while_saving_a_model_keeps_the_previous_one(tiny_bert, tmp_path, monkeypatch):
    """best/ and final/ are replaced only once the new copy is complete (checkpoints: tests/test_resume.py)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert["student"])
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert["student"])
    best = tmp_path / "out" / "best"
    save_model(model, tokenizer, str(best))
    before = tree(best)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(model), "save_pretrained", disk_full)
    with pytest.raises(MateKDError, match=r"Could not save .*best: No space left on device\. Nothing already saved "
                                          r"was changed"):
        save_model(model, tokenizer, str(best))
    assert tree(best) == before
    assert sorted(p.name for p in best.parent.iterdir()) == ["best"]


# ---- safe loading: no code from a model directory or a checkpoint runs unless the user asks


def test_model_code_is_not_run_without_trust_remote_code(tiny_bert, previous_run, tmp_path, capsys):
    student = tmp_path / "custom_student"
    shutil.copytree(tiny_bert["student"], student)
    marker = tmp_path / "code_ran"
    for module, name in (("configuration_custom", "DistilBertConfig"),
                         ("modeling_custom", "DistilBertForSequenceClassification")):
        (student / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom transformers import {name}\n")
    config = json.loads((student / "config.json").read_text())
    config.update(model_type="custom-distilbert", auto_map={"AutoConfig": "configuration_custom.DistilBertConfig",
                  "AutoModelForSequenceClassification": "modeling_custom.DistilBertForSequenceClassification"})
    (student / "config.json").write_text(json.dumps(config))
    before = tree(previous_run)
    err = refused(train_argv({**tiny_bert, "student": str(student)}, previous_run, SST2, "--overwrite_output_dir"),
                  capsys)
    assert "needs Python code shipped with the model" in err and "--trust_remote_code" in err
    assert not marker.exists()
    assert tree(previous_run) == before


class _RunsCode:
    """A pickle that calls a function when loaded without weights_only (here: creates a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_checkpoint_state_is_loaded_without_running_pickled_code(tiny_bert, tmp_path):
    from mate_kd.config import parse_args
    from mate_kd.loop import train

    out = tmp_path / "out"
    flags = ["--method", "finetune", "--model_name_or_path", tiny_bert["student"], "--task_name", "sst-2",
             "--data_dir", str(SST2), "--output_dir", str(out), "--max_steps", "2", "--save_steps", "1",
             "--per_device_train_batch_size", "4"]
    train(parse_args(flags))
    first = Path(list_checkpoints(str(out))[0])
    marker = tmp_path / "code_ran"
    state = torch.load(first / "trainer_state.pt", weights_only=True)
    torch.save({**state, "extra": _RunsCode(marker)}, first / "trainer_state.pt")
    with pytest.raises(MateKDError, match="not written by mate-kd .*it was not loaded"):
        train(parse_args(flags + ["--resume_from_checkpoint", str(first)]))
    assert not marker.exists()


def test_resume_latest_restarts_a_run_killed_before_its_first_checkpoint(tiny_bert, tmp_path):
    """Only the run's own log and settings in --output_dir: `latest` starts it again."""
    from mate_kd.config import parse_args
    from mate_kd.loop import train

    out = tmp_path / "out"
    out.mkdir()
    (out / "log.jsonl").write_text("")
    (out / "run_config.yaml").write_text("seed: 42\n")
    flags = ["--method", "finetune", "--model_name_or_path", tiny_bert["student"], "--task_name", "sst-2",
             "--data_dir", str(SST2), "--output_dir", str(out), "--max_steps", "2", "--save_steps", "0",
             "--per_device_train_batch_size", "4", "--resume_from_checkpoint", "latest"]
    assert train(parse_args(flags))["final"]["step"] == 2
