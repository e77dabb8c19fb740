"""Calibrate an index's "no good answer" threshold on labelled queries and store it in its manifest.

The rule and where a threshold comes from live in indexer/threshold.py; this
module only runs the index's searcher over the queries and records the result
(kept by later builds under the same model and scoring settings).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from .config import SearchSettings
from .text import utc_now
from .threshold import Calibration, calibrate, calibrated_threshold, fingerprint


def top_scores(searcher: Any, cases: Sequence[Any]) -> list[float | None]:
    """Each case's top-1 score under `searcher` (None where the query found nothing)."""
    scores: list[float | None] = []
    for case in cases:
        results = searcher.search(case.query, top_k=1).results
        scores.append(results[0].score if results else None)
    return scores


def current_calibration(index_dir: Path, settings: SearchSettings | None = None) -> float | None:
    """The index's calibrated threshold if it still applies under `settings` (the defaults unless
    given), else None: never calibrated, or calibrated under another ranker or other scoring settings
    (a new version's ranker makes an old calibration stale). Reads the manifest only, no model."""
    from . import store

    return calibrated_threshold(store.read_manifest(Path(index_dir)), settings or SearchSettings())


def calibrate_index(index_dir: Path, cases_path: Path, *, max_refused_answerable: float = 0.05,
                    cache_dir: Path | None = None) -> Calibration:
    """Calibrate the index's threshold on labelled queries and store it in its manifest.

    With `cache_dir`, queries are encoded as the app and CLI encode them (the build's ONNX export
    there, if any), which is also several times quicker than sentence-transformers."""
    from . import store
    from .evaluate import read_cases, resolve_expected
    from .search import Searcher

    searcher = Searcher.open(index_dir, threshold=0.0, cache_dir=cache_dir)  # any threshold: only scores count
    cases = read_cases(cases_path)
    expected = resolve_expected(cases, searcher.stored.entries, str(cases_path))
    result = calibrate(top_scores(searcher, cases), [e is not None for e in expected],
                       max_refused_answerable=max_refused_answerable)
    store.update_manifest(index_dir, {"answer_threshold": result.threshold, "calibration": result.to_dict() | {
        "cases": str(cases_path), "cases_sha256": hashlib.sha256(Path(cases_path).read_bytes()).hexdigest(),
        "search_settings": fingerprint(searcher.settings, searcher.stored.manifest.get("model")),
        "calibrated_at": utc_now()}})
    return result
