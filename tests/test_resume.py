"""Checkpoints, exact resume after SIGTERM and kill -9, atomic saves, NaN/inf guards."""

from __future__ import annotations

import errno
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mate_kd import checkpoint as checkpoint_mod
from mate_kd.checkpoint import list_checkpoints
from mate_kd.config import parse_args
from mate_kd.errors import ConfigError, MateKDError
from mate_kd.lock import LOCK_FILE
from mate_kd.loop import NonFiniteLoss, train
from mate_kd.objectives import MateKD

SST2 = str(Path(__file__).parents[1] / "mate_kd" / "assets" / "sst2_sample")
FIXTURE_SST2 = Path(__file__).parent / "fixtures" / "glue" / "SST-2"


def flags(models: dict[str, str], out: Path, *extra: str) -> list[str]:
    return ["--method", "mate-kd", "--model_name_or_path", models["student"], "--teacher_path", models["teacher"],
            "--generator_path", models["generator"], "--task_name", "sst-2", "--data_dir", SST2,
            "--output_dir", str(out), "--num_train_epochs", "2", "--max_train_samples", "96",
            "--max_eval_samples", "32", "--per_device_train_batch_size", "8", "--n_generator_steps", "2",
            "--n_student_steps", "3", "--logging_steps", "4", "--evaluate_during_training", "--save_steps", "3",
            "--learning_rate", "1e-3", "--generator_learning_rate", "1e-3", *extra]


