"""`mate-kd quickstart`: the whole pipeline, offline on a CPU in minutes, on the bundled SST-2 sample.

It builds tiny randomly initialised models (`mate_kd.tiny`) in the paper's three roles
(teacher, student, generator sharing one vocabulary), gives the generator a short masked-LM
warm-up (a random-init generator would only propose noise), fine-tunes the teacher, then
distils the student with plain KD and with MATE-KD, all through the `mate_kd.loop.train` that
`mate-kd train` runs. The accuracies show that the pipeline works end to end; they are not the
paper's numbers (those need real pre-trained models and full GLUE).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .config import parse_args
from .generator_prep import PrepArgs, pretrain_generator
from .loop import train
from .tasks import get_task, read_split
from .tiny import STUDENT_ARCHS, TinySizes, build_tiny_models

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "sst2_sample")


@dataclass(frozen=True)
class Plan:
    """Model sizes and schedule of one quickstart flavour."""

    teacher: TinySizes
    student: TinySizes
    generator: TinySizes
    teacher_epochs: float
    student_epochs: float
    teacher_lr: float
    student_lr: float
    generator_mlm_steps: int
    max_train_samples: Optional[int]
    max_eval_samples: Optional[int]
    logging_steps: int


# Sizes, tuned on the sample: a 128-wide one-layer teacher learns SST-2 from scratch on 2000
# sentences (deeper or wider ones learn no better here and cost more); the student is 64 wide, the
# generator a 64-wide one-layer MLM (BERT-Mini's role). Random init needs learning rates far above
# the 2e-5 of fine-tuning pre-trained models.
FULL = Plan(teacher=TinySizes(128, 1, 4, 512, 64), student=TinySizes(64, 1, 2, 256, 64),
            generator=TinySizes(64, 1, 2, 256, 64), teacher_epochs=8, student_epochs=5, teacher_lr=5e-4,
            student_lr=1e-3, generator_mlm_steps=200, max_train_samples=None, max_eval_samples=None,
            logging_steps=30)
FAST = Plan(teacher=TinySizes(32, 1, 2, 64, 64), student=TinySizes(32, 1, 2, 64, 64),
            generator=TinySizes(32, 1, 2, 64, 64), teacher_epochs=1, student_epochs=1, teacher_lr=1e-3,
            student_lr=1e-3, generator_mlm_steps=5, max_train_samples=128, max_eval_samples=64, logging_steps=2)

# MATE-KD at this scale: the released 10 generator / 100 student batches would give one cycle per two
# epochs, and a generator lr of 5e-7 would not move a tiny MLM trained from scratch; 2 / 10 and 1e-4
# give several cycles per epoch and a generator that actually adapts.
MATE_KD_FLAGS = ["--n_generator_steps", "2", "--n_student_steps", "10", "--generator_learning_rate", "1e-4"]


def _common(plan: Plan, seed: int, output_dir: str) -> list[str]:
    """Flags shared by the three runs; group_by_length batches similar lengths together (less padding)."""
    flags = ["--task_name", "sst-2", "--data_dir", DATA_DIR, "--output_dir", output_dir, "--overwrite_output_dir",
             "--do_train", "--evaluate_during_training", "--max_seq_length", "64", "--group_by_length",
             "--per_device_train_batch_size", "32", "--warmup_ratio", "0.1",
             "--logging_steps", str(plan.logging_steps), "--save_steps", "0", "--seed", str(seed)]
    if plan.max_train_samples:
        flags += ["--max_train_samples", str(plan.max_train_samples)]
    if plan.max_eval_samples:
        flags += ["--max_eval_samples", str(plan.max_eval_samples)]
    return flags


def _run(name: str, argv: list[str]) -> dict:
    """One `mate-kd train` run, in this process; returns its results plus the wall time."""
    print(f"\n== {name}: mate-kd train {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    results = train(parse_args(argv, training=True), argv)
    results["wall_s"] = time.perf_counter() - start
    return results


def _accuracy(results: dict, which: str) -> float:
    split, metric = results["selection_metric"].split("/")
    return results[which]["metrics"][split][metric]


def majority_accuracy(max_eval_samples: Optional[int]) -> float:
    """Dev accuracy of always answering the most frequent dev label (the bar any model must clear)."""
    dev = read_split(get_task("sst-2"), DATA_DIR, "dev")[:max_eval_samples]
    counts = Counter(e.label for e in dev)
    return max(counts.values()) / len(dev)


def format_table(rows: list[dict], chance: float) -> str:
    """A Markdown table of the runs."""
    lines = ["| run | model | updates | dev acc (best) | dev acc (final) | wall time |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['model']} | {r['updates']} | {r['best']:.3f} | {r['final']:.3f} "
                     f"| {r['wall_s']:.1f} s |")
    lines.append(f"| majority class | - | - | {chance:.3f} | {chance:.3f} | - |")
    return "\n".join(lines)


def _describe(kind: str, sizes: TinySizes) -> str:
    return f"{kind} {sizes.hidden_size}x{sizes.num_layers}"


def run_quickstart(output_dir: str, family: str = "bert", seed: int = 42, fast: bool = False) -> dict:
    """Build the tiny models, warm up the generator, fine-tune the teacher, distil with kd and mate-kd."""
    plan = FAST if fast else FULL
    start = time.perf_counter()
    models_dir, runs_dir = os.path.join(output_dir, "models"), os.path.join(output_dir, "runs")
    paths = build_tiny_models(models_dir, family=family, seed=seed, teacher=plan.teacher, student=plan.student,
                              generator=plan.generator)

    print(f"== generator: {plan.generator_mlm_steps} steps of masked-LM warm-up on the sample's text", flush=True)
    generator = os.path.join(models_dir, "generator_mlm")
    mlm = pretrain_generator(PrepArgs(source=paths["generator"], output_dir=generator, task_name="sst-2",
                                      data_dir=DATA_DIR, max_steps=plan.generator_mlm_steps, learning_rate=1e-3,
                                      max_seq_length=64, max_train_samples=plan.max_train_samples,
                                      max_eval_samples=plan.max_eval_samples, seed=seed,
                                      overwrite_output_dir=True))
    print(f"   dev MLM accuracy {mlm['dev_before']['accuracy']:.3f} -> {mlm['dev_after']['accuracy']:.3f} "
          f"({mlm['wall_s']:.1f} s)", flush=True)

    def common(name: str, epochs: float, lr: float) -> list[str]:
        return _common(plan, seed, os.path.join(runs_dir, name)) + ["--num_train_epochs", str(epochs),
                                                                    "--learning_rate", str(lr)]

    teacher = _run("teacher", ["--method", "finetune", "--model_name_or_path", paths["teacher"]]
                   + common("teacher", plan.teacher_epochs, plan.teacher_lr))
    teacher_dir = os.path.join(runs_dir, "teacher", "best")
    student = ["--model_name_or_path", paths["student"], "--teacher_path", teacher_dir]
    kd = _run("kd", ["--method", "kd", *student] + common("kd", plan.student_epochs, plan.student_lr))
    mate = _run("mate-kd", ["--method", "mate-kd", *student, "--generator_path", generator, *MATE_KD_FLAGS]
                + common("mate-kd", plan.student_epochs, plan.student_lr))

    student_arch = STUDENT_ARCHS[family][0]
    rows = [{"run": "teacher (finetune)", "model": _describe(family, plan.teacher), "method": "finetune"},
            {"run": "student (kd)", "model": _describe(student_arch, plan.student), "method": "kd"},
            {"run": "student (mate-kd)", "model": _describe(student_arch, plan.student), "method": "mate-kd"}]
    for row, results in zip(rows, (teacher, kd, mate)):
        row.update(best=_accuracy(results, "best"), final=_accuracy(results, "final"), wall_s=results["wall_s"],
                   updates=results["progress"]["student_updates"],
                   output_dir=os.path.join(runs_dir, "teacher" if row["method"] == "finetune" else row["method"]))
    chance = majority_accuracy(plan.max_eval_samples)
    summary = {"family": family, "seed": seed, "fast": fast, "rows": rows, "majority_accuracy": chance,
               "generator_mlm": {k: mlm[k] for k in ("steps", "dev_before", "dev_after", "wall_s")},
               "wall_s": time.perf_counter() - start}
    with open(os.path.join(output_dir, "quickstart_results.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mate-kd quickstart",
        description="Fine-tune a teacher, then distil a student with kd and with mate-kd, on the bundled SST-2 "
                    "sample with tiny random-init models: offline, CPU, a few minutes.")
    parser.add_argument("--output_dir", default="quickstart_out", help="Where models, runs and results go.")
    parser.add_argument("--family", default="bert", choices=["bert", "roberta"],
                        help="bert: WordPiece, BERT teacher, DistilBERT student; roberta: byte-level BPE, RoBERTa.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of model initialisation and training.")
    parser.add_argument("--fast", action="store_true", help="A seconds-long smoke version (smaller, 128 examples).")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (default 1): models this small gain little from more, and on a "
                             "busy machine extra threads spin and make every step many times slower.")
    args = parser.parse_args(list(argv) if argv is not None else None)
    torch.set_num_threads(args.threads)
    summary = run_quickstart(args.output_dir, args.family, args.seed, args.fast)
    sample = f"{FAST.max_train_samples} train / {FAST.max_eval_samples} dev" if args.fast else "2000 train / 400 dev"
    print(f"\nMATE-KD quickstart: SST-2 sample ({sample} sentences), {args.family} family, seed {args.seed}.")
    print("Tiny randomly initialised models trained from scratch: these numbers check the pipeline, "
          "they are not the paper's results.\nupdates: optimiser steps of the trained model (mate-kd spends "
          "some of the same epochs' batches on the generator); best: best dev score during training.\n")
    print(format_table(summary["rows"], summary["majority_accuracy"]))
    print(f"\nTotal wall time {summary['wall_s']:.1f} s. Runs (best/ and final/ students, log.jsonl, "
          f"eval_results.json) are in {os.path.join(args.output_dir, 'runs')}; the table is in "
          f"{os.path.join(args.output_dir, 'quickstart_results.json')}.")
