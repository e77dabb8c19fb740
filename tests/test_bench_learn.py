"""bench/learn.py's statistics: reciprocal ranks and the paired interval the quality table puts on each row."""

from __future__ import annotations

import numpy as np
import pytest

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


def _family_records(family: str, rng: np.random.Generator) -> list[Record]:
    """Answerable queries whose entry stands out on the dense features by a varying margin, and out-of-scope
    ones with no entry standing out: a ranker fitted on such families refuses more as the cut-off rises."""
    from indexer.features import FEATURES

    records = []
    for i in range(30):
        expected = None if i % 6 == 5 else f"{family}-{i % 5}"
        matrix = rng.normal(0.2, 0.05, size=(5, len(FEATURES)))
        if expected is not None:
            matrix[i % 5, :6] += rng.uniform(0.0, 0.4)
        records.append(Record(set="s", family=family, half="dev", query=f"{family} {i}", expected=expected,
                              entry_ids=[f"{family}-{k}" for k in range(5)], matrix=matrix))
    return records


def test_the_answer_probability_is_the_highest_within_the_refusal_budget():
    from bench.learn import PROBABILITY_GRID, choose_answer_probability

    rng = np.random.default_rng(0)
    records = [r for f in ("f1", "f2", "f3") for r in _family_records(f, rng)]
    records.append(Record(set="s", family="f1", half="test", query="never read", expected="f1-0",
                          entry_ids=["f1-0"], matrix=np.full((1, records[0].matrix.shape[1]), np.nan)))
    choice = choose_answer_probability(records, budget=0.05)
    answerable = [choice.curve[p][0] for p in PROBABILITY_GRID]
    oos = [choice.curve[p][1] for p in PROBABILITY_GRID]
    assert answerable == sorted(answerable) and oos == sorted(oos)  # a higher cut-off refuses more of both
    assert choice.curve[choice.value][0] <= 0.05
    assert all(choice.curve[p][0] > 0.05 for p in PROBABILITY_GRID if p > choice.value)
    assert min(PROBABILITY_GRID) < choice.value < max(PROBABILITY_GRID)  # the synthetic data is not at an edge
    assert choose_answer_probability(records, budget=1.0).value == max(PROBABILITY_GRID)


def test_ranker_variants_score_paraphrase_rows_apart_from_the_rest():
    from bench.ranker_variants import VARIANTS, compare, is_paraphrase_row

    assert is_paraphrase_row("ab-paraphrases") and is_paraphrase_row("shipped-vocab")
    assert not is_paraphrase_row("ab-short") and not is_paraphrase_row("course-answers")
    rng = np.random.default_rng(0)
    records = [r for f in ("x-paraphrases", "x-short", "y-answers") for r in _family_records(f, rng)]
    result = compare(records, *VARIANTS["base"])
    assert 0 < result["paraphrase_rows"] <= 1 and 0 < result["other_rows"] <= 1
    assert abs(result["mean"] - (result["paraphrase_rows"] + 2 * result["other_rows"]) / 3) < 1e-9
    assert set(result["refused"]) == {0.15, 0.17, 0.19, 0.21}


def test_a_candidate_held_to_the_incumbents_operating_point_refuses_no_more_answerable_dev_queries():
    """`--hold-to`: the budget is what the shipped features refuse at a probability, and the candidate (other
    features) is chosen within it, on the same dev records and protocol."""
    from bench.learn import PROBABILITY_GRID, RANKER_FEATURES, choose_answer_probability

    rng = np.random.default_rng(0)
    records = [r for f in ("f1", "f2", "f3") for r in _family_records(f, rng)]
    incumbent, _ = choose_answer_probability(records, grid=(0.17,)).curve[0.17]  # as train_ranker --hold-to 0.17
    assert incumbent == choose_answer_probability(records, grid=(0.17,)).curve[0.17][0], "same fits, same shares"
    assert choose_answer_probability(records, budget=incumbent).curve[0.17][0] == \
        incumbent, "the shipped features' own curve passes through it"
    candidate = choose_answer_probability(records, budget=incumbent, features=RANKER_FEATURES + ("page_lift",))
    assert candidate.curve[candidate.value][0] <= incumbent
    assert all(candidate.curve[p][0] > incumbent for p in PROBABILITY_GRID if p > candidate.value)


