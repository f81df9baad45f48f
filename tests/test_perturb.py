"""Masking, generator logits at masked positions, straight-through Gumbel sampling, x' construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chisquare
from torch import nn
from transformers import AutoModelForMaskedLM, DistilBertConfig, DistilBertForMaskedLM

from mate_kd.errors import ModelError
from mate_kd.objectives import MateKD, Settings
from mate_kd.perturb import (choose_mask, forbid, masked_lm_logits, perturbed_embeddings, perturbed_ids, sample_ids,
                             straight_through_sample)
from mate_kd.pipeline import special_token_ids
from mate_kd.tiny import build_tokenizer


def _synthetic_ids(rows: int, length: int, seed: int = 0):
    """[CLS] w w ... [SEP] [PAD]..., ragged lengths, with [UNK] and [MASK] sprinkled in as ordinary text."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 4000, (rows, length), generator=g)
    lengths = torch.randint(3, length + 1, (rows,), generator=g)
    attention = (torch.arange(length)[None, :] < lengths[:, None]).long()
    ids[:, 0] = 2
    ids[torch.arange(rows), lengths - 1] = 3
    sprinkle = torch.rand(rows, length, generator=g) < 0.05
    ids = torch.where(sprinkle & (ids > 3), torch.tensor(4), ids)
    ids = ids.masked_fill(attention == 0, 0)
    return ids, attention


@pytest.mark.parametrize("p", [0.3, 0.15])
def test_choose_mask_rate_and_never_special_or_pad(p):
    tokenizer = build_tokenizer("bert")
    special = special_token_ids(tokenizer)
    assert set(special.tolist()) >= {0, 1, 2, 3, 4}
    ids, attention = _synthetic_ids(1700, 256)
    maskable = attention.bool() & ~torch.isin(ids, special)
    n = int(maskable.sum())
    assert n >= 200_000
    torch.manual_seed(123)
    mask = choose_mask(ids, attention, special, p)
    assert mask.dtype == torch.bool and mask.shape == ids.shape
    assert not (mask & ~maskable).any(), "special or pad token selected"
    assert not mask[attention == 0].any()
    # padding is excluded by the attention mask itself, not only because [PAD] is special
    garbage = ids.where(attention.bool(), torch.randint(5, 4000, ids.shape))
    assert not choose_mask(garbage, attention, special, p)[attention == 0].any()
    assert not torch.isin(ids[mask], special).any()
    rate = mask[maskable].float().mean().item()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(rate - p) < 4 * sigma, (rate, p, sigma)
    per_position = mask[:, 1:40].float().sum(0) / maskable[:, 1:40].float().sum(0)
    assert (per_position - p).abs().max() < 0.06, "masking is not uniform over positions"


def test_choose_mask_fresh_each_call():
    tokenizer = build_tokenizer("bert")
    ids, attention = _synthetic_ids(8, 32)
    special = special_token_ids(tokenizer)
    assert not torch.equal(choose_mask(ids, attention, special, 0.3), choose_mask(ids, attention, special, 0.3))


def test_straight_through_forward_is_one_hot():
    torch.manual_seed(0)
    logits = torch.randn(500, 37) * 3
    y = straight_through_sample(logits, 1.0)
    assert y.shape == logits.shape and y.dtype == torch.float32
    assert torch.all((y == 0) | (y == 1))
    assert torch.equal(y.sum(-1), torch.ones(500))
    assert torch.equal(y.argmax(-1), torch.nonzero(y)[:, 1])


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_straight_through_backward_is_soft_gumbel_gradient(tau):
    base = torch.randn(6, 11)
    weights = torch.randn(6, 11)

    torch.manual_seed(7)
    logits_hard = base.clone().requires_grad_(True)
    hard = straight_through_sample(logits_hard, tau)
    (hard * weights).sum().backward()

    torch.manual_seed(7)
    logits_soft = base.clone().requires_grad_(True)
    soft = F.gumbel_softmax(logits_soft, tau=tau, hard=False)
    (soft * weights).sum().backward()

    assert torch.equal(hard.argmax(-1), soft.argmax(-1)), "same noise must give the same sample"
    assert logits_hard.grad is not None and logits_hard.grad.abs().sum() > 0
    torch.testing.assert_close(logits_hard.grad, logits_soft.grad, rtol=1e-6, atol=1e-7)


def _expected(probs: np.ndarray, total: float) -> np.ndarray:
    """Expected counts summing exactly to `total` (scipy checks the sums agree)."""
    expected = probs / probs.sum() * total
    expected[-1] = total - expected[:-1].sum()
    return expected


def test_straight_through_sample_follows_softmax():
    torch.manual_seed(1)
    probs = torch.tensor([0.5, 0.25, 0.15, 0.07, 0.03])
    logits = probs.log().expand(40_000, 5)
    counts = straight_through_sample(logits, 1.0).sum(0).double().numpy()
    assert chisquare(counts, _expected(probs.double().numpy(), counts.sum())).pvalue > 1e-4


