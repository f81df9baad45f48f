"""The training loop: n_G generator updates, then n_S student updates, repeating, on accelerate.

Fine-tuning and plain KD are this loop with the generator off (n_G counts as 0). The student's
learning-rate schedule counts student updates only (the released code also counted generator
batches, so its student LR ended near 9% of peak). With --gradient_accumulation_steps N every
update, generator or student, is N micro-batches; n_G, n_S, --max_steps, the schedules, logging,
evaluation and checkpoints all count updates.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shlex
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, set_seed
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from . import config as config_mod
from . import tracking
from .checkpoint import (CHECKPOINTS, check_resumable, checkpoint_path, load_checkpoint, resolve_resume,
                         save_checkpoint, save_model, set_rng_state)
from .compiled import compile_models
from .config import RunArgs
from .data import EncodedSplit, make_loader
from .errors import ConfigError, MateKDError
from .evaluation import evaluate
from .lock import OutputDirLock
from .model_card import write_model_card
from .models import forward_inputs
from .objectives import MateKD, Settings
from .optim import make_accelerator, make_optimizer, make_scheduler
from .plot import plot_run
from .probe import AdversaryProbe, maybe_probe
from .pipeline import Models, encode_split, load_models, prepare_output_dir, resolve_task, special_token_ids
from .progress import bar as progress_bar
from .tasks import TaskSpec


def is_generator_batch(batch_index: int, n_generator: int, n_student: int) -> bool:
    """Position in the cycle [n_G generator batches, n_S student batches]."""
    return batch_index % (n_generator + n_student) < n_generator


def count_student_updates(total_batches: int, n_generator: int, n_student: int) -> int:
    """How many of the first `total_batches` batches are student batches."""
    full, rest = divmod(total_batches, n_generator + n_student)
    return full * n_student + max(0, rest - n_generator)


def count_generator_updates(student_updates: int, n_generator: int, n_student: int) -> int:
    """Generator updates in a run that stops right after its `student_updates`-th student update."""
    return math.ceil(student_updates / n_student) * n_generator


def _all_finite(loss: Tensor, accelerator: Accelerator) -> bool:
    """Whether every process's loss is finite (one sync; only used with --skip_nonfinite_steps)."""
    return bool(accelerator.reduce(torch.isfinite(loss.detach()).float(), "min"))


def _loss_scale(accelerator: Accelerator) -> Optional[float]:
    """The fp16 grad scaler's scale (None without one). A step whose gradients overflowed is skipped and the
    scale lowered; that drop is how a skip shows, as `step_was_skipped` misses it for fused AdamW (its step()
    runs and the kernel skips, accelerate issue 4242). Reading it syncs with the device: fp16 only."""
    return accelerator.scaler.get_scale() if accelerator.scaler is not None else None


Batch = dict[str, Tensor]


def accumulate(model: torch.nn.Module, batches: Sequence[Batch], accelerator: Accelerator,
               loss_of: Callable[[Batch], tuple[Tensor, dict[str, Tensor]]]) -> tuple[Tensor, dict[str, Tensor]]:
    """Backward over an update's micro-batches, each loss weighted by its share of the update's examples, so the
    gradient is that of one batch holding them all (also for a shorter last update of an epoch); under DDP the
    gradients are synchronised at the last micro-batch only. Returns the update's loss and terms, detached.

    By hand rather than `accelerator.accumulate`: that counts every backward into one step counter, which the
    generator's and the student's updates would share, and divides by N even when an update has fewer."""
    total = sum(len(b["input_ids"]) for b in batches)
    loss_sum, term_sums = 0.0, {}
    for i, batch in enumerate(batches):
        share = len(batch["input_ids"]) / total
        with accelerator.no_sync(model) if i < len(batches) - 1 else nullcontext():
            with accelerator.autocast():
                loss, terms = loss_of(batch)
            accelerator.backward(loss * share)
        loss_sum = loss_sum + share * loss.detach()
        for name, value in terms.items():
            term_sums[name] = term_sums.get(name, 0) + share * value.detach()
    return loss_sum, term_sums


