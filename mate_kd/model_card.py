"""A Hub model card (README.md) beside a saved student: the metadata the Hub indexes (library, task, dataset,
metrics with their values, base model) and what a reader needs to trust and reuse it (method, teacher,
generator, every setting, the command line, how to load it).

The YAML header is written by huggingface_hub's ModelCardData (model-index through EvalResult), so the card
loads back with ``ModelCard.load`` and is what the Hub expects.
"""

from __future__ import annotations

import math
import os
import shlex
from typing import Optional, Sequence, Union

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .config import RunArgs
from .hf_data import GLUE_HUB
from .tasks import TaskSpec

#: The package's metric names -> the Hub's metric types (https://hf.co/metrics names where one exists).
METRIC_TYPES = {"acc": "accuracy", "f1": "f1", "mcc": "matthews_correlation", "pearson": "pearsonr",
                "spearmanr": "spearmanr", "corr": "pearsonr_spearmanr_mean", "acc_and_f1": "accuracy_f1_mean",
                "macro_f1": "f1"}
METHOD_TEXT = {
    "mate-kd": ("MATE-KD (Rashid et al., ACL-IJCNLP 2021): knowledge distillation plus masked adversarial text. A "
                "masked-language-model generator rewrites masked tokens of each batch (straight-through "
                "Gumbel-softmax) to make the student disagree with the teacher; the student is trained on "
                "`{ce} CE(S(x), y) + {kd} D(S(x), T(x)) + {adv} D(S(x'), T(x'))`, with {n_g} generator batches "
                "before every {n_s} student batches."),
    "kd": ("Knowledge distillation: the student is trained on `{ce} CE(S(x), y) + {kd} D(S(x), T(x))` on the "
           "training text."),
    "finetune": "Fine-tuning: the model is trained on the cross-entropy of the gold labels only.",
}
CITATION = """@inproceedings{rashid-etal-2021-mate,
  title = "{MATE}-{KD}: Masked Adversarial {TE}xt, a Companion to Knowledge Distillation",
  author = "Rashid, Ahmad and Lioutas, Vasileios and Rezagholizadeh, Mehdi",
  booktitle = "Proceedings of ACL-IJCNLP 2021",
  year = "2021",
  pages = "1062--1071",
}"""


def is_hub_id(name: Optional[str]) -> bool:
    """A hub repository name (org/name or name), not a local path: only those are valid `base_model`s."""
    return bool(name) and not os.path.exists(name) and not name.startswith((".", "/", "~")) and name.count("/") <= 1


def _split_name(split: str) -> str:
    """The hub's name of a split: dev -> validation, dev_matched -> validation_matched."""
    return split.replace("dev", "validation", 1) if split.startswith("dev") else split


def _dataset(args: RunArgs, task: TaskSpec) -> tuple[Optional[str], str, Optional[str]]:
    """(hub dataset id or None, readable name, configuration) of the training data."""
    if task.name in GLUE_HUB:
        return "nyu-mll/glue", f"GLUE {task.dir_name}", GLUE_HUB[task.name].config
    if is_hub_id(args.dataset_name):
        return args.dataset_name, args.dataset_name, args.dataset_config_name
    source = args.dataset_name or args.train_file or args.validation_file or "own data"
    return None, os.path.basename(os.path.normpath(source)), None


def _value(value: float) -> str:
    return f"{100 * value:.2f}" if math.isfinite(value) else str(value)


def _settings_table(args: RunArgs) -> list[str]:
    defaults = RunArgs()
    rows = ["| setting | value | default |", "| --- | --- | --- |"]
    for name, value in args.to_dict().items():
        default = getattr(defaults, name)
        rows.append(f"| `{name}` | {'**' if value != default else ''}`{value!r}`{'**' if value != default else ''} "
                    f"| `{default!r}` |")
    return rows


