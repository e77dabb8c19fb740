"""What learners asked and which answers helped: a small SQLite log, written by the web app and read
by the maintainer (the app's Maintainer view, `python -m indexer insights` and `forget`).

Three tables: `queries` (one row per search: the query, its top entry and score,
whether the FAQ answered it, how many results), `feedback` (a thumbs up or
down on one result of one query) and `suggestions` (a question the FAQ did not
answer that a learner asked the maintainer to add). Nothing personal is stored: no IP address,
no user or session id, no browser details; only the query text, which is what
the feedback is about, cut to `indexer.text.MAX_QUERY_CHARS`.

A vote can be taken back: the app keeps, in the session's own state, the row id
of each vote it cast (`CastVote`); un-clicking the thumb deletes that row, and
switching thumbs replaces it, so one learner's click is at most one vote.

Rows are kept `config.QUERY_RETENTION_DAYS` days (90; `FAQ_QUERY_RETENTION_DAYS`): older ones are
deleted each time the log is opened, and `forget` deletes sooner on demand.

Each write is one short transaction on its own connection, so Streamlit's
per-session threads can share one `QueryLog` without locking.
The path defaults to `data/app.sqlite` (git-ignored); `FAQ_APP_DB` overrides it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .config import query_retention_days
from .text import clip_query, utc_now

if TYPE_CHECKING:  # only the type: the search module loads numpy, FAISS and BM25
    from .search import SearchResponse

DEFAULT_DB = Path("data/app.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    query TEXT NOT NULL,
    top_id TEXT,
    top_score REAL,
    answered INTEGER NOT NULL,
    n_results INTEGER NOT NULL,
    section TEXT
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    query TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    rank INTEGER
);
CREATE INDEX IF NOT EXISTS feedback_entry ON feedback (entry_id);
CREATE TABLE IF NOT EXISTS suggestions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    query TEXT NOT NULL
);
"""
log = logging.getLogger(__name__)
T = TypeVar("T")
#: Seconds a write waits for another writer's lock (SQLite's busy timeout), and how many times it is then
#: tried again (after 0.1 s, 0.2 s, 0.4 s) before the error reaches the app, which says it was not saved.
BUSY_TIMEOUT = 5.0
BUSY_RETRIES = 3
#: Every table of the log (all rows carry `ts`, an ISO 8601 UTC time).
_TABLES = ("queries", "feedback", "suggestions")


def default_db_path(root: Path | None = None) -> Path:
    """`FAQ_APP_DB` if set, else data/app.sqlite (under `root` when given)."""
    value = os.environ.get("FAQ_APP_DB")
    if value:
        return Path(value)
    return (root / DEFAULT_DB) if root else DEFAULT_DB


@dataclass(frozen=True)
class CastVote:
    """A vote as the session that cast it remembers it: enough to take it back, nothing about the voter."""

    row_id: int
    query: str
    entry_id: str


@dataclass(frozen=True)
class VoteCount:
    entry_id: str
    up: int
    down: int


