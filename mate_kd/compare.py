"""`mate-kd compare`: a resumable campaign of tasks x methods x seeds from one student initialisation.

A claim that MATE-KD helps needs every method trained from the same student, against the
same teacher, on several seeds, with the numbers that do not favour it reported too. This
runner fine-tunes (or reuses) a teacher per task, trains each method into
OUTPUT_DIR/runs/TASK/METHOD/seedN (a finished run, one with eval_results.json, is never
redone, so an interrupted campaign resumes), and summarises everything in results.json,
results.md (mean +- std over seeds, best-on-dev and final; per seed; paired by seed with a 95%
confidence interval) and learning-curve PNGs. A run stopped part-way resumes from its latest
checkpoint (train with --save_steps N so that there is one).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from .errors import ConfigError
from .lock import refuse_if_locked
from .plot import LOG_FILE, finish_axes, metric_curve, pyplot, read_log, save
from .tasks import TaskSpec, get_task

#: Method name -> (the train command's --method, flags that define the variant; they come last and win).
METHODS: dict[str, tuple[str, list[str]]] = {
    "finetune": ("finetune", []),
    "kd": ("kd", []),
    "mate-kd": ("mate-kd", []),
    "mate-kd-ng0": ("mate-kd", ["--n_generator_steps", "0"]),
}
#: Flags the runner sets itself; passing them through would break the campaign's layout.
OWN_FLAGS = ("--method", "--model_name_or_path", "--teacher_path", "--generator_path", "--task_name", "--data_dir",
             "--output_dir", "--seed", "--train_file", "--validation_file", "--test_file", "--run_name")
#: Flags that cannot work for a campaign's runs (--report_to does: each run reports under its own --run_name).
NO_HUB = ("--push_to_hub", "--hub_model_id", "--hub_private_repo")
#: Settings that do not make a finished run another run.
NOT_COMPARED = ("overwrite_output_dir", "resume_from_checkpoint", "report_to", "run_name")
DONE_FILE = "eval_results.json"
WALL_FILE = "compare_run.json"


@dataclass
class Campaign:
    """Settings of one comparison (see `main` for their help)."""

    data_root: str
    output_dir: str
    student_init: str
    tasks: list[str]
    methods: list[str]
    seeds: list[int]
    teacher: Optional[str] = None
    teacher_init: Optional[str] = None
    generator: Optional[str] = None
    train_flags: list[str] = field(default_factory=list)
    method_args: dict[str, list[str]] = field(default_factory=dict)
    teacher_args: list[str] = field(default_factory=list)
    teacher_seed: int = 42
    plots: bool = True
    summary_only: bool = False


def _split_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise ConfigError(f"--{what} is empty: give a comma-separated list.")
    if len(set(items)) != len(items):
        raise ConfigError(f"--{what} {text!r} repeats an entry.")
    return items


def parse_method_args(entries: Sequence[str], methods: Sequence[str]) -> dict[str, list[str]]:
    """"METHOD:FLAGS" entries (e.g. "mate-kd:--generator_learning_rate 1e-4") -> {method: [flags]}."""
    out: dict[str, list[str]] = {}
    for entry in entries:
        method, sep, flags = entry.partition(":")
        method = method.strip()
        if not sep or method not in methods:
            raise ConfigError(f"--method_args {entry!r} must be METHOD:FLAGS with METHOD one of the campaign's "
                              f"methods ({', '.join(methods)}), e.g. \"mate-kd:--generator_learning_rate 1e-4\".")
        out[method] = out.get(method, []) + shlex.split(flags)
    return out


def _check_flags(flags: Sequence[str], where: str) -> None:
    own = sorted({f.split("=")[0] for f in flags if f.split("=")[0] in OWN_FLAGS})
    if own:
        raise ConfigError(f"{where} sets {own}, which the comparison runner sets itself for each run; remove them "
                          "(use --tasks, --methods, --seeds, --student_init, --teacher, --generator).")
    hub = sorted({f.split("=")[0] for f in flags if f.split("=")[0] in NO_HUB})
    if hub:
        raise ConfigError(f"{where} sets {hub}, but a comparison trains many students and uploads none of them; "
                          "remove them and upload the one you choose afterwards with `hf upload REPO "
                          "OUTPUT_DIR/runs/TASK/METHOD/seedN/best` (its README.md is the model card).")


def validate(c: Campaign) -> Campaign:
    """Refuse a campaign that cannot run, before anything is trained."""
    unknown = [m for m in c.methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"Unknown methods {unknown}: choose from {', '.join(METHODS)}.")
    distils = any(METHODS[m][0] != "finetune" for m in c.methods)
    if c.teacher and c.teacher_init:
        raise ConfigError("Pass either --teacher (fine-tuned teachers) or --teacher_init (fine-tune one per task), "
                          "not both.")
    if distils and not (c.teacher or c.teacher_init):
        raise ConfigError("kd and mate-kd need a teacher: pass --teacher DIR (DIR/TASK per task, or one model) or "
                          "--teacher_init DIR (fine-tuned per task into OUTPUT_DIR/teachers/TASK).")
    if any(METHODS[m][0] == "mate-kd" for m in c.methods) and not c.generator:
        raise ConfigError("mate-kd needs --generator DIR, a masked LM with the student's vocabulary (make one with "
                          "`mate-kd pretrain-generator`).")
    for path, flag in ((c.student_init, "--student_init"), (c.teacher, "--teacher"),
                       (c.teacher_init, "--teacher_init"), (c.generator, "--generator"), (c.data_root, "--data_root")):
        if path and not os.path.isdir(path):
            raise ConfigError(f"{flag} {path} is not a directory.")
    if not c.seeds:
        raise ConfigError("--seeds is empty.")
    _check_flags(c.train_flags, "The flags after --")
    _check_flags(c.teacher_args, "--teacher_args")
    for method, flags in c.method_args.items():
        _check_flags(flags, f"--method_args {method}")
        if "--n_generator_steps" in flags and METHODS[method][1]:
            raise ConfigError(f"--method_args {method}: {method} fixes --n_generator_steps itself.")
    specs = [get_task(name) for name in c.tasks]
    if len({t.name for t in specs}) != len(specs):
        raise ConfigError(f"--tasks {','.join(c.tasks)} names a task twice.")
    for task in specs:
        task_dir(c, task)
    return c


def task_dir(c: Campaign, task: TaskSpec) -> str:
    """DATA_ROOT/TASK, trying the spelling given, GLUE's directory name and the registry name."""
    for name in dict.fromkeys([n for n in c.tasks if get_task(n) is task] + [task.dir_name, task.name]):
        path = os.path.join(c.data_root, name)
        if os.path.isdir(path):
            return path
    raise ConfigError(f"No directory for task {task.dir_name} under --data_root {c.data_root}: expected "
                      f"{os.path.join(c.data_root, task.dir_name)} in the GLUE layout.")


