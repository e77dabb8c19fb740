"""indexer/insights.py: the query log summed up for the maintainer, questions grouped by meaning (real model)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from indexer.insights import PeriodError, distinct_wordings, gather, group_by_meaning, parse_since
from indexer.querylog import QueryLog

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)

# Four topics a deep-learning FAQ does not cover, each asked in several ways, plus two lone questions.
ASKED = {
    "dropout": ["what is dropout", "how does dropout work", "dropout regularization explained", "What is dropout?"],
    "attention": ["what is attention in transformers", "how do transformers use attention",
                  "self-attention explained"],
    "cuda": ["how to install cuda", "cuda install on ubuntu"],
    "norm": ["what is batch normalization", "layer norm vs batch norm"],
    "alone": ["what is L2 regularization"],
    "warmup": ["learning rate warmup", "why use a warmup schedule"],
}


def test_parse_since_takes_spans_and_dates():
    assert parse_since("30d", NOW) == NOW - timedelta(days=30)
    assert parse_since("12h", NOW) == NOW - timedelta(hours=12)
    assert parse_since(" 2W ", NOW) == NOW - timedelta(weeks=2)
    assert parse_since("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    for bad in ("yesterday", "30", "-3d", ""):
        with pytest.raises(PeriodError, match="--since"):
            parse_since(bad, NOW)


@pytest.mark.parametrize("model", ["test", "default"])
def test_questions_are_grouped_by_meaning_with_the_real_model(model, embedder):
    """One distance serves both models: the suite's MiniLM and the default all-mpnet-base-v2."""
    if model == "default":
        from indexer.config import DEFAULT_MODEL
        from indexer.embed import Embedder

        embedder = Embedder(DEFAULT_MODEL)
    asked = [(q, f"2026-11-{10 + i % 9:02d}T10:00:00+00:00") for i, q in
             enumerate(q for qs in ASKED.values() for q in qs)]
    wordings = distinct_wordings(asked)
    assert len(wordings) == len(asked) - 1  # "What is dropout?" is "what is dropout" again
    groups = group_by_meaning(asked, embedder.encode(wordings))
    by_topic = {topic: {g.name for g in groups if set(g.queries) & set(qs)} for topic, qs in ASKED.items()}
    for topic in ("dropout", "attention", "cuda", "norm", "warmup"):
        assert len(by_topic[topic]) == 1, (topic, by_topic[topic])  # each topic in one group...
    assert len({next(iter(v)) for v in by_topic.values()}) == len(ASKED)  # ...and no two topics together
    top = groups[0]
    assert top.size == 4 and top.name in ASKED["dropout"] and len(top.queries) == 3  # askings, not wordings
    assert top.newest == max(ts for q, ts in asked if q in ASKED["dropout"])
    assert [g.size for g in groups] == sorted((g.size for g in groups), reverse=True)


def test_group_by_meaning_edge_cases():
    assert group_by_meaning([], np.zeros((0, 3))) == []
    one = group_by_meaning([("only one", "2026-11-01T00:00:00+00:00")], np.array([[1.0, 0.0]]))
    assert [(g.name, g.size) for g in one] == [("only one", 1)]


def test_a_group_counts_the_sections_its_questions_were_asked_in():
    asked = [("what is dropout", "2026-11-01T00:00:00+00:00", "ml"),
             ("What is dropout?", "2026-11-02T00:00:00+00:00", "ml"),
             ("what is dropout", "2026-11-03T00:00:00+00:00", "deep-learning"),
             ("what is dropout", "2026-11-04T00:00:00+00:00", None)]  # over all sections: not counted
    (group,) = group_by_meaning(asked, np.array([[1.0, 0.0]]))
    assert (group.size, group.sections) == (4, {"ml": 2, "deep-learning": 1})
    assert group.sections_text() == "ml 2, deep-learning 1"
    plain = group_by_meaning([(q, ts) for q, ts, _ in asked], np.array([[1.0, 0.0]]))
    assert plain[0].sections == {} and plain[0].sections_text() == ""


def test_gather_reads_the_section_each_question_was_asked_in(tmp_path, embedder):
    log = QueryLog(tmp_path / "app.sqlite")
    log.log_query("docker port is already allocated", top_id=None, top_score=0.05, answered=False, n_results=3,
                  section="data-engineering")
    log.log_query("docker port is already allocated", top_id=None, top_score=0.05, answered=False, n_results=3)
    report = gather(log, datetime.now(timezone.utc) - timedelta(days=1), questions={}, threshold=0.2,
                    embed=embedder.encode)
    assert [(g.size, g.sections) for g in report.unanswered] == [(2, {"data-engineering": 1})]


def test_gather_sums_up_the_period(tmp_path, embedder):
    path = tmp_path / "app.sqlite"
    log = QueryLog(path)
    for q in ASKED["dropout"] + ASKED["cuda"]:
        log.log_query(q, top_id="e-loss", top_score=0.05, answered=False, n_results=5)
    log.log_query("what is log loss", top_id="e-loss", top_score=0.93, answered=True, n_results=5)
    log.log_query("log loss formula", top_id="e-loss", top_score=0.9, answered=True, n_results=5)
    log.log_query("bias term", top_id="e-bias", top_score=0.3, answered=True, n_results=5)  # unsure: "possible"
    log.log_query("???", top_id=None, top_score=None, answered=False, n_results=0)  # nothing to search for
    log.record_vote("what is log loss", "e-loss", 1)
    log.record_vote("log loss formula", "e-loss", -1)
    log.record_suggestion("what is dropout")
    log.record_suggestion("What is dropout?")
    log.log_query("old question", top_id=None, top_score=None, answered=False, n_results=5)
    old = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat(timespec="seconds")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE queries SET ts = ? WHERE query = 'old question'", (old,))

    report = gather(log, datetime.now(timezone.utc) - timedelta(days=30),
                    questions={"e-loss": "What is log loss?", "e-bias": "What is bias?"}, threshold=0.2,
                    embed=embedder.encode)
    assert report.queries == 10 and report.answered == 3 and report.answered_share == pytest.approx(0.3)
    assert sum(d.queries for d in report.per_day) == 10 and len(report.scores) == 9
    names = {g.name: g.size for g in report.unanswered}
    assert sum(names.values()) == 7 and max(names.values()) == 4  # 4 dropout + 2 cuda + 1 unsure bias
    assert "old question" not in str(report.to_dict()) and "???" not in names
    assert report.top_entries == [("e-loss", "What is log loss?", 2)]
    (loss_votes,) = report.votes
    assert (loss_votes.up, loss_votes.down, loss_votes.down_queries) == (1, 1, ["log loss formula"])
    assert report.suggestions[0][1] == 2
    assert report.to_dict()["answered_share"] == 0.3
