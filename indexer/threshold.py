"""When the FAQ has an answer: one score, one threshold, and where the threshold comes from.

A query is answered when its top entry's score reaches the threshold. With the
learned ranker (the default fusion) that score is the probability that the
entry answers the query, trained with out-of-scope queries among the examples,
so one calibrated number both ranks and refuses (indexer/ranker.py).

Which threshold applies, in order (`resolve`):
1. a value given by the caller (`--threshold`);
2. the `FAQ_ANSWER_THRESHOLD` environment variable;
3. the index's own calibration (`python -m indexer calibrate`), while the
   scoring settings it was made under still hold (a threshold made under other
   weights sits on another scale);
4. the default: the threshold of the ranker for the index's model, chosen on the development halves, or
   `SearchSettings.answer_threshold` for the other fusions.

The calibration rule (`calibrate`): refuse at most `max_refused_answerable`
(5%) of the answerable queries and, within that budget, as many out-of-scope
queries as possible; of the thresholds that do so, take the lowest, placed
halfway to the next score so that it is a margin rather than a value fitted to
one query. Build, search, status, calibrate and the app all go through here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from .config import SearchSettings

ENV_VAR = "FAQ_ANSWER_THRESHOLD"
#: SearchSettings fields that do not change any score (so they do not make a calibration stale).
_NOT_SCORING = ("top_k", "answer_threshold")


class ThresholdError(ValueError):
    """A threshold given by the user is not a number."""


@dataclass(frozen=True)
class Threshold:
    value: float
    #: "given", "environment", "calibrated" or "default".
    source: str

    @property
    def calibrated(self) -> bool:
        return self.source == "calibrated"


def fingerprint(settings: SearchSettings, model: str | None = None) -> str:
    """Identifies a scoring configuration (the learned ranker's file for an index of `model` included): a
    threshold calibrated under another one is stale."""
    scoring = {k: v for k, v in asdict(settings).items() if k not in _NOT_SCORING}
    if settings.learned:
        from .ranker import load

        scoring["ranker_sha256"] = load(settings.ranker or None, model=model).sha256
    return hashlib.sha256(json.dumps(scoring, sort_keys=True).encode()).hexdigest()[:16]


def default_threshold(settings: SearchSettings, model: str | None = None) -> float:
    if settings.learned:
        from .ranker import load

        return load(settings.ranker or None, model=model).answer_threshold
    return settings.answer_threshold


def calibrated_threshold(manifest: dict[str, Any], settings: SearchSettings) -> float | None:
    """The index's calibrated threshold while it still applies, i.e. under the same scoring settings."""
    calibration = manifest.get("calibration") or {}
    value = manifest.get("answer_threshold")
    if value is None or not calibration or (
            calibration.get("search_settings") != fingerprint(settings, manifest.get("model"))):
        return None
    return float(value)


def environment_threshold() -> float | None:
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ThresholdError(f"{ENV_VAR}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise ThresholdError(f"{ENV_VAR}={text!r} is not a finite number")
    return value


def resolve(manifest: dict[str, Any], settings: SearchSettings, given: float | None = None) -> Threshold:
    """The threshold searches of this index use, and why (see the module's docstring for the order)."""
    if given is not None:
        if not math.isfinite(given):
            raise ThresholdError(f"the threshold given ({given}) is not a finite number")
        return Threshold(float(given), "given")
    env = environment_threshold()
    if env is not None:
        return Threshold(env, "environment")
    calibrated = calibrated_threshold(manifest, settings)
    if calibrated is not None:
        return Threshold(calibrated, "calibrated")
    return Threshold(default_threshold(settings, manifest.get("model")), "default")


def is_answer(top_score: float | None, threshold: float) -> bool:
    """Whether a top entry with this score (None: no result) is presented as the answer."""
    return top_score is not None and top_score >= threshold


#: Confidence at which an answer reads as "good" / "strong". The score is the learned ranker's probability
#: that the entry answers the query (indexer/ranker.py); below the answer threshold a result is "weak",
#: between the threshold and GOOD_CONFIDENCE "possible".
GOOD_CONFIDENCE = 0.5
STRONG_CONFIDENCE = 0.8
CONFIDENCE_LEVELS = ("weak", "possible", "good", "strong")


def confidence_level(score: float | None, threshold: float) -> str:
    """One of CONFIDENCE_LEVELS for a result's score: the word the app, the CLI and insights all use."""
    if score is None or score != score or not is_answer(score, threshold):
        return "weak"
    if score >= max(STRONG_CONFIDENCE, threshold):
        return "strong"
    if score >= max(GOOD_CONFIDENCE, threshold):
        return "good"
    return "possible"


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
    import numpy as np  # here, not at module level: the app imports this module before its page draws

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
    import numpy as np  # here, not at module level: the app imports this module before its page draws

    s = np.array([-math.inf if x is None else float(x) for x in top_scores], dtype=np.float64)
    a = np.asarray(answerable, dtype=bool)
    answered = s >= threshold
    ru = float((~answered[~a]).mean()) if (~a).any() else 0.0
    ra = float((~answered[a]).mean()) if a.any() else 0.0
    acc = float(((answered & a) | (~answered & ~a)).mean()) if len(a) else 0.0
    return round(ru, 4), round(ra, 4), round(acc, 4)
