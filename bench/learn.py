"""Fit what the product tunes, from collected records (bench/collect.py): the learned ranker,
one-weight fusions and the answer threshold, every set weighing the same.

`fit_ranker` is what `bench/train_ranker.py` ships in indexer/ranker.json;
`bench/quality.py` calls the same functions once per left-out family.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from bench.collect import Ranking, Record, ranking_from
from indexer.config import SearchSettings
from indexer.evaluate import evaluate
from indexer.features import FEATURES, EntryFeatures
from indexer.fusion import fuse_entries
from indexer.ranker import LearnedRanker
from indexer.threshold import calibrate, is_answer

#: Negatives per query for training: the best-scoring wrong entries by dense and by BM25.
HARD_NEGATIVES = 30
#: Inverse L2 strength of the logistic regression (on standardised features): chosen leave-one-set-out
#: on the dev halves from 0.03, 0.1, 0.3 and 1 (best mean MRR and best worst case against the references).
C = 0.3
#: The features the ranker reads: per unit kind, page breadth and focus, and the leads over the best other
#: entry. The z-scores and gaps (which restate the leads) added nothing leave-one-set-out.
RANKER_FEATURES = ("d_question", "d_entry", "d_answer", "d_title", "d_passage", "d_pages", "l_direct", "l_passage",
                   "lead_dense", "lead_lexical", "page_size", "focus_best")
#: Signs the coefficients are held to, so that more evidence never lowers the probability: a closer
#: match of any unit kind, a bigger lead, a more focused page (>= 0); more passages to pick the best
#: from (<= 0). Without them a query about bread scored 0.32 on a small FAQ: its weak cosines were
#: outweighed by query-independent terms the training queries (all near the topics) never tested.
SIGNS = {"page_size": -1}
#: Share of answerable dev queries the threshold may refuse. 2%, not the 5% the product aims at: a
#: threshold fitted to 5% refused 10% of the answerable queries of the family left out; at 2% it
#: refuses 4.4% (leave-one-set-out, dev halves).
MAX_REFUSED_ANSWERABLE = 0.02
#: Grid for the one weight of the zscore / minmax fusions.
WEIGHTS = tuple(round(w, 2) for w in np.linspace(0, 1, 21))


def family_weights(records: Sequence[Record]) -> np.ndarray:
    """One weight per record so that every (set, family) counts the same, each of its queries equally."""
    counts = Counter((r.set, r.family) for r in records)
    groups = len(counts)
    return np.array([1.0 / (counts[(r.set, r.family)] * groups) for r in records])


# -- metrics ----------------------------------------------------------------------------------------
def rank_of(ranking: Ranking, expected: str | None) -> int:
    return ranking.ids.index(expected) + 1 if expected in ranking.ids else 0


class Replay:
    """Quacks like a Searcher for `indexer.evaluate.evaluate`: answers from rankings already computed."""

    def __init__(self, records: Sequence[Record], rankings: Sequence[Ranking], threshold: float) -> None:
        self.by_query = {rec.query: rk for rec, rk in zip(records, rankings)}
        self.threshold = threshold

    def search(self, query: str, *, top_k: int | None = None) -> Any:
        rk = self.by_query[query]
        results = [SimpleNamespace(id=i, score=s) for i, s in zip(rk.ids[:top_k], rk.scores[:top_k])]
        return SimpleNamespace(answered=is_answer(rk.top_score, self.threshold), results=results)


def metrics(records: Sequence[Record], rankings: Sequence[Ranking], threshold: float) -> dict[str, Any]:
    """The `eval` metrics (top-1, MRR@10, recall@5, refusals at `threshold`) of precomputed rankings."""
    report = evaluate(Replay(records, rankings, threshold), records, [r.expected for r in records])
    out = {k: getattr(report, k) for k in ("queries", "answerable", "unanswerable", "top1", "mrr", "recall_at_5",
                                           "refused_unanswerable", "refused_answerable")}
    if not report.unanswerable:
        out["refused_unanswerable"] = None
    return out


def mean_mrr(records: Sequence[Record], rankings: Sequence[Ranking]) -> float:
    """MRR with every (set, family) weighing the same (what the weight choices maximise)."""
    w = family_weights(records)
    rr = np.array([(1 / k if (k := rank_of(r, rec.expected)) else 0.0) if rec.answerable else np.nan
                   for rec, r in zip(records, rankings)])
    keep = ~np.isnan(rr)
    return float((rr[keep] * w[keep]).sum() / w[keep].sum())


def fit_threshold(records: Sequence[Record], rankings: Sequence[Ranking]) -> float:
    """The constrained-rule threshold on these records' top scores, every (set, family) weighing the same."""
    cal = calibrate([r.top_score for r in rankings], [rec.answerable for rec in records],
                    max_refused_answerable=MAX_REFUSED_ANSWERABLE, weights=family_weights(records))
    return cal.threshold


