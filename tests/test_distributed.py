"""Two CPU processes (gloo, torchrun) against one.

finetune and kd without dropout use no random numbers, so two processes with the same total batch give the
student of one process (to float rounding). MATE-KD draws masks and Gumbel noise, and each process draws its own
(seed + process index), so two processes follow another trajectory than one: for it the tests check that the
processes stay in sync, draw different numbers, resume exactly, and land near the one-process result."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mate_kd.config import parse_args
from mate_kd.lock import LOCK_FILE, OutputDirLock
from mate_kd.loop import train

ROOT = Path(__file__).parents[1]
SST2 = str(ROOT / "mate_kd" / "assets" / "sst2_sample")
WORKER = str(ROOT / "tests" / "workers" / "ddp_train.py")
CLI_WORKER = str(ROOT / "tests" / "workers" / "cli_shutdown.py")

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")


def flags(models: dict[str, str], out: Path, method: str, batch: int) -> list[str]:
    return ["--method", method, "--model_name_or_path", models["student"], "--teacher_path", models["teacher"],
            "--generator_path", models["generator"], "--task_name", "sst-2", "--data_dir", SST2,
            "--output_dir", str(out), "--max_steps", "12", "--max_train_samples", "256", "--max_eval_samples", "64",
            "--per_device_train_batch_size", str(batch), "--n_generator_steps", "2", "--n_student_steps", "3",
            "--logging_steps", "6", "--evaluate_during_training", "--save_steps", "0",
            "--learning_rate", "1e-3", "--generator_learning_rate", "1e-3"]


def torchrun(argv: list[str], report: Path) -> dict:
    proc = launch(argv, report)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(report.read_text())


def launch(argv: list[str], report: Path, program: tuple[str, ...] = (WORKER,)) -> subprocess.CompletedProcess:
    env = {**os.environ, "DDP_REPORT": str(report), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", *program, *argv], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("method", ["kd", "finetune"])
def test_two_processes_match_one(no_dropout, tmp_path, method):
    """Batch 2 x 8 on two processes equals batch 16 on one: same weights (to float rounding) and metrics."""
    single = train(parse_args(flags(no_dropout, tmp_path / "one", method, 16)))
    report = torchrun(flags(no_dropout, tmp_path / "two", method, 8), tmp_path / "report.json")
    assert report["world_size"] == 2
    assert report["student"][0] == report["student"][1]
    one, two = (load_file(str(tmp_path / d / "final" / "model.safetensors")) for d in ("one", "two"))
    # Adam turns float-rounding differences of near-zero gradients into up to ~1e-4 of movement over 12
    # steps at lr 1e-3; a process training on its own half batch would be off by ~lr per step (>= 1e-3).
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=5e-4)
    assert report["results"]["final"]["metrics"] == single["final"]["metrics"]
    assert report["results"]["progress"]["student_updates"] == single["progress"]["student_updates"] == 12


@pytest.fixture(scope="module")
def mate_kd_two(no_dropout, tmp_path_factory) -> tuple[dict, Path]:
    """One MATE-KD run on two processes, with checkpoints at steps 6 and 12: (its report, its output dir)."""
    root = tmp_path_factory.mktemp("mate_two")
    report = torchrun(flags(no_dropout, root / "out", "mate-kd", 8) + ["--save_steps", "6"], root / "report.json")
    return report, root / "out"


def test_mate_kd_two_processes_stay_in_sync(no_dropout, mate_kd_two):
    """Generator and student gradients are synchronised: every process ends with the same weights."""
    report, out = mate_kd_two
    assert report["student"][0] == report["student"][1]
    assert report["generator"][0] == report["generator"][1]
    progress = report["results"]["progress"]
    assert (progress["student_updates"], progress["generator_updates"]) == (12, 8)
    start = load_file(str(Path(no_dropout["generator"]) / "model.safetensors"))
    end = load_file(str(out / "generator" / "model.safetensors"))
    assert any(not torch.equal(start[k], end[k]) for k in start if k in end)


def test_each_process_draws_its_own_masks_and_noise(mate_kd_two):
    """With one seed on every process, each would mask the same positions of its own shard and draw the same
    Gumbel noise: the adversary would see a half-size variety of perturbations."""
    ranks = mate_kd_two[0]["draws"]
    assert len(ranks) == 2
    assert ranks[0]["mask"] != ranks[1]["mask"]
    assert ranks[0]["gumbel"] != ranks[1]["gumbel"]
    assert 0 < sum(map(sum, ranks[0]["mask"])) < 4 * 32


def test_mate_kd_two_processes_land_near_one(no_dropout, mate_kd_two, tmp_path):
    """Other random draws than one process (by design): the dev accuracy after 12 updates is within 0.1 (of 64)."""
    single = train(parse_args(flags(no_dropout, tmp_path / "one", "mate-kd", 16)))
    a, b = single["final"]["metrics"]["dev"]["acc"], mate_kd_two[0]["results"]["final"]["metrics"]["dev"]["acc"]
    assert abs(a - b) <= 0.1, (a, b)


def test_mate_kd_two_processes_resume_exactly(no_dropout, mate_kd_two, tmp_path):
    """Resumed from step 6, each process restores its own RNG state: the final weights equal the uninterrupted run's."""
    report, out = mate_kd_two
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    for name in ("final", "best", "generator", "eval_results.json", "checkpoints/step-00000012"):
        path = resumed / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    again = torchrun(flags(no_dropout, resumed, "mate-kd", 8) + ["--save_steps", "6", "--resume_from_checkpoint",
                                                                  "latest"], tmp_path / "report.json")
    assert again["results"]["final"] == report["results"]["final"]
    for name in ("final", "generator"):
        a, b = (load_file(str(d / name / "model.safetensors")) for d in (out, resumed))
        assert all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads thread names from /proc (Linux)")
