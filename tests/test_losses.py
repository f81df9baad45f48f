"""Each loss term against a hand computation (math / numpy, not torch's own loss functions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mate_kd.losses import divergence, task_loss

STUDENT = [[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]]
TEACHER = [[0.0, 1.0, 2.0], [2.0, -2.0, 0.0]]


def _softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _soft_ce_by_hand(student, teacher, tau=1.0):
    total = 0.0
    for s_row, t_row in zip(student, teacher):
        p = _softmax([v / tau for v in t_row])
        q = _softmax([v / tau for v in s_row])
        total += -sum(pc * math.log(qc) for pc, qc in zip(p, q))
    return total / len(student)


def _kl_by_hand(student, teacher, tau=1.0):
    total = 0.0
    for s_row, t_row in zip(student, teacher):
        p = _softmax([v / tau for v in t_row])
        q = _softmax([v / tau for v in s_row])
        total += sum(pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q))
    return total / len(student)


def test_soft_cross_entropy_2x3_by_hand():
    # row 1: p = softmax(0,1,2) = (0.0900, 0.2447, 0.6652), log q = log softmax(1,2,0.5)
    p1 = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    logq1 = np.array([1.0, 2.0, 0.5]) - np.log(np.exp([1.0, 2.0, 0.5]).sum())
    p2 = np.exp([2.0, -2.0, 0.0]) / np.exp([2.0, -2.0, 0.0]).sum()
    logq2 = np.array([-1.0, 0.0, 3.0]) - np.log(np.exp([-1.0, 0.0, 3.0]).sum())
    expected = (-(p1 * logq1).sum() - (p2 * logq2).sum()) / 2
    assert expected == pytest.approx(_soft_ce_by_hand(STUDENT, TEACHER), rel=1e-12)
    got = divergence(torch.tensor(STUDENT), torch.tensor(TEACHER))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert divergence(torch.tensor(STUDENT), torch.tensor(TEACHER), "soft_ce").item() == pytest.approx(expected,
                                                                                                        rel=1e-6)


def test_soft_ce_is_kl_plus_teacher_entropy():
    entropy = sum(-sum(p * math.log(p) for p in _softmax(t)) for t in TEACHER) / 2
    assert _soft_ce_by_hand(STUDENT, TEACHER) == pytest.approx(_kl_by_hand(STUDENT, TEACHER) + entropy, rel=1e-12)
    soft_ce = divergence(torch.tensor(STUDENT), torch.tensor(TEACHER), "soft_ce").item()
    kl = divergence(torch.tensor(STUDENT), torch.tensor(TEACHER), "kl").item()
    assert soft_ce - kl == pytest.approx(entropy, rel=1e-5)


def test_kl_by_hand_and_zero_for_equal_logits():
    got = divergence(torch.tensor(STUDENT), torch.tensor(TEACHER), "kl")
    assert got.item() == pytest.approx(_kl_by_hand(STUDENT, TEACHER), rel=1e-6)
    assert divergence(torch.tensor(TEACHER), torch.tensor(TEACHER), "kl").item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("tau", [2.0, 0.5])
@pytest.mark.parametrize("kind", ["soft_ce", "kl"])
def test_temperature_scales_both_distributions(kind, tau):
    by_hand = {"soft_ce": _soft_ce_by_hand, "kl": _kl_by_hand}[kind]
    got = divergence(torch.tensor(STUDENT), torch.tensor(TEACHER), kind, temperature=tau)
    assert got.item() == pytest.approx(by_hand(STUDENT, TEACHER, tau), rel=1e-6)
    assert got.item() != pytest.approx(by_hand(STUDENT, TEACHER, 1.0), rel=1e-3)


def test_mse_between_logits_by_hand():
    expected = np.mean((np.array(STUDENT) - np.array(TEACHER)) ** 2)
    got = divergence(torch.tensor(STUDENT), torch.tensor(TEACHER), "mse")
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_one_output_divergence_is_mse_whatever_the_kind():
    s, t = [[0.5], [2.0], [-1.0]], [[1.5], [2.5], [0.0]]
    expected = ((0.5 - 1.5) ** 2 + (2.0 - 2.5) ** 2 + (-1.0 - 0.0) ** 2) / 3
    for kind in ("soft_ce", "kl", "mse"):
        assert divergence(torch.tensor(s), torch.tensor(t), kind).item() == pytest.approx(expected, rel=1e-6)


def test_unknown_divergence_refused():
    with pytest.raises(ValueError, match="unknown divergence"):
        divergence(torch.tensor(STUDENT), torch.tensor(TEACHER), "js")


def test_task_loss_cross_entropy_by_hand():
    labels = [2, 0]
    expected = -sum(math.log(_softmax(row)[y]) for row, y in zip(STUDENT, labels)) / 2
    got = task_loss(torch.tensor(STUDENT), torch.tensor(labels))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_task_loss_regression_mse_by_hand():
    scores = [[3.1], [0.2], [4.4]]
    gold = [2.5, 1.0, 5.0]
    expected = ((3.1 - 2.5) ** 2 + (0.2 - 1.0) ** 2 + (4.4 - 5.0) ** 2) / 3
    got = task_loss(torch.tensor(scores), torch.tensor(gold, dtype=torch.float64))
    assert got.shape == () and got.item() == pytest.approx(expected, rel=1e-6)


def test_losses_give_student_gradients_only_through_student():
    s = torch.tensor(STUDENT, requires_grad=True)
    t = torch.tensor(TEACHER, requires_grad=True)
    divergence(s, t).backward()
    # d soft_ce / d s = (softmax(s) - softmax(t)) / batch
    expected = (torch.softmax(s.detach(), -1) - torch.softmax(t.detach(), -1)) / 2
    torch.testing.assert_close(s.grad, expected)


def test_half_precision_inputs_computed_in_float32():
    got = divergence(torch.tensor(STUDENT, dtype=torch.bfloat16), torch.tensor(TEACHER, dtype=torch.bfloat16))
    assert got.dtype == torch.float32
    ce = task_loss(torch.tensor(STUDENT, dtype=torch.bfloat16), torch.tensor([2, 0]))
    assert ce.dtype == torch.float32
