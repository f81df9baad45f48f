"""The benchmark runs end to end at the tiny scale, and its naive reference computes MATE-KD's mathematics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from mate_kd.perturb import choose_mask, perturbed_ids
from mate_kd.pipeline import special_token_ids
from mate_kd.tiny import build_tiny_models, build_tokenizer
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "benchmarks", "bench_loop.py")
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from naive_reference import NaiveReference  # noqa: E402

MODE_KEYS = {"scale", "mode", "examples_per_s", "s_per_student_step", "s_per_generator_step", "peak_mem_mb",
             "s_per_example", "student_step_s", "generator_step_s", "gflop_per_example"}
SUMMARY_KEYS = {"speedup_vs_naive", "mate_kd_over_kd", "flop_ideal_mate_kd_over_kd", "flop_ideal_speedup_vs_naive"}


def test_bench_loop_tiny_prints_one_line_per_mode_and_a_summary(tmp_path):
    cmd = [sys.executable, BENCH, "--scale", "tiny", "--steps", "2", "--warmup", "1", "--batch_size", "8",
           "--max_seq_length", "64", "--threads", "1", "--work_dir", str(tmp_path),
           "--modes", "finetune,kd,mate-kd,naive-reference,textbrewer-kd,textbrewer-kd-cache"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    records, summary = lines[:-1], lines[-1]
    assert [r["mode"] for r in records] == ["finetune", "kd", "mate-kd", "naive-reference", "textbrewer-kd",
                                            "textbrewer-kd-cache"]
    for r in records:
        assert MODE_KEYS <= set(r), MODE_KEYS - set(r)
        assert r["scale"] == "tiny" and len(r["student_step_s"]) == 2
        assert r["examples_per_s"] > 0 and r["s_per_student_step"] > 0 and r["peak_mem_mb"] > 0
        has_generator = r["mode"] in ("mate-kd", "naive-reference")
        assert (r["s_per_generator_step"] is not None) == has_generator
    by_mode = {r["mode"]: r for r in records}
    assert summary["summary"] is True and SUMMARY_KEYS <= set(summary)
    assert summary["speedup_vs_naive"] == pytest.approx(
        by_mode["naive-reference"]["s_per_example"] / by_mode["mate-kd"]["s_per_example"])
    assert summary["mate_kd_over_kd"] == pytest.approx(
        by_mode["mate-kd"]["s_per_example"] / by_mode["kd"]["s_per_example"])
    # The FLOP ratios come from the per-mode FLOPs: MATE-KD needs more arithmetic than KD, the naive
    # structure far more than MATE-KD, and the package's default teacher cache removes T(x) from kd.
    assert summary["flop_ideal_mate_kd_over_kd"] == pytest.approx(
        by_mode["mate-kd"]["gflop_per_example"] / by_mode["kd"]["gflop_per_example"])
    assert summary["flop_ideal_mate_kd_over_kd"] > 1.5 and summary["flop_ideal_speedup_vs_naive"] > 2
    assert by_mode["kd"]["teacher_cache"] and by_mode["mate-kd"]["teacher_cache"]
    assert by_mode["kd"]["gflop_per_example"] == pytest.approx(by_mode["finetune"]["gflop_per_example"])
    # The peer toolkit's kd: its FLOPs are the package's kd with and without the cache, and the ratios compare them.
    assert by_mode["textbrewer-kd-cache"]["gflop_per_example"] == pytest.approx(by_mode["kd"]["gflop_per_example"])
    assert by_mode["textbrewer-kd"]["gflop_per_example"] > by_mode["kd"]["gflop_per_example"]
    assert summary["kd_over_textbrewer_kd"] == pytest.approx(
        by_mode["kd"]["s_per_example"] / by_mode["textbrewer-kd"]["s_per_example"])
    assert summary["kd_over_textbrewer_kd_cache"] == pytest.approx(
        by_mode["kd"]["s_per_example"] / by_mode["textbrewer-kd-cache"]["s_per_example"])


def test_textbrewer_kd_loss_is_the_package_kd_loss(tiny_bert, tmp_path):
    """The peer comparison times the same objective: TextBrewer's loss equals the package's kd loss."""
    from mate_kd.config import parse_args
    from mate_kd.loop import build_run
    from peer_textbrewer import kd_distiller, model_batch

    glue = os.path.join(REPO, "tests", "fixtures", "glue", "SST-2")
    run = build_run(parse_args(["--model_name_or_path", tiny_bert["student"], "--teacher_path", tiny_bert["teacher"],
                                "--task_name", "sst-2", "--data_dir", glue, "--output_dir", str(tmp_path / "run"),
                                "--method", "kd", "--per_device_train_batch_size", "4", "--max_steps", "1"]))
    student, teacher = run.objective.bare_student.eval(), run.objective.teacher
    batch = next(iter(run.train_loader))
    ours, _ = run.objective.student_loss(batch)
    distiller = kd_distiller(teacher, student, "cpu", str(tmp_path / "tb"))
    theirs, _ = distiller.train_on_batch(model_batch(batch), {})
    distiller.tb_writer.close()
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-6)


def test_bench_loop_refuses_unknown_mode(capsys):
    import bench_loop

    with pytest.raises(SystemExit):
        bench_loop.parse(["--modes", "kd,fast"])
    assert "unknown modes ['fast']" in capsys.readouterr().err


@pytest.fixture(scope="module")
def naive(tmp_path_factory):
    dirs = build_tiny_models(str(tmp_path_factory.mktemp("tiny")), "bert")
    tokenizer = build_tokenizer("bert")
    teacher = AutoModelForSequenceClassification.from_pretrained(dirs["teacher"])
    student = AutoModelForSequenceClassification.from_pretrained(dirs["student"])
    generator = AutoModelForMaskedLM.from_pretrained(dirs["generator"])
    batch = dict(tokenizer(["a fine , funny film .", "it is not a good movie at all , sadly", "dull"],
                           padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0, 0])
    ref = NaiveReference(teacher, student, generator, special_token_ids(tokenizer), tokenizer.mask_token_id,
                         tokenizer.pad_token_id, max_length=32)
    return ref, batch


def test_naive_reference_computes_the_same_perturbed_logits_as_the_ids_path(naive):
    ref, batch = naive
    ref.student.eval(), ref.generator.eval()
    torch.manual_seed(0)
    mask = choose_mask(batch["input_ids"], batch["attention_mask"], ref.special_ids, 0.5)
    assert mask.any()
    sampled = torch.randint(5, 4000, (int(mask.sum()),))
    x_adv = perturbed_ids(batch["input_ids"], mask, sampled)
    padded = ref.pad(batch)
    assert padded["input_ids"].shape[1] == 32
    one_hot = torch.nn.functional.one_hot(ref.pad({"input_ids": x_adv})["input_ids"], 4000).float()
    full_mask = ref.pad({"m": mask.long()})["m"].float()
    s_naive, t_naive = ref.adversarial_logits(padded, full_mask, one_hot)
    segments = batch["token_type_ids"]
    with torch.no_grad():
        t_ids = ref.teacher(input_ids=x_adv, attention_mask=batch["attention_mask"], token_type_ids=segments).logits
        s_ids = ref.student(input_ids=x_adv, attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(t_naive, t_ids, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(s_naive, s_ids, atol=1e-5, rtol=1e-4)
    ref.student.train(), ref.generator.train()


def test_naive_student_step_backpropagates_into_the_generator_as_released(naive):
    ref, batch = naive
    padded = ref.pad(batch)
    before = [p.detach().clone() for p in ref.student.parameters()]
    ref.generator.zero_grad(set_to_none=True)
    loss = ref.student_step(padded)
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, ref.student.parameters()))
    grads = [p.grad for p in ref.generator.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in ref.teacher.parameters())


def test_bench_cache_pass_compares_the_two_orders_on_the_same_logits(tmp_path, capsys):
    import bench_cache_pass

    lines = bench_cache_pass.main(["--scale", "tiny", "--n_train", "150", "--rounds", "1", "--batch_size", "16",
                                   "--work_dir", str(tmp_path)])
    orders, summary = lines[:-1], lines[-1]
    assert [line["order"] for line in orders] == ["dataset-order", "length-sorted"]
    assert all(line["examples"] == 150 and len(line["seconds"]) == 1 for line in orders)
    # sorting by length pads less (the logits themselves are checked equal inside the benchmark)
    assert orders[1]["padded_over_real_tokens"] < orders[0]["padded_over_real_tokens"]
    assert summary["speedup"] == pytest.approx(orders[0]["mean_s"] / orders[1]["mean_s"])


def test_bench_tokenize_small_prints_each_mode_and_the_cached_ratio(tmp_path):
    cmd = [sys.executable, os.path.join(REPO, "benchmarks", "bench_tokenize.py"), "--rows", "300", "--modes",
           "reference,tsv-first,tsv-cached", "--work_dir", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    wrote, records, summary = lines[0], lines[1:-1], lines[-1]["summary"]
    assert wrote["rows"] == 300 and [r["mode"] for r in records] == ["reference", "tsv-first", "tsv-cached"]
    assert len({(r["examples"], r["tokens"]) for r in records}) == 1 and records[0]["examples"] == 300
    assert all(r["seconds"] > 0 and r["peak_rss_mb"] >= r["rss_before_mb"] > 0 for r in records)
    assert {"tsv_cached_over_first", "tsv_first_over_reference", "load_avg"} <= set(summary)
    cached = list((tmp_path / "hf_datasets_cache" / "mate_kd_tokenized").glob("tokenized-*.arrow"))
    assert len(cached) == 1, "the cached run must have reused the first run's file"