def run_dir(c: Campaign, task: TaskSpec, method: str, seed: int) -> str:
    return os.path.join(c.output_dir, "runs", task.dir_name, method, f"seed{seed}")


def run_argv(c: Campaign, task: TaskSpec, method: str, seed: int, teacher: Optional[str]) -> list[str]:
    """The `mate-kd train` flags of one run: runner's own flags, then pass-through, per-method, variant flags."""
    base, variant = METHODS[method]
    argv = ["--method", base, "--model_name_or_path", c.student_init, "--task_name", task.name,
            "--data_dir", task_dir(c, task), "--output_dir", run_dir(c, task, method, seed), "--seed", str(seed),
            "--evaluate_during_training", "--overwrite_output_dir",
            "--run_name", f"{task.dir_name}-{method}-seed{seed}"]
    if base != "finetune":
        argv += ["--teacher_path", teacher]
    if base == "mate-kd":
        argv += ["--generator_path", c.generator]
    return argv + c.train_flags + c.method_args.get(method, []) + variant


def _train(argv: list[str]) -> dict:
    from .config import parse_args
    from .loop import train

    return train(parse_args(argv, training=True), argv)


def _read_json(path: str) -> Optional[dict]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)


def _comparable(value):
    return os.path.realpath(value) if isinstance(value, str) and os.path.exists(value) else value


