"""`mate-kd pretrain-generator`: turn an encoder into a masked-LM generator adapted to a task's text.

MATE-KD's generator must be a masked LM over the teacher's vocabulary. Many usable encoders
(sentence-transformers models, fine-tuned classifiers) ship without an MLM head, and an
untrained head proposes noise rather than plausible text. This builds the masked LM
(reusing a head when the checkpoint has one, else a new head whose decoder is tied to the
input embeddings, as in BERT), optionally keeps only its first k layers, and trains it by
masked-language modelling on the task's own text, reporting MLM loss and accuracy on the dev
text before, during (every --eval_steps, into mlm_log.jsonl) and after training. With
--early_stopping_patience the run stops once dev accuracy has not improved for that many
evaluations, and the generator saved is the best one on dev. With --save_steps it checkpoints, and
--resume_from_checkpoint continues a stopped run to the uninterrupted run's result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from transformers import (AutoModelForMaskedLM, DataCollatorForLanguageModeling, PreTrainedModel,
                          PreTrainedTokenizerBase, get_linear_schedule_with_warmup)
from transformers.utils import logging as hf_logging

from .checkpoint import (CHECKPOINTS, check_resumable, checkpoint_path, load_checkpoint, resolve_resume, save_checkpoint,
                         save_model, set_rng_state)
from .data import EncodedSplit, encode, make_loader
from .errors import ConfigError, ModelError
from .optim import make_accelerator, make_optimizer
from .models import check_max_length, check_model_dir, forward_inputs, load_generator, load_tokenizer
from .perturb import masked_lm_logits
from .progress import bar as progress_bar
from .student_init import num_layers, parse_layers, select_layers
from .tasks import Example, custom_task, get_task, read_split, read_table

RESULTS_FILE = "mlm_results.json"
LOG_FILE = "mlm_log.jsonl"
#: `encode` needs a task only to map labels, which masked-LM training does not read.
_TEXT_ONLY = custom_task(["0", "1"], name="text")


@dataclass
class PrepArgs:
    """Settings of `pretrain-generator` (see `main` for their help)."""

    source: str
    output_dir: str
    task_name: Optional[str] = None
    data_dir: Optional[str] = None
    train_file: Optional[str] = None
    validation_file: Optional[str] = None
    text_column: str = "text"
    text_pair_column: Optional[str] = None
    layers: Optional[int] = None
    max_steps: int = 500
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.06
    batch_size: int = 32
    mask_prob: float = 0.15
    max_seq_length: int = 128
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    seed: int = 42
    overwrite_output_dir: bool = False
    eval_steps: int = 0
    early_stopping_patience: int = 0
    mixed_precision: str = "no"
    no_cuda: bool = False
    optim: str = "adamw_torch_fused"
    group_by_length: bool = False
    save_steps: int = 0
    resume_from_checkpoint: Optional[str] = None


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' load report while probing for a head (a missing head is expected there)."""
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def is_tied(model: PreTrainedModel) -> bool:
    """True when the MLM decoder shares its weight tensor with the input embeddings."""
    return model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def build_masked_lm(source: str) -> tuple[PreTrainedModel, bool]:
    """A masked LM from `source` and whether its head was reused (False: a new head, tied to the embeddings)."""
    check_model_dir(source, "source model", "--from")
    with _quiet_transformers():
        model, info = AutoModelForMaskedLM.from_pretrained(source, output_loading_info=True)
    prefix = model.base_model_prefix + "."
    if not [k for k in info["missing_keys"] if not k.startswith(prefix)]:
        return model, True
    if not model.config.tie_word_embeddings:
        with _quiet_transformers():
            model = AutoModelForMaskedLM.from_pretrained(source, tie_word_embeddings=True)
    if not is_tied(model):
        raise ModelError(f"Could not tie the new MLM decoder of {type(model).__name__} to its input embeddings.")
    return model, False


