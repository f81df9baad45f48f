"""Train the small WordPiece and byte-level BPE vocabularies shipped in mate_kd/assets.

Tiny offline models need a real tokenizer with a small vocabulary (a 30k/50k
embedding would dwarf a 32-wide model). Both are trained on the full SST-2,
RTE and MRPC training text so that common English is covered.

Usage: python scripts/make_tiny_vocab.py [GLUE_DIR] [--out ASSETS_DIR] [--vocab-size N]
"""

from __future__ import annotations

import argparse
import json
import os

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_GLUE = os.path.join(HERE, "..", "..", "shared", "data", "glue")
DEFAULT_OUT = os.path.join(HERE, "..", "mate_kd", "assets")
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def read_columns(path: str, columns: list[str]) -> list[str]:
    """Return the text of the named tab-separated columns of a GLUE file, row by row."""
    with open(path, encoding="utf-8-sig") as f:
        header = f.readline().rstrip("\n").split("\t")
        idx = [header.index(c) for c in columns]
        texts = []
        for line in f:
            fields = line.rstrip("\n").split("\t")
            texts.extend(fields[i].strip() for i in idx if i < len(fields) and fields[i].strip())
    return texts


def corpus(glue_dir: str) -> list[str]:
    """All training sentences of SST-2, RTE and MRPC, in file order."""
    return (
        read_columns(os.path.join(glue_dir, "SST-2", "train.tsv"), ["sentence"])
        + read_columns(os.path.join(glue_dir, "RTE", "train.tsv"), ["sentence1", "sentence2"])
        + read_columns(os.path.join(glue_dir, "MRPC", "train.tsv"), ["#1 String", "#2 String"])
    )


def train_wordpiece(texts: list[str], vocab_size: int) -> list[str]:
    """Lower-cased BERT-style WordPiece; returns tokens ordered by id."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    chars: set[str] = set()
    for text in texts:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)):
            chars.update(word[1:])
    # The trainer creates "##c" symbols in hash-map order, which makes merge ties
    # (and so the vocabulary) vary between runs; registering them up front in a
    # sorted order fixes their ids and makes training reproducible.
    continuations = ["##" + c for c in sorted(chars)]
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=BERT_SPECIALS + continuations,
        continuing_subword_prefix="##", show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    vocab = tok.get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    if tokens[: len(BERT_SPECIALS)] != BERT_SPECIALS or [vocab[t] for t in tokens] != list(range(len(tokens))):
        raise RuntimeError("WordPiece vocabulary ids are not contiguous with specials first")
    return tokens


def train_bpe(texts: list[str], vocab_size: int) -> tuple[dict[str, int], list[str]]:
    """RoBERTa-style byte-level BPE; returns (vocab, merges as 'a b' strings)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=ROBERTA_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    state = json.loads(tok.to_str())["model"]
    vocab = dict(sorted(state["vocab"].items(), key=lambda kv: kv[1]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["merges"]]
    if list(vocab)[: len(ROBERTA_SPECIALS)] != ROBERTA_SPECIALS or list(vocab.values()) != list(range(len(vocab))):
        raise RuntimeError("BPE vocabulary ids are not contiguous with specials first")
    return vocab, merges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("glue_dir", nargs="?", default=DEFAULT_GLUE, help="GLUE root with SST-2, RTE, MRPC")
    parser.add_argument("--out", default=DEFAULT_OUT, help="assets directory to write into")
    parser.add_argument("--vocab-size", type=int, default=4000)
    args = parser.parse_args()

    texts = corpus(args.glue_dir)
    wordpiece = train_wordpiece(texts, args.vocab_size)
    with open(os.path.join(args.out, "wordpiece_vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.writelines(t + "\n" for t in wordpiece)

    vocab, merges = train_bpe(texts, args.vocab_size)
    bpe_dir = os.path.join(args.out, "bpe")
    os.makedirs(bpe_dir, exist_ok=True)
    with open(os.path.join(bpe_dir, "vocab.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(bpe_dir, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n")
        f.writelines(m + "\n" for m in merges)
    print(f"{len(texts)} sentences; wordpiece {len(wordpiece)} tokens; bpe {len(vocab)} tokens, {len(merges)} merges")


if __name__ == "__main__":
    main()
