"""Score every evaluation query once per set: fixed-configuration rankings and each entry's features.

Everything tuned later (fusion weights, the learned ranker, thresholds) is fitted
and scored from these records without touching the index again, which is what
makes leave-one-set-out over many configurations cheap (bench/learn.py,
bench/quality.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from bench.configs import config_settings

DEPTH = 10  # what indexer.evaluate asks for (MRR depth)
#: Configurations whose ranking needs no fitting (computed once per query).
FIXED = ("dense-questions", "bm25", "dense-all", "rrf", "hybrid", "legacy")
#: The hybrid searcher whose features every entry fusion reads (any entry fusion computes the same).
FEATURE_CONFIG = "zscore"


@dataclass
class Ranking:
    """The top entries of one query under one configuration, as `Searcher.search` would return them."""

    ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def top_score(self) -> float | None:
        return self.scores[0] if self.scores else None


@dataclass
class Record:
    """One query of one family, half and set, with what every configuration needs to rank it."""

    set: str
    family: str
    half: str
    query: str
    #: Expected entry id (None: out of scope).
    expected: str | None
    #: Entry ids of the feature rows, and the rows (indexer.features.FEATURES).
    entry_ids: list[str]
    matrix: np.ndarray
    rankings: dict[str, Ranking] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return self.expected is not None

    @property
    def label(self) -> np.ndarray:
        return np.array([e == self.expected for e in self.entry_ids], dtype=bool)


def ranking_from(entry_ids: Sequence[str], scores: np.ndarray, depth: int = DEPTH) -> Ranking:
    """The best `depth` of `scores` (one per entry id; -inf: not a candidate), rounded like the product."""
    from indexer.search import Searcher

    order = Searcher.rank(np.asarray(scores, dtype=np.float64), depth)
    return Ranking(ids=[entry_ids[i] for i in order], scores=[round(float(scores[i]), 4) for i in order])


def collect_set(set_name: str, eset: Any) -> tuple[list[Record], dict[str, Any]]:
    """Records for every query of every family of `eset` (index already built), and facts about the set."""
    from indexer.evaluate import read_cases, resolve_expected
    from indexer.search import Searcher

    started = time.perf_counter()
    base = Searcher.open(eset.index_dir, settings=_feature_settings(), threshold=0.0)
    open_s = time.perf_counter() - started
    searchers = {name: base.with_settings(config_settings(name), threshold=0.0) for name in FIXED}
    cases_by_key: list[tuple[str, str, Any, str | None]] = []
    for family, (dev, test) in eset.families().items():
        for half, path in (("dev", dev), ("test", test)):
            cases = read_cases(path)
            for case, expected in zip(cases, resolve_expected(cases, base.stored.entries, str(path))):
                cases_by_key.append((family, half, case, expected))
    queries = list(dict.fromkeys(c.query for _, _, c, _ in cases_by_key))
    prepared = {q: base.prepare(q) for q in queries}
    started = time.perf_counter()
    vectors = dict(zip(queries, base.embedder.encode([prepared[q].dense_text for q in queries])))
    encode_ms = (time.perf_counter() - started) * 1000 / max(len(queries), 1)

    per_query: dict[str, tuple[list[str], np.ndarray, dict[str, Ranking]]] = {}
    for q in queries:
        if not prepared[q].searchable:
            per_query[q] = ([], np.zeros((0, 0)), {name: Ranking() for name in FIXED})
            continue
        scored = base.score(prepared[q], vectors[q])
        features = scored.features
        ids = [base.entry_ids[int(e)] for e in features.entries]
        rankings = {name: ranking_from(base.entry_ids, s.score(prepared[q], vectors[q]).entries)
                    for name, s in searchers.items()}
        per_query[q] = (ids, features.matrix, rankings)
    records = [Record(set=set_name, family=family, half=half, query=case.query, expected=expected,
                      entry_ids=per_query[case.query][0], matrix=per_query[case.query][1],
                      rankings=per_query[case.query][2])
               for family, half, case, expected in cases_by_key]
    info = {"entries": len(base.entry_ids), "units": len(base.units), "open_seconds": round(open_s, 2),
            "query_encoder": type(base.embedder).__name__, "encode_ms_per_query_batched": round(encode_ms, 2)}
    return records, info


def _feature_settings():
    from indexer.config import Settings

    return Settings(search=config_settings(FEATURE_CONFIG))
