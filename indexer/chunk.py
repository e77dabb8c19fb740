"""Cut documents into passages that fit the embedding model's window.

all-MiniLM-L6-v2 silently drops everything past 256 word pieces, so passages
are measured with the model's own tokenizer, packed sentence by sentence, and
overlap by a sentence or two so that an idea split across a boundary is still
whole in one of them.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from .config import ChunkSettings

#: Counts word pieces for each text (no special tokens).
TokenCounter = Callable[[Sequence[str]], list[int]]

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|(?<=[。！？])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a text, paragraph breaks kept as sentence breaks."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n|\n", text):
        paragraph = " ".join(paragraph.split())
        if paragraph:
            sentences.extend(s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip())
    return sentences


def _split_long(sentence: str, count_tokens: TokenCounter, limit: int) -> list[tuple[str, int]]:
    """A sentence over the window (a table row, a code block) cut into pieces that each fit it.

    Whole words are packed by their own counts (word pieces never span a space); a piece that
    still does not fit (counts are not quite additive) is cut again, down to characters.
    """
    words = sentence.split()
    if len(words) > 1:
        parts: list[str] = []
        current: list[str] = []
        size = 0
        for word, n in zip(words, count_tokens(words)):
            if current and size + n > limit:
                parts.append(" ".join(current))
                current, size = [], 0
            current.append(word)
            size += n
        parts.append(" ".join(current))
        if len(parts) == 1:  # the words fit one by one but not together: halve
            half = len(words) // 2
            parts = [" ".join(words[:half]), " ".join(words[half:])]
    else:
        # One unbroken token run (CJK text, a URL): cut by characters.
        tokens = count_tokens([sentence])[0]
        step = max(1, min(len(sentence) - 1, len(sentence) * limit // max(tokens, 1)))
        parts = [sentence[i:i + step] for i in range(0, len(sentence), step)]
    pieces: list[tuple[str, int]] = []
    for part, n in zip(parts, count_tokens(parts)):
        if n > limit and len(part) > 1:
            pieces.extend(_split_long(part, count_tokens, limit))
        else:
            pieces.append((part, n))
    return pieces


def chunk_text(text: str, count_tokens: TokenCounter, settings: ChunkSettings = ChunkSettings()) -> list[str]:
    sentences = split_sentences(text)
    if not sentences:
        return []
    counts = count_tokens(sentences)
    pieces: list[tuple[str, int]] = []
    for sentence, n in zip(sentences, counts):
        if n > settings.max_tokens:
            pieces.extend(_split_long(sentence, count_tokens, settings.max_tokens))
        else:
            pieces.append((sentence, n))

    passages: list[str] = []
    current: list[tuple[str, int]] = []
    size = 0
    for sentence, n in pieces:
        if current and size + n > settings.max_tokens:
            passages.append(" ".join(s for s, _ in current))
            # Carry the tail of the passage over, up to the overlap budget.
            carry: list[tuple[str, int]] = []
            carried = 0
            for s, k in reversed(current):
                if carried + k > settings.overlap_tokens or carried + k + n > settings.max_tokens:
                    break
                carry.insert(0, (s, k))
                carried += k
            current, size = carry, carried
        current.append((sentence, n))
        size += n
    if current:
        passages.append(" ".join(s for s, _ in current))
    return passages


def fit_tokens(text: str, count_tokens: TokenCounter, max_tokens: int) -> str:
    """`text` cut at a word boundary to at most `max_tokens` word pieces."""
    words = text.split()
    if count_tokens([text])[0] <= max_tokens:
        return text
    lo, hi = 0, len(words)
    while lo < hi:  # the longest prefix that fits
        mid = (lo + hi + 1) // 2
        if count_tokens([" ".join(words[:mid])])[0] <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])
