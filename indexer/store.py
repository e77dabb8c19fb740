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
import threading
import time
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .config import FAISS_QUERY_THREADS, SCHEMA_VERSION, UNIT_CACHE_ROWS, IndexSettings
from .files import atomic_write
from .records import Document, Entry, Resource, Unit

if TYPE_CHECKING:  # faiss and numpy load only with an index: reading a manifest stays instant
    import faiss
    import numpy as np

    from .features import Centroid

log = logging.getLogger(__name__)

FAISS_FILE = "vectors.faiss"
META_FILE = "meta.sqlite"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.json"
#: The search side, made at build time so that opening an index reads rather than computes
#: (an index without them still opens: the searcher makes them in memory).
LEXICAL_DIR = "bm25"
LAYOUT_FILE = "layout.npz"
FOCUS_FILE = "focus.npy"
CENTROID_FILE = "centroid.npz"
KEEP_BUILDS = 2

_SCHEMA = """
CREATE TABLE entries (id TEXT PRIMARY KEY, position INTEGER, question TEXT, answer TEXT,
                      category TEXT, source TEXT, line INTEGER);
CREATE TABLE resources (entry_id TEXT, position INTEGER, url TEXT, title TEXT, kind TEXT, site TEXT);
CREATE INDEX resources_by_entry ON resources (entry_id, position);
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


def vector_index(vectors: np.ndarray, settings: IndexSettings) -> tuple[faiss.Index, dict[str, Any]]:
    """The FAISS index for these vectors (exact up to `settings.exact_max_units`, HNSW beyond) and its description."""
    import faiss
    import numpy as np

    n, dim = vectors.shape
    if n <= settings.exact_max_units:
        index, info = faiss.IndexFlatIP(dim), {"type": "flat"}
    else:
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
        info = {"type": "hnsw", "m": settings.hnsw_m, "ef_construction": settings.hnsw_ef_construction,
                "ef_search": settings.hnsw_ef_search}
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, info | {"exact_max_units": settings.exact_max_units}


def nearest(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`index.search` for a query's vector on FAISS_QUERY_THREADS OpenMP threads (config.py says why).

    OpenMP's thread count is per calling thread: it is set for this call and put back, so a
    build running on another thread (or later on this one) keeps FAISS's default.
    """
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(FAISS_QUERY_THREADS)
    try:
        return index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(before)


def write_build(build_dir: Path, *, entries: Sequence[Entry], units: Sequence[Unit], vectors: np.ndarray,
                documents: Sequence[Document], manifest: dict[str, Any], report: list[dict[str, Any]],
                index_settings: IndexSettings | None = None) -> None:
    import faiss

    if len(units) != vectors.shape[0]:
        raise ValueError(f"{len(units)} units but {vectors.shape[0]} vectors")
    index, manifest["faiss"] = vector_index(vectors, index_settings or IndexSettings())
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
    write_search_side(build_dir, entries, units, vectors)
    (build_dir / REPORT_FILE).write_text(json.dumps(report, indent=1, ensure_ascii=False), "utf-8")
    # The manifest goes last: a folder without one is an unfinished build.
    (build_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), "utf-8")


def write_search_side(build_dir: Path, entries: Sequence[Entry], units: Sequence[Unit], vectors: np.ndarray) -> None:
    """What a searcher would otherwise compute on open: the BM25 index, each unit's entry and kind, each
    entry's words, passage focus, the FAQ's centroid."""
    import numpy as np

    from .features import KINDS, Centroid, Layout, entry_words, passage_focus
    from .lexical import Lexical

    position = {e.id: i for i, e in enumerate(entries)}
    unit_entry = np.array([position[u.entry_id] for u in units], dtype=np.int64)
    layout = Layout.of(unit_entry, [u.kind for u in units], len(entries))
    np.savez(build_dir / LAYOUT_FILE, unit_entry=layout.unit_entry, unit_kind=layout.unit_kind,
             kinds=np.array(KINDS), entry_words=entry_words(entries))
    vectors = np.asarray(vectors, dtype=np.float32)
    np.save(build_dir / FOCUS_FILE, passage_focus(vectors, layout))
    save_centroid(build_dir, Centroid.of(vectors, layout))
    Lexical([u.lexical_text or u.text for u in units]).save(build_dir / LEXICAL_DIR)


def save_centroid(build_dir: Path, centroid: Centroid) -> None:
    import numpy as np

    np.savez(build_dir / CENTROID_FILE, vector=centroid.vector, unit_dot=centroid.unit_dot)


def _read_centroid(folder: Path, n_units: int, dimension: int) -> Centroid | None:
    """The build's saved centroid; None when it is absent or does not fit the index (the searcher then
    computes it)."""
    import numpy as np

    from .features import Centroid

    try:
        with np.load(folder / CENTROID_FILE) as saved:
            centroid = Centroid(saved["vector"].astype(np.float32), saved["unit_dot"].astype(np.float32))
    except (OSError, KeyError, ValueError):
        return None
    if centroid.vector.shape != (dimension,) or centroid.unit_dot.shape != (n_units,):
        return None
    return centroid


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


