"""Run settings: one dataclass, parsed from YAML and the command line with run_glue's flag names.

Flags mirror transformers' run_glue (and the released MATE-KD scripts) so existing command
lines work unchanged; `--per_gpu_*` names are accepted as aliases of `--per_device_*`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Sequence

import yaml
from transformers import HfArgumentParser

from .errors import ConfigError

Method = Literal["mate-kd", "kd", "finetune"]
Divergence = Literal["soft_ce", "kl", "mse"]
Precision = Literal["no", "fp16", "bf16"]
Optimizer = Literal["adamw_torch_fused", "adamw_torch"]

#: Loss weights (ce, kd, adv) per method when the user gives none.
DEFAULT_WEIGHTS = {"mate-kd": (1 / 3, 1 / 3, 1 / 3), "kd": (0.5, 0.5, 0.0), "finetune": (1.0, 0.0, 0.0)}


def _f(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class RunArgs:
    """Every setting of a run. Defaults follow run_glue; configs/ hold the paper's values."""

    # Models
    model_name_or_path: Optional[str] = _f(None, "Student initialisation (directory or hub name).")
    teacher_path: Optional[str] = _f(None, "Fine-tuned teacher classifier (kd, mate-kd).")
    generator_path: Optional[str] = _f(None, "Masked-LM generator (mate-kd).")
    tokenizer_name: Optional[str] = _f(None, "Tokenizer directory; defaults to the student's.")
    config_name: Optional[str] = _f(None, "Accepted for compatibility; configs come from the model directories.")
    model_type: Optional[str] = _f(None, "Accepted for compatibility; Auto classes detect the architecture.")
    cache_dir: Optional[str] = _f(None, "Where hub downloads are cached.")
    trust_remote_code: bool = _f(False, "Allow models whose code lives in their repository.")

    # Data
    task_name: Optional[str] = _f(None, "GLUE task (cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli, ax).")
    data_dir: Optional[str] = _f(None, "Task directory in the original GLUE layout, e.g. glue_data/MNLI.")
    train_file: Optional[str] = _f(None, "Own data: training file (.csv, .tsv, .json, .jsonl).")
    validation_file: Optional[str] = _f(None, "Own data: dev file.")
    test_file: Optional[str] = _f(None, "Own data: test file (labels not needed).")
    text_column: str = _f("text", "Own data: column with the text.")
    text_pair_column: Optional[str] = _f(None, "Own data: column with the second text of a pair.")
    label_column: str = _f("label", "Own data: column with the label.")
    label_list: Optional[str] = _f(None, "Own data: comma-separated label names in model order (default: sorted).")
    regression: bool = _f(False, "Own data: the label is a real number (MSE, Pearson/Spearman).")
    max_seq_length: int = _f(128, "Longest tokenised input; longer ones are truncated.")
    pad_to_max_length: bool = _f(False, "Pad every batch to max_seq_length instead of its longest example.")
    group_by_length: bool = _f(False, "Batch examples of similar length together (less padding).")
    max_train_samples: Optional[int] = _f(None, "Use N training examples: the first N after a fixed shuffle, the "
                                                  "same subset whatever --seed is.")
    max_eval_samples: Optional[int] = _f(None, "Use only the first N examples of each dev split.")
    do_lower_case: bool = _f(False, "Accepted for compatibility; the tokenizer's own setting is used.")
    overwrite_cache: bool = _f(False, "Accepted for compatibility; tokenisation is not cached on disk.")

    # Run
    output_dir: Optional[str] = _f(None, "Where the best and final students, logs and results go.")
    overwrite_output_dir: bool = _f(False, "Allow writing into a non-empty output directory.")
    do_train: bool = _f(False, "Train (the train command implies it).")
    do_eval: bool = _f(False, "Evaluate on dev after training (the train command always does).")
    do_predict: bool = _f(False, "Write GLUE submission files for the test split after training.")
    evaluate_during_training: bool = _f(False, "Evaluate on dev every logging_steps and keep the best student.")
    method: Method = _f("mate-kd", "mate-kd, kd (CE + D on clean text) or finetune (CE only).")
    seed: int = _f(42, "Random seed.")

    # Student optimisation
    per_device_train_batch_size: int = _f(32, "Training batch per process.", aliases=["--per_gpu_train_batch_size"])
    per_device_eval_batch_size: int = _f(64, "Evaluation batch per process.", aliases=["--per_gpu_eval_batch_size"])
    learning_rate: float = _f(2e-5, "Student peak learning rate.")
    weight_decay: float = _f(0.0, "Student AdamW weight decay (0 = Adam).")
    adam_epsilon: float = _f(1e-8, "AdamW epsilon.")
    optim: Optimizer = _f("adamw_torch_fused", "adamw_torch_fused (one fused kernel per step, on CPU and CUDA; "
                                               "falls back to adamw_torch on other devices) or adamw_torch.")
    max_grad_norm: float = _f(5.0, "Student gradient-norm clip.")
    num_train_epochs: float = _f(3.0, "Passes over the training data (generator and student batches together).")
    max_steps: int = _f(-1, "If > 0: stop after this many student updates (overrides epochs).")
    warmup_steps: int = _f(0, "Linear warm-up length in student updates.")
    warmup_ratio: float = _f(0.0, "Warm-up as a fraction of student updates (used when warmup_steps is 0).")
    gradient_accumulation_steps: int = _f(1, "Only 1 is supported: the n_G/n_S alternation counts batches.")
    logging_steps: int = _f(500, "Log (and evaluate, with evaluate_during_training) every N student updates.")
    save_steps: int = _f(500, "Checkpoint every N student updates (0 = never).")
    save_total_limit: int = _f(2, "Checkpoints kept (the newest).")
    resume_from_checkpoint: Optional[str] = _f(None, "A checkpoint directory, or `latest` (newest in output_dir).")
    skip_nonfinite_steps: int = _f(0, "Skip up to N updates whose loss is NaN/inf (checks every step); 0 = stop "
                                      "at the first one, detected at the next log or save.")
    metric_for_best_model: Optional[str] = _f(None, "Dev metric that picks the best student (default per task).")

    # MATE-KD
    mask_prob: float = _f(0.3, "Probability of masking each non-special token.")
    n_generator_steps: int = _f(10, "Generator batches per cycle (0 = generator sampling without adversarial updates).")
    n_student_steps: int = _f(100, "Student batches per cycle.")
    generator_learning_rate: float = _f(5e-7, "Generator AdamW learning rate.")
    generator_max_grad_norm: float = _f(5.0, "Generator gradient-norm clip.")
    gumbel_temperature: float = _f(1.0, "Straight-through Gumbel-softmax temperature.")
    kd_temperature: float = _f(1.0, "Temperature of the teacher-student divergence.")
    divergence: Divergence = _f("soft_ce", "soft_ce (as released), kl or mse; regression tasks always use mse.")
    ce_weight: Optional[float] = _f(None, "Weight of CE(S(x), y); default 1/3 mate-kd, 1/2 kd, 1 finetune.")
    kd_weight: Optional[float] = _f(None, "Weight of D(S(x), T(x)); default 1/3 mate-kd, 1/2 kd.")
    adv_weight: Optional[float] = _f(None, "Weight of D(S(x'), T(x')); default 1/3 mate-kd.")
    forbid_special_tokens: bool = _f(False, "Never sample special tokens into masked slots.")
    adversary_probe_samples: int = _f(0, "With --evaluate_during_training: at every evaluation, measure "
                                          "D(S(x'), T(x')) on the first N training examples for x' from the current "
                                          "and from the initial generator, and the share of masked tokens replaced "
                                          "(log.jsonl `adversary`; 0 = off). Does not change training.")
    cache_teacher_logits: bool = _f(True, "Compute the frozen teacher's logits on the clean training text once, "
                                          "before training, instead of at every student step "
                                          "(--no_cache_teacher_logits to turn off).")

    # Devices
    mixed_precision: Precision = _f("no", "no, fp16 or bf16 autocast (through accelerate).")
    fp16: bool = _f(False, "Same as --mixed_precision fp16 (released scripts' flag).")
    no_cuda: bool = _f(False, "Run on CPU even when a GPU is present.")
    local_rank: int = _f(-1, "Accepted for compatibility; use accelerate launch or torchrun.")
    dataloader_num_workers: int = _f(0, "Data loader worker processes.")

    def weights(self) -> tuple[float, float, float]:
        """(ce, kd, adv) loss weights after method defaults."""
        ce, kd, adv = DEFAULT_WEIGHTS[self.method]
        ce = ce if self.ce_weight is None else self.ce_weight
        kd = kd if self.kd_weight is None else self.kd_weight
        adv = adv if self.adv_weight is None else self.adv_weight
        if self.method == "finetune":
            kd, adv = 0.0, 0.0
        if self.method == "kd":
            adv = 0.0
        return ce, kd, adv

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate(args: RunArgs, *, training: bool) -> RunArgs:
    """Resolve legacy flags and refuse settings that cannot work, before anything is loaded."""
    if args.fp16:
        args.mixed_precision = "fp16"
    if not args.task_name and not args.train_file and not args.validation_file and not args.test_file:
        raise ConfigError("No data: pass --task_name with --data_dir (GLUE layout), or --train_file/--validation_file.")
    if args.task_name and not args.data_dir:
        raise ConfigError(f"--task_name {args.task_name} needs --data_dir, the task's GLUE directory (e.g. glue_data/MNLI).")
    if not args.model_name_or_path:
        raise ConfigError("--model_name_or_path is required (the student, or the model to evaluate).")
    if not args.output_dir:
        raise ConfigError("--output_dir is required.")
    for flag in ("max_train_samples", "max_eval_samples"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag} {value} would leave no examples: pass N >= 1 to keep the first N "
                              "examples, or leave the flag out to use them all.")
    if training:
        if args.method in ("kd", "mate-kd") and not args.teacher_path:
            raise ConfigError(f"--method {args.method} needs --teacher_path, a fine-tuned teacher "
                              "(make one with: mate-kd train --method finetune).")
        if args.method == "mate-kd" and not args.generator_path:
            raise ConfigError("--method mate-kd needs --generator_path, a masked-LM with the same vocabulary.")
        if args.gradient_accumulation_steps != 1:
            raise ConfigError("--gradient_accumulation_steps must be 1: use a larger --per_device_train_batch_size "
                              "or more processes; the n_G/n_S alternation counts batches.")
        if not 0.0 < args.mask_prob <= 1.0:
            raise ConfigError(f"--mask_prob must be in (0, 1], got {args.mask_prob}.")
        if args.n_generator_steps < 0 or args.n_student_steps < 1:
            raise ConfigError("--n_generator_steps must be >= 0 and --n_student_steps >= 1.")
        if min(args.weights()) < 0:
            raise ConfigError("Loss weights must be non-negative.")
        if args.logging_steps < 1:
            raise ConfigError("--logging_steps must be >= 1.")
        if args.per_device_train_batch_size < 1:
            raise ConfigError("--per_device_train_batch_size must be >= 1.")
    return args


def parse_args(argv: Sequence[str], *, training: bool = True) -> RunArgs:
    """YAML from --config first, then command-line flags on top."""
    parser = HfArgumentParser(RunArgs, prog="mate-kd", allow_abbrev=False)
    parser.add_argument("--config", default=None, help="YAML file of settings; flags override it.")
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        parser.set_defaults(**load_yaml(pre.config))
    namespace = parser.parse_args(argv)
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(RunArgs)}
    return validate(RunArgs(**values), training=training)


def load_yaml(path: str) -> dict[str, Any]:
    """Read a config file, refusing keys that are not settings (typos would otherwise be ignored)."""
    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} not found.") from None
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of setting: value.")
    known = {f.name for f in dataclasses.fields(RunArgs)}
    aliases = {"per_gpu_train_batch_size": "per_device_train_batch_size",
               "per_gpu_eval_batch_size": "per_device_eval_batch_size"}
    values = {aliases.get(k, k): v for k, v in values.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"Config file {path}: unknown settings {unknown}. Known settings: `mate-kd train --help`.")
    return values


def dump(args: RunArgs, path: str) -> None:
    """Write the resolved settings next to the results, so a run can be repeated."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(args.to_dict(), f, sort_keys=False)
