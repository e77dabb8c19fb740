"""The second model decision's rule (docs/models.md) as bench/blind.py computes it."""

from __future__ import annotations

from bench.blind import decide


def _scores(mrrs: dict[str, float], refused_answerable: float, refused_oos: float) -> dict:
    return {"rows": {row: {"metrics": {"learned": {"mrr": mrr}}} for row, mrr in mrrs.items()},
            "pooled": {"refused_answerable": refused_answerable, "refused_unanswerable": refused_oos}}


INCUMBENT = _scores({"a": 0.80, "b": 0.60, "c": 0.90}, refused_answerable=0.04, refused_oos=0.45)


def test_a_clear_gain_that_refuses_no_worse_wins() -> None:
    challenger = _scores({"a": 0.85, "b": 0.70, "c": 0.90}, refused_answerable=0.045, refused_oos=0.42)
    decision = decide(INCUMBENT, challenger)
    assert decision["challenger_wins"]
    assert abs(decision["criteria"]["a_mean_gain"]["value"] - 0.05) < 1e-9


def test_each_criterion_alone_keeps_the_incumbent() -> None:
    small_gain = _scores({"a": 0.81, "b": 0.62, "c": 0.91}, 0.04, 0.45)
    one_row_lost = _scores({"a": 0.95, "b": 0.75, "c": 0.87}, 0.04, 0.45)
    more_refused = _scores({"a": 0.90, "b": 0.70, "c": 0.95}, 0.06, 0.50)
    fewer_oos = _scores({"a": 0.90, "b": 0.70, "c": 0.95}, 0.04, 0.39)
    failed = {"a_mean_gain": small_gain, "b_worst_row": one_row_lost, "c_refusal": more_refused}
    for criterion, challenger in failed.items():
        decision = decide(INCUMBENT, challenger)
        assert not decision["challenger_wins"]
        assert [k for k, c in decision["criteria"].items() if not c["met"]] == [criterion]
    assert not decide(INCUMBENT, fewer_oos)["criteria"]["c_refusal"]["met"]
    assert decide(INCUMBENT, one_row_lost)["criteria"]["b_worst_row"]["row"] == "c"


def test_only_rows_both_models_scored_count() -> None:
    challenger = _scores({"a": 0.85, "b": 0.70}, 0.04, 0.45)
    assert decide(INCUMBENT, challenger)["rows"] == ["a", "b"]