def _read(args: PrepArgs) -> tuple[list[Example], list[Example]]:
    """Training and dev text of a GLUE task or of own files (labels are not needed)."""
    if args.task_name:
        if not args.data_dir:
            raise ConfigError(f"--task_name {args.task_name} needs --data_dir, the task's GLUE directory.")
        task = get_task(args.task_name)
        if task.train_split is None or not task.eval_splits:
            raise ConfigError(f"Task {task.name} has no training and dev text to learn from.")
        return read_split(task, args.data_dir, task.train_split), read_split(task, args.data_dir, task.eval_splits[0])
    if not args.train_file or not args.validation_file:
        raise ConfigError("No text: pass --task_name with --data_dir (GLUE layout), or --train_file and "
                          "--validation_file (with --text_column, and --text_pair_column for pairs).")
    read = lambda path: read_table(path, args.text_column, args.text_pair_column, None)  # noqa: E731
    return read(args.train_file), read(args.validation_file)


def _limit(examples: list[Example], n: Optional[int], seed: Optional[int]) -> list[Example]:
    if n is None or n >= len(examples):
        return examples
    if seed is not None:
        examples = examples[:]
        random.Random(seed).shuffle(examples)
    return examples[:n]


def _inputs(model: PreTrainedModel, batch: dict) -> dict:
    accepted = forward_inputs(model)
    return {k: v for k, v in batch.items() if k in accepted and k not in ("input_ids", "attention_mask", "labels")}