def test_weighing_by_set_gives_each_set_the_same_share_and_its_families_equal_parts():
    """docs/set-weights.md: a FAQ with many families no longer outweighs one with few."""
    from bench.learn import query_weights

    def recs(set_name: str, family: str, n: int) -> list[Record]:
        return [Record(set=set_name, family=family, half="dev", query=f"{family} {i}", expected=None,
                       entry_ids=[], matrix=np.zeros((0, 0))) for i in range(n)]

    records = recs("big", "a", 10) + recs("big", "b", 30) + recs("big", "c", 5) + recs("small", "d", 7)
    by_family = query_weights(records)
    by_set = query_weights(records, "set")
    assert abs(by_family.sum() - 1) < 1e-12 and abs(by_set.sum() - 1) < 1e-12
    share = lambda w, s: w[[r.set == s for r in records]].sum()  # noqa: E731
    assert abs(share(by_family, "small") - 0.25) < 1e-12 and abs(share(by_set, "small") - 0.5) < 1e-12
    family_b = [r.family == "b" for r in records]
    assert abs(by_set[family_b].sum() - 0.5 / 3) < 1e-12 and len(set(by_set[family_b])) == 1
    with pytest.raises(ValueError, match="weigh_by"):
        query_weights(records, "query")


def test_a_ranker_weighed_by_set_is_fitted_and_differs_where_sets_are_unequal():
    from dataclasses import replace

    from bench.learn import fit_ranker

    rng = np.random.default_rng(1)
    records = [r for f in ("f1", "f2", "f3") for r in _family_records(f, rng)]
    records = [replace(r, set="other") if r.family == "f3" else r for r in records]
    by_family, by_set = fit_ranker(records), fit_ranker(records, weigh_by="set")
    assert np.isfinite(by_set.coef).all()
    assert not np.allclose(by_family.coef, by_set.coef)


def _faq_records(name: str, words: float, strength: float, rng: np.random.Generator) -> list[Record]:
    """A FAQ whose `faq_words` is `words`, where answerable queries' entries stand out by about `strength`
    on the dense features (little text per entry: weaker matches), and out-of-scope ones have none."""
    from indexer.features import FEATURES

    column = FEATURES.index("faq_words")
    records = []
    for i in range(60):
        expected = None if i % 4 == 3 else f"{name}-{i % 5}"
        matrix = rng.normal(0.2, 0.05, size=(6, len(FEATURES)))
        if expected is not None:
            matrix[i % 5, :6] += strength * rng.uniform(0.5, 1.5)
        matrix[:, column] = words
        records.append(Record(set=name, family=f"{name}-q", half="dev", query=f"{name} {i}", expected=expected,
                              entry_ids=[f"{name}-{k}" for k in range(6)], matrix=matrix))
    return records


def test_the_faq_shift_keeps_every_ranking_and_raises_the_probabilities_of_a_faq_with_little_text():
    from bench.learn import SHIFT_FEATURE, fit_faq_shift, fit_ranker, learned_rankings

    rng = np.random.default_rng(3)
    short = _faq_records("short", 2.5, 0.12, rng)  # bare questions: true matches stand out less
    long = _faq_records("long", 4.6, 0.4, rng)
    records = short + long
    base = fit_ranker(records)
    shifted = fit_faq_shift(records, base)
    assert shifted.features == base.features + (SHIFT_FEATURE,)
    assert np.array_equal(shifted.coef[:-1], base.coef) and np.array_equal(shifted.mean[:-1], base.mean)
    assert shifted.coef[-1] < 0  # more text per entry, a higher bar
    before, after = learned_rankings(records, base), learned_rankings(records, shifted)
    assert [b.ids for b in before] == [a.ids for a in after]  # no ranking moves
    top = {name: (np.mean([b.top_score for r, b in zip(records, before) if r.set == name]),
                  np.mean([a.top_score for r, a in zip(records, after) if r.set == name])) for name in ("short", "long")}
    assert top["short"][1] > top["short"][0] and top["long"][1] < top["long"][0]


