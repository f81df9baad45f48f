"""Run settings: one dataclass, parsed from YAML and the command line with run_glue's flag names.

Flags mirror transformers' run_glue (and the released MATE-KD scripts) so existing command
lines work unchanged; `--per_gpu_*` names are accepted as aliases of `--per_device_*`.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Sequence, Union, get_args, get_origin, get_type_hints

import yaml
from transformers import HfArgumentParser

from .errors import ConfigError

Method = Literal["mate-kd", "kd", "finetune"]
Divergence = Literal["soft_ce", "kl", "mse"]
Precision = Literal["no", "fp16", "bf16"]
Optimizer = Literal["adamw_torch_fused", "adamw_torch"]
#: transformers' get_scheduler names that need nothing beyond warm-up and length (reduce_lr_on_plateau and greedy
#: step on a metric, cosine_with_min_lr and warmup_stable_decay need settings of their own).
Scheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                    "inverse_sqrt"]
GeneratorScheduler = Literal["constant", "linear"]
ReportTo = Literal["none", "tensorboard", "wandb", "all"]

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
    dataset_name: Optional[str] = _f(None, "A dataset for `datasets`: a hub name (nyu-mll/glue), a directory written "
                                           "by save_to_disk, or a directory of data files.")
    dataset_config_name: Optional[str] = _f(None, "Configuration of --dataset_name (sst2, mnli, ... for nyu-mll/glue).")
    train_file: Optional[str] = _f(None, "Own data: training file (.csv, .tsv, .json, .jsonl, .parquet, .arrow).")
    validation_file: Optional[str] = _f(None, "Own data: dev file.")
    test_file: Optional[str] = _f(None, "Own data: test file (labels not needed).")
    text_column: str = _f("text", "Own data: column with the text.")
    text_pair_column: Optional[str] = _f(None, "Own data: column with the second text of a pair.")
    label_column: str = _f("label", "Own data: column with the label.")
    label_list: Optional[str] = _f(None, "Own data: comma-separated label names in model order (default: sorted).")
    regression: bool = _f(False, "Own data: the label is a real number (MSE, Pearson/Spearman).")
    max_seq_length: int = _f(128, "Longest tokenised input (at least 8); longer ones are truncated.")
    pad_to_max_length: bool = _f(False, "Pad every batch to max_seq_length instead of its longest example.")
    group_by_length: bool = _f(False, "Batch examples of similar length together (less padding).")
    max_train_samples: Optional[int] = _f(None, "Use N training examples: the first N after a fixed shuffle, the "
                                                  "same subset whatever --seed is.")
    max_eval_samples: Optional[int] = _f(None, "Use only the first N examples of each dev split.")
    do_lower_case: bool = _f(False, "Accepted for compatibility; the tokenizer's own setting is used.")
    overwrite_cache: bool = _f(False, "Tokenise again instead of loading the tokenised splits from the datasets cache.")

    # Run
    output_dir: Optional[str] = _f(None, "Where the best and final students, logs and results go.")
    overwrite_output_dir: bool = _f(False, "Allow writing into a non-empty output directory.")
    do_train: bool = _f(False, "Train (the train command implies it).")
    do_eval: bool = _f(False, "Evaluate on dev after training (the train command always does).")
    do_predict: bool = _f(False, "Write GLUE submission files for the test split after training.")
    evaluate_during_training: bool = _f(False, "Evaluate on dev every eval_steps and keep the best student.")
    method: Method = _f("mate-kd", "mate-kd, kd (CE + D on clean text) or finetune (CE only).")
    seed: int = _f(42, "Random seed.")

    # Tracking
    report_to: ReportTo = _f("none", "Also send every log.jsonl event to TensorBoard (OUTPUT_DIR/runs/RUN_NAME), "
                                     "Weights & Biases, or all of them that are installed (accelerate's trackers).")
    run_name: Optional[str] = _f(None, "Name of the run in TensorBoard and W&B (default: the output directory's name).")

    # Hub
    push_to_hub: bool = _f(False, "Upload best/ (with its model card) to the Hugging Face Hub after training.")
    hub_model_id: Optional[str] = _f(None, "Repository for --push_to_hub, e.g. user/name (default: your "
                                           "namespace / the output directory's name).")
    hub_private_repo: bool = _f(False, "Create the --push_to_hub repository as private.")

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
    lr_scheduler_type: Scheduler = _f("linear", "Student learning-rate schedule over its updates (transformers' "
                                                "get_scheduler names).")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per update, student and generator alike: n_G, n_S, "
                                             "--max_steps, the schedules and checkpoints count updates.")
    logging_steps: int = _f(500, "Log every N student updates.")
    eval_steps: Optional[int] = _f(None, "With --evaluate_during_training: evaluate every N student updates "
                                         "(default: --logging_steps).")
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
    generator_lr_scheduler_type: GeneratorScheduler = _f("constant", "Generator learning-rate schedule: constant, or "
                                                                     "linear decay to 0 over its updates.")
    generator_max_grad_norm: float = _f(5.0, "Generator gradient-norm clip.")
    gumbel_temperature: float = _f(1.0, "Straight-through Gumbel-softmax temperature.")
    kd_temperature: float = _f(1.0, "Temperature of the teacher-student divergence.")
    divergence: Divergence = _f("soft_ce", "soft_ce (as released), kl or mse; regression tasks always use mse.")
    ce_weight: Optional[float] = _f(None, "Weight of CE(S(x), y); default 1/3 mate-kd, 1/2 kd, 1 finetune.")
    kd_weight: Optional[float] = _f(None, "Weight of D(S(x), T(x)); default 1/3 mate-kd, 1/2 kd.")
    adv_weight: Optional[float] = _f(None, "Weight of D(S(x'), T(x')); default 1/3 mate-kd.")
    forbid_special_tokens: bool = _f(False, "Never sample special tokens into masked slots (the pad token is never "
                                            "sampled, with or without this flag).")
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
    torch_compile: bool = _f(False, "torch.compile the student, the teacher and the generator's encoder (slower on "
                                    "CPU: docs/performance.md).")
    torch_compile_backend: Optional[str] = _f(None, "torch.compile backend (default inductor); giving one turns "
                                                    "--torch_compile on, as in transformers.")

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


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: from `low` (excluded when `low_open`) up to `high`, or one of `also`."""

    low: float
    high: Optional[float] = None
    low_open: bool = False
    also: tuple[float, ...] = ()
    meaning: str = ""

    def allows(self, value: float) -> bool:
        if value in self.also:
            return True
        above = value > self.low if self.low_open else value >= self.low
        return math.isfinite(value) and above and (self.high is None or value <= self.high)

    def rule(self) -> str:
        if self.high is None:
            text = f"{'>' if self.low_open else '>='} {_fmt(self.low)}"
        else:
            text = f"in {'(' if self.low_open else '['}{_fmt(self.low)}, {_fmt(self.high)}]"
        return " or ".join([_fmt(a) for a in self.also] + [text])


