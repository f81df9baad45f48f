"""Learning-rate schedules of student and generator, gradient accumulation, and --eval_steps."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

from mate_kd.checkpoint import list_checkpoints
from mate_kd.config import parse_args
from mate_kd.errors import ConfigError
from mate_kd.loop import accumulate, build_run, count_generator_updates, train

SST2 = str(Path(__file__).parents[1] / "mate_kd" / "assets" / "sst2_sample")


def flags(models: dict[str, str], out: Path, method: str, *extra: str) -> list[str]:
    argv = ["--method", method, "--model_name_or_path", models["student"], "--task_name", "sst-2", "--data_dir", SST2,
            "--output_dir", str(out), "--max_eval_samples", "16", "--max_seq_length", "64", "--save_steps", "0",
            "--learning_rate", "1e-3", "--generator_learning_rate", "1e-3", "--logging_steps", "1", "--seed", "4"]
    if method != "finetune":
        argv += ["--teacher_path", models["teacher"]]
    if method == "mate-kd":
        argv += ["--generator_path", models["generator"]]
    return argv + list(extra)


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def schedule(make, *args, steps: int) -> list[float]:
    """The LR after each of `steps` optimizer steps of a transformers schedule, peak 1e-3."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = make(optimizer, *args)
    out = []
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


@pytest.mark.parametrize("name, make", [("linear", get_linear_schedule_with_warmup),
                                        ("cosine", get_cosine_schedule_with_warmup)])
def test_student_schedule_is_transformers_own(tiny_bert, tmp_path, name, make):
    extra = ["--max_train_samples", "16", "--per_device_train_batch_size", "4", "--max_steps", "6",
             "--warmup_steps", "2"] + (["--lr_scheduler_type", name] if name != "linear" else [])  # linear: default
    train(parse_args(flags(tiny_bert, tmp_path, "finetune", *extra)))
    logged = [e["lr"] for e in events(tmp_path) if "lr" in e]
    assert logged == schedule(make, 2, 6, steps=6)


def test_generator_schedule_constant_by_default_or_linear_over_its_updates(tiny_bert, tmp_path):
    # GG SS GG SS: the generator updates 4 times; logged after each student update
    extra = ["--max_train_samples", "16", "--per_device_train_batch_size", "4", "--max_steps", "4",
             "--n_generator_steps", "2", "--n_student_steps", "2"]
    train(parse_args(flags(tiny_bert, tmp_path / "constant", "mate-kd", *extra)))
    assert [e["generator_lr"] for e in events(tmp_path / "constant") if "lr" in e] == [1e-3] * 4
    train(parse_args(flags(tiny_bert, tmp_path / "linear", "mate-kd", *extra,
                           "--generator_lr_scheduler_type", "linear")))
    assert [e["generator_lr"] for e in events(tmp_path / "linear") if "lr" in e] == \
        pytest.approx([5e-4, 5e-4, 0.0, 0.0])
    assert count_generator_updates(4, 2, 2) == 4 and count_generator_updates(7, 2, 5) == 4


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "final" / "model.safetensors"))


@pytest.mark.parametrize("method", ["finetune", "kd"])
def test_accumulated_micro_batches_train_like_the_larger_batch(no_dropout, tmp_path, method):
    """40 examples: batches 16, 16, 8 per epoch. Batch 8 x 2 and 4 x 4 micro-batches, the last update of each
    epoch shorter, must give the same student (to float rounding: micro-batches pad to their own length)."""
    # Adam's epsilon at 1e-4: with 1e-8 a near-zero gradient's float rounding flips the sign of a whole lr step
    common = ["--max_train_samples", "40", "--num_train_epochs", "2", "--adam_epsilon", "1e-4"]
    runs = {}
    for batch, n in ((16, 1), (8, 2), (4, 4)):
        out = tmp_path / f"b{batch}x{n}"
        runs[n] = train(parse_args(flags(no_dropout, out, method, *common, "--per_device_train_batch_size",
                                         str(batch), "--gradient_accumulation_steps", str(n))))
        runs[n]["log"] = [e for e in events(out) if "loss_student" in e]
        runs[n]["weights"] = final_weights(out)
    for n in (2, 4):
        assert runs[n]["progress"]["student_updates"] == runs[1]["progress"]["student_updates"] == 6
        assert runs[n]["progress"]["batches"] == {2: 10, 4: 20}[n]  # micro-batches: 5 (or 10) per epoch
        assert [e["step"] for e in runs[n]["log"]] == list(range(1, 7))
        # epochs count the loader's (micro-)batches, as in Trainer: equal where an epoch ends
        assert [runs[n]["log"][i]["epoch"] for i in (2, 5)] == [runs[1]["log"][i]["epoch"] for i in (2, 5)] == [1, 2]
        assert [e["lr"] for e in runs[n]["log"]] == [e["lr"] for e in runs[1]["log"]]
        assert [e["loss_student"] for e in runs[n]["log"]] == \
            pytest.approx([e["loss_student"] for e in runs[1]["log"]], rel=1e-5)
        for key, value in runs[1]["weights"].items():
            torch.testing.assert_close(runs[n]["weights"][key], value, rtol=0, atol=2e-5, msg=key)
    moved = any(not torch.equal(v, load_file(os.path.join(no_dropout["student"], "model.safetensors")).get(k, v))
                for k, v in runs[1]["weights"].items())
    assert moved, "the student did not train"


