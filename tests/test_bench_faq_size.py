"""bench/faq_size.py's scoring: a ranking counted as `indexer eval` counts it, and again with other FAQs' entries
taken out, so that a drop on a mixed index can be told from another FAQ's entry coming first."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.faq_size import score


def _response(ids: list[str], answered: bool = True) -> SimpleNamespace:
    return SimpleNamespace(results=[SimpleNamespace(id=i) for i in ids], answered=answered)


def test_score_counts_the_ranking_as_is_and_with_other_faqs_entries_taken_out() -> None:
    own = {"c-1", "c-2", "c-3"}
    responses = [_response(["c-1", "x-9"]),                  # right first
                 _response(["x-9", "c-2"]),                  # another FAQ's entry first, then the right one
                 _response(["x-8", "x-9", "c-1", "c-3"], answered=False),  # refused; own rank 2
                 _response(["c-2"], answered=False)]         # out of scope, rightly refused
    out = score(responses, ["c-1", "c-2", "c-3", None], own)
    assert out["answerable"] == 3 and out["oos"] == 1
    assert out["top1"] == pytest.approx(1 / 3) and out["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4) / 3)
    assert out["own_top1"] == pytest.approx(2 / 3) and out["own_mrr"] == pytest.approx((1 + 1 + 1 / 2) / 3)
    assert out["other_faq_first"] == pytest.approx(2 / 3)
    assert out["refused_answerable"] == pytest.approx(1 / 3) and out["refused_oos"] == 1.0


def test_score_reads_only_the_first_ten_for_mrr_as_indexer_eval_does() -> None:
    deep = _response([f"x-{n}" for n in range(10)] + ["c-1"])
    out = score([deep], ["c-1"], {"c-1"})
    assert out["mrr"] == 0.0 and out["own_top1"] == 1.0 and out["other_faq_first"] == 1.0
