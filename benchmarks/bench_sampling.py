"""Time the sampling of x' in the student step alone: the package's inverse-CDF `sample_ids` against
the earlier `Categorical.sample` (prototypes.categorical_sample_ids), on generator-like logits.

Whole-step timings on a shared machine cannot resolve a few percent, so this times the one call.
Prints one JSON object per sampler and a summary with the speed-up.

    python benchmarks/bench_sampling.py --rows 105 --vocab 30522 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import prototypes  # noqa: E402

from mate_kd.perturb import sample_ids  # noqa: E402


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=105, help="Masked positions per batch (SST-2, batch 32, p 0.3: ~105).")
    p.add_argument("--vocab", type=int, default=30522)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    logits = 3 * torch.randn(a.rows, a.vocab, device=a.device)  # peaked like an MLM head's output
    samplers = {"inverse-cdf": sample_ids, "categorical": prototypes.categorical_sample_ids}
    times: dict[str, list[float]] = {k: [] for k in samplers}
    for r in range(a.rounds):
        for name in (list(samplers) if r % 2 == 0 else list(samplers)[::-1]):
            samplers[name](logits)  # warm-up
            for _ in range(a.repeats):
                start = time.perf_counter()
                samplers[name](logits)
                if a.device == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
    out = []
    for name, ts in times.items():
        line = {"sampler": name, "rows": a.rows, "vocab": a.vocab, "device": a.device,
                "median_ms": 1000 * statistics.median(ts), "mean_ms": 1000 * statistics.fmean(ts), "calls": len(ts)}
        print(json.dumps(line), flush=True)
        out.append(line)
    summary = {"summary": True, "speedup_median": out[1]["median_ms"] / out[0]["median_ms"],
               "threads": torch.get_num_threads(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(summary), flush=True)
    return out + [summary]


if __name__ == "__main__":
    main()
