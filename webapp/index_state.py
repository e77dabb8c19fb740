"""The index as the maintainer view reports it: which build is current, its age, its sources, its failed pages.

`current_index` reads only the manifest (no FAISS, no model), so the app can
tell on every run, cheaply, whether a rebuild was swapped in.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from indexer import store
from indexer.links import not_indexed_as_fetched
from indexer.status import source_state

log = logging.getLogger(__name__)

BUILD_COMMAND = "python -m indexer build"


def current_index(index_dir: Path) -> tuple[tuple[str, str], dict[str, Any]]:
    """(token, manifest) of the current build, read once per run.

    The token, (resolved index folder, build id + threshold), changes when a rebuild is swapped
    in, or when `calibrate` sets a new threshold in the manifest.
    Raises `store.IndexError_` when there is no readable index.
    """
    real = Path(index_dir).resolve()
    manifest = store.read_manifest(real)
    build = str(manifest.get("build_id", "")) or _mtime_token(real)
    return (str(real), f"{build}@{manifest.get('answer_threshold')}"), manifest


def _mtime_token(path: Path) -> str:
    try:
        return str((path / store.MANIFEST_FILE).stat().st_mtime_ns)
    except OSError as exc:
        log.debug("no manifest time for %s: %s", path, exc)
        return ""


def resolve_source(path: str, bases: Sequence[Path] = ()) -> Path:
    """A manifest's source path: absolute as is; relative against the working folder, then `bases`."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    for base in bases:
        if (Path(base) / p).exists():
            return Path(base) / p
    return p


def source_changes(manifest: Mapping[str, Any], bases: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """Each FAQ source of the build: its path, where it is now, and whether it changed or went missing."""
    out = []
    for src in manifest.get("sources", []) or []:
        path = resolve_source(str(src.get("path", "")), bases)
        changed, missing = source_state(path, src.get("sha256"))
        out.append({"path": str(src.get("path", "")), "resolved": str(path), "changed": changed,
                    "missing": missing})
    return out


def built_at_text(iso: Any, now: datetime | None = None) -> str:
    """'2026-11-25 18:37 UTC (3 hours ago)' from the manifest's ISO time."""
    try:
        when = datetime.fromisoformat(str(iso))
    except (TypeError, ValueError):
        return "unknown"
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    now = now or datetime.now(timezone.utc)
    seconds = (now - when).total_seconds()
    if seconds < 90:  # a clock a little ahead counts as now too
        ago = "just now"
    elif seconds < 3600 * 1.5:
        ago = f"{round(seconds / 60)} minutes ago"
    elif seconds < 86400 * 1.5:
        ago = f"{round(seconds / 3600)} hours ago"
    else:
        ago = f"{round(seconds / 86400)} days ago"
    return f"{when:%Y-%m-%d %H:%M} UTC ({ago})"


def problem_pages(report: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Resources whose page is not indexed as fetched (`indexer.links.not_indexed_as_fetched`: failed, a
    paywalled teaser, a suspect or gone page kept from an earlier copy, ...), with the reason."""
    return [{"url": str(rec.get("url", "")), "title": str(rec.get("title", "") or ""),
             "status": str(rec.get("status")), "reason": str(rec.get("reason", "") or "no reason recorded")}
            for rec in not_indexed_as_fetched(report or [])]

