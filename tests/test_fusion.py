"""Entry features (indexer/features.py) and the fusion strategies (indexer/fusion.py) on hand-made unit scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from indexer import fusion
from indexer.config import SearchSettings
from indexer.features import (FEATURES, QUERY_WORDS_SPAN, TOP_PASSAGES, Centroid, Layout, entry_features, passage_focus,
                              query_words_of)

NEG = -np.inf
# Three entries. Entry 0: question, profile, 3 passages (a broad page); entry 1: question, profile, title;
# entry 2: question, profile, answer.
KINDS = ["question", "entry", "passage", "passage", "passage", "question", "entry", "title", "question", "entry",
         "answer"]
ENTRY = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
LAYOUT = Layout.of(ENTRY, KINDS, 3)


def features(dense, lexical, focus=None):
    f = entry_features(np.array(dense, dtype=np.float32), np.array(lexical, dtype=np.float32), LAYOUT, focus,
                       faq_words=3.0, query_words=2.0)
    return {name: dict(zip(f.entries.tolist(), f.column(name).tolist())) for name in FEATURES}, f


def test_per_kind_maxima_and_missing_kinds_take_the_direct_match():
    dense = [0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15]
    lexical = [0, 0, 0.5, 0, 0, 0.2, 0, 0, 0, 0, 0]
    f, _ = features(dense, lexical)
    assert f["d_question"] == pytest.approx({0: 0.2, 1: 0.6, 2: 0.1})
    assert f["d_passage"][0] == pytest.approx(0.7)
    assert f["d_pages"][0] == pytest.approx((0.7 + 0.5 + 0.1) / 3)
    # Entry 1 has no passage and no answer: both read as its best direct match (the title, 0.65).
    assert f["d_passage"][1] == pytest.approx(0.65) and f["d_answer"][1] == pytest.approx(0.65)
    assert f["d_best"] == pytest.approx({0: 0.7, 1: 0.65, 2: 0.2})
    assert f["l_passage"][0] == pytest.approx(0.5) and f["l_direct"][0] == 0
    assert f["l_passage"][1] == pytest.approx(0.2), "without pages, the page signal is the direct one"
    assert f["has_pages"] == {0: 1.0, 1: 0.0, 2: 0.0}
    assert f["page_size"][0] == pytest.approx(np.log1p(3)) and f["page_size"][1] == 0


def test_page_lift_is_how_far_the_best_passage_beats_the_entrys_own_text():
    dense = [0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15]
    f, _ = features(dense, [0] * 11)
    assert f["page_lift"][0] == pytest.approx(0.7 - 0.3), "best passage 0.7 over the profile's 0.3"
    assert f["page_lift"][1] == 0.0 and f["page_lift"][2] == 0.0, "no pages, no lift"
    # A page that matches less than the entry's own text lifts nothing (a broad page's passage).
    f, _ = features([0.8, 0.3, 0.5, 0.7, 0.1] + dense[5:], [0] * 11)
    assert f["page_lift"][0] == 0.0 and f["d_passage"][0] == pytest.approx(0.7)


def test_leads_and_gaps_measure_the_margin_over_the_other_entries():
    dense = [0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15]
    f, _ = features(dense, [0] * 11)
    assert f["lead_dense"] == pytest.approx({0: 0.05, 1: -0.05, 2: -0.5})
    assert f["gap_dense"] == pytest.approx({0: 0.0, 1: -0.05, 2: -0.5})
    z = np.array(list(f["z_dense"].values()))
    assert z.mean() == pytest.approx(0, abs=1e-9) and z.std() == pytest.approx(1)
    assert f["lead_lexical"] == {0: 0.0, 1: 0.0, 2: 0.0} and f["z_lexical"] == {0: 0.0, 1: 0.0, 2: 0.0}


def test_the_backed_lead_is_the_lexical_lead_only_as_far_as_the_dense_side_backs_it():
    dense = [0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15]
    lexical = [0, 0, 0.9, 0, 0, 0.2, 0, 0, 0, 0, 0]
    f, _ = features(dense, lexical)
    assert f["lead_lexical"] == pytest.approx({0: 0.7, 1: -0.7, 2: -0.9})
    assert f["lead_backed"] == pytest.approx({0: 0.7 * 0.7, 1: 0.0, 2: 0.0}), "a trailing entry has no lead"
    # The same words matched by an entry whose every unit points away from the query back nothing.
    f, _ = features(dense[:8] + [-0.1, -0.2, -0.15], [0] * 10 + [0.9])
    assert f["lead_lexical"][2] == pytest.approx(0.9) and f["d_best"][2] == pytest.approx(-0.1)
    assert f["lead_backed"][2] == 0.0
    # With the dense side behind it, the lead counts in full measure of the cosine.
    f, _ = features([0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.9], [0] * 10 + [0.9])
    assert f["lead_backed"][2] == pytest.approx(0.9 * 0.9)


def test_phrase_is_the_entrys_best_unit_share_of_the_query_held_word_for_word():
    lexical = [0, 0, 0.5, 0, 0, 0.2, 0, 0, 0, 0, 0.4]
    phrase = [0, 0, 0.25, 0, 0, 0, 0, 0, 0, 0, 1.0]  # entry 0: a passage; entry 2: its answer, pasted
    f = entry_features(np.array([0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15], np.float32),
                       np.array(lexical, np.float32), LAYOUT, phrase=np.array(phrase))
    got = dict(zip(f.entries.tolist(), f.column("phrase").tolist()))
    assert got == {0: 0.25, 1: 0.0, 2: 1.0}
    without, _ = features([0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15], lexical)
    assert without["phrase"] == {0: 0.0, 1: 0.0, 2: 0.0}, "not given: no unit holds the query"


def test_only_entries_some_retriever_found_are_candidates():
    dense = [NEG] * 5 + [0.6, 0.4, NEG, NEG, NEG, NEG]
    lexical = [0] * 10 + [0.3]
    f, raw = features(dense, lexical)
    assert raw.entries.tolist() == [1, 2]
    # Entry 2 was found by BM25 alone: its dense features take the weakest cosine seen, not -inf.
    assert np.isfinite(raw.matrix).all()
    assert f["d_best"][2] == pytest.approx(0.4)
    scattered = raw.scatter(np.array([1.0, 2.0]), 3)
    assert scattered[0] == -np.inf and scattered.tolist()[1:] == [1.0, 2.0]


def test_no_candidate_at_all_gives_no_rows():
    _, raw = features([NEG] * 11, [0] * 11)
    assert raw.matrix.shape == (0, len(FEATURES))


def test_passage_focus_is_the_cosine_to_the_entrys_profile_and_reaches_the_best_passage():
    vectors = np.zeros((11, 2), dtype=np.float32)
    vectors[:, 0] = 1.0
    vectors[3] = [0.0, 1.0]  # the third unit of entry 0 is a passage about something else
    focus = passage_focus(vectors, LAYOUT)
    assert focus[2] == pytest.approx(1.0) and focus[3] == pytest.approx(0.0) and focus[0] == 1.0
    dense = [0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15]
    f, _ = features(dense, [0] * 11, focus)
    assert f["focus_best"][0] == pytest.approx(0.0), "entry 0's best passage is its off-topic one"
    assert f["focus_best"][1] == 1.0


def _unit_vectors(rng, n, dim=16, shared=2.0):
    """Random unit vectors sharing one direction, as a FAQ's texts share their topic."""
    v = rng.normal(size=(n, dim)) + shared * np.eye(dim)[0]
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_centred_cosines_are_the_cosines_of_the_vectors_minus_the_faqs_centre():
    rng = np.random.default_rng(7)
    vectors = _unit_vectors(rng, len(ENTRY))
    centroid = Centroid.of(vectors, LAYOUT)
    direct = [i for i, k in enumerate(KINDS) if k != "passage"]
    assert np.allclose(centroid.vector, vectors[direct].mean(axis=0), atol=1e-6), "page passages do not move it"
    query = _unit_vectors(rng, 1)[0]
    units = np.array([0, 3, 5, 8, 10])
    dense = vectors[units] @ query
    dense[2] = NEG  # not a dense candidate
    got = centroid.cosines(dense, units, query)
    shifted_q = query - centroid.vector
    for i, u in enumerate(units):
        shifted_u = vectors[u] - centroid.vector
        want = shifted_q @ shifted_u / np.linalg.norm(shifted_q) / np.linalg.norm(shifted_u)
        assert got[i] == (NEG if i == 2 else pytest.approx(want, abs=1e-5))