def check_same_settings(out: str, argv: list[str]) -> None:
    """Refuse to reuse a finished run whose recorded settings differ from what this campaign would run."""
    import yaml

    from .config import parse_args

    path = os.path.join(out, "run_config.yaml")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        recorded = yaml.safe_load(f) or {}
    wanted = parse_args(argv, training=True).to_dict()
    differ = sorted(k for k in recorded.keys() & wanted.keys()
                    if k not in NOT_COMPARED
                    and _comparable(recorded[k]) != _comparable(wanted[k]))
    if differ:
        details = ", ".join(f"{k}: {recorded[k]!r} there, {wanted[k]!r} now" for k in differ)
        raise ConfigError(f"The finished run in {out} was made with other settings ({details}). Delete that run "
                          "directory to redo it, or use another --output_dir.")


def _selected(metrics: dict, selection: str) -> float:
    split, name = selection.split("/", 1)
    return metrics[split][name]


def prepare_teacher(c: Campaign, task: TaskSpec) -> Optional[dict]:
    """The task's teacher (path, dev metrics, score): given, reused from OUTPUT_DIR/teachers/TASK, or fine-tuned."""
    if not (c.teacher or c.teacher_init):
        return None
    out = os.path.join(c.output_dir, "teachers", task.dir_name)
    selection = f"{task.eval_splits[0]}/{task.selection_metric}"
    if c.teacher_init:
        if c.summary_only and _read_json(os.path.join(out, DONE_FILE)) is None:
            raise ConfigError(f"--summary_only trains nothing, and the {task.dir_name} teacher in {out} has not "
                              "finished: run the campaign without --summary_only first.")
        argv = ["--method", "finetune", "--model_name_or_path", c.teacher_init, "--task_name", task.name,
                "--data_dir", task_dir(c, task), "--output_dir", out, "--seed", str(c.teacher_seed),
                "--evaluate_during_training", "--overwrite_output_dir", "--run_name", f"{task.dir_name}-teacher"] \
            + c.train_flags + c.teacher_args
        if _read_json(os.path.join(out, DONE_FILE)) is None:
            print(f"[compare] fine-tuning the {task.dir_name} teacher from {c.teacher_init} into {out}", flush=True)
            _train_resumable(argv, out)
        else:
            check_same_settings(out, argv)
        results = _read_json(os.path.join(out, DONE_FILE))
        metrics = results["best"]["metrics"]
        return {"path": os.path.join(out, "best"), "source": f"fine-tuned from {c.teacher_init}", "metrics": metrics,
                "final_metrics": results["final"]["metrics"], "selection_metric": results["selection_metric"],
                "score": _selected(metrics, results["selection_metric"])}
    path = _given_teacher(c, task)
    cache = os.path.join(out, "given_teacher_eval.json")
    cached = _read_json(cache)
    if cached is None or cached.get("path") != path:
        from .config import parse_args
        from .predict import evaluate_saved

        print(f"[compare] scoring the given {task.dir_name} teacher {path}", flush=True)
        os.makedirs(out, exist_ok=True)
        metrics = evaluate_saved(parse_args(["--model_name_or_path", path, "--task_name", task.name, "--data_dir",
                                             task_dir(c, task), "--output_dir", os.path.join(out, "given_eval")]
                                            + c.train_flags, training=False))
        cached = {"path": path, "source": "given", "metrics": metrics, "selection_metric": selection,
                  "score": _selected(metrics, selection)}
        _write_json(cache, cached)
    return cached


def _given_teacher(c: Campaign, task: TaskSpec) -> str:
    """--teacher DIR: DIR/TASK when it holds one model per task, else DIR itself."""
    for name in dict.fromkeys([n for n in c.tasks if get_task(n) is task] + [task.dir_name, task.name]):
        path = os.path.join(c.teacher, name)
        if os.path.isfile(os.path.join(path, "config.json")):
            return path
    if os.path.isfile(os.path.join(c.teacher, "config.json")):
        return c.teacher
    raise ConfigError(f"--teacher {c.teacher} has neither {task.dir_name}/config.json (one teacher per task) nor "
                      "config.json (one teacher for every task).")


