"""--push_to_hub is refused before training when an upload cannot work (offline, no token, no network).

What these tests cannot run offline: a successful whoami, create_repo and upload_folder (they need the Hub).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants

from mate_kd.config import RunArgs, parse_args
from mate_kd.errors import ConfigError
from mate_kd.hub import check_can_push

ROOT = Path(__file__).parent.parent
SST2 = ROOT / "tests" / "fixtures" / "glue" / "SST-2"


def train_argv(paths: dict, out: Path) -> list[str]:
    return ["train", "--method", "finetune", "--model_name_or_path", paths["student"], "--task_name", "sst-2",
            "--data_dir", str(SST2), "--output_dir", str(out), "--max_steps", "1", "--push_to_hub"]


def test_offline_push_is_refused_before_training(tmp_path, tiny_bert):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mate_kd", *train_argv(tiny_bert, out)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "mate-kd train: error: --push_to_hub needs the Hugging Face Hub, but HF_HUB_OFFLINE is set")
    assert not out.exists(), "nothing may start before the refusal"


@pytest.fixture
def online(monkeypatch, tmp_path):
    """The Hub settings of a machine with network: not offline, no stored token."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no_stored_tokens"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    return RunArgs(output_dir=str(tmp_path / "run"), push_to_hub=True)


def test_push_without_a_token_is_refused(online):
    with pytest.raises(ConfigError, match="needs a Hugging Face token with write access: run `hf auth login`"):
        check_can_push(online)


def test_push_to_an_unreachable_hub_is_refused(online, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(ConfigError, match=r"cannot reach the Hugging Face Hub at http://127.0.0.1:9 \("):
        check_can_push(online)


@pytest.mark.parametrize("flags, message", [
    (["--hub_model_id", "me/model"], "--hub_model_id only applies to an upload: add --push_to_hub"),
    (["--hub_private_repo"], "--hub_private_repo only applies to an upload"),
])
def test_hub_flags_without_push_are_refused(flags, message, tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match=message):
        parse_args(train_argv(tiny_bert, tmp_path)[1:-1] + flags)


def test_push_from_evaluate_is_refused(tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="uploads the best student of a training run"):
        parse_args(train_argv(tiny_bert, tmp_path)[1:], training=False)