def weights(out: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(out / name / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    for name in ("final", "generator", "best"):
        wa, wb = weights(a, name), weights(b, name)
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.equal(wa[key], wb[key]), f"{name}/{key} differs"


@pytest.fixture(scope="module")
def reference(tiny_bert, tmp_path_factory) -> Path:
    """One uninterrupted run, the yardstick for every interrupted one."""
    out = tmp_path_factory.mktemp("reference")
    train(parse_args(flags(tiny_bert, out)))
    return out


def test_same_seed_gives_identical_runs(tiny_bert, reference, tmp_path):
    train(parse_args(flags(tiny_bert, tmp_path)))
    assert json.loads((tmp_path / "eval_results.json").read_text()) == \
        json.loads((reference / "eval_results.json").read_text())
    assert_same_weights(reference, tmp_path)


def test_keeps_only_the_last_checkpoints(reference):
    kept = [os.path.basename(p) for p in list_checkpoints(str(reference))]
    results = json.loads((reference / "eval_results.json").read_text())
    last = results["progress"]["student_updates"] // 3 * 3
    assert kept == [f"step-{last - 3:08d}", f"step-{last:08d}"]
    assert not [p for p in os.listdir(reference / "checkpoints") if not p.startswith("step-")]


def _run_cli(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}  # same threads as this process (conftest)
    return subprocess.Popen([sys.executable, "-m", "mate_kd", "train", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(out: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not list_checkpoints(str(out)):
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def test_sigterm_saves_and_resume_is_exact(tiny_bert, reference, tmp_path):
    proc = _run_cli(flags(tiny_bert, tmp_path))
    _wait_for_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert events[-1]["stopped_by_signal"] == signal.SIGTERM
    assert not (tmp_path / LOCK_FILE).exists(), "the output-dir lock is released on a signal too"
    train(parse_args(flags(tiny_bert, tmp_path, "--resume_from_checkpoint", "latest")))
    assert json.loads((tmp_path / "eval_results.json").read_text())["final"] == \
        json.loads((reference / "eval_results.json").read_text())["final"]
    assert_same_weights(reference, tmp_path)


@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_anywhere_then_resume_is_exact(tiny_bert, reference, tmp_path, seed):
    """SIGKILL at a random moment (saves every step, so often mid-save), then resume from latest."""
    argv = flags(tiny_bert, tmp_path, "--save_steps", "1")
    proc = _run_cli(argv)
    _wait_for_checkpoint(tmp_path, proc)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))
    proc.kill()
    proc.wait()
    for path in list_checkpoints(str(tmp_path)):
        assert (Path(path) / "trainer_state.pt").is_file() and (Path(path) / "student.safetensors").is_file()
    train(parse_args(argv + ["--resume_from_checkpoint", "latest"]))
    assert_same_weights(reference, tmp_path)


def test_resume_from_a_checkpoint_at_an_epoch_boundary_is_exact(tiny_bert, tmp_path):
    """kd, 12 batches per epoch, a checkpoint every 12 updates: each one lands where the next epoch's loader
    starts (and draws its seed from the global RNG), which the restore must come before."""
    argv = flags(tiny_bert, tmp_path / "a", "--method", "kd", "--save_steps", "12", "--max_steps", "20")
    train(parse_args(argv))
    resumed = tmp_path / "b"
    shutil.copytree(tmp_path / "a", resumed)
    for name in ("final", "best", "generator", "eval_results.json", os.path.join("checkpoints", "step-00000020")):
        path = resumed / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    assert [os.path.basename(p) for p in list_checkpoints(str(resumed))] == ["step-00000012"]
    train(parse_args([a if a != str(tmp_path / "a") else str(resumed) for a in argv]
                     + ["--resume_from_checkpoint", "latest"]))
    a, b = weights(tmp_path / "a", "final"), weights(resumed, "final")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_configuration(tiny_bert, reference, tmp_path):
    checkpoint = list_checkpoints(str(reference))[-1]
    with pytest.raises(ConfigError, match="learning_rate"):
        train(parse_args(flags(tiny_bert, tmp_path, "--learning_rate", "5e-4",
                               "--resume_from_checkpoint", checkpoint)))


def test_resume_with_another_configuration_is_refused_before_any_model_loads(tiny_bert, reference, tmp_path,
                                                                           monkeypatch):
    """The check must not wait for build_run: with a real teacher its cache pass alone can take many minutes."""
    import mate_kd.loop as loop_mod

    def no_build(args):
        raise AssertionError("build_run ran before the settings were checked")

    monkeypatch.setattr(loop_mod, "build_run", no_build)
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="other settings.*kd_temperature: 1.0 -> 2.0"):
        train(parse_args(flags(tiny_bert, out, "--kd_temperature", "2", "--resume_from_checkpoint", "latest")))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_resume_from_missing_checkpoint_is_refused(tiny_bert, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match="not a complete checkpoint"):
        train(parse_args(flags(tiny_bert, tmp_path / "out", "--resume_from_checkpoint", str(tmp_path / "nope"))))


def test_disk_full_during_save_keeps_previous_checkpoint(tiny_bert, tmp_path, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj, path, *a, **k):
        if str(path).endswith("trainer_state.pt"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(checkpoint_mod.torch, "save", failing_save)
    with pytest.raises(MateKDError, match="No space left on device") as err:
        train(parse_args(flags(tiny_bert, tmp_path)))
    assert "step-00000003" in str(err.value)
    assert [os.path.basename(p) for p in list_checkpoints(str(tmp_path))] == ["step-00000003"]
    assert not [p for p in os.listdir(tmp_path / "checkpoints") if p.endswith(".tmp")]
    assert (tmp_path / "log.jsonl").is_file()


def _nan_at(monkeypatch, term: str, calls: set[int]):
    real = MateKD.student_loss
    seen = {"n": 0}

    def poisoned(self, batch, stats=None):
        loss, terms = real(self, batch, stats)
        seen["n"] += 1
        if seen["n"] in calls:
            terms = {**terms, term: terms[term] * float("nan")}
            loss = loss + terms[term]
        return loss, terms

    monkeypatch.setattr(MateKD, "student_loss", poisoned)


def test_nan_loss_stops_naming_step_and_term(tiny_bert, tmp_path, monkeypatch):
    _nan_at(monkeypatch, "adv", {5})
    with pytest.raises(NonFiniteLoss, match=r"^The adv loss became NaN/inf at step 5 .*Last good checkpoint: .*step-00000003"):
        train(parse_args(flags(tiny_bert, tmp_path)))
    assert [os.path.basename(p) for p in list_checkpoints(str(tmp_path))] == ["step-00000003"]


def test_nan_loss_can_be_skipped_a_bounded_number_of_times(tiny_bert, tmp_path, monkeypatch):
    _nan_at(monkeypatch, "kd", {2, 6})
    results = train(parse_args(flags(tiny_bert, tmp_path / "ok", "--skip_nonfinite_steps", "2")))
    assert results["progress"]["skipped_updates"] == 2
    for value in weights(tmp_path / "ok", "final").values():
        assert torch.isfinite(value).all()
    monkeypatch.undo()
    _nan_at(monkeypatch, "kd", {2, 3, 4})
    with pytest.raises(NonFiniteLoss, match="More than 2 updates"):
        train(parse_args(flags(tiny_bert, tmp_path / "stop", "--skip_nonfinite_steps", "2")))


# ---- a signal before the first batch: loading, and the teacher-logits pass (no checkpoint exists to save)

@pytest.fixture(scope="module")
def long_sst2(tmp_path_factory) -> Path:
    """SST-2 with 20,000 training rows: at batch size 1 the teacher-logits pass takes many seconds."""
    data = tmp_path_factory.mktemp("long") / "SST-2"
    data.mkdir()
    header, *rows = (FIXTURE_SST2 / "train.tsv").read_text(encoding="utf-8").splitlines()
    (data / "train.tsv").write_text("\n".join([header] + [rows[i % len(rows)] for i in range(20000)]) + "\n")
    shutil.copy(FIXTURE_SST2 / "dev.tsv", data / "dev.tsv")
    return data


def _kd_flags(models: dict[str, str], data: Path, out: Path, *extra: str) -> list[str]:
    return ["--method", "kd", "--model_name_or_path", models["student"], "--teacher_path", models["teacher"],
            "--task_name", "sst-2", "--data_dir", str(data), "--output_dir", str(out), "--max_steps", "2",
            "--per_device_train_batch_size", "8", "--save_steps", "1", *extra]


def _signal_during_cache_pass(argv: list[str], signum: int) -> tuple[int, str]:
    """Start `mate-kd train`, send `signum` once its teacher-logits bar shows, return (exit code, stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mate_kd", "train", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    seen, deadline = b"", time.time() + 180
    while b"teacher logits" not in seen:
        assert proc.poll() is None and time.time() < deadline, seen.decode(errors="replace")
        if select.select([proc.stderr], [], [], 0.1)[0]:
            seen += os.read(proc.stderr.fileno(), 65536)
    proc.send_signal(signum)
    _, rest = proc.communicate(timeout=120)
    return proc.returncode, (seen + rest).decode(errors="replace")


def test_sigterm_during_the_teacher_cache_pass_says_nothing_was_saved(tiny_bert, long_sst2, tmp_path):
    out = tmp_path / "out"
    code, err = _signal_during_cache_pass(_kd_flags(tiny_bert, long_sst2, out, "--per_device_eval_batch_size", "1"),
                                          signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    assert ("mate-kd train: stopped by signal 15 before the first training step (while loading the data and models "
            "or computing the teacher's logits); nothing was saved yet (no checkpoint exists). Start it again with "
            "the same command (with --overwrite_output_dir if --output_dir is no longer empty).") in err
    assert "Traceback" not in err
    assert os.listdir(out) == [], "no log, no checkpoint, and the lock released"


def _all_but_the_log(out: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.rglob("*")) if p.name != "log.jsonl"
            and p.is_file()}


def test_sigint_while_resuming_keeps_the_checkpoints_and_logs_the_stop(tiny_bert, long_sst2, tmp_path):
    out = tmp_path / "out"
    train(parse_args(_kd_flags(tiny_bert, long_sst2, out, "--per_device_eval_batch_size", "512")))
    log_before = (out / "log.jsonl").read_text()
    files = _all_but_the_log(out)
    # The eval batch size may change on resume; at 1 the cache pass is slow enough to be interrupted.
    code, err = _signal_during_cache_pass(_kd_flags(tiny_bert, long_sst2, out, "--per_device_eval_batch_size", "1",
                                                    "--resume_from_checkpoint", "latest"), signal.SIGINT)
    assert code == 128 + signal.SIGINT, err
    newest = out / "checkpoints" / "step-00000002"
    assert (f"mate-kd train: stopped by signal 2 before the first training step (while loading the data and models or "
            f"computing the teacher's logits); nothing new was saved: its checkpoints are as they were, the newest "
            f"{newest}. Continue with --resume_from_checkpoint latest.") in err
    assert "Traceback" not in err
    assert _all_but_the_log(out) == files
    log = (out / "log.jsonl").read_text()
    assert log.startswith(log_before)
    assert json.loads(log[len(log_before):]) == {"step": 2, "stopped_by_signal": 2, "before_training": True,
                                                "checkpoint": str(newest)}


def test_a_kill_while_pruning_old_checkpoints_leaves_only_complete_ones(tiny_bert, tmp_path, monkeypatch):
    """Pruning is interrupted half-way through deleting a checkpoint (as kill -9 would): what is listed is whole."""
    def interrupted(path, ignore_errors=False):
        os.remove(os.path.join(path, "trainer_state.pt"))
        raise SystemExit(137)

    real = checkpoint_mod.shutil.rmtree
    with pytest.raises(SystemExit):
        monkeypatch.setattr(checkpoint_mod.shutil, "rmtree",
                            lambda path, ignore_errors=False: interrupted(path) if ".deleting" in path or
                            path.endswith(("step-00000003", "step-00000006")) else real(path, ignore_errors))
        train(parse_args(flags(tiny_bert, tmp_path, "--save_total_limit", "1")))
    monkeypatch.undo()
    listed = list_checkpoints(str(tmp_path))
    assert listed and all((Path(p) / "trainer_state.pt").is_file() for p in listed)
