"""The blind decisions' rules (docs/models.md, docs/ranker-refit.md, docs/hidden-layer.md) as bench/blind.py computes them."""

from __future__ import annotations

import numpy as np

from bench.blind import DECISIONS, decide

MODEL_RULE = DECISIONS["model"].rule
REFIT_RULE = DECISIONS["refit"].rule


def _scores(mrrs: dict[str, float], refused_answerable: float, refused_oos: float) -> dict:
    return {"rows": {row: {"metrics": {"learned": {"mrr": mrr}}} for row, mrr in mrrs.items()},
            "pooled": {"refused_answerable": refused_answerable, "refused_unanswerable": refused_oos}}


def _side(label: str, row: str, threshold: float, pooled: dict) -> dict:
    """One side of a rendered pair: a single row whose numbers do not matter to what is drawn."""
    metrics = {"learned": {"mrr": 0.8, "answerable": 10, "unanswerable": 2, "refused_unanswerable": 0.5,
                           "refused_answerable": 0.1}, "dense-all": {"mrr": 0.7}, "bm25": {"mrr": 0.6}}
    return {"label": label, "threshold": threshold, "pooled": pooled,
            "rows": {row: {"metrics": metrics, "against_reference": {"mrr": 0.1, "mrr_high": 0.2}}}}


def _per_query(reciprocal: dict, answerable: float, oos: float, **extra) -> dict:
    """Scores as bench/blind.py keeps them: each row's reciprocal ranks, its MRR and top-1 from them."""
    return {"rows": {row: {"reciprocal": list(rr), "metrics": {"learned": {
                "mrr": float(np.mean(rr)), "top1": float(np.mean(np.asarray(rr) == 1))}}}
                     for row, rr in reciprocal.items()},
            "pooled": {"refused_answerable": answerable, "refused_unanswerable": oos}, **extra}


INCUMBENT = _scores({"a": 0.80, "b": 0.60, "c": 0.90}, refused_answerable=0.04, refused_oos=0.45)


def test_a_clear_gain_that_refuses_no_worse_wins() -> None:
    challenger = _scores({"a": 0.85, "b": 0.70, "c": 0.90}, refused_answerable=0.045, refused_oos=0.42)
    decision = decide(INCUMBENT, challenger, MODEL_RULE)
    assert decision["challenger_wins"]
    assert abs(decision["criteria"]["a_mean_gain"]["value"] - 0.05) < 1e-9


def test_each_criterion_alone_keeps_the_incumbent() -> None:
    small_gain = _scores({"a": 0.81, "b": 0.62, "c": 0.91}, 0.04, 0.45)
    one_row_lost = _scores({"a": 0.95, "b": 0.75, "c": 0.87}, 0.04, 0.45)
    more_refused = _scores({"a": 0.90, "b": 0.70, "c": 0.95}, 0.06, 0.50)
    fewer_oos = _scores({"a": 0.90, "b": 0.70, "c": 0.95}, 0.04, 0.39)
    failed = {"a_mean_gain": small_gain, "b_worst_row": one_row_lost, "c_refusal": more_refused}
    for criterion, challenger in failed.items():
        decision = decide(INCUMBENT, challenger, MODEL_RULE)
        assert not decision["challenger_wins"]
        assert [k for k, c in decision["criteria"].items() if not c["met"]] == [criterion]
    assert not decide(INCUMBENT, fewer_oos, MODEL_RULE)["criteria"]["c_refusal"]["met"]
    assert decide(INCUMBENT, one_row_lost, MODEL_RULE)["criteria"]["b_worst_row"]["row"] == "c"


def test_only_rows_both_models_scored_count() -> None:
    challenger = _scores({"a": 0.85, "b": 0.70}, 0.04, 0.45)
    assert decide(INCUMBENT, challenger, MODEL_RULE)["rows"] == ["a", "b"]


def test_the_refit_rule_keeps_a_challenger_that_is_not_worse_and_rejects_one_that_is() -> None:
    same = _scores({"a": 0.80, "b": 0.60, "c": 0.90}, 0.04, 0.45)
    slightly_lower = _scores({"a": 0.79, "b": 0.598, "c": 0.90}, 0.04, 0.45)  # mean -0.004
    lower = _scores({"a": 0.79, "b": 0.59, "c": 0.90}, 0.04, 0.45)  # mean -0.0067
    assert decide(INCUMBENT, same, REFIT_RULE)["challenger_wins"]
    assert not decide(INCUMBENT, same, MODEL_RULE)["challenger_wins"]
    assert decide(INCUMBENT, slightly_lower, REFIT_RULE)["challenger_wins"]
    decision = decide(INCUMBENT, lower, REFIT_RULE)
    assert [k for k, c in decision["criteria"].items() if not c["met"]] == ["a_mean_gain"]


