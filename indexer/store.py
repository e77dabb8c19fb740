"""The index on disk: FAISS vectors, SQLite metadata, manifest and report.

A build writes a complete new folder beside the index and then swaps it in by
replacing the `data/index` symlink (one atomic rename), so a reader or a crash
never sees half an index. Vector i in FAISS is row `vector_id = i` in the
`units` table: both are written from the same list in one pass, and the
counts are checked on open. Metadata is SQLite, never pickle.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .config import SCHEMA_VERSION
from .records import Document, Entry, Resource, Unit

if TYPE_CHECKING:  # faiss and numpy load only with an index: reading a manifest stays instant
    import faiss
    import numpy as np

log = logging.getLogger(__name__)

FAISS_FILE = "vectors.faiss"
META_FILE = "meta.sqlite"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.json"
KEEP_BUILDS = 2

_SCHEMA = """
CREATE TABLE entries (id TEXT PRIMARY KEY, position INTEGER, question TEXT, answer TEXT,
                      category TEXT, source TEXT, line INTEGER);
CREATE TABLE resources (entry_id TEXT, position INTEGER, url TEXT, title TEXT, kind TEXT, site TEXT);
CREATE TABLE units (vector_id INTEGER PRIMARY KEY, entry_id TEXT, kind TEXT, text TEXT, url TEXT, hash TEXT);
CREATE TABLE documents (url TEXT PRIMARY KEY, title TEXT, description TEXT, author TEXT, date TEXT,
                        site TEXT, method TEXT, thin INTEGER, chars INTEGER);
