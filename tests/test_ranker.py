"""The learned ranker's files (indexer/rankers/<model>.json): loaded, applied, picked by the index's model, and
refused with a clear error when bad."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT
from indexer import ranker
from indexer.config import SearchSettings
from indexer.features import FEATURES, Layout, entry_features
from indexer.ranker import RankerError


def shipped() -> dict:
    return json.loads(ranker.DEFAULT_PATH.read_text("utf-8"))


def write(tmp_path: Path, data, name: str = "ranker.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), "utf-8")
    return path


def test_the_shipped_ranker_loads_and_uses_known_features():
    r = ranker.load()
    assert set(r.features) <= set(FEATURES) and len(r.coef) == len(r.features)
    assert 0.0 < r.answer_threshold < 1.0
    assert r.trained.get("by") == "bench/train_ranker.py"
    assert len(r.sha256) == 64


def test_probabilities_are_a_softmax_over_the_candidates_with_a_none_option():
    r = ranker.load()
    coef = dict(zip(r.features, r.coef))
    assert coef["d_question"] > 0
    rows = np.zeros((2, len(FEATURES)))
    col = FEATURES.index("d_question")
    rows[0, col], rows[1, col] = 0.8, 0.2  # a close match of the question and a weak one
    p = r.probabilities(rows)
    logits = r.logits(rows)
    np.testing.assert_allclose(p, np.exp(logits) / (1 + np.exp(logits).sum()))
    assert ((0 < p) & (p < 1)).all() and p.sum() < 1, "the rest is the chance that no entry answers"
    assert p[0] > p[1], "a closer match must rank higher"
    alone = r.probabilities(rows[:1])[0]
    assert alone > p[0], "a rival candidate must take probability from the top one"


def test_unrelated_entries_beyond_the_rivals_do_not_lower_the_answer_probability():
    """A bigger FAQ holds more entries that have nothing to do with a query; over all candidates each
    took a small share of probability, so the same query was refused more often on a bigger FAQ."""
    r = ranker.load()
    assert r.rivals == 20
    col = FEATURES.index("d_question")
    close = np.zeros((r.rivals, len(FEATURES)))
    close[:, col] = np.linspace(0.8, 0.4, r.rivals)
    unrelated = np.zeros((500, len(FEATURES)))
    unrelated[:, col] = 0.05
    small, big = r.probabilities(close), r.probabilities(np.vstack([close, unrelated]))
    np.testing.assert_allclose(big[:r.rivals], small)
    assert (big[r.rivals:] < small.min()).all(), "an unrelated entry still ranks below the rivals"
    every = replace(r, rivals=0)
    assert every.probabilities(np.vstack([close, unrelated]))[0] < every.probabilities(close)[0]


def test_a_ranker_file_without_rivals_compares_every_candidate(tmp_path):
    data = {k: v for k, v in shipped().items() if k != "rivals"}
    assert ranker.load(write(tmp_path, data)).rivals == 0


def test_a_lexical_lead_counts_as_far_as_the_dense_side_backs_it():
    """One word that a single entry of a small FAQ shares with the query gives it a wide BM25 lead,
    whether or not the entry is about the query: the shipped weights trust that lead only with a close
    dense match behind it."""
    layout = Layout.of([0, 1, 2], ["question"] * 3, 3)
    r = ranker.load()

    def gain(cosine: float) -> float:
        """What the lexical match adds to entry 0's log-odds, its question at `cosine` to the query."""
        dense = np.array([cosine, 0.1, 0.05], np.float32)
        logit = [r.logits(entry_features(dense, np.array([share, 0, 0], np.float32), layout, faq_words=3.0).matrix)[0]
                 for share in (0.0, 0.6)]
        return logit[1] - logit[0]

    assert gain(0.7) > gain(0.3) > gain(-0.1) > 0
    assert gain(0.7) > 1.5 * gain(-0.1)


def test_the_softmax_does_not_overflow():
    p = ranker.softmax_with_none(np.array([800.0, 799.0, -800.0]))
    assert np.isfinite(p).all() and p[0] > p[1] > p[2] >= 0 and p.sum() <= 1 + 1e-12
    assert ranker.softmax_with_none(np.array([])).shape == (0,)


