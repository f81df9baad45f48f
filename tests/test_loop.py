"""The loop: which model each step moves, the n_G/n_S alternation, and the label order it trains with."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from mate_kd.config import parse_args
from mate_kd.loop import build_run, count_student_updates, generator_update, is_generator_batch, student_update, train
from mate_kd.tasks import get_task, read_split

GLUE = Path(__file__).parent / "fixtures" / "glue"


def run_args(paths, out, task="sst-2", data="SST-2", method="mate-kd", extra=()):
    argv = ["--model_name_or_path", paths["student"], "--task_name", task, "--data_dir", str(GLUE / data),
            "--output_dir", str(out), "--method", method, "--per_device_train_batch_size", "4",
            "--max_seq_length", "64", "--seed", "3"]
    if method != "finetune":
        argv += ["--teacher_path", paths["teacher"]]
    if method == "mate-kd":
        argv += ["--generator_path", paths["generator"]]
    return parse_args(argv + list(extra))


@pytest.fixture(scope="module")
def mate_run(tiny_bert, tmp_path_factory):
    return build_run(run_args(tiny_bert, tmp_path_factory.mktemp("run"), task="rte", data="RTE",
                              extra=["--generator_learning_rate", "1e-3", "--learning_rate", "1e-3", "--max_steps", "5"]))


def _states(run, state):
    o = run.objective
    return state(o.bare_student), state(o.teacher), state(o.bare_generator)


def test_generator_step_moves_only_the_generator(mate_run, snapshot):
    state, same = snapshot
    batch = next(iter(mate_run.train_loader))
    assert "token_type_ids" in batch, "a pair task, so segment ids take part"
    student0, teacher0, generator0 = _states(mate_run, state)
    loss = generator_update(mate_run.objective, [batch], mate_run.accelerator, mate_run.generator_optimizer,
                            mate_run.generator_scheduler, mate_run.args.generator_max_grad_norm)
    student1, teacher1, generator1 = _states(mate_run, state)
    assert torch.isfinite(loss) and loss < 0, "L_G = -D is negative"
    assert same(student0, student1), "the student moved during a generator step"
    assert same(teacher0, teacher1), "the teacher moved during a generator step"
    assert not same(generator0, generator1), "the generator did not move"
    student = mate_run.objective.bare_student
    assert all(p.requires_grad for p in student.parameters()), "student gradients not switched back on"
    assert all(p.grad is None for p in student.parameters()), "student gradients computed for nothing"
    assert all(p.grad is None for p in mate_run.objective.teacher.parameters())


def test_student_step_moves_only_the_student(mate_run, snapshot):
    state, same = snapshot
    batch = next(iter(mate_run.train_loader))
    student0, teacher0, generator0 = _states(mate_run, state)
    lr_before = mate_run.scheduler.get_last_lr()[0]
    loss, terms, stats = student_update(mate_run.objective, [batch], mate_run.accelerator, mate_run.optimizer,
                                        mate_run.scheduler, mate_run.args.max_grad_norm)
    student1, teacher1, generator1 = _states(mate_run, state)
    assert set(terms) == {"ce", "kd", "adv"}
    assert loss.item() == pytest.approx(sum(terms.values()).item() / 3, rel=1e-5)
    assert not same(student0, student1), "the student did not move"
    assert same(teacher0, teacher1), "the teacher moved during a student step"
    assert same(generator0, generator1), "the generator moved during a student step"
    assert all(p.grad is None for p in mate_run.objective.bare_generator.parameters()), \
        "generator gradients computed during a student step"
    assert mate_run.scheduler.get_last_lr()[0] < lr_before, "linear decay over student updates"


def _pattern(n_g: int, n_s: int, length: int) -> list[str]:
    cycle = ["G"] * n_g + ["S"] * n_s
    return [cycle[i % len(cycle)] for i in range(length)]


@pytest.mark.parametrize("n_g,n_s", [(10, 100), (2, 5), (0, 1), (0, 3), (1, 1), (3, 1), (4, 2)])
def test_alternation_pattern(n_g, n_s):
    pattern = _pattern(n_g, n_s, 3 * (n_g + n_s) + n_g + n_s // 2 + 1)
    for i, kind in enumerate(pattern):
        assert is_generator_batch(i, n_g, n_s) == (kind == "G"), i
    for total in range(len(pattern) + 1):
        assert count_student_updates(total, n_g, n_s) == pattern[:total].count("S"), total


def test_alternation_known_values():
    assert [is_generator_batch(i, 2, 5) for i in range(9)] == [True, True] + [False] * 5 + [True, True]
    assert count_student_updates(110 * 3 + 10 + 40, 10, 100) == 340
    assert count_student_updates(7, 10, 100) == 0
    assert not any(is_generator_batch(i, 0, 1) for i in range(20))
    assert count_student_updates(17, 0, 1) == 17


def _expected_counts(n_g: int, n_s: int, student_updates: int) -> tuple[int, int]:
    """(batches, generator updates) when the run stops right after its last student update."""
    batches = generator = students = 0
    while students < student_updates:
        if _pattern(n_g, n_s, batches + 1)[-1] == "G":
            generator += 1
        else:
            students += 1
        batches += 1
    return batches, generator


def _log(out) -> list[dict]:
    with open(os.path.join(out, "log.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("n_g,n_s,steps", [(2, 5, 7), (0, 1, 3), (3, 1, 2)])
def test_train_counts_generator_and_student_updates(tiny_bert, tmp_path, n_g, n_s, steps):
    out = tmp_path / "out"
    args = run_args(tiny_bert, out, extra=["--per_device_train_batch_size", "2", "--max_train_samples", "8",
                                           "--n_generator_steps", str(n_g), "--n_student_steps", str(n_s),
                                           "--max_steps", str(steps), "--logging_steps", "1"])
    progress = train(args)["progress"]
    with open(out / "eval_results.json", encoding="utf-8") as f:
        assert json.load(f)["progress"] == progress
    batches, generator = _expected_counts(n_g, n_s, steps)
    assert (progress["student_updates"], progress["generator_updates"], progress["batches"]) == \
        (steps, generator, batches)
    events = [e for e in _log(out) if "loss_student" in e]
    assert [e["step"] for e in events] == list(range(1, steps + 1))
    assert events[-1]["generator_steps"] == generator
    assert ("loss_generator" in events[0]) == (n_g > 0)
    assert (out / "generator").is_dir() == (n_g > 0)


def test_train_by_epochs_schedules_student_updates_only(tiny_bert, tmp_path):
    # 8 examples, batch 2: 4 batches per epoch, 3 epochs = 12 batches = GG SSSSS GG SSS
    out = tmp_path / "out"
    args = run_args(tiny_bert, out, extra=["--per_device_train_batch_size", "2", "--max_train_samples", "8",
                                           "--n_generator_steps", "2", "--n_student_steps", "5",
                                           "--num_train_epochs", "3", "--logging_steps", "4"])
    progress = train(args)["progress"]
    assert (progress["batches"], progress["student_updates"], progress["generator_updates"]) == (12, 8, 4)
    events = [e for e in _log(out) if "lr" in e]
    assert [e["step"] for e in events] == [4, 8]
    assert events[-1]["lr"] == 0.0, "the student's linear schedule must end exactly at its last update"
    assert events[0]["lr"] == pytest.approx(2e-5 * 4 / 8)


def test_teacher_label_order_drives_student_and_data(tiny_bert, teacher_dir, tmp_path):
    teacher = teacher_dir(2, {0: "not_entailment", 1: "entailment"})
    run = build_run(run_args({**tiny_bert, "teacher": teacher}, tmp_path / "out", task="rte", data="RTE",
                             method="kd"))
    order = ["not_entailment", "entailment"]
    assert run.models.labels == order
    assert run.objective.bare_student.config.id2label == dict(enumerate(order))
    gold = [order.index(e.label) for e in read_split(get_task("rte"), str(GLUE / "RTE"), "dev")]
    seen = torch.cat([b["labels"] for b in run.eval_loaders["dev"]]).tolist()
    assert seen == gold
    assert gold != [get_task("rte").labels.index(e.label) for e in read_split(get_task("rte"), str(GLUE / "RTE"),
                                                                              "dev")]


def test_refuses_a_run_with_no_student_update(tiny_bert, tmp_path):
    """10 generator batches before the first student batch, but only 3 batches in one epoch."""
    from mate_kd.errors import ConfigError

    args = run_args(tiny_bert, tmp_path / "out", extra=["--num_train_epochs", "1"])
    with pytest.raises(ConfigError, match="No student update would run.*--max_steps"):
        train(args)


def test_nan_dev_metric_still_finishes_with_a_best_model(tiny_regression, tmp_path):
    """Constant dev scores make Pearson NaN: the run must still write best/, final/ and eval_results.json."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("text,label\n" + "".join(f"sentence number {i},{i % 5}.0\n" for i in range(8)))
    (data / "dev.csv").write_text("text,label\n" + "".join(f"another sentence {i},3.0\n" for i in range(4)))
    out = tmp_path / "out"
    argv = ["--model_name_or_path", tiny_regression["student"], "--train_file", str(data / "train.csv"),
            "--validation_file", str(data / "dev.csv"), "--regression", "--method", "finetune",
            "--output_dir", str(out), "--max_steps", "2", "--logging_steps", "1", "--evaluate_during_training"]
    results = train(parse_args(argv))
    assert results["best"]["step"] == 1
    assert (out / "best" / "model.safetensors").is_file() and (out / "final" / "model.safetensors").is_file()
    assert json.loads((out / "eval_results.json").read_text())["final"]["step"] == 2


