"""How far MATE-KD's adversarial updates moved the generator, for every mate-kd run of a campaign.

For each run's saved generator (RUN/generator) against the starting generator: the relative
weight change ||W_end - W_start|| / ||W_start||, and the mean KL(G_end || G_start) of the
masked-LM distributions at the same masked positions of the same dev sentences (30% of tokens,
fixed seed), plus how often the most likely replacement token differs. It also shows whether the
generator collapsed onto a few tokens (the maximisation can drive it there): how many distinct
tokens are most likely over all masked positions, and the commonest one with its share. Prints a
markdown table, the starting generator first.

    python scripts/generator_drift.py --start experiments_cpu/generator --dev experiments_cpu/gen_text/dev.jsonl \
        experiments_cpu/compare experiments_cpu/glr
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os

import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

from mate_kd.perturb import choose_mask, masked_lm_logits
from mate_kd.pipeline import special_token_ids


def dev_sentences(path: str, n: int) -> list[str]:
    """The first n texts of a .jsonl ({"text": ...}) or one-column .tsv file with a header."""
    with open(path, encoding="utf-8") as f:
        if path.endswith(".jsonl"):
            return [json.loads(line)["text"] for line in f if line.strip()][:n]
        return [line.rstrip("\n") for line in f][1:n + 1]


def collapse(log_probs: torch.Tensor, tokenizer) -> str:
    """Distinct most-likely tokens over the masked positions, and the commonest one with its share."""
    top = collections.Counter(log_probs.argmax(-1).tolist())
    token, count = top.most_common(1)[0]
    return f"{len(top)} | {tokenizer.convert_ids_to_tokens(token)!r} {100 * count / len(log_probs):.1f}%"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--start", required=True, help="The generator every run started from.")
    p.add_argument("--dev", required=True, help="Dev text (.jsonl with a text field, or a one-column .tsv).")
    p.add_argument("--sentences", type=int, default=256)
    p.add_argument("roots", nargs="+", help="Campaign directories to search for runs/TASK/mate-kd*/seedN.")
    a = p.parse_args()
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
    runs = sorted({os.path.dirname(d) for root in a.roots
                   for d in glob.glob(os.path.join(root, "**", "seed*", "generator"), recursive=True)})
    print(f"{int(mask.sum())} masked positions in {len(batch['input_ids'])} dev sentences.\n")
    print("| run | generator lr | generator updates | relative weight change | mean KL(end ‖ start) "
          "| top-1 replacement changed | distinct top-1 tokens | commonest top-1 token |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| start: {a.start} | | 0 | 0 | 0 | 0 | {collapse(reference, tokenizer)} |")
    for run in runs:
        settings = yaml.safe_load(open(os.path.join(run, "run_config.yaml"), encoding="utf-8"))
        final = json.load(open(os.path.join(run, "eval_results.json"), encoding="utf-8"))
        weights = load_file(os.path.join(run, "generator", "model.safetensors"))
        num = sum(((weights[k].float() - start_weights[k]) ** 2).sum() for k in weights if k in start_weights)
        den = sum((start_weights[k] ** 2).sum() for k in weights if k in start_weights)
        end = log_probs(os.path.join(run, "generator"))
        kl = (end.exp() * (end - reference)).sum(-1).mean().item()
        changed = (end.argmax(-1) != reference.argmax(-1)).float().mean().item()
        updates = final["progress"]["generator_updates"]
        print(f"| {run} | {settings['generator_learning_rate']:g} | {updates} | {(num / den).sqrt().item():.2e} "
              f"| {kl:.2e} | {100 * changed:.1f}% | {collapse(end, tokenizer)} |")


if __name__ == "__main__":
    main()