def test_a_saved_ranker_reads_back_identically(tmp_path):
    r = ranker.load()
    path = tmp_path / "copy.json"
    r.save(path)
    again = ranker.load(path)
    np.testing.assert_array_equal(again.coef, r.coef)
    np.testing.assert_array_equal(again.mean, r.mean)
    assert again.intercept == r.intercept and again.features == r.features and again.rivals == r.rivals


def test_a_missing_ranker_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere.json"
    with pytest.raises(RankerError, match=r"nowhere\.json: cannot read the ranker file.*bench\.train_ranker"):
        ranker.load(missing)


@pytest.mark.parametrize("mangle, message", [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: [], "not a ranker file"),
    (lambda d: {**d, "format": "pickle"}, "not a ranker file"),
    (lambda d: {**d, "format": "faq-ranker/1"}, "ranker format faq-ranker/1 is not faq-ranker/2 or faq-ranker/3; "
                                                 "retrain"),
    (lambda d: {**d, "features": []}, "'features' must be a non-empty list"),
    (lambda d: {**d, "features": d["features"][:-1] + ["colour"]}, "unknown features colour"),
    (lambda d: {**d, "coef": d["coef"][:-1]}, "'coef' must be a list of"),
    (lambda d: {**d, "mean": ["a"] * len(d["features"])}, "'mean' must be a list of"),
    (lambda d: {**d, "scale": [0.0] * len(d["features"])}, "'scale' must be positive"),
    (lambda d: {**d, "intercept": "high"}, "'intercept' must be a finite number"),
    (lambda d: {**d, "answer_threshold": 1.5}, "'answer_threshold' is a probability"),
    (lambda d: {k: v for k, v in d.items() if k != "answer_threshold"}, "'answer_threshold' must be a finite"),
    (lambda d: {**d, "rivals": -1}, "'rivals' must be a whole number"),
    (lambda d: {**d, "rivals": 2.5}, "'rivals' must be a whole number"),
    (lambda d: {**d, "rivals": True}, "'rivals' must be a whole number"),
])
def test_a_malformed_ranker_file_is_a_clear_error_naming_it(tmp_path, mangle, message):
    path = write(tmp_path, mangle(shipped()))
    with pytest.raises(RankerError, match=message) as info:
        ranker.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


MINILM_FILE = "sentence-transformers/all-MiniLM-L6-v2"


def linear_file() -> dict:
    """A shipped file without a hidden layer (format 2): MiniLM's."""
    data = json.loads(ranker.shipped_path(MINILM_FILE).read_text("utf-8"))
    assert data["format"] == "faq-ranker/2" and "hidden" not in data
    return data


def _with_hidden(data: dict, units: int = 3) -> dict:
    """A linear file with a hidden layer of `units` units (format 3), numbers chosen so that it bends."""
    n = len(data["features"])
    rng = np.random.default_rng(1)
    return {**data, "format": ranker.FORMAT_HIDDEN,
            "hidden": {"weights": rng.normal(0, 1, (units, n)).round(3).tolist(),
                       "bias": [0.1] * units, "out": [0.5, -0.4, 0.3][:units]}}


def test_a_hidden_layer_adds_relu_units_to_the_linear_score_and_reads_back(tmp_path):
    linear = ranker.load(model=MINILM_FILE)
    path = write(tmp_path, _with_hidden(linear_file()))
    bent = ranker.load(path)
    assert bent.hidden is not None and bent.hidden.weights.shape == (3, len(bent.features))
    rows = np.random.default_rng(2).normal(0.3, 0.2, (6, len(FEATURES)))
    x = (rows[:, [FEATURES.index(f) for f in bent.features]] - bent.mean) / bent.scale
    expected = linear.logits(rows) + np.maximum(x @ bent.hidden.weights.T + 0.1, 0) @ np.array([0.5, -0.4, 0.3])
    np.testing.assert_allclose(bent.logits(rows), expected)
    assert not np.allclose(bent.logits(rows), linear.logits(rows)), "the layer must move the scores"
    bent.save(tmp_path / "again.json")
    again = ranker.load(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text("utf-8"))["format"] == "faq-ranker/3"
    np.testing.assert_allclose(again.logits(rows), bent.logits(rows))
    linear.save(tmp_path / "linear.json")
    assert json.loads((tmp_path / "linear.json").read_text("utf-8"))["format"] == "faq-ranker/2"


