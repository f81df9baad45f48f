"""The training loop: n_G generator batches, then n_S student batches, repeating, on accelerate.

Fine-tuning and plain KD are this loop with the generator off (n_G counts as 0). The student's
learning-rate schedule counts student updates only (the released code also counted generator
batches, so its student LR ended near 9% of peak).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from . import config as config_mod
from .checkpoint import save_model
from .config import RunArgs
from .data import make_loader
from .evaluation import evaluate
from .objectives import MateKD, Settings
from .pipeline import Models, encode_split, load_models, prepare_output_dir, resolve_task, special_token_ids
from .tasks import TaskSpec


def is_generator_batch(batch_index: int, n_generator: int, n_student: int) -> bool:
    """Position in the cycle [n_G generator batches, n_S student batches]."""
    return batch_index % (n_generator + n_student) < n_generator


def count_student_updates(total_batches: int, n_generator: int, n_student: int) -> int:
    """How many of the first `total_batches` batches are student batches."""
    full, rest = divmod(total_batches, n_generator + n_student)
    return full * n_student + max(0, rest - n_generator)


def generator_update(objective: MateKD, batch: dict[str, Tensor], accelerator: Accelerator,
                     optimizer: torch.optim.Optimizer, max_grad_norm: float) -> Tensor:
    """One maximisation step: only the generator moves (the student's weights need no gradient)."""
    objective.bare_student.requires_grad_(False)
    with accelerator.autocast():
        loss = objective.generator_loss(batch)
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(objective.generator.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    objective.bare_student.requires_grad_(True)
    return loss.detach()


def student_update(objective: MateKD, batch: dict[str, Tensor], accelerator: Accelerator,
                   optimizer: torch.optim.Optimizer, scheduler, max_grad_norm: float
                   ) -> tuple[Tensor, dict[str, Tensor]]:
    """One minimisation step: only the student moves."""
    with accelerator.autocast():
        loss, terms = objective.student_loss(batch)
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(objective.student.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach(), {k: v.detach() for k, v in terms.items()}


@dataclass
class Progress:
    """Counters of a run; `batches` is the position in the n_G/n_S cycle."""

    batches: int = 0
    student_updates: int = 0
    generator_updates: int = 0
    epoch: int = 0
    best_metric: float = -math.inf
    best_step: int = 0


class Window:
    """Loss sums between two log events, kept as tensors so the hot loop never syncs."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.examples, self.start = 0, time.perf_counter()

    def add(self, name: str, value: Tensor) -> None:
        self.sums[name] = self.sums.get(name, 0) + value.detach()
        self.counts[name] = self.counts.get(name, 0) + 1

    def flush(self) -> dict[str, float]:
        out = {f"loss_{k}": (v / self.counts[k]).item() for k, v in self.sums.items()}
        out["examples_per_s"] = self.examples / max(time.perf_counter() - self.start, 1e-9)
        self.__init__()
        return out


@dataclass
class Run:
    """Everything a training run holds, built once by `build_run` (benchmarks reuse it)."""

    args: RunArgs
    accelerator: Accelerator
    task: TaskSpec
    models: Models
    objective: MateKD
    train_loader: DataLoader
    eval_loaders: dict[str, DataLoader]
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    generator_optimizer: Optional[torch.optim.Optimizer]
    n_generator: int
    total_updates: int


def build_run(args: RunArgs) -> Run:
    """Load task, data and models, and wrap them for the devices accelerate found."""
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.no_cuda)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    set_seed(args.seed)

    task = resolve_task(args)
    models = load_models(args, task)
    tokenizer = models.tokenizer
    train_split = encode_split(args, task, models, "train", args.max_train_samples, shuffle_seed=args.seed)
    eval_splits = {s: encode_split(args, task, models, s, args.max_eval_samples) for s in task.eval_splits}
    pad = args.max_seq_length if args.pad_to_max_length else None
    train_loader = make_loader(train_split, tokenizer, args.per_device_train_batch_size, train=True, seed=args.seed,
                               group_by_length=args.group_by_length, pad_to_length=pad,
                               num_workers=args.dataloader_num_workers)
    eval_loaders = {s: make_loader(d, tokenizer, args.per_device_eval_batch_size, train=False, pad_to_length=pad)
                    for s, d in eval_splits.items()}

    n_generator = args.n_generator_steps if args.method == "mate-kd" else 0
    student = models.student.train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.learning_rate, eps=args.adam_epsilon,
                                  weight_decay=args.weight_decay)
    student, optimizer, train_loader = accelerator.prepare(student, optimizer, train_loader)
    eval_loaders = {s: accelerator.prepare(loader) for s, loader in eval_loaders.items()}
    generator, generator_optimizer = models.generator, None
    if generator is not None:
        generator.train()
        if n_generator > 0:
            generator_optimizer = torch.optim.AdamW(generator.parameters(), lr=args.generator_learning_rate)
            generator, generator_optimizer = accelerator.prepare(generator, generator_optimizer)
        else:
            generator = generator.to(accelerator.device).requires_grad_(False)
    teacher = models.teacher.to(accelerator.device) if models.teacher is not None else None

    if args.max_steps > 0:
        total_updates = args.max_steps
    else:
        total_updates = count_student_updates(int(args.num_train_epochs * len(train_loader)), n_generator,
                                              args.n_student_steps)
    warmup = args.warmup_steps or int(args.warmup_ratio * total_updates)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_updates)
    ce, kd, adv = args.weights()
    objective = MateKD(student, teacher, generator,
                       Settings(args.mask_prob, args.gumbel_temperature, args.kd_temperature, args.divergence,
                                ce, kd, adv, args.forbid_special_tokens),
                       special_token_ids(tokenizer).to(accelerator.device), tokenizer.mask_token_id,
                       unwrap=accelerator.unwrap_model)
    return Run(args, accelerator, task, models, objective, train_loader, eval_loaders, optimizer, scheduler,
               generator_optimizer, n_generator, total_updates)


def train(args: RunArgs) -> dict:
    """Run one training job end to end; returns the contents of eval_results.json."""
    if PartialState().is_main_process:
        prepare_output_dir(args.output_dir, args.overwrite_output_dir)
    run = build_run(args)
    accelerator, task, tokenizer = run.accelerator, run.task, run.models.tokenizer
    accelerator.wait_for_everyone()
    student, generator, objective = run.objective.student, run.objective.generator, run.objective
    optimizer, scheduler, generator_optimizer = run.optimizer, run.scheduler, run.generator_optimizer
    train_loader, eval_loaders = run.train_loader, run.eval_loaders
    n_generator, total_updates, batches_per_epoch = run.n_generator, run.total_updates, len(train_loader)
    bare_student = accelerator.unwrap_model(student)
    selection = args.metric_for_best_model or task.selection_metric
    out = args.output_dir
    log_path = os.path.join(out, "log.jsonl")
    if accelerator.is_main_process:
        config_mod.dump(args, os.path.join(out, "run_config.yaml"))
        open(log_path, "w").close()

    def log(event: dict) -> None:
        if accelerator.is_main_process:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event) + "\n")

    def evaluate_and_keep_best(progress: Progress) -> dict:
        results = evaluate(student, eval_loaders, task, accelerator)
        score = results[task.eval_splits[0]][selection]
        if score > progress.best_metric:
            progress.best_metric, progress.best_step = score, progress.student_updates
            if accelerator.is_main_process:
                save_model(bare_student, tokenizer, os.path.join(out, "best"))
            best_results.update(step=progress.student_updates, metrics=results)
        return results

    progress, window, best_results = Progress(), Window(), {}
    bar = tqdm(total=total_updates, desc=f"train {args.method}", disable=not accelerator.is_local_main_process)
    while progress.student_updates < total_updates:
        for batch in train_loader:
            if is_generator_batch(progress.batches, n_generator, args.n_student_steps):
                window.add("generator", generator_update(objective, batch, accelerator, generator_optimizer,
                                                         args.generator_max_grad_norm))
                progress.generator_updates += 1
            else:
                loss, terms = student_update(objective, batch, accelerator, optimizer, scheduler, args.max_grad_norm)
                window.add("student", loss)
                for name, value in terms.items():
                    window.add(name, value)
                progress.student_updates += 1
                bar.update(1)
                if progress.student_updates % args.logging_steps == 0 or progress.student_updates == total_updates:
                    event = {"step": progress.student_updates, "generator_steps": progress.generator_updates,
                             "epoch": progress.batches / batches_per_epoch,
                             "lr": scheduler.get_last_lr()[0], **window.flush()}
                    if generator_optimizer is not None:
                        event["generator_lr"] = generator_optimizer.param_groups[0]["lr"]
                    if args.evaluate_during_training and progress.student_updates < total_updates:
                        event["eval"] = evaluate_and_keep_best(progress)
                    log(event)
            window.examples += len(batch["input_ids"]) * accelerator.num_processes
            progress.batches += 1
            if progress.student_updates >= total_updates:
                break
        progress.epoch += 1
    bar.close()

    final = evaluate_and_keep_best(progress)
    log({"step": progress.student_updates, "final_eval": final, "best_step": progress.best_step})
    results = {"best": best_results, "final": {"step": progress.student_updates, "metrics": final},
               "selection_metric": f"{task.eval_splits[0]}/{selection}", "progress": asdict(progress)}
    if accelerator.is_main_process:
        save_model(bare_student, tokenizer, os.path.join(out, "final"))
        if n_generator > 0:
            save_model(accelerator.unwrap_model(generator), tokenizer, os.path.join(out, "generator"))
        with open(os.path.join(out, "eval_results.json"), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    accelerator.wait_for_everyone()
    return results