def mlm_loss(model: torch.nn.Module, batch: dict, bare: Optional[PreTrainedModel] = None
             ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Summed cross-entropy and correct predictions at the masked positions, and their count.

    `bare` is the unwrapped model when `model` is a DDP wrapper (the head hook goes on the bare model)."""
    bare = model if bare is None else bare
    mask = batch["labels"] != -100
    logits = masked_lm_logits(model, batch["input_ids"], batch["attention_mask"], mask, bare, **_inputs(bare, batch))
    targets = batch["labels"][mask]
    loss = F.cross_entropy(logits.float(), targets, reduction="sum")
    correct = (logits.argmax(-1) == targets).sum()
    return loss, correct, int(mask.sum())


@torch.no_grad()
def evaluate_mlm(model: PreTrainedModel, batches: list[dict]) -> dict[str, float]:
    """MLM loss (mean over masked tokens) and accuracy at the masked positions of fixed, pre-masked batches."""
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    for batch in batches:
        loss, right, n = mlm_loss(model, batch)
        total, correct, count = total + loss.item(), correct + int(right), count + n
    model.train(was_training)
    return {"loss": total / max(count, 1), "accuracy": correct / max(count, 1), "masked_tokens": count}


def _batches(split: EncodedSplit, tokenizer: PreTrainedTokenizerBase, collator: DataCollatorForLanguageModeling,
             batch_size: int, device: torch.device) -> list[dict]:
    """Fixed dev batches, longest first (each pads to about its own length), masked once."""
    lengths = split.lengths()
    order = sorted(range(len(split)), key=lambda i: -lengths[i])
    loader = make_loader(split, tokenizer, batch_size, train=False, order=order, collate_fn=collator)
    return [{k: v.to(device) for k, v in b.items()} for b in loader]


def _encode(examples: list[Example], tokenizer: PreTrainedTokenizerBase, max_length: int) -> EncodedSplit:
    return encode(examples, tokenizer, max_length, _TEXT_ONLY, with_labels=False)


def _check(args: PrepArgs) -> None:
    """Refuse settings that cannot work, before anything is read or loaded."""
    checks = [(args.max_steps >= 0, f"--max_steps must be >= 0, got {args.max_steps}."),
              (0.0 < args.mask_prob < 1.0, f"--mask_prob must be in (0, 1), got {args.mask_prob}."),
              (args.batch_size >= 1, f"--batch_size must be >= 1, got {args.batch_size}."),
              (args.learning_rate > 0, f"--learning_rate must be > 0, got {args.learning_rate}."),
              (0.0 <= args.warmup_ratio <= 1.0, f"--warmup_ratio must be in [0, 1], got {args.warmup_ratio}."),
              (args.eval_steps >= 0, f"--eval_steps must be >= 0 (0: evaluate only at the end), got {args.eval_steps}."),
              (args.early_stopping_patience >= 0,
               f"--early_stopping_patience must be >= 0, got {args.early_stopping_patience}."),
              (args.save_steps >= 0, f"--save_steps must be >= 0 (0: no checkpoints), got {args.save_steps}."),
              (not args.early_stopping_patience or args.eval_steps > 0,
               "--early_stopping_patience needs --eval_steps N > 0: it counts dev evaluations.")]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if os.path.isdir(args.output_dir) and os.listdir(args.output_dir) and not (args.overwrite_output_dir
                                                                               or args.resume_from_checkpoint):
        raise ConfigError(f"Output directory {args.output_dir} exists and is not empty: choose another "
                          "--output_dir, pass --overwrite_output_dir, or continue its run with "
                          "--resume_from_checkpoint latest.")


class _RecordingCollator:
    """The MLM collator, remembering its random state before each batch it masks.

    The training loader collates one batch ahead of the one being trained on, so a checkpoint after n batches
    must hold the state from before batch n + 1 was masked, not the collator's current one."""

    def __init__(self, collator: DataCollatorForLanguageModeling) -> None:
        self.collator, self.calls, self.before = collator, 0, {}

    def _state(self) -> Optional[torch.Tensor]:
        return None if self.collator.generator is None else self.collator.generator.get_state()

    def __call__(self, examples: list) -> dict:
        self.before = {n: state for n, state in self.before.items() if n >= self.calls - 2}
        self.before[self.calls] = self._state()
        self.calls += 1
        return self.collator(examples)

    def state_before(self, batch: int) -> Optional[torch.Tensor]:
        """The state the collator had (or has now) before masking batch number `batch` (0-based)."""
        return self.before[batch] if batch in self.before else self._state()

    def restore(self, batch: int, state: Optional[torch.Tensor]) -> None:
        self.calls, self.before = batch, {}
        if state is not None:
            self.collator.create_rng("pt")
            self.collator.generator.set_state(state)


@dataclass
class _Progress:
    """Where an MLM run stands; a checkpoint's progress.json."""

    steps: int = 0
    epoch_start: int = 0  # steps taken when the current epoch began
    train_losses: list = field(default_factory=list)
    curve: list = field(default_factory=list)
    best_step: int = 0
    best_accuracy: float = 0.0
    stale: int = 0
    elapsed_s: float = 0.0  # wall time of every attempt before this one


def _settings(args: PrepArgs, accelerator) -> dict:
    """What a checkpoint records of its run, and what a resume must match (_RESUME_MAY_DIFFER aside)."""
    return {**asdict(args), "num_processes": accelerator.num_processes}


#: Settings that may change between a checkpoint of pretrain-generator and its resume.
_RESUME_MAY_DIFFER = frozenset({"output_dir", "overwrite_output_dir", "resume_from_checkpoint", "save_steps"})


class _MLMRun:
    """One MLM training run: its dev evaluations, best-on-dev copy, log and checkpoints, as methods, so that
    `pretrain_generator`'s loop reads in one screen."""

    def __init__(self, args: PrepArgs, accelerator, bare: PreTrainedModel, optimizer, scheduler,
                 collator: _RecordingCollator, sampler_generator: torch.Generator, dev_batches: list[dict]) -> None:
        self.args, self.accelerator, self.bare = args, accelerator, bare
        self.optimizer, self.scheduler, self.collator = optimizer, scheduler, collator
        self.sampler_generator, self.dev_batches = sampler_generator, dev_batches
        self.main, self.start = accelerator.is_main_process, time.perf_counter()
        self.log_path = os.path.join(args.output_dir, LOG_FILE)
        self.settings = _settings(args, accelerator)
        self.p, self.best_state, self.batches_per_epoch = _Progress(), None, None
        self.epoch_order = sampler_generator.get_state()
        self.rng: Optional[dict] = None

    def begin(self, resume: Optional[str]) -> None:
        """Evaluate the untrained generator (a fresh run) or load the checkpoint (a resumed one); start the log."""
        if resume:
            state, progress = load_checkpoint(resume, self.settings, self.accelerator.process_index,
                                              {"generator": self.bare}, _RESUME_MAY_DIFFER)
            self.p = _Progress(**progress)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.epoch_order, self.best_state, self.rng = state["epoch_order"], state["best_state"], state["rng"]
            self.collator.restore(self.p.steps, self.rng.pop("collator"))
            self.start -= self.p.elapsed_s
        else:
            before = evaluate_mlm(self.bare, self.dev_batches)
            self.p.curve = [{"step": 0, "dev_loss": before["loss"], "dev_accuracy": before["accuracy"]}]
            self.p.best_accuracy = before["accuracy"]
        if self.main:
            os.makedirs(self.args.output_dir, exist_ok=True)
            _write_log(self.log_path, self.p.curve, "w")

    def epoch(self, loader):
        """The current epoch's batches in its order; after a resume, the part of it not yet trained on."""
        self.batches_per_epoch = len(loader)
        self.sampler_generator.set_state(self.epoch_order)
        if self.rng is not None:  # resumed: the checkpoint's RNG states, just before the first batch
            set_rng_state(self.rng)
            self.rng = None
        done = self.p.steps - self.p.epoch_start
        return self.accelerator.skip_first_batches(loader, done) if done else loader

    def done(self) -> bool:
        patience = self.args.early_stopping_patience
        return self.p.steps >= self.args.max_steps or bool(patience and self.p.stale >= patience)

    def after_step(self, loss: float) -> Optional[dict]:
        """Count the step; evaluate and checkpoint when due. Returns the dev evaluation, if one ran."""
        args, p = self.args, self.p
        p.train_losses.append(loss)
        p.steps += 1
        if p.steps - p.epoch_start == self.batches_per_epoch:  # the sampler drew this epoch's order at its start,
            p.epoch_start, self.epoch_order = p.steps, self.sampler_generator.get_state()  # so this is the next's
        point = None
        if args.eval_steps and (p.steps % args.eval_steps == 0 or p.steps == args.max_steps):
            dev = evaluate_mlm(self.bare, self.dev_batches)
            point = {"step": p.steps, "train_loss": _mean(p.train_losses[-args.eval_steps:]),
                     "dev_loss": dev["loss"], "dev_accuracy": dev["accuracy"], "lr": self.scheduler.get_last_lr()[0],
                     "elapsed_s": round(time.perf_counter() - self.start, 1)}
            p.curve.append(point)
            if self.main:
                _write_log(self.log_path, [point], "a")
            if dev["accuracy"] > p.best_accuracy:
                p.best_step, p.best_accuracy, p.stale = p.steps, dev["accuracy"], 0
                self.best_state = {k: v.detach().clone() for k, v in self.bare.state_dict().items()}
            else:
                p.stale += 1
        if args.save_steps and p.steps % args.save_steps == 0 and not self.done():
            self.checkpoint()
        return point

    def checkpoint(self) -> None:
        self.p.elapsed_s = round(time.perf_counter() - self.start, 1)
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "epoch_order": self.epoch_order, "best_state": self.best_state}
        save_checkpoint(checkpoint_path(self.args.output_dir, self.p.steps), models={"generator": self.bare},
                        trainer_state=state, progress=asdict(self.p), settings=self.settings,
                        rank=self.accelerator.process_index, is_main=self.main,
                        barrier=self.accelerator.wait_for_everyone, keep=1,
                        rank_state={"collator": self.collator.state_before(self.p.steps)})

    def keep_best(self) -> None:
        """With dev evaluations, the generator kept is the best one on dev (unless none beat the untrained one)."""
        if self.args.eval_steps and self.best_state is not None:
            self.bare.load_state_dict(self.best_state)


