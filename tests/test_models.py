"""inputs_embeds equivalence per architecture, and every refusal of models that cannot work together."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertModel

from mate_kd.config import parse_args
from mate_kd.errors import ModelError
from mate_kd.perturb import perturbed_embeddings
from mate_kd.pipeline import load_models
from mate_kd.tasks import get_task

GLUE = Path(__file__).parent / "fixtures" / "glue"
ARCHS = {"bert": ("tiny_bert", "teacher"), "distilbert": ("tiny_bert", "student"),
         "roberta": ("tiny_roberta", "student")}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_inputs_embeds_equal_input_ids(arch, request, trio, batch_for):
    fixture, role = ARCHS[arch]
    tokenizer, student, teacher, _ = trio(request.getfixturevalue(fixture))
    model = student if role == "student" else teacher
    assert model.config.model_type == arch
    batch = batch_for(tokenizer)
    ids, attention = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        by_ids = model(input_ids=ids, attention_mask=attention, output_hidden_states=True)
        embeds = model.get_input_embeddings()(ids)
        by_embeds = model(inputs_embeds=embeds, attention_mask=attention, output_hidden_states=True)
        no_mask = torch.zeros_like(ids, dtype=torch.bool)
        unperturbed = perturbed_embeddings(model, ids, no_mask, torch.zeros(0, len(tokenizer)))
    torch.testing.assert_close(by_embeds.logits, by_ids.logits, rtol=1e-5, atol=1e-6)
    real = attention.bool()
    torch.testing.assert_close(by_embeds.hidden_states[-1][real], by_ids.hidden_states[-1][real], rtol=1e-5,
                               atol=1e-5)
    assert torch.equal(unperturbed, embeds)
    # the check can fail: adding the position embeddings a second time (the released code's
    # DistilBERT hand-made embeddings) changes the output
    positions = torch.arange(ids.shape[1]) + (tokenizer.pad_token_id + 1 if arch == "roberta" else 0)
    position_table = [m for n, m in model.named_modules() if n.endswith("position_embeddings")][0]
    with torch.no_grad():
        doubled = model(inputs_embeds=embeds + position_table(positions)[None], attention_mask=attention).logits
    assert not torch.allclose(doubled, by_ids.logits, atol=1e-4)


def _args(tmp_path, paths, task="sst-2", data="SST-2", method="mate-kd", **overrides):
    argv = {"--model_name_or_path": paths["student"], "--teacher_path": paths.get("teacher"),
            "--generator_path": paths.get("generator"), "--task_name": task, "--data_dir": str(GLUE / data),
            "--output_dir": str(tmp_path / "out"), "--method": method}
    argv.update({f"--{k}": v for k, v in overrides.items()})
    return parse_args([x for k, v in argv.items() if v is not None for x in (k, str(v))])


def _load(tmp_path, paths, **kw):
    args = _args(tmp_path, paths, **kw)
    return load_models(args, get_task(args.task_name))


def test_matching_models_load(tmp_path, tiny_bert):
    models = _load(tmp_path, tiny_bert)
    assert models.labels == ["0", "1"]
    assert not any(p.requires_grad for p in models.teacher.parameters()) and not models.teacher.training


def test_vocabulary_mismatch_refused(tmp_path, tiny_bert, tiny_roberta):
    with pytest.raises(ModelError, match="Vocabulary mismatch.*generator"):
        _load(tmp_path, {**tiny_bert, "generator": tiny_roberta["generator"]})
    with pytest.raises(ModelError, match="Vocabulary mismatch.*teacher"):
        _load(tmp_path, {**tiny_bert, "teacher": tiny_roberta["teacher"]})


def test_vocabulary_size_mismatch_refused(tmp_path, tiny_bert):
    bigger = tmp_path / "bigger"
    shutil.copytree(tiny_bert["teacher"], bigger)
    model = AutoModelForSequenceClassification.from_pretrained(bigger)
    model.resize_token_embeddings(4100)
    model.save_pretrained(bigger)
    with pytest.raises(ModelError, match="Vocabulary mismatch: embedding rows differ"):
        _load(tmp_path, {**tiny_bert, "teacher": str(bigger)})


def test_teacher_with_wrong_number_of_labels_refused(tmp_path, tiny_bert, teacher_dir):
    with pytest.raises(ModelError, match="teacher predicts 3 labels but sst-2 has 2"):
        _load(tmp_path, {**tiny_bert, "teacher": teacher_dir(3)})
    with pytest.raises(ModelError, match="regression task"):
        _load(tmp_path, tiny_bert, task="sts-b", data="STS-B")


def test_teacher_with_wrong_label_names_refused(tmp_path, tiny_bert, teacher_dir):
    named = teacher_dir(2, {0: "negative", 1: "positive"})
    with pytest.raises(ModelError, match=r"labels \['negative', 'positive'\].*not sst-2's labels"):
        _load(tmp_path, {**tiny_bert, "teacher": named})


def test_missing_model_directory_names_the_layout(tmp_path, tiny_bert):
    missing = str(tmp_path / "bert_models" / "distilbert-base")
    with pytest.raises(ModelError, match="does not exist") as err:
        _load(tmp_path, {**tiny_bert, "student": missing})
    assert "bert_models/" in str(err.value) and missing in str(err.value)
    with pytest.raises(ModelError, match="teacher directory .* does not exist.*bert_models/"):
        _load(tmp_path, {**tiny_bert, "teacher": str(tmp_path / "ckpts" / "teachers_bert_base" / "SST-2")})


def test_directory_without_config_refused(tmp_path, tiny_bert):
    empty = tmp_path / "weights_only"
    empty.mkdir()
    shutil.copy(os.path.join(tiny_bert["generator"], "model.safetensors"), empty)
    with pytest.raises(ModelError, match="has no config.json.*bert_models/"):
        _load(tmp_path, {**tiny_bert, "generator": str(empty)})


def test_encoder_without_mlm_head_refused_as_generator(tmp_path, tiny_bert):
    encoder_dir = tmp_path / "encoder"
    generator_config = BertConfig.from_pretrained(tiny_bert["generator"])
    BertModel(generator_config).save_pretrained(encoder_dir)
    shutil.copy(os.path.join(tiny_bert["generator"], "tokenizer.json"), encoder_dir)
    shutil.copy(os.path.join(tiny_bert["generator"], "tokenizer_config.json"), encoder_dir)
    with pytest.raises(ModelError, match="not a masked LM"):
        _load(tmp_path, {**tiny_bert, "generator": str(encoder_dir)})
    with pytest.raises(ModelError, match="not a masked LM"):
        _load(tmp_path, {**tiny_bert, "generator": tiny_bert["teacher"]})


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_roberta"])
def test_max_seq_length_longer_than_positions_refused(tmp_path, request, fixture):
    paths = request.getfixturevalue(fixture)
    _load(tmp_path, paths, max_seq_length=128)
    with pytest.raises(ModelError, match="--max_seq_length 129 is longer than the .* supports \\(128 positions\\)"):
        _load(tmp_path, paths, max_seq_length=129)


def test_teacher_label_order_taken_from_its_config(tmp_path, tiny_bert, teacher_dir):
    reversed_teacher = teacher_dir(2, {0: "not_entailment", 1: "entailment"})
    models = _load(tmp_path, {**tiny_bert, "teacher": reversed_teacher}, task="rte", data="RTE")
    assert models.labels == ["not_entailment", "entailment"]
    assert models.student.config.id2label == {0: "not_entailment", 1: "entailment"}
    canonical = _load(tmp_path, tiny_bert, task="rte", data="RTE")
    assert canonical.labels == ["entailment", "not_entailment"]