def test_the_faq_shift_is_refitted_on_a_ranker_that_reads_it_and_records_without_it_are_refused():
    from bench.learn import fit_faq_shift, fit_ranker

    rng = np.random.default_rng(4)
    records = _faq_records("a", 2.5, 0.2, rng) + _faq_records("b", 4.5, 0.3, rng)
    base = fit_ranker(records)
    once = fit_faq_shift(records, base)
    twice = fit_faq_shift(records, once)  # as for the shipped file, which reads it: the same fit again
    assert twice.features == once.features and np.allclose(twice.coef, once.coef)
    assert twice.intercept == pytest.approx(once.intercept)
    from indexer.features import FEATURES

    for rec in records[:5]:
        rec.matrix[:, FEATURES.index("faq_words")] = np.nan
    with pytest.raises(ValueError, match="faq_words is missing"):
        fit_faq_shift(records, base)


def _length_records(rng: np.random.Generator) -> list[Record]:
    """One FAQ's queries of 2 to 20 words, where a long answerable query's entry stands out less (its other words
    pull its vector away), and out-of-scope queries, of every length, have no entry standing out."""
    from indexer.features import FEATURES, query_words_of

    column = FEATURES.index("query_words")
    records = []
    for i in range(160):
        words = 2 + i % 19
        expected = None if i % 4 == 3 else f"e-{i % 5}"
        matrix = rng.normal(0.2, 0.05, size=(6, len(FEATURES)))
        matrix[:, FEATURES.index("faq_words")] = 3.0
        if expected is not None:
            matrix[i % 5, :6] += 0.5 * rng.uniform(0.6, 1.4) / np.sqrt(words / 2)
        matrix[:, column] = query_words_of(words)
        records.append(Record(set="s", family=f"f{i % 2}", half="dev", query=f"q {i}", expected=expected,
                              entry_ids=[f"e-{k}" for k in range(6)], matrix=matrix))
    return records


def test_the_query_shift_keeps_every_ranking_of_a_hidden_ranker_and_raises_long_queries_probabilities():
    from dataclasses import replace

    from bench.learn import QUERY_FEATURE, fit_hidden, fit_query_shift, learned_rankings

    rng = np.random.default_rng(9)
    records = _length_records(rng)
    base = fit_hidden(records, units=2, seeds=1)
    grown = fit_query_shift(records, base)
    assert grown.features == base.features + (QUERY_FEATURE,) and grown.coef[-1] > 0
    assert np.array_equal(grown.coef[:-1], base.coef) and np.array_equal(grown.hidden.weights[:, :-1],
                                                                          base.hidden.weights)
    assert not grown.hidden.weights[:, -1].any(), "the hidden layer does not read the query's length"
    before, after = learned_rankings(records, base), learned_rankings(records, grown)
    assert [b.ids for b in before] == [a.ids for a in after]  # no ranking moves
    words = np.array([2 + i % 19 for i in range(len(records))])  # as _length_records made them
    change = np.array([a.top_score - b.top_score for b, a in zip(before, after)])
    assert change[words >= 16].mean() > 0 > change[words <= 4].mean()  # long queries' bar falls, short ones' rises
    again = fit_query_shift(records, grown)  # a ranker that reads it has it refitted, not added twice
    assert again.features == grown.features and np.allclose(again.coef, grown.coef)
    reads = replace(grown, hidden=replace(grown.hidden, weights=grown.hidden.weights + 1.0))
    with pytest.raises(ValueError, match="hidden layer reads query_words"):
        fit_query_shift(records, reads)


def _interaction_records(family: str, rng: np.random.Generator) -> list[Record]:
    """Queries whose entry matches on the question or on the answer but never both, among rivals that match on
    both a little: which kind counts depends on the other, which no weighting of the two can say."""
    from indexer.features import FEATURES

    q, a = FEATURES.index("d_question"), FEATURES.index("d_answer")
    records = []
    for i in range(40):
        matrix = rng.normal(0.0, 0.02, size=(6, len(FEATURES)))
        matrix[:, [q, a]] += 0.45 + rng.normal(0, 0.03, size=(6, 2))  # every rival: a middling match on both
        expected = None if i % 8 == 7 else f"{family}-{i % 6}"
        if expected is not None:
            row = i % 6
            strong, weak = (q, a) if i % 2 else (a, q)
            matrix[row, strong], matrix[row, weak] = 0.85, 0.1  # one kind very close, the other far
        records.append(Record(set=family, family=family, half="dev", query=f"{family} {i}", expected=expected,
                              entry_ids=[f"{family}-{k}" for k in range(6)], matrix=matrix))
    return records


