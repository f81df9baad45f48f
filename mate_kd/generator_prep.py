"""`mate-kd pretrain-generator`: turn an encoder into a masked-LM generator adapted to a task's text.

MATE-KD's generator must be a masked LM over the teacher's vocabulary. Many usable encoders
(sentence-transformers models, fine-tuned classifiers) ship without an MLM head, and an
untrained head proposes noise rather than plausible text. This builds the masked LM
(reusing a head when the checkpoint has one, else a new head whose decoder is tied to the
input embeddings, as in BERT), optionally keeps only its first k layers, and trains it by
masked-language modelling on the task's own text, reporting MLM loss and accuracy on the dev
text before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import (AutoModelForMaskedLM, DataCollatorForLanguageModeling, PreTrainedModel,
                          PreTrainedTokenizerBase, get_linear_schedule_with_warmup)
from transformers.utils import logging as hf_logging

from .checkpoint import save_model
from .data import EncodedSplit, encode
from .errors import ConfigError, ModelError
from .models import check_max_length, check_model_dir, forward_inputs, load_generator, load_tokenizer
from .perturb import masked_lm_logits
from .student_init import num_layers, parse_layers, select_layers
from .tasks import Example, custom_task, get_task, read_split, read_table

RESULTS_FILE = "mlm_results.json"
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


def mlm_loss(model: PreTrainedModel, batch: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Summed cross-entropy and correct predictions at the masked positions, and their count."""
    mask = batch["labels"] != -100
    logits = masked_lm_logits(model, batch["input_ids"], batch["attention_mask"], mask, **_inputs(model, batch))
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


def _batches(split: EncodedSplit, collator: DataCollatorForLanguageModeling, batch_size: int,
             device: torch.device) -> list[dict]:
    loader = DataLoader(split, batch_size=batch_size, shuffle=False, collate_fn=collator)
    return [{k: v.to(device) for k, v in b.items()} for b in loader]


def _encode(examples: list[Example], tokenizer: PreTrainedTokenizerBase, max_length: int) -> EncodedSplit:
    return encode(examples, tokenizer, max_length, _TEXT_ONLY, with_labels=False)


def pretrain_generator(args: PrepArgs) -> dict:
    """Build, train and save the generator; returns (and writes) the MLM results."""
    if args.max_steps < 0:
        raise ConfigError(f"--max_steps must be >= 0, got {args.max_steps}.")
    if not 0.0 < args.mask_prob < 1.0:
        raise ConfigError(f"--mask_prob must be in (0, 1), got {args.mask_prob}.")
    if args.batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {args.batch_size}.")
    if os.path.isdir(args.output_dir) and os.listdir(args.output_dir) and not args.overwrite_output_dir:
        raise ConfigError(f"Output directory {args.output_dir} exists and is not empty: choose another "
                          "--output_dir or pass --overwrite_output_dir.")
    train_text, dev_text = _read(args)
    start = time.perf_counter()
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
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()

    train_split = _encode(_limit(train_text, args.max_train_samples, args.seed), tokenizer, args.max_seq_length)
    dev_split = _encode(_limit(dev_text, args.max_eval_samples, None), tokenizer, args.max_seq_length)
    dev_batches = _batches(dev_split, DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=args.mask_prob, mask_replace_prob=1.0, random_replace_prob=0.0, seed=args.seed),
        args.batch_size, device)
    before = evaluate_mlm(model, dev_batches)

    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mask_prob, seed=args.seed)
    loader = DataLoader(train_split, batch_size=args.batch_size, shuffle=True, collate_fn=collator,
                        generator=torch.Generator().manual_seed(args.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * args.max_steps), args.max_steps)
    train_losses: list[float] = []
    while len(train_losses) < args.max_steps:
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            loss, _, count = mlm_loss(model, batch)
            loss = loss / max(count, 1)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            train_losses.append(loss.item())
            if len(train_losses) >= args.max_steps:
                break
    after = evaluate_mlm(model, dev_batches)

    save_model(model, tokenizer, args.output_dir)
    reloaded = load_generator(args.output_dir)
    window = max(1, min(10, len(train_losses) // 3))
    results = {
        "source": args.source, "head": "reused" if reused else "new, tied to the input embeddings",
        "tied": is_tied(reloaded), "layers": f"{num_layers(model)} of {source_layers}",
        "task": args.task_name or args.train_file, "train_examples": len(train_split),
        "dev_examples": len(dev_split), "steps": len(train_losses),
        "train_loss_first": _mean(train_losses[:window]), "train_loss_last": _mean(train_losses[-window:]),
        "dev_before": before, "dev_after": after, "wall_s": round(time.perf_counter() - start, 1),
        "settings": {k: v for k, v in asdict(args).items() if k not in ("source", "output_dir")},
    }
    with open(os.path.join(args.output_dir, RESULTS_FILE), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    return results


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
    results = pretrain_generator(PrepArgs(**vars(parser.parse_args(argv))))
    print(json.dumps(results, indent=2))