def test_sample_ids_follows_softmax():
    torch.manual_seed(2)
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5, 1.5])
    draws = sample_ids(logits.expand(200_000, 6))
    assert draws.shape == (200_000,) and draws.dtype == torch.long
    counts = np.bincount(draws.numpy(), minlength=6)
    expected = _expected(torch.softmax(logits.double(), -1).numpy(), len(draws))
    assert chisquare(counts, expected).pvalue > 1e-4
    # and a clearly wrong distribution is rejected by the same check (the check can fail)
    assert chisquare(counts, np.full(6, len(draws) / 6)).pvalue < 1e-4


def test_sample_ids_draws_each_row_from_its_own_distribution():
    """Rows differ (so rows cannot be mixed up), and small probabilities in a 30k vocabulary keep their mass."""
    torch.manual_seed(4)
    vocab, n, chunk = 30_000, 6_000, 1_000
    logits = torch.full((2, vocab), -30.0)
    top = [5, 17, vocab - 1]
    logits[0, top] = torch.tensor([2.0, 1.0, 0.0])
    logits[1, :] = 0.0  # uniform, except one token with 1000x the mass of the others
    logits[1, 123] = math.log(1000.0)
    draws = torch.cat([sample_ids(logits.repeat_interleave(chunk, dim=0)).view(2, chunk) for _ in range(n // chunk)],
                      dim=1)
    probs = torch.softmax(logits.double(), -1)
    counts = np.bincount(draws[0].numpy(), minlength=vocab)[top]
    assert counts.sum() >= n - 2  # the other 29,997 tokens hold ~1e-14 of the mass each
    assert chisquare(counts, _expected(probs[0, top].numpy() / probs[0, top].sum().item(), counts.sum())).pvalue > 1e-4
    hits = int((draws[1] == 123).sum())
    expected = n * probs[1, 123].item()  # ~3.2% of the draws
    assert abs(hits - expected) < 5 * math.sqrt(expected)
    assert len(torch.unique(draws[1])) > 4_500, "the uniform part of row 1 is sampled across the vocabulary"


def test_sample_ids_never_draws_forbidden_first_or_last_tokens():
    torch.manual_seed(5)
    logits = forbid(torch.randn(100_000, 7), torch.tensor([0, 6]))
    draws = sample_ids(logits)
    assert draws.min() >= 1 and draws.max() <= 5 and len(torch.unique(draws)) == 5


def test_forbid_never_samples_special_ids():
    torch.manual_seed(3)
    special = torch.tensor([0, 2, 4])
    logits = torch.zeros(50_000, 8)
    logits[:, special] = 5.0  # the forbidden tokens would otherwise dominate
    allowed = forbid(logits, special)
    assert torch.isneginf(allowed[:, special]).all() and torch.equal(allowed[:, [1, 3]], logits[:, [1, 3]])
    assert not torch.isin(sample_ids(allowed), special).any()
    hard = straight_through_sample(allowed, 1.0)
    assert not torch.isin(hard.argmax(-1), special).any()
    assert torch.isin(sample_ids(logits), special).any()


def test_perturbed_ids_and_embeddings_place_samples_at_masked_positions(tiny_bert, trio):
    tokenizer, student, _, _ = trio(tiny_bert)
    ids = tokenizer(["the movie is good .", "fun"], padding=True, return_tensors="pt")["input_ids"]
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[0, 1], mask[0, 3], mask[1, 1] = True, True, True
    sampled = torch.tensor([10, 11, 12])
    x_prime = perturbed_ids(ids, mask, sampled)
    assert x_prime[0, 1] == 10 and x_prime[0, 3] == 11 and x_prime[1, 1] == 12
    assert torch.equal(x_prime[~mask], ids[~mask])
    one_hot = F.one_hot(sampled, student.config.vocab_size).float()
    e = perturbed_embeddings(student, ids, mask, one_hot)
    torch.testing.assert_close(e, student.get_input_embeddings()(x_prime), rtol=0, atol=1e-7)


def _distilbert_mlm(tokenizer):
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    return DistilBertForMaskedLM(config).eval()


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_masked_lm_logits_equal_full_logits_at_mask(arch, tiny_bert, tiny_roberta, batch_for):
    paths = tiny_roberta if arch == "roberta" else tiny_bert
    tokenizer = build_tokenizer("roberta" if arch == "roberta" else "bert")
    generator = (_distilbert_mlm(tokenizer) if arch == "distilbert"
                 else AutoModelForMaskedLM.from_pretrained(paths["generator"]).eval())
    batch = batch_for(tokenizer)
    special = special_token_ids(tokenizer)
    torch.manual_seed(5)
    mask = choose_mask(batch["input_ids"], batch["attention_mask"], special, 0.3)
    assert mask.sum() >= 3
    masked = batch["input_ids"].masked_fill(mask, tokenizer.mask_token_id)
    with torch.no_grad():
        full = generator(input_ids=masked, attention_mask=batch["attention_mask"]).logits
        partial = masked_lm_logits(generator, masked, batch["attention_mask"], mask)
    assert partial.shape == (int(mask.sum()), len(tokenizer))
    torch.testing.assert_close(partial, full[mask], rtol=1e-5, atol=1e-5)
    head = generator.get_output_embeddings()
    assert len(head._forward_pre_hooks) == 0, "hook left on the generator's head"
    with torch.no_grad():
        again = generator(input_ids=masked, attention_mask=batch["attention_mask"]).logits
    assert again.shape == full.shape


def test_masked_lm_logits_removes_hook_on_error(tiny_bert):
    generator = AutoModelForMaskedLM.from_pretrained(tiny_bert["generator"]).eval()
    ids = torch.tensor([[2, 10, 11, 3]])
    with pytest.raises(Exception):
        masked_lm_logits(generator, ids, torch.ones_like(ids), torch.ones(1, 3, dtype=torch.bool))
    assert len(generator.get_output_embeddings()._forward_pre_hooks) == 0


def test_masked_lm_logits_carry_gradient_to_generator(tiny_bert):
    generator = AutoModelForMaskedLM.from_pretrained(tiny_bert["generator"]).eval()
    ids = torch.tensor([[2, 10, 4, 12, 4, 3]])
    mask = ids == 4
    logits = masked_lm_logits(generator, ids, torch.ones_like(ids), mask)
    (straight_through_sample(logits, 1.0) * torch.randn_like(logits)).sum().backward()
    grads = [p.grad for p in generator.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0


def test_masked_lm_logits_refuse_a_head_outside_get_output_embeddings(tiny_bert):
    """If the head ran without the gathering hook, logits would be (B, L, V) and x' would take the wrong rows."""
    generator = AutoModelForMaskedLM.from_pretrained(tiny_bert["generator"]).eval()
    generator.get_output_embeddings = lambda: nn.Linear(1, 1)  # the hook lands on a module the forward never calls
    ids = torch.tensor([[2, 10, 4, 12, 4, 3]])
    with pytest.raises(ModelError, match=r"returned logits of shape \(1, 6, \d+\), not one row per masked position "
                                         r"\(its output embedding never ran\).*get_output_embeddings"):
        masked_lm_logits(generator, ids, torch.ones_like(ids), ids == 4)


def test_pad_is_never_sampled_so_the_ids_path_equals_the_embedding_path(tiny_roberta, trio, batch_for):
    """A RoBERTa generator that puts nearly all its mass on <pad>: x' must not hold it.

    RoBERTa derives position ids from `input_ids != pad`, so a pad inside x' would shift every later position in
    the student step (x' as ids) but not in the generator step (x' as embeddings).
    """
    tokenizer, student, teacher, generator = trio(tiny_roberta)
    pad, vocab = tokenizer.pad_token_id, len(tokenizer)
    with torch.no_grad():
        generator.get_output_embeddings().bias[pad] = 50.0
    objective = MateKD(student, teacher, generator, Settings(), special_token_ids(tokenizer), tokenizer.mask_token_id)
    batch = batch_for(tokenizer)
    ids, attention = batch["input_ids"], batch["attention_mask"]
    torch.manual_seed(0)
    with torch.no_grad():
        mask, logits = objective._mask_and_fill(generator, batch)  # the step both objectives sample from
        unforbidden = masked_lm_logits(generator, ids.masked_fill(mask, tokenizer.mask_token_id), attention, mask)
    assert mask.sum() >= 3 and (sample_ids(unforbidden) == pad).all(), "the generator must prefer <pad>"
    sampled = sample_ids(logits)
    assert not (sampled == pad).any()
    assert not (straight_through_sample(logits, 1.0).argmax(-1) == pad).any()

    def student_logits(**inputs):
        with torch.no_grad():
            return student(attention_mask=attention, **inputs).logits

    by_ids = student_logits(input_ids=perturbed_ids(ids, mask, sampled))
    by_embeddings = student_logits(inputs_embeds=perturbed_embeddings(student, ids, mask,
                                                                      F.one_hot(sampled, vocab).float()))
    torch.testing.assert_close(by_ids, by_embeddings, rtol=1e-5, atol=1e-6)
    # the check can fail: with <pad> in x' the two paths disagree
    pads = torch.full_like(sampled, pad)
    with_pad = student_logits(input_ids=perturbed_ids(ids, mask, pads))
    assert not torch.allclose(with_pad, student_logits(
        inputs_embeds=perturbed_embeddings(student, ids, mask, F.one_hot(pads, vocab).float())), atol=1e-4)