def test_accumulate_gives_the_gradient_of_the_whole_batch(no_dropout, tmp_path):
    """Micro-batches of 8 and 4 examples: each loss weighted by its share (8/12, 4/12), not by 1/2."""
    run = build_run(parse_args(flags(no_dropout, tmp_path, "kd", "--max_train_samples", "12",
                                     "--per_device_train_batch_size", "12", "--max_steps", "1")))
    (whole,) = list(run.train_loader)
    parts = [{k: v[:8] for k, v in whole.items()}, {k: v[8:] for k, v in whole.items()}]
    o, student = run.objective, run.objective.bare_student
    grads = []
    for batches in ([whole], parts):
        student.zero_grad(set_to_none=True)
        loss, terms = accumulate(o.student, batches, run.accelerator, o.student_loss)
        grads.append([p.grad.clone() for p in student.parameters()])
        if len(batches) == 1:
            whole_loss, whole_terms = loss, terms
    assert loss == pytest.approx(whole_loss.item(), rel=1e-6) and terms["kd"] == pytest.approx(whole_terms["kd"].item())
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7)


def test_accumulation_in_mate_kd_counts_updates_and_resumes_exactly(tiny_bert, tmp_path):
    """60 examples, micro-batch 4, 2 per update: 15 micro-batches and 8 updates per epoch (the 8th of one
    micro-batch). GG SSS GG S | SS GG SSS: 8 student and 6 generator updates over 27 micro-batches; the
    checkpoint at student update 4 is the epoch boundary."""
    first = tmp_path / "first"
    argv = flags(tiny_bert, first, "mate-kd", "--max_train_samples", "60", "--per_device_train_batch_size", "4",
                 "--gradient_accumulation_steps", "2", "--n_generator_steps", "2", "--n_student_steps", "3",
                 "--max_steps", "8", "--save_steps", "4", "--generator_lr_scheduler_type", "linear")
    progress = train(parse_args(argv))["progress"]
    assert (progress["student_updates"], progress["generator_updates"], progress["batches"], progress["epoch"]) == \
        (8, 6, 27, 1)
    log = [e for e in events(first) if "loss_student" in e]
    assert [(e["step"], e["generator_steps"]) for e in log] == [(1, 2), (2, 2), (3, 2), (4, 4), (5, 4), (6, 4),
                                                               (7, 6), (8, 6)]
    assert log[3]["epoch"] == 1.0 and log[-1]["epoch"] == pytest.approx(27 / 15)
    assert log[-1]["generator_lr"] == 0.0, "linear: the generator's last update ends its schedule"

    resumed = tmp_path / "resumed"
    shutil.copytree(first, resumed)
    for name in ("final", "best", "generator", "eval_results.json", os.path.join("checkpoints", "step-00000008")):
        path = resumed / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert [os.path.basename(p) for p in list_checkpoints(str(resumed))] == ["step-00000004"]
    train(parse_args([str(resumed) if a == str(first) else a for a in argv] + ["--resume_from_checkpoint", "latest"]))
    for name in ("final", "generator"):
        a = load_file(str(first / name / "model.safetensors"))
        b = load_file(str(resumed / name / "model.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_accumulation_is_part_of_a_checkpoint_s_settings(tiny_bert, tmp_path):
    argv = flags(tiny_bert, tmp_path, "finetune", "--max_train_samples", "16", "--per_device_train_batch_size", "4",
                 "--max_steps", "2", "--save_steps", "1")
    train(parse_args(argv))
    with pytest.raises(ConfigError, match="gradient_accumulation_steps: 1 -> 2"):
        train(parse_args(argv + ["--gradient_accumulation_steps", "2", "--resume_from_checkpoint",
                                 list_checkpoints(str(tmp_path))[0]]))


def test_eval_steps_apart_from_logging_steps(tiny_bert, tmp_path):
    extra = ["--max_train_samples", "16", "--per_device_train_batch_size", "4", "--max_steps", "7",
             "--logging_steps", "2", "--evaluate_during_training"]
    train(parse_args(flags(tiny_bert, tmp_path / "apart", "finetune", *extra, "--eval_steps", "3")))
    log = events(tmp_path / "apart")
    assert [e["step"] for e in log if "eval" in e] == [3, 6]
    assert [e["step"] for e in log if "loss_student" in e] == [2, 4, 6, 7]
    assert [e["step"] for e in log] == [2, 3, 4, 6, 7, 7], "step 6 logs and evaluates in one event"
    train(parse_args(flags(tiny_bert, tmp_path / "default", "finetune", *extra)))
    assert [e["step"] for e in events(tmp_path / "default") if "eval" in e] == [2, 4, 6]


def test_eval_steps_without_evaluation_is_refused(tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="--eval_steps 3 sets how often --evaluate_during_training evaluates"):
        parse_args(flags(tiny_bert, tmp_path, "finetune", "--eval_steps", "3"))
