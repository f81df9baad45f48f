"""fp16: a step the grad scaler skips (its gradients overflowed) must not advance the student's LR schedule.

accelerate uses a GradScaler only for fp16 on an accelerator; here a real CPU GradScaler is given to the run's
Accelerator before `prepare`, so the optimizers step through it exactly as on CUDA (scaled backward,
`scaler.step`, `scaler.update`, `step_was_skipped`). Its gradients are made to overflow at chosen updates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mate_kd import loop
from mate_kd.config import parse_args
from mate_kd.optim import make_accelerator

SST2 = Path(__file__).parent / "fixtures" / "glue" / "SST-2"


class OverflowingScaler(torch.amp.GradScaler):
    """A CPU GradScaler whose n-th scaled loss (counting every update, generator ones included) is inf for n in
    `overflow_at`: the gradients overflow as fp16 ones can, and the scaler skips that step and halves its scale."""

    def __init__(self, overflow_at: set[int]) -> None:
        super().__init__("cpu", init_scale=1.0)
        self.overflow_at, self.updates = overflow_at, 0

    def scale(self, outputs: torch.Tensor) -> torch.Tensor:
        self.updates += 1
        scaled = super().scale(outputs)
        return scaled * float("inf") if self.updates in self.overflow_at else scaled


@pytest.mark.parametrize("optim", ["adamw_torch_fused", "adamw_torch"])
@pytest.mark.parametrize("method,n_generator,overflow_at,scheduler_steps", [
    # six student updates; the 2nd and 3rd overflow
    ("kd", 0, {2, 3}, [1, 1, 1, 2, 3, 4]),
    # G S S G S S: the first generator update and the second student update overflow. A generator skip leaves the
    # student's schedule alone (accelerate's `optimizer_step_was_skipped` would report it for every optimizer).
    ("mate-kd", 1, {1, 3}, [1, 1, 2, 3]),
], ids=["kd", "mate-kd"])
def test_a_skipped_step_does_not_advance_the_schedule(tiny_bert, tmp_path, monkeypatch, method, n_generator,
                                                      overflow_at, scheduler_steps, optim):
    """Fused AdamW (the default) runs its step() and skips in the kernel, so accelerate's `step_was_skipped` stays
    False there (accelerate issue 4242); unfused AdamW is not called at all."""
    scalers = []

    def with_scaler(args):
        accelerator = make_accelerator(args)
        accelerator.scaler = OverflowingScaler(overflow_at)
        scalers.append(accelerator.scaler)
        return accelerator

    monkeypatch.setattr(loop, "make_accelerator", with_scaler)
    steps = len(scheduler_steps)
    out = tmp_path / "out"
    lr = 1e-3
    results = loop.train(parse_args([
        "--method", method, "--model_name_or_path", tiny_bert["student"], "--teacher_path", tiny_bert["teacher"],
        "--generator_path", tiny_bert["generator"], "--task_name", "sst-2", "--data_dir", str(SST2),
        "--output_dir", str(out), "--max_steps", str(steps), "--per_device_train_batch_size", "2",
        "--n_generator_steps", str(n_generator), "--n_student_steps", "2", "--logging_steps", "1",
        "--save_steps", str(steps), "--learning_rate", str(lr), "--warmup_steps", "0", "--optim", optim]))
    assert scalers[-1].updates == steps + (steps // 2 if n_generator else 0), "every update went through the scaler"
    assert results["progress"]["student_updates"] == steps
    logged = [e["lr"] for e in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "lr" in e]
    assert logged == pytest.approx([lr * (1 - k / steps) for k in scheduler_steps])
    state = torch.load(out / "checkpoints" / f"step-{steps:08d}" / "trainer_state.pt", weights_only=True)
    assert state["scheduler"]["last_epoch"] == scheduler_steps[-1]
    assert state["scaler"]["scale"] == 0.5 ** len(overflow_at), "the scaler skipped once per overflow"
    assert all(torch.isfinite(v).all() for v in load_file(str(out / "final" / "model.safetensors")).values())
