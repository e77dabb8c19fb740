"""--archive-fallback: a page that fails and was never cached is taken from a web archive's availability
API (a local stand-in server speaking the Wayback Machine's protocol), used, and reported `archived`."""

from __future__ import annotations

import json
from dataclasses import replace

from http_server import article_html
from indexer.build import build_index
from indexer.cache import PageCache
from indexer.config import FetchSettings, Settings
from indexer.fetch import Fetcher
from indexer.links import link_health
from indexer.store import read_report

PARAGRAPHS = ["Striped momentum alternates the momentum coefficient every other mini-batch.",
              "It was popular for a season and then vanished from the blog that introduced it.",
              "In practice it behaves like heavy-ball momentum with a slightly lower coefficient."]


def archive(server, *, available: bool = True) -> FetchSettings:
    """The stand-in: /wayback/available answers for /gone.html with a snapshot under /web/."""
    snapshot = server.url("/web/20200315120000/gone.html")
    closest = {"available": available, "url": snapshot, "timestamp": "20200315120000", "status": "200"}
    server.set_page("/wayback/available", json.dumps({"url": server.url("/gone.html"),
                                                      "archived_snapshots": {"closest": closest}}),
                    content_type="application/json")
    server.set_page("/web/20200315120000/gone.html", article_html("Striped momentum (archived)", PARAGRAPHS))
    server.set_status("/gone.html", 404)
    return FetchSettings(per_host_delay=0.0, max_retries=0, archive_fallback=True,
                         archive_api=server.url("/wayback/available"))


def test_a_failed_page_without_a_cached_copy_comes_from_the_archive(server, tmp_path):
    settings = archive(server)
    with Fetcher(settings, PageCache(tmp_path / "cache")) as fetcher:
        page = fetcher.fetch(server.url("/gone.html"))
    assert page.status == "archived" and b"vanished from the blog" in page.body
    assert page.fetched_at.startswith("2020-03-15") and "web archive's copy of 2020-03-15" in page.reason
    assert page.final_url.endswith("/web/20200315120000/gone.html")
    assert any(r["path"].startswith("/wayback/available?url=http") for r in server.requests())
    with Fetcher(replace(settings, archive_fallback=False), PageCache(tmp_path / "cache2")) as fetcher:
        assert fetcher.fetch(server.url("/gone.html")).status == "failed"  # only when asked for


def test_no_copy_in_the_archive_leaves_the_page_failed(server, tmp_path):
    settings = archive(server, available=False)
    with Fetcher(settings, PageCache(tmp_path / "cache")) as fetcher:
        assert fetcher.fetch(server.url("/gone.html")).status == "failed"
    server.set_page("/wayback/available", "not json at all", content_type="application/json")
    with Fetcher(settings, PageCache(tmp_path / "cache")) as fetcher:
        assert fetcher.fetch(server.url("/gone.html")).status == "failed"


def test_a_build_indexes_the_archived_copy_and_reports_it(server, tmp_path, embedder):
    from indexer.search import Searcher

    settings = replace(Settings(), fetch=archive(server))
    faq = tmp_path / "faq.md"
    faq.write_text(f"**Q: What is striped momentum?**\n\n- [The original post]({server.url('/gone.html')})\n\n"
                   "**Q: What is an epoch?**\n\nOne pass over the training data.\n", "utf-8")
    summary = build_index([faq], index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", settings=settings)
    assert summary.pages_archived == 1 and summary.pages_failed == 0
    (link,) = link_health(read_report(tmp_path / "index"))
    assert link.state == "archived" and link.last_good.startswith("2020-03-15")
    response = Searcher.open(tmp_path / "index").search("momentum coefficient changed every other mini-batch")
    assert response.results[0].id == "what-is-striped-momentum" and response.results[0].evidence.source == "resource"
