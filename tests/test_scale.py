"""Per-query work bounded by the candidates, not the index: same results as working over every unit."""

from __future__ import annotations

import numpy as np

from indexer.features import KINDS, Layout, entry_features
from indexer.lexical import Lexical


def test_entry_features_ignore_units_that_are_no_candidate() -> None:
    rng = np.random.default_rng(0)
    n_units, n_entries = 300, 40
    unit_entry = np.sort(rng.integers(0, n_entries, n_units))
    kinds = [KINDS[k] for k in rng.integers(0, len(KINDS), n_units)]
    layout = Layout.of(unit_entry, kinds, n_entries)
    dense = np.where(rng.random(n_units) < 0.3, rng.random(n_units), -np.inf).astype(np.float32)
    lexical = np.where(rng.random(n_units) < 0.2, rng.random(n_units), 0).astype(np.float32)
    focus = rng.random(n_units)
    got = entry_features(dense, lexical, layout, focus)
    # The same units plus many inactive ones (of one more entry): nothing changes.
    extra = 500
    big = Layout.of(np.r_[unit_entry, np.full(extra, n_entries)], kinds + ["passage"] * extra, n_entries + 1)
    padded = entry_features(np.r_[dense, np.full(extra, -np.inf, np.float32)],
                            np.r_[lexical, np.zeros(extra, np.float32)], big, np.r_[focus, np.ones(extra)])
    assert np.array_equal(got.entries, padded.entries)
    assert np.array_equal(got.matrix, padded.matrix)
    assert len(got.entries) == len(np.unique(unit_entry[np.isfinite(dense) | (lexical > 0)]))
    assert got.matrix.shape[0] == len(got.entries)


def test_lexical_limit_keeps_the_best_units_only() -> None:
    texts = [f"gradient descent step {'gradient ' * (i % 7)}" for i in range(50)] + ["unrelated words here"]
    lex = Lexical(texts)
    full = lex.normalised_scores(["gradient"])
    top = lex.normalised_scores(["gradient"], limit=10)
    kept = np.flatnonzero(top)
    assert len(kept) == 10
    assert np.array_equal(top[kept], full[kept])
    assert full[kept].min() >= np.sort(full)[-10]
    assert np.array_equal(lex.normalised_scores(["gradient"], limit=1000), full)
