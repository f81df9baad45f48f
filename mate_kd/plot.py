"""`mate-kd plot`: learning curves from runs' log.jsonl, the dev metric and each loss term against student updates.

One panel for the dev selection metric (x100) and one per loss term the runs logged, several runs overlaid in
one colour each; runs with the adversary probe also get its divergence and replacement share (current
generator against the initial one). `plot_run` writes OUTPUT_DIR/curves.png for a single run; `compare` draws its per-task curves
with the same pieces (`read_log`, `metric_curve`, `pyplot`, `finish_axes`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Optional, Sequence

import yaml

from .errors import ConfigError, DataError
from .tasks import get_task

LOG_FILE = "log.jsonl"
#: Loss terms of log.jsonl, in panel order, with what each one is.
LOSS_TERMS = {
    "loss_student": "student loss (weighted sum)",
    "loss_ce": "CE(S(x), y)",
    "loss_kd": "D(S(x), T(x)), clean text",
    "loss_adv": "D(S(x'), T(x')), adversarial text",
    "loss_generator": "generator loss, −D(S(x'), T(x'))",
}
X_LABEL = "student updates"
#: Panels of the adversary probe (train --adversary_probe_samples): key prefix in log.jsonl's "adversary" -> title.
ADVERSARY_PANELS = {
    "d_adv": ("D(S(x'), T(x'))", "adversary probe: D(S(x'), T(x'))\nsolid: current G, dashed: initial G"),
    "replaced": ("share of masked tokens", "adversary probe: sampled token ≠ original\nsolid: current G, dashed: initial G"),
}


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_log(run_dir: str) -> list[dict]:
    """The events of RUN_DIR/log.jsonl. An unfinished last line (a run still writing) is left out."""
    path = os.path.join(run_dir, LOG_FILE)
    if not os.path.isdir(run_dir):
        raise DataError(f"{run_dir} is not a directory: pass the --output_dir of a `mate-kd train` run.")
    if not os.path.isfile(path):
        raise DataError(f"{run_dir} has no {LOG_FILE}: pass the --output_dir of a `mate-kd train` run (it writes "
                        f"{LOG_FILE} from its first logging step on).")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise DataError(f"{path}, line {number}: not a JSON object ({err.msg}); the log is damaged.") from None
        if not isinstance(event, dict) or not isinstance(event.get("step"), int):
            raise DataError(f"{path}, line {number}: expected a JSON object with an integer \"step\".")
        events.append(event)
    return events


def _read_yaml(path: str) -> dict:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    return values if isinstance(values, dict) else {}


def selection_metric(run_dir: str, events: Sequence[dict]) -> Optional[str]:
    """The dev metric that picks the best student, as "split/metric" (None when nothing was evaluated)."""
    evaluated = [e.get("eval") or e.get("final_eval") for e in events if e.get("eval") or e.get("final_eval")]
    if not evaluated:
        return None
    results = os.path.join(run_dir, "eval_results.json")
    if os.path.isfile(results):
        with open(results, encoding="utf-8") as f:
            selection = json.load(f).get("selection_metric")
        if selection:
            return selection
    split = next(iter(evaluated[0]))
    config = _read_yaml(os.path.join(run_dir, "run_config.yaml"))
    metric = config.get("metric_for_best_model")
    if not metric and config.get("task_name"):
        metric = get_task(config["task_name"]).selection_metric
    if not metric or metric not in evaluated[0][split]:
        metric = next(iter(evaluated[0][split]))
    return f"{split}/{metric}"


def metric_curve(events: Sequence[dict], selection: str) -> dict[int, float]:
    """Dev selection metric ("split/metric") by student update, from the eval and final_eval events."""
    split, name = selection.split("/", 1)
    curve = {}
    for event in events:
        metrics = event.get("eval") or event.get("final_eval")
        if metrics and name in metrics.get(split, {}):
            curve[int(event["step"])] = metrics[split][name]
    return curve


def loss_curves(events: Sequence[dict]) -> dict[str, dict[int, float]]:
    """Each logged loss term by student update (the mean over the updates since the previous log event)."""
    curves: dict[str, dict[int, float]] = {}
    for event in events:
        for key, value in event.items():
            if key.startswith("loss_") and isinstance(value, (int, float)):
                curves.setdefault(key, {})[int(event["step"])] = float(value)
    return curves


def adversary_curves(events: Sequence[dict]) -> dict[str, dict[int, float]]:
    """The adversary probe's numbers by student update ("d_adv_current", "d_adv_frozen", "replaced_current", ...)."""
    curves: dict[str, dict[int, float]] = {}
    for event in events:
        for key, value in (event.get("adversary") or {}).items():
            if isinstance(value, (int, float)):
                curves.setdefault(key, {})[int(event["step"])] = float(value)
    return curves


def default_label(run_dir: str) -> str:
    """"METHOD seed N" from the run's run_config.yaml, else the directory's name."""
    config = _read_yaml(os.path.join(run_dir, "run_config.yaml"))
    if config.get("method") and config.get("seed") is not None:
        return f"{config['method']} seed {config['seed']}"
    return os.path.basename(os.path.normpath(run_dir))