def pretrain_generator(args: PrepArgs) -> dict:
    """Build, train and save the generator; returns (and writes) the MLM results."""
    _check(args)
    resume = _resume_point(args)
    train_text, dev_text = _read(args)
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.source, "--from")
    if tokenizer.mask_token_id is None:
        raise ModelError(f"The tokenizer at {args.source} has no mask token: it cannot train a masked LM.")
    model, reused = build_masked_lm(args.source)
    source_layers = num_layers(model)
    if args.layers is not None:
        if not 1 <= args.layers <= source_layers:
            raise ConfigError(f"--layers {args.layers} must be between 1 and {source_layers}, the source's depth "
                              "(it keeps the first k encoder layers).")
        select_layers(model, parse_layers(list(range(args.layers)), source_layers))
    check_max_length(args.max_seq_length, {"generator": model})
    accelerator = make_accelerator(args)
    device = accelerator.device
    model.train()

    train_split = _encode(_limit(train_text, args.max_train_samples, args.seed), tokenizer, args.max_seq_length)
    dev_split = _encode(_limit(dev_text, args.max_eval_samples, None), tokenizer, args.max_seq_length)
    dev_batches = _batches(dev_split, tokenizer, DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=args.mask_prob, mask_replace_prob=1.0, random_replace_prob=0.0, seed=args.seed),
        args.batch_size, device)
    collator = _RecordingCollator(DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mask_prob,
                                                                  seed=args.seed))
    loader = make_loader(train_split, tokenizer, args.batch_size, train=True, seed=args.seed,
                         group_by_length=args.group_by_length, collate_fn=collator)
    sampler_generator = loader.sampler.generator
    optimizer = make_optimizer(model, args.learning_rate, 0.0, device, args.optim)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * args.max_steps), args.max_steps)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    bare = accelerator.unwrap_model(model)  # every process trains and evaluates; the main one writes

    run = _MLMRun(args, accelerator, bare, optimizer, scheduler, collator, sampler_generator, dev_batches)
    run.begin(resume)
    bar = progress_bar(total=args.max_steps, initial=run.p.steps, desc="pretrain-generator",
                       show=accelerator.is_local_main_process)
    with bar:
        while not run.done():
            for batch in run.epoch(loader):
                with accelerator.autocast():
                    loss, _, count = mlm_loss(model, batch, bare)
                loss = loss / max(count, 1)
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                point = run.after_step(loss.item())
                bar.update(1)
                if point is not None:
                    bar.set_postfix(dev_acc=f"{point['dev_accuracy']:.3f}", loss=f"{point['train_loss']:.3f}")
                if run.done():
                    break
    run.keep_best()
    return _finish(args, run, tokenizer, reused, source_layers, len(train_split), len(dev_split))


