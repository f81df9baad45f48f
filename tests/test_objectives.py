"""The two objectives against values computed independently by calling the models directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mate_kd.objectives as objectives
from mate_kd.config import parse_args
from mate_kd.objectives import MateKD, Settings
from mate_kd.perturb import choose_mask, perturbed_embeddings
from mate_kd.pipeline import special_token_ids


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))


def soft_ce(s: torch.Tensor, t: torch.Tensor) -> float:
    """-mean_b sum_c softmax(t)_c log softmax(s)_c, in float64 numpy."""
    s, t = s.detach().numpy(), t.detach().numpy()
    return float(-(np.exp(_log_softmax(t)) * _log_softmax(s)).sum(-1).mean())


def cross_entropy(s: torch.Tensor, y: torch.Tensor) -> float:
    return float(-_log_softmax(s.detach().numpy())[np.arange(len(y)), y.numpy()].mean())


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.detach().numpy().astype(np.float64).reshape(-1) - b.detach().numpy().reshape(-1)) ** 2).mean())


def fixed_mask(batch: dict, tokenizer, seed: int = 11) -> torch.Tensor:
    torch.manual_seed(seed)
    mask = choose_mask(batch["input_ids"], batch["attention_mask"], special_token_ids(tokenizer), 0.3)
    assert mask.sum() >= 3 and mask.any(1).sum() >= 2
    return mask


def call(model, ids, batch):
    """A model's logits on ids, given the batch's attention mask and, where it takes them, segment ids."""
    extra = {}
    if "token_type_ids" in batch and model.config.model_type != "distilbert":
        extra["token_type_ids"] = batch["token_type_ids"]
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=batch["attention_mask"], **extra).logits


def objective_for(tokenizer, student, teacher, generator, **settings) -> MateKD:
    return MateKD(student, teacher, generator, Settings(**settings), special_token_ids(tokenizer),
                  tokenizer.mask_token_id)


@pytest.fixture
def pinned(monkeypatch):
    """Pin the mask and the sampled ids; record what the objective asked the generator."""
    seen: dict = {}

    def pin(mask: torch.Tensor, sampled: torch.Tensor) -> dict:
        def choose(input_ids, attention_mask, special_ids, p):
            seen["p"] = p
            return mask.clone()

        def sample(logits):
            seen["logits"] = logits.detach().clone()
            return sampled.clone()

        monkeypatch.setattr(objectives, "choose_mask", choose)
        monkeypatch.setattr(objectives, "sample_ids", sample)
        return seen

    return pin


@pytest.mark.parametrize("family,pairs", [("bert", True), ("bert", False), ("roberta", False)])
def test_student_loss_is_thirds_of_ce_adv_kd(family, pairs, request, trio, batch_for, pinned):
    paths = request.getfixturevalue(f"tiny_{family}")
    tokenizer, student, teacher, generator = trio(paths)
    batch = batch_for(tokenizer, pairs=pairs)
    assert ("token_type_ids" in batch) == (pairs and family == "bert")
    ids, mask = batch["input_ids"], fixed_mask(batch, tokenizer)
    torch.manual_seed(0)
    sampled = torch.randint(5, len(tokenizer) - 1, (int(mask.sum()),))
    seen = pinned(mask, sampled)

    loss, terms = objective_for(tokenizer, student, teacher, generator).student_loss(batch)

    x_prime = ids.clone()
    x_prime[mask] = sampled
    s_x, t_x = call(student, ids, batch), call(teacher, ids, batch)
    s_xp, t_xp = call(student, x_prime, batch), call(teacher, x_prime, batch)
    ce, adv, kd = cross_entropy(s_x, batch["labels"]), soft_ce(s_xp, t_xp), soft_ce(s_x, t_x)
    assert terms["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert terms["adv"].item() == pytest.approx(adv, rel=1e-5)
    assert terms["kd"].item() == pytest.approx(kd, rel=1e-5)
    assert loss.item() == pytest.approx((ce + adv + kd) / 3, rel=1e-5)
    assert abs(adv - kd) > 1e-6, "x' must differ from x for this check to mean anything"
    assert seen["p"] == 0.3
    masked = ids.masked_fill(mask, tokenizer.mask_token_id)
    with torch.no_grad():
        full = generator(input_ids=masked, attention_mask=batch["attention_mask"],
                         **({"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {})).logits
    expected = full[mask].index_fill(-1, torch.tensor([tokenizer.pad_token_id]), float("-inf"))  # pad: never sampled
    torch.testing.assert_close(seen["logits"], expected, rtol=1e-5, atol=1e-5)
    loss.backward()
    assert all(p.grad is None for p in generator.parameters()), "student step must not backprop into G"
    assert sum(p.grad.abs().sum() for p in student.parameters() if p.grad is not None) > 0


def test_student_loss_regression_uses_mse(tiny_regression, trio, batch_for, pinned):
    tokenizer, student, teacher, generator = trio(tiny_regression)
    batch = batch_for(tokenizer, pairs=True, labels=torch.tensor([4.5, 0.2, 3.0, 1.25]))
    ids, mask = batch["input_ids"], fixed_mask(batch, tokenizer)
    sampled = torch.arange(100, 100 + int(mask.sum()))
    pinned(mask, sampled)
    loss, terms = objective_for(tokenizer, student, teacher, generator).student_loss(batch)
    x_prime = ids.clone()
    x_prime[mask] = sampled
    s_x, t_x = call(student, ids, batch), call(teacher, ids, batch)
    s_xp, t_xp = call(student, x_prime, batch), call(teacher, x_prime, batch)
    assert s_x.shape == (4, 1)
    ce, adv, kd = mse(s_x, batch["labels"]), mse(s_xp, t_xp), mse(s_x, t_x)
    assert terms["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert terms["adv"].item() == pytest.approx(adv, rel=1e-5)
    assert terms["kd"].item() == pytest.approx(kd, rel=1e-5)
    assert loss.item() == pytest.approx((ce + adv + kd) / 3, rel=1e-5)


def test_kd_weights_skip_the_generator(tiny_bert, trio, batch_for):
    tokenizer, student, teacher, _ = trio(tiny_bert)
    batch = batch_for(tokenizer)
    objective = objective_for(tokenizer, student, teacher, None, ce_weight=0.5, kd_weight=0.5, adv_weight=0.0)
    loss, terms = objective.student_loss(batch)
    ids = batch["input_ids"]
    s_x, t_x = call(student, ids, batch), call(teacher, ids, batch)
    ce, kd = cross_entropy(s_x, batch["labels"]), soft_ce(s_x, t_x)
    assert set(terms) == {"ce", "kd"}
    assert loss.item() == pytest.approx(0.5 * ce + 0.5 * kd, rel=1e-5)


def test_finetune_is_cross_entropy_only(tiny_bert, trio, batch_for):
    tokenizer, student, _, _ = trio(tiny_bert)
    batch = batch_for(tokenizer)
    objective = objective_for(tokenizer, student, None, None, ce_weight=1.0, kd_weight=0.0, adv_weight=0.0)
    loss, terms = objective.student_loss(batch)
    assert set(terms) == {"ce"}
    assert loss.item() == pytest.approx(cross_entropy(call(student, batch["input_ids"], batch), batch["labels"]),
                                        rel=1e-5)


@pytest.mark.parametrize("argv,expected", [
    ([], (1 / 3, 1 / 3, 1 / 3)),
    (["--method", "kd"], (0.5, 0.5, 0.0)),
    (["--method", "finetune"], (1.0, 0.0, 0.0)),
    (["--method", "kd", "--adv_weight", "0.7", "--kd_weight", "0.9"], (0.5, 0.9, 0.0)),
    (["--ce_weight", "0.2", "--adv_weight", "0.5"], (0.2, 1 / 3, 0.5)),
])
def test_method_weights(argv, expected, tmp_path):
    base = ["--model_name_or_path", "s", "--teacher_path", "t", "--generator_path", "g", "--task_name", "sst-2",
            "--data_dir", "d", "--output_dir", str(tmp_path)]
    assert parse_args(base + argv).weights() == pytest.approx(expected)


@pytest.mark.parametrize("family,pairs", [("bert", True), ("roberta", False)])
def test_generator_loss_is_minus_divergence_on_perturbed_text(family, pairs, request, trio, batch_for, monkeypatch):
    paths = request.getfixturevalue(f"tiny_{family}")
    tokenizer, student, teacher, generator = trio(paths)
    batch = batch_for(tokenizer, pairs=pairs)
    ids, mask = batch["input_ids"], fixed_mask(batch, tokenizer, seed=4)
    monkeypatch.setattr(objectives, "choose_mask", lambda *a, **k: mask.clone())
    drawn = {}
    real_sample = objectives.straight_through_sample

    def spy(logits, temperature):
        drawn["one_hot"] = real_sample(logits, temperature)
        drawn["temperature"] = temperature
        return drawn["one_hot"]

    monkeypatch.setattr(objectives, "straight_through_sample", spy)
    loss = objective_for(tokenizer, student, teacher, generator).generator_loss(batch)

    one_hot = drawn["one_hot"]
    assert one_hot.shape == (int(mask.sum()), len(tokenizer)) and drawn["temperature"] == 1.0
    x_prime = ids.clone()
    x_prime[mask] = one_hot.argmax(-1)
    expected = -soft_ce(call(student, x_prime, batch), call(teacher, x_prime, batch))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    g_grad = sum(p.grad.abs().sum() for p in generator.parameters() if p.grad is not None)
    assert g_grad > 0, "the generator must receive a gradient through the straight-through sample"
    assert all(p.grad is None for p in teacher.parameters())


def test_generator_loss_regression_is_minus_mse(tiny_regression, trio, batch_for, monkeypatch):
    tokenizer, student, teacher, generator = trio(tiny_regression)
    batch = batch_for(tokenizer, pairs=True, labels=torch.tensor([4.5, 0.2, 3.0, 1.25]))
    ids, mask = batch["input_ids"], fixed_mask(batch, tokenizer)
    monkeypatch.setattr(objectives, "choose_mask", lambda *a, **k: mask.clone())
    drawn = {}
    real_sample = objectives.straight_through_sample
    monkeypatch.setattr(objectives, "straight_through_sample",
                        lambda logits, tau: drawn.setdefault("one_hot", real_sample(logits, tau)))
    loss = objective_for(tokenizer, student, teacher, generator).generator_loss(batch)
    x_prime = ids.clone()
    x_prime[mask] = drawn["one_hot"].argmax(-1)
    assert loss.item() == pytest.approx(-mse(call(student, x_prime, batch), call(teacher, x_prime, batch)), rel=1e-5)


@pytest.mark.parametrize("family", ["bert", "roberta", "bert_student_bert"])
def test_student_gradient_same_for_ids_and_one_hot_embeddings(family, request, trio, batch_for, pinned):
    paths = request.getfixturevalue(f"tiny_{family}")
    tokenizer, student, teacher, generator = trio(paths)
    batch = batch_for(tokenizer, pairs=True)
    ids, mask = batch["input_ids"], fixed_mask(batch, tokenizer)
    torch.manual_seed(1)
    sampled = torch.randint(5, len(tokenizer) - 1, (int(mask.sum()),))
    pinned(mask, sampled)
    objective = objective_for(tokenizer, student, teacher, generator, ce_weight=0.0, kd_weight=0.0, adv_weight=1.0)
    loss_ids, _ = objective.student_loss(batch)
    loss_ids.backward()
    grads_ids = {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}
    student.zero_grad(set_to_none=True)

    x_prime = ids.clone()
    x_prime[mask] = sampled
    teacher_logits = call(teacher, x_prime, batch)
    one_hot = F.one_hot(sampled, len(tokenizer)).float()
    extra = ({"token_type_ids": batch["token_type_ids"]}
             if "token_type_ids" in batch and student.config.model_type != "distilbert" else {})
    embeds = perturbed_embeddings(student, ids, mask, one_hot)
    s = student(inputs_embeds=embeds, attention_mask=batch["attention_mask"], **extra).logits
    loss_emb = -(F.softmax(teacher_logits, -1) * F.log_softmax(s, -1)).sum(-1).mean()
    assert loss_emb.item() == pytest.approx(loss_ids.item(), rel=1e-5)
    loss_emb.backward()
    grads_emb = {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}
    assert grads_ids.keys() == grads_emb.keys() and len(grads_ids) > 5
    word = [n for n in grads_ids if "word_embeddings" in n]
    assert word and grads_ids[word[0]][sampled].abs().sum() > 0, "sampled tokens' embeddings get a gradient"
    for name in grads_ids:
        torch.testing.assert_close(grads_emb[name], grads_ids[name], rtol=1e-4, atol=1e-7, msg=name)


def test_forbid_special_tokens_setting(tiny_bert, trio, batch_for, monkeypatch):
    tokenizer, student, teacher, generator = trio(tiny_bert)
    batch = batch_for(tokenizer)
    seen = {}
    real = objectives.sample_ids

    def spy(logits):
        seen["logits"] = logits
        return real(logits)

    monkeypatch.setattr(objectives, "sample_ids", spy)
    special = special_token_ids(tokenizer)
    objective_for(tokenizer, student, teacher, generator, forbid_special_tokens=True).student_loss(batch)
    assert torch.isneginf(seen["logits"][:, special]).all()
    objective_for(tokenizer, student, teacher, generator).student_loss(batch)
    pad = tokenizer.pad_token_id  # never sampled, setting or not (tests/test_perturb.py: RoBERTa position ids)
    assert torch.isneginf(seen["logits"][:, pad]).all()
    assert torch.isfinite(seen["logits"][:, torch.arange(len(tokenizer)) != pad]).all()
