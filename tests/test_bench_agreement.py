"""bench/agreement.py: the two-threshold refusal rule of docs/agreement.md, fitted and decided."""

from __future__ import annotations

import pytest

from bench.agreement import Query, decide, fit, leave_one_set_out, refusal


def _q(set_name: str, family: str, answerable: bool, probability: float, agree: bool) -> Query:
    return Query(set_name, family, "q", "e1" if answerable else None, "e1", probability, "e1" if agree else "e2")


def _pool(set_name: str) -> list[Query]:
    """Answerable queries mostly agreed on with middling probabilities; out-of-scope ones that score as high
    but on which the models disagree: only a higher threshold where they disagree refuses them."""
    out = [_q(set_name, "f", True, p, True) for p in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)]
    out += [_q(set_name, "f", True, p, False) for p in (0.5, 0.6, 0.7, 0.8, 0.9)]
    out += [_q(set_name, "f", False, p, False) for p in (0.25, 0.3, 0.35, 0.4)]
    out += [_q(set_name, "f", False, p, True) for p in (0.05, 0.1)]
    return out


def test_refusal_weighs_every_family_the_same() -> None:
    small = [_q("s", "small", True, 0.1, True)]  # refused, alone in its family
    big = [_q("s", "big", True, 0.9, True) for _ in range(9)]  # answered
    shares = refusal(small + big, 0.5, 0.5)
    assert shares["refused_answerable"] == pytest.approx(0.5)
    assert "refused_unanswerable" not in shares


def test_disagreement_earns_its_own_threshold() -> None:
    queries = _pool("a") + _pool("b")
    t_agree, t_disagree = fit(queries)
    assert t_agree <= 0.2 < 0.4 < t_disagree <= 0.5  # every out-of-scope query refused, no answerable one
    shares = refusal(queries, t_agree, t_disagree)
    assert shares == {"refused_answerable": 0.0, "refused_unanswerable": 1.0}
    one, _ = fit(queries, two=False)
    assert refusal(queries, one, one)["refused_unanswerable"] < 1.0  # one threshold cannot do as well


def test_leave_one_set_out_applies_each_fold_to_the_set_it_left_out() -> None:
    queries = _pool("a") + _pool("b") + [_q("c", "f", True, 0.3, False), _q("c", "f", False, 0.45, False)]
    pooled, folds = leave_one_set_out(queries, two=True)
    assert [f["set"] for f in folds] == ["a", "b", "c"]
    by_set = {f["set"]: f for f in folds}
    # Fitted on a and b, the pair refuses c's answerable query (0.3 < t_disagree): the cost shows.
    assert by_set["c"]["refused_answerable"] == 1.0
    assert pooled["refused_answerable"] > 0


def test_the_rule_needs_both_criteria() -> None:
    incumbent = {"refused_answerable": 0.050, "refused_unanswerable": 0.45}
    assert decide(incumbent, {"refused_answerable": 0.054, "refused_unanswerable": 0.49})["ships"]
    fewer = decide(incumbent, {"refused_answerable": 0.050, "refused_unanswerable": 0.47})
    costlier = decide(incumbent, {"refused_answerable": 0.060, "refused_unanswerable": 0.55})
    assert fewer["met"] == {"a": False, "b": True} and not fewer["ships"]
    assert costlier["met"] == {"a": True, "b": False} and not costlier["ships"]
