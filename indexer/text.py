"""Small text helpers shared by the indexer and the web app, each defined once.

Standard library only: the web app imports this before its index (and numpy,
FAISS, BM25) has loaded, so it must cost nothing to import.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import urlsplit

#: The longest query kept: what the app searches for and what the query log stores.
MAX_QUERY_CHARS = 500


def fold(text: str) -> str:
    """Case- and accent-insensitive form used for matching (BM25 terms, the Browse filter)."""
    if text.isascii():  # nothing to decompose: the common case, per word of every text searched and shown
        return text.lower()
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def whole_words(vocabulary: Iterable[str]) -> frozenset[str]:
    """The whole words of a word-piece vocabulary (not its `##` continuations): words a model knows as
    spelled, which typo repair leaves alone even where the FAQ never uses them."""
    return frozenset(w for w in vocabulary if w.isalpha() and not w.startswith("##"))


def site_name(url: str) -> str:
    """The host a link points at, without `www.` (`youtube.com`); empty for an unparsable URL."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # e.g. a bad port or IPv6 literal
        return ""
    return host[4:] if host.startswith("www.") else host


def utc_now() -> str:
    """The current time as ISO 8601 in UTC, to the second: every timestamp the project writes."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def clip_query(query: str | None) -> str:
    """A user's query with its whitespace collapsed, cut to `MAX_QUERY_CHARS`."""
    return " ".join(("" if query is None else str(query)).split())[:MAX_QUERY_CHARS]