def generator_update(objective: MateKD, batches: Sequence[Batch], accelerator: Accelerator,
                     optimizer: torch.optim.Optimizer, scheduler: LRScheduler, max_grad_norm: float,
                     skip_nonfinite: bool = False) -> Tensor:
    """One maximisation step over the update's micro-batches: only the generator moves (the student's weights need
    no gradient)."""
    objective.bare_student.requires_grad_(False)
    loss, _ = accumulate(objective.generator, batches, accelerator, lambda b: (objective.generator_loss(b), {}))
    objective.bare_student.requires_grad_(True)
    if not skip_nonfinite or _all_finite(loss, accelerator):
        accelerator.clip_grad_norm_(objective.generator.parameters(), max_grad_norm)
        scale = _loss_scale(accelerator)
        optimizer.step()
        if scale is None or _loss_scale(accelerator) >= scale:  # lowered: the grad scaler skipped the step
            scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def student_update(objective: MateKD, batches: Sequence[Batch], accelerator: Accelerator,
                   optimizer: torch.optim.Optimizer, scheduler: LRScheduler, max_grad_norm: float,
                   skip_nonfinite: bool = False) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """One minimisation step over the update's micro-batches: only the student moves. Also returns the counts of
    masked and replaced tokens in x' (objective.student_loss)."""
    stats: dict[str, Tensor] = {}
    loss, terms = accumulate(objective.student, batches, accelerator, lambda b: objective.student_loss(b, stats))
    if not skip_nonfinite or _all_finite(loss, accelerator):
        accelerator.clip_grad_norm_(objective.student.parameters(), max_grad_norm)
        scale = _loss_scale(accelerator)
        optimizer.step()
        if scale is None or _loss_scale(accelerator) >= scale:  # lowered: the grad scaler skipped the step
            scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss, terms, stats


