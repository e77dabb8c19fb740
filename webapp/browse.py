"""The Browse view's logic and the home page's examples: entries grouped, filtered, sampled."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from indexer.records import Entry
from indexer.text import fold

from .cards import kind_label

UNCATEGORISED = "Other questions"


def group_by_category(entries: Iterable[Entry]) -> list[tuple[str, list[Entry]]]:
    """Entries grouped by category, categories and entries in FAQ order."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.category or UNCATEGORISED, []).append(entry)
    return list(groups.items())


def _haystack(entry: Entry) -> str:
    parts = [entry.question, entry.answer, entry.category, entry.id]
    for r in entry.resources or ():
        parts += [r.title, r.site, kind_label(r.kind), r.url]
    return fold(" ".join(str(p or "") for p in parts))


def filter_entries(entries: Iterable[Entry], text: str | None) -> list[Entry]:
    """Entries whose question, answer, category or links contain every word of `text` (any case/accents)."""
    words = fold(text or "").split()
    entries = list(entries)
    if not words:
        return entries
    return [e for e in entries if all(w in _haystack(e) for w in words)]


def example_questions(entries: Iterable[Entry], n: int = 2) -> list[str]:
    """A few short FAQ questions, from different categories when there are several, to click and try."""
    entries = list(entries)
    short = [e for e in entries if 10 <= len(e.question or "") <= 60] or entries
    picked: list[str] = []
    seen: set[str] = set()
    for pass_ in (0, 1):
        for e in short[::max(1, len(short) // (n * 2 + 1))] if pass_ == 0 else short:
            q = e.question or ""
            cat = e.category or ""
            if q in picked or (pass_ == 0 and cat in seen):
                continue
            picked.append(q)
            seen.add(cat)
            if len(picked) >= n:
                return picked
    return picked


def read_examples(path: Path) -> list[str]:
    """Example questions from a text file, one per line (blank lines and `#` comments skipped); [] if none."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
