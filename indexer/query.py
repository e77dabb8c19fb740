"""Prepare a user's query for retrieval: clean it, mend typos, fit it to the model window."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Collection

from .chunk import TokenCounter, fit_tokens, split_sentences
from .lexical import Lexical, terms, words


@dataclass
class PreparedQuery:
    text: str
    #: What the dense model embeds: the cleaned text, typo-mended, cut to the window.
    dense_text: str
    #: Stems for BM25 and highlighting.
    terms: list[str] = field(default_factory=list)
    corrections: dict[str, str] = field(default_factory=dict)
    #: Searched words (not stop words) of the part the model embeds, repeats counted, before any mending: the
    #: ranker's `query_words` (indexer/features.py).
    words: int = 0

    @property
    def searchable(self) -> bool:
        """False for a query of only stop words, punctuation or short numbers ("the", "???", "what is it"):
        any entry would be a guess, so nothing is searched and the user is asked for words."""
        return bool(self.terms)


#: Terminal escape sequences (CSI: colours, cursor moves; OSC: titles, links) pasted into a query.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")


def clean(query: str) -> str:
    """The query as searched and as shown on a terminal: no escape sequences or control characters."""
    query = _ESCAPES.sub(" ", unicodedata.normalize("NFKC", query))
    query = "".join(c if c.isprintable() or c in "\n\t" else " " for c in query)
    return re.sub(r"\s+", " ", query).strip()


def fit_window(text: str, count_tokens: TokenCounter, max_tokens: int) -> str:
    """Cut a long pasted paragraph to the model window without losing its question.

    The question sentences of a long text are what the user wants answered;
    the rest is context. When the whole does not fit, keep the questions (as
    many as fit), or failing any, the opening sentences.
    """
    if len(text) <= max_tokens or count_tokens([text])[0] <= max_tokens:
        return text  # a word piece covers at least one character: a short query fits uncounted
    sentences = split_sentences(text)
    questions = [s for s in sentences if s.rstrip().endswith("?")]
    kept, size = [], 0
    for sentence, n in zip(questions or sentences, count_tokens(questions or sentences)):
        if size + n > max_tokens:
            break
        kept.append(sentence)
        size += n
    if not kept:  # one giant sentence: keep its beginning
        return fit_tokens(text, count_tokens, max_tokens)
    return " ".join(kept)


def fit_query(query: str, count_tokens: TokenCounter, max_tokens: int) -> tuple[str, str]:
    """(the cleaned query, the part of it the dense model embeds): all a search needs to start embedding."""
    text = clean(query)
    return text, fit_window(text, count_tokens, max_tokens)


def prepare(query: str, lexical: Lexical, count_tokens: TokenCounter, max_tokens: int,
            fitted: tuple[str, str] | None = None, spelled: Collection[str] = ()) -> PreparedQuery:
    """The query cleaned, typo-mended and cut to the window; `fitted`: what `fit_query` already gave.

    A word the FAQ never uses is mended to the FAQ word closest to it, unless it is in `spelled`
    (the model's whole words, `whole_words`): a real word is not a typo, and mending one to a
    look-alike ("uncomfortable" to "comfortable", "altitude" to "latitude") searches for the wrong thing.
    """
    text, focus = fitted or fit_query(query, count_tokens, max_tokens)
    corrections: dict[str, str] = {}
    for word, _, _ in words(text):
        fixed = None if word in spelled else lexical.correct(word)
        if fixed:
            corrections[word] = fixed
    dense = focus
    if corrections:
        dense = fit_window(f"{focus} ({' '.join(corrections.values())})", count_tokens, max_tokens)
    query_terms = terms(focus) + terms(" ".join(corrections.values()))
    return PreparedQuery(text=text, dense_text=dense, terms=list(dict.fromkeys(query_terms)), corrections=corrections,
                         words=len(words(focus)))
