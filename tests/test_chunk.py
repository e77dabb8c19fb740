"""Chunking with the real model tokenizer: passages fit the window, overlap, and lose nothing."""

from __future__ import annotations

import random

import pytest

from indexer.chunk import chunk_text, split_sentences
from indexer.config import ChunkSettings

SETTINGS = ChunkSettings()

SUBJECTS = ["The optimizer", "A convolutional layer", "Batch normalization", "The learning rate schedule",
            "Dropout", "The softmax function", "Backpropagation", "An embedding table", "Weight decay",
            "The attention mechanism", "Gradient clipping", "A residual connection"]
VERBS = ["stabilises", "reshapes", "accelerates", "regularises", "normalises", "approximates", "amplifies",
         "smooths", "constrains", "summarises"]
OBJECTS = ["the loss landscape", "noisy gradient estimates", "the hidden activations of deep networks",
           "probability distributions over many classes", "sparse features from tokenized text",
           "the effective step size during warm-up", "long-range dependencies in sequences",
           "overfitting on small datasets", "the variance of each mini-batch"]
TAILS = ["", " in practice", " when the batch is small", " according to several 2019 papers",
         " (see section 4.2)", " for image classifiers", " on GPUs and TPUs alike"]


def long_text(n_words: int = 3000, seed: int = 11) -> tuple[str, list[str]]:
    """Varied sentences, numbered so that each one is unique; paragraphs every few sentences."""
    rng = random.Random(seed)
    sentences, count, i = [], 0, 0
    while count < n_words:
        s = (f"Observation {i}: {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
             f"{rng.choice(TAILS)}{rng.choice(['.', '!', '?'])}")
        sentences.append(s)
        count += len(s.split())
        i += 1
    paragraphs = [" ".join(sentences[j:j + 5]) for j in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs), sentences


@pytest.fixture(scope="module")
def long_passages(embedder):
    text, sentences = long_text()
    return chunk_text(text, embedder.count_tokens, SETTINGS), sentences


def test_every_passage_fits_the_window(long_passages, embedder):
    passages, _ = long_passages
    assert len(passages) > 10
    counts = embedder.count_tokens(passages)
    assert max(counts) <= SETTINGS.max_tokens
    assert SETTINGS.max_tokens + 2 <= embedder.max_tokens  # with [CLS] and [SEP] the model sees it all


def test_passages_are_well_filled(long_passages, embedder):
    passages, _ = long_passages
    counts = embedder.count_tokens(passages)
    # All but the last passage are packed close to the budget (sentences here are < 30 tokens).
    assert min(counts[:-1]) >= SETTINGS.max_tokens - 40


def test_consecutive_passages_overlap(long_passages):
    passages, sentences = long_passages
    for a, b in zip(passages, passages[1:]):
        shared = [s for s in sentences if s in a and s in b]
        assert shared, f"no shared sentence between\n{a[-200:]}\n---\n{b[:200]}"
        assert b.startswith(shared[0])  # the overlap is the tail of one and the head of the next


def test_no_text_is_lost(long_passages):
    passages, sentences = long_passages
    joined = "\n".join(passages)
    missing = [s for s in sentences if s not in joined]
    assert not missing
    # ... and passages follow the text's order.
    firsts = [next(i for i, s in enumerate(sentences) if p.startswith(s)) for p in passages]
    assert firsts == sorted(firsts)


def test_short_text_is_one_passage(embedder):
    text = "Dropout randomly zeroes activations.  It reduces overfitting!"
    assert chunk_text(text, embedder.count_tokens, SETTINGS) == [text.replace("  ", " ")]


@pytest.mark.parametrize("text", ["", "   ", "\n\n \n"])
def test_empty_text_gives_no_passages(embedder, text):
    assert chunk_text(text, embedder.count_tokens, SETTINGS) == []


def test_giant_sentence_without_punctuation_is_split(embedder):
    words = [f"token{i}" for i in range(2000)]
    text = " ".join(words)
    passages = chunk_text(text, embedder.count_tokens, SETTINGS)
    assert len(passages) > 1
    assert max(embedder.count_tokens(passages)) <= SETTINGS.max_tokens
    assert all(w in set(" ".join(passages).split()) for w in words)


def test_giant_sentence_with_uneven_words_is_split_to_fit(embedder):
    # Cheap words first, then words of many word pieces: cutting by an average rate per word overflows.
    text = " ".join(["cat"] * 300 + ["pneumonoultramicroscopicsilicovolcanoconiosis"] * 100)
    passages = chunk_text(text, embedder.count_tokens, SETTINGS)
    assert max(embedder.count_tokens(passages)) <= SETTINGS.max_tokens
    assert " ".join(passages).split().count("pneumonoultramicroscopicsilicovolcanoconiosis") >= 100


def test_one_unbroken_run_is_cut_by_characters(embedder):
    # Chinese has no spaces: one "word" of 1200 characters, one word piece each, far over the window.
    text = "深度学习模型通过反向传播算法更新参数并且在大量数据上训练神经网络" * 40
    passages = chunk_text(text, embedder.count_tokens, SETTINGS)
    assert len(passages) > 1
    assert max(embedder.count_tokens(passages)) <= SETTINGS.max_tokens
    assert "".join(passages) == text


def test_split_sentences_keeps_abbreviations_of_numbers_and_paragraphs():
    text = "Version 2.0 is out. It is faster!\nA new line starts here? yes it does.\n\nLast one."
    assert split_sentences(text) == ["Version 2.0 is out.", "It is faster!", "A new line starts here? yes it does.",
                                     "Last one."]
