"""Write a small, seeded sample of GLUE SST-2 into mate_kd/assets/sst2_sample.

Offline tests, the quickstart and benchmarks need real sentences without a
download, so a fixed sample of the original files ships with the package.

Usage: python scripts/make_sst2_sample.py [SST2_DIR] [--out OUT_DIR]
"""

from __future__ import annotations

import argparse
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SRC = os.path.join(HERE, "..", "..", "shared", "data", "glue", "SST-2")
DEFAULT_OUT = os.path.join(HERE, "..", "mate_kd", "assets", "sst2_sample")
SEED = 20210801
N_TRAIN = 2000
N_DEV = 400
N_TEST = 100
MIN_WORDS = 4


def read_rows(path: str) -> list[tuple[str, str]]:
    """Read an SST-2 `sentence\\tlabel` file, keeping sentences byte-for-byte."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["sentence", "label"]:
            raise ValueError(f"{path}: unexpected header {header}")
        rows = []
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            sentence, label = line.rsplit("\t", 1)
            rows.append((sentence, label))
    return rows


def stratified_sample(rows: list[tuple[str, str]], n: int, rng: random.Random) -> list[tuple[str, str]]:
    """Draw n rows keeping the label ratio of `rows`, in a shuffled order."""
    by_label: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    labels = sorted(by_label)
    picked: list[tuple[str, str]] = []
    remaining = n
    for i, label in enumerate(labels):
        group = by_label[label]
        k = remaining if i == len(labels) - 1 else round(n * len(group) / len(rows))
        picked.extend(rng.sample(group, k))
        remaining -= k
    rng.shuffle(picked)
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", default=DEFAULT_SRC, help="directory holding SST-2 train.tsv and dev.tsv")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args()
    rng = random.Random(SEED)

    train_all = read_rows(os.path.join(args.src, "train.tsv"))
    seen: set[str] = set()
    train_pool = []
    for sentence, label in train_all:
        key = sentence.strip()
        if len(key.split()) >= MIN_WORDS and key not in seen:
            seen.add(key)
            train_pool.append((sentence, label))
    train = stratified_sample(train_pool, N_TRAIN, rng)

    dev_all = read_rows(os.path.join(args.src, "dev.tsv"))
    order = list(range(len(dev_all)))
    rng.shuffle(order)
    dev_idx = sorted(order[:N_DEV])
    dev = [dev_all[i] for i in dev_idx]
    dev_sentences = {dev_all[i][0].strip() for i in dev_idx}
    rest = [i for i in order[N_DEV:] if dev_all[i][0].strip() not in dev_sentences]
    test = [dev_all[i] for i in sorted(rest[:N_TEST])]

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("sentence\tlabel\n")
        f.writelines(f"{s}\t{y}\n" for s, y in train)
    with open(os.path.join(args.out, "dev.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("sentence\tlabel\n")
        f.writelines(f"{s}\t{y}\n" for s, y in dev)
    with open(os.path.join(args.out, "test.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("index\tsentence\n")
        f.writelines(f"{i}\t{s}\n" for i, (s, _) in enumerate(test))
    for name, rows in (("train", train), ("dev", dev), ("test", test)):
        pos = sum(y == "1" for _, y in rows)
        print(f"{name}: {len(rows)} rows, {pos} positive")


if __name__ == "__main__":
    main()
