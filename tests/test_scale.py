"""Scale: per-query work bounded by the candidates (same results as over every unit), typo lookups, rebuilds without the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.features import KINDS, Layout, entry_features
from indexer.lexical import Lexical, stem


def test_entry_features_ignore_units_that_are_no_candidate() -> None:
    rng = np.random.default_rng(0)
    n_units, n_entries = 300, 40
    unit_entry = np.sort(rng.integers(0, n_entries, n_units))
    kinds = [KINDS[k] for k in rng.integers(0, len(KINDS), n_units)]
    layout = Layout.of(unit_entry, kinds, n_entries)
    dense = np.where(rng.random(n_units) < 0.3, rng.random(n_units), -np.inf).astype(np.float32)
    lexical = np.where(rng.random(n_units) < 0.2, rng.random(n_units), 0).astype(np.float32)
    focus = rng.random(n_units)
    got = entry_features(dense, lexical, layout, focus, faq_words=3.0, query_words=2.0)
    # The same units plus many inactive ones (of one more entry): nothing changes.
    extra = 500
    big = Layout.of(np.r_[unit_entry, np.full(extra, n_entries)], kinds + ["passage"] * extra, n_entries + 1)
    padded = entry_features(np.r_[dense, np.full(extra, -np.inf, np.float32)],
                            np.r_[lexical, np.zeros(extra, np.float32)], big, np.r_[focus, np.ones(extra)],
                            faq_words=3.0, query_words=2.0)
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


def test_typo_repair_looks_up_trigrams_and_agrees_with_a_full_difflib_scan(tmp_path) -> None:
    import difflib
    import random

    texts = ["Backpropagation applies the chain rule through every layer of the network.",
             "The softmax function exponentiates logits; regularization and normalization help training.",
             "Gradient descent with momentum, learning rate schedules and dropout regularisation."]
    lex = Lexical(texts)
    vocab = sorted(lex.vocab)
    rng = random.Random(0)
    for _ in range(300):
        word = rng.choice(vocab)
        i = rng.randrange(len(word))
        typo = word[:i] + rng.choice("aeioustr") + word[i + 1:] if rng.random() < 0.5 else word[:i] + word[i + 1:]
        if typo in lex.vocab or len(typo) < 5 or stem(typo) in lex._known_stems:
            continue  # not a typo to mend
        full = difflib.get_close_matches(typo, vocab, n=1, cutoff=0.84)
        assert lex.correct(typo) == (full[0] if full else None), typo
    assert lex.correct("backprogation") == "backpropagation"
    lex.save(tmp_path / "bm25")
    loaded = Lexical.load(tmp_path / "bm25")
    assert loaded._typos is not None and loaded.correct("sofmax") == lex.correct("sofmax")


# -- rebuilds without the model ----------------------------------------------------------------------

FAQ = """# Course FAQ

**Q: What is a learning rate?**

The step size of gradient descent: too large and the loss diverges, too small and training crawls.

**Q: Why normalise the inputs?**

Features on one scale make the loss surface rounder, so gradient descent takes straighter steps.
"""


def test_a_rebuild_that_finds_every_vector_cached_never_imports_torch(tmp_path) -> None:
    import subprocess
    import sys

    from indexer.build import build_index
    from indexer.config import Settings

    faq = tmp_path / "faq.md"
    faq.write_text(FAQ, "utf-8")
    first = build_index([faq], index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", settings=Settings(),
                        offline=True)
    assert first.vectors_embedded > 0
    script = ("import sys; from pathlib import Path; from indexer.build import build_index; "
              f"s = build_index([Path({str(faq)!r})], index_dir=Path({str(tmp_path / 'index')!r}), "
              f"cache_dir=Path({str(tmp_path / 'cache')!r}), offline=True); "
              "print(s.vectors_embedded, s.vectors_reused, 'torch' in sys.modules, "
              "'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["0", str(first.vectors_embedded + first.vectors_reused), "False", "False"]


def test_the_builds_token_counts_match_the_models() -> None:
    from indexer.build import LazyEmbedder
    from indexer.config import Settings
    from indexer.embed import Embedder

    settings = Settings()
    lazy = LazyEmbedder(settings)
    texts = ["what is log loss", "Ünïcode café — résumé 😀", "backpropagation " * 300, "", "GPU's & TPU's: 3.5x?",
             "Ein Satz auf Deutsch mit Umlauten: Größe, Übung."]
    assert lazy.count_tokens(texts) == Embedder(settings.model).count_tokens(texts)
    assert lazy.dimension == 384 and not lazy.loaded


# -- index type by size ------------------------------------------------------------------------------

def test_exact_search_up_to_the_configured_size_hnsw_beyond(tmp_path) -> None:
    import faiss

    from bench import scale
    from indexer import store
    from indexer.config import IndexSettings
    from indexer.search import Searcher

    vectors = scale.make_vectors(3000, "structured", np.random.default_rng(0))
    index, info = store.vector_index(vectors, IndexSettings())
    assert info["type"] == "flat" and isinstance(index, faiss.IndexFlatIP)
    index, info = store.vector_index(vectors, IndexSettings(exact_max_units=1000))
    assert info["type"] == "hnsw" and info["m"] == IndexSettings().hnsw_m

    index_dir = tmp_path / "index"
    scale.build(index_dir, 3000, "structured", index_settings=IndexSettings(exact_max_units=1000))
    assert store.read_manifest(index_dir)["faiss"]["type"] == "hnsw"
    encoder = scale.GivenVectors()
    searcher = Searcher.open(index_dir, encoder_for=lambda _model: encoder)
    assert searcher.stored.faiss_index.hnsw.efSearch == IndexSettings().hnsw_ef_search
    queries = np.load(tmp_path / "queries.npy")[:50]
    flat = faiss.IndexFlatIP(scale.DIM)
    flat.add(searcher.stored.faiss_index.reconstruct_n(0, 3000))
    _, exact = flat.search(queries, 10)
    _, got = searcher.stored.faiss_index.search(queries, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, got)]) >= 0.95
    encoder.vectors = {"learning rate schedule": queries[0]}
    response = searcher.search("learning rate schedule")
    assert len(response.results) == 5 and response.results[0].evidence.text


def test_highlights_come_in_text_order_from_a_cached_analysis() -> None:
    from indexer.lexical import _spans_by_stem, highlight_spans, terms

    text = "Dropout drops units; a dropped unit learns nothing, so other units learn more."
    wanted = terms("unit learning")
    first = highlight_spans(wanted, text)
    assert [text[s:e] for s, e in first] == ["units", "unit", "learns", "units", "learn"]
    hits = _spans_by_stem.cache_info().hits
    assert highlight_spans(wanted, text) == first
    assert _spans_by_stem.cache_info().hits == hits + 1


def test_a_typo_is_looked_up_once_per_index() -> None:
    lex = Lexical(["Backpropagation applies the chain rule through every layer."])
    assert lex.correct("backprogation") == "backpropagation"
    lex.typos.candidates = None  # a second lookup would fail: the first answer is remembered
    assert lex.correct("backprogation") == "backpropagation"
    assert lex.correct("layers") is None  # a known stem is never looked up


def test_a_short_query_fits_the_window_without_being_counted() -> None:
    from indexer.query import fit_window

    def never(texts):
        raise AssertionError("counted")

    assert fit_window("why exp in softmax?", never, 256) == "why exp in softmax?"
    assert fit_window("word " * 100, lambda texts: [len(t.split()) for t in texts], 256) == "word " * 100
