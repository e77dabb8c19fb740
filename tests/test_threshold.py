"""The "no good answer" threshold (indexer/threshold.py): which one applies, the calibration rule, stored per
index, kept by rebuilds, overridden by FAQ_ANSWER_THRESHOLD everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from conftest import REPO_ROOT
from indexer.build import build_index
from indexer.calibrate import calibrate_index, current_calibration
from indexer.config import SearchSettings, Settings
from indexer.ranker import load as load_ranker
from indexer.search import Searcher
from indexer.status import index_status
from indexer.store import read_manifest, update_manifest
from indexer.threshold import ENV_VAR, ThresholdError, calibrate, fingerprint, refusal_rates, resolve
from jsonl_rows import write_jsonl

FAQ = """# Basics

**Q: What is gradient descent?**

**Q: Why do we need activation functions?**

**Q: What is cross entropy loss?**
"""

CASES = [
    {"query": "how does gradient descent update the weights", "expected": "What is gradient descent?"},
    {"query": "walking downhill on the loss surface", "expected": "What is gradient descent?"},
    {"query": "why use a nonlinearity like relu", "expected": "Why do we need activation functions?"},
    {"query": "purpose of activation functions in a network", "expected": "Why do we need activation functions?"},
    {"query": "what is log loss", "expected": "What is cross entropy loss?"},
    {"query": "binary cross-entropy explained", "expected": "What is cross entropy loss?"},
    {"query": "best pizza in Naples", "expected": None},
    {"query": "how to renew my passport", "expected": None},
    {"query": "weather in London tomorrow", "expected": None},
]


def test_calibrate_refuses_out_of_scope_within_the_answerable_budget():
    answerable = [True] * 20 + [False] * 5
    scores = [0.5 + 0.01 * i for i in range(20)] + [0.1, 0.2, 0.3, 0.45, 0.6]
    result = calibrate(scores, answerable, max_refused_answerable=0.05)
    # Refusing anything at or above 0.5 would refuse an answerable query (1/20 = 5% is allowed).
    assert 0.45 < result.threshold <= 0.51
    assert result.refused_unanswerable == 0.8
    assert result.refused_answerable <= 0.05
    assert refusal_rates(scores, answerable, result.threshold)[:2] == (0.8, result.refused_answerable)


def test_calibrate_without_out_of_scope_queries_refuses_nothing():
    result = calibrate([0.3, 0.4, 0.5], [True, True, True])
    assert result.refused_answerable == 0.0
    assert "no out-of-scope" in result.note


@pytest.fixture(scope="module")
def small_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    faq = root / "faq.md"
    faq.write_text(FAQ, "utf-8")
    cases = root / "cases.jsonl"
    write_jsonl(cases, CASES)
    index_dir, cache_dir = root / "index", root / "cache"
    build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    return faq, cases, index_dir, cache_dir


def test_calibration_is_stored_used_and_kept_by_rebuilds(small_index):
    faq, cases, index_dir, cache_dir = small_index
    result = calibrate_index(index_dir, cases)
    manifest = read_manifest(index_dir)
    assert manifest["answer_threshold"] == result.threshold
    assert manifest["calibration"]["cases"] == str(cases)
    assert Searcher.open(index_dir).threshold == result.threshold
    assert index_status(index_dir)["answer_threshold"] == result.threshold
    assert index_status(index_dir)["threshold_calibrated"] is True

    build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    assert read_manifest(index_dir)["answer_threshold"] == result.threshold

    other = replace(Settings(), search=replace(SearchSettings(), fusion="weighted", answer_threshold=0.123))
    # Searching under other scoring settings: the calibration does not apply, the fallback does.
    assert Searcher.open(index_dir, settings=other).threshold == 0.123
    assert index_status(index_dir, other.search)["threshold_calibrated"] is False
    assert index_status(index_dir, other.search)["threshold_source"] == "default"
    build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True, settings=other)
    rebuilt = read_manifest(index_dir)
    assert rebuilt["calibration"] is None, "a threshold calibrated under other scoring must not be kept"
    assert rebuilt["answer_threshold"] is None
    # Uncalibrated, the learned ranker's own threshold applies (the ranker of the index's model).
    assert Searcher.open(index_dir).threshold == load_ranker(model=rebuilt["model"]).answer_threshold
    assert index_status(index_dir)["threshold_source"] == "default"


def test_the_environment_override_is_honoured_by_search_and_status(small_index, monkeypatch):
    _, _, index_dir, _ = small_index
    monkeypatch.setenv(ENV_VAR, "0.875")
    assert Searcher.open(index_dir).threshold == 0.875
    status = index_status(index_dir)
    assert (status["answer_threshold"], status["threshold_source"]) == (0.875, "environment")
    # A value given by the caller (--threshold) beats the environment.
    assert Searcher.open(index_dir, threshold=0.5).threshold == 0.5
    proc = subprocess.run([sys.executable, "-m", "indexer", "status", "--json", "--index-dir", str(index_dir)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert json.loads(proc.stdout)["answer_threshold"] == 0.875


def test_a_bad_environment_threshold_is_a_one_line_error(small_index, monkeypatch):
    _, _, index_dir, _ = small_index
    monkeypatch.setenv(ENV_VAR, "high")
    with pytest.raises(ThresholdError, match=ENV_VAR):
        resolve({}, SearchSettings())
    proc = subprocess.run([sys.executable, "-m", "indexer", "search", "--index-dir", str(index_dir), "what is relu"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and ENV_VAR in lines[0], proc.stderr


@pytest.mark.parametrize("given", ["nan", "inf", "-inf"])
def test_a_threshold_that_is_not_finite_is_refused_in_one_line(small_index, given):
    _, _, index_dir, _ = small_index
    with pytest.raises(ThresholdError, match="not a finite number"):
        resolve({}, SearchSettings(), given=float(given))
    proc = subprocess.run([sys.executable, "-m", "indexer", "search", "--index-dir", str(index_dir),
                           "--threshold", given, "what is relu"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not a finite number" in lines[0], proc.stderr


def test_resolve_order_given_environment_calibrated_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    settings = SearchSettings()
    calibrated = {"answer_threshold": 0.3, "calibration": {"search_settings": fingerprint(settings)}}
    assert resolve(calibrated, settings, given=0.7).source == "given"
    assert (resolve(calibrated, settings).value, resolve(calibrated, settings).source) == (0.3, "calibrated")
    assert resolve({}, settings).value == load_ranker().answer_threshold
    stale = {"answer_threshold": 0.3, "calibration": {"search_settings": "something else"}}
    assert resolve(stale, settings).source == "default"
    monkeypatch.setenv(ENV_VAR, "0.4")
    assert (resolve(calibrated, settings).value, resolve(calibrated, settings).source) == (0.4, "environment")


def test_the_default_threshold_and_a_calibration_belong_to_the_index_model(monkeypatch):
    """Probabilities fitted on another model's cosines mean something else: each model's ranker has its own
    answer probability, and a threshold calibrated under one ranker does not carry over to another's."""
    from indexer.models import MINILM, MPNET

    monkeypatch.delenv(ENV_VAR, raising=False)
    settings = SearchSettings()
    own = load_ranker(model=MPNET).answer_threshold
    assert own != load_ranker(model=MINILM).answer_threshold
    assert resolve({"model": MPNET}, settings).value == own
    assert resolve({"model": MINILM}, settings).value == load_ranker(model=MINILM).answer_threshold
    calibrated = {"model": MINILM, "answer_threshold": 0.3,
                  "calibration": {"search_settings": fingerprint(settings, MINILM)}}
    assert resolve(calibrated, settings).source == "calibrated"
    assert resolve({**calibrated, "model": MPNET}, settings).source == "default"