"""


class IndexError_(RuntimeError):
    """The index is missing, from another schema or model, or damaged: rebuild it."""


def builds_root(index_dir: Path) -> Path:
    return index_dir.parent / f".{index_dir.name}.builds"


def new_build_dir(index_dir: Path) -> Path:
    root = builds_root(index_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    path.mkdir()
    return path


def write_build(build_dir: Path, *, entries: Sequence[Entry], units: Sequence[Unit], vectors: np.ndarray,
                documents: Sequence[Document], manifest: dict[str, Any], report: list[dict[str, Any]]) -> None:
    import faiss
    import numpy as np

    if len(units) != vectors.shape[0]:
        raise ValueError(f"{len(units)} units but {vectors.shape[0]} vectors")
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(units):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    try:
        faiss.write_index(index, str(build_dir / FAISS_FILE))
    except RuntimeError as exc:  # faiss reports a failed write (disk full, ulimit -f) as a RuntimeError
        free = shutil.disk_usage(build_dir).free
        code = errno.ENOSPC if free < max(vectors.nbytes, 1 << 20) else errno.EIO
        raise OSError(code, f"cannot write the vectors ({str(exc).splitlines()[0][:120]})",
                      str(build_dir / FAISS_FILE)) from None
    db = sqlite3.connect(build_dir / META_FILE)
    try:
        with db:
            db.executescript(_SCHEMA)
            db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(e.id, i, e.question, e.answer, e.category, e.source, e.line) for i, e in enumerate(entries)])
            db.executemany("INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?)",
                           [(e.id, i, r.url, r.title, r.kind, r.site) for e in entries for i, r in enumerate(e.resources)])
            db.executemany("INSERT INTO units VALUES (?, ?, ?, ?, ?, ?)",
                           [(i, u.entry_id, u.kind, u.text, u.url, u.hash) for i, u in enumerate(units)])
            db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(d.url, d.title, d.description, d.author, d.date, d.site, d.method, int(d.thin), len(d.text))
                            for d in documents])
    finally:
        db.close()
    (build_dir / REPORT_FILE).write_text(json.dumps(report, indent=1, ensure_ascii=False), "utf-8")
    # The manifest goes last: a folder without one is an unfinished build.
    (build_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), "utf-8")


def publish(index_dir: Path, build_dir: Path) -> None:
    """Make `build_dir` the index in one atomic rename, then prune old builds."""
    index_dir = Path(index_dir)
    if index_dir.exists() and not index_dir.is_symlink():
        # An index folder from before symlinked builds (or made by hand): keep it as an old build.
        index_dir.rename(builds_root(index_dir) / f"legacy-{time.strftime('%Y%m%dT%H%M%S')}")
    link = index_dir.parent / f".{index_dir.name}.link-{os.getpid()}"
    link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(build_dir, index_dir.parent), link)
    os.replace(link, index_dir)
    prune(index_dir)


def prune(index_dir: Path) -> None:
    """Drop finished builds older than the newest KEEP_BUILDS, and abandoned partial ones."""
    root = builds_root(index_dir)
    current = index_dir.resolve()
    builds = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    kept = 0
    for path in builds:
        if path.resolve() == current:
            continue
        finished = (path / MANIFEST_FILE).exists()
        if finished and kept < KEEP_BUILDS - 1:
            kept += 1
            continue
        if not finished and time.time() - path.stat().st_mtime < 3600:
            continue  # perhaps another build still running
        shutil.rmtree(path, ignore_errors=True)


def read_manifest(index_dir: Path) -> dict[str, Any]:
    path = Path(index_dir) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise IndexError_(f"{index_dir}: no index here; build one with: python -m indexer build") from None
    except (OSError, ValueError) as exc:
        raise IndexError_(f"{path}: unreadable manifest ({exc}); rebuild with: python -m indexer build") from None
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise IndexError_(f"{index_dir}: index schema {manifest.get('schema_version')} is not {SCHEMA_VERSION}; "
                          "rebuild with: python -m indexer build")
    return manifest


def update_manifest(index_dir: Path, updates: dict[str, Any]) -> dict[str, Any]:
    """Merge `updates` into the current build's manifest, atomically (used by calibration)."""
    from .cache import atomic_write

    real = Path(index_dir).resolve()
    manifest = read_manifest(real) | updates
    atomic_write(real / MANIFEST_FILE, json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8"))
    return manifest


def previous_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest of the index a build is about to replace, if it is readable."""
    try:
        return read_manifest(Path(index_dir))
    except IndexError_:
        return None


def read_report(index_dir: Path) -> list[dict[str, Any]]:
    try:
        return json.loads((Path(index_dir) / REPORT_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return []


@dataclass
class StoredIndex:
    """An index read into memory: everything a search needs, from one consistent build."""

    path: Path
    manifest: dict[str, Any]
    faiss_index: faiss.Index
    entries: dict[str, Entry]
    units: list[Unit]
    documents: dict[str, Document]

    @property
    def build_id(self) -> str:
        return str(self.manifest.get("build_id", ""))


def load(index_dir: Path) -> StoredIndex:
    import faiss

    real = Path(index_dir).resolve()  # pin one build, even if a new one is swapped in meanwhile
    manifest = read_manifest(real)
    try:
        vectors = faiss.read_index(str(real / FAISS_FILE))
        db = sqlite3.connect(f"file:{real / META_FILE}?mode=ro", uri=True)
    except (RuntimeError, sqlite3.Error) as exc:
        raise IndexError_(f"{index_dir}: damaged index ({exc}); rebuild with: python -m indexer build") from None
    try:
        resources: dict[str, list[Resource]] = {}
        for entry_id, url, title, kind, site in db.execute(
                "SELECT entry_id, url, title, kind, site FROM resources ORDER BY entry_id, position"):
            resources.setdefault(entry_id, []).append(Resource(url=url, title=title, kind=kind, site=site))
        entries = {row[0]: Entry(id=row[0], question=row[1], answer=row[2], category=row[3], source=row[4],
                                 line=row[5], resources=tuple(resources.get(row[0], ())))
                   for row in db.execute("SELECT id, question, answer, category, source, line FROM entries ORDER BY position")}
        units = [Unit(entry_id=r[0], kind=r[1], text=r[2], url=r[3])
                 for r in db.execute("SELECT entry_id, kind, text, url FROM units ORDER BY vector_id")]
        documents = {r[0]: Document(url=r[0], title=r[1], description=r[2], author=r[3], date=r[4], site=r[5],
                                    method=r[6], thin=bool(r[7]))
                     for r in db.execute("SELECT url, title, description, author, date, site, method, thin FROM documents")}
    except sqlite3.Error as exc:
        raise IndexError_(f"{index_dir}: damaged metadata ({exc}); rebuild with: python -m indexer build") from None
    finally:
        db.close()
    if vectors.ntotal != len(units):
        raise IndexError_(f"{index_dir}: {vectors.ntotal} vectors but {len(units)} units; rebuild the index")
    return StoredIndex(path=real, manifest=manifest, faiss_index=vectors, entries=entries, units=units,
                       documents=documents)