def _train_resumable(argv: list[str], out: str) -> dict:
    """Train one run; a run stopped part-way (it has a complete checkpoint) continues from its latest one.

    compare_run.json keeps every attempt's start and end; an attempt that was killed ends at its log's last
    write, so wall_s is the time the run really took, restarts included."""
    from .checkpoint import list_checkpoints  # it imports torch and transformers: compare's own work needs neither

    refuse_if_locked(out, "`mate-kd compare`")  # before compare_run.json changes: the run may be training now
    wall_path = os.path.join(out, WALL_FILE)
    attempts = (_read_json(wall_path) or {}).get("attempts", [])
    if attempts and "end" not in attempts[-1] and os.path.isfile(os.path.join(out, "log.jsonl")):
        attempts[-1]["end"] = os.path.getmtime(os.path.join(out, "log.jsonl"))
        attempts[-1]["interrupted"] = True
    latest = list_checkpoints(out)
    if latest:
        argv = argv + ["--resume_from_checkpoint", "latest"]
        print(f"[compare] resuming {out} from {latest[-1]}", flush=True)
    os.makedirs(out, exist_ok=True)
    attempts.append({"start": time.time(), "resumed_from": latest[-1] if latest else None})
    _write_json(wall_path, {"attempts": attempts})
    try:
        results = _train(argv)
    except Exception as err:  # an internal error: say which run, and that the same command takes it up again
        err.add_note(f"while training {out}; once fixed, the same compare command resumes it"
                     + (" from its latest checkpoint" if list_checkpoints(out) else ""))
        raise
    attempts[-1]["end"] = time.time()
    wall = sum(a["end"] - a["start"] for a in attempts if "end" in a)
    _write_json(wall_path, {"wall_s": round(wall, 2), "attempts": attempts})
    return results


def run_one(c: Campaign, task: TaskSpec, method: str, seed: int, teacher: Optional[dict]) -> dict:
    """Train one run unless it finished before (resuming it if it stopped part-way); its record for results.json."""
    out = run_dir(c, task, method, seed)
    results = _read_json(os.path.join(out, DONE_FILE))
    skipped = results is not None
    argv = run_argv(c, task, method, seed, teacher["path"] if teacher else None)
    if skipped:
        check_same_settings(out, argv)
    else:
        results = _train_resumable(argv, out)
    selection = results["selection_metric"]
    timing = _read_json(os.path.join(out, WALL_FILE)) or {}
    progress = results.get("progress", {})
    return {"task": task.dir_name, "method": method, "seed": seed, "run_dir": out, "skipped": skipped,
            "selection_metric": selection, "best_score": _selected(results["best"]["metrics"], selection),
            "final_score": _selected(results["final"]["metrics"], selection),
            "best": results["best"], "final": results["final"], "wall_s": timing.get("wall_s"),
            "attempts": len(timing.get("attempts", [])) or None,
            "student_updates": progress.get("student_updates"), "generator_updates": progress.get("generator_updates")}


def learning_curve(run_path: str, selection: str) -> dict[int, float]:
    """Dev selection metric by student update, from a run's log.jsonl (empty when the run has no log yet)."""
    if not os.path.isfile(os.path.join(run_path, LOG_FILE)):
        return {}
    return metric_curve(read_log(run_path), selection)


