"""GLUE metrics against values worked out by hand and against direct library calls."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from mate_kd.errors import DataError
from mate_kd.metrics import compute_metrics
from mate_kd.tasks import custom_task, get_task

# Binary case used below: TP = 2 (items 0, 3), TN = 1 (item 1), FP = 1 (item 2), FN = 0.
BIN_PREDS = np.array([1, 0, 1, 1])
BIN_LABELS = np.array([1, 0, 0, 1])
BIN_ACC = 3 / 4
BIN_MCC = (2 * 1 - 1 * 0) / math.sqrt((2 + 1) * (2 + 0) * (1 + 1) * (1 + 0))
BIN_F1 = 2 * (2 / 3) * 1 / ((2 / 3) + 1)


def test_keys_per_task():
    keys = {
        "cola": {"mcc"}, "sst-2": {"acc"}, "qnli": {"acc"}, "rte": {"acc"},
        "wnli": {"acc"}, "mnli": {"acc"}, "ax": {"acc"},
        "mrpc": {"acc", "f1", "acc_and_f1"}, "qqp": {"acc", "f1", "acc_and_f1"},
        "sts-b": {"pearson", "spearmanr", "corr"},
    }
    for name, expected in keys.items():
        task = get_task(name)
        if task.is_regression:
            out = compute_metrics(task, np.array([0.1, 0.5, 0.2]), np.array([0.0, 1.0, 0.5]))
        else:
            out = compute_metrics(task, np.array([0, 1, 1]), np.array([0, 1, 0]))
        assert set(out) == expected, name
        assert task.selection_metric in out
        assert all(type(v) is float for v in out.values())


@pytest.mark.parametrize("name", ["sst-2", "qnli", "rte", "wnli"])
def test_accuracy_by_hand(name):
    out = compute_metrics(get_task(name), BIN_PREDS, BIN_LABELS)
    assert out == {"acc": pytest.approx(BIN_ACC)}


def test_cola_mcc_by_hand_and_sklearn():
    out = compute_metrics(get_task("cola"), BIN_PREDS, BIN_LABELS)
    assert out["mcc"] == pytest.approx(BIN_MCC)
    assert out["mcc"] == pytest.approx(0.5773502691896258)
    assert out["mcc"] == pytest.approx(matthews_corrcoef(BIN_LABELS, BIN_PREDS))


def test_cola_perfect_worst_and_constant():
    task = get_task("cola")
    y = np.array([0, 1, 1, 0, 1])
    assert compute_metrics(task, y, y)["mcc"] == pytest.approx(1.0)
    assert compute_metrics(task, 1 - y, y)["mcc"] == pytest.approx(-1.0)
    assert compute_metrics(task, np.ones_like(y), y)["mcc"] == 0.0


@pytest.mark.parametrize("name", ["mrpc", "qqp"])
def test_acc_and_f1_by_hand_and_sklearn(name):
    out = compute_metrics(get_task(name), BIN_PREDS, BIN_LABELS)
    assert out["acc"] == pytest.approx(BIN_ACC)
    assert out["f1"] == pytest.approx(BIN_F1)
    assert out["f1"] == pytest.approx(0.8)
    assert out["f1"] == pytest.approx(f1_score(BIN_LABELS, BIN_PREDS))
    assert out["acc_and_f1"] == pytest.approx((0.75 + 0.8) / 2)


def test_f1_is_of_positive_class_one():
    # Positive class 1: TP = 0, FP = 1, FN = 1 -> F1 = 0, while the class-0 F1 would be 2/3.
    out = compute_metrics(get_task("mrpc"), np.array([0, 1, 0]), np.array([0, 0, 1]))
    assert out["f1"] == 0.0
    assert out["acc"] == pytest.approx(1 / 3)


def test_mrpc_perfect_and_worst():
    task = get_task("mrpc")
    y = np.array([1, 0, 1, 1, 0])
    assert compute_metrics(task, y, y) == {"acc": 1.0, "f1": 1.0, "acc_and_f1": 1.0}
    assert compute_metrics(task, 1 - y, y) == {"acc": 0.0, "f1": 0.0, "acc_and_f1": 0.0}


def test_mnli_three_class_accuracy():
    task = get_task("mnli")
    preds = np.array([0, 1, 2, 2, 1, 0])
    labels = np.array([0, 1, 2, 1, 1, 2])
    assert compute_metrics(task, preds, labels) == {"acc": pytest.approx(4 / 6)}
    assert compute_metrics(task, labels, labels) == {"acc": 1.0}
    assert compute_metrics(task, (labels + 1) % 3, labels) == {"acc": 0.0}


def test_stsb_by_hand():
    task = get_task("sts-b")
    # Deviations (-1, 0, 1) and (-1, 1, 0): covariance 1, variances 2 -> r = 0.5;
    # the ranks are the values themselves, so Spearman is also 0.5.
    out = compute_metrics(task, np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))
    assert out["pearson"] == pytest.approx(0.5)
    assert out["spearmanr"] == pytest.approx(0.5)
    assert out["corr"] == pytest.approx(0.5)


def test_stsb_against_scipy_and_numpy():
    task = get_task("sts-b")
    preds = np.array([1.0, 2.0, 3.0, 4.0, 4.5])
    labels = np.array([1.0, 4.0, 9.0, 16.0, 15.0])
    out = compute_metrics(task, preds, labels)
    assert out["pearson"] == pytest.approx(np.corrcoef(preds, labels)[0, 1])
    assert out["pearson"] == pytest.approx(pearsonr(preds, labels)[0])
    assert out["spearmanr"] == pytest.approx(spearmanr(preds, labels)[0])
    assert out["spearmanr"] == pytest.approx(0.9)
    assert out["corr"] == pytest.approx((out["pearson"] + out["spearmanr"]) / 2)


def test_stsb_perfect_worst_and_column_vector():
    task = get_task("sts-b")
    y = np.array([0.0, 1.5, 2.5, 4.0, 5.0])
    assert compute_metrics(task, 2 * y + 1, y)["corr"] == pytest.approx(1.0)
    assert compute_metrics(task, -y, y)["corr"] == pytest.approx(-1.0)
    col = compute_metrics(task, y.reshape(-1, 1).astype(np.float32), y)
    assert col["corr"] == pytest.approx(1.0)


def test_stsb_constant_prediction_is_nan():
    out = compute_metrics(get_task("sts-b"), np.full(4, 2.0), np.array([0.0, 1.0, 2.0, 3.0]))
    assert math.isnan(out["pearson"]) and math.isnan(out["corr"])


def test_custom_classification_and_regression():
    task = custom_task(["neg", "pos"])
    # class 0: P = 1/2, R = 1 -> F1 2/3; class 1: P = 1, R = 2/3 -> F1 0.8.
    preds, labels = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    out = compute_metrics(task, preds, labels)
    assert out["acc"] == pytest.approx(3 / 4)
    assert out["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert out["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    reg = custom_task(None, regression=True)
    assert compute_metrics(reg, np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == {
        "pearson": pytest.approx(0.5), "spearmanr": pytest.approx(0.5), "corr": pytest.approx(0.5)}


def test_bad_inputs():
    task = get_task("sst-2")
    with pytest.raises(DataError, match="argmax"):
        compute_metrics(task, np.zeros((4, 2)), BIN_LABELS)
    with pytest.raises(DataError, match="same examples"):
        compute_metrics(task, BIN_PREDS[:3], BIN_LABELS)
    with pytest.raises(DataError, match="empty"):
        compute_metrics(task, np.array([], dtype=int), np.array([], dtype=int))
    with pytest.raises(DataError, match="outside 0..1"):
        compute_metrics(task, np.array([0, 2, 1, 1]), BIN_LABELS)
    with pytest.raises(DataError, match="integers"):
        compute_metrics(task, np.array([0.2, 0.9, 0.1, 0.7]), BIN_LABELS)
    assert compute_metrics(task, BIN_PREDS.astype(float), BIN_LABELS)["acc"] == BIN_ACC
