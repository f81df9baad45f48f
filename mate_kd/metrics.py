"""GLUE metrics, computed with scikit-learn and SciPy so the numbers match the leaderboard's."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from mate_kd.errors import DataError
from mate_kd.tasks import TaskSpec

__all__ = ["compute_metrics"]


def _as_1d(values: np.ndarray, what: str, regression: bool) -> np.ndarray:
    arr = np.asarray(values)
    if regression and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        hint = ("pass one score per example" if regression
                else "pass predicted class indices (argmax of the logits), one per example")
        raise DataError(f"{what} must be a 1-D array, got shape {arr.shape}; {hint}")
    return arr


def _class_indices(values: np.ndarray, what: str, num_labels: int) -> np.ndarray:
    if values.size and not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.equal(np.mod(values, 1), 0)):
            raise DataError(f"{what} must be class indices (integers), got {values.dtype} "
                            "values with fractions; pass the argmax of the logits")
    indices = values.astype(np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= num_labels):
        raise DataError(f"{what} contains class index {int(indices.min())}..{int(indices.max())} "
                        f"outside 0..{num_labels - 1}; map labels with the task's label order")
    return indices


def compute_metrics(task: TaskSpec, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Metrics of ``task.metrics`` for predictions against gold labels.

    Classification: ``preds`` and ``labels`` are class indices in the task's label order.
    Regression: both are float scores. Pearson/Spearman are NaN when either side is constant.
    """
    regression = task.is_regression
    p = _as_1d(preds, "preds", regression)
    y = _as_1d(labels, "labels", regression)
    if p.shape != y.shape:
        raise DataError(f"preds has {p.shape[0]} entries but labels has {y.shape[0]}; "
                        "they must describe the same examples")
    if p.size == 0:
        raise DataError("no predictions to score: the evaluation set is empty")

    out: dict[str, float] = {}
    if regression:
        p = p.astype(np.float64)
        y = y.astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=ConstantInputWarning)
            out["pearson"] = float(pearsonr(p, y)[0])
            out["spearmanr"] = float(spearmanr(p, y)[0])
        out["corr"] = (out["pearson"] + out["spearmanr"]) / 2.0
        return out

    p = _class_indices(p, "preds", task.num_labels)
    y = _class_indices(y, "labels", task.num_labels)
    if "acc" in task.metrics:
        out["acc"] = float(accuracy_score(y, p))
    if "mcc" in task.metrics:
        out["mcc"] = float(matthews_corrcoef(y, p))
    if "f1" in task.metrics:
        out["f1"] = float(f1_score(y, p, pos_label=1, average="binary", zero_division=0.0))
    if "acc_and_f1" in task.metrics:
        out["acc_and_f1"] = (out["acc"] + out["f1"]) / 2.0
    if "macro_f1" in task.metrics:
        out["macro_f1"] = float(f1_score(y, p, average="macro", zero_division=0.0))
    return out
