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


class _Stop(BaseException):
    """Stands in for a kill right after a checkpoint was written."""


@pytest.mark.parametrize("group, save_steps, stop_at", [(False, 4, 8), (True, 4, 8), (True, 5, 10)],
                         ids=["mid-epoch", "mid-epoch-grouped", "epoch-boundary"])
def test_a_stopped_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, group, save_steps, stop_at):
    """Killed after a checkpoint (5 batches an epoch, so mid-epoch or on a boundary) and continued with
    --resume_from_checkpoint latest: the same curve, the same masks and dropout, the same best-on-dev generator."""
    from safetensors.torch import load_file

    from mate_kd import generator_prep

    source = _encoder("bert", str(tmp_path / "enc"))
    words = "the cat sat on a mat and then it ran far away".split()
    for split, n in (("train", 20), ("dev", 6)):  # 20 texts of mixed lengths: 5 batches of 4 an epoch
        with open(tmp_path / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": " ".join(words[: 3 + (i * 7) % 10])}) + "\n" for i in range(n))
    common = dict(source=source, train_file=str(tmp_path / "train.jsonl"), validation_file=str(tmp_path / "dev.jsonl"),
                  layers=2, max_steps=14, learning_rate=1e-2, batch_size=4, max_seq_length=64, seed=1, eval_steps=3,
                  group_by_length=group)
    reference = pretrain_generator(PrepArgs(output_dir=str(tmp_path / "ref"), **common))

    real = generator_prep._MLMRun.checkpoint

    def checkpoint_then_die(run):
        real(run)
        if run.p.steps == stop_at:
            raise _Stop

    out = str(tmp_path / "gen")
    monkeypatch.setattr(generator_prep._MLMRun, "checkpoint", checkpoint_then_die)
    with pytest.raises(_Stop):
        pretrain_generator(PrepArgs(output_dir=out, save_steps=save_steps, **common))
    assert os.listdir(os.path.join(out, "checkpoints")) == [f"step-{stop_at:08d}"]
    monkeypatch.setattr(generator_prep._MLMRun, "checkpoint", real)
    resumed = pretrain_generator(PrepArgs(output_dir=out, save_steps=save_steps, resume_from_checkpoint="latest",
                                          **common))

    def without_times(curve):
        return [{k: v for k, v in point.items() if k != "elapsed_s"} for point in curve]

    assert without_times(resumed["curve"]) == without_times(reference["curve"])
    for key in ("dev_after", "dev_before", "saved_step", "steps", "train_loss_first", "train_loss_last"):
        assert resumed[key] == reference[key], key
    a, b = (load_file(os.path.join(d, "model.safetensors")) for d in (str(tmp_path / "ref"), out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with open(os.path.join(out, "mlm_log.jsonl"), encoding="utf-8") as f:
        assert without_times(json.loads(line) for line in f) == without_times(reference["curve"])
    assert not os.path.exists(os.path.join(out, "checkpoints")), "a finished generator keeps no checkpoints"


def test_resume_refusals_come_before_loading_and_change_nothing(tmp_path, monkeypatch, capsys):
    from mate_kd import generator_prep

    source = _encoder("bert", str(tmp_path / "enc"))
    out = tmp_path / "gen"
    flags = ["pretrain-generator", "--from", source, "--output_dir", str(out), "--task_name", "rte", "--data_dir",
             FIXTURE_RTE, "--layers", "1", "--max_steps", "6", "--batch_size", "4", "--max_seq_length", "64",
             "--save_steps", "2"]
    real = generator_prep._MLMRun.checkpoint

    def checkpoint_then_die(run):
        real(run)
        raise _Stop

    monkeypatch.setattr(generator_prep._MLMRun, "checkpoint", checkpoint_then_die)
    with pytest.raises(_Stop):
        cli_main(flags)
    monkeypatch.setattr(generator_prep._MLMRun, "checkpoint", real)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(generator_prep, "build_masked_lm", lambda source: pytest.fail("loaded a model"))

    assert cli_main([*flags, "--learning_rate", "1e-3", "--resume_from_checkpoint", "latest"]) == 1
    assert "was made with other settings (learning_rate: 5e-05 -> 0.001)" in capsys.readouterr().err
    assert cli_main(flags) == 1
    assert "--resume_from_checkpoint latest" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    (out / RESULTS_FILE).write_text("{}")
    assert cli_main([*flags, "--resume_from_checkpoint", "latest"]) == 1
    assert "holds a finished generator" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert cli_main([*flags[:4], str(other), *flags[5:], "--resume_from_checkpoint", "latest"]) == 1
    assert "holds files of something else (notes.txt)" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"