def test_the_hidden_layer_averages_its_fits_and_learns_what_the_linear_form_cannot():
    from bench.learn import fit_hidden, fit_ranker, learned_rankings, rank_of

    rng = np.random.default_rng(5)
    records = [r for f in ("s1", "s2", "s3") for r in _interaction_records(f, rng)]
    one = fit_hidden(records, units=3, seeds=1)
    two = fit_hidden(records, units=3, seeds=2)
    assert one.hidden.weights.shape == (3, len(one.features)) and two.hidden.weights.shape == (6, len(two.features))
    np.testing.assert_allclose(two.hidden.weights[:3], one.hidden.weights)  # seed 0's units, then seed 1's
    np.testing.assert_allclose(two.hidden.out[:3], one.hidden.out / 2)  # each fit's logits weigh a half
    assert not two.hidden.weights[:, list(two.features).index("faq_words")].any(), "the layer reads no FAQ shift"

    def top1(ranker) -> float:
        answerable = [r for r in records if r.expected]
        return np.mean([rank_of(rk, r.expected) == 1 for r, rk in zip(answerable, learned_rankings(answerable, ranker))])

    linear = fit_ranker(records, shift=True)
    assert top1(two) >= top1(linear) + 0.2, (top1(two), top1(linear))


def test_leaving_out_whole_sets_fits_once_per_set_without_any_of_its_records(monkeypatch):
    from dataclasses import replace

    from bench import learn

    rng = np.random.default_rng(6)
    records = [r for f in ("s1", "s2", "s3") for r in _interaction_records(f, rng)]
    records = [replace(r, family=f"{r.set}-{i % 2}") for i, r in enumerate(records)]
    seen: list[set[str]] = []
    fit = learn.fit_ranker
    monkeypatch.setattr(learn.os, "cpu_count", lambda: 1)  # the folds in this process, where `seen` is
    monkeypatch.setattr(learn, "fit_ranker", lambda rest, *a, **k: seen.append({r.set for r in rest}) or fit(rest, *a, **k))
    by_set = learn.held_out_rankings(records, shift=True, leave_out="set")
    assert seen == [{"s2", "s3"}, {"s1", "s3"}, {"s1", "s2"}]
    assert sorted(r.query for r, _ in by_set) == sorted(r.query for r in records)
    seen.clear()
    learn.held_out_rankings(records, shift=True)
    assert len(seen) == 6 and all(len(sets) == 3 for sets in seen), "a family left out leaves its set's other family in"
    with pytest.raises(ValueError, match="leave_out"):
        learn.held_out_rankings(records, leave_out="query")


def test_the_leave_one_out_fits_take_the_shipped_files_form(monkeypatch):
    """bench/quality.py's `learned` column refits what made the shipped file: linear (with the FAQ shift if the
    file reads it), or with a hidden layer if the file has one; then the query shift if the file reads it."""
    from dataclasses import replace

    from bench.learn import QUERY_FEATURE, SHIFT_FEATURE, fit_shipped_form
    from indexer import ranker as ranker_file
    from indexer.ranker import HiddenLayer

    rng = np.random.default_rng(7)
    records = [r for f in ("s1", "s2") for r in _interaction_records(f, rng)]
    minilm = ranker_file.load(model="sentence-transformers/all-MiniLM-L6-v2")
    assert minilm.hidden is None and SHIFT_FEATURE not in minilm.features
    shifted = replace(minilm, features=minilm.features + (SHIFT_FEATURE,), mean=np.r_[minilm.mean, 0.0],
                      scale=np.r_[minilm.scale, 1.0], coef=np.r_[minilm.coef, -1.0])
    n = len(shifted.features)
    bent = replace(shifted, hidden=HiddenLayer(np.zeros((1, n)), np.zeros(1), np.zeros(1)))
    long = replace(bent, features=bent.features + (QUERY_FEATURE,), mean=np.r_[bent.mean, 0.0],
                   scale=np.r_[bent.scale, 1.0], coef=np.r_[bent.coef, 1.0],
                   hidden=HiddenLayer(np.zeros((1, n + 1)), np.zeros(1), np.zeros(1)))
    for shipped, hidden, shift, query in ((minilm, False, False, False), (shifted, False, True, False),
                                          (bent, True, True, False), (long, True, True, True)):
        monkeypatch.setattr(ranker_file, "load", lambda *a, shipped=shipped, **k: shipped)
        fitted = fit_shipped_form(records)
        assert (fitted.hidden is not None) == hidden and (SHIFT_FEATURE in fitted.features) == shift
        assert (QUERY_FEATURE in fitted.features) == query


