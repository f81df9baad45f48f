"""The adversary probe: D(S(x'), T(x')) for the current and the frozen generator at every evaluation,
without changing what training does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mate_kd.config import parse_args
from mate_kd.loop import build_run, train

SST2 = str(Path(__file__).parents[1] / "mate_kd" / "assets" / "sst2_sample")
MRPC = str(Path(__file__).parent / "fixtures" / "glue" / "MRPC")
KEYS = {"d_adv_current", "d_adv_frozen", "d_clean", "replaced_current", "replaced_frozen", "masked_tokens",
        "examples"}


def flags(models: dict[str, str], out: Path, *extra: str) -> list[str]:
    return ["--method", "mate-kd", "--model_name_or_path", models["student"], "--teacher_path", models["teacher"],
            "--generator_path", models["generator"], "--task_name", "sst-2", "--data_dir", SST2,
            "--output_dir", str(out), "--max_steps", "6", "--max_train_samples", "64", "--max_eval_samples", "16",
            "--per_device_train_batch_size", "8", "--n_generator_steps", "2", "--n_student_steps", "3",
            "--logging_steps", "2", "--evaluate_during_training", "--save_steps", "0", "--learning_rate", "1e-3",
            "--generator_learning_rate", "1e-2", "--seed", "7", *extra]


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def probed(tiny_bert, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("probed")
    train(parse_args(flags(tiny_bert, out, "--adversary_probe_samples", "20")))
    return out


def test_probe_does_not_change_training(tiny_bert, probed, tmp_path):
    train(parse_args(flags(tiny_bert, tmp_path)))
    for name in ("final", "generator"):
        a, b = load_file(str(probed / name / "model.safetensors")), load_file(str(tmp_path / name / "model.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    strip = lambda e: {k: v for k, v in e.items() if k not in ("adversary", "examples_per_s")}  # noqa: E731
    assert [strip(e) for e in events(probed)] == [strip(e) for e in events(tmp_path)]
    assert not any("adversary" in e for e in events(tmp_path))


def test_probe_is_logged_at_every_evaluation_and_at_the_end(probed):
    logged = events(probed)
    evaluated = [e for e in logged if "eval" in e or "final_eval" in e]
    assert len(evaluated) == 3 and all(KEYS <= set(e["adversary"]) for e in evaluated)
    for e in evaluated:
        a = e["adversary"]
        assert a["examples"] == 20 and a["masked_tokens"] > 0
        assert 0.0 <= a["replaced_current"] <= 1.0 and 0.0 <= a["replaced_frozen"] <= 1.0
        assert a["d_adv_current"] > 0 and a["d_clean"] > 0
    # the generator moved (lr 1e-2), so its text differs from the frozen generator's
    last = evaluated[-1]["adversary"]
    assert last["d_adv_current"] != pytest.approx(last["d_adv_frozen"], rel=1e-6)


def test_without_generator_updates_current_and_frozen_agree(tiny_bert, tmp_path):
    train(parse_args(flags(tiny_bert, tmp_path, "--adversary_probe_samples", "20", "--n_generator_steps", "0")))
    for e in events(tmp_path):
        if "adversary" in e:
            a = e["adversary"]
            assert a["d_adv_current"] == a["d_adv_frozen"] and a["replaced_current"] == a["replaced_frozen"]


def test_measure_is_repeatable_and_leaves_the_rng_and_modes_alone(tiny_bert, tmp_path):
    run = build_run(parse_args(flags(tiny_bert, tmp_path, "--adversary_probe_samples", "12")))
    student, generator = run.objective.bare_student.train(), run.objective.bare_generator.train()
    state = torch.get_rng_state()
    first, second = run.probe.measure(), run.probe.measure()
    assert first == second
    assert torch.equal(torch.get_rng_state(), state)
    assert student.training and generator.training
    assert first["d_adv_current"] == first["d_adv_frozen"]  # nothing trained yet: the same generator


def test_evaluation_cadence_does_not_change_training(tiny_bert, tmp_path):
    """Iterating a loader must not draw from the global RNG: evaluating every 2 or every 3 updates (and with or
    without the probe) trains the same mate-kd student and generator."""
    outs = []
    for every in ("2", "3"):
        out = tmp_path / every
        train(parse_args(flags(tiny_bert, out, "--logging_steps", every)))
        outs.append(out)
    for name in ("final", "generator"):
        a, b = (load_file(str(o / name / "model.safetensors")) for o in outs)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_probe_on_a_sentence_pair_task(tiny_bert, tmp_path):
    """Pairs carry token_type_ids, which the probe's frozen generator (a copy the objective was not built with)
    takes too."""
    argv = flags(tiny_bert, tmp_path, "--adversary_probe_samples", "6")
    argv[argv.index("--task_name") + 1], argv[argv.index("--data_dir") + 1] = "mrpc", MRPC
    run = build_run(parse_args(argv))
    assert "token_type_ids" in run.probe.batches[0]
    measured = run.probe.measure()
    assert measured["examples"] == 6 and measured["masked_tokens"] > 0
    assert measured["d_adv_current"] == measured["d_adv_frozen"] > 0  # nothing trained yet: the same generator
