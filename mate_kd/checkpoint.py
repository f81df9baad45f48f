"""Atomic saving and exact resume.

Everything is written into `NAME.tmp` and renamed into place only when complete, so a crash
(even kill -9 during a save) leaves either the previous checkpoint or the new one, never half.
Model weights go through safetensors; optimizer, scheduler and RNG state through torch.save,
read back with `weights_only=True` (no pickled code is ever executed on load).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
from typing import Any, Optional

import numpy as np
import safetensors.torch
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .errors import ConfigError, MateKDError

CHECKPOINTS = "checkpoints"
#: Settings that may change between a checkpoint and its resume without changing the trajectory.
RESUME_MAY_DIFFER = frozenset({
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "save_steps", "save_total_limit",
    "dataloader_num_workers", "do_predict", "do_eval", "per_device_eval_batch_size", "cache_dir", "local_rank",
    "skip_nonfinite_steps", "logging_steps", "eval_steps", "max_eval_samples", "trust_remote_code", "adversary_probe_samples",
    "overwrite_cache", "push_to_hub", "hub_model_id", "hub_private_repo", "report_to", "run_name",
})


def _replace_dir(tmp: str, path: str) -> None:
    old = path + ".old"
    if os.path.exists(path):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _remove(checkpoint: str) -> None:
    """Delete an old checkpoint: renamed first, so a kill during the delete never leaves a listed half."""
    doomed = checkpoint + ".deleting"
    os.replace(checkpoint, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: str) -> None:
    """save_pretrained (safetensors) plus tokenizer, replacing `path` only once complete."""
    path = path.rstrip("/")
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _replace_dir(tmp, path)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MateKDError(f"Could not save {path}: {err.strerror or err}. Nothing already saved was changed; "
                          "free disk space (or choose another --output_dir) and resume.") from None


def checkpoint_path(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, CHECKPOINTS, f"step-{step:08d}")


def list_checkpoints(output_dir: str) -> list[str]:
    """Complete checkpoints, oldest first."""
    root = os.path.join(output_dir, CHECKPOINTS)
    if not os.path.isdir(root):
        return []
    names = sorted(n for n in os.listdir(root) if re.fullmatch(r"step-\d{8}", n)
                   and os.path.isfile(os.path.join(root, n, "progress.json")))
    return [os.path.join(root, n) for n in names]


def resolve_resume(value: Optional[str], output_dir: str) -> Optional[str]:
    """`latest` -> newest complete checkpoint in output_dir (None if there is none yet); a path -> itself."""
    if not value:
        return None
    if value == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    if not os.path.isfile(os.path.join(value, "progress.json")):
        raise ConfigError(f"--resume_from_checkpoint {value} is not a complete checkpoint (no progress.json). "
                          f"Complete ones: {list_checkpoints(output_dir) or 'none'}; or pass `latest`.")
    return value


def rng_state() -> dict[str, Any]:
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [keys.tolist(), int(pos), int(has_gauss), float(gauss)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str, *, models: dict[str, torch.nn.Module], trainer_state: dict[str, Any],
                    progress: dict[str, Any], settings: dict[str, Any], rank: int, is_main: bool, barrier, keep: int,
                    rank_state: Optional[dict[str, Any]] = None) -> None:
    """All processes write their RNG state (and `rank_state`, what only that process knows), the main process the
    rest; then one atomic rename."""
    tmp = path + ".tmp"
    try:
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
        barrier()
        torch.save({**rng_state(), **(rank_state or {})}, os.path.join(tmp, f"rng-{rank}.pt"))
        if is_main:
            for name, model in models.items():
                safetensors.torch.save_model(model, os.path.join(tmp, f"{name}.safetensors"))
            torch.save(trainer_state, os.path.join(tmp, "trainer_state.pt"))
            with open(os.path.join(tmp, "settings.json"), "w", encoding="utf-8") as f:
                json.dump(settings, f, indent=1)
            with open(os.path.join(tmp, "progress.json"), "w", encoding="utf-8") as f:
                json.dump(progress, f, indent=1)
        barrier()
        if is_main:
            _replace_dir(tmp, path)
            for old in list_checkpoints(os.path.dirname(os.path.dirname(path)))[:-max(keep, 1)]:
                _remove(old)
    except OSError as err:
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        previous = list_checkpoints(os.path.dirname(os.path.dirname(path)))
        raise MateKDError(f"Could not write checkpoint {path}: {err.strerror or err}. The previous checkpoint "
                          f"({previous[-1] if previous else 'none'}) is intact; free disk space and resume with "
                          "--resume_from_checkpoint latest.") from None


def check_resumable(path: str, settings: dict[str, Any], rank: int,
                    may_differ: frozenset[str] = RESUME_MAY_DIFFER) -> None:
    """Refuse a checkpoint made with another configuration or fewer processes; cheap, so train() asks it before
    any model loads or the teacher-cache pass runs."""
    with open(os.path.join(path, "settings.json"), encoding="utf-8") as f:
        saved = json.load(f)
    differ = sorted(k for k in set(saved) | set(settings) if k not in may_differ
                    and saved.get(k) != settings.get(k))
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {settings.get(k)!r}" for k in differ[:8])
        raise ConfigError(f"Checkpoint {path} was made with other settings ({detail}). Resume with the "
                          "original settings, or start a new run in another --output_dir.")
    if not os.path.isfile(os.path.join(path, f"rng-{rank}.pt")):
        raise ConfigError(f"Checkpoint {path} has no RNG state for process {rank}: it was made with fewer "
                          "processes. Resume with the same number of processes.")


def load_checkpoint(path: str, settings: dict[str, Any], rank: int, models: dict[str, torch.nn.Module],
                    may_differ: frozenset[str] = RESUME_MAY_DIFFER) -> tuple[dict, dict]:
    """Load model weights; return trainer state (with this process's RNG and rank state under "rng") and
    progress. Refused if made with another configuration."""
    check_resumable(path, settings, rank, may_differ)
    rng_file = os.path.join(path, f"rng-{rank}.pt")
    for name, model in models.items():
        safetensors.torch.load_model(model, os.path.join(path, f"{name}.safetensors"), device=str(
            next(model.parameters()).device))
    try:
        state = torch.load(os.path.join(path, "trainer_state.pt"), map_location="cpu", weights_only=True)
        state["rng"] = torch.load(rng_file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(f"Checkpoint {path} holds objects other than tensors and plain values, so it was not "
                          "written by mate-kd (or was altered); it was not loaded. Resume from another "
                          "checkpoint.") from None
    with open(os.path.join(path, "progress.json"), encoding="utf-8") as f:
        progress = json.load(f)
    return state, progress
