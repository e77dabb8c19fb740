"""bench/learn.py's statistics: reciprocal ranks and the paired interval the quality table puts on each row."""

from __future__ import annotations

import numpy as np

from bench.collect import Ranking, Record
from bench.learn import paired_interval, reciprocal_ranks


def _record(expected: str | None) -> Record:
    return Record(set="s", family="f", half="dev", query=f"q {expected}", expected=expected, entry_ids=[],
                  matrix=np.zeros((0, 0)))


def test_reciprocal_ranks_count_answerable_queries_only_and_a_miss_as_zero():
    records = [_record("a"), _record(None), _record("b"), _record("c")]
    rankings = [Ranking(ids=["x", "a"]), Ranking(ids=["a"]), Ranking(ids=["b"]), Ranking(ids=["x", "y"])]
    assert reciprocal_ranks(records, rankings).tolist() == [0.5, 1.0, 0.0]


def test_the_same_ranks_have_a_zero_interval():
    rr = np.array([1.0, 0.5, 0.0, 1.0])
    assert paired_interval(rr, rr) == (0.0, 0.0)


def test_one_query_of_forty_is_within_noise_and_a_steady_gain_is_not():
    base = np.r_[np.ones(30), np.full(10, 0.5)]
    one_flip = base.copy()
    one_flip[0] = 0.5
    lo, hi = paired_interval(one_flip, base)
    assert lo < 0 <= hi  # one query down by half a rank: the row's size cannot tell it from chance
    better = base.copy()
    better[30:] = 1.0  # ten of forty queries move up to rank 1
    lo, hi = paired_interval(better, base)
    assert 0 < lo <= 0.125 <= hi


def test_the_interval_is_reproducible_and_empty_rows_give_nan():
    rng = np.random.default_rng(1)
    a, b = rng.random(50), rng.random(50)
    assert paired_interval(a, b) == paired_interval(a, b)
    assert all(np.isnan(paired_interval(np.array([]), np.array([]))))
