"""One run per --output_dir: a second run (or evaluate/predict) into a directory a run holds is refused, with
the holder's pid, host and start time, before it writes or changes anything; a holder killed with -9 leaves a
stale lock that blocks nobody. Real processes throughout: the lock is the kernel's `flock`."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mate_kd import lock as lock_mod
from mate_kd.cli import main
from mate_kd.config import parse_args
from mate_kd.errors import ConfigError, MateKDError
from mate_kd.lock import LOCK_FILE, OutputDirLock
from mate_kd.loop import train

SST2 = Path(__file__).parent / "fixtures" / "glue" / "SST-2"


def train_flags(models: dict[str, str], out: Path, *extra: str) -> list[str]:
    return ["--method", "kd", "--model_name_or_path", models["student"], "--teacher_path", models["teacher"],
            "--task_name", "sst-2", "--data_dir", str(SST2), "--output_dir", str(out), "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--save_steps", "0", *extra]


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>", p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def start_cli(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "mate_kd", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def holding(out: Path, proc: subprocess.Popen, timeout: float = 120) -> dict:
    """Wait until `proc` holds the lock on `out` (its details are in the lock file); return them."""
    deadline = time.time() + timeout
    while True:
        try:
            holder = json.loads((out / LOCK_FILE).read_text())
            if holder.get("pid") == proc.pid:
                return holder
        except (OSError, ValueError):
            pass
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "the first run never took the lock"
        time.sleep(0.02)


def test_second_run_into_a_held_directory_is_refused_and_changes_nothing(tiny_bert, tmp_path, capsys):
    out = tmp_path / "out"
    first = start_cli(["train", *train_flags(tiny_bert, out)])
    try:
        holder = holding(out, first)
        first.send_signal(signal.SIGSTOP)  # frozen while it holds the lock: nothing changes but by the others
        before = tree(out)
        host = socket.gethostname()
        expected = (f"--output_dir {out} is in use by another mate-kd run: pid {first.pid} on host {host}, "
                    f"started {holder['started']}, running `python -m mate_kd train --method kd")
        # The same command, and a changed one forcing --overwrite_output_dir: both refused by the lock. This
        # process is the second one: flock refuses another open file of the same file, in any process.
        for extra in ([], ["--overwrite_output_dir", "--seed", "7"]):
            assert main(["train", *train_flags(tiny_bert, out, *extra)]) == 1
            err = capsys.readouterr().err
            assert f"mate-kd train: error: {expected}" in err and "Traceback" not in err
            assert "`mate-kd train` would mix its files with that run's. Wait for that run to finish (or stop " \
                   "it), or choose another --output_dir." in err
            assert tree(out) == before
        for command in ("evaluate", "predict"):
            assert main([command, "--model_name_or_path", tiny_bert["teacher"], "--task_name", "sst-2",
                         "--data_dir", str(SST2), "--output_dir", str(out)]) == 1
            err = capsys.readouterr().err
            assert f"mate-kd {command}: error: {expected}" in err and f"`mate-kd {command}` would mix" in err
            assert tree(out) == before
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert "seed: 42" in (out / "run_config.yaml").read_text()
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 2], "one run's log: the last training window and the final evaluation"
    assert not (out / LOCK_FILE).exists(), "released at the end of the run"


def test_a_holder_killed_with_9_leaves_a_stale_lock_that_blocks_nobody(tiny_bert, tmp_path):
    out = tmp_path / "out"
    first = start_cli(["train", *train_flags(tiny_bert, out)])
    holding(out, first)
    first.send_signal(signal.SIGSTOP)
    assert os.listdir(out) == [LOCK_FILE]
    first.kill()
    first.wait()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == first.pid, "the dead run's lock file is still there"
    # No --overwrite_output_dir: a stale lock file alone does not make the directory a previous run's.
    results = train(parse_args(train_flags(tiny_bert, out)))
    assert results["progress"]["student_updates"] == 2
    assert not (out / LOCK_FILE).exists()


def test_the_lock_is_released_however_the_run_ends(tiny_bert, tmp_path):
    out = tmp_path / "out"
    train(parse_args(train_flags(tiny_bert, out)))
    with OutputDirLock(str(out)):  # a normal end released it (flock is per open file, so this would fail)
        pass
    with pytest.raises(MateKDError, match="not a SST-2 label"):  # refused after taking the lock
        bad = tmp_path / "SST-2"
        bad.mkdir()
        (bad / "train.tsv").write_text("sentence\tlabel\na film .\tpositive\n")
        (bad / "dev.tsv").write_text((SST2 / "dev.tsv").read_text())
        argv = train_flags(tiny_bert, out, "--overwrite_output_dir")
        argv[argv.index("--data_dir") + 1] = str(bad)
        train(parse_args(argv))
    with OutputDirLock(str(out)):
        pass
    assert not (out / LOCK_FILE).exists()


def test_a_held_lock_refuses_in_this_process_too(tmp_path):
    with OutputDirLock(str(tmp_path / "out")):
        with pytest.raises(ConfigError, match=rf"pid {os.getpid()} on host "):
            OutputDirLock(str(tmp_path / "out")).acquire()
    with OutputDirLock(str(tmp_path / "out")):
        assert json.loads((tmp_path / "out" / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_file_system_without_locks_warns_and_runs(tiny_bert, tmp_path, monkeypatch):
    """Some NFS mounts (no lock daemon) and FUSE file systems refuse flock: the run goes on, saying so."""
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_mod.fcntl, "flock", no_locks)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=rf"The file system of --output_dir {out} does not support file locks "
                                         r"\(No locks available\), so a second run into it would not be refused"):
        results = train(parse_args(train_flags(tiny_bert, out)))
    assert results["progress"]["student_updates"] == 2
    assert not (out / LOCK_FILE).exists()
