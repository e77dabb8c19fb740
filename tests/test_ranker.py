"""The learned ranker's file (indexer/ranker.json): loaded, applied, and refused with a clear error when bad."""

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
from indexer.features import FEATURES
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


def test_probabilities_follow_the_coefficients():
    r = ranker.load()
    rows = np.zeros((2, len(FEATURES)))
    lead = FEATURES.index("lead_dense")
    rows[0, lead], rows[1, lead] = 0.3, -0.3  # a clear leader and a clear runner-up
    p = r.probabilities(rows)
    assert ((0 < p) & (p < 1)).all()
    coef = dict(zip(r.features, r.coef))
    assert coef["lead_dense"] > 0 and p[0] > p[1], "leading the other entries must raise the probability"
    assert p[0] == pytest.approx(1 / (1 + np.exp(-r.logits(rows[:1])[0])))


def test_a_saved_ranker_reads_back_identically(tmp_path):
    r = ranker.load()
    path = tmp_path / "copy.json"
    r.save(path)
    again = ranker.load(path)
    np.testing.assert_array_equal(again.coef, r.coef)
    np.testing.assert_array_equal(again.mean, r.mean)
    assert again.intercept == r.intercept and again.features == r.features


def test_a_missing_ranker_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere.json"
    with pytest.raises(RankerError, match=r"nowhere\.json: cannot read the ranker file.*bench\.train_ranker"):
        ranker.load(missing)


@pytest.mark.parametrize("mangle, message", [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: [], "not a ranker file"),
    (lambda d: {**d, "format": "pickle"}, "not a ranker file"),
    (lambda d: {**d, "features": []}, "'features' must be a non-empty list"),
    (lambda d: {**d, "features": d["features"][:-1] + ["colour"]}, "unknown features colour"),
    (lambda d: {**d, "coef": d["coef"][:-1]}, "'coef' must be a list of"),
    (lambda d: {**d, "mean": ["a"] * len(d["features"])}, "'mean' must be a list of"),
    (lambda d: {**d, "scale": [0.0] * len(d["features"])}, "'scale' must be positive"),
    (lambda d: {**d, "intercept": "high"}, "'intercept' must be a finite number"),
    (lambda d: {**d, "answer_threshold": 1.5}, "'answer_threshold' is a probability"),
    (lambda d: {k: v for k, v in d.items() if k != "answer_threshold"}, "'answer_threshold' must be a finite"),
])
def test_a_malformed_ranker_file_is_a_clear_error_naming_it(tmp_path, mangle, message):
    path = write(tmp_path, mangle(shipped()))
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
    # The CLI's searches use the shipped ranker; a broken shipped file would be named the same way:
    script = ("import sys; from indexer import ranker; from pathlib import Path; "
              f"ranker.DEFAULT_PATH = Path({str(bad)!r}); from indexer.cli import main; "
              f"sys.argv = ['x', 'search', '--index-dir', {str(tmp_path / 'index')!r}, 'softmax']; main()")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad-ranker.json" in lines[0], proc.stderr