def finish_axes(ax, ylabel: str, title: str) -> None:
    """Axis labels, integer update ticks and a light grid, as every curve of the package has them."""
    from matplotlib.ticker import MaxNLocator
    ax.set(xlabel=X_LABEL, ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def save(fig, path: str) -> str:
    """Write the figure through a temporary file, so an existing plot is replaced only by a complete one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{ext}"
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    return path


def _check_output(path: str) -> None:
    from matplotlib.figure import Figure
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    supported = Figure().canvas.get_supported_filetypes()
    if ext not in supported:
        raise ConfigError(f"--output {path}: cannot write {ext or 'a file without extension'!r}; end it in .png "
                          f"(or one of {', '.join(sorted(supported))}).")


def plot_runs(run_dirs: Sequence[str], output: str, labels: Optional[Sequence[str]] = None,
              title: Optional[str] = None) -> str:
    """Overlay the curves of several runs in one figure at `output`; returns the path."""
    if not run_dirs:
        raise ConfigError("Give at least one run directory to plot.")
    if labels is not None and len(labels) != len(run_dirs):
        raise ConfigError(f"--labels has {len(labels)} entries for {len(run_dirs)} run directories: give one label "
                          "per directory, comma-separated, in the same order.")
    _check_output(output)
    logs = [read_log(d) for d in run_dirs]
    for run_dir, events in zip(run_dirs, logs):
        if not events:
            raise DataError(f"{os.path.join(run_dir, LOG_FILE)} has no logged steps yet: a run logs every "
                            "--logging_steps student updates; plot it after the first.")
    names = list(labels) if labels is not None else [default_label(d) for d in run_dirs]
    if labels is None and len(set(names)) < len(names):
        names = [f"{n} ({os.path.basename(os.path.normpath(d))})" for n, d in zip(names, run_dirs)]
    selections = [selection_metric(d, events) for d, events in zip(run_dirs, logs)]
    metric_names = sorted({s for s in selections if s})
    losses = [loss_curves(events) for events in logs]
    terms = [t for t in LOSS_TERMS if any(t in l for l in losses)] + \
        sorted({t for l in losses for t in l} - set(LOSS_TERMS))
    probes = [adversary_curves(events) for events in logs]
    adversary = [p for p in ADVERSARY_PANELS if any(f"{p}_current" in c for c in probes)]
    panels = (["metric"] if metric_names else []) + terms + adversary
    plt = pyplot()
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    legend_rows = math.ceil(len(names) / 4)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows + 0.3 * legend_rows + 0.4),
                             squeeze=False)
    flat = list(axes.flat)
    colours = plt.get_cmap("tab10")
    for ax, panel in zip(flat, panels):
        for i, name in enumerate(names):
            if panel in ADVERSARY_PANELS:
                frozen = probes[i].get(f"{panel}_frozen", {})
                if frozen:
                    steps = sorted(frozen)
                    ax.plot(steps, [frozen[s] for s in steps], color=colours(i % 10), linestyle="--", linewidth=1.0)
                curve, style = probes[i].get(f"{panel}_current", {}), {"marker": "o", "markersize": 3}
            elif panel == "metric":
                if not selections[i]:
                    continue
                curve = {s: 100 * v for s, v in metric_curve(logs[i], selections[i]).items()}
                style = {"marker": "o", "markersize": 3}
            else:
                curve = losses[i].get(panel, {})
                style = {"marker": "." if len(curve) < 30 else None}
            if curve:
                steps = sorted(curve)
                ax.plot(steps, [curve[s] for s in steps], color=colours(i % 10), label=name, linewidth=1.4, **style)
        if panel in ADVERSARY_PANELS:
            finish_axes(ax, *ADVERSARY_PANELS[panel])
        elif panel == "metric":
            shown = " / ".join(m.replace("/", " ") for m in metric_names)
            finish_axes(ax, f"{' / '.join(m.split('/', 1)[1] for m in metric_names)} x100", f"{shown} (x100)")
        else:
            finish_axes(ax, "loss", f"{panel}: {LOSS_TERMS.get(panel, panel)}")
    for ax in flat[len(panels):]:
        ax.axis("off")
    handles, shown_labels = [], []
    for ax in flat[:len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in shown_labels:
                handles.append(handle)
                shown_labels.append(label)
    height = fig.get_figheight()
    fig.legend(handles, shown_labels, loc="lower center", ncol=min(4, len(shown_labels)), frameon=False)
    fig.suptitle(title or f"Training curves against {X_LABEL}")
    fig.tight_layout(rect=(0, (0.3 * legend_rows + 0.1) / height, 1, 1))
    try:
        return save(fig, output)
    finally:
        plt.close(fig)


def plot_run(output_dir: str) -> str:
    """OUTPUT_DIR/curves.png of one run (what a run writes at its end); returns the path."""
    return plot_runs([output_dir], os.path.join(output_dir, "curves.png"))


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="mate-kd plot", description="Learning curves of `mate-kd train` runs: "
                                     "the dev metric (x100) and each loss term against student updates, several "
                                     "runs overlaid.")
    parser.add_argument("run_dirs", nargs="+", metavar="OUTPUT_DIR", help="--output_dir of a training run.")
    parser.add_argument("--output", required=True, metavar="FILE.png", help="Where to write the figure.")
    parser.add_argument("--labels", help="Comma-separated legend labels, one per OUTPUT_DIR (default: method and "
                                         "seed from each run's run_config.yaml).")
    parser.add_argument("--title", help="Figure title.")
    args = parser.parse_args(list(argv))
    labels = [x.strip() for x in args.labels.split(",")] if args.labels is not None else None
    print(plot_runs(args.run_dirs, args.output, labels, args.title))
