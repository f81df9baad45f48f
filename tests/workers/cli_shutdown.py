"""Run a mate-kd command under torchrun as `python -m mate_kd` does, and fail unless ending the process group
joined gloo's threads: a thread left running into interpreter shutdown can abort a finished run (SIGABRT)."""

import sys

from threads import gloo_threads  # beside this script, which torchrun puts first on sys.path

from mate_kd import cli

real_close = cli.close_process_group
seen = {}


def checked_close() -> None:
    seen["before"] = gloo_threads()
    real_close()
    seen["after"] = gloo_threads()


cli.close_process_group = checked_close
code = cli.main(sys.argv[1:])
if not seen.get("before"):
    sys.exit(f"no gloo threads while the process group was up ({seen}): nothing was checked")
if seen["after"]:
    sys.exit(f"gloo threads outlived close_process_group: {seen['after']}")
sys.exit(code)