@dataclass
class Progress:
    """Counters of a run; `batches` counts the loader's (micro-)batches, the updates place the run in the n_G/n_S
    cycle. Saved in checkpoints."""

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
    """Loss sums (and the counts behind shares) between two log events, kept as tensors so the hot loop never
    syncs.

    It also remembers, per term, the first update whose value was NaN/inf (-1: none).
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.first_bad: dict[str, Tensor] = {}
        self.shares: dict[str, tuple[Tensor, Tensor]] = {}
        self.examples, self.start = 0, time.perf_counter()

    def add_share(self, name: str, part: Tensor, whole: Tensor) -> None:
        """Counts of a share logged as sum(part) / sum(whole) over the window."""
        old_part, old_whole = self.shares.get(name, (0, 0))
        self.shares[name] = (old_part + part, old_whole + whole)

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
        out.update({k: (part / whole.clamp(min=1)).item() for k, (part, whole) in self.shares.items()})
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
    probe: Optional[AdversaryProbe] = None
    generator_scheduler: Optional[LRScheduler] = None


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
    for batch in progress_bar(loader, desc="teacher logits", leave=False, show=accelerator.is_local_main_process):
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

    updates_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    if args.max_steps > 0:
        total_updates = args.max_steps
    else:
        total_updates = count_student_updates(int(args.num_train_epochs * updates_per_epoch), n_generator,
                                              args.n_student_steps)
    if total_updates < 1:
        raise ConfigError(f"No student update would run: {updates_per_epoch} updates per epoch x "
                          f"{args.num_train_epochs} epochs with {n_generator} generator updates before every "
                          f"{args.n_student_steps} student updates. Pass --max_steps, more --num_train_epochs, or a "
                          "smaller --n_generator_steps (or --gradient_accumulation_steps).")
    warmup = args.warmup_steps or int(args.warmup_ratio * total_updates)
    scheduler = make_scheduler(optimizer, args.lr_scheduler_type, warmup, total_updates)
    generator_scheduler = None
    if generator_optimizer is not None:
        generator_scheduler = make_scheduler(generator_optimizer, args.generator_lr_scheduler_type, 0,
                                             count_generator_updates(total_updates, n_generator, args.n_student_steps))
    ce, kd, adv = args.weights()
    cache = None
    if teacher is not None and kd > 0 and args.cache_teacher_logits:
        cache = teacher_logits(teacher, train_split, tokenizer, args.per_device_eval_batch_size, accelerator, pad)
    objective = MateKD(student, teacher, generator,
                       Settings(args.mask_prob, args.gumbel_temperature, args.kd_temperature, args.divergence,
                                ce, kd, adv, args.forbid_special_tokens),
                       special_token_ids(tokenizer).to(accelerator.device), tokenizer.mask_token_id,
                       unwrap=accelerator.unwrap_model, teacher_cache=cache)
    probe = None
    if args.adversary_probe_samples > 0 and generator is not None and teacher is not None:
        frozen = None
        if generator_optimizer is not None:  # the generator moves: keep its starting point to compare with
            frozen = copy.deepcopy(objective.bare_generator)
        probe_loader = make_loader(train_split, tokenizer, args.per_device_eval_batch_size, train=False,
                                   pad_to_length=pad)
        probe = maybe_probe(objective, frozen, probe_loader, accelerator, args.adversary_probe_samples)
    # Every process built the same models from `seed`; from here on each draws its own masks and Gumbel noise.
    set_seed(args.seed + accelerator.process_index)
    if args.torch_compile:  # after the probe's copy of the generator, which stays eager
        compile_models(objective.bare_student, teacher, objective.bare_generator, args.torch_compile_backend)
    return Run(args, accelerator, task, models, objective, train_loader, eval_loaders, optimizer, scheduler,
               generator_optimizer, n_generator, total_updates, sampler_generator, probe, generator_scheduler)


class SetupInterrupted(BaseException):
    """SIGTERM/SIGINT before the first batch (a BaseException, like KeyboardInterrupt: nothing swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StopRequested:
    """SIGTERM/SIGINT handling for a whole run.

    Before training starts (loading, the teacher-logits pass), a signal stops the run at once: there is no
    checkpoint to save yet. Once `start_training` is called it sets a flag instead, and the loop saves a
    checkpoint at the next batch boundary and exits.
    """

    def __init__(self, output_dir: str, resume: Optional[str], is_main: bool) -> None:
        self.output_dir, self.resume, self.is_main = output_dir, resume, is_main
        self.signal, self.training = 0, False
        self._previous = {}

    def __enter__(self) -> "StopRequested":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame) -> None:
        self.signal = signum
        if not self.training:
            raise SetupInterrupted(signum)

    def start_training(self) -> None:
        self.training = True

    def __exit__(self, _type, exc, _tb) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if isinstance(exc, SetupInterrupted):
            self._stopped_before_training(exc.signum)

    def _stopped_before_training(self, signum: int) -> None:
        """Say that nothing was saved (on a resume: that its checkpoints are as they were), and exit 128 + signal."""
        if self.resume is None:
            saved = ("nothing was saved yet (no checkpoint exists). Start it again with the same command "
                     "(with --overwrite_output_dir if --output_dir is no longer empty).")
        else:
            saved = (f"nothing new was saved: its checkpoints are as they were, the newest {self.resume}. Continue "
                     "with --resume_from_checkpoint latest.")
        log = os.path.join(self.output_dir, "log.jsonl")
        if self.is_main and self.resume is not None and os.path.isfile(log):
            with open(os.path.join(self.resume, "progress.json"), encoding="utf-8") as f:
                step = json.load(f)["student_updates"]
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, "stopped_by_signal": signum, "before_training": True,
                                    "checkpoint": self.resume}) + "\n")
        if self.is_main:
            print(f"mate-kd train: stopped by signal {signum} before the first training step (while loading the "
                  f"data and models or computing the teacher's logits); {saved}", file=sys.stderr)
        raise SystemExit(128 + signum)

    def requested(self, accelerator: Accelerator) -> bool:
        if accelerator.num_processes == 1:
            return self.signal != 0
        flag = torch.tensor(float(self.signal), device=accelerator.device)
        return bool(accelerator.reduce(flag, "max"))