def _mean_std(values: Sequence[float]) -> tuple[float, Optional[float]]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def _cell(values: Sequence[float]) -> str:
    """Scores x100: "mean ± sample std" (just the value for one seed)."""
    if not values:
        return "–"
    mean, std = _mean_std([100 * v for v in values])
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def markdown(runs: list[dict], teachers: dict[str, Optional[dict]], c: Campaign) -> str:
    """results.md: the selection metric table, then every dev metric, per task x method."""
    lines = ["# MATE-KD comparison", "",
             f"Dev scores x100, mean ± sample standard deviation over seeds {', '.join(map(str, c.seeds))}. "
             "best-on-dev: the student kept at its best dev evaluation (as the paper reports); final: the student "
             "at the end of training. Every method starts from the same student initialisation "
             f"(`{c.student_init}`).", "",
             "| task | method | seeds | metric | best-on-dev | final | wall s / run |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["method"]), []).append(r)
    for name in c.tasks:
        task = get_task(name)
        teacher = teachers.get(task.dir_name)
        if teacher:
            final = _selected(teacher["final_metrics"], teacher["selection_metric"]) \
                if "final_metrics" in teacher else None
            lines.append(f"| {task.dir_name} | teacher | 1 | {teacher['selection_metric']} | "
                         f"{_cell([teacher['score']])} | {_cell([final] if final is not None else [])} | – |")
        for method in c.methods:
            rs = groups.get((task.dir_name, method), [])
            if not rs:
                continue
            walls = [r["wall_s"] for r in rs if r["wall_s"] is not None]
            wall = f"{statistics.mean(walls):.0f}" if walls else "–"
            lines.append(f"| {task.dir_name} | {method} | {len(rs)} | {rs[0]['selection_metric']} | "
                         f"{_cell([r['best_score'] for r in rs])} | {_cell([r['final_score'] for r in rs])} | "
                         f"{wall} |")
    lines += per_seed_tables(groups, c)
    lines += ["", "## Every dev metric", "", "| task | method | metric | best-on-dev | final |",
              "| --- | --- | --- | --- | --- |"]
    for (task_name, method), rs in groups.items():
        for split, metrics in rs[0]["best"]["metrics"].items():
            for metric in metrics:
                lines.append(f"| {task_name} | {method} | {split}/{metric} | "
                             f"{_cell([r['best']['metrics'][split][metric] for r in rs])} | "
                             f"{_cell([r['final']['metrics'][split][metric] for r in rs])} |")
    return "\n".join(lines) + "\n"


def paired_difference(diffs: Sequence[float]) -> dict:
    """Mean of seed-paired differences with its 95% t-interval, and wins / ties / losses.

    Pairing by seed compares runs that share the classifier head's initialisation and the data order, which
    removes that part of the seed-to-seed spread from the comparison."""
    from scipy import stats

    mean, std = _mean_std(diffs)
    half = None if std is None else float(stats.t.ppf(0.975, len(diffs) - 1)) * std / len(diffs) ** 0.5
    return {"n": len(diffs), "mean": mean, "std": std, "ci95": None if half is None else [mean - half, mean + half],
            "wins": sum(d > 1e-9 for d in diffs), "ties": sum(abs(d) <= 1e-9 for d in diffs),
            "losses": sum(d < -1e-9 for d in diffs)}


def paired_comparisons(runs: list[dict], methods: Sequence[str]) -> list[dict]:
    """Every pair of methods (A listed after B in --methods) on every task, for best-on-dev and final, x100."""
    scores: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in runs:
        for which in ("best", "final"):
            scores.setdefault((r["task"], r["method"], which), {})[r["seed"]] = 100 * r[f"{which}_score"]
    out = []
    for task_name in dict.fromkeys(r["task"] for r in runs):
        present = [m for m in methods if (task_name, m, "best") in scores]
        for i, a in enumerate(present):
            for b in present[:i]:
                for which in ("best", "final"):
                    sa, sb = scores[task_name, a, which], scores[task_name, b, which]
                    seeds = sorted(set(sa) & set(sb))
                    if seeds:
                        out.append({"task": task_name, "a": a, "b": b, "score": which, "seeds": seeds,
                                    **paired_difference([sa[s] - sb[s] for s in seeds])})
    return out


def per_seed_tables(groups: dict[tuple[str, str], list[dict]], c: Campaign) -> list[str]:
    """Scores per seed, and every pair of methods compared seed by seed, for best-on-dev and final."""
    lines = []
    for which, title in (("best", "best-on-dev"), ("final", "final")):
        lines += ["", f"## Per seed ({title} x100)", "",
                  "| task | method | " + " | ".join(f"seed {s}" for s in c.seeds) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in c.seeds) + " |"]
        for (task_name, method), rs in groups.items():
            by_seed = {r["seed"]: 100 * r[f"{which}_score"] for r in rs}
            lines.append(f"| {task_name} | {method} | " + " | ".join(
                f"{by_seed[s]:.2f}" if s in by_seed else "–" for s in c.seeds) + " |")
    runs = [r for rs in groups.values() for r in rs]
    lines += ["", "## Paired by seed (A − B, x100)", "",
              "Mean of the per-seed differences ± their sample standard deviation, the 95% confidence interval of "
              "the mean (t distribution, n − 1 degrees of freedom), and the seeds on which A is better / equal / "
              "worse.", "",
              "| task | A | B | score | seeds | mean diff ± std | 95% CI | A better / equal / worse |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in paired_comparisons(runs, c.methods):
        cell = f"{p['mean']:+.2f}" if p["std"] is None else f"{p['mean']:+.2f} ± {p['std']:.2f}"
        ci = "–" if p["ci95"] is None else f"[{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]"
        score = "best-on-dev" if p["score"] == "best" else "final"
        lines.append(f"| {p['task']} | {p['a']} | {p['b']} | {score} | {p['n']} | {cell} | {ci} | "
                     f"{p['wins']} / {p['ties']} / {p['losses']} |")
    return lines


def write_summary(c: Campaign, runs: list[dict], teachers: dict[str, Optional[dict]]) -> dict:
    """results.json and results.md for the runs so far (written after every run, so a long campaign can be
    read while it goes on)."""
    summary = {"settings": dict(vars(c)), "teachers": teachers, "runs": runs,
               "paired": paired_comparisons(runs, c.methods)}
    _write_json(os.path.join(c.output_dir, "results.json"), summary)
    with open(os.path.join(c.output_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(markdown(runs, teachers, c))
    return summary


def plot_curves(runs: list[dict], teachers: dict[str, Optional[dict]], out_dir: str) -> list[str]:
    """One PNG per task: dev selection metric vs student updates, one line per method (mean over seeds)."""
    plt = pyplot()
    by_task: dict[str, dict[str, list[dict[int, float]]]] = {}
    for r in runs:
        by_task.setdefault(r["task"], {}).setdefault(r["method"], []).append(
            learning_curve(r["run_dir"], r["selection_metric"]))
    written = []
    for task_name, methods in by_task.items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for method, curves in methods.items():
            steps = sorted({s for curve in curves for s in curve})
            means = [100 * statistics.mean([curve[s] for curve in curves if s in curve]) for s in steps]
            ax.plot(steps, means, marker="o", markersize=3, label=f"{method} (n={len(curves)})")
        teacher = teachers.get(task_name)
        if teacher:
            ax.axhline(100 * teacher["score"], color="grey", linestyle="--", label="teacher")
        selection = next(r["selection_metric"] for r in runs if r["task"] == task_name)
        finish_axes(ax, f"{selection} x100", f"{task_name}: {selection} vs student updates (mean over seeds)")
        ax.legend()
        fig.tight_layout()
        written.append(save(fig, os.path.join(out_dir, f"curves_{task_name}.png")))
        plt.close(fig)
    return written


def run_campaign(c: Campaign) -> dict:
    """Teachers, then every task x seed x method run (finished ones reused), then the summaries.

    With summary_only the summaries cover the runs that have finished and nothing is trained: several
    `compare` processes can share one campaign (each run has its own lock), and this writes the summary of all."""
    validate(c)
    os.makedirs(c.output_dir, exist_ok=True)
    runs, teachers = [], {}
    total, index = len(c.tasks) * len(c.seeds) * len(c.methods), 0
    for name in c.tasks:
        task = get_task(name)
        teachers[task.dir_name] = prepare_teacher(c, task)
        for seed in c.seeds:
            for method in c.methods:
                index += 1
                out = run_dir(c, task, method, seed)
                if c.summary_only and not os.path.isfile(os.path.join(out, DONE_FILE)):
                    resumable = os.path.isdir(out)
                    state = ("not finished (a run without --summary_only resumes it from its latest checkpoint, "
                             "or starts it again if it has none)") if resumable else "not run"
                    print(f"[compare] {index}/{total} {task.dir_name} {method} seed {seed}: {state}, left out of the "
                          "summary", flush=True)
                    continue
                record = run_one(c, task, method, seed, teachers[task.dir_name])
                state = "reused" if record["skipped"] else f"{record['wall_s']:.0f} s"
                print(f"[compare] {index}/{total} {task.dir_name} {method} seed {seed}: best "
                      f"{100 * record['best_score']:.2f} final {100 * record['final_score']:.2f} "
                      f"({record['selection_metric']}, {state})", flush=True)
                runs.append(record)
                write_summary(c, runs, teachers)
    summary = write_summary(c, runs, teachers)
    summary["plots"] = plot_curves(runs, teachers, c.output_dir) if c.plots else []
    return summary


HELP_EPILOG = """Flags after `--` go to every `mate-kd train` run (teachers included), e.g.
  -- --num_train_epochs 3 --max_train_samples 5000 --learning_rate 5e-5 --logging_steps 50
Per-method flags come after them (and win): --method_args "mate-kd:--generator_learning_rate 1e-4"
(repeat the option for more methods); --teacher_args="FLAGS" likewise for the teachers (write "=" when
FLAGS is a single flag). mate-kd-ng0 is mate-kd with --n_generator_steps 0: masking and
generator sampling without adversarial generator updates. Runs go to OUTPUT_DIR/runs/TASK/METHOD/seedN;
one with eval_results.json is reused, so rerunning the same command resumes a campaign."""


def main(argv: list[str]) -> None:
    argv = list(argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="mate-kd compare", epilog=HELP_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Compare methods over tasks and seeds from one student "
                                                 "initialisation: results.json, results.md, curves_TASK.png.")
    parser.add_argument("--data_root", required=True, help="Directory holding GLUE task directories (RTE, MRPC, ...).")
    parser.add_argument("--tasks", default="RTE,MRPC,SST-2", help="Comma-separated GLUE tasks.")
    parser.add_argument("--methods", default="finetune,kd,mate-kd,mate-kd-ng0",
                        help=f"Comma-separated methods out of {', '.join(METHODS)}.")
    parser.add_argument("--seeds", default="1,2,3", help="Comma-separated seeds.")
    parser.add_argument("--student_init", required=True, help="Student initialisation shared by every method.")
    parser.add_argument("--teacher", help="Fine-tuned teacher(s): DIR/TASK per task, or one model dir for all.")
    parser.add_argument("--teacher_init", help="Fine-tune a teacher per task from this model (reused when done).")
    parser.add_argument("--teacher_args", default="",
                        help="Extra train flags for the teachers, e.g. --teacher_args=\"--num_train_epochs 5\".")
    parser.add_argument("--teacher_seed", type=int, default=42, help="Seed of teacher fine-tuning.")
    parser.add_argument("--generator", help="Masked-LM generator for mate-kd (see `mate-kd pretrain-generator`).")
    parser.add_argument("--method_args", action="append", default=[], metavar="METHOD:FLAGS",
                        help="Extra train flags for one method, e.g. \"mate-kd:--generator_learning_rate 1e-4\".")
    parser.add_argument("--output_dir", required=True, help="Campaign directory (runs/, teachers/, results.*).")
    parser.add_argument("--no_plots", action="store_true", help="Skip the learning-curve PNGs.")
    parser.add_argument("--summary_only", action="store_true",
                        help="Train nothing: write results.json, results.md and the curves from the runs that have "
                             "finished (e.g. runs that several compare processes shared out).")
    args = parser.parse_args(argv)
    methods = _split_list(args.methods, "methods")
    try:
        seeds = [int(s) for s in _split_list(args.seeds, "seeds")]
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r} must be comma-separated integers.") from None
    campaign = Campaign(data_root=args.data_root, output_dir=args.output_dir, student_init=args.student_init,
                        tasks=_split_list(args.tasks, "tasks"), methods=methods, seeds=seeds, teacher=args.teacher,
                        teacher_init=args.teacher_init, generator=args.generator, train_flags=passthrough,
                        method_args=parse_method_args(args.method_args, methods),
                        teacher_args=shlex.split(args.teacher_args), teacher_seed=args.teacher_seed,
                        plots=not args.no_plots, summary_only=args.summary_only)
    summary = run_campaign(campaign)
    print(f"[compare] wrote {os.path.join(args.output_dir, 'results.json')}, results.md"
          + "".join(f", {os.path.basename(p)}" for p in summary["plots"]))
