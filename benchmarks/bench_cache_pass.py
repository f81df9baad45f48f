"""Time the teacher-cache pass (one teacher forward per training example, before training) in the
package's length-sorted order against the plain dataset order it used before.

Models and data come from bench_loop.py (same scales, same GLUE-layout data). Prints one JSON
object per order and a summary with the speed-up and the padded/real token ratio of each.

    python benchmarks/bench_cache_pass.py --scale minilm --n_train 1600 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_loop  # noqa: E402

from mate_kd.config import parse_args  # noqa: E402
from mate_kd.data import make_loader  # noqa: E402
from mate_kd.loop import teacher_logits  # noqa: E402
from mate_kd.optim import make_accelerator  # noqa: E402
from mate_kd.models import forward_inputs  # noqa: E402
from mate_kd.pipeline import encode_split, load_models, resolve_task  # noqa: E402


@torch.no_grad()
def dataset_order_logits(teacher, split, tokenizer, batch_size: int) -> torch.Tensor:
    """The earlier cache pass: batches in dataset order, each padded to its longest example."""
    accepted = forward_inputs(teacher)
    rows = [teacher(**{k: v for k, v in b.items() if k in accepted}).logits
            for b in make_loader(split, tokenizer, batch_size, train=False)]
    return torch.cat(rows).float()


def padded_tokens(split, batch_size: int, order: list[int]) -> int:
    lengths = split.lengths()
    return sum(max(lengths[i] for i in order[k:k + batch_size]) * len(order[k:k + batch_size])
               for k in range(0, len(order), batch_size))


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=("tiny", "minilm", "paper-bert", "paper-roberta"), default="tiny")
    p.add_argument("--task", choices=tuple(bench_loop.TASKS), default="sst-2")
    p.add_argument("--n_train", type=int, default=1600)
    p.add_argument("--batch_size", type=int, default=64, help="The cache pass uses the eval batch size (64).")
    p.add_argument("--rounds", type=int, default=2, help="Alternate the two orders this many times each.")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--glue_dir", default=bench_loop.DEFAULT_GLUE)
    p.add_argument("--work_dir", default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    out = []
    with tempfile.TemporaryDirectory(prefix="mate_kd_cache_pass_") as tmp:
        root = a.work_dir or tmp
        task = bench_loop.get_task(bench_loop.TASKS[a.task])
        model_root = os.path.join(root, f"models-{a.scale}-{task.num_labels}")
        if not os.path.isfile(os.path.join(model_root, "generator", "config.json")):
            dirs = bench_loop.build_model_dirs(a.scale, model_root, task.num_labels, 42)
        else:
            dirs = {k: os.path.join(model_root, k) for k in ("teacher", "student", "generator")}
        name, data_dir = bench_loop.write_task_dir(a.task, os.path.join(root, f"data-{a.task}-{a.n_train}"),
                                                   a.n_train, 42, a.glue_dir)
        args = parse_args(["--model_name_or_path", dirs["student"], "--teacher_path", dirs["teacher"],
                           "--task_name", name, "--data_dir", data_dir, "--output_dir", os.path.join(tmp, "run"),
                           "--method", "kd", "--no_cuda"])
        task_spec = resolve_task(args)
        models = load_models(args, task_spec)
        split = encode_split(args, task_spec, models, "train", None, shuffle_seed=0)
        teacher, tokenizer = models.teacher.eval(), models.tokenizer
        accelerator = make_accelerator(args)
        passes = {"dataset-order": lambda: dataset_order_logits(teacher, split, tokenizer, a.batch_size),
                  "length-sorted": lambda: teacher_logits(teacher, split, tokenizer, a.batch_size, accelerator)}
        lengths = split.lengths()
        orders = {"dataset-order": list(range(len(split))),
                  "length-sorted": sorted(range(len(split)), key=lambda i: -lengths[i])}
        times: dict[str, list[float]] = {k: [] for k in passes}
        results = {}
        for r in range(a.rounds):
            for name_ in (list(passes) if r % 2 == 0 else list(passes)[::-1]):
                start = time.perf_counter()
                results[name_] = passes[name_]()
                times[name_].append(time.perf_counter() - start)
        torch.testing.assert_close(results["length-sorted"], results["dataset-order"], rtol=1e-4, atol=1e-4)
        for name_, ts in times.items():
            line = {"scale": a.scale, "task": a.task, "order": name_, "examples": len(split),
                    "batch_size": a.batch_size, "seconds": ts, "mean_s": sum(ts) / len(ts),
                    "padded_over_real_tokens": padded_tokens(split, a.batch_size, orders[name_]) / sum(lengths)}
            print(json.dumps(line), flush=True)
            out.append(line)
        summary = {"summary": True, "speedup": out[0]["mean_s"] / out[1]["mean_s"],
                   "threads": torch.get_num_threads(), "load_average": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(summary), flush=True)
        out.append(summary)
    return out


if __name__ == "__main__":
    main()
