"""--torch_compile: the student and the teacher compiled whole, the generator's encoder only, and training gives
what eager training gives. The cheap aot_eager backend keeps the test short (tracing and AOT autograd as with
inductor, without generating kernels); docs/performance.md measures inductor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mate_kd.config import parse_args
from mate_kd.errors import ConfigError
from mate_kd.loop import build_run, train

SST2 = str(Path(__file__).parents[1] / "mate_kd" / "assets" / "sst2_sample")


def flags(models: dict[str, str], out: Path, *extra: str) -> list[str]:
    return ["--method", "mate-kd", "--model_name_or_path", models["student"], "--teacher_path", models["teacher"],
            "--generator_path", models["generator"], "--task_name", "sst-2", "--data_dir", SST2,
            "--output_dir", str(out), "--max_train_samples", "16", "--max_eval_samples", "8", "--max_steps", "3",
            "--per_device_train_batch_size", "4", "--max_seq_length", "32", "--n_generator_steps", "1",
            "--n_student_steps", "1", "--logging_steps", "1", "--save_steps", "0", "--learning_rate", "1e-3",
            "--generator_learning_rate", "1e-3", *extra]


def compiled(module: torch.nn.Module) -> bool:
    return module._compiled_call_impl is not None


def test_which_models_are_compiled(tiny_bert, tmp_path):
    run = build_run(parse_args(flags(tiny_bert, tmp_path / "a", "--torch_compile")))
    o = run.objective
    assert compiled(o.bare_student) and compiled(o.teacher)
    assert compiled(o.bare_generator.base_model) and not compiled(o.bare_generator), \
        "the generator's head takes a hook at every call: only its encoder is compiled"
    eager = build_run(parse_args(flags(tiny_bert, tmp_path / "b")))
    assert not any(compiled(m) for m in eager.objective.bare_student.modules())


def test_compiled_training_matches_eager(no_dropout, tmp_path):
    results = {}
    for name, extra in (("eager", ()), ("compiled", ("--torch_compile_backend", "aot_eager"))):
        out = tmp_path / name
        results[name] = train(parse_args(flags(no_dropout, out, *extra)))
        results[name]["log"] = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        results[name]["weights"] = {k: load_file(str(out / k / "model.safetensors")) for k in ("final", "generator")}
    assert parse_args(flags(no_dropout, tmp_path, "--torch_compile_backend", "aot_eager")).torch_compile
    losses = {n: [e["loss_student"] for e in r["log"] if "loss_student" in e] for n, r in results.items()}
    assert len(losses["eager"]) == 3 and losses["compiled"] == pytest.approx(losses["eager"], rel=1e-4)
    for role in ("final", "generator"):
        for key, value in results["eager"]["weights"][role].items():
            torch.testing.assert_close(results["compiled"]["weights"][role][key], value, rtol=0, atol=1e-4)


def test_an_unknown_backend_is_refused_before_loading(tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="--torch_compile_backend inductr is not a torch.compile backend: choose "
                                          "one of .*inductor"):
        parse_args(flags(tiny_bert, tmp_path, "--torch_compile_backend", "inductr"))
