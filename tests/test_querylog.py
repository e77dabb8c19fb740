"""indexer/querylog.py: the query log, votes and suggestions in SQLite, and nothing personal in them."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from indexer.querylog import CastVote, QueryLog, default_db_path
from indexer.search import SearchResponse


def test_feedback_store_logs_queries_and_votes(tmp_path):
    store = QueryLog(tmp_path / "sub" / "app.sqlite")
    store.log_query("  what is   log loss ", top_id="loss", top_score=0.71, answered=True, n_results=5)
    store.log_response(SearchResponse(query="pizza", answered=False, results=[], threshold=0.2))
    store.record_vote("what is log loss", "loss", 1, rank=1)
    store.record_vote("what is log loss", "loss", -1, rank=1)
    store.record_vote("what is log loss", "other", -1, rank=2)
    with pytest.raises(ValueError):
        store.record_vote("q", "loss", 0)
    queries = store.queries()
    assert [(q["query"], q["top_id"], q["answered"], q["n_results"]) for q in queries] == [
        ("pizza", None, 0, 0), ("what is log loss", "loss", 1, 5)]
    assert queries[1]["top_score"] == pytest.approx(0.71)
    assert [(v["entry_id"], v["vote"], v["rank"]) for v in store.votes()] == [("other", -1, 2), ("loss", -1, 1),
                                                                                ("loss", 1, 1)]
    counts = store.vote_counts()
    assert (counts["loss"].up, counts["loss"].down, counts["other"].down) == (1, 1, 1)
    assert store.unanswered()[0]["query"] == "pizza"
    QueryLog(tmp_path / "sub" / "app.sqlite")  # reopening keeps the data
    assert len(store.queries()) == 2


def test_a_vote_can_be_withdrawn_or_replaced_and_only_that_vote_goes(tmp_path):
    store = QueryLog(tmp_path / "app.sqlite")
    other_session = store.record_vote("what is log loss", "loss", 1, rank=1)
    mine = store.record_vote("  what is   log loss ", "loss", 1, rank=1)
    assert mine == CastVote(mine.row_id, "what is log loss", "loss") and mine.row_id != other_session.row_id
    assert store.withdraw_vote(mine)
    assert not store.withdraw_vote(mine)  # already gone: nothing else is deleted
    assert [v["id"] for v in store.votes()] == [other_session.row_id]

    up = store.record_vote("what is log loss", "loss", 1, rank=1)
    down = store.record_vote("what is log loss", "loss", -1, rank=1, replaces=up)
    assert {(v["id"], v["vote"]) for v in store.votes()} == {(other_session.row_id, 1), (down.row_id, -1)}
    counts = store.vote_counts()["loss"]
    assert (counts.up, counts.down) == (1, 1)

    # A row id that does not match its query and entry is not somebody else's vote to delete.
    assert not store.withdraw_vote(CastVote(other_session.row_id, "another query", "loss"))
    assert not store.withdraw_vote(CastVote(other_session.row_id, "what is log loss", "other"))
    assert len(store.votes()) == 2


def test_feedback_store_keeps_nothing_personal(tmp_path):
    QueryLog(tmp_path / "app.sqlite")
    db = sqlite3.connect(tmp_path / "app.sqlite")
    tables = ("queries", "feedback", "suggestions")
    columns = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    db.close()
    assert columns == {"queries": ["id", "ts", "query", "top_id", "top_score", "answered", "n_results", "section"],
                       "feedback": ["id", "ts", "query", "entry_id", "vote", "rank"],
                       "suggestions": ["id", "ts", "query"]}


def test_suggestions_are_counted_per_question(tmp_path):
    store = QueryLog(tmp_path / "app.sqlite")
    for q in ("How do I bake bread?", "how do i bake bread?", "What is dropout?", "  x " * 400):
        store.record_suggestion(q)
    rows = store.suggestions()
    assert (rows[0]["query"].lower(), rows[0]["n"]) == ("how do i bake bread?", 2)
    assert {r["query"] for r in rows[1:]} == {"What is dropout?", ("x " * 250)[:500]}  # clipped like a query


def test_feedback_db_path_from_env(tmp_path, monkeypatch):
    monkeypatch.delenv("FAQ_APP_DB", raising=False)
    assert default_db_path(tmp_path) == tmp_path / "data" / "app.sqlite"
    monkeypatch.setenv("FAQ_APP_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path(tmp_path) == tmp_path / "x.sqlite"


def _age(db_path, table: str, days: int) -> None:
    """Backdate every row of `table` by `days` (rows are written with the current time)."""
    old = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
    with sqlite3.connect(db_path) as db:
        db.execute(f"UPDATE {table} SET ts = ?", (old,))


def test_rows_older_than_the_retention_are_deleted_on_open(tmp_path, monkeypatch):
    path = tmp_path / "app.sqlite"
    log = QueryLog(path)
    log.log_query("old question", top_id=None, top_score=None, answered=False, n_results=0)
    log.record_vote("old question", "e1", 1)
    log.record_suggestion("old question")
    for table in ("queries", "feedback", "suggestions"):
        _age(path, table, 100)
    log.log_query("new question", top_id="e1", top_score=0.9, answered=True, n_results=3)
    assert len(QueryLog(path, retention_days=365).queries()) == 2  # a longer retention keeps both
    monkeypatch.setenv("FAQ_QUERY_RETENTION_DAYS", "90")
    reopened = QueryLog(path)
    assert [r["query"] for r in reopened.queries()] == ["new question"]
    assert reopened.votes() == [] and reopened.suggestions() == []


def test_forget_wipes_before_a_date_or_everything(tmp_path):
    path = tmp_path / "app.sqlite"
    log = QueryLog(path)
    log.log_query("a", top_id=None, top_score=None, answered=False, n_results=0)
    _age(path, "queries", 10)
    log.log_query("b", top_id=None, top_score=None, answered=False, n_results=0)
    log.record_vote("b", "e1", -1)
    assert log.forget(before=datetime.now(timezone.utc) - timedelta(days=5)) == 1
    assert [r["query"] for r in log.queries()] == ["b"]
    assert log.forget() == 2 and log.queries() == [] and log.votes() == []


@pytest.mark.parametrize("value, days", [("30", 30), ("", 90), ("0", 90), ("-5", 90), ("soon", 90)])
def test_retention_days_from_the_environment(monkeypatch, value, days):
    from indexer.config import query_retention_days

    monkeypatch.setenv("FAQ_QUERY_RETENTION_DAYS", value)
    assert query_retention_days() == days


def test_a_log_deleted_while_in_use_is_created_again(tmp_path):
    path = tmp_path / "data" / "app.sqlite"
    log = QueryLog(path)
    log.log_query("first", top_id=None, top_score=None, answered=False, n_results=0)
    path.unlink()  # someone cleans data/ while the app runs
    log.log_query("second", top_id=None, top_score=None, answered=False, n_results=0)
    assert [r["query"] for r in log.queries()] == ["second"]
    (tmp_path / "data").rename(tmp_path / "moved")  # the folder too
    vote = log.record_vote("second", "e1", 1)
    assert log.withdraw_vote(vote) and log.votes() == []


def test_a_write_waits_for_another_writer_then_goes_through(tmp_path, monkeypatch):
    import threading

    import indexer.querylog as querylog

    monkeypatch.setattr(querylog, "BUSY_TIMEOUT", 0.05)  # SQLite's own wait, made short; the retries remain
    path = tmp_path / "app.sqlite"
    log = QueryLog(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")  # another session holds the write lock for a moment
    threading.Timer(0.15, lambda: other.execute("COMMIT")).start()
    log.record_suggestion("while locked")
    assert [r["query"] for r in log.suggestions()] == ["while locked"]
    other.close()


def test_a_search_kept_to_one_section_is_logged_with_it_and_an_older_log_gains_the_column(tmp_path):
    path = tmp_path / "app.sqlite"
    old = sqlite3.connect(path)  # a log written before searches could be kept to a section
    old.execute("CREATE TABLE queries (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, query TEXT NOT NULL, "
                "top_id TEXT, top_score REAL, answered INTEGER NOT NULL, n_results INTEGER NOT NULL)")
    old.execute("INSERT INTO queries (ts, query, top_id, top_score, answered, n_results) "
                "VALUES ('2026-11-20T10:00:00+00:00', 'how do I join', 'join', 0.9, 1, 3)")
    old.commit()
    old.close()
    store = QueryLog(path, retention_days=36500)
    store.log_query("docker port taken", top_id="ports", top_score=0.2, answered=False, n_results=2, section="ml")
    store.log_query("what is dropout", top_id=None, top_score=None, answered=False, n_results=0, section="")
    rows = {r["query"]: r["section"] for r in store.rows("queries")}
    assert rows == {"how do I join": None, "docker port taken": "ml", "what is dropout": None}
    QueryLog(path, retention_days=36500)  # opening it again adds nothing twice
    assert len(store.rows("queries")) == 3
