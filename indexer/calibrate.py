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
from .faq import FaqError
from .files import file_sha256
from .text import utc_now
from .threshold import Calibration, calibrate, calibrated_threshold, fingerprint


def top_scores(searcher: Any, cases: Sequence[Any]) -> list[float | None]:
    """Each case's top-1 score under `searcher` (None where the query found nothing)."""
    scores: list[float | None] = []
    for case in cases:
        results = searcher.search(case.query, top_k=1).results
        scores.append(results[0].score if results else None)
    return scores


def cases_digest(cases_paths: Sequence[Path]) -> str:
    """What a calibration was made on: one SHA-256 over each labelled file's own, in any order the
    files are given (a shell's glob may sort them differently from `make`'s)."""
    hashes = []
    for path in cases_paths:
        try:
            hashes.append(file_sha256(path))
        except OSError as exc:
            raise FaqError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return hashlib.sha256(" ".join(sorted(hashes)).encode()).hexdigest()


def current_calibration(index_dir: Path, settings: SearchSettings | None = None,
                        cases_paths: Sequence[Path] = ()) -> float | None:
    """The index's calibrated threshold if it still applies under `settings` (the defaults unless
    given), else None: never calibrated, or calibrated under another ranker or other scoring settings
    (a new version's ranker makes an old calibration stale), or, with `cases_paths`, on other labelled
    queries than these files hold now. Reads the manifest (and the files), no model."""
    from . import store

    manifest = store.read_manifest(Path(index_dir))
    threshold = calibrated_threshold(manifest, settings or SearchSettings())
    if threshold is not None and cases_paths and (
            (manifest.get("calibration") or {}).get("cases_sha256") != cases_digest(cases_paths)):
        return None
    return threshold


def calibrate_index(index_dir: Path, cases_paths: Path | Sequence[Path], *,
                    max_refused_answerable: float = 0.05, cache_dir: Path | None = None) -> Calibration:
    """Calibrate the index's threshold on labelled queries (one JSONL file or several); store it in the manifest.

    Several files are pooled, each query counting once: the threshold is a low quantile of the answerable
    queries' scores, which one file of a hundred queries places only roughly (README, "no good answer").
    With `cache_dir`, queries are encoded as the app and CLI encode them (the build's ONNX export there,
    if any), which is also several times quicker than sentence-transformers."""
    from . import store
    from .evaluate import read_cases, resolve_expected
    from .search import Searcher

    paths = [Path(cases_paths)] if isinstance(cases_paths, (str, Path)) else [Path(p) for p in cases_paths]
    if not paths:
        raise ValueError("calibrate needs at least one file of labelled queries")
    searcher = Searcher.open(index_dir, threshold=0.0, cache_dir=cache_dir)  # any threshold: only scores count
    cases, expected = [], []
    for path in paths:
        file_cases = read_cases(path)
        expected += resolve_expected(file_cases, searcher.stored.entries, str(path))
        cases += file_cases
    result = calibrate(top_scores(searcher, cases), [e is not None for e in expected],
                       max_refused_answerable=max_refused_answerable)
    store.update_manifest(index_dir, {"answer_threshold": result.threshold, "calibration": result.to_dict() | {
        "cases": ", ".join(map(str, paths)), "cases_sha256": cases_digest(paths),
        "search_settings": fingerprint(searcher.settings, searcher.stored.manifest.get("model")),
        "calibrated_at": utc_now()}})
    return result