def _fmt(x: float) -> str:
    """1 not 1.0, 4294967295 not 4.29497e+09, 2e-05 as Python writes it."""
    return str(int(x)) if math.isfinite(x) and float(x).is_integer() else str(x)


#: Shortest --max_seq_length: a pair needs up to 4 special tokens (RoBERTa: <s> a </s></s> b </s>) plus a few
#: tokens of each text; with fewer positions than special tokens the tokenizer cannot truncate a pair at all.
MIN_SEQ_LENGTH = 8
_POSITIVE = Range(0, low_open=True)
_FIRST_N = "0 would leave no examples: N keeps the first N, and leaving the flag out keeps them all"
#: Allowed values of every numeric setting (None, where a setting is optional, means "not given").
RANGES: dict[str, Range] = {
    "max_seq_length": Range(MIN_SEQ_LENGTH, meaning="a pair needs room for up to 4 special tokens and both texts"),
    "max_train_samples": Range(1, meaning=_FIRST_N),
    "max_eval_samples": Range(1, meaning=_FIRST_N),
    "seed": Range(0, 2 ** 32 - 1, meaning="the seeds numpy accepts"),
    "per_device_train_batch_size": Range(1),
    "per_device_eval_batch_size": Range(1),
    "learning_rate": _POSITIVE,
    "weight_decay": Range(0),
    "adam_epsilon": _POSITIVE,
    "max_grad_norm": _POSITIVE,
    "num_train_epochs": _POSITIVE,
    "max_steps": Range(1, also=(-1,), meaning="student updates; -1 trains for --num_train_epochs instead"),
    "warmup_steps": Range(0),
    "warmup_ratio": Range(0, 1, meaning="a fraction of the student updates"),
    "gradient_accumulation_steps": Range(1),
    "logging_steps": Range(1),
    "eval_steps": Range(1, meaning="student updates; leave it out to evaluate every --logging_steps"),
    "save_steps": Range(0, meaning="0 never saves a checkpoint"),
    "save_total_limit": Range(1, meaning="the newest N checkpoints are kept; to write none, pass --save_steps 0"),
    "skip_nonfinite_steps": Range(0),
    "mask_prob": Range(0, 1, low_open=True),
    "n_generator_steps": Range(0, meaning="0 samples from the generator but never updates it"),
    "n_student_steps": Range(1),
    "generator_learning_rate": _POSITIVE,
    "generator_max_grad_norm": _POSITIVE,
    "gumbel_temperature": _POSITIVE,
    "kd_temperature": _POSITIVE,
    "ce_weight": Range(0),
    "kd_weight": Range(0),
    "adv_weight": Range(0),
    "adversary_probe_samples": Range(0, meaning="0 turns the probe off"),
    "dataloader_num_workers": Range(0),
}


