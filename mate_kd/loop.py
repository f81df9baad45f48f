"""The training loop: n_G generator batches, then n_S student batches, repeating, on accelerate.

Fine-tuning and plain KD are this loop with the generator off (n_G counts as 0). The student's
learning-rate schedule counts student updates only (the released code also counted generator
batches, so its student LR ended near 9% of peak).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from . import config as config_mod
from .checkpoint import (CHECKPOINTS, checkpoint_path, load_checkpoint, resolve_resume, save_checkpoint, save_model,
                         set_rng_state)
from .config import RunArgs
from .data import EncodedSplit, make_loader
from .errors import ConfigError, MateKDError
from .evaluation import evaluate
from .models import forward_inputs
from .objectives import MateKD, Settings
from .optim import make_accelerator, make_optimizer
from .pipeline import Models, encode_split, load_models, prepare_output_dir, resolve_task, special_token_ids
from .tasks import TaskSpec


def is_generator_batch(batch_index: int, n_generator: int, n_student: int) -> bool:
    """Position in the cycle [n_G generator batches, n_S student batches]."""
    return batch_index % (n_generator + n_student) < n_generator


def count_student_updates(total_batches: int, n_generator: int, n_student: int) -> int:
    """How many of the first `total_batches` batches are student batches."""
    full, rest = divmod(total_batches, n_generator + n_student)
    return full * n_student + max(0, rest - n_generator)


def _all_finite(loss: Tensor, accelerator: Accelerator) -> bool:
    """Whether every process's loss is finite (one sync; only used with --skip_nonfinite_steps)."""
    return bool(accelerator.reduce(torch.isfinite(loss.detach()).float(), "min"))