def test_c_direct_is_the_best_centred_cosine_of_an_entrys_own_units_and_defaults_to_the_plain_one():
    dense = np.array([0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15], dtype=np.float32)
    centred = np.array([0.1, -0.2, 0.9, 0.9, 0.9, 0.3, 0.35, 0.0, -0.5, -0.1, -0.3])
    f = entry_features(dense, np.zeros(11, np.float32), LAYOUT, centred=centred)
    c = dict(zip(f.entries.tolist(), f.column("c_direct").tolist()))
    assert c == pytest.approx({0: 0.1, 1: 0.35, 2: -0.1}), "passages (0.9) are not direct units"
    plain, _ = features(dense, [0] * 11)
    assert plain["c_direct"] == pytest.approx({0: 0.3, 1: 0.65, 2: 0.2}), "no centre: the plain best direct cosine"


def test_centring_removes_what_every_entry_shares():
    """Three entries on one topic: a long generic one and two specific ones. A query along the topic and
    one specific entry's own direction is closer to the generic entry by plain cosine; from the FAQ's
    centre, the specific entry wins."""
    topic, own_generic, own_b, own_c = np.eye(4)

    def unit(x):
        return x / np.linalg.norm(x)

    vectors = np.array([unit(0.95 * topic + 0.31 * own_generic), unit(0.6 * topic + 0.8 * own_b),
                        unit(0.6 * topic + 0.8 * own_c)])
    query = unit(0.93 * topic + np.sqrt(1 - 0.93 ** 2) * own_b)
    layout = Layout.of([0, 1, 2], ["question"] * 3, 3)
    dense = (vectors @ query).astype(np.float32)
    assert dense[0] > dense[1] > dense[2]
    centred = Centroid.of(vectors, layout).cosines(dense, np.arange(3), query)
    assert centred[1] > centred[0] > centred[2]


