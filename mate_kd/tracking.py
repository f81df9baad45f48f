"""--report_to: every log.jsonl event also goes to TensorBoard and/or Weights & Biases, through accelerate's trackers.

An event's numbers keep their log.jsonl names, nested ones joined by "/" (`eval/dev/acc`, `adversary/d_adv_current`),
at the event's step (student updates), so a curve in TensorBoard is the same series as the one in the log. Only
the main process reports. TensorBoard writes to OUTPUT_DIR/runs/RUN_NAME; a resumed run marks the steps after its
checkpoint as redone (`purge_step`), as its log.jsonl drops them, so TensorBoard shows each step once.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Optional

from accelerate.tracking import GeneralTracker, TensorBoardTracker, WandBTracker

from .errors import ConfigError

#: Subdirectory of the output directory with the TensorBoard runs (transformers' habit).
LOG_DIR = "runs"
#: Tracker -> (module that must be importable, how to install it).
TRACKERS = {"tensorboard": ("tensorboard", "pip install tensorboard  (or: pip install 'mate-kd[tracking]')"),
            "wandb": ("wandb", "pip install wandb")}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # a module in sys.modules without a spec
        return False


def chosen(args) -> list[str]:
    """The trackers --report_to names: `all` is every installed one (as in transformers)."""
    if args.report_to == "none":
        return []
    if args.report_to == "all":
        return [name for name, (module, _) in TRACKERS.items() if installed(module)]
    return [args.report_to]


def run_name(args) -> str:
    return args.run_name or os.path.basename(os.path.normpath(args.output_dir))


def check_report_to(args) -> None:
    """Refuse, before anything loads, a tracker that is not installed or a run name that is not one directory."""
    if args.report_to == "all" and not chosen(args):
        raise ConfigError("--report_to all found no tracker installed: pip install 'mate-kd[tracking]' "
                          "(TensorBoard) and/or pip install wandb, or pass --report_to none.")
    for name in chosen(args):
        module, install = TRACKERS[name]
        if not installed(module):
            raise ConfigError(f"--report_to {name} needs the {module} package, which is not installed: {install}; "
                              "or pass --report_to none (log.jsonl has every event either way).")
    if args.run_name is not None and (not args.run_name.strip() or os.sep in args.run_name or "/" in args.run_name
                                      or args.run_name in (".", "..")):
        raise ConfigError(f"--run_name {args.run_name!r} must be a plain name (it is also the TensorBoard directory "
                          f"OUTPUT_DIR/{LOG_DIR}/RUN_NAME): no slashes, not empty.")


def scalars(event: dict, prefix: str = "") -> dict[str, float]:
    """The numbers of a log event by their log.jsonl names, nested keys joined by "/" (the step excluded)."""
    out: dict[str, float] = {}
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalars(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and name != "step":
            out[name] = value
    return out


class Trackers:
    """The run's trackers (none on processes other than the main one); `finish` must run on every exit path."""

    def __init__(self, args, config: dict[str, Any], resumed_at: Optional[int], is_main: bool) -> None:
        self.trackers: list[GeneralTracker] = []
        if not is_main:
            return
        name = run_name(args)
        try:
            for choice in chosen(args):
                if choice == "tensorboard":
                    # Events after the checkpoint are redone; on a fresh start every older event is stale.
                    purge = 0 if resumed_at is None else resumed_at + 1
                    tracker = TensorBoardTracker(name, os.path.join(args.output_dir, LOG_DIR), purge_step=purge)
                else:
                    tracker = WandBTracker(os.environ.get("WANDB_PROJECT", "mate-kd"), name=name)
                tracker.start()
                self.trackers.append(tracker)
                tracker.store_init_configuration(config)
        except Exception:
            self.finish()
            raise

    def log(self, event: dict) -> None:
        if self.trackers:
            values = scalars(event)
            for tracker in self.trackers:
                tracker.log(values, step=event["step"])

    def finish(self) -> None:
        """Flush and close every tracker (accelerate's end_training would also end the process group, which
        --do_predict and the Hub upload after training still need)."""
        trackers, self.trackers = self.trackers, []
        for tracker in trackers:
            tracker.finish()
