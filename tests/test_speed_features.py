"""Speed features of the loop that must not change the mathematics: fused AdamW, the length-sorted
teacher-cache pass, and the warning for emulated mixed precision on CPU."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from mate_kd import loop, optim
from mate_kd.data import make_loader
from mate_kd.loop import build_run, teacher_logits
from mate_kd.optim import make_accelerator, make_optimizer, warn_if_emulated

from test_loop import run_args


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))


def _train(optim: str, steps: int = 5) -> list[torch.Tensor]:
    model = _model()
    opt = make_optimizer(model, 1e-2, 0.01, torch.device("cpu"), optim)
    data = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(4, 8, generator=data), torch.randint(0, 3, (4,), generator=data)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return [p.detach().clone() for p in model.parameters()]


def test_fused_adamw_is_the_default_on_cpu_and_can_be_turned_off(tiny_bert, tmp_path):
    fused = build_run(run_args(tiny_bert, tmp_path / "a", extra=["--max_steps", "1"]))
    plain = build_run(run_args(tiny_bert, tmp_path / "b", extra=["--max_steps", "1", "--optim", "adamw_torch"]))
    for run, expected in ((fused, True), (plain, None)):
        for opt in (run.optimizer, run.generator_optimizer):
            assert opt.param_groups[0]["fused"] is expected


def test_fused_adamw_computes_the_same_updates_as_the_for_loop_adamw():
    fused, plain = _train("adamw_torch_fused"), _train("adamw_torch")
    start = [p.detach() for p in _model().parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(plain, start)), "the model did not train"
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_no_fused_kernel_for_devices_without_one():
    opt = make_optimizer(_model(), 1e-3, 0.0, torch.device("mps"), "adamw_torch_fused")
    assert opt.param_groups[0]["fused"] is None


def test_unknown_optimizer_name_is_refused(tiny_bert, tmp_path):
    with pytest.raises(SystemExit):
        run_args(tiny_bert, tmp_path / "a", extra=["--optim", "sgd"])


def test_length_sorted_cache_pass_gives_each_example_its_own_logits(tiny_bert, tmp_path):
    """Rows land at their example's index although batches run longest first."""
    run = build_run(run_args(tiny_bert, tmp_path / "a", method="kd", extra=["--max_steps", "1"]))
    split = run.train_loader.dataset
    teacher = run.objective.teacher.eval()
    widths = []
    handle = teacher.register_forward_hook(lambda m, a, k, out: widths.append(k["input_ids"].shape[1]),
                                           with_kwargs=True)
    cached = teacher_logits(teacher, split, run.models.tokenizer, 3, run.accelerator)
    handle.remove()
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1], "batches not longest first"
    lengths = split.lengths()
    assert sum(widths) < 3 * max(lengths) * len(widths), "sorting should pad less than padding all to the max"
    one_by_one = torch.cat([teacher(**{k: v for k, v in b.items() if k in ("input_ids", "attention_mask",
                                                                            "token_type_ids")}).logits
                            for b in make_loader(split, run.models.tokenizer, 1, train=False)])
    torch.testing.assert_close(cached, one_by_one, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_emulated_mixed_precision_on_cpu_warns_with_the_fix(monkeypatch, precision):
    monkeypatch.setattr(optim, "cpu_has_native", lambda p: False)
    with pytest.warns(UserWarning, match=rf"--mixed_precision {precision} on a CPU without native.*"
                                         r"--mixed_precision no"):
        warn_if_emulated(precision, on_cpu=True)


@pytest.mark.parametrize("precision, on_cpu, native", [("bf16", True, True), ("bf16", False, False),
                                                        ("no", True, False)])
def test_no_warning_for_native_gpu_or_fp32(monkeypatch, precision, on_cpu, native):
    monkeypatch.setattr(optim, "cpu_has_native", lambda p: native)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_emulated(precision, on_cpu)


def test_accelerator_setup_checks_the_precision(tiny_bert, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(optim, "warn_if_emulated", lambda precision, on_cpu: seen.append((precision, on_cpu)))
    make_accelerator(run_args(tiny_bert, tmp_path, extra=["--no_cuda"]))
    assert seen == [("no", True)]


def test_cpu_probe_answers_for_both_precisions():
    assert {optim.cpu_has_native("bf16"), optim.cpu_has_native("fp16")} <= {True, False}
