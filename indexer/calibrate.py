"""Choose the "no good answer" threshold from labelled queries.

Scores live on different scales in different indexes (an offline FAQ of bare
questions scores lower than one with article text), so the threshold is
calibrated per index on queries whose answer is known, and stored in the
index manifest; later builds with the same model carry it forward.

The rule (`constrained`): refuse at most `max_refused_answerable` (5%) of the
answerable queries and, within that budget, as many out-of-scope queries as
possible; of the thresholds that do so, take the lowest, placed halfway to the
next score so that it is a margin rather than a value fitted to one query.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import SearchSettings, settings_fingerprint

OBJECTIVES = ("constrained", "accuracy")
#: Thresholds are compared with scores rounded like the product's (4 decimals).
DECIMALS = 4


@dataclass
class Calibration:
    threshold: float
    objective: str
    answerable: int
    unanswerable: int
    #: Shares at `threshold` on the calibration queries themselves.
    refused_unanswerable: float
    refused_answerable: float
    accuracy: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(top_scores: Sequence[float | None], answerable: Sequence[bool], *,
              objective: str = "constrained", max_refused_answerable: float = 0.05,
              weights: Sequence[float] | None = None) -> Calibration:
    """The threshold for these queries' top-1 scores (None: the query had no result at all).

    `weights` (one per query) weigh the shares, e.g. to let several sets of
    different sizes count equally when pooled; the rates reported are weighted too.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}")
    s = np.array([-math.inf if x is None else round(float(x), DECIMALS) for x in top_scores], dtype=np.float64)
    a = np.asarray(answerable, dtype=bool)
    if len(s) != len(a) or not len(s):
        raise ValueError("need one answerable flag per score, and at least one query")
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != s.shape or (w < 0).any() or not w.sum():
        raise ValueError("need one non-negative weight per query")
    finite = np.unique(s[np.isfinite(s)])
    if not len(finite):
        return Calibration(0.0, objective, int(a.sum()), int((~a).sum()), 1.0, 1.0, float((~a).mean()),
                           note="no query has any result")
    # Candidate thresholds: below every score, between each two consecutive scores, above every score.
    step = 10 ** -DECIMALS
    candidates = [finite[0] - step]
    for lo, hi in zip(finite[:-1], finite[1:]):
        t = round((lo + hi) / 2, DECIMALS)
        candidates.append(t if lo < t <= hi else hi)
    candidates.append(finite[-1] + step)
    cand = np.array(candidates)
    answered = s[None, :] >= cand[:, None]  # (thresholds, queries)
    n_a, n_u = int(a.sum()), int((~a).sum())
    refused_a = (~answered[:, a] * w[a]).sum(axis=1) / max(w[a].sum(), 1e-12)
    refused_u = (~answered[:, ~a] * w[~a]).sum(axis=1) / max(w[~a].sum(), 1e-12)
    accuracy = (((answered & a) | (~answered & ~a)) * w).sum(axis=1) / w.sum()
    note = ""
    if objective == "accuracy":
        best = int(np.flatnonzero(accuracy == accuracy.max())[0])
    else:
        feasible = refused_a <= max_refused_answerable + 1e-12
        if not n_u:
            note = "no out-of-scope query: the threshold refuses nothing"
        feasible[0] = True  # the lowest candidate refuses nothing, so it is always allowed
        best_refusal = refused_u[feasible].max()
        best = int(np.flatnonzero(feasible & (refused_u == best_refusal))[0])
        if n_u and best_refusal == 0:
            note = "no out-of-scope query can be refused within the answerable budget"
    threshold = round(float(cand[best]), DECIMALS)
    return Calibration(threshold, objective, n_a, n_u, round(float(refused_u[best]), 4),
                       round(float(refused_a[best]), 4), round(float(accuracy[best]), 4), note)


def refusal_rates(top_scores: Sequence[float | None], answerable: Sequence[bool],
                  threshold: float) -> tuple[float, float, float]:
    """(refused unanswerable, refused answerable, accuracy) at `threshold`."""
    s = np.array([-math.inf if x is None else float(x) for x in top_scores], dtype=np.float64)
    a = np.asarray(answerable, dtype=bool)
    answered = s >= threshold
    ru = float((~answered[~a]).mean()) if (~a).any() else 0.0
    ra = float((~answered[a]).mean()) if a.any() else 0.0
    acc = float(((answered & a) | (~answered & ~a)).mean()) if len(a) else 0.0
    return round(ru, 4), round(ra, 4), round(acc, 4)


def calibrated_threshold(manifest: dict[str, Any], settings: SearchSettings) -> float | None:
    """The index's calibrated threshold while it still applies, i.e. under the same scoring settings.

    A threshold calibrated under other weights sits on another score scale; the
    fallback in config.py is a safer guess than a stale calibration.
    """
    calibration = manifest.get("calibration") or {}
    value = manifest.get("answer_threshold")
    if value is None or calibration.get("search_settings") != settings_fingerprint(settings):
        return None
    return float(value)


def top_scores(searcher: Any, cases: Sequence[Any]) -> list[float | None]:
    """Each case's top-1 score under `searcher` (None where the query found nothing)."""
    scores: list[float | None] = []
    for case in cases:
        results = searcher.search(case.query, top_k=1).results
        scores.append(results[0].score if results else None)
    return scores


def calibrate_index(index_dir: Path, cases_path: Path, *, max_refused_answerable: float = 0.05) -> Calibration:
    """Calibrate the index's threshold on labelled queries and store it in its manifest."""
    from . import store
    from .evaluate import read_cases, resolve_expected
    from .search import Searcher

    searcher = Searcher.open(index_dir, threshold=0.0)  # any value: only the scores are used
    cases = read_cases(cases_path)
    expected = resolve_expected(cases, searcher.stored.entries, str(cases_path))
    result = calibrate(top_scores(searcher, cases), [e is not None for e in expected], max_refused_answerable=max_refused_answerable)
    store.update_manifest(index_dir, {"answer_threshold": result.threshold, "calibration": result.to_dict() | {
        "cases": str(cases_path), "cases_sha256": hashlib.sha256(Path(cases_path).read_bytes()).hexdigest(),
        "search_settings": settings_fingerprint(searcher.settings),
        "calibrated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}})
    return result