_ENTRY_COLUMNS = "id, question, answer, category, source, line"
_RESOURCE_COLUMNS = "entry_id, url, title, kind, site"


def _entries_from(entry_rows: Sequence[tuple], resource_rows: Sequence[tuple]) -> dict[str, Entry]:
    resources: dict[str, list[Resource]] = {}
    for entry_id, url, title, kind, site in resource_rows:
        resources.setdefault(entry_id, []).append(Resource(url=url, title=title, kind=kind, site=site))
    return {r[0]: Entry(id=r[0], question=r[1], answer=r[2], category=r[3], source=r[4], line=r[5],
                        resources=tuple(resources.get(r[0], ()))) for r in entry_rows}


class EntryTable(Mapping[str, Entry]):
    """The index's FAQ entries by id, in FAQ order, read from SQLite as they are asked for.

    Opening reads the ids only; a search reads the rows of the entries it shows, and iterating
    the values (the app's Browse view, evaluation) reads them all at once. At 100k entries this
    took opening a 1M-unit index from 1.5 s to 0.4-0.5 s.
    """

    def __init__(self, ids: Sequence[str], rows: Callable[[str, Sequence[Any]], list[tuple]]) -> None:
        self._ids = list(ids)
        self._known = frozenset(self._ids)
        self._rows = rows
        self._read: dict[str, Entry] = {}
        self._complete = False
        self._categories: list[str] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._known

    def __getitem__(self, key: str) -> Entry:
        entry = self._read.get(key)
        if entry is None:
            if key not in self._known:
                raise KeyError(key)
            entry = self.many([key])[0]
        return entry

    def many(self, ids: Sequence[str]) -> list[Entry]:
        """These entries (ids of this index) in order; the rows not read yet are read in one query per table."""
        missing = [i for i in dict.fromkeys(ids) if i not in self._read]
        if missing:
            marks = ",".join("?" * len(missing))
            self._read.update(_entries_from(
                self._rows(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id IN ({marks})", missing),
                self._rows(f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE entry_id IN ({marks}) "
                           "ORDER BY entry_id, position", missing)))
        return [self._read[i] for i in ids]

    def categories(self) -> list[str]:
        """Each entry's category, in index order: one column read, not the entries."""
        if self._categories is None:
            self._categories = [r[0] for r in self._rows("SELECT category FROM entries ORDER BY position", ())]
        return self._categories

    def _read_all(self) -> None:
        if not self._complete:
            everything = _entries_from(
                self._rows(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY position", ()),
                self._rows(f"SELECT {_RESOURCE_COLUMNS} FROM resources ORDER BY entry_id, position", ()))
            self._read.update(everything)
            self._complete = True

    def values(self) -> ValuesView[Entry]:
        self._read_all()
        return super().values()

    def items(self) -> ItemsView[str, Entry]:
        self._read_all()
        return super().items()


@dataclass
class StoredIndex:
    """An index opened from one consistent build: everything a search needs.

    Unit texts stay in SQLite until asked for (`unit`, `units_at`; `units` reads them all):
    a search needs only each unit's entry and kind (`unit_entry`, `unit_kind`) and the text
    of the few units it shows.
    """

    path: Path
    manifest: dict[str, Any]
    faiss_index: faiss.Index
    #: The FAQ entries' ids in order (read at open); `entries` reads their rows as they are asked for.
    entry_ids: InitVar[Sequence[str]]
    documents: dict[str, Document]
    #: Per unit (vector id): its entry's position in `entries`, and its kind (a code of features.KINDS).
    unit_entry: np.ndarray
    unit_kind: np.ndarray
    #: Per unit: `features.passage_focus`, when the build saved it.
    focus: np.ndarray | None = None
    #: The FAQ's centre (`features.Centroid`), when the build saved it.
    centroid: Centroid | None = None
    #: Per entry: the words of its own text (`features.entry_words`), when the build saved them.
    entry_words: np.ndarray | None = None
    _db: sqlite3.Connection | None = field(default=None, repr=False)
    _units: list[Unit] | None = field(default=None, repr=False)
    #: Unit rows read by `units_at`, oldest first, at most UNIT_CACHE_ROWS.
    _unit_rows: dict[int, Unit] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    entries: EntryTable = field(init=False)

    def __post_init__(self, entry_ids: Sequence[str]) -> None:
        self.entries = EntryTable(entry_ids, self._rows)  # its rows come through the index's one connection

    @property
    def build_id(self) -> str:
        return str(self.manifest.get("build_id", ""))

    @property
    def n_units(self) -> int:
        return len(self.unit_entry)

    @property
    def units(self) -> list[Unit]:
        """Every unit, read on first use."""
        if self._units is None:
            self._units = self._query("SELECT entry_id, kind, text, url FROM units ORDER BY vector_id")
        return self._units

    def units_at(self, positions: Sequence[int]) -> list[Unit]:
        """The units with these vector ids, in that order."""
        if self._units is not None:
            return [self._units[int(i)] for i in positions]
        wanted = [int(i) for i in positions]
        cached = self._unit_rows
        with self._lock:
            found = {i: cached[i] for i in wanted if i in cached}
        missing = sorted(set(wanted) - set(found))
        if missing:
            rows = self._query(f"SELECT vector_id, entry_id, kind, text, url FROM units WHERE vector_id IN "
                               f"({','.join('?' * len(missing))})", missing, with_id=True)
            found.update(rows)
            with self._lock:
                while cached and len(cached) + len(rows) > UNIT_CACHE_ROWS:
                    cached.pop(next(iter(cached)))  # the oldest row read
                cached.update(rows)
        return [found[i] for i in wanted]

    def forget_rows(self) -> None:
        with self._lock:
            self._unit_rows.clear()

    def unit(self, position: int) -> Unit:
        return self.units_at([position])[0]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:  # one connection, kept open (the build folder may be pruned meanwhile), any thread
            if self._db is None:
                self._db = _connect(self.path)
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise IndexError_(f"{self.path}: damaged metadata ({exc}); rebuild with: python -m indexer build")

    def _query(self, sql: str, params: Sequence[Any] = (), *, with_id: bool = False) -> list[Any]:
        rows = self._rows(sql, params)
        if with_id:
            return [(r[0], Unit(entry_id=r[1], kind=r[2], text=r[3], url=r[4])) for r in rows]
        return [Unit(entry_id=r[0], kind=r[1], text=r[2], url=r[3]) for r in rows]


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path / META_FILE}?mode=ro", uri=True, check_same_thread=False)


def _unit_layout(real: Path, db: sqlite3.Connection, entries: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Each unit's entry position and kind code, and each entry's words (`features.entry_words`): saved by
    the build, or (older index) the layout read from SQLite and the words left to the searcher (None)."""
    import numpy as np

    from .features import KINDS

    saved = real / LAYOUT_FILE
    if saved.exists():
        with np.load(saved) as data:
            if tuple(data["kinds"].tolist()) == KINDS:
                words = data["entry_words"].astype(np.int64) if "entry_words" in data.files else None
                if words is not None and len(words) != len(entries):
                    words = None
                return data["unit_entry"].astype(np.int64), data["unit_kind"].astype(np.int8), words
    position = {entry_id: i for i, entry_id in enumerate(entries)}
    code = {k: i for i, k in enumerate(KINDS)}
    rows = db.execute("SELECT entry_id, kind FROM units ORDER BY vector_id").fetchall()
    unknown = sorted({k for _, k in rows} - set(code))
    if unknown:
        raise IndexError_(f"{real}: unknown unit kinds {unknown}; rebuild with: python -m indexer build")
    return (np.array([position[e] for e, _ in rows], dtype=np.int64),
            np.array([code[k] for _, k in rows], dtype=np.int8), None)


def load(index_dir: Path) -> StoredIndex:
    import faiss
    import numpy as np

    real = Path(index_dir).resolve()  # pin one build, even if a new one is swapped in meanwhile
    manifest = read_manifest(real)
    try:
        # Memory-mapped: the vectors are read from the page cache as searches touch them, shared by every
        # process that opens this build, and never copied at open (a 1M-unit index opened in 7.6 s, now 0.04 s).
        vectors = faiss.read_index(str(real / FAISS_FILE), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        ef_search = manifest.get("faiss", {}).get("ef_search")
        if ef_search and hasattr(vectors, "hnsw"):
            vectors.hnsw.efSearch = int(ef_search)
        db = _connect(real)
    except (RuntimeError, sqlite3.Error) as exc:
        raise IndexError_(f"{index_dir}: damaged index ({exc}); rebuild with: python -m indexer build") from None
    try:
        entry_ids = [r[0] for r in db.execute("SELECT id FROM entries ORDER BY position")]
        documents = {r[0]: Document(url=r[0], title=r[1], description=r[2], author=r[3], date=r[4], site=r[5],
                                    method=r[6], thin=bool(r[7]))
                     for r in db.execute("SELECT url, title, description, author, date, site, method, thin FROM documents")}
        unit_entry, unit_kind, entry_words = _unit_layout(real, db, entry_ids)
        unit_rows = db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except (sqlite3.Error, KeyError) as exc:
        db.close()
        raise IndexError_(f"{index_dir}: damaged metadata ({exc}); rebuild with: python -m indexer build") from None
    if not vectors.ntotal == len(unit_entry) == unit_rows:
        db.close()
        raise IndexError_(f"{index_dir}: {vectors.ntotal} vectors but {unit_rows} units; rebuild the index")
    focus = None
    if (real / FOCUS_FILE).exists():
        focus = np.load(real / FOCUS_FILE, mmap_mode="r")
        if len(focus) != len(unit_entry):
            focus = None
    centroid = _read_centroid(real, len(unit_entry), vectors.d)
    return StoredIndex(path=real, manifest=manifest, faiss_index=vectors, entry_ids=entry_ids, documents=documents,
                       unit_entry=unit_entry, unit_kind=unit_kind, focus=focus, centroid=centroid,
                       entry_words=entry_words, _db=db)
