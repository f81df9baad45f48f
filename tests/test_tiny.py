"""The offline tiny models load through the Auto classes and share one vocabulary."""

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer
from safetensors.torch import load_file

from mate_kd.errors import ConfigError
from mate_kd.tiny import build_tiny_models, build_tokenizer

SENTENCE = "A gripping, well-acted movie."
EXPECTED = {
    "bert": {"cls": "[CLS]", "sep": "[SEP]", "pad_id": 0, "student": "DistilBertForSequenceClassification",
             "teacher": "BertForSequenceClassification", "generator": "BertForMaskedLM"},
    "roberta": {"cls": "<s>", "sep": "</s>", "pad_id": 1, "student": "RobertaForSequenceClassification",
                "teacher": "RobertaForSequenceClassification", "generator": "RobertaForMaskedLM"},
}


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_build_and_reload(tmp_path, family):
    id2label = {0: "negative", 1: "positive"}
    paths = build_tiny_models(str(tmp_path), family=family, id2label=id2label)
    assert sorted(paths) == ["generator", "student", "teacher"]
    exp = EXPECTED[family]
    vocabs, sizes = [], []
    for kind, path in paths.items():
        tok = AutoTokenizer.from_pretrained(path)
        auto = AutoModelForMaskedLM if kind == "generator" else AutoModelForSequenceClassification
        model = auto.from_pretrained(path)
        assert type(model).__name__ == exp[kind]
        vocabs.append(tok.get_vocab())
        sizes.append(model.config.vocab_size)
        assert model.config.vocab_size == len(tok) == 4000
        assert model.config.pad_token_id == tok.pad_token_id == exp["pad_id"]
        if kind != "generator":
            assert model.config.id2label == id2label
            assert model.config.label2id == {"negative": 0, "positive": 1}
        enc = tok([SENTENCE, "bad"], padding=True, return_tensors="pt")
        tokens = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
        assert tokens[0] == exp["cls"] and tokens[-1] == exp["sep"]
        assert enc["input_ids"][1, -1].item() == exp["pad_id"]
        assert tok.unk_token_id not in enc["input_ids"][0].tolist()
        with torch.no_grad():
            logits = model(**enc).logits
        assert logits.shape[-1] == (len(tok) if kind == "generator" else 2)
        long = tok("word " * 1000, truncation=True, return_tensors="pt")
        with torch.no_grad():
            model(**long)
    assert all(v == vocabs[0] for v in vocabs) and len(set(sizes)) == 1


def test_same_seed_same_weights(tmp_path):
    a = build_tiny_models(str(tmp_path / "a"), seed=3)
    b = build_tiny_models(str(tmp_path / "b"), seed=3)
    c = build_tiny_models(str(tmp_path / "c"), seed=4)
    for kind in a:
        wa, wb, wc = (load_file(f"{p[kind]}/model.safetensors") for p in (a, b, c))
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_bert_student_and_bad_arguments(tmp_path):
    paths = build_tiny_models(str(tmp_path / "s"), student_arch="bert", num_labels=3)
    assert type(AutoModelForSequenceClassification.from_pretrained(paths["student"])).__name__ == "BertForSequenceClassification"
    with pytest.raises(ConfigError):
        build_tiny_models(str(tmp_path / "x"), family="roberta", student_arch="distilbert")
    with pytest.raises(ConfigError):
        build_tiny_models(str(tmp_path / "y"), num_labels=3, id2label={0: "a", 1: "b"})
    with pytest.raises(ConfigError):
        build_tokenizer("gpt2")


def test_tokenizers_are_lowercase_wordpiece_and_byte_bpe():
    bert = build_tokenizer("bert")
    assert bert.tokenize("The MOVIE") == ["the", "movie"]
    assert bert.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
    roberta = build_tokenizer("roberta")
    assert roberta.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) == [0, 1, 2, 3]
    assert roberta.decode(roberta("Café naïve")["input_ids"], skip_special_tokens=True) == "Café naïve"
    assert bert.model_max_length == roberta.model_max_length == 512
