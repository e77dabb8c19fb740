"""How the dense and the lexical signal become one score: each fusion a small strategy.

Two families, measured side by side in bench/RESULTS.md:

- **unit fusions** score every unit, then an entry by its best unit:
  `weighted` ((1 - w) * cosine + w * BM25 share, kind weights, passages read in
  their entry's context) and `rrf` (reciprocal rank fusion of the two rankings);
- **entry fusions** score an entry from its FEATURES (indexer/features.py):
  `zscore` and `minmax` (each signal normalised over the query's candidates,
  then (1 - w) * dense + w * lexical) and `learned` (the softmax-with-none ranker of
  indexer/ranker.py, whose output is a probability).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .features import EntryFeatures

if TYPE_CHECKING:
    from .config import SearchSettings
    from .ranker import LearnedRanker

UNIT_FUSIONS = ("weighted", "rrf")
ENTRY_FUSIONS = ("zscore", "minmax", "learned")
FUSIONS = UNIT_FUSIONS + ENTRY_FUSIONS


def check(fusion: str) -> None:
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r} ({', '.join(FUSIONS)})")


# -- unit fusions -----------------------------------------------------------------------------------
def ranks(scores: np.ndarray, present: np.ndarray) -> np.ndarray:
    """1-based rank of each item by `scores` among the `present` ones; inf elsewhere."""
    out = np.full(len(scores), np.inf, dtype=np.float64)
    order = np.flatnonzero(present)[np.argsort(-scores[present], kind="stable")]
    out[order] = np.arange(1, len(order) + 1)
    return out


def rrf(dense: np.ndarray, lexical: np.ndarray, k: int) -> np.ndarray:
    """1/(k + dense rank) + 1/(k + BM25 rank); -inf where neither retriever found the item."""
    fused = 1.0 / (k + ranks(dense, np.isfinite(dense))) + 1.0 / (k + ranks(lexical, lexical > 0))
    return np.where(np.isfinite(dense) | (lexical > 0), fused, -np.inf).astype(np.float32)


def fuse_units(dense: np.ndarray, lexical: np.ndarray, s: SearchSettings) -> np.ndarray:
    """One hybrid score per unit from its dense cosine and its normalised BM25 score.

    Under an entry fusion this is only what picks the evidence shown (the weighted mix).
    """
    if s.fusion == "rrf":
        return rrf(dense, lexical, s.rrf_k)
    return ((1 - s.lexical_weight) * dense + s.lexical_weight * lexical).astype(np.float32)


# -- entry fusions ----------------------------------------------------------------------------------
def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min() if len(x) else 0.0
    return (x - x.min()) / span if span > 1e-9 else np.zeros_like(x)


def fuse_entries(features: EntryFeatures, s: SearchSettings, ranker: LearnedRanker | None = None) -> np.ndarray:
    """One score per candidate entry (rows of `features`)."""
    if s.fusion == "learned":
        if ranker is None:
            raise ValueError("fusion 'learned' needs a ranker (indexer.ranker.load())")
        return ranker.probabilities(features.matrix)
    w = s.lexical_weight
    if s.fusion == "zscore":
        return (1 - w) * features.column("z_dense") + w * features.column("z_lexical")
    if s.fusion == "minmax":
        return (1 - w) * _minmax(features.column("d_best")) + w * _minmax(features.column("l_best"))
    raise ValueError(f"fusion {s.fusion!r} is not an entry fusion ({', '.join(ENTRY_FUSIONS)})")
