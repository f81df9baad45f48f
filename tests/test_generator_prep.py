"""pretrain-generator: a tied MLM head on a bare encoder, reused heads, MLM training that learns, load_generator."""

from __future__ import annotations

import json
import os

import pytest
import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertModel, RobertaConfig, RobertaModel

from mate_kd.cli import main as cli_main
from mate_kd.errors import ConfigError
from mate_kd.generator_prep import RESULTS_FILE, PrepArgs, is_tied, pretrain_generator
from mate_kd.models import load_generator
from mate_kd.tiny import build_single, build_tokenizer

FIXTURE_RTE = os.path.join(os.path.dirname(__file__), "fixtures", "glue", "RTE")
SHAPE = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 64}


def _encoder(family: str, path: str) -> str:
    """A bare encoder (no MLM head) saved with the shipped tiny tokenizer."""
    tokenizer = build_tokenizer(family, model_max_length=64)
    torch.manual_seed(0)
    if family == "bert":
        model = BertModel(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64,
                                     pad_token_id=tokenizer.pad_token_id, **SHAPE))
    else:
        model = RobertaModel(RobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=66, type_vocab_size=1,
                                           pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                           eos_token_id=tokenizer.eos_token_id, **SHAPE))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("family, steps", [("bert", 30), ("roberta", 20)])
def test_new_tied_head_learns_and_passes_load_generator(tmp_path, family, steps):
    source = _encoder(family, str(tmp_path / "enc"))
    out = str(tmp_path / "gen")
    results = pretrain_generator(PrepArgs(source=source, output_dir=out, task_name="rte", data_dir=FIXTURE_RTE,
                                          layers=2, max_steps=steps, learning_rate=1e-2, batch_size=4,
                                          max_seq_length=64, seed=1))
    assert results["head"].startswith("new") and results["tied"] is True
    assert results["steps"] == steps and results["layers"] == "2 of 3"
    assert results["train_loss_last"] < results["train_loss_first"] - 1.0
    assert results["dev_after"]["loss"] < results["dev_before"]["loss"]
    assert results["dev_before"]["masked_tokens"] == results["dev_after"]["masked_tokens"] > 0
    assert 0.0 <= results["dev_after"]["accuracy"] <= 1.0
    with open(os.path.join(out, RESULTS_FILE), encoding="utf-8") as f:
        assert json.load(f)["dev_after"] == results["dev_after"]

    generator = load_generator(out)
    assert generator.config.num_hidden_layers == 2
    assert is_tied(generator)
    assert torch.equal(generator.get_output_embeddings().weight, generator.get_input_embeddings().weight)
    encoder = type(generator.base_model).from_pretrained(source)
    assert not torch.equal(generator.get_input_embeddings().weight, encoder.get_input_embeddings().weight)


def test_existing_head_is_reused(tmp_path):
    source = build_single("generator", "bert", str(tmp_path / "mlm"), seed=5)
    out = str(tmp_path / "gen")
    assert cli_main(["pretrain-generator", "--from", source, "--output_dir", out, "--task_name", "rte",
                     "--data_dir", FIXTURE_RTE, "--max_steps", "0", "--max_seq_length", "64"]) == 0
    results = json.load(open(os.path.join(out, RESULTS_FILE), encoding="utf-8"))
    assert results["head"] == "reused" and results["steps"] == 0
    assert results["dev_before"] == results["dev_after"]
    before, after = AutoModelForMaskedLM.from_pretrained(source), load_generator(out)
    for (name, a), (_, b) in zip(before.state_dict().items(), after.state_dict().items()):
        assert torch.equal(a, b), name


def test_custom_files_need_a_dev_file(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text\nthe cat sat\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="--validation_file"):
        pretrain_generator(PrepArgs(source=str(tmp_path), output_dir=str(tmp_path / "o"), train_file=str(train)))


