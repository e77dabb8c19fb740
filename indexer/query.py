"""Prepare a user's query for retrieval: clean it, mend typos, fit it to the model window."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from .chunk import TokenCounter, split_sentences
from .lexical import Lexical, terms, words


@dataclass
class PreparedQuery:
    text: str
    #: What the dense model embeds: the cleaned text, typo-mended, cut to the window.
    dense_text: str
    #: Stems for BM25 and highlighting.
    terms: list[str] = field(default_factory=list)
    corrections: dict[str, str] = field(default_factory=dict)


def clean(query: str) -> str:
    query = unicodedata.normalize("NFKC", query)
    query = "".join(c if c.isprintable() or c in "\n\t" else " " for c in query)
    return re.sub(r"\s+", " ", query).strip()


def fit_window(text: str, count_tokens: TokenCounter, max_tokens: int) -> str:
    """Cut a long pasted paragraph to the window, keeping its questions first."""
    if count_tokens([text])[0] <= max_tokens:
        return text
    sentences = split_sentences(text)
    questions = [s for s in sentences if s.rstrip().endswith("?")]
    ordered = questions + [s for s in sentences if s not in questions]
    counts = count_tokens(ordered)
    kept, size = [], 0
    for sentence, n in zip(ordered, counts):
        if size + n > max_tokens:
            continue
        kept.append(sentence)
        size += n
    if not kept:  # one giant sentence: keep its beginning
        return " ".join(text.split()[: max_tokens // 2])
    return " ".join(s for s in sentences if s in kept)


def prepare(query: str, lexical: Lexical, count_tokens: TokenCounter, max_tokens: int) -> PreparedQuery:
    text = clean(query)
    corrections: dict[str, str] = {}
    for word, _, _ in words(text):
        fixed = lexical.correct(word)
        if fixed:
            corrections[word] = fixed
    dense = text
    if corrections:
        dense = f"{text} ({' '.join(corrections.values())})"
    dense = fit_window(dense, count_tokens, max_tokens)
    query_terms = terms(text) + terms(" ".join(corrections.values()))
    return PreparedQuery(text=text, dense_text=dense, terms=list(dict.fromkeys(query_terms)), corrections=corrections)
