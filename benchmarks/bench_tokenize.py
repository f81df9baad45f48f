"""Tokenising an MNLI-sized training set: the uncached reference, then first and cached runs of the package's path.

Writes a synthetic MNLI-sized set (default 400,000 pairs; words drawn from the bundled WordPiece vocabulary,
premise 8-40 and hypothesis 4-20 words, as MNLI's are on average 22 and 11) twice: as a GLUE-layout
MNLI/train.tsv and as a .parquet file. Then, each in a fresh process so that peak memory (VmHWM) is its own:

- ``reference``: ``tasks.read_split`` + ``data.encode``, the package's path before the tokenisation cache;
- ``tsv-first`` / ``tsv-cached``: ``pipeline.encode_split`` on the TSV (readers, then ``datasets.map``),
  with an empty cache, then again;
- ``parquet-first`` / ``parquet-cached``: the same on the .parquet file (``datasets`` reads it).

Each prints one JSON line: ``seconds`` (resolving the task and encoding the split: reading, checking and
tokenising, or loading the cached ids; imports and tokenizer loading excluded),
``peak_rss_mb``, ``rss_before_mb`` (after imports), the number of tokens. A summary line gives the
cached/first ratios.

    python benchmarks/bench_tokenize.py                       # 400k pairs, tiny WordPiece tokenizer
    python benchmarks/bench_tokenize.py --rows 2000           # smoke run
    python benchmarks/bench_tokenize.py --tokenizer DIR       # another tokenizer (e.g. MiniLM's)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

MODES = ("reference", "tsv-first", "tsv-cached", "parquet-first", "parquet-cached")
LABELS = ("contradiction", "entailment", "neutral")


def write_data(work: str, rows: int, seed: int = 0) -> tuple[str, str]:
    """MNLI/train.tsv in the GLUE layout and train.parquet with the same pairs."""
    from datasets import Dataset

    from mate_kd.tasks import _MNLI_TRAIN
    from mate_kd.tiny import ASSETS_DIR

    with open(os.path.join(ASSETS_DIR, "wordpiece_vocab.txt"), encoding="utf-8") as f:
        words = [w.strip() for w in f if w.strip().isalpha()]
    rng = random.Random(seed)
    premises = [" ".join(rng.choices(words, k=rng.randint(8, 40))) for _ in range(rows)]
    hypotheses = [" ".join(rng.choices(words, k=rng.randint(4, 20))) for _ in range(rows)]
    labels = [rng.choice(LABELS) for _ in range(rows)]
    task_dir = os.path.join(work, "MNLI")
    os.makedirs(task_dir, exist_ok=True)
    with open(os.path.join(task_dir, "train.tsv"), "w", encoding="utf-8") as f:
        f.write("\t".join(_MNLI_TRAIN) + "\n")
        for i, (a, b, label) in enumerate(zip(premises, hypotheses, labels)):
            f.write("\t".join([str(i), str(i), f"{i}n", "fiction", "", "", "", "", a, b, label, label]) + "\n")
    parquet = os.path.join(work, "train.parquet")
    Dataset.from_dict({"premise": premises, "hypothesis": hypotheses, "label": labels}).to_parquet(parquet)
    return task_dir, parquet


def rss_mb() -> float:
    """Peak resident memory of this process so far, MB: VmHWM (Linux; reset by exec, unlike ru_maxrss, which a
    child inherits from the process that started it), else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, task_dir: str, parquet: str, tokenizer_dir: str) -> dict:
    """One measurement (run in its own process)."""
    from transformers import AutoTokenizer

    from mate_kd.config import parse_args
    from mate_kd.data import encode
    from mate_kd.pipeline import Models, encode_split, resolve_task
    from mate_kd.tasks import read_split

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if mode.startswith("parquet"):
        data = ["--train_file", parquet, "--text_column", "premise", "--text_pair_column", "hypothesis"]
    else:
        data = ["--task_name", "mnli", "--data_dir", task_dir]
    args = parse_args(["--model_name_or_path", tokenizer_dir, "--output_dir", "unused", *data], training=False)
    before = rss_mb()
    start = time.perf_counter()
    task = resolve_task(args)  # for parquet this loads the file into the datasets cache (the first time)
    if mode == "reference":
        split = encode(read_split(task, task_dir, "train"), tokenizer, args.max_seq_length, task)
    else:
        split = encode_split(args, task, Models(tokenizer, None, labels=list(task.labels)), "train")
    seconds = time.perf_counter() - start
    return {"mode": mode, "seconds": round(seconds, 2), "peak_rss_mb": round(rss_mb(), 1),
            "rss_before_mb": round(before, 1), "examples": len(split), "tokens": int(split.offsets[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000, help="Training pairs (MNLI has 392,702).")
    parser.add_argument("--tokenizer", help="Tokenizer directory (default: the bundled tiny WordPiece tokenizer).")
    parser.add_argument("--modes", default=",".join(MODES), help=f"Comma-separated, in order, out of {MODES}.")
    parser.add_argument("--work_dir", help="Keep data and cache here (default: a temporary directory).")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, task_dir, parquet, tokenizer_dir = json.loads(args.child)
        print(json.dumps(child(mode, task_dir, parquet, tokenizer_dir)))
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_tokenize_")
    os.makedirs(work, exist_ok=True)
    cache = os.path.join(work, "hf_datasets_cache")
    shutil.rmtree(cache, ignore_errors=True)  # every invocation starts with an empty cache
    tokenizer_dir = args.tokenizer
    if tokenizer_dir is None:
        from mate_kd.tiny import build_tokenizer
        tokenizer_dir = os.path.join(work, "tokenizer")
        build_tokenizer("bert").save_pretrained(tokenizer_dir)
    start = time.perf_counter()
    task_dir, parquet = write_data(work, args.rows)
    print(json.dumps({"wrote": work, "rows": args.rows, "seconds": round(time.perf_counter() - start, 1),
                      "tsv_mb": round(os.path.getsize(os.path.join(task_dir, "train.tsv")) / 2**20, 1),
                      "load_avg": os.getloadavg()}), flush=True)
    env = {**os.environ, "HF_DATASETS_CACHE": cache, "TOKENIZERS_PARALLELISM": os.environ.get(
        "TOKENIZERS_PARALLELISM", "true")}
    results = {}
    for mode in modes:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                              json.dumps([mode, task_dir, parquet, tokenizer_dir])],
                             env=env, capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(results[mode]), flush=True)
    summary = {"load_avg": os.getloadavg()}
    for source in ("tsv", "parquet"):
        first, cached = results.get(f"{source}-first"), results.get(f"{source}-cached")
        if first and cached:
            summary[f"{source}_cached_over_first"] = round(cached["seconds"] / first["seconds"], 4)
    if "reference" in results and "tsv-first" in results:
        summary["tsv_first_over_reference"] = round(results["tsv-first"]["seconds"] / results["reference"]["seconds"],
                                                    3)
    print(json.dumps({"summary": summary}))
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