def test_a_rule_with_row_gains_needs_each_named_row_to_gain_that_much() -> None:
    from bench.blind import Rule

    rule = Rule(min_mean_gain=0.0, row_gains=(("b", 0.01),))
    gains_b = _scores({"a": 0.80, "b": 0.62, "c": 0.90}, 0.04, 0.45)
    gains_a_only = _scores({"a": 0.85, "b": 0.605, "c": 0.90}, 0.04, 0.45)
    assert decide(INCUMBENT, gains_b, rule)["challenger_wins"]
    decision = decide(INCUMBENT, gains_a_only, rule)
    assert [k for k, c in decision["criteria"].items() if not c["met"]] == ["d_row_gains"]
    assert "d_row_gains" not in decide(INCUMBENT, gains_b, MODEL_RULE)["criteria"]


def test_the_lift_rule_needs_three_points_more_out_of_scope_refused_at_half_a_point_of_answerable() -> None:
    """docs/page-lift.md: ranking no worse than -0.005, no row below -0.02, OOS >= +3 points, answerable <= +0.5."""
    rule = DECISIONS["lift"].rule
    assert {"ts", "shipped", "shipped-online"} == set(DECISIONS["lift"].blind)
    ranking_level = {"a": 0.80, "b": 0.597, "c": 0.90}  # mean -0.001
    assert decide(INCUMBENT, _scores(ranking_level, 0.044, 0.48), rule)["challenger_wins"]
    for answerable, oos in ((0.044, 0.475), (0.046, 0.50)):  # +2.5 OOS; +0.6 answerable
        decision = decide(INCUMBENT, _scores(ranking_level, answerable, oos), rule)
        assert [k for k, c in decision["criteria"].items() if not c["met"]] == ["c_refusal"]
    decision = decide(INCUMBENT, _scores({"a": 0.78, "b": 0.60, "c": 0.90}, 0.04, 0.50), rule)  # mean -0.0067
    assert [k for k, c in decision["criteria"].items() if not c["met"]] == ["a_mean_gain"]


def test_a_pair_shown_beside_a_decision_is_drawn_without_a_verdict() -> None:
    from bench.blind import render_pair

    pooled = {"refused_answerable": 0.1, "refused_unanswerable": 0.5}
    pair = {"incumbent": _side("shipped", "x / x-short", 0.17, pooled),
            "challenger": _side("refit", "x / x-short", 0.17, pooled)}
    lines = render_pair(pair, None)
    assert any(line.startswith("| x / x-short (10+2)") for line in lines)
    assert not any("Decision:" in line for line in lines)


def test_a_decision_scores_the_families_its_agents_wrote_not_the_answer_cuts_added_with_the_pool() -> None:
    from bench.evalsets import CUT_FROM_ANSWERS, FAMILIES

    for decision in DECISIONS.values():
        for families in decision.blind.values():
            assert families and all(file != CUT_FROM_ANSWERS for _, file in families)
    assert DECISIONS["lift"].blind["ts"] == FAMILIES["ts"][:3]
    assert DECISIONS["weights"].blind["rds"] == FAMILIES["rds"][:3]
    assert DECISIONS["shift"].blind["sh"] == FAMILIES["sh"][:2] and DECISIONS["shift"].blind["net"] == FAMILIES["net"]
    assert DECISIONS["shift"].blind["shipped"] == (("shipped-paraphrases5", "shipped_paraphrases5.jsonl"),)
    assert DECISIONS["hidden"].blind["git"] == FAMILIES["git"][:3] and DECISIONS["hidden"].blind["py"] == FAMILIES["py"]
    assert DECISIONS["hidden"].blind["shipped"] == (("shipped-paraphrases6", "shipped_paraphrases6.jsonl"),)
    assert DECISIONS["curve"].blind["docker"] == FAMILIES["docker"][:3] and DECISIONS["curve"].blind["stats"] == \
        FAMILIES["stats"]
    assert DECISIONS["curve"].blind["shipped-online"] == (("shipped-paraphrases7", "shipped_paraphrases7.jsonl"),)
    assert DECISIONS["length"].blind["viz"] == FAMILIES["viz"][:3] and DECISIONS["length"].blind["cloud"] == \
        FAMILIES["cloud"]
    assert DECISIONS["length"].blind["shipped"] == (("shipped-paraphrases8", "shipped_paraphrases8.jsonl"),)


