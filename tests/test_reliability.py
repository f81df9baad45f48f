"""Bad input through `mate-kd train`: exit code 1, one clear message, and nothing already written changed.

Each refusal runs into an output directory that already holds a previous run's files, passing
--overwrite_output_dir so that the refusal comes from the bad input itself and not from the
non-empty directory check (tests/test_cli.py covers that one). docs/reliability.md tables them.
"""

from __future__ import annotations

import errno
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

SST2 = Path(__file__).parent / "fixtures" / "glue" / "SST-2"


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
    assert "mate-kd train: error: " in err and "Traceback" not in err
    return err


def sst2_copy(tmp_path: Path, train_text: str | None = None, drop: str | None = None) -> Path:
    data = tmp_path / "glue_data" / "SST-2"
    shutil.copytree(SST2, data)
    if train_text is not None:
        (data / "train.tsv").write_text(train_text, encoding="utf-8")
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
