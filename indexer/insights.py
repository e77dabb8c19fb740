"""What the query log says to the FAQ's maintainer: what learners ask that the FAQ does not answer.

Reads the app's query log (indexer/querylog.py) over a period and sums it up:
how many questions, how many answered, the questions the FAQ did not answer
(or answered with little confidence) **grouped by meaning**, the entries asked
for most, the votes per entry with the questions that got a thumbs-down, and
the "suggest this question" requests.

Grouping: the questions are embedded with the index's own query encoder and
clustered agglomeratively (average linkage on cosine distance, cut at
`GROUP_DISTANCE`), so "what is dropout", "how does dropout work" and "dropout
vs batch norm?" land in one group named after its most central question. The
count is of askings, not of distinct wordings: "12 people asked about
dropout". Used by `python -m indexer insights` and the app's Maintainer view.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .querylog import QueryLog
from .text import fold
from .threshold import confidence_level

log = logging.getLogger(__name__)

#: Cosine distance at which two questions stop being "the same question" (average linkage). On the
#: hand-made examples of tests/test_insights.py (four topics of one course asked several ways: dropout,
#: attention, batch norm, warm-up) wordings of one topic sit at most 0.50 apart with all-MiniLM-L6-v2 and
#: 0.54 with all-mpnet-base-v2, and 0.55 to 0.65 groups them right with either model.
GROUP_DISTANCE = 0.55
#: Confidence levels (indexer.threshold) that count as "not really answered" for the maintainer.
UNSURE_LEVELS = ("weak", "possible")
DEFAULT_PERIOD = "30d"

_PERIOD = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)


class PeriodError(ValueError):
    """A `--since` value that is neither a span (30d, 12h, 2w) nor a date (2026-11-01)."""


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`30d` / `12h` / `2w` before `now`, or an ISO date or time (UTC when it has no zone)."""
    now = now or datetime.now(timezone.utc)
    m = _PERIOD.match(value or "")
    if m:
        n, unit = int(m.group(1)), m.group(2).lower()
        return now - {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
    try:
        when = datetime.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise PeriodError(f"--since {value!r}: give a span like 30d, 12h or 2w, or a date like 2026-11-01") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@dataclass
class QueryGroup:
    """Questions that mean the same, named by the most central one."""

    name: str
    size: int
    newest: str
    #: Distinct wordings, most asked first.
    queries: list[str] = field(default_factory=list)
    #: How many of the askings were kept to one section (a course of a multi-course FAQ), by section, most
    #: first; askings over all sections are not counted.
    sections: dict[str, int] = field(default_factory=dict)

    def sections_text(self) -> str:
        """ "ml 8, data-engineering 4", or "" when no asking was kept to a section."""
        return ", ".join(f"{name} {n}" for name, n in self.sections.items())


@dataclass
class EntryVotes:
    entry_id: str
    question: str
    up: int
    down: int
    #: The questions whose answer got a thumbs-down (what the entry failed to answer).
    down_queries: list[str] = field(default_factory=list)


@dataclass
class DayCount:
    day: str
    queries: int
    answered: int


@dataclass
class Insights:
    since: str
    queries: int
    answered: int
    per_day: list[DayCount]
    #: Top scores of the period's questions (for a histogram).
    scores: list[float]
    unanswered: list[QueryGroup]
    #: (entry id, question, times it was the top result of an answered question), most first.
    top_entries: list[tuple[str, str, int]]
    votes: list[EntryVotes]
    #: (question, times suggested, newest), most first.
    suggestions: list[tuple[str, int, str]]

    @property
    def answered_share(self) -> float:
        return self.answered / self.queries if self.queries else 0.0

    def score_histogram(self, bins: int = 10) -> dict[str, int]:
        """How many questions' best entry scored in each tenth of [0, 1] ("0.2–0.3": n)."""
        counts, edges = np.histogram(self.scores, bins=bins, range=(0.0, 1.0))
        return {f"{lo:.1f}–{hi:.1f}": int(n) for lo, hi, n in zip(edges, edges[1:], counts)}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["answered_share"] = round(self.answered_share, 4)
        return data


def group_by_meaning(asked: Sequence[tuple[str, ...]], vectors: np.ndarray,
                     max_distance: float = GROUP_DISTANCE) -> list[QueryGroup]:
    """Group (query, timestamp[, section]) askings whose wordings are close in meaning; biggest groups first.

    `vectors` holds one unit-length embedding per *distinct* wording, in the order of first appearance
    (`distinct_wordings(asked)`).
    """
    wordings = distinct_wordings(asked)
    if not wordings:
        return []
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(wordings) == 1:
        labels = np.array([1])
    else:
        from scipy.cluster.hierarchy import fcluster, linkage

        distance = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
        condensed = distance[np.triu_indices(len(wordings), k=1)]
        labels = fcluster(linkage(condensed, method="average"), t=max_distance, criterion="distance")
    key_of = {wording_key(q): i for i, q in enumerate(wordings)}
    counts: Counter[int] = Counter()
    newest: dict[int, str] = {}
    sections: dict[int, Counter[str]] = defaultdict(Counter)
    for query, ts, *section in asked:
        i = key_of[wording_key(query)]
        counts[i] += 1
        newest[i] = max(newest.get(i, ""), ts or "")
        if section and section[0]:
            sections[i][section[0]] += 1
    groups = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        sims = vectors[members] @ vectors[members].T
        central = members[int(np.argmax(sims.sum(axis=1)))]
        ordered = sorted(members, key=lambda i: (-counts[i], wordings[i]))
        in_sections = sum((sections[i] for i in members), Counter())
        groups.append(QueryGroup(name=wordings[central], size=int(sum(counts[i] for i in members)),
                                 newest=max(newest[i] for i in members), queries=[wordings[i] for i in ordered],
                                 sections=dict(sorted(in_sections.items(), key=lambda kv: (-kv[1], kv[0])))))
    return sorted(groups, key=lambda g: (-g.size, -_epoch(g.newest), g.name))


def wording_key(query: str) -> str:
    """What makes two askings the same wording: their words, case, accents and punctuation aside."""
    return " ".join(re.findall(r"\w+", fold(query)))


def distinct_wordings(asked: Sequence[tuple[str, ...]]) -> list[str]:
    """Each wording once (`wording_key`), as first asked, in order of first appearance."""
    seen: dict[str, str] = {}
    for query, *_ in asked:
        seen.setdefault(wording_key(query), " ".join(query.split()))
    return list(seen.values())


def _epoch(ts: str) -> float:
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return 0.0


def gather(querylog: QueryLog, since: datetime, *, questions: Mapping[str, str], threshold: float,
           embed: Callable[[list[str]], np.ndarray]) -> Insights:
    """The period's insights. `questions`: entry id -> FAQ question; `embed`: texts -> unit vectors."""
    cutoff = since.astimezone(timezone.utc).isoformat(timespec="seconds")
    rows = querylog.rows("queries", cutoff)
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unsure: list[tuple[str, str, str | None]] = []
    top: Counter[str] = Counter()
    for r in rows:
        day = per_day[(r["ts"] or "")[:10]]
        day[0] += 1
        day[1] += int(bool(r["answered"]))
        if r["n_results"] == 0:
            continue  # nothing to search for ("the", "???"): not a question the FAQ missed
        if not r["answered"] or confidence_level(r["top_score"], threshold) in UNSURE_LEVELS:
            unsure.append((r["query"], r["ts"], r.get("section")))
        elif r["top_id"]:
            top[r["top_id"]] += 1
    wordings = distinct_wordings(unsure)
    vectors = embed(wordings) if wordings else np.zeros((0, 1))
    votes: dict[str, EntryVotes] = {}
    for v in querylog.rows("feedback", cutoff):
        ev = votes.setdefault(v["entry_id"], EntryVotes(v["entry_id"], questions.get(v["entry_id"], v["entry_id"]),
                                                        0, 0))
        if v["vote"] > 0:
            ev.up += 1
        else:
            ev.down += 1
            if v["query"] not in ev.down_queries:
                ev.down_queries.append(v["query"])
    suggested: dict[str, list] = {}
    for s in querylog.rows("suggestions", cutoff):
        item = suggested.setdefault(wording_key(s["query"]), [s["query"], 0, ""])
        item[1] += 1
        item[2] = max(item[2], s["ts"])
    return Insights(
        since=cutoff, queries=len(rows), answered=sum(int(bool(r["answered"])) for r in rows),
        per_day=[DayCount(d, n, a) for d, (n, a) in sorted(per_day.items())],
        scores=[float(r["top_score"]) for r in rows if r["top_score"] is not None],
        unanswered=group_by_meaning(unsure, vectors),
        top_entries=[(e, questions.get(e, e), n) for e, n in top.most_common()],
        votes=sorted(votes.values(), key=lambda v: (-v.down, -v.up, v.question)),
        suggestions=sorted(((q, n, last) for q, n, last in suggested.values()), key=lambda s: (-s[1], s[0])),
    )