class Session:
    """A run's bookkeeping around the two updates: counters, the log, dev evaluation and the best student,
    checkpoints, the trackers, the progress bar, and at the end the model cards and curves.png. `train` calls its
    methods; their order is the loop's. As a context manager it closes the trackers on every exit.

    `command` is the training command line, for the model cards."""

    def __init__(self, run: Run, resume: Optional[str], command: str) -> None:
        args, accelerator = run.args, run.accelerator
        self.run, self.args, self.accelerator, self.out = run, args, accelerator, args.output_dir
        self.command, self.eval_steps = command, args.eval_steps or args.logging_steps
        self.selection = args.metric_for_best_model or run.task.selection_metric
        if self.selection not in run.task.metrics:
            raise ConfigError(f"--metric_for_best_model {self.selection} is not a metric of {run.task.name}: choose "
                              f"one of {list(run.task.metrics)}.")
        objective = run.objective
        self.trained = {"student": objective.bare_student}
        if run.generator_optimizer is not None:
            self.trained["generator"] = objective.bare_generator
        self.settings = run_settings(args, accelerator)
        self.batches_per_epoch = len(run.train_loader)
        self.skip = args.skip_nonfinite_steps > 0
        self.log_path = os.path.join(self.out, "log.jsonl")
        self.progress, self.window = Progress(), Window()
        self.epoch_order = run.sampler_generator.get_state()
        self.rng: Optional[dict] = None  # RNG states to restore just before the first batch after a resume
        self.last_checkpoint, self.updated = resume, False
        if resume:
            self._restore(resume)
        resumed_at = self.progress.student_updates if resume else None
        if accelerator.is_main_process:
            config_mod.dump(args, os.path.join(self.out, "run_config.yaml"))
            self._start_log(resumed_at)
        self.trackers = tracking.Trackers(args, self.settings, resumed_at, accelerator.is_main_process)
        self.bar = progress_bar(total=run.total_updates, initial=self.progress.student_updates,
                                desc=f"train {args.method}", show=accelerator.is_local_main_process)

    def _restore(self, path: str) -> None:
        run = self.run
        state, saved = load_checkpoint(path, self.settings, self.accelerator.process_index, self.trained)
        self.progress = Progress(**saved)
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if run.generator_optimizer is not None:
            run.generator_optimizer.load_state_dict(state["generator_optimizer"])
            run.generator_scheduler.load_state_dict(state["generator_scheduler"])
        if self.accelerator.scaler is not None and "scaler" in state:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        self.epoch_order, self.rng = state["epoch_order"], state["rng"]

    def _start_log(self, resumed_at: Optional[int]) -> None:
        """A new log, or after a resume the old one without the events after the checkpoint (they are redone)."""
        kept = []
        if resumed_at is not None and os.path.isfile(self.log_path):
            with open(self.log_path, encoding="utf-8") as f:
                kept = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= resumed_at]
        with open(self.log_path, "w", encoding="utf-8") as f:
            f.writelines(kept)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.trackers.finish()

    def batches(self) -> Iterator[list[Batch]]:
        """The micro-batches of each update, from where the run stands (mid-epoch after a resume) until the last
        student update: --gradient_accumulation_steps of them, the last update of an epoch taking what is left."""
        run, p, per_update = self.run, self.progress, self.args.gradient_accumulation_steps
        while p.student_updates < run.total_updates:
            run.sampler_generator.set_state(self.epoch_order)
            done_in_epoch = p.batches - p.epoch * self.batches_per_epoch
            if self.rng is not None:  # resumed: the checkpoint's RNG states (loaders never draw from them)
                set_rng_state(self.rng)
                self.rng = None
            loader = self.accelerator.skip_first_batches(run.train_loader, done_in_epoch) if done_in_epoch \
                else run.train_loader
            group = []
            for batch in loader:
                group.append(batch)
                if len(group) == per_update:
                    yield group
                    group = []
                    if p.student_updates >= run.total_updates:
                        return
            if group:
                yield group

    def generator_turn(self) -> bool:
        p = self.progress
        return is_generator_batch(p.generator_updates + p.student_updates, self.run.n_generator,
                                  self.args.n_student_steps)

    def record(self, batches: list[Batch], terms: dict[str, Tensor], student: bool,
               stats: Optional[dict[str, Tensor]] = None) -> None:
        """Count the update and add its loss terms (and the share of masked tokens the generator replaced, from
        `stats`) to the log window (no sync unless skipping non-finite steps)."""
        p = self.progress
        if student:
            p.student_updates += 1
            self.bar.update(1)
        else:
            p.generator_updates += 1
        loss = terms["student" if student else "generator"]
        if self.skip and not math.isfinite(loss.item()):
            p.skipped_updates += 1
            if p.skipped_updates > self.args.skip_nonfinite_steps:
                raise NonFiniteLoss(f"More than {self.args.skip_nonfinite_steps} updates had a NaN/inf loss (the "
                                    f"last at step {p.student_updates}); stopping. Last good checkpoint: "
                                    f"{self.last_checkpoint or 'none'}.")
        else:
            for name, value in terms.items():
                self.window.add(name, value, p.student_updates)
        if stats:
            self.window.add_share("generator_replaced", stats["replaced"], stats["masked"])
        self.window.examples += sum(len(b["input_ids"]) for b in batches) * self.accelerator.num_processes
        p.batches += len(batches)
        self.updated = student

    def after_batch(self, stop: "StopRequested") -> None:
        """Log, evaluate, close the epoch, obey a signal, save: in that order, as the schedule says."""
        p, args = self.progress, self.args
        at_update = lambda every: self.updated and every > 0 and p.student_updates % every == 0  # noqa: E731
        last = self.updated and p.student_updates == self.run.total_updates
        event = self.window_event() if at_update(args.logging_steps) or last else {}
        if args.evaluate_during_training and at_update(self.eval_steps) and not last:
            event.update(self.evaluation())
        if event:
            self.log({"step": p.student_updates, "generator_steps": p.generator_updates,
                      "epoch": p.batches / self.batches_per_epoch, **event})
        if p.batches == (p.epoch + 1) * self.batches_per_epoch:
            p.epoch += 1
            self.epoch_order = self.run.sampler_generator.get_state()
        if stop.requested(self.accelerator):
            self.stop_for_signal(stop.signal)
        if at_update(args.save_steps):
            self.last_checkpoint = self.checkpoint()

    def window_event(self) -> dict:
        """Learning rates and the window's mean losses, replaced share and examples/s."""
        run = self.run
        self.window.check_finite(self.last_checkpoint)
        event = {"lr": run.scheduler.get_last_lr()[0], **self.window.flush()}
        if run.generator_optimizer is not None:
            event["generator_lr"] = run.generator_optimizer.param_groups[0]["lr"]
        return event

    def evaluation(self) -> dict:
        """Dev metrics (keeping the best student) and, with --adversary_probe_samples, the probe's numbers."""
        event = {"eval": self.evaluate_and_keep_best()}
        if self.run.probe is not None:
            event["adversary"] = self.run.probe.measure()
        return event

    def log(self, event: dict) -> None:
        """One line of log.jsonl, and the same numbers to the trackers."""
        if self.accelerator.is_main_process:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event) + "\n")
            self.trackers.log(event)

    def evaluate_and_keep_best(self) -> dict:
        run, p = self.run, self.progress
        results = evaluate(run.objective.student, run.eval_loaders, run.task, self.accelerator)
        score = results[run.task.eval_splits[0]][self.selection]
        if not p.best_eval or score > p.best_metric:  # a NaN score never wins, but best/ exists
            if self.accelerator.is_main_process:
                save_model(run.objective.bare_student, run.models.tokenizer, os.path.join(self.out, "best"))
            p.best_metric = score if score == score else -math.inf
            p.best_eval = {"step": p.student_updates, "metrics": results}
        return results

    def checkpoint(self) -> str:
        run, accelerator = self.run, self.accelerator
        self.window.check_finite(self.last_checkpoint)
        path = checkpoint_path(self.out, self.progress.student_updates)
        trainer_state = {"optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                         "epoch_order": self.epoch_order}
        if run.generator_optimizer is not None:
            trainer_state["generator_optimizer"] = run.generator_optimizer.state_dict()
            trainer_state["generator_scheduler"] = run.generator_scheduler.state_dict()
        if accelerator.scaler is not None:
            trainer_state["scaler"] = accelerator.scaler.state_dict()
        save_checkpoint(path, models=self.trained, trainer_state=trainer_state, progress=asdict(self.progress),
                        settings=self.settings, rank=accelerator.process_index, is_main=accelerator.is_main_process,
                        barrier=accelerator.wait_for_everyone, keep=self.args.save_total_limit)
        return path

    def stop_for_signal(self, signum: int) -> None:
        self.last_checkpoint = self.checkpoint()
        step = self.progress.student_updates
        self.log({"step": step, "stopped_by_signal": signum, "checkpoint": self.last_checkpoint})
        if self.accelerator.is_main_process:
            print(f"mate-kd train: stopped by signal {signum} at step {step}; checkpoint {self.last_checkpoint}. "
                  "Continue with --resume_from_checkpoint latest.", file=sys.stderr)
        raise SystemExit(128 + signum)

    def finish(self) -> dict:
        """Final evaluation, final/ and generator/ saved, eval_results.json written, then the model cards of best/
        and final/ and curves.png; returns the contents of eval_results.json."""
        run, p, accelerator = self.run, self.progress, self.accelerator
        final = self.evaluate_and_keep_best()
        event = {"step": p.student_updates, "final_eval": final, "best_step": p.best_eval["step"]}
        if run.probe is not None:
            event["adversary"] = run.probe.measure()
        self.log(event)
        results = {"best": p.best_eval, "final": {"step": p.student_updates, "metrics": final},
                   "selection_metric": f"{run.task.eval_splits[0]}/{self.selection}", "progress": asdict(p)}
        if accelerator.is_main_process:
            tokenizer = run.models.tokenizer
            save_model(run.objective.bare_student, tokenizer, os.path.join(self.out, "final"))
            if "generator" in self.trained:
                save_model(self.trained["generator"], tokenizer, os.path.join(self.out, "generator"))
            with open(os.path.join(self.out, "eval_results.json"), "w", encoding="utf-8") as f:
                json.dump(results, f, indent=2)
            for name, result in (("best", p.best_eval), ("final", results["final"])):
                write_model_card(os.path.join(self.out, name), self.args, run.task, result["metrics"], self.command,
                                 step=result["step"])
            self.plot()
        accelerator.wait_for_everyone()
        return results

    def plot(self) -> None:
        """curves.png; a drawing that fails costs only the picture (everything else is written by now)."""
        try:
            plot_run(self.out)
        except Exception as err:  # noqa: BLE001 -- matplotlib's errors share no base class
            warnings.warn(f"{self.out}/curves.png was not drawn ({type(err).__name__}: {err}); the run's results are "
                          f"saved. Draw it later with `mate-kd plot {self.out} --output {self.out}/curves.png`.",
                          stacklevel=2)

def run_settings(args: RunArgs, accelerator: Accelerator) -> dict:
    """What a checkpoint records of its run, and what a resume must match (checkpoint.RESUME_MAY_DIFFER aside)."""
    return {**args.to_dict(), "num_processes": accelerator.num_processes}


@contextmanager
def claimed_output_dir(args: RunArgs, resume: Optional[str], accelerator: Accelerator) -> Iterator[None]:
    """The main process locks --output_dir for the run's lifetime and checks that the run may write there.

    The other processes learn the outcome: a refused run ends on every process, the main one saying why.
    """
    lock, refusal = OutputDirLock(args.output_dir), None
    if accelerator.is_main_process:
        try:
            lock.acquire()
            # Resuming writes into its own run; `latest` before the first checkpoint may restart a run that left
            # only its log behind, but never overwrites a finished one.
            leftovers = {"run_config.yaml", "log.jsonl", CHECKPOINTS, tracking.LOG_DIR} \
                if args.resume_from_checkpoint else set()
            prepare_output_dir(args.output_dir, args.overwrite_output_dir or resume is not None, leftovers)
        except MateKDError as err:
            lock.release()
            refusal = err
    if accelerator.num_processes > 1 and broadcast_object_list([refusal is not None])[0] and refusal is None:
        raise SystemExit(1)
    if refusal is not None:
        raise refusal
    try:
        yield
    finally:
        lock.release()


def train(args: RunArgs, command: Optional[Sequence[str]] = None) -> dict:
    """Run one training job end to end (or resume one); returns the contents of eval_results.json.

    `command` is the argv of `mate-kd train` that gave `args`, for the model cards (default: this process's
    command line)."""
    resume = resolve_resume(args.resume_from_checkpoint, args.output_dir)
    processes = make_accelerator(args)  # which process this is, before build_run's work
    if resume:
        check_resumable(resume, run_settings(args, processes), processes.process_index)
    with StopRequested(args.output_dir, resume, processes.is_main_process) as stop, \
            claimed_output_dir(args, resume, processes):
        run = build_run(args)
        run.accelerator.wait_for_everyone()
        stop.start_training()
        session = Session(run, resume, shlex.join(sys.argv) if command is None else
                          shlex.join(["mate-kd", "train", *command]))
        objective, accelerator = run.objective, run.accelerator
        with session:
            with session.bar:
                for batches in session.batches():
                    if session.generator_turn():
                        loss = generator_update(objective, batches, accelerator, run.generator_optimizer,
                                                run.generator_scheduler, args.generator_max_grad_norm, session.skip)
                        session.record(batches, {"generator": loss}, student=False)
                    else:
                        loss, terms, stats = student_update(objective, batches, accelerator, run.optimizer,
                                                            run.scheduler, args.max_grad_norm, session.skip)
                        session.record(batches, {"student": loss, **terms}, student=True, stats=stats)
                    session.after_batch(stop)
            return session.finish()