def _resume_point(args: PrepArgs) -> Optional[str]:
    """The checkpoint to continue from (None: start afresh); refused before anything loads if it cannot work."""
    resume = resolve_resume(args.resume_from_checkpoint, args.output_dir)
    if args.resume_from_checkpoint and os.path.isfile(os.path.join(args.output_dir, RESULTS_FILE)):
        raise ConfigError(f"{args.output_dir} holds a finished generator ({RESULTS_FILE}): there is nothing to "
                          "resume. Use it as it is, or train a new one into another --output_dir.")
    if args.resume_from_checkpoint and not resume and os.path.isdir(args.output_dir):
        others = sorted(set(os.listdir(args.output_dir)) - {LOG_FILE, CHECKPOINTS})
        if others:
            raise ConfigError(f"--resume_from_checkpoint latest: {args.output_dir} has no checkpoint to continue "
                              f"from, and holds files of something else ({', '.join(others[:5])}) that a fresh "
                              "run would replace. Choose another --output_dir, or pass --overwrite_output_dir "
                              "without --resume_from_checkpoint.")
    if resume:
        processes = make_accelerator(args)
        check_resumable(resume, _settings(args, processes), processes.process_index, _RESUME_MAY_DIFFER)
    return resume


def _finish(args: PrepArgs, run: _MLMRun, tokenizer, reused: bool, source_layers: int, n_train: int,
            n_dev: int) -> dict:
    """Save the generator (replacing the directory, checkpoints included), reload it, write mlm_results.json."""
    bare, p = run.bare, run.p
    after = evaluate_mlm(bare, run.dev_batches)
    if run.main:
        save_model(bare, tokenizer, args.output_dir)  # replaces the directory: write the log into it again
        _write_log(run.log_path, p.curve, "w")
    run.accelerator.wait_for_everyone()
    reloaded = load_generator(args.output_dir)
    window = max(1, min(10, len(p.train_losses) // 3))
    before = p.curve[0]
    patience = args.early_stopping_patience
    results = {
        "source": args.source, "head": "reused" if reused else "new, tied to the input embeddings",
        "tied": is_tied(reloaded), "layers": f"{num_layers(bare)} of {source_layers}",
        "task": args.task_name or args.train_file, "train_examples": n_train, "dev_examples": n_dev,
        "steps": p.steps,
        "saved_step": p.best_step if args.eval_steps and run.best_state is not None else p.steps,
        "stopped_early": bool(patience and p.stale >= patience),
        "epochs": p.steps * args.batch_size / max(n_train, 1),
        "train_loss_first": _mean(p.train_losses[:window]), "train_loss_last": _mean(p.train_losses[-window:]),
        "dev_before": {"loss": before["dev_loss"], "accuracy": before["dev_accuracy"],
                       "masked_tokens": after["masked_tokens"]},
        "dev_after": after, "curve": p.curve, "wall_s": round(time.perf_counter() - run.start, 1),
        "settings": {k: v for k, v in asdict(args).items() if k not in ("source", "output_dir")},
    }
    if run.main:
        with open(os.path.join(args.output_dir, RESULTS_FILE), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results


def _write_log(path: str, points: list[dict], mode: str) -> None:
    with open(path, mode, encoding="utf-8") as log:
        log.writelines(json.dumps(point) + "\n" for point in points)


def _mean(values: list[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mate-kd pretrain-generator",
        description="Build a masked-LM generator from an encoder (reusing its MLM head, or a new head tied to the "
                    "input embeddings) and train it by MLM on a task's text. Dev MLM loss/accuracy before and "
                    f"after go to OUTPUT_DIR/{RESULTS_FILE}.")
    parser.add_argument("--from", dest="source", required=True, help="Encoder, classifier or MLM directory.")
    parser.add_argument("--output_dir", required=True, help="Where the generator is saved (safetensors + tokenizer).")
    parser.add_argument("--task_name", help="GLUE task whose train/dev text is used (with --data_dir).")
    parser.add_argument("--data_dir", help="The task's directory in the GLUE layout.")
    parser.add_argument("--train_file", help="Own data: training text (.csv, .tsv, .json, .jsonl).")
    parser.add_argument("--validation_file", help="Own data: dev text, for the MLM loss/accuracy report.")
    parser.add_argument("--text_column", default="text", help="Own data: column with the text.")
    parser.add_argument("--text_pair_column", help="Own data: column with the second text of a pair.")
    parser.add_argument("--layers", type=int, help="Keep only the first k encoder layers (default: all).")
    parser.add_argument("--max_steps", type=int, default=500, help="MLM training steps (batches).")
    parser.add_argument("--learning_rate", type=float, default=5e-5, help="AdamW peak learning rate.")
    parser.add_argument("--warmup_ratio", type=float, default=0.06, help="Linear warm-up fraction of the steps.")
    parser.add_argument("--batch_size", type=int, default=32, help="Sequences per step.")
    parser.add_argument("--mask_prob", type=float, default=0.15,
                        help="Masking probability (training: BERT's 80/10/10 replacement; dev: all [MASK]).")
    parser.add_argument("--max_seq_length", type=int, default=128, help="Longest tokenised input.")
    parser.add_argument("--max_train_samples", type=int, help="Use N training examples (seeded shuffle).")
    parser.add_argument("--max_eval_samples", type=int, help="Use the first N dev examples.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of initialisation, shuffling and masking.")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="Write into a non-empty --output_dir.")
    parser.add_argument("--eval_steps", type=int, default=0,
                        help=f"Dev MLM loss/accuracy every N steps, into OUTPUT_DIR/{LOG_FILE} (0: only before and "
                             "after training).")
    parser.add_argument("--early_stopping_patience", type=int, default=0,
                        help="Stop when dev accuracy has not improved for N evaluations (0: run all --max_steps). "
                             "With --eval_steps, the generator saved is the best one on dev.")
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default="no",
                        help="Autocast precision (through accelerate).")
    parser.add_argument("--group_by_length", action="store_true",
                        help="Batch texts of similar length together (far less padding when short and long texts mix).")
    parser.add_argument("--no_cuda", action="store_true", help="Run on CPU even when a GPU is present.")
    parser.add_argument("--optim", choices=["adamw_torch_fused", "adamw_torch"], default="adamw_torch_fused",
                        help="AdamW implementation, as for `mate-kd train`.")
    parser.add_argument("--save_steps", type=int, default=0,
                        help="Checkpoint every N steps into OUTPUT_DIR/checkpoints (the newest is kept; 0: none).")
    parser.add_argument("--resume_from_checkpoint",
                        help="Continue a stopped run from a checkpoint: `latest` (its newest; a fresh start when it "
                             "has none) or a checkpoint directory. The result equals the uninterrupted run's.")
    results = pretrain_generator(PrepArgs(**vars(parser.parse_args(argv))))
    print(json.dumps(results, indent=2))
