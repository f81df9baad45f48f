"""Score a saved model on dev, or write GLUE submission files for the test split(s)."""

from __future__ import annotations

import json
import os

from accelerate import Accelerator

from .config import RunArgs
from .data import make_loader
from .errors import ConfigError
from .evaluation import evaluate, predict_logits, to_predictions, write_submission
from .lock import refuse_if_locked
from .optim import make_accelerator
from .pipeline import Models, encode_split, load_models, resolve_task

#: Files that `mate-kd train` writes first into its --output_dir: a directory holding one is a training run's.
TRAINING_RUN_FILES = ("run_config.yaml", "log.jsonl")


def _setup(args: RunArgs) -> tuple[Accelerator, object, Models]:
    accelerator = make_accelerator(args)
    task = resolve_task(args)
    models = load_models(args, task, training=False)
    models.student = accelerator.prepare(models.student)
    return accelerator, task, models


def _refuse_training_run_dir(output_dir: str) -> None:
    """A training run's eval_results.json holds its best and final metrics; evaluate must not replace it."""
    found = [f for f in TRAINING_RUN_FILES if os.path.isfile(os.path.join(output_dir, f))]
    if found:
        raise ConfigError(f"--output_dir {output_dir} holds a training run ({found[0]}): `mate-kd evaluate` would "
                          "overwrite its eval_results.json (the run's best and final metrics). Write the scores "
                          f"elsewhere, e.g. --output_dir {os.path.join(output_dir, 'eval')}.")


def evaluate_saved(args: RunArgs) -> dict:
    """Dev metrics of a saved model, also written to OUTPUT_DIR/eval_results.json (never a training run's)."""
    refuse_if_locked(args.output_dir, "`mate-kd evaluate`")
    _refuse_training_run_dir(args.output_dir)
    accelerator, task, models = _setup(args)
    loaders = {s: accelerator.prepare(make_loader(encode_split(args, task, models, s, args.max_eval_samples),
                                                  models.tokenizer, args.per_device_eval_batch_size, train=False))
               for s in task.eval_splits}
    results = evaluate(models.student, loaders, task, accelerator)
    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, "eval_results.json"), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results


def predict(args: RunArgs) -> list[str]:
    """One GLUE submission file per test split (MNLI-m.tsv and MNLI-mm.tsv for MNLI)."""
    refuse_if_locked(args.output_dir, "`mate-kd predict`")
    accelerator, task, models = _setup(args)
    written = []
    for split in task.test_splits:
        encoded = encode_split(args, task, models, split)
        loader = accelerator.prepare(make_loader(encoded, models.tokenizer, args.per_device_eval_batch_size,
                                                 train=False))
        logits, _ = predict_logits(models.student, loader, accelerator, desc=f"predict {split}")
        path = os.path.join(args.output_dir, task.submission_files[split])
        if accelerator.is_main_process:
            write_submission(path, encoded.guids, to_predictions(logits), models.labels)
        written.append(path)
    return written
