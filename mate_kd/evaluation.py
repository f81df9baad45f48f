"""Predict over a loader (all processes, gathered), score dev splits, write GLUE submission files."""

from __future__ import annotations

import csv
import os
from typing import Optional, Sequence

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from .metrics import compute_metrics
from .models import forward_inputs
from .progress import bar as progress_bar
from .tasks import TaskSpec


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader, accelerator: Accelerator,
                   desc: str = "eval") -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Logits (and gold labels, if the split has them) for every example, in dataset order."""
    was_training = model.training
    model.eval()
    accepted = forward_inputs(accelerator.unwrap_model(model))
    all_logits, all_labels = [], []
    for batch in progress_bar(loader, desc=desc, leave=False, show=accelerator.is_local_main_process):
        labels = batch.pop("labels", None)
        with accelerator.autocast():
            logits = model(**{k: v for k, v in batch.items() if k in accepted}).logits.float()
        all_logits.append(accelerator.gather_for_metrics(logits).cpu())
        if labels is not None:
            all_labels.append(accelerator.gather_for_metrics(labels).cpu())
    model.train(was_training)
    labels = torch.cat(all_labels).numpy() if all_labels else None
    return torch.cat(all_logits).numpy(), labels


def to_predictions(logits: np.ndarray) -> np.ndarray:
    """Class indices, or the score itself for a one-output (regression) model."""
    return logits[:, 0] if logits.shape[-1] == 1 else logits.argmax(-1)


def evaluate(model: nn.Module, loaders: dict[str, DataLoader], task: TaskSpec,
             accelerator: Accelerator) -> dict[str, dict[str, float]]:
    """Metrics per dev split (MNLI: matched and mismatched in one call)."""
    results = {}
    for split, loader in loaders.items():
        logits, labels = predict_logits(model, loader, accelerator, desc=f"eval {split}")
        results[split] = compute_metrics(task, to_predictions(logits), labels)
    return results


def write_submission(path: str, guids: Sequence[str], predictions: np.ndarray,
                     label_names: Optional[Sequence[str]]) -> None:
    """GLUE submission file: `index<TAB>prediction`, labels as names, scores clipped to [0, 5]."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "prediction"])
        for guid, pred in zip(guids, predictions):
            writer.writerow([guid, f"{float(np.clip(pred, 0.0, 5.0)):.3f}" if label_names is None
                             else label_names[int(pred)]])
    os.replace(tmp, path)
