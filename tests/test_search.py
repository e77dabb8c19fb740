"""Search over a real index: query handling, fusion, entry scoring and evidence.

A small FAQ with written answers and pages served by a real local HTTP server
is built once with the real model and a real FAISS index; every test then
queries it the way a learner would.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from http_server import LocalServer
from indexer.build import build_index
from indexer.config import FetchSettings, SearchSettings, Settings
from indexer.lexical import stem, words
from indexer.search import Searcher
from jsonl_rows import write_jsonl

SETTINGS = Settings(fetch=FetchSettings(per_host_delay=0.0, max_retries=0, connect_timeout=2.0, read_timeout=5.0))

#: A made-up word only one page uses: dense similarity knows nothing of it, BM25 does.
RARE = "zorblax"

SOFTMAX_PAGE = [
    "The softmax function turns a vector of raw scores, the logits, into a probability distribution.",
    "Each logit is exponentiated and divided by the sum of all the exponentials, so the outputs are "
    "positive and add up to one.",
    "Taking the exponential keeps every output positive and makes the largest logit dominate.",
]
BACKPROP_PAGE = [
    "Backpropagation applies the chain rule layer by layer, from the loss back to the first weights.",
    "Each layer receives the gradient of the loss with respect to its output and passes back the gradient "
    "with respect to its input.",
    f"Practitioners sometimes call the cached forward activations the {RARE} buffer, after an old course.",
]
ACTIVATION_PAGE = [
    "Without a nonlinear activation function, a stack of linear layers collapses into a single linear map.",
    "ReLU, the rectified linear unit, outputs max(0, x); it is cheap and does not saturate for positive inputs.",
    "Sigmoid and tanh squash their input into a bounded range and saturate for large values.",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    with LocalServer() as srv:
        srv.set_article("/softmax.html", "The softmax function", SOFTMAX_PAGE)
        srv.set_article("/backprop.html", "How backpropagation works", BACKPROP_PAGE)
        srv.set_article("/activation.html", "Activation functions compared", ACTIVATION_PAGE)
        faq = root / "faq.md"
        faq.write_text(f"""# Neural networks

**Q: I am having some trouble understanding backpropagation.**

-   [How backpropagation works]({srv.url('/backprop.html')})

**Q: In softmax function why do we take exponential?**

-   [The softmax function]({srv.url('/softmax.html')})

**Q: Why do we need activation function?**

-   [Activation functions compared]({srv.url('/activation.html')})

**Q: How to find the optimal learning rate?**

Run a learning-rate range test: raise the rate every batch and pick one a little below where the loss
starts to climb.

**Q: What is cross entropy loss?**