@pytest.mark.parametrize("mangle, message", [
    (lambda d: {k: v for k, v in d.items() if k != "hidden"}, "faq-ranker/3 needs a 'hidden' object"),
    (lambda d: {**d, "hidden": [1, 2]}, "faq-ranker/3 needs a 'hidden' object"),
    (lambda d: {**d, "format": "faq-ranker/2"}, "a 'hidden' layer needs \"format\": \"faq-ranker/3\""),
    (lambda d: {**d, "hidden": {**d["hidden"], "weights": []}}, "'hidden.weights' must be a non-empty list"),
    (lambda d: {**d, "hidden": {**d["hidden"], "weights": [w[:-1] for w in d["hidden"]["weights"]]}},
     "'hidden.weights' must be a list of"),
    (lambda d: {**d, "hidden": {**d["hidden"], "bias": [0.1]}}, "'hidden.bias' must be a list of 3 finite numbers, "
                                                                "one per hidden unit"),
    (lambda d: {**d, "hidden": {k: v for k, v in d["hidden"].items() if k != "out"}}, "'hidden.out' must be a list"),
    (lambda d: {**d, "hidden": {**d["hidden"], "out": ["x", 1, 2]}}, "'hidden.out' must be a list"),
])
def test_a_malformed_hidden_layer_is_a_clear_error_naming_the_file(tmp_path, mangle, message):
    path = write(tmp_path, mangle(_with_hidden(linear_file())))
    with pytest.raises(RankerError, match=message) as info:
        ranker.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_bad_ranker_stops_the_cli_with_one_line(tmp_path, monkeypatch):
    """Searching with a broken ranker names the file on one line (no traceback)."""
    from indexer.build import build_index
    from indexer.search import Searcher

    faq = tmp_path / "faq.md"
    faq.write_text("# A\n\n**Q: What is softmax?**\n\n**Q: What is relu?**\n", "utf-8")
    build_index([faq], index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", offline=True)
    bad = write(tmp_path, "{not json", "bad-ranker.json")
    from indexer.config import Settings
    with pytest.raises(RankerError, match="bad-ranker.json"):
        Searcher.open(tmp_path / "index", settings=Settings(search=replace(SearchSettings(), ranker=str(bad))))
    # The CLI's searches use the shipped ranker of the index's model; a broken shipped file is named the same way:
    shipped_dir = tmp_path / "broken-rankers"
    shipped_dir.mkdir()
    write(shipped_dir, "{not json", "all-MiniLM-L6-v2.json")
    script = ("import sys; from indexer import ranker; from pathlib import Path; "
              f"ranker.SHIPPED_DIR = Path({str(shipped_dir)!r}); from indexer.cli import main; "
              f"sys.argv = ['x', 'search', '--index-dir', {str(tmp_path / 'index')!r}, 'softmax']; main()")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken-rankers/all-MiniLM-L6-v2.json" in lines[0], proc.stderr


def test_the_shipped_ranker_names_the_model_it_was_fitted_on():
    from indexer.config import DEFAULT_MODEL

    assert ranker.load().embedding_model == DEFAULT_MODEL


def test_every_shipped_ranker_is_named_after_the_model_it_was_fitted_on():
    from indexer.models import MPNET, canonical

    files = sorted(ranker.SHIPPED_DIR.glob("*.json"))
    assert ranker.DEFAULT_PATH in files and ranker.shipped_path(MPNET) in files
    for path in files:
        fitted_on = ranker.load(path).embedding_model
        assert canonical(fitted_on) == fitted_on and ranker.shipped_path(fitted_on) == path


def test_an_index_gets_the_ranker_of_its_own_model_else_the_default_models():
    from indexer.config import DEFAULT_MODEL
    from indexer.models import MINILM, MPNET

    assert ranker.load(model=MINILM).embedding_model == MINILM
    assert ranker.load(model=MPNET).embedding_model == MPNET
    assert ranker.load(model="all-mpnet-base-v2").embedding_model == MPNET  # the short name too
    assert ranker.for_model("/home/me/my-model") == ranker.for_model(None) == ranker.DEFAULT_PATH
    assert ranker.load(model="/home/me/my-model").embedding_model == DEFAULT_MODEL
    # A ranker file given by the user wins over the shipped one for the model.
    assert ranker.load(ranker.shipped_path(MINILM), model=MPNET).embedding_model == MINILM


def test_a_ranker_fitted_on_another_models_scores_is_flagged_once(tmp_path, caplog):
    """`--model` changes the cosines the coefficients read: searching says so (once), and still searches."""
    from indexer.build import build_index
    from indexer.config import Settings
    from indexer.search import Searcher

    faq = tmp_path / "faq.md"
    faq.write_text("# A\n\n**Q: What is softmax?**\n\n**Q: What is relu?**\n", "utf-8")
    build_index([faq], index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", offline=True)
    other = shipped()
    other["trained"]["embedding_model"] = "someone/another-model"
    settings = Settings(search=replace(SearchSettings(), ranker=str(write(tmp_path, other, "other.json"))))
    with caplog.at_level("WARNING", logger="indexer.search"):
        Searcher.open(tmp_path / "index")  # the shipped ranker: fitted on the index's own model
        assert not [r for r in caplog.records if "fitted on" in r.getMessage()]
        searcher = Searcher.open(tmp_path / "index", settings=settings)
        Searcher.open(tmp_path / "index", settings=settings)
    warnings = [r.getMessage() for r in caplog.records if "fitted on" in r.getMessage()]
    assert len(warnings) == 1 and "someone/another-model" in warnings[0] and "all-MiniLM-L6-v2" in warnings[0]
    assert searcher.search("softmax").results[0].question == "What is softmax?"


def test_training_fits_over_each_querys_best_candidates():
    """bench/learn.py fits over all candidates, then over each query's best `rivals` by that fit, and
    ships the number: search compares the same candidates the fit did."""
    from bench import learn
    from bench.collect import Record

    rng = np.random.default_rng(0)
    col = FEATURES.index("d_question")
    records = []
    for q in range(60):
        matrix = rng.normal(0.1, 0.05, (40, len(FEATURES)))
        expected = None if q % 5 == 0 else f"e{q % 40}"
        if expected:
            matrix[q % 40, col] += 0.4  # the right entry's question is the closest
        records.append(Record("s", f"f{q % 3}", "dev", f"q{q}", expected, [f"e{i}" for i in range(40)], matrix))
    fitted = learn.fit_ranker(records, rivals=10)
    assert fitted.rivals == 10 and dict(zip(fitted.features, fitted.coef))["d_question"] > 0
    best = learn.best_candidates(records[1], fitted, 10)
    assert len(best.entry_ids) == 10 and "e1" in best.entry_ids
    assert best.entry_ids == sorted(best.entry_ids, key=records[1].entry_ids.index), "original order kept"
    np.testing.assert_array_equal(best.matrix, records[1].matrix[[records[1].entry_ids.index(e) for e in best.entry_ids]])


def test_a_ranker_that_reads_a_feature_the_caller_left_unknown_is_a_clear_error():
    layout = Layout.of([0, 1], ["question"] * 2, 2)
    shipped_file = ranker.load(model="sentence-transformers/all-MiniLM-L6-v2")  # reads no faq_words
    assert "faq_words" not in shipped_file.features
    reads = replace(shipped_file, features=shipped_file.features + ("faq_words",),
                    mean=np.r_[shipped_file.mean, 4.0], scale=np.r_[shipped_file.scale, 1.0],
                    coef=np.r_[shipped_file.coef, -1.0])
    features = entry_features(np.array([0.6, 0.2], np.float32), np.zeros(2, np.float32), layout)
    with pytest.raises(ValueError, match="reads faq_words"):
        reads.logits(features.matrix)
    given = entry_features(np.array([0.6, 0.2], np.float32), np.zeros(2, np.float32), layout, faq_words=4.0)
    assert np.allclose(reads.logits(given.matrix), shipped_file.logits(given.matrix))  # at its mean: no shift