def test_unknown_selection_metric_is_refused_before_training(tiny_bert, tmp_path):
    from mate_kd.errors import ConfigError

    args = run_args(tiny_bert, tmp_path / "out", extra=["--max_steps", "2", "--metric_for_best_model", "f1"])
    with pytest.raises(ConfigError, match=r"f1 is not a metric of sst-2.*\['acc'\]"):
        train(args)
    assert not (tmp_path / "out" / "log.jsonl").exists()


def test_cached_teacher_logits_give_the_same_loss_and_skip_the_teacher(tiny_bert, tmp_path):
    """kd with the cache: same loss terms as computing T(x) in the step, and no teacher forward at all."""
    cached = build_run(run_args(tiny_bert, tmp_path / "a", method="kd", extra=["--max_steps", "2"]))
    fresh = build_run(run_args(tiny_bert, tmp_path / "b", method="kd",
                               extra=["--max_steps", "2", "--no_cache_teacher_logits"]))
    assert cached.objective.teacher_cache is not None and fresh.objective.teacher_cache is None
    assert cached.objective.teacher_cache.shape == (len(cached.train_loader.dataset), 2)
    batch = next(iter(cached.train_loader))
    calls = []
    handle = cached.objective.teacher.register_forward_hook(lambda *a: calls.append(1))
    cached.objective.student.eval(), fresh.objective.student.eval()
    _, with_cache = cached.objective.student_loss(batch)
    handle.remove()
    _, without = fresh.objective.student_loss(batch)
    assert calls == []
    for name in ("ce", "kd"):
        torch.testing.assert_close(with_cache[name], without[name], rtol=1e-5, atol=1e-6)


def test_cached_teacher_runs_only_on_perturbed_text_in_mate_kd(tiny_bert, tmp_path):
    run = build_run(run_args(tiny_bert, tmp_path / "a", extra=["--max_steps", "2"]))
    batch = next(iter(run.train_loader))
    rows = []
    handle = run.objective.teacher.register_forward_hook(lambda m, a, k, out: rows.append(len(k["input_ids"])),
                                                         with_kwargs=True)
    run.objective.student_loss(batch)
    handle.remove()
    assert rows == [len(batch["input_ids"])]


def test_training_subset_does_not_depend_on_the_seed(tiny_bert, tmp_path):
    """--max_train_samples picks the same examples for every --seed, so seeds vary only the training."""
    picked = []
    for seed in ("1", "2"):
        run = build_run(run_args(tiny_bert, tmp_path / seed, task="rte", data="RTE",
                                 extra=["--max_train_samples", "4", "--seed", seed, "--max_steps", "1"]))
        picked.append(sorted(run.train_loader.dataset.guids))
    assert picked[0] == picked[1] and len(picked[0]) == 4
