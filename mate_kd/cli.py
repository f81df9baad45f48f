"""`mate-kd train | evaluate | predict | quickstart` (also `python -m mate_kd`)."""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import traceback
from typing import Optional, Sequence

from .errors import MateKDError

USAGE = """usage: mate-kd COMMAND [flags]

commands:
  train       fine-tune, distil (kd) or MATE-KD a student (run_glue flags; --config FILE.yaml)
  evaluate    score a saved model on the dev split(s) of a task
  predict     write GLUE submission files for the test split(s) of a task
  quickstart  the whole pipeline on bundled SST-2 sample data with tiny models (CPU, minutes)
  make-student        a student from chosen encoder layers of a model (DistilBERT-style initialisation)
  pretrain-generator  a masked-LM generator from an encoder, trained by MLM on a task's text
  compare             methods x tasks x seeds from one student: results.json, results.md, curve PNGs
  plot                learning curves (dev metric, each loss term) of one or more runs: plot DIR... --output FILE.png

`mate-kd COMMAND --help` lists the flags of a command."""


def _train(argv: Sequence[str]) -> None:
    from .config import parse_args
    from .loop import train

    args = parse_args(argv, training=True)
    repo_id = None
    if args.push_to_hub:
        from .hub import check_can_push
        repo_id = check_can_push(args)  # before training: an upload that cannot work is refused now
    results = train(args, argv)
    if args.do_predict:
        from .predict import predict
        predict(_for_best(args))
    if repo_id:
        from accelerate import PartialState

        from .hub import push_best
        from .pipeline import resolve_task
        if PartialState().is_main_process:
            print(f"mate-kd train: uploaded best/ to {push_best(args, repo_id, resolve_task(args), results, argv)}",
                  file=sys.stderr)
    print(json.dumps(results["best"].get("metrics", {}), indent=2))


def _for_best(args):
    """Settings that point predict at the best student of a finished training run."""
    import dataclasses
    best = os.path.join(args.output_dir, "best")
    return dataclasses.replace(args, model_name_or_path=best, tokenizer_name=best,
                               output_dir=os.path.join(args.output_dir, "predictions"), overwrite_output_dir=True)


def _evaluate(argv: Sequence[str]) -> None:
    from .config import parse_args
    from .predict import evaluate_saved

    print(json.dumps(evaluate_saved(parse_args(argv, training=False)), indent=2))


def _predict(argv: Sequence[str]) -> None:
    from .config import parse_args
    from .predict import predict

    for path in predict(parse_args(argv, training=False)):
        print(path)


def _quickstart(argv: Sequence[str]) -> None:
    from .quickstart import main as quickstart_main

    quickstart_main(argv)


COMMANDS = {"train": _train, "evaluate": _evaluate, "predict": _predict, "quickstart": _quickstart,
            "make-student": lambda argv: __import__("mate_kd.student_init", fromlist=["main"]).main(list(argv)),
            "pretrain-generator": lambda argv: __import__("mate_kd.generator_prep", fromlist=["main"]).main(list(argv)),
            "compare": lambda argv: __import__("mate_kd.compare", fromlist=["main"]).main(list(argv)),
            "plot": lambda argv: __import__("mate_kd.plot", fromlist=["main"]).main(list(argv))}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"mate-kd: unknown command {command!r}.\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        COMMANDS[command](rest)
    except MateKDError as err:
        print(f"mate-kd {command}: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug in mate-kd, not bad input: one message; the traceback goes to a file
        print(internal_error_message(command, err, write_traceback(command, err)), file=sys.stderr)
        return 3
    finally:
        close_process_group()
    return 0


def write_traceback(command: str, err: BaseException) -> str:
    """Keep the traceback of an internal error in a file the user can attach to a bug report."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    fd, path = tempfile.mkstemp(prefix=f"mate-kd-{command}-{stamp}-", suffix=".traceback.txt")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"mate-kd {command} (pid {os.getpid()}, argv {sys.argv!r})\n")
        f.write("".join(traceback.format_exception(err)))
    return path


def internal_error_message(command: str, err: BaseException, traceback_path: str) -> str:
    """What a user sees when mate-kd itself fails: the error, where it happened (notes added on the way up,
    e.g. compare's run directory), that finished work is kept, and where the traceback is."""
    where = "".join(f"\n  {note}" for note in getattr(err, "__notes__", []))
    return (f"mate-kd {command}: internal error: {type(err).__name__}: {err}{where}\n"
            "This is a bug in mate-kd, not a problem with your input; what was written before it (checkpoints, "
            "finished runs) is kept. Please report it with the traceback in " + traceback_path)


def close_process_group() -> None:
    """End a torchrun/accelerate process group before the interpreter exits: left to shutdown, gloo's threads
    can abort the process (SIGABRT, "terminate called without an active exception") after a finished run.
    Destroying the group joins them only once nothing else holds it (DDP-wrapped models do), so this runs after
    the command has returned; tests/workers/cli_shutdown.py checks that the threads are gone."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