def test_the_hidden_rule_reads_row_losses_by_their_interval_and_pages_against_offline() -> None:
    """docs/hidden-layer.md: mean gain >= 0; no row's paired interval wholly below zero; answerable refused at
    most +0.5 point, out of scope not fewer; the challenger's shipped row with pages at least its offline one."""
    rule = DECISIONS["hidden"].rule
    assert {"git", "py", "shipped", "shipped-online"} == set(DECISIONS["hidden"].blind)
    online, offline = rule.pages_not_below_offline
    base = {"x": np.r_[np.ones(28), np.zeros(12)], online: np.ones(40), offline: np.full(40, 0.5)}

    def scores(reciprocal: dict, answerable: float = 0.04, oos: float = 0.45) -> dict:
        return _per_query(reciprocal, answerable, oos)

    incumbent = scores(base)
    one_query_lost = dict(base, x=np.r_[0.0, base["x"][1:]])
    one_query_lost[offline] = np.full(40, 0.6)  # and a gain elsewhere, so the mean does not fall
    decision = decide(incumbent, scores(one_query_lost), rule)
    assert decision["challenger_wins"], decision["criteria"]
    steady_loss = dict(one_query_lost, x=np.where(base["x"] == 1, 0.5, 0.0))
    steady_loss[online] = np.full(40, 1.0)
    steady_loss[offline] = np.full(40, 0.95)
    decision = decide(incumbent, scores(steady_loss), rule)
    assert [k for k, c in decision["criteria"].items() if not c["met"]] == ["b_worst_row"]
    assert decision["criteria"]["b_worst_row"]["rows_below"] == ["x"]
    pages_behind = dict(one_query_lost)
    pages_behind[offline] = np.ones(40)
    pages_behind[online] = np.r_[np.ones(39), 0.5]
    decision = decide(incumbent, scores(pages_behind), rule)
    assert [k for k, c in decision["criteria"].items() if not c["met"]] == ["e_pages"]
    more_refused = decide(incumbent, scores(one_query_lost, answerable=0.046, oos=0.5), rule)
    fewer_oos = decide(incumbent, scores(one_query_lost, oos=0.44), rule)
    assert not more_refused["criteria"]["c_refusal"]["met"] and not fewer_oos["criteria"]["c_refusal"]["met"]
    text = "\n".join(render_rule_line(decision, rule))
    assert "(e) with pages served 0.975 / 0.988 against offline 1.000 / 1.000" in text and "not met" in text


def render_rule_line(decision: dict, rule) -> list[str]:
    from bench.blind import render_pair

    pooled = {"refused_answerable": 0.04}
    pair = {"incumbent": _side("shipped", "x", 0.18, pooled), "challenger": _side("hidden", "x", 0.18, pooled)}
    return render_pair({**pair, "decision": decision}, rule)


def test_the_curve_rule_compares_the_candidates_refusal_with_the_incumbents_whole_curve() -> None:
    """docs/hidden-layer.md, the tenth look: out of scope refused at least what the incumbent refuses at the
    highest probability refusing no more answerable queries than the candidate."""
    from bench.blind import on_curve

    rule = DECISIONS["curve"].rule
    assert rule.refusal_along_curve and {"docker", "stats", "shipped", "shipped-online"} == set(DECISIONS["curve"].blind)
    curve = {"0.15": {"refused_answerable": 0.039, "refused_unanswerable": 0.32},
             "0.16": {"refused_answerable": 0.041, "refused_unanswerable": 0.35},
             "0.18": {"refused_answerable": 0.054, "refused_unanswerable": 0.39}}
    assert on_curve(curve, 0.040) == ("0.15", curve["0.15"])
    assert on_curve(curve, 0.041)[0] == "0.16" and on_curve(curve, 0.01)[0] == "0.15", "none within: the lowest"
    rows = {"x": np.r_[np.ones(30), np.zeros(10)], "shipped-online / shipped-paraphrases7": np.ones(10),
            "shipped / shipped-paraphrases7": np.ones(10)}

    def scores(answerable: float, oos: float) -> dict:
        return _per_query(rows, answerable, oos, curve=curve)

    incumbent = scores(0.054, 0.388)
    answers_more = decide(incumbent, scores(0.040, 0.387), rule)  # the ninth look's trade: fewer of both refused
    assert answers_more["challenger_wins"], answers_more["criteria"]["c_refusal"]
    assert answers_more["criteria"]["c_refusal"]["incumbent_at"] == "0.15"
    below_the_curve = decide(incumbent, scores(0.040, 0.30), rule)
    assert [k for k, c in below_the_curve["criteria"].items() if not c["met"]] == ["c_refusal"]
    assert not decide(incumbent, scores(0.060, 0.60), rule)["criteria"]["c_refusal"]["met"], "+0.6 answerable"