def test_the_cli_joins_gloo_threads_before_the_interpreter_exits(no_dropout, tmp_path):
    """A finished distributed run ends its process group for real: gloo threads left running into interpreter
    shutdown abort the process now and then (SIGABRT after a successful run)."""
    proc = launch(flags(no_dropout, tmp_path / "out", "mate-kd", 8), tmp_path / "report.json", (CLI_WORKER, "train"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "out" / "final" / "model.safetensors").is_file()


def test_a_held_output_dir_refuses_every_process(no_dropout, tmp_path):
    """Only the main process takes the lock; when it is refused, every process ends (none waits for it)."""
    out = tmp_path / "out"
    with OutputDirLock(str(out)):
        proc = launch(flags(no_dropout, out, "kd", 8), tmp_path / "report.json", ("-m", "mate_kd", "train"))
        assert os.listdir(out) == [LOCK_FILE]
    assert proc.returncode != 0
    message = f"mate-kd train: error: --output_dir {out} is in use by another mate-kd run: pid {os.getpid()} on host"
    assert proc.stderr.count(message) == 1, proc.stderr[-4000:]
    # torchrun prints a traceback of its own when a process fails; none may come from mate_kd.
    assert not re.search(r'File ".*mate_kd', proc.stderr), proc.stderr[-4000:]


def test_pretrain_generator_runs_on_two_processes(tmp_path):
    """The MLM head hook goes on the bare model under DDP, and only the main process writes the generator."""
    from mate_kd.generator_prep import LOG_FILE, RESULTS_FILE
    from mate_kd.models import load_generator
    from mate_kd.tiny import build_single

    source = build_single("generator", "bert", str(tmp_path / "mlm"), seed=5)
    out = tmp_path / "gen"
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                           "-m", "mate_kd", "pretrain-generator", "--from", source,
                           "--output_dir", str(out), "--task_name", "sst-2", "--data_dir", SST2, "--max_steps", "4",
                           "--eval_steps", "2", "--batch_size", "4", "--max_seq_length", "64", "--no_cuda"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / RESULTS_FILE).read_text())
    assert results["steps"] == 4 and [p["step"] for p in results["curve"]] == [0, 2, 4]
    assert len((out / LOG_FILE).read_text().splitlines()) == 3
    load_generator(str(out))