def generator_update(objective: MateKD, batch: dict[str, Tensor], accelerator: Accelerator,
                     optimizer: torch.optim.Optimizer, max_grad_norm: float, skip_nonfinite: bool = False) -> Tensor:
    """One maximisation step: only the generator moves (the student's weights need no gradient)."""
    objective.bare_student.requires_grad_(False)
    with accelerator.autocast():
        loss = objective.generator_loss(batch)
    accelerator.backward(loss)
    objective.bare_student.requires_grad_(True)
    if not skip_nonfinite or _all_finite(loss, accelerator):
        accelerator.clip_grad_norm_(objective.generator.parameters(), max_grad_norm)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def student_update(objective: MateKD, batch: dict[str, Tensor], accelerator: Accelerator,
                   optimizer: torch.optim.Optimizer, scheduler: LRScheduler, max_grad_norm: float,
                   skip_nonfinite: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """One minimisation step: only the student moves."""
    with accelerator.autocast():
        loss, terms = objective.student_loss(batch)
    accelerator.backward(loss)
    if not skip_nonfinite or _all_finite(loss, accelerator):
        accelerator.clip_grad_norm_(objective.student.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach(), {k: v.detach() for k, v in terms.items()}


@dataclass
class Progress:
    """Counters of a run; `batches` is the position in the n_G/n_S cycle. Saved in checkpoints."""

    batches: int = 0
    student_updates: int = 0
    generator_updates: int = 0
    epoch: int = 0
    skipped_updates: int = 0
    best_metric: float = -math.inf
    best_eval: dict = field(default_factory=dict)


class NonFiniteLoss(MateKDError):
    """A loss became NaN or inf."""


class Window:
    """Loss sums between two log events, kept as tensors so the hot loop never syncs.

    It also remembers, per term, the first update whose value was NaN/inf (-1: none).
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.first_bad: dict[str, Tensor] = {}
        self.examples, self.start = 0, time.perf_counter()

    def add(self, name: str, value: Tensor, step: int) -> None:
        value = value.detach()
        self.sums[name] = self.sums.get(name, 0) + value
        self.counts[name] = self.counts.get(name, 0) + 1
        first = self.first_bad.get(name)
        if first is None:
            first = torch.full((), -1, dtype=torch.long, device=value.device)
        self.first_bad[name] = torch.where((first < 0) & ~torch.isfinite(value), step, first)

    def check_finite(self, last_good: Optional[str]) -> None:
        """Stop with the step and the term when a loss went NaN/inf since the last check."""
        bad = {name: int(first) for name, first in self.first_bad.items() if int(first) >= 0}
        if bad:
            step = min(bad.values())
            terms = [n for n, s in bad.items() if s == step and n != "student"] or ["student"]
            raise NonFiniteLoss(
                f"The {' and '.join(terms)} loss became NaN/inf at step {step} (steps count student "
                f"updates). Last good checkpoint: {last_good or 'none'}. Lower --learning_rate / "
                "--generator_learning_rate, use bf16 or no mixed precision instead of fp16, or allow skipping "
                "with --skip_nonfinite_steps N; resume with --resume_from_checkpoint latest.")

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
    sampler_generator: torch.Generator


@torch.no_grad()
def teacher_logits(teacher: torch.nn.Module, split: EncodedSplit, tokenizer, batch_size: int,
                   accelerator: Accelerator, pad_to_length: Optional[int] = None) -> Tensor:
    """T(x) for every training example, row i for example i (every process computes all rows).

    Batches go longest first (inference: order is free), so each batch pads to almost its own length.
    """
    accepted = forward_inputs(teacher)
    lengths = split.lengths()
    order = sorted(range(len(split)), key=lambda i: -lengths[i])
    out: Optional[Tensor] = None
    loader = make_loader(split, tokenizer, batch_size, train=False, pad_to_length=pad_to_length, order=order)
    for batch in tqdm(loader, desc="teacher logits", leave=False, disable=not accelerator.is_local_main_process):
        with accelerator.autocast():
            logits = teacher(**{k: v.to(accelerator.device) for k, v in batch.items() if k in accepted}).logits
        if out is None:
            out = torch.empty((len(split), logits.shape[-1]), dtype=torch.float32, device=logits.device)
        out[batch["idx"].to(logits.device)] = logits.float()
    return out


def build_run(args: RunArgs) -> Run:
    """Load task, data and models, and wrap them for the devices accelerate found."""
    accelerator = make_accelerator(args)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    set_seed(args.seed)

    task = resolve_task(args)
    models = load_models(args, task)
    tokenizer = models.tokenizer
    train_split = encode_split(args, task, models, "train", args.max_train_samples, shuffle_seed=0)
    eval_splits = {s: encode_split(args, task, models, s, args.max_eval_samples) for s in task.eval_splits}
    pad = args.max_seq_length if args.pad_to_max_length else None
    train_loader = make_loader(train_split, tokenizer, args.per_device_train_batch_size, train=True, seed=args.seed,
                               group_by_length=args.group_by_length, pad_to_length=pad,
                               num_workers=args.dataloader_num_workers)
    eval_loaders = {s: make_loader(d, tokenizer, args.per_device_eval_batch_size, train=False, pad_to_length=pad)
                    for s, d in eval_splits.items()}

    n_generator = args.n_generator_steps if args.method == "mate-kd" else 0
    student = models.student.train()
    optimizer = make_optimizer(student, args.learning_rate, args.weight_decay, accelerator.device, args.optim,
                               args.adam_epsilon)
    sampler_generator = train_loader.sampler.generator
    student, optimizer, train_loader = accelerator.prepare(student, optimizer, train_loader)
    eval_loaders = {s: accelerator.prepare(loader) for s, loader in eval_loaders.items()}
    generator, generator_optimizer = models.generator, None
    if generator is not None:
        generator.train()
        if n_generator > 0:
            # weight_decay 0: the released code used transformers' AdamW, whose default was 0 (torch's is 0.01).
            generator_optimizer = make_optimizer(generator, args.generator_learning_rate, 0.0, accelerator.device,
                                                 args.optim)
            generator, generator_optimizer = accelerator.prepare(generator, generator_optimizer)
        else:
            generator = generator.to(accelerator.device).requires_grad_(False)
    teacher = models.teacher.to(accelerator.device) if models.teacher is not None else None

    if args.max_steps > 0:
        total_updates = args.max_steps
    else:
        total_updates = count_student_updates(int(args.num_train_epochs * len(train_loader)), n_generator,
                                              args.n_student_steps)
    if total_updates < 1:
        raise ConfigError(f"No student update would run: {len(train_loader)} batches per epoch x "
                          f"{args.num_train_epochs} epochs with {n_generator} generator batches before every "
                          f"{args.n_student_steps} student batches. Pass --max_steps, more --num_train_epochs, or a "
                          "smaller --n_generator_steps.")
    warmup = args.warmup_steps or int(args.warmup_ratio * total_updates)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_updates)
    ce, kd, adv = args.weights()
    cache = None
    if teacher is not None and kd > 0 and args.cache_teacher_logits:
        cache = teacher_logits(teacher, train_split, tokenizer, args.per_device_eval_batch_size, accelerator, pad)
    objective = MateKD(student, teacher, generator,
                       Settings(args.mask_prob, args.gumbel_temperature, args.kd_temperature, args.divergence,
                                ce, kd, adv, args.forbid_special_tokens),
                       special_token_ids(tokenizer).to(accelerator.device), tokenizer.mask_token_id,
                       unwrap=accelerator.unwrap_model, teacher_cache=cache)
    return Run(args, accelerator, task, models, objective, train_loader, eval_loaders, optimizer, scheduler,
               generator_optimizer, n_generator, total_updates, sampler_generator)


class StopRequested:
    """SIGTERM/SIGINT set a flag; the loop saves a checkpoint at the next batch boundary and exits."""

    def __init__(self) -> None:
        self.signal = 0
        self._previous = {}

    def __enter__(self) -> "StopRequested":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame) -> None:
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def requested(self, accelerator: Accelerator) -> bool:
        if accelerator.num_processes == 1:
            return self.signal != 0
        flag = torch.tensor(float(self.signal), device=accelerator.device)
        return bool(accelerator.reduce(flag, "max"))


def _resume_settings(args: RunArgs, accelerator: Accelerator) -> dict:
    return {**args.to_dict(), "num_processes": accelerator.num_processes}


def train(args: RunArgs) -> dict:
    """Run one training job end to end (or resume one); returns the contents of eval_results.json."""
    out = args.output_dir
    resume = resolve_resume(args.resume_from_checkpoint, out)
    if make_accelerator(args).is_main_process:
        # Resuming writes into its own run; `latest` before the first checkpoint may restart a run that left
        # only its log behind, but never overwrites a finished one.
        leftovers = {"run_config.yaml", "log.jsonl", CHECKPOINTS} if args.resume_from_checkpoint else set()
        prepare_output_dir(out, args.overwrite_output_dir or resume is not None, leftovers)
    run = build_run(args)
    accelerator, task, tokenizer, objective = run.accelerator, run.task, run.models.tokenizer, run.objective
    accelerator.wait_for_everyone()
    student = objective.student
    bare_student = objective.bare_student
    bare_generator = objective.bare_generator if run.generator_optimizer is not None else None
    batches_per_epoch = len(run.train_loader)
    selection = args.metric_for_best_model or task.selection_metric
    if selection not in task.metrics:
        raise ConfigError(f"--metric_for_best_model {selection} is not a metric of {task.name}: choose one of "
                          f"{list(task.metrics)}.")
    log_path = os.path.join(out, "log.jsonl")
    skip = args.skip_nonfinite_steps > 0
    progress, window, epoch_order = Progress(), Window(), run.sampler_generator.get_state()
    settings = _resume_settings(args, accelerator)
    trained = {"student": bare_student, **({"generator": bare_generator} if bare_generator is not None else {})}
    if resume:
        state, saved = load_checkpoint(resume, settings, accelerator.process_index, trained)
        progress = Progress(**saved)
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if run.generator_optimizer is not None:
            run.generator_optimizer.load_state_dict(state["generator_optimizer"])
        if accelerator.scaler is not None and "scaler" in state:
            accelerator.scaler.load_state_dict(state["scaler"])
        epoch_order = state["epoch_order"]
    if accelerator.is_main_process:
        config_mod.dump(args, os.path.join(out, "run_config.yaml"))
        if not resume:
            open(log_path, "w").close()
    last_checkpoint = resume

    def log(event: dict) -> None:
        if accelerator.is_main_process:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event) + "\n")

    def evaluate_and_keep_best() -> dict:
        results = evaluate(student, run.eval_loaders, task, accelerator)
        score = results[task.eval_splits[0]][selection]
        if not progress.best_eval or score > progress.best_metric:  # a NaN score never wins, but best/ exists
            if accelerator.is_main_process:
                save_model(bare_student, tokenizer, os.path.join(out, "best"))
            progress.best_metric = score if score == score else -math.inf
            progress.best_eval = {"step": progress.student_updates, "metrics": results}
        return results

    def checkpoint() -> str:
        window.check_finite(last_checkpoint)
        path = checkpoint_path(out, progress.student_updates)
        trainer_state = {"optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                         "epoch_order": epoch_order}
        if run.generator_optimizer is not None:
            trainer_state["generator_optimizer"] = run.generator_optimizer.state_dict()
        if accelerator.scaler is not None:
            trainer_state["scaler"] = accelerator.scaler.state_dict()
        save_checkpoint(path, models=trained, trainer_state=trainer_state, progress=asdict(progress),
                        settings=settings, rank=accelerator.process_index, is_main=accelerator.is_main_process,
                        barrier=accelerator.wait_for_everyone, keep=args.save_total_limit)
        return path

    bar = tqdm(total=run.total_updates, initial=progress.student_updates, desc=f"train {args.method}",
               disable=not accelerator.is_local_main_process)
    with StopRequested() as stop, bar:
        while progress.student_updates < run.total_updates:
            run.sampler_generator.set_state(epoch_order)
            done_in_epoch = progress.batches - progress.epoch * batches_per_epoch
            batches = accelerator.skip_first_batches(run.train_loader, done_in_epoch) if done_in_epoch else \
                run.train_loader
            for batch in batches:
                if resume:
                    set_rng_state(state["rng"])
                    resume = None
                before = progress.student_updates
                if is_generator_batch(progress.batches, run.n_generator, args.n_student_steps):
                    loss = generator_update(objective, batch, accelerator, run.generator_optimizer,
                                            args.generator_max_grad_norm, skip)
                    terms = {"generator": loss}
                    progress.generator_updates += 1
                else:
                    loss, terms = student_update(objective, batch, accelerator, run.optimizer, run.scheduler,
                                                 args.max_grad_norm, skip)
                    terms = {"student": loss, **terms}
                    progress.student_updates += 1
                    bar.update(1)
                step = progress.student_updates
                if skip and not math.isfinite(loss.item()):
                    progress.skipped_updates += 1
                    if progress.skipped_updates > args.skip_nonfinite_steps:
                        raise NonFiniteLoss(f"More than {args.skip_nonfinite_steps} updates had a NaN/inf loss "
                                            f"(the last at step {step}); stopping. Last good checkpoint: "
                                            f"{last_checkpoint or 'none'}.")
                else:
                    for name, value in terms.items():
                        window.add(name, value, step)
                window.examples += len(batch["input_ids"]) * accelerator.num_processes
                progress.batches += 1
                updated = step > before
                if updated and (progress.student_updates % args.logging_steps == 0
                                or progress.student_updates == run.total_updates):
                    window.check_finite(last_checkpoint)
                    event = {"step": progress.student_updates, "generator_steps": progress.generator_updates,
                             "epoch": progress.batches / batches_per_epoch, "lr": run.scheduler.get_last_lr()[0],
                             **window.flush()}
                    if run.generator_optimizer is not None:
                        event["generator_lr"] = run.generator_optimizer.param_groups[0]["lr"]
                    if args.evaluate_during_training and progress.student_updates < run.total_updates:
                        event["eval"] = evaluate_and_keep_best()
                    log(event)
                if progress.batches == (progress.epoch + 1) * batches_per_epoch:
                    progress.epoch += 1
                    epoch_order = run.sampler_generator.get_state()
                if stop.requested(accelerator):
                    last_checkpoint = checkpoint()
                    log({"step": progress.student_updates, "stopped_by_signal": stop.signal,
                         "checkpoint": last_checkpoint})
                    if accelerator.is_main_process:
                        print(f"mate-kd train: stopped by signal {stop.signal} at step {progress.student_updates}; "
                              f"checkpoint {last_checkpoint}. Continue with --resume_from_checkpoint latest.",
                              file=sys.stderr)
                    raise SystemExit(128 + stop.signal)
                if updated and args.save_steps > 0 and progress.student_updates % args.save_steps == 0:
                    last_checkpoint = checkpoint()
                if progress.student_updates >= run.total_updates:
                    break

    final = evaluate_and_keep_best()
    log({"step": progress.student_updates, "final_eval": final, "best_step": progress.best_eval["step"]})
    results = {"best": progress.best_eval, "final": {"step": progress.student_updates, "metrics": final},
               "selection_metric": f"{task.eval_splits[0]}/{selection}", "progress": asdict(progress)}
    if accelerator.is_main_process:
        save_model(bare_student, tokenizer, os.path.join(out, "final"))
        if bare_generator is not None:
            save_model(bare_generator, tokenizer, os.path.join(out, "generator"))
        with open(os.path.join(out, "eval_results.json"), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    accelerator.wait_for_everyone()
    return results