def write_model_card(model_dir: str, args: RunArgs, task: TaskSpec, metrics: dict[str, dict[str, float]],
                     command: Union[str, Sequence[str]], *, step: Optional[int] = None,
                     model_name: Optional[str] = None) -> str:
    """Write MODEL_DIR/README.md, the model card of a saved student, and return its path.

    `metrics` is {dev split: {metric: value}} as in eval_results.json (values as fractions; the card's table
    shows them x100). `command` is the command line that trained it (a string, or argv without the program).
    `step` is the student update it was saved at; `model_name` names it in the card and the model-index
    (default: --hub_model_id, else the output directory's name and the model directory's). The student's
    initialisation becomes `base_model` only when it is a hub name: a local path is not a valid hub reference,
    so the card names it in the text instead.
    """
    name = model_name or args.hub_model_id or \
        f"{os.path.basename(os.path.normpath(args.output_dir or model_dir))}-{os.path.basename(model_dir)}"
    dataset_id, dataset_title, config = _dataset(args, task)
    results = [EvalResult(task_type="text-classification", dataset_type=dataset_id or "custom",
                          dataset_name=dataset_title, dataset_config=config, dataset_split=_split_name(split),
                          metric_type=METRIC_TYPES.get(metric, metric), metric_name=f"{split} {metric}",
                          metric_value=float(value),
                          metric_config="macro" if metric == "macro_f1" else None)
               for split, values in metrics.items() for metric, value in values.items() if math.isfinite(value)]
    tags = ["mate-kd", "text-classification"] + (["knowledge-distillation"] if args.method != "finetune" else []) \
        + (["adversarial-training"] if args.method == "mate-kd" else [])
    data = ModelCardData(library_name="transformers", pipeline_tag="text-classification", tags=tags,
                         datasets=[dataset_id] if dataset_id else None,
                         metrics=sorted({METRIC_TYPES.get(m, m) for v in metrics.values() for m in v}) or None,
                         base_model=args.model_name_or_path if is_hub_id(args.model_name_or_path) else None,
                         model_name=name, eval_results=results or None)
    command_line = command if isinstance(command, str) else shlex.join(["mate-kd", "train", *command])
    ce, kd, adv = args.weights()
    method = METHOD_TEXT[args.method].format(ce=f"{ce:.3g}", kd=f"{kd:.3g}", adv=f"{adv:.3g}",
                                             n_g=args.n_generator_steps, n_s=args.n_student_steps)
    at = f" at student update {step}" if step is not None else ""
    pairs = GLUE_HUB[task.name].text_b is not None if task.name in GLUE_HUB else bool(args.text_pair_column)
    labels = ", ".join(f"{i}: `{label}`" for i, label in enumerate(task.labels)) if task.labels else \
        "one output, a real-valued score (regression)"
    lines = [f"# {name}", "",
             f"A text classifier for {dataset_title}, trained with [mate-kd](https://arxiv.org/abs/2105.05912) "
             f"(`--method {args.method}`){at}.", "",
             "## Results", "", f"Dev-set scores x100{at}:", "", "| split | metric | value |", "| --- | --- | --- |"]
    lines += [f"| {split} | {metric} | {_value(value)} |" for split, values in metrics.items()
              for metric, value in values.items()]
    lines += ["", "## Method", "", method, "",
              "## Models", "",
              f"- student initialised from: `{args.model_name_or_path}`",
              f"- teacher: `{args.teacher_path}`" if args.method != "finetune" else "- teacher: none (fine-tuning)",
              f"- generator: `{args.generator_path}`" if args.method == "mate-kd" else "- generator: none",
              f"- tokenizer: `{args.tokenizer_name or args.model_name_or_path}`",
              f"- labels: {labels}", "",
              "## How to load it", "", "```python", "from transformers import pipeline", "",
              f"classifier = pipeline(\"text-classification\", model=\"{args.hub_model_id or model_dir}\")",
              "print(classifier({\"text\": \"A man is playing a guitar.\", \"text_pair\": \"A man plays music.\"}))"
              if pairs else "print(classifier(\"a gripping, beautifully acted film\"))", "```", "",
              "Or `AutoModelForSequenceClassification.from_pretrained(...)` with `AutoTokenizer`.", "",
              "## Training command", "", "```bash", command_line, "```", "",
              "## Every setting", "", "Bold: changed from the default.", ""]
    lines += _settings_table(args)
    lines += ["", "## Citation", "", "```bibtex", CITATION, "```", ""]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    path = os.path.join(model_dir, "README.md")
    card.save(path)
    return path
