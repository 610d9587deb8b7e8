"""Training text and tokenizer of the generative tier: made here, deterministic, nothing downloaded.

Text: Python's own help topics, `pydoc_data.topics.topics` (the stdlib ships them: 79 topics of the
language reference as plain text, 78 distinct texts, ~465 KB on Python 3.11.7), taken in sorted topic
order. Every `HOLD_OUT`-th text (positions 0, 10, 20, ...) is held out: the held-out perplexity is measured
on text the model never trained on. The text's sha256 goes into the train record, so a different
Python (other help text) shows as a different corpus, not as a silent change.

Tokenizer: byte-level BPE trained here with `tokenizers` on the training topics only (the same bytes give
the same `tokenizer.json`, checked by sha256). Byte-level: any text encodes, no unknown token. Special
tokens `<pad>`=0, `<bos>`=1, `<eos>`=2; each topic is `<bos>` + text + `<eos>`, and the topics are
concatenated into one stream cut into windows of `context + 1` tokens (input = window[:-1], target =
window[1:]).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

HOLD_OUT = 10
SPECIALS = ("<pad>", "<bos>", "<eos>")
TEXT = ("Python's help topics (pydoc_data.topics, shipped with the Python standard library), "
        f"sorted by topic, distinct texts; every {HOLD_OUT}th held out")


def topics() -> tuple[list[str], list[str]]:
    """-> (training texts, held-out texts), deterministic. A text filed under two topics ("else" and
    "if" share one on 3.11) counts once, under its first name: no held-out text is also trained on."""
    from pydoc_data.topics import topics as t
    texts = list(dict.fromkeys(t[n] for n in sorted(t)))
    return ([s for i, s in enumerate(texts) if i % HOLD_OUT], [s for i, s in enumerate(texts) if not i % HOLD_OUT])


def text_sha256() -> str:
    train, test = topics()
    h = hashlib.sha256()
    for s in train + ["\0held-out\0"] + test:
        h.update(s.encode() + b"\0")
    return h.hexdigest()


def train_tokenizer(texts: list[str], vocab: int):
    """A byte-level BPE `tokenizers.Tokenizer` of `vocab` ids (specials first), trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    if tok.get_vocab_size() != vocab:
        raise ValueError(f"BPE on this text gives {tok.get_vocab_size()} tokens, not {vocab}")
    return tok


def stream(tok, texts: list[str]) -> np.ndarray:
    """`<bos>` text `<eos>` per text, concatenated: int32 token ids."""
    bos, eos = (tok.token_to_id(s) for s in SPECIALS[1:])
    ids: list[int] = []
    for enc in tok.encode_batch(texts):
        ids += [bos, *enc.ids, eos]
    return np.asarray(ids, dtype=np.int32)


def windows(ids: np.ndarray, length: int) -> np.ndarray:
    """Non-overlapping windows of `length` tokens (the tail shorter than one is dropped): [n, length]."""
    n = len(ids) // length
    return ids[:n * length].reshape(n, length)


@dataclass(frozen=True)
class TokenData:
    tokenizer: Any          # tokenizers.Tokenizer
    train: np.ndarray       # int32 [n, context + 1] training windows
    test: np.ndarray        # int32 [m, context + 1] held-out windows


def load(vocab: int, context: int) -> TokenData:
    """The tokenizer (trained on the training topics) and both splits as windows of context + 1."""
    train, test = topics()
    tok = train_tokenizer(train, vocab)
    return TokenData(tok, windows(stream(tok, train), context + 1), windows(stream(tok, test), context + 1))