def _where(name: str, value: Any, origin: Mapping[str, str]) -> str:
    """How the user gave a setting: `--flag value`, or the config file and key."""
    if name in origin:
        return f"Config file {origin[name]}, key {name}: {_fmt(value)}"
    return f"--{name} {_fmt(value)}"


def validate(args: RunArgs, *, training: bool, origin: Optional[Mapping[str, str]] = None) -> RunArgs:
    """Resolve legacy flags and refuse settings that cannot work, before anything is loaded.

    `origin` maps the settings taken from a config file to that file's path, so that a message names it.
    """
    origin = origin or {}
    if args.fp16:
        args.mixed_precision = "fp16"
    for name, allowed in RANGES.items():
        value = getattr(args, name)
        if value is not None and not allowed.allows(value):
            problem = "is out of range" if math.isfinite(value) else "is not a finite number"
            meaning = f" ({allowed.meaning})" if allowed.meaning else ""
            raise ConfigError(f"{_where(name, value, origin)} {problem}: it must be {allowed.rule()}{meaning}.")
    files = [f for f in ("train_file", "validation_file", "test_file") if getattr(args, f)]
    if not args.task_name and not args.dataset_name and not files:
        raise ConfigError("No data: pass --task_name with --data_dir (GLUE layout), --dataset_name (a `datasets` "
                          "dataset), or --train_file/--validation_file.")
    if args.dataset_name and (args.data_dir or files):
        given = ", ".join(f"--{f}" for f in (["data_dir"] if args.data_dir else []) + files)
        raise ConfigError(f"--dataset_name {args.dataset_name} and {given} both name the data: keep one.")
    if args.dataset_config_name and not args.dataset_name:
        raise ConfigError(f"--dataset_config_name {args.dataset_config_name} needs --dataset_name (e.g. "
                          "--dataset_name nyu-mll/glue --dataset_config_name sst2).")
    if args.task_name and not args.data_dir and not args.dataset_name:
        raise ConfigError(f"--task_name {args.task_name} needs --data_dir, the task's GLUE directory (e.g. "
                          "glue_data/MNLI), or --dataset_name (e.g. nyu-mll/glue).")
    if (args.hub_model_id or args.hub_private_repo) and not args.push_to_hub:
        flag = "--hub_model_id" if args.hub_model_id else "--hub_private_repo"
        raise ConfigError(f"{flag} only applies to an upload: add --push_to_hub, or drop {flag}.")
    if args.push_to_hub and not training:
        raise ConfigError("--push_to_hub uploads the best student of a training run: use it with `mate-kd train`.")
    if training:
        from .tracking import check_report_to
        check_report_to(args)
        if args.torch_compile_backend is not None:
            args.torch_compile = True
            from .compiled import check_backend
            check_backend(args.torch_compile_backend)
    if not args.model_name_or_path:
        raise ConfigError("--model_name_or_path is required (the student, or the model to evaluate).")
    if not args.output_dir:
        raise ConfigError("--output_dir is required.")
    if training:
        if args.method in ("kd", "mate-kd") and not args.teacher_path:
            raise ConfigError(f"--method {args.method} needs --teacher_path, a fine-tuned teacher "
                              "(make one with: mate-kd train --method finetune).")
        if args.method == "mate-kd" and not args.generator_path:
            raise ConfigError("--method mate-kd needs --generator_path, a masked-LM with the same vocabulary.")
        if args.eval_steps is not None and not args.evaluate_during_training:
            raise ConfigError(f"--eval_steps {args.eval_steps} sets how often --evaluate_during_training evaluates: "
                              "add --evaluate_during_training, or drop --eval_steps.")
        if not any(args.weights()):
            raise ConfigError(f"Every loss weight of --method {args.method} is 0 (ce, kd, adv = "
                              f"{', '.join(f'{w:g}' for w in args.weights())}), so the student would not learn: give "
                              "--ce_weight, --kd_weight or --adv_weight a value > 0.")
    return args