def test_cli_calibrate_names_a_bad_expected_value(small_index, tmp_path):
    _, _, index_dir, _ = small_index
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "x", "expected": "No such question?"}) + "\n", "utf-8")
    proc = subprocess.run([sys.executable, "-m", "indexer", "calibrate", str(bad), "--index-dir", str(index_dir)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{bad}:1" in lines[0], proc.stderr


def test_only_scoring_settings_make_a_calibration_stale(tmp_path):
    base = SearchSettings()
    assert fingerprint(replace(base, top_k=20, answer_threshold=0.9)) == fingerprint(base)
    for change in ({"lexical_weight": 0.3}, {"passage_context": 0.0}, {"fusion": "rrf"},
                   {"kind_weights": {**base.kind_weights, "title": 0.5}}):
        assert fingerprint(replace(base, **change)) != fingerprint(base), change
    # Retraining the ranker changes the scores' scale too.
    retrained = load_ranker().to_dict()
    retrained["intercept"] += 0.5
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(retrained), "utf-8")
    assert fingerprint(replace(base, ranker=str(path))) != fingerprint(base)


def _calibrate_if_stale(*cases, index_dir, cache_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer", "calibrate", *map(str, cases), "--if-stale",
                           "--index-dir", str(index_dir), "--cache-dir", str(cache_dir)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_calibrate_if_stale_recalibrates_only_an_index_whose_calibration_no_longer_applies(small_index):
    """What `make app` runs on an index that is already there: after an upgrade ships another ranker the
    old calibration is stale, and the app must not go on with the fallback threshold."""
    _, cases, index_dir, cache_dir = small_index
    result = calibrate_index(index_dir, cases)
    calibrated = read_manifest(index_dir)

    proc = _calibrate_if_stale(cases, index_dir=index_dir, cache_dir=cache_dir)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout, proc.stderr
    assert read_manifest(index_dir) == calibrated, "a calibration that applies is left as it is"

    # As if calibrated under the previous version's ranker: the fingerprint no longer matches.
    update_manifest(index_dir, {"answer_threshold": 0.99,
                                "calibration": {**calibrated["calibration"], "search_settings": "an old ranker"}})
    assert current_calibration(index_dir) is None
    assert index_status(index_dir)["threshold_source"] == "default"
    proc = _calibrate_if_stale(cases, index_dir=index_dir, cache_dir=cache_dir)
    assert proc.returncode == 0 and proc.stdout.startswith("threshold "), proc.stderr
    assert "nothing to do" not in proc.stdout
    recalibrated = read_manifest(index_dir)
    assert recalibrated["answer_threshold"] == pytest.approx(result.threshold, abs=1e-4)  # ONNX vs torch
    assert recalibrated["calibration"]["search_settings"] == calibrated["calibration"]["search_settings"]
    assert index_status(index_dir)["threshold_source"] == "calibrated"

    # Never calibrated at all: calibrated too.
    update_manifest(index_dir, {"answer_threshold": None, "calibration": None})
    assert _calibrate_if_stale(cases, index_dir=index_dir, cache_dir=cache_dir).returncode == 0
    assert current_calibration(index_dir) == pytest.approx(result.threshold, abs=1e-4)


def test_calibrating_with_the_builds_onnx_export_gives_the_same_threshold(small_index):
    """The CLI calibrates with the query encoder searches use (the build's ONNX export in the cache
    folder, several times quicker than sentence-transformers): the threshold must not depend on it."""
    from indexer.onnx_encoder import OnnxEncoder, export_dir, export_problem

    _, cases, index_dir, cache_dir = small_index
    model = read_manifest(index_dir)["model"]
    assert export_problem(export_dir(model, cache_dir), model) is None, "the build made an export"
    assert isinstance(Searcher.open(index_dir, cache_dir=cache_dir).embedder, OnnxEncoder)
    by_torch = calibrate_index(index_dir, cases)
    by_onnx = calibrate_index(index_dir, cases, cache_dir=cache_dir)
    assert by_onnx.threshold == pytest.approx(by_torch.threshold, abs=1e-4)
    assert (by_onnx.refused_answerable, by_onnx.refused_unanswerable) == (
        by_torch.refused_answerable, by_torch.refused_unanswerable)


def test_calibrating_on_several_files_pools_their_queries(small_index, tmp_path):
    """`make app` calibrates on every labelled file about the shipped FAQ at once: a low quantile of the
    answerable scores needs more queries than one file holds to sit where it should."""
    _, cases, index_dir, _ = small_index
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_jsonl(first, CASES[:4] + CASES[6:7])
    write_jsonl(second, CASES[4:6] + CASES[7:])
    whole = calibrate_index(index_dir, cases)
    pooled = calibrate_index(index_dir, [first, second])
    assert (pooled.answerable, pooled.unanswerable) == (6, 3)
    assert read_manifest(index_dir)["calibration"]["cases"] == f"{first}, {second}"
    # The same queries in one file: the same threshold and rates.
    assert (whole.threshold, whole.refused_answerable, whole.refused_unanswerable) == (
        pooled.threshold, pooled.refused_answerable, pooled.refused_unanswerable)
    # Whether a calibration still applies to these files does not depend on the order they come in,
    # but it does on what they hold.
    assert current_calibration(index_dir, cases_paths=[second, first]) == pytest.approx(pooled.threshold)
    assert current_calibration(index_dir, cases_paths=[first]) is None
    assert current_calibration(index_dir) == pytest.approx(pooled.threshold)


def test_cli_calibrate_if_stale_recalibrates_when_the_labelled_files_change(small_index, tmp_path):
    _, _, index_dir, cache_dir = small_index
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_jsonl(first, CASES[:5])
    write_jsonl(second, CASES[5:])
    calibrate_index(index_dir, [first, second], cache_dir=cache_dir)

    proc = _calibrate_if_stale(second, first, index_dir=index_dir, cache_dir=cache_dir)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout, proc.stderr
    write_jsonl(second, CASES[5:] + [{"query": "how do I bake sourdough bread", "expected": None}])
    proc = _calibrate_if_stale(first, second, index_dir=index_dir, cache_dir=cache_dir)
    assert proc.returncode == 0 and "nothing to do" not in proc.stdout, proc.stderr
    assert "from 6 answerable and 4 out-of-scope queries" in proc.stdout
    assert read_manifest(index_dir)["calibration"]["unanswerable"] == 4

    missing = tmp_path / "missing.jsonl"
    proc = _calibrate_if_stale(first, missing, index_dir=index_dir, cache_dir=cache_dir)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and str(missing) in lines[0], proc.stderr


def test_cli_calibrate_names_the_file_and_line_of_a_bad_expected_value_among_several(small_index, tmp_path):
    _, cases, index_dir, _ = small_index
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, CASES[:2] + [{"query": "x", "expected": "No such question?"}])
    before = read_manifest(index_dir)
    proc = subprocess.run([sys.executable, "-m", "indexer", "calibrate", str(cases), str(bad),
                           "--index-dir", str(index_dir)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and f"{bad}:3" in lines[0], proc.stderr
    assert read_manifest(index_dir) == before, "a failed calibration leaves the index's own as it was"
