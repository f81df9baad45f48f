"""--report_to: TensorBoard receives every number of log.jsonl under its log name, read back with TensorBoard's own
event reader; the generator's replaced-token share; trackers that are missing are refused before training."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mate_kd import cli
from mate_kd.config import parse_args
from mate_kd.errors import ConfigError
from mate_kd.loop import NonFiniteLoss, build_run, train
from mate_kd.objectives import MateKD
from mate_kd.tracking import LOG_DIR, chosen, scalars

SST2 = str(Path(__file__).parents[1] / "mate_kd" / "assets" / "sst2_sample")


def flags(models: dict[str, str], out: Path, *extra: str, method: str = "mate-kd") -> list[str]:
    argv = ["--method", method, "--model_name_or_path", models["student"], "--task_name", "sst-2", "--data_dir", SST2,
            "--output_dir", str(out), "--max_train_samples", "48", "--max_eval_samples", "16",
            "--per_device_train_batch_size", "8", "--max_seq_length", "64", "--save_steps", "0", "--seed", "5",
            "--n_generator_steps", "1", "--n_student_steps", "2", "--learning_rate", "1e-3",
            "--generator_learning_rate", "1e-3"]
    if method != "finetune":
        argv += ["--teacher_path", models["teacher"]]
    if method == "mate-kd":
        argv += ["--generator_path", models["generator"]]
    return argv + list(extra)


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def tensorboard_scalars(out: Path, name: str) -> dict[str, list[tuple[int, float]]]:
    accumulator = EventAccumulator(str(out / LOG_DIR / name))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def logged_scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    """log.jsonl's numbers by their flattened names, in the order they were logged."""
    series: dict[str, list[tuple[int, float]]] = {}
    for event in events(out):
        for tag, value in scalars(event).items():
            series.setdefault(tag, []).append((event["step"], value))
    return series


def assert_same_series(board: dict, log: dict) -> None:
    assert set(board) == set(log)
    for tag, points in log.items():
        assert [s for s, _ in board[tag]] == [s for s, _ in points], tag
        assert [v for _, v in board[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag  # float32 on disk


def test_tensorboard_holds_every_number_of_the_log(tiny_bert, tmp_path):
    out = tmp_path / "run"
    train(parse_args(flags(tiny_bert, out, "--report_to", "tensorboard", "--run_name", "probe-run", "--max_steps", "4",
                           "--logging_steps", "2", "--evaluate_during_training", "--adversary_probe_samples", "4")))
    board, log = tensorboard_scalars(out, "probe-run"), logged_scalars(out)
    assert_same_series(board, log)
    expected = {"loss_student", "loss_ce", "loss_kd", "loss_adv", "loss_generator", "lr", "generator_lr",
                "examples_per_s", "generator_replaced", "generator_steps", "epoch", "eval/dev/acc",
                "final_eval/dev/acc", "best_step", "adversary/d_adv_current", "adversary/replaced_frozen"}
    assert expected <= set(board), expected - set(board)
    assert [s for s, _ in board["eval/dev/acc"]] == [2] and [s for s, _ in board["loss_student"]] == [2, 4]


def test_a_resumed_run_shows_each_step_once(tiny_bert, tmp_path):
    """The attempt after a resume redoes the steps after its checkpoint; TensorBoard must not show them twice."""
    first = tmp_path / "first"
    argv = flags(tiny_bert, first, "--report_to", "tensorboard", "--run_name", "r", "--max_steps", "6",
                 "--logging_steps", "1", "--save_steps", "3", "--save_total_limit", "3", method="kd")
    train(parse_args(argv))
    resumed = tmp_path / "resumed"
    shutil.copytree(first, resumed)
    for name in ("final", "best", "eval_results.json", os.path.join("checkpoints", "step-00000006")):
        path = resumed / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    train(parse_args([str(resumed) if a == str(first) else a for a in argv] + ["--resume_from_checkpoint", "latest"]))
    board = tensorboard_scalars(resumed, "r")
    assert [s for s, _ in board["loss_student"]] == [1, 2, 3, 4, 5, 6]
    assert_same_series(board, logged_scalars(resumed))


def _event_writer_threads() -> list[threading.Thread]:
    """TensorBoard's writer keeps a background thread per event file until it is closed."""
    return [t for t in threading.enumerate() if type(t).__name__ == "_AsyncWriterThread"]


def test_trackers_are_closed_when_a_run_fails(tiny_bert, tmp_path, monkeypatch):
    real = MateKD.student_loss

    def poisoned(self, batch, stats=None):
        loss, terms = real(self, batch, stats)
        return loss * float("nan"), terms

    monkeypatch.setattr(MateKD, "student_loss", poisoned)
    out = tmp_path / "run"
    before = set(_event_writer_threads())
    with pytest.raises(NonFiniteLoss):
        train(parse_args(flags(tiny_bert, out, "--report_to", "tensorboard", "--max_steps", "4", "--logging_steps", "2",
                               method="kd")))
    assert list((out / LOG_DIR / "run").glob("events.out.tfevents.*")), "the tracker never started"
    assert not set(_event_writer_threads()) - before, "the TensorBoard writer was left open"


def test_the_student_step_counts_the_tokens_the_generator_replaced(tiny_bert, tmp_path):
    run = build_run(parse_args(flags(tiny_bert, tmp_path / "run", "--max_steps", "2")))
    batch = next(iter(run.train_loader))
    torch.manual_seed(0)
    stats: dict = {}
    run.objective.student_loss(batch, stats)
    torch.manual_seed(0)  # the same masks and samples: the student loss draws x' first
    mask, perturbed = run.objective.perturbed_ids(batch)
    assert int(stats["masked"]) == int(mask.sum()) > 0
    assert int(stats["replaced"]) == int(((perturbed != batch["input_ids"]) & mask).sum()) > 0


def test_the_log_has_the_replaced_share_for_mate_kd_only(tiny_bert, tmp_path):
    train(parse_args(flags(tiny_bert, tmp_path / "mate", "--max_steps", "2", "--logging_steps", "1")))
    shares = [e["generator_replaced"] for e in events(tmp_path / "mate") if "loss_student" in e]
    assert len(shares) == 2 and all(0 < s <= 1 for s in shares)
    train(parse_args(flags(tiny_bert, tmp_path / "kd", "--max_steps", "2", "--logging_steps", "1", method="kd")))
    assert not any("generator_replaced" in e for e in events(tmp_path / "kd"))


def test_report_to_wandb_without_wandb_is_refused_with_the_install_command(tiny_bert, tmp_path, monkeypatch,
                                                                            capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # not importable, whatever this machine has installed
    out = tmp_path / "run"
    assert cli.main(["train", *flags(tiny_bert, out, "--report_to", "wandb", "--max_steps", "2")]) == 1
    assert "mate-kd train: error: --report_to wandb needs the wandb package, which is not installed: pip install " \
           "wandb" in capsys.readouterr().err
    assert not out.exists(), "refused before anything was written"


def test_report_to_all_means_every_installed_tracker(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    assert chosen(parse_args(flags(tiny_bert, tmp_path, "--report_to", "all"))) == ["tensorboard"]
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ConfigError, match="--report_to all found no tracker installed"):
        parse_args(flags(tiny_bert, tmp_path, "--report_to", "all"))


@pytest.mark.parametrize("name", ["a/b", "", ".."])
def test_a_run_name_that_is_not_one_directory_is_refused(tiny_bert, tmp_path, name):
    with pytest.raises(ConfigError, match="--run_name .* must be a plain name"):
        parse_args(flags(tiny_bert, tmp_path, "--report_to", "tensorboard", "--run_name", name))