def _given_on_command_line(argv: Sequence[str]) -> set[str]:
    """Settings whose flag (its dashed spelling, an alias, or --no_FLAG) appears in argv."""
    flags = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    given = set()
    for f in dataclasses.fields(RunArgs):
        names = [f"--{f.name}", f"--no_{f.name}", *f.metadata.get("aliases", [])]
        if flags & {spelling for n in names for spelling in (n, "--" + n[2:].replace("_", "-"))}:
            given.add(f.name)
    return given


def parse_args(argv: Sequence[str], *, training: bool = True) -> RunArgs:
    """YAML from --config first, then command-line flags on top."""
    parser = HfArgumentParser(RunArgs, prog="mate-kd", allow_abbrev=False)
    parser.add_argument("--config", default=None, help="YAML file of settings; flags override it.")
    pre, _ = parser.parse_known_args(argv)
    origin: dict[str, str] = {}
    if pre.config:
        from_file = load_yaml(pre.config)
        parser.set_defaults(**from_file)
        origin = {name: pre.config for name in set(from_file) - _given_on_command_line(argv)}
    namespace = parser.parse_args(argv)
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(RunArgs)}
    return validate(RunArgs(**values), training=training, origin=origin)


_KIND = {int: "a whole number", float: "a number such as 2.0e-5", str: "text", bool: "true or false"}


def _typed(path: str, name: str, value: Any, hint: Any) -> Any:
    """A config file's value as its setting's type, or a message naming file and key.

    argparse type-checks command-line values but not defaults, which is how config values reach it. Numbers
    written as strings are read (PyYAML takes `2e-5`, without a dot, for a string).
    """
    where = f"Config file {path}, key {name}: {value!r}"
    if get_origin(hint) in (Union, types.UnionType):
        if value is None:
            return None
        (hint,) = [a for a in get_args(hint) if a is not type(None)]
    if get_origin(hint) is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{where} is not one of {', '.join(map(str, get_args(hint)))}.")
        return value
    if value is None:
        raise ConfigError(f"Config file {path}, key {name} has no value; write {_KIND[hint]} there.")
    if isinstance(value, (list, dict)):
        raise ConfigError(f"{where} is a {'list' if isinstance(value, list) else 'mapping'}; write {_KIND[hint]} "
                          "there.")
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ConfigError(f"{where} is not {'true or false' if hint is bool else 'text; put it in quotes'}.")
        return value
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value)  # NaN and inf pass here; the range check refuses them
    except ValueError:
        raise ConfigError(f"{where} is not a number; write {_KIND[hint]}.") from None
    if hint is int:
        if not number.is_integer():
            raise ConfigError(f"{where} is not a whole number; write {_KIND[int]}.")
        return int(number)
    return number


def load_yaml(path: str) -> dict[str, Any]:
    """Read a config file, refusing keys that are not settings (typos would otherwise be ignored) and values
    of the wrong type."""
    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} not found.") from None
    except IsADirectoryError:
        raise ConfigError(f"Config file {path} is a directory; pass a YAML file to --config.") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"Config file {path} is not UTF-8 ({err.reason} at byte {err.start}); save it as "
                          "UTF-8.") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"Config file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of setting: value.")
    known = {f.name for f in dataclasses.fields(RunArgs)}
    aliases = {"per_gpu_train_batch_size": "per_device_train_batch_size",
               "per_gpu_eval_batch_size": "per_device_eval_batch_size"}
    values = {aliases.get(k, k): v for k, v in values.items()}
    unknown = sorted(map(str, set(values) - known))
    if unknown:
        raise ConfigError(f"Config file {path}: unknown settings {unknown}. Known settings: `mate-kd train --help`.")
    hints = get_type_hints(RunArgs)
    return {name: _typed(path, name, value, hints[name]) for name, value in values.items()}


def dump(args: RunArgs, path: str) -> None:
    """Write the resolved settings next to the results, so a run can be repeated."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(args.to_dict(), f, sort_keys=False)