def test_custom_files_and_too_many_layers(tmp_path, capsys):
    source = _encoder("bert", str(tmp_path / "enc"))
    data = tmp_path / "text.jsonl"
    data.write_text("".join(json.dumps({"sentence": f"the cat number {i} sat on the mat"}) + "\n" for i in range(6)),
                    encoding="utf-8")
    common = ["pretrain-generator", "--from", source, "--train_file", str(data), "--validation_file", str(data),
              "--text_column", "sentence", "--batch_size", "2", "--max_seq_length", "64"]
    assert cli_main(common + ["--output_dir", str(tmp_path / "a"), "--layers", "4"]) == 1
    assert "between 1 and 3" in capsys.readouterr().err
    assert cli_main(common + ["--output_dir", str(tmp_path / "b"), "--max_steps", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["train_examples"] == 6


def test_periodic_dev_evaluation_logs_a_curve_and_keeps_the_best(tmp_path):
    source = _encoder("bert", str(tmp_path / "enc"))
    out = str(tmp_path / "gen")
    results = pretrain_generator(PrepArgs(source=source, output_dir=out, task_name="rte", data_dir=FIXTURE_RTE,
                                          layers=2, max_steps=12, learning_rate=1e-2, batch_size=4,
                                          max_seq_length=64, seed=1, eval_steps=4))
    with open(os.path.join(out, "mlm_log.jsonl"), encoding="utf-8") as f:
        logged = [json.loads(line) for line in f]
    assert [p["step"] for p in logged] == [0, 4, 8, 12]
    assert logged == results["curve"]
    assert all({"train_loss", "dev_loss", "dev_accuracy", "lr"} <= set(p) for p in logged[1:])
    best = max(logged, key=lambda p: (p["dev_accuracy"], -p["step"]))
    assert results["dev_after"]["accuracy"] == pytest.approx(best["dev_accuracy"])
    assert results["saved_step"] == (best["step"] if best["step"] > 0 else 12)


def test_early_stopping_stops_when_dev_accuracy_stalls(tmp_path):
    source = _encoder("bert", str(tmp_path / "enc"))
    # lr 0 (after warm-up the schedule decays from 0): dev accuracy can never improve, so 2 stale evaluations stop it.
    results = pretrain_generator(PrepArgs(source=source, output_dir=str(tmp_path / "gen"), task_name="rte",
                                          data_dir=FIXTURE_RTE, layers=1, max_steps=100, learning_rate=1e-12,
                                          batch_size=4, max_seq_length=64, eval_steps=2, early_stopping_patience=2))
    assert results["stopped_early"] is True
    assert results["steps"] == 4


@pytest.mark.parametrize("flags, message", [
    (["--early_stopping_patience", "2"], "needs --eval_steps"),
    (["--eval_steps", "-1"], "--eval_steps must be >= 0"),
    (["--learning_rate", "0"], "--learning_rate must be > 0"),
    (["--warmup_ratio", "1.5"], "--warmup_ratio must be in"),
])
def test_bad_training_settings_are_refused_before_loading(tmp_path, capsys, flags, message):
    out = tmp_path / "gen"
    code = cli_main(["pretrain-generator", "--from", str(tmp_path / "missing"), "--output_dir", str(out),
                     "--task_name", "rte", "--data_dir", FIXTURE_RTE, *flags])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_group_by_length_cuts_padding_of_the_mlm_batches(tmp_path):
    from transformers import DataCollatorForLanguageModeling

    from mate_kd.data import make_loader
    from mate_kd.generator_prep import _encode
    from mate_kd.tasks import Example

    tokenizer = build_tokenizer("bert", model_max_length=64)
    texts = [("the cat sat " * (1 + (i % 7) * 4)).strip() for i in range(64)]
    split = _encode([Example(f"t-{i}", t, None, None) for i, t in enumerate(texts)], tokenizer, 64)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3, seed=0)
    padded = {g: sum(b["input_ids"].numel() for b in make_loader(split, tokenizer, 8, train=True, seed=0,
                                                                  group_by_length=g, collate_fn=collator))
              for g in (False, True)}
    assert padded[True] < 0.8 * padded[False]
    results = pretrain_generator(PrepArgs(source=_encoder("bert", str(tmp_path / "enc")), output_dir=str(tmp_path / "g"),
                                          task_name="rte", data_dir=FIXTURE_RTE, layers=1, max_steps=3, batch_size=4,
                                          max_seq_length=64, group_by_length=True))
    assert results["steps"] == 3 and results["settings"]["group_by_length"] is True
