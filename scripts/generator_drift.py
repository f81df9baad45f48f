"""How far MATE-KD's adversarial updates moved the generator, for every mate-kd run of a campaign.

For each run's saved generator (RUN/generator) against the starting generator: the relative
weight change ||W_end - W_start|| / ||W_start||, and the mean KL(G_end || G_start) of the
masked-LM distributions at the same masked positions of the same dev sentences (30% of tokens,
fixed seed), plus how often the most likely replacement token differs. It also shows whether the
generator collapsed onto a few tokens (the maximisation can drive it there): how many distinct
tokens are most likely over all masked positions, and the commonest one with its share. Prints a
markdown table, the starting generator first; --write also keeps each run's row in RUN/generator_drift.json.

    python scripts/generator_drift.py --start experiments_cpu/generator --dev experiments_cpu/gen_text/dev.jsonl \
        experiments_cpu/compare experiments_cpu/glr
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    import torch


def dev_sentences(path: str, n: int) -> list[str]:
    """The first n texts of a .jsonl ({"text": ...}) or one-column .tsv file with a header."""
    with open(path, encoding="utf-8") as f:
        if path.endswith(".jsonl"):
            return [json.loads(line)["text"] for line in f if line.strip()][:n]
        return [line.rstrip("\n") for line in f][1:n + 1]


def collapse(log_probs: torch.Tensor, tokenizer) -> dict:
    """Distinct most-likely tokens over the masked positions, and the commonest one with its share."""
    top = collections.Counter(log_probs.argmax(-1).tolist())
    token, count = top.most_common(1)[0]
    return {"distinct_top1": len(top), "commonest_top1": tokenizer.convert_ids_to_tokens(token),
            "commonest_top1_share": count / len(log_probs)}


def collapse_cells(c: dict) -> str:
    return f"{c['distinct_top1']} | {c['commonest_top1']!r} {100 * c['commonest_top1_share']:.1f}%"


def finished_runs(roots: list[str]) -> list[str]:
    """Runs under the roots that saved a generator and finished (an unfinished run has no eval_results.json)."""
    found = {os.path.dirname(d) for root in roots
             for d in glob.glob(os.path.join(root, "**", "seed*", "generator"), recursive=True)}
    return sorted(r for r in found if os.path.isfile(os.path.join(r, "eval_results.json")))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--start", required=True, help="The generator every run started from.")
    p.add_argument("--dev", required=True, help="Dev text (.jsonl with a text field, or a one-column .tsv).")
    p.add_argument("--sentences", type=int, default=256)
    p.add_argument("--write", action="store_true",
                   help="Also write RUN/generator_drift.json beside each run's results (the campaign syncs it, so "
                        "the drift outlives the generator's weights).")
    p.add_argument("roots", nargs="+", help="Campaign directories to search for runs/TASK/mate-kd*/seedN.")
    a = p.parse_args()
    for path, what in ((os.path.join(a.start, "config.json"), "--start: no generator"), (a.dev, "--dev: no file")):
        if not os.path.isfile(path):
            p.error(f"{what} at {path}")
    # Imported only now: they take about 7 s, and a usage error above should not wait for them.
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from mate_kd.perturb import choose_mask, masked_lm_logits
    from mate_kd.pipeline import special_token_ids

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(a.start)
    batch = dict(tokenizer(dev_sentences(a.dev, a.sentences), padding=True, truncation=True, max_length=64,
                           return_tensors="pt"))
    mask = choose_mask(batch["input_ids"], batch["attention_mask"], special_token_ids(tokenizer), 0.3)
    masked = batch["input_ids"].masked_fill(mask, tokenizer.mask_token_id)

    def log_probs(path: str) -> torch.Tensor:
        model = AutoModelForMaskedLM.from_pretrained(path).eval()
        with torch.no_grad():
            return F.log_softmax(masked_lm_logits(model, masked, batch["attention_mask"], mask).float(), dim=-1)

    start_weights = {k: v.float() for k, v in load_file(os.path.join(a.start, "model.safetensors")).items()}
    reference = log_probs(a.start)
    start = collapse(reference, tokenizer)
    probe = {"start": os.path.abspath(a.start), "dev": os.path.abspath(a.dev), "sentences": len(batch["input_ids"]),
             "masked_positions": int(mask.sum()), "mask_seed": 0}
    print(f"{probe['masked_positions']} masked positions in {probe['sentences']} dev sentences.\n")
    print("| run | generator lr | generator updates | relative weight change | mean KL(end ‖ start) "
          "| top-1 replacement changed | distinct top-1 tokens | commonest top-1 token |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| start: {a.start} | | 0 | 0 | 0 | 0 | {collapse_cells(start)} |")
    for run in finished_runs(a.roots):
        with open(os.path.join(run, "run_config.yaml"), encoding="utf-8") as f:
            settings = yaml.safe_load(f)
        with open(os.path.join(run, "eval_results.json"), encoding="utf-8") as f:
            final = json.load(f)
        weights = load_file(os.path.join(run, "generator", "model.safetensors"))
        num = sum(((weights[k].float() - start_weights[k]) ** 2).sum() for k in weights if k in start_weights)
        den = sum((start_weights[k] ** 2).sum() for k in weights if k in start_weights)
        end = log_probs(os.path.join(run, "generator"))
        record = {"generator_learning_rate": settings["generator_learning_rate"],
                  "generator_updates": final["progress"]["generator_updates"],
                  "relative_weight_change": (num / den).sqrt().item(),
                  "mean_kl_end_start": (end.exp() * (end - reference)).sum(-1).mean().item(),
                  "top1_changed": (end.argmax(-1) != reference.argmax(-1)).float().mean().item(),
                  **collapse(end, tokenizer), "start_generator": start, "probe": probe}
        print(f"| {run} | {record['generator_learning_rate']:g} | {record['generator_updates']} "
              f"| {record['relative_weight_change']:.2e} | {record['mean_kl_end_start']:.2e} "
              f"| {100 * record['top1_changed']:.1f}% | {collapse_cells(record)} |")
        if a.write:
            with open(os.path.join(run, "generator_drift.json"), "w", encoding="utf-8") as f:
                json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