def test_the_quality_tables_folds_fitted_in_parallel_are_the_folds_fitted_one_by_one():
    from dataclasses import replace

    from bench.quality import fit, learned_folds

    rng = np.random.default_rng(8)
    records = [replace(r, family=f"{r.set}-{i % 2}") for i, r in
               enumerate(r for f in ("s1", "s2") for r in _interaction_records(f, rng))]
    families = sorted({r.family for r in records})
    parallel = learned_folds(records, families)
    assert list(parallel) == families
    for family in families:
        alone = fit("learned", [r for r in records if r.half == "dev" and r.family != family])
        np.testing.assert_allclose(parallel[family]["ranker"].coef, alone["ranker"].coef)
        assert parallel[family]["threshold"] == alone["threshold"]


def test_length_matching_weighs_out_of_scope_queries_as_long_as_the_answerable_ones():
    """A family whose out-of-scope queries are shorter than its answerable ones: refusing only the short ones
    counts fully in the plain pooled share and not at all once lengths are matched; the family's total stays."""
    from bench.learn import length_bin, length_matched, query_weights, refused_shares

    long_ = "why does my gradient descent loss curve oscillate instead of converging smoothly"
    records = [Record(set="s", family="f", half="dev", query=f"{long_} {n}", expected="e", entry_ids=[],
                      matrix=np.zeros((0, 0))) for n in range(100, 104)]
    records += [Record(set="s", family="f", half="dev", query=q, expected=None, entry_ids=[], matrix=np.zeros((0, 0)))
                for q in ("dropout", "batch norm", f"{long_} with momentum")]
    bins = [length_bin(r.query) for r in records]
    assert bins[-3:-1] == [0, 0] and set(bins[:4]) == {bins[-1]} and bins[-1] > 0
    refused = np.array([False] * 4 + [True, True, False])
    plain = refused_shares(records, refused)
    matched = refused_shares(records, refused, lengths_matched=True)
    assert plain["refused_unanswerable"] == pytest.approx(2 / 3)
    assert matched["refused_unanswerable"] == 0.0
    assert matched["refused_answerable"] == plain["refused_answerable"] == 0.0
    w = query_weights(records)
    assert length_matched(records, w)[4:].sum() == pytest.approx(w[4:].sum())


def test_a_family_whose_out_of_scope_lengths_share_no_bin_keeps_its_weights():
    from bench.learn import length_matched, query_weights

    records = [Record(set="s", family="f", half="dev", query=q, expected=e, entry_ids=[], matrix=np.zeros((0, 0)))
               for q, e in (("softmax exponential", "e"), ("relu", "e"),
                            ("my whole convolutional network keeps overfitting badly on tiny images", None))]
    w = query_weights(records)
    assert np.array_equal(length_matched(records, w), w)


def test_pooled_refusal_tells_a_withheld_right_answer_from_a_refused_wrong_one():
    from bench.learn import pooled_refusal

    def rec(query: str, expected: str | None) -> Record:
        return Record(set="s", family="f", half="dev", query=query, expected=expected, entry_ids=[],
                      matrix=np.zeros((0, 0)))

    items = [(rec("a", "e1"), Ranking(ids=["e1", "e2"], scores=[0.9, 0.1]), 0.5),  # answered, right
             (rec("b", "e1"), Ranking(ids=["e1", "e2"], scores=[0.3, 0.1]), 0.5),  # refused, right first
             (rec("c", "e2"), Ranking(ids=["e1", "e2"], scores=[0.2, 0.1]), 0.5),  # refused, wrong first
             (rec("d", "e2"), Ranking(), 0.5),                                      # nothing found: refused
             (rec("e", None), Ranking(ids=["e1"], scores=[0.2]), 0.5)]              # out of scope, refused
    out = pooled_refusal(items)
    assert out["refused_answerable"] == pytest.approx(3 / 4)
    assert out["refused_answerable_right"] == pytest.approx(1 / 4)
    assert out["refused_unanswerable"] == 1.0
