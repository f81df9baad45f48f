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