def test_page_evidence_averages_each_entrys_best_scored_passages():
    """d_pages: the mean of an entry's TOP_PASSAGES best passage cosines, passages that are no dense
    candidate (-inf) left out; an entry with no scored passage takes its direct match instead."""
    assert TOP_PASSAGES == 3
    kinds = ["question"] + ["passage"] * 5 + ["question", "passage", "question", "passage"]
    entry = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
    layout = Layout.of(entry, kinds, 3)
    dense = np.array([0.2, 0.1, 0.9, 0.5, 0.3, NEG, 0.4, 0.8, 0.35, NEG], dtype=np.float32)
    f = entry_features(dense, np.zeros(10, dtype=np.float32), layout)
    pages = dict(zip(f.entries.tolist(), f.column("d_pages").tolist()))
    assert pages[0] == pytest.approx((0.9 + 0.5 + 0.3) / 3)
    assert pages[1] == pytest.approx(0.8)
    assert pages[2] == pytest.approx(0.35), "no scored passage: the entry's direct match"


def test_unknown_unit_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown unit kinds"):
        Layout.of([0], ["footnote"], 1)


# -- strategies -------------------------------------------------------------------------------------
def test_zscore_and_minmax_mix_both_signals_with_one_weight():
    dense = [0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15]
    lexical = [0, 0, 0, 0, 0, 0, 0, 0, 0.9, 0, 0]
    _, raw = features(dense, lexical)
    for name in ("zscore", "minmax"):
        dense_only = fusion.fuse_entries(raw, replace(SearchSettings(), fusion=name, lexical_weight=0.0))
        assert int(np.argmax(dense_only)) == 0, name
        lexical_only = fusion.fuse_entries(raw, replace(SearchSettings(), fusion=name, lexical_weight=1.0))
        assert int(np.argmax(lexical_only)) == 2, name
    mm = fusion.fuse_entries(raw, replace(SearchSettings(), fusion="minmax", lexical_weight=0.0))
    assert mm.min() == 0.0 and mm.max() == 1.0


def test_learned_fusion_needs_a_ranker_and_gives_probabilities():
    from indexer.ranker import load

    _, raw = features([0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15], [0] * 11)
    with pytest.raises(ValueError, match="needs a ranker"):
        fusion.fuse_entries(raw, SearchSettings(fusion="learned"))
    p = fusion.fuse_entries(raw, SearchSettings(fusion="learned"), load())
    assert ((0 < p) & (p < 1)).all() and int(np.argmin(p)) == 2


def test_a_unit_fusion_is_not_an_entry_fusion():
    _, raw = features([0.2] * 11, [0] * 11)
    with pytest.raises(ValueError, match="not an entry fusion"):
        fusion.fuse_entries(raw, SearchSettings(fusion="rrf"))


def test_rrf_sums_reciprocal_ranks_of_both_retrievers():
    dense = np.array([0.9, 0.5, NEG], dtype=np.float32)
    lexical = np.array([0.0, 0.7, 0.2], dtype=np.float32)
    out = fusion.rrf(dense, lexical, 60)
    assert out[0] == pytest.approx(1 / 61)
    assert out[1] == pytest.approx(1 / 62 + 1 / 61)
    assert out[2] == pytest.approx(1 / 62)
    assert fusion.rrf(np.array([NEG]), np.array([0.0]), 60)[0] == -np.inf


def test_unknown_fusions_are_named():
    with pytest.raises(ValueError, match="unknown fusion 'mean'"):
        fusion.check("mean")


@pytest.mark.parametrize("name", ["faq_words", "query_words"])
def test_the_faq_and_query_level_features_are_one_value_for_every_candidate_and_unknown_unless_given(name):
    dense = [0.2, 0.3, 0.5, 0.7, 0.1, 0.6, 0.4, 0.65, 0.1, 0.2, 0.15]
    lexical = np.zeros(11, np.float32)
    given = entry_features(np.array(dense, np.float32), lexical, LAYOUT, **{name: 3.5})
    assert given.column(name).tolist() == [3.5, 3.5, 3.5]
    unknown = entry_features(np.array(dense, np.float32), lexical, LAYOUT)
    assert np.isnan(unknown.column(name)).all()
    others = [i for i, f in enumerate(FEATURES) if f not in ("faq_words", "query_words")]
    assert np.array_equal(given.matrix[:, others], unknown.matrix[:, others])


def test_query_words_is_the_log_of_the_searched_words_held_within_its_span():
    lo, hi = QUERY_WORDS_SPAN
    assert query_words_of(7) == pytest.approx(np.log(8))
    assert query_words_of(0) == query_words_of(lo) and query_words_of(500) == query_words_of(hi)