# -- one-weight fusions -------------------------------------------------------------------------------
def weighted_rankings(records: Sequence[Record], fusion: str, weight: float) -> list[Ranking]:
    """Rankings under the product's zscore / minmax fusion (indexer/fusion.py) with lexical weight `weight`."""
    settings = replace(SearchSettings(), fusion=fusion, lexical_weight=weight)
    return [ranking_from(rec.entry_ids, fuse_entries(EntryFeatures(np.arange(len(rec.entry_ids)), rec.matrix),
                                                     settings)) if len(rec.entry_ids) else Ranking()
            for rec in records]


def choose_weight(records: Sequence[Record], fusion: str) -> float:
    """The grid weight with the best family-balanced MRR on `records` (ties: the smaller weight)."""
    scores = [(mean_mrr(records, weighted_rankings(records, fusion, w)), -w) for w in WEIGHTS]
    return -max(scores)[1]


# -- the learned ranker ---------------------------------------------------------------------------------
def training_rows(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, sample weight): each query's gold entry and its hardest wrong ones."""
    d, l_ = FEATURES.index("d_best"), FEATURES.index("l_best")
    xs, ys, ws = [], [], []
    for rec, w in zip(records, family_weights(records)):
        if not len(rec.entry_ids):
            continue
        m, y = rec.matrix, rec.label
        keep = np.zeros(len(y), dtype=bool)
        keep[np.argsort(-m[:, d], kind="stable")[:HARD_NEGATIVES]] = True
        keep[np.argsort(-m[:, l_], kind="stable")[:HARD_NEGATIVES]] = True
        keep |= y
        xs.append(m[keep])
        ys.append(y[keep])
        ws.append(np.full(int(keep.sum()), w))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws)


def logistic(X: np.ndarray, y: np.ndarray, w: np.ndarray, c: float,
             bounds: Sequence[tuple[float | None, float | None]]) -> tuple[np.ndarray, float]:
    """L2-regularised weighted logistic regression with sign bounds per coefficient (L-BFGS-B)."""
    from scipy.optimize import minimize

    w = w * len(w) / w.sum()
    t = np.where(y, 1.0, -1.0)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ theta[:-1] + theta[-1]
        margin = t * z
        value = (w * np.logaddexp(0, -margin)).sum() + 0.5 / c * theta[:-1] @ theta[:-1]
        g = -w * t / (1 + np.exp(np.clip(margin, -50, 50)))
        grad = np.r_[X.T @ g + theta[:-1] / c, g.sum()]
        return float(value), grad

    result = minimize(loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B",
                      bounds=list(bounds) + [(None, None)], options={"maxiter": 5000})
    return result.x[:-1], float(result.x[-1])


def fit_ranker(records: Sequence[Record], features: Sequence[str] = RANKER_FEATURES, c: float = C) -> LearnedRanker:
    """Logistic regression on the records' training rows; its threshold from the same records."""
    X, y, w = training_rows(records)
    cols = [FEATURES.index(f) for f in features]
    X = X[:, cols]
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    bounds = [(None, 0.0) if SIGNS.get(f, 1) < 0 else (0.0, None) for f in features]
    coef, intercept = logistic((X - mean) / scale, y, w, c, bounds)
    ranker = LearnedRanker(features=tuple(features), mean=mean, scale=scale, coef=coef, intercept=intercept,
                           answer_threshold=0.5)
    threshold = fit_threshold(records, learned_rankings(records, ranker))
    return replace(ranker, answer_threshold=min(max(threshold, 0.0), 1.0))


def learned_rankings(records: Sequence[Record], ranker: LearnedRanker) -> list[Ranking]:
    return [ranking_from(rec.entry_ids, ranker.probabilities(rec.matrix)) if len(rec.entry_ids) else Ranking()
            for rec in records]
