"""Progress bars follow the user's TQDM_* settings, and only the local main process shows one."""

import os
import subprocess
import sys

import pytest

PROBE = "from mate_kd.progress import bar; print(bar(range(2), show={show}).disable)"


@pytest.mark.parametrize("env, show, disabled", [("", True, False), ("1", True, True), ("", False, True)])
def test_bar_respects_tqdm_disable(env, show, disabled):
    # tqdm reads TQDM_* when it is imported, so each case needs its own interpreter.
    environ = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    if env:
        environ["TQDM_DISABLE"] = env
    out = subprocess.run([sys.executable, "-c", PROBE.format(show=show)], env=environ, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == str(disabled)


def test_train_shows_no_bar_under_tqdm_disable(tmp_path):
    """The whole command: the quickstart's tiny run prints no progress bar when the user asked for none."""
    environ = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "mate_kd", "quickstart", "--output_dir", str(tmp_path / "q"),
                           "--fast"], env=environ, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "it/s]" not in done.stderr and "s/it]" not in done.stderr
