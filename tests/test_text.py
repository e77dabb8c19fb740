"""indexer/text.py: the text helpers the indexer and the web app share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from indexer.lexical import words
from indexer.text import MAX_QUERY_CHARS, clip_query, fold, site_name, utc_now


def test_fold_ignores_case_and_accents_for_bm25_and_the_browse_filter_alike():
    assert fold("Vidéo ÉCOLE naïve") == "video ecole naive"
    assert [w for w, _, _ in words("Naïve Bayes")] == ["naive", "bayes"]  # the BM25 side uses the same fold


def test_site_name_drops_www_and_tolerates_bad_urls():
    assert site_name("https://www.YouTube.com/watch?v=1") == "youtube.com"
    assert site_name("http://127.0.0.1:8000/page.html") == "127.0.0.1"
    assert site_name("http://[::1") == "" and site_name("not a url") == ""


def test_utc_now_is_iso_utc_to_the_second():
    stamp = datetime.fromisoformat(utc_now())
    assert stamp.utcoffset() == timedelta(0) and stamp.microsecond == 0
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 5


def test_clip_query_collapses_whitespace_and_cuts():
    assert clip_query("  what is \n log   loss ") == "what is log loss"
    assert clip_query(None) == "" and clip_query("") == ""
    assert clip_query("x" * (MAX_QUERY_CHARS + 50)) == "x" * MAX_QUERY_CHARS