class QueryLog:
    """The app's query log and per-result votes in one SQLite file; the schema is created on open."""

    def __init__(self, path: Path | str, *, retention_days: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The default rollback journal, not WAL: no -wal/-shm files left beside the (git-ignored) database.
        self._create()
        days = query_retention_days() if retention_days is None else retention_days
        self.forget(before=datetime.now(timezone.utc) - timedelta(days=days))

    def forget(self, before: datetime | None = None) -> int:
        """Delete every query, vote and suggestion older than `before` (all of them when None); how many rows."""
        cutoff = None if before is None else before.astimezone(timezone.utc).isoformat(timespec="seconds")
        where, params = ("", ()) if cutoff is None else (" WHERE ts < ?", (cutoff,))
        return self._transaction(
            lambda db: sum(db.execute(f"DELETE FROM {table}{where}", params).rowcount for table in _TABLES))

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)
            # A log written before searches could be kept to one section (course): add the column, NULL
            # (all sections) for the queries already there.
            if "section" not in {row[1] for row in db.execute("PRAGMA table_info(queries)")}:
                db.execute("ALTER TABLE queries ADD COLUMN section TEXT")

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(db)` in one transaction. A database deleted or emptied while the app runs is created again;
        one still locked after the busy timeout (another writer) is tried again a few times."""
        for attempt in range(BUSY_RETRIES + 1):
            try:
                with closing(self._connect()) as db, db:
                    return work(db)
            except sqlite3.OperationalError as exc:
                message = str(exc).lower()
                if ("no such table" in message or "unable to open" in message) and attempt == 0:
                    log.warning("%s is gone or empty (deleted while in use?); creating it again", self.path)
                    self._create()
                elif ("locked" in message or "busy" in message) and attempt < BUSY_RETRIES:
                    time.sleep(0.1 * 2 ** attempt)
                else:
                    raise
        raise AssertionError("unreachable")

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._transaction(lambda db: int(db.execute(sql, params).lastrowid or 0))

    # -- writes ---------------------------------------------------------------
    def log_query(self, query: str, *, top_id: str | None, top_score: float | None, answered: bool,
                  n_results: int, section: str | None = None) -> int:
        return self._write(
            "INSERT INTO queries (ts, query, top_id, top_score, answered, n_results, section) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (utc_now(), clip_query(query), top_id, None if top_score is None else float(top_score), int(bool(answered)),
             int(n_results), section or None))

    def log_response(self, response: SearchResponse, section: str | None = None) -> int:
        """Log one search as the searcher returned it: the query, its top result, whether answered, and the
        section (course) it was kept to (None: all)."""
        top = response.results[0] if response.results else None
        return self.log_query(response.query, top_id=top.id if top else None, top_score=top.score if top else None,
                              answered=response.answered, n_results=len(response.results), section=section)

    def record_vote(self, query: str, entry_id: str, vote: int, *, rank: int | None = None,
                    replaces: CastVote | None = None) -> CastVote:
        """Store a vote; `replaces` (the same session's earlier vote on this result) goes in the same
        transaction, so changing thumbs up to down leaves one vote, never two or none."""
        if vote not in (1, -1):
            raise ValueError(f"vote must be +1 or -1, not {vote!r}")
        query = clip_query(query)

        def cast(db: sqlite3.Connection) -> int:
            if replaces is not None:
                self._delete_vote(db, replaces)
            return int(db.execute("INSERT INTO feedback (ts, query, entry_id, vote, rank) VALUES (?, ?, ?, ?, ?)",
                                  (utc_now(), query, str(entry_id), int(vote), rank)).lastrowid or 0)

        return CastVote(self._transaction(cast), query, str(entry_id))

    def withdraw_vote(self, vote: CastVote) -> bool:
        """Delete a vote the session cast (the thumb un-clicked); False when it was already gone."""
        return self._transaction(lambda db: self._delete_vote(db, vote))

    @staticmethod
    def _delete_vote(db: sqlite3.Connection, vote: CastVote) -> bool:
        # The row id alone is not trusted: the query and entry must match too (a reset database reuses ids).
        cur = db.execute("DELETE FROM feedback WHERE id = ? AND query = ? AND entry_id = ?",
                         (int(vote.row_id), clip_query(vote.query), str(vote.entry_id)))
        return cur.rowcount > 0

    def record_suggestion(self, query: str) -> int:
        """A learner's "add this question to the FAQ" (asked where the FAQ had no good answer)."""
        return self._write("INSERT INTO suggestions (ts, query) VALUES (?, ?)", (utc_now(), clip_query(query)))

    # -- reads ----------------------------------------------------------------
    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        def rows(db: sqlite3.Connection) -> list[dict[str, Any]]:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, params)]

        return self._transaction(rows)

    def rows(self, table: str, since: str = "") -> list[dict[str, Any]]:
        """Every row of `table` (queries, feedback, suggestions) written at or after `since` (ISO UTC), oldest first."""
        if table not in _TABLES:
            raise ValueError(f"no table {table!r} in the query log (tables: {', '.join(_TABLES)})")
        return self._read(f"SELECT * FROM {table} WHERE ts >= ? ORDER BY id", (since,))

    def queries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest logged queries, newest first."""
        return self._read("SELECT * FROM queries ORDER BY id DESC LIMIT ?", (limit,))

    def votes(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest votes, newest first."""
        return self._read("SELECT * FROM feedback ORDER BY id DESC LIMIT ?", (limit,))

    def vote_counts(self) -> dict[str, VoteCount]:
        rows = self._read("SELECT entry_id, SUM(vote = 1) AS up, SUM(vote = -1) AS down FROM feedback "
                          "GROUP BY entry_id")
        return {r["entry_id"]: VoteCount(r["entry_id"], int(r["up"]), int(r["down"])) for r in rows}

    def suggestions(self, limit: int = 100) -> list[dict[str, Any]]:
        """Suggested questions, most asked first."""
        return self._read("SELECT query, COUNT(*) AS n, MAX(ts) AS last FROM suggestions "
                          "GROUP BY lower(query) ORDER BY n DESC, last DESC LIMIT ?", (limit,))

    def unanswered(self, limit: int = 50) -> list[dict[str, Any]]:
        """Questions the FAQ could not answer, most asked first: what to add to it next."""
        return self._read("SELECT query, COUNT(*) AS n, MAX(ts) AS last FROM queries WHERE answered = 0 "
                          "GROUP BY lower(query) ORDER BY n DESC, last DESC LIMIT ?", (limit,))
