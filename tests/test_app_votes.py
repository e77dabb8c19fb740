"""Votes in the running app (AppTest): a thumb counts once, and un-clicking it takes the vote back."""

from __future__ import annotations

from app_fixtures import AppIndex, app_index  # noqa: F401
from test_app import app_env, card_ids, new_app, search  # noqa: F401
from indexer.querylog import QueryLog


def votes(db) -> list[tuple[str, str, int]]:
    return [(v["query"], v["entry_id"], v["vote"]) for v in QueryLog(db).votes()]


def test_a_vote_then_unvote_leaves_no_vote(app_env):
    at = search(new_app(), "what is log loss")
    top = card_ids(at)[0]
    at.feedback[0].set_value(1).run()
    assert votes(app_env) == [("what is log loss", top, 1)]
    at.feedback[0].set_value(None).run()
    assert not at.exception
    assert votes(app_env) == []
    assert any("taken back" in t.value for t in at.toast)


def test_thumbs_up_then_down_leaves_one_down_vote(app_env):
    at = search(new_app(), "what is log loss")
    top = card_ids(at)[0]
    at.feedback[0].set_value(1).run()
    at.feedback[0].set_value(0).run()
    assert votes(app_env) == [("what is log loss", top, -1)]
    at = search(at, "striped momentum")  # another query's answer is another vote
    other = card_ids(at)[0]
    at.feedback[0].set_value(1).run()
    assert sorted(votes(app_env)) == sorted([("what is log loss", top, -1), ("striped momentum", other, 1)])
    at.feedback[0].set_value(None).run()
    assert votes(app_env) == [("what is log loss", top, -1)]