Cross entropy, also called log loss, measures how far predicted probabilities are from the true labels.
""", "utf-8")
        index_dir, cache_dir = root / "index", root / "cache"
        summary = build_index([faq], index_dir=index_dir, cache_dir=cache_dir, settings=SETTINGS)
        assert summary.pages_fetched == 3
        yield SimpleNamespace(index_dir=index_dir, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def searcher(site) -> Searcher:
    return Searcher.open(site.index_dir, cache_dir=site.cache_dir)


BACKPROP = "i-am-having-some-trouble-understanding-backpropagation"
SOFTMAX = "in-softmax-function-why-do-we-take-exponential"
ACTIVATION = "why-do-we-need-activation-function"
LEARNING_RATE = "how-to-find-the-optimal-learning-rate"
CROSS_ENTROPY = "what-is-cross-entropy-loss"


def top(searcher: Searcher, query: str) -> str:
    results = searcher.search(query).results
    assert results, f"no result for {query!r}"
    return results[0].id


# -- query handling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ("what is log loss", CROSS_ENTROPY),
    ("how do I pick a good step size for training", LEARNING_RATE),
    ("why exp in softmax", SOFTMAX),
    ("relu", ACTIVATION),
    ("tanh vs sigmoid", ACTIVATION),
])
def test_paraphrases_and_short_queries_find_their_entry(searcher, query, expected):
    assert top(searcher, query) == expected


@pytest.mark.parametrize("query, word, fixed, expected", [
    ("backprogation", "backprogation", "backpropagation", BACKPROP),
    ("why exp in softmx", "softmx", "softmax", SOFTMAX),
])
def test_typos_are_mended_and_reported(searcher, query, word, fixed, expected):
    response = searcher.search(query)
    assert response.corrections == {word: fixed}
    assert response.results[0].id == expected


def test_case_and_punctuation_do_not_change_the_ranking(searcher):
    plain = [r.id for r in searcher.search("why do we need activation function").results]
    shouted = [r.id for r in searcher.search("  WHY do we NEED activation function???!!  ").results]
    assert shouted[0] == plain[0] == ACTIVATION
    assert shouted == plain


def test_a_long_pasted_paragraph_keeps_its_question(searcher):
    context = ("I have been training a small convolutional network on my own photos for a week and the "
               "numbers on my dashboard go up and down in ways I do not follow. ") * 12
    query = context + "In the softmax function, why do we take the exponential of the scores?"
    prepared = searcher.prepare(query)
    assert searcher.embedder.count_tokens([prepared.dense_text])[0] <= searcher.embedder.max_tokens
    assert "softmax" in prepared.dense_text
    assert top(searcher, query) == SOFTMAX


@pytest.mark.parametrize("query", ["¿Qué es la función softmax?", "交叉熵损失是什么", "Ünïcode café — résumé 😀",
                                   "?!", "...", "x" * 5000, "softmax " * 800])
def test_odd_queries_do_not_crash(searcher, query):
    response = searcher.search(query)
    assert isinstance(response.answered, bool)
    assert all(np.isfinite(r.score) for r in response.results)


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "???", "the", "what is it?", "How do I do this", "- 1 2 -"])
def test_a_query_without_words_to_search_finds_nothing_and_answers_nothing(searcher, query):
    response = searcher.search(query)
    assert response.results == [] and response.answered is False


@pytest.mark.parametrize("query", ["relu", "what is it about softmax?", "交叉熵损失是什么", "BCE"])
def test_one_content_word_is_enough_to_search(searcher, query):
    assert searcher.search(query).results


def test_foreign_wording_still_ranks_sensibly(searcher):
    assert top(searcher, "¿Qué es la función softmax?") == SOFTMAX


# -- fusion and entry scoring -----------------------------------------------------------------------

def test_a_word_only_a_page_uses_is_found_by_the_hybrid_search(searcher):
    hybrid = searcher.search(f"what is the {RARE} buffer").results[0]
    assert hybrid.id == BACKPROP
    assert hybrid.evidence.source == "resource" and RARE in hybrid.evidence.text


def test_reciprocal_rank_fusion_is_a_working_alternative(searcher):
    rrf = searcher.with_settings(replace(searcher.settings, fusion="rrf"))
    assert top(rrf, f"what is the {RARE} buffer") == BACKPROP
    assert top(rrf, "why exp in softmax") == SOFTMAX
    scores = [r.score for r in rrf.search("softmax").results]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 2 / (rrf.settings.rrf_k + 1)


def test_an_unknown_fusion_is_a_clear_error(searcher):
    with pytest.raises(ValueError, match="fusion 'average'"):
        searcher.with_settings(replace(searcher.settings, fusion="average"))


def test_passage_scores_are_mixed_with_their_entrys_direct_match(searcher):
    query = "the rectified linear unit does not saturate"
    prepared = searcher.prepare(query)
    vector = searcher.embedder.encode([prepared.dense_text])[0]
    def unit_scores(s):
        return s.weigh(s.match_scores(*s.signals(prepared, vector)))

    weighted = replace(searcher.settings, fusion="weighted")
    raw = unit_scores(searcher.with_settings(replace(weighted, passage_context=0.0)))
    c = 0.3
    mixed = unit_scores(searcher.with_settings(replace(weighted, passage_context=c)))
    passage = np.array([u.kind == "passage" for u in searcher.units])
    np.testing.assert_array_equal(mixed[~passage], raw[~passage])
    for i in np.flatnonzero(passage):
        same_entry = [j for j, u in enumerate(searcher.units)
                      if u.entry_id == searcher.units[i].entry_id and not passage[j]]
        direct = max(raw[j] for j in same_entry)
        assert mixed[i] == pytest.approx((1 - c) * raw[i] + c * direct, abs=1e-6)
    # Page text still decides here: the passage about ReLU carries the activation entry.
    assert searcher.search(query).results[0].id == ACTIVATION


def test_dense_lexical_and_hybrid_modes_each_rank_the_obvious_entry(searcher):
    for mode in ("dense", "lexical", "hybrid"):
        s = searcher.with_settings(replace(searcher.settings, mode=mode))
        assert top(s, "why do we take the exponential in softmax") == SOFTMAX, mode


def test_questions_only_baseline_ignores_page_text(searcher):
    baseline = searcher.with_settings(SearchSettings(mode="dense", unit_kinds=("question",)))
    for result in baseline.search("relu").results:
        assert result.evidence.source == "question"


# -- evidence and the answer threshold --------------------------------------------------------------

def test_evidence_marks_the_query_words_it_contains(searcher):
    result = searcher.search("why exponential in softmax").results[0]
    text, spans = result.evidence.text, result.evidence.highlights
    assert spans, "the evidence should mark the matching words"
    marked = {stem(text[s:e].lower()) for s, e in spans}
    assert marked <= {stem(w) for w, _, _ in words("why exponential in softmax")}
    assert "softmax" in marked


def test_answered_follows_the_threshold(searcher):
    response = searcher.search("how do I bake sourdough bread")
    assert response.results, "the nearest entries are still shown"
    assert response.answered is (response.results[0].score >= searcher.threshold)
    strict = searcher.with_settings(searcher.settings, threshold=10.0)
    assert strict.search("what is log loss").answered is False
    lenient = searcher.with_settings(searcher.settings, threshold=-10.0)
    assert lenient.search("what is log loss").answered is True


def test_evidence_is_the_entry_text_that_matched_best(searcher):
    query = "relu outputs max of zero and x and does not saturate"
    result = searcher.search(query).results[0]
    assert result.id == ACTIVATION
    assert result.evidence.source == "resource" and "ReLU" in result.evidence.text
    matches = searcher.score(searcher.prepare(query)).matches
    own = [i for i, u in enumerate(searcher.units) if u.entry_id == ACTIVATION]
    best = max(own, key=lambda i: matches[i])
    assert searcher.units[best].text == result.evidence.text


def _phrase_by_entry(searcher: Searcher, query: str) -> dict[str, float]:
    features = searcher.score(searcher.prepare(query)).features
    return {searcher.entry_ids[e]: v for e, v in zip(features.entries, features.column("phrase"))}


def test_words_pasted_from_an_answer_are_read_as_such_and_find_their_entry(searcher):
    pasted = "raise the rate every batch and pick one a little below where the loss starts"
    phrase = _phrase_by_entry(searcher, pasted)
    assert phrase[LEARNING_RATE] == 1.0 and max(v for e, v in phrase.items() if e != LEARNING_RATE) == 0.0
    assert top(searcher, pasted) == LEARNING_RATE
    # A paraphrase shares no run of three words, whatever words it shares.
    assert max(_phrase_by_entry(searcher, "the loss starts to climb when I raise the rate").values()) < 1.0


def test_the_evidence_shown_for_pasted_words_is_the_passage_that_holds_them(tmp_path, embedder):
    """A learner asks in the FAQ's words and pastes a line from deep in a long answer: the question
    matches best, but the reason to show is the passage they quoted."""
    from indexer import store

    steps = [f"Step {n}: check that the container on port {5000 + n} is stopped before you start another one "
             f"with the same mapping, since Docker gives each host port to one container only." for n in range(30)]
    pasted = "restart Docker Desktop and run docker system prune to clear the stale networks"
    answer = " ".join(steps) + f" If the daemon still refuses, {pasted}."
    rows = [{"id": "ports", "question": "How do I fix Docker port errors?", "answer": answer},
            {"id": "env", "question": "How do I install the course environment?", "answer": "Use conda."}]
    faq = tmp_path / "faq.jsonl"
    write_jsonl(faq, rows)
    build_index([faq], index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", settings=SETTINGS, offline=True)
    s = Searcher(store.load(tmp_path / "index"), embedder)
    assert sum(u.entry_id == "ports" and u.kind == "answer" for u in s.units) > 2, "a long answer, in passages"
    result = s.search(f"How do I fix Docker port errors? {pasted}").results[0]
    assert result.id == "ports"
    assert pasted in " ".join(result.evidence.text.split())


def test_words_pasted_from_a_linked_page_are_not_read_as_an_entrys_own(searcher):
    # A broad page holds any common phrase of its topic ("gradient descent algorithm"): only the
    # entry's own text counts here.
    phrase = _phrase_by_entry(searcher, "applies the chain rule layer by layer from the loss back")
    assert phrase and max(phrase.values()) == 0.0
    assert top(searcher, "applies the chain rule layer by layer from the loss back") == BACKPROP


# -- the saved search side --------------------------------------------------------------------------

def test_an_index_without_its_saved_search_side_opens_and_answers_the_same(site, searcher, tmp_path):
    import shutil

    from indexer import store

    old = tmp_path / "old-index"
    shutil.copytree(site.index_dir.resolve(), old)
    for name in (store.LEXICAL_DIR, store.LAYOUT_FILE, store.FOCUS_FILE, store.CENTROID_FILE):
        path = old / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    rebuilt = Searcher.open(old, cache_dir=site.cache_dir)
    assert rebuilt.stored.focus is None and isinstance(searcher.lexical.bm25.scores["data"], np.memmap)
    assert rebuilt.stored.centroid is None and searcher.stored.centroid is not None
    assert np.allclose(rebuilt.centroid.vector, searcher.centroid.vector, atol=1e-6)
    assert np.allclose(rebuilt.centroid.unit_dot, searcher.centroid.unit_dot, atol=1e-6)
    assert np.array_equal(rebuilt.layout.unit_entry, searcher.layout.unit_entry)
    assert np.array_equal(rebuilt.layout.unit_kind, searcher.layout.unit_kind)
    assert np.array_equal(rebuilt.focus, searcher.focus)
    assert rebuilt.stored.entry_words is None and rebuilt.faq_words == searcher.faq_words
    for query in ("why exp in softmax", "backprogation chain rule", f"what is the {RARE} buffer", "log loss"):
        assert rebuilt.search(query).to_dict() == searcher.search(query).to_dict()


def test_unit_texts_are_read_only_for_the_results_shown(site):
    fresh = Searcher.open(site.index_dir, cache_dir=site.cache_dir)
    response = fresh.search("why exp in softmax")
    assert response.results and fresh.stored._units is None  # no full read of the units table
    assert [u.text for u in fresh.stored.units_at([3, 0])] == [fresh.units[3].text, fresh.units[0].text]


def test_bm25_beside_faiss_on_a_worker_thread_answers_the_same(searcher, monkeypatch):
    from indexer import search as search_module

    queries = ("why exp in softmax", "backprogation chain rule", f"what is the {RARE} buffer", "log loss")
    serial = [searcher.search(q).to_dict() for q in queries]
    monkeypatch.setattr(search_module, "PARALLEL_LEXICAL_UNITS", 1)  # every index counts as large
    calls = []
    real = search_module._in_background
    monkeypatch.setattr(search_module, "_in_background", lambda work: calls.append(1) or real(work))
    assert [searcher.search(q).to_dict() for q in queries] == serial
    assert len(calls) == len(queries)


def test_a_query_search_runs_faiss_on_the_query_threads_and_puts_the_default_back(searcher, monkeypatch):
    import faiss

    from indexer import store

    seen = []
    index = searcher.stored.faiss_index
    real = index.search
    monkeypatch.setattr(index, "search", lambda *a: seen.append(faiss.omp_get_max_threads()) or real(*a))
    before = faiss.omp_get_max_threads()
    searcher.search("why exp in softmax")
    assert seen == [store.FAISS_QUERY_THREADS]
    assert faiss.omp_get_max_threads() == before


def test_unit_rows_are_cached_up_to_their_cap_and_stay_right(site, monkeypatch):
    from indexer import store

    monkeypatch.setattr(store, "UNIT_CACHE_ROWS", 3)
    fresh = Searcher.open(site.index_dir, cache_dir=site.cache_dir)
    every = fresh.stored._query("SELECT entry_id, kind, text, url FROM units ORDER BY vector_id")
    for ids in ([0, 1], [2, 0, 4], [5, 1, 5], [0]):
        assert fresh.stored.units_at(ids) == [every[i] for i in ids]
        assert len(fresh.stored._unit_rows) <= 3


def test_real_words_the_faq_never_uses_are_not_mended_to_look_alikes(searcher):
    from indexer.lexical import Lexical
    from indexer.query import prepare

    lexical = Lexical(["A comfortable chair.", "Backpropagation applies the chain rule."])
    assert lexical.correct("uncomfortable") == "comfortable"  # what typo repair alone would do
    spelled = searcher.embedder.whole_words  # the model's whole words
    assert "uncomfortable" in spelled and "backprogation" not in spelled
    got = prepare("uncomfortable with backprogation", lexical, searcher.embedder.count_tokens, 254, spelled=spelled)
    assert got.corrections == {"backprogation": "backpropagation"}


def test_a_searcher_keeps_answering_after_its_build_folder_is_pruned(site, searcher, tmp_path):
    """The vectors are memory-mapped and the metadata connection stays open: a rebuild that prunes
    the build a running app still has open does not break it."""
    import shutil

    copy = tmp_path / "build"
    shutil.copytree(site.index_dir.resolve(), copy)
    opened = Searcher.open(copy, cache_dir=site.cache_dir)
    query = "why exp in softmax"
    opened.search("warm up the metadata connection")
    shutil.rmtree(copy)
    assert opened.search(query).to_dict() == searcher.search(query).to_dict()


def test_entry_rows_are_read_for_the_results_shown_and_all_at_once_when_listed(site):
    fresh = Searcher.open(site.index_dir, cache_dir=site.cache_dir)
    table = fresh.stored.entries
    assert len(table) == len(fresh.entry_ids) and not table._read  # ids only at open
    shown = {r.id for r in fresh.search("why exp in softmax", top_k=2).results}
    assert set(table._read) == shown
    every = list(table.values())  # the Browse view: one read of every row
    assert [e.id for e in every] == fresh.entry_ids and len(table._read) == len(every)
    assert table.many([SOFTMAX, BACKPROP, SOFTMAX]) == [table[SOFTMAX], table[BACKPROP], table[SOFTMAX]]
    assert table[SOFTMAX].resources and "no-such-entry" not in table and table.get("no-such-entry") is None
    with pytest.raises(KeyError):
        table["no-such-entry"]


def test_a_section_search_ranks_among_that_sections_entries_only(tmp_path, embedder):
    """A multi-course FAQ has one "How do I join?" per course; a learner of one course searches in it, and
    its entries compete among themselves, for the ranking and for "no good answer"."""
    import json

    from indexer import store
    from indexer.search import UnknownSection

    export = [{"course": "data-engineering", "documents": [
                  {"question": "How do I join the course?", "text": "Register with the form before the start date.",
                   "section": "General"},
                  {"question": "The postgres port is already allocated", "text": "Stop the local postgres service.",
                   "section": "Module 1: Docker"}]},
              {"course": "ml", "documents": [
                  {"question": "How do I join the course?", "text": "No registration: just start the videos.",
                   "section": "General"},
                  {"question": "How do I deploy a model with Flask?", "text": "Wrap predict in a Flask route.",
                   "section": "Module 5: Deployment"}]}]
    faq = tmp_path / "documents.json"
    faq.write_text(json.dumps(export), "utf-8")
    build_index([faq], index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", settings=SETTINGS, offline=True)
    s = Searcher(store.load(tmp_path / "index"), embedder)
    assert s.sections() == ["data-engineering", "data-engineering · General", "data-engineering · Module 1: Docker",
                            "ml", "ml · General", "ml · Module 5: Deployment"]

    everywhere = s.search("how can I join the course")
    assert {r.id for r in everywhere.results[:2]} == {"how-do-i-join-the-course", "how-do-i-join-the-course-2"}
    ml = s.search("how can I join the course", section="ml")
    assert ml.results[0].id == "how-do-i-join-the-course-2" and ml.answered
    assert {r.category for r in ml.results} <= {"ml · General", "ml · Module 5: Deployment"}
    # Alone in its section, the entry does not share its probability with the other course's twin.
    assert ml.results[0].score > max(r.score for r in everywhere.results if r.id == "how-do-i-join-the-course-2")
    module = s.search("port already allocated", section="data-engineering · Module 1: Docker")
    assert [r.id for r in module.results] == ["the-postgres-port-is-already-allocated"]
    # The answer is in another course: within this one, the FAQ has none.
    assert not s.search("the postgres port is already allocated", section="ml").answered

    with pytest.raises(UnknownSection, match=r"no section 'python' in this index \(sections: data-engineering; "):
        s.search("how can I join", section="python")


def test_faq_words_is_the_median_words_of_the_entries_own_text_the_same_for_every_candidate(searcher):
    from indexer.features import FEATURES, faq_words_of

    # question + written answer + link titles; the fetched pages do not count
    questions = {BACKPROP: 7, SOFTMAX: 8, ACTIVATION: 6, LEARNING_RATE: 7, CROSS_ENTROPY: 5}
    titles = {BACKPROP: 3, SOFTMAX: 3, ACTIVATION: 3}
    answers = {e.id: len(e.answer.split()) for e in searcher.stored.entries.values()}
    assert answers[LEARNING_RATE] > 20 and answers[CROSS_ENTROPY] > 15 and answers[BACKPROP] == 0
    expected = [questions[e] + titles.get(e, 0) + answers[e] for e in searcher.entry_ids]
    assert searcher.stored.entry_words.tolist() == expected
    assert searcher.faq_words == pytest.approx(np.log1p(np.median(expected)))
    scored = searcher.score(searcher.prepare("why exp in softmax"))
    column = scored.features.matrix[:, FEATURES.index("faq_words")]
    assert len(column) >= 2 and (column == searcher.faq_words).all()
    assert faq_words_of(np.array([3, 4])) == pytest.approx(np.log1p(8))  # held within FAQ_WORDS_SPAN
    assert faq_words_of(np.array([5000])) == pytest.approx(np.log1p(400))
    # Set on a copy (bench.faq_size holds a mixed index at one FAQ's value): the copy's column moves, the
    # original's does not.
    alike = searcher.with_settings(searcher.settings)
    alike.faq_words = 5.0
    moved = alike.score(searcher.prepare("why exp in softmax")).features.matrix[:, FEATURES.index("faq_words")]
    assert (moved == 5.0).all() and searcher.faq_words != 5.0


def test_query_words_counts_the_searched_words_once_however_many_typos_are_mended(searcher):
    from indexer.features import FEATURES, query_words_of

    prepared = searcher.prepare("Why do we use the exp in softmax, and why exp?")
    assert prepared.words == 3  # exp, softmax, exp: stop words do not count, repeats do
    mended = searcher.prepare("backprogation explained simply")
    assert mended.corrections and mended.words == 3, "a mended word is not counted twice"
    scored = searcher.score(prepared)
    column = scored.features.matrix[:, FEATURES.index("query_words")]
    assert len(column) >= 2 and (column == query_words_of(3)).all()


def test_a_ranker_reading_query_words_moves_probabilities_and_no_ranking(searcher, tmp_path):
    from indexer.ranker import load

    base = load(model=searcher.stored.manifest.get("model"))
    assert "query_words" not in base.features, "no shipped file reads it (docs/query-length.md)"
    grown = replace(base, features=base.features + ("query_words",), mean=np.r_[base.mean, np.log1p(4)],
                    scale=np.r_[base.scale, 1.0], coef=np.r_[base.coef, 1.0],
                    hidden=base.hidden and replace(base.hidden, weights=np.c_[base.hidden.weights,
                                                                              np.zeros(len(base.hidden.out))]))
    paths = {}
    for name, ranker in (("base", base), ("grown", grown)):
        paths[name] = tmp_path / f"{name}.json"
        ranker.save(paths[name])
    a_side, b_side = (searcher.with_settings(replace(searcher.settings, ranker=str(paths[n]))) for n in ("base", "grown"))
    for query, longer in (("softmax exp", False), ("why would anyone put the exponential function inside softmax "
                                                   "instead of just normalising the raw outputs", True)):
        a, b = (side.score(side.prepare(query)) for side in (a_side, b_side))
        assert np.array_equal(a.entry_positions, b.entry_positions)
        assert np.array_equal(np.argsort(-a.entry_scores, kind="stable"), np.argsort(-b.entry_scores, kind="stable"))
        # centred on 4 words: a 2-word query's bar rises (lower probabilities), a 13-word one's falls
        assert ((b.entry_scores > a.entry_scores).all() if longer else (b.entry_scores < a.entry_scores).all()), query


def test_a_ranker_reading_faq_words_moves_probabilities_and_no_ranking(searcher, tmp_path):
    from indexer.ranker import load

    shipped = load(model=searcher.stored.manifest.get("model"))
    shifted = replace(shipped, features=shipped.features + ("faq_words",), mean=np.r_[shipped.mean, 4.0],
                      scale=np.r_[shipped.scale, 1.0], coef=np.r_[shipped.coef, -1.0])
    path = tmp_path / "shifted.json"
    shifted.save(path)
    other = searcher.with_settings(replace(searcher.settings, ranker=str(path)))
    for query in ("why exp in softmax", "chain rule for gradients", "best pizza in naples"):
        a, b = searcher.search(query), other.search(query)
        assert [r.id for r in a.results] == [r.id for r in b.results]
        # this FAQ has ~11 words an entry (log 2.5), below the 4.0 the shift is centred on: a lower bar
        assert all(rb.score >= ra.score for ra, rb in zip(a.results, b.results))
        if query == "best pizza in naples":
            assert b.results[0].score > a.results[0].score
