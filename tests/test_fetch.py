"""Fetcher + PageCache against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from http_server import Response, closed_port
from indexer.cache import PageCache
from indexer.config import PROJECT_NAME, FetchSettings
from indexer.fetch import Fetcher, parse_retry_after

PAGE = ("<html><head><title>Momentum</title></head><body><article><h1>Momentum</h1>"
        "<p>Momentum keeps a running average of past gradients.</p></article></body></html>")

#: Polite but quick: no pause between requests, short backoff.
FAST = FetchSettings(per_host_delay=0.0, backoff_base=0.05, max_retries=2, connect_timeout=2.0, read_timeout=5.0,
                     max_retry_after=5.0)


@pytest.fixture
def cache(tmp_path) -> PageCache:
    return PageCache(tmp_path / "cache")


def fetch(url: str, cache: PageCache, settings: FetchSettings = FAST, **kw):
    with Fetcher(settings, cache, **kw) as f:
        return f.fetch(url)


def page_requests(server, path):
    return [r for r in server.requests(path)]


# -- fetching and caching ------------------------------------------------------------------------

def test_page_is_fetched_and_cached(server, cache):
    server.set_page("/a.html", PAGE)
    url = server.url("/a.html")
    page = fetch(url, cache)
    assert page.status == "fetched" and page.ok
    assert page.body == PAGE.encode()
    assert page.http_status == 200 and page.content_type == "text/html"
    assert page.final_url == url and page.etag and page.last_modified and page.fetched_at
    files = sorted(p.suffix for p in (cache.root / "pages").rglob("*") if p.is_file())
    assert files == [".body", ".json"]
    stored = PageCache(cache.root).get(url)  # a fresh reader sees the same copy
    assert stored is not None and stored.body == PAGE.encode() and stored.etag == page.etag
    assert server.hits("/a.html") == 1


def test_second_fetch_is_a_conditional_get(server, cache):
    server.set_page("/a.html", PAGE)
    url = server.url("/a.html")
    first = fetch(url, cache)
    second = fetch(url, cache)  # a new Fetcher, as in the next build
    reqs = page_requests(server, "/a.html")
    assert len(reqs) == 2
    assert "if-none-match" not in reqs[0]["headers"]
    assert reqs[1]["headers"]["if-none-match"] == first.etag
    assert [r["status"] for r in reqs] == [200, 304]
    assert second.status == "cached" and second.body == PAGE.encode()
    assert "not modified" in second.reason


def test_conditional_get_by_last_modified_alone(server, cache):
    server.set_page("/lm.html", PAGE, etag=False)
    url = server.url("/lm.html")
    assert fetch(url, cache).status == "fetched"
    second = fetch(url, cache)
    reqs = page_requests(server, "/lm.html")
    assert reqs[1]["headers"].get("if-modified-since") == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert "if-none-match" not in reqs[1]["headers"]
    assert [r["status"] for r in reqs] == [200, 304]
    assert second.status == "cached"


def test_changed_page_is_downloaded_and_replaces_the_cached_copy(server, cache):
    server.set_page("/a.html", PAGE)
    url = server.url("/a.html")
    fetch(url, cache)
    new_body = PAGE.replace("running average", "decaying sum")
    server.set_page("/a.html", new_body)
    page = fetch(url, cache)
    assert server.statuses("/a.html") == [200, 200]
    assert page.status == "fetched" and page.body == new_body.encode()
    assert cache.get(url).body == new_body.encode()
    # Only the current body is kept on disk.
    assert len(list((cache.root / "pages").rglob("*.body"))) == 1


def test_refresh_downloads_again_without_conditions(server, cache):
    server.set_page("/a.html", PAGE)
    url = server.url("/a.html")
    fetch(url, cache)
    page = fetch(url, cache, refresh=True)
    reqs = page_requests(server, "/a.html")
    assert len(reqs) == 2
    assert "if-none-match" not in reqs[1]["headers"] and "if-modified-since" not in reqs[1]["headers"]
    assert reqs[1]["status"] == 200
    assert page.status == "fetched" and page.body == PAGE.encode()


def test_user_agent_names_the_project(server, cache):
    server.set_page("/a.html", PAGE)
    fetch(server.url("/a.html"), cache)
    agents = {r["headers"].get("user-agent", "") for r in server.requests()}
    assert agents and all(PROJECT_NAME in a for a in agents)


# -- failures, with and without a cached copy -----------------------------------------------------

def test_failure_keeps_last_good_copy(server, cache):
    server.set_page("/a.html", PAGE)
    url = server.url("/a.html")
    good = fetch(url, cache)
    server.fail("/a.html", status=500)
    page = fetch(url, cache)
    assert page.status == "cached" and page.ok
    assert page.body == PAGE.encode()
    assert "HTTP 500" in page.reason and good.fetched_at in page.reason
    # 5xx is retried (max_retries=2), then the cached copy is used; the cache itself is untouched.
    assert server.statuses("/a.html") == [200, 500, 500, 500]
    assert cache.get(url).body == PAGE.encode()


def test_robots_server_error_disallows_and_keeps_last_good_copy(server, cache):
    server.set_page("/a.html", PAGE)
    url = server.url("/a.html")
    fetch(url, cache)
    server.fail(status=500)  # the whole server, robots.txt included: RFC 9309 says disallow all
    page = fetch(url, cache)
    assert page.status == "cached" and page.body == PAGE.encode() and "robots.txt" in page.reason
    assert server.statuses("/a.html") == [200]


def test_failure_without_cache_is_failed_with_reason(server, cache):
    server.fail("/never.html", status=503)
    page = fetch(server.url("/never.html"), cache)
    assert page.status == "failed" and not page.ok and page.body == b""
    assert "HTTP 503" in page.reason
    assert server.hits("/never.html") == 1 + FAST.max_retries
    assert cache.get(server.url("/never.html")) is None


def test_client_error_is_not_retried(server, cache):
    page = fetch(server.url("/missing.html"), cache)
    assert page.status == "failed" and "HTTP 404" in page.reason
    assert server.hits("/missing.html") == 1


def test_429_retry_after_is_obeyed_then_page_fetched(server, cache):
    server.set_page("/busy.html", PAGE)
    server.set_sequence("/busy.html", [Response(status=429, body=b"slow down", content_type="text/plain",
                                                headers={"Retry-After": "1"})])
    page = fetch(server.url("/busy.html"), cache)
    assert page.status == "fetched" and page.body == PAGE.encode()
    assert server.statuses("/busy.html") == [429, 200]


def test_retry_after_beyond_the_cap_fails_without_waiting(server, cache):
    server.set_page("/busy.html", PAGE)
    server.set_sequence("/busy.html", [Response(status=429, body=b"slow down", content_type="text/plain",
                                                headers={"Retry-After": "120"})])
    page = fetch(server.url("/busy.html"), cache, settings=replace(FAST, max_retry_after=2.0))
    assert page.status == "failed"
    assert "429" in page.reason and "120" in page.reason
    assert server.hits("/busy.html") == 1  # not retried


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert 3000 < parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")


# -- redirects -----------------------------------------------------------------------------------

def test_redirect_chain_is_followed_and_final_url_recorded(server, cache):
    server.set_redirect("/old", "/older", status=301)
    server.set_redirect("/older", server.url("/final.html"), status=302)
    server.set_page("/final.html", PAGE)
    url = server.url("/old")
    page = fetch(url, cache)
    assert page.status == "fetched" and page.body == PAGE.encode()
    assert page.url == url and page.final_url == server.url("/final.html")
    assert cache.get(url).final_url == server.url("/final.html")


def test_redirect_loop_fails_with_reason(server, cache):
    server.set_redirect("/loop", "/loop")
    page = fetch(server.url("/loop"), cache)
    assert page.status == "failed"
    assert "redirect" in page.reason


def test_too_many_redirects_fails_with_reason(server, cache):
    for i in range(4):
        server.set_redirect(f"/r{i}", f"/r{i + 1}")
    server.set_page("/r4", PAGE)
    page = fetch(server.url("/r0"), cache, settings=replace(FAST, max_redirects=2))
    assert page.status == "failed"
    assert "redirect" in page.reason


def test_redirect_loop_does_not_break_fetch_all(server, cache):
    server.set_redirect("/loop", "/loop")
    server.set_page("/a.html", PAGE)
    with Fetcher(FAST, cache) as f:
        pages = f.fetch_all([server.url("/loop"), server.url("/a.html")])
    assert pages[server.url("/loop")].status == "failed"
    assert pages[server.url("/a.html")].status == "fetched"


# -- what is refused -----------------------------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True], ids=["declared-length", "chunked"])
def test_body_over_the_cap_fails(server, cache, chunked):
    server.set_huge("/huge.html", 300_000, chunked=chunked)
    page = fetch(server.url("/huge.html"), cache, settings=replace(FAST, max_bytes=100_000))
    assert page.status == "failed"
    assert "larger than 100000 bytes" in page.reason
    assert cache.get(server.url("/huge.html")) is None


def test_body_under_the_cap_is_kept_whole(server, cache):
    server.set_huge("/big.html", 50_000, chunked=True)
    page = fetch(server.url("/big.html"), cache, settings=replace(FAST, max_bytes=100_000))
    assert page.status == "fetched" and len(page.body) > 50_000


def test_pdf_is_refused_by_content_type(server, cache):
    server.set_page("/paper.pdf", b"%PDF-1.4 not really a pdf", "application/pdf")
    page = fetch(server.url("/paper.pdf"), cache)
    assert page.status == "failed"
    assert "content type" in page.reason and "application/pdf" in page.reason


def test_plain_text_is_accepted(server, cache):
    server.set_page("/notes.txt", "plain notes about momentum", "text/plain; charset=utf-8")
    page = fetch(server.url("/notes.txt"), cache)
    assert page.status == "fetched" and page.content_type == "text/plain"


def test_robots_txt_disallow_is_honoured(server, cache):
    server.set_robots("User-agent: *\nDisallow: /private/\n")
    server.set_page("/private/secret.html", PAGE)
    server.set_page("/public.html", PAGE)
    with Fetcher(FAST, cache) as f:
        blocked = f.fetch(server.url("/private/secret.html"))
        allowed = f.fetch(server.url("/public.html"))
    assert blocked.status == "failed" and "robots" in blocked.reason
    assert allowed.status == "fetched"
    assert server.hits("/private/secret.html") == 0
    assert server.hits("/robots.txt") == 1  # asked once per host per fetcher


# -- offline, dead hosts, timeouts ------------------------------------------------------------------

def test_offline_uses_the_cache_only(server, cache):
    server.set_page("/a.html", PAGE)
    url = server.url("/a.html")
    fetch(url, cache)
    before = server.hits()
    with Fetcher(FAST, cache, offline=True) as f:
        cached = f.fetch(url)
        missing = f.fetch(server.url("/never-fetched.html"))
    assert server.hits() == before
    assert cached.status == "cached" and cached.body == PAGE.encode() and "offline" in cached.reason
    assert missing.status == "failed" and "offline" in missing.reason


def test_unreachable_port_fails_and_host_is_not_retried(cache):
    port = closed_port()
    sent: list[str] = []
    with Fetcher(FAST, cache) as f:
        f.client.event_hooks["request"].append(lambda request: sent.append(str(request.url)))
        first = f.fetch(f"http://127.0.0.1:{port}/a.html")
        second = f.fetch(f"http://127.0.0.1:{port}/b.html")
    assert first.status == "failed" and "cannot connect" in first.reason
    assert second.status == "failed" and "cannot connect" in second.reason
    # One connection attempt (robots.txt) for the host; the dead host is then skipped.
    assert len(sent) == 1


def test_unknown_host_name_fails_with_reason(cache):
    sent: list[str] = []
    with Fetcher(FAST, cache) as f:
        f.client.event_hooks["request"].append(lambda request: sent.append(str(request.url)))
        pages = f.fetch_all(["http://nonexistent.invalid/a", "http://nonexistent.invalid/b"], workers=2)
    assert [p.status for p in pages.values()] == ["failed", "failed"]
    assert all("cannot connect" in p.reason for p in pages.values())
    assert len(sent) == 1


@pytest.mark.parametrize("where", ["before-headers", "during-body"])
def test_slow_page_times_out(server, cache, where):
    body = PAGE * 20
    if where == "before-headers":
        server.set_slow("/slow.html", body, delay=3.0)
    else:
        server.set_slow("/slow.html", body, body_delay=3.0)
    page = fetch(server.url("/slow.html"), cache, settings=replace(FAST, read_timeout=0.5, max_retries=0))
    assert page.status == "failed"
    assert "timed out" in page.reason


# -- fetch_all: politeness and results ---------------------------------------------------------------

def test_one_request_at_a_time_per_host(server, cache):
    paths = [f"/p{i}.html" for i in range(4)]
    for p in paths:
        server.set(p, Response(body=PAGE.encode(), delay=0.15))
    # Two host names for the same server: two hosts to the fetcher.
    urls = [server.url(p, host) for p in paths for host in ("127.0.0.1", "localhost")]
    done = []
    lock = threading.Lock()

    def on_done(page):
        with lock:
            done.append(page.url)

    with Fetcher(FAST, cache) as f:
        pages = f.fetch_all(urls, workers=4, on_done=on_done)
    assert sorted(pages) == sorted(urls) and sorted(done) == sorted(urls)
    assert all(p.status == "fetched" for p in pages.values())
    hosts = {r["host"] for r in server.requests()}
    assert hosts == {f"127.0.0.1:{server.port}", f"localhost:{server.port}"}
    for host in hosts:
        assert server.max_in_flight(host) == 1, host
    assert server.hits("/robots.txt") == 2


def test_fetch_all_returns_every_url_once(server, cache):
    server.set_page("/a.html", PAGE)
    urls = [server.url("/a.html"), server.url("/missing"), server.url("/a.html")]
    with Fetcher(FAST, cache) as f:
        pages = f.fetch_all(urls)
    assert list(pages) == [server.url("/a.html"), server.url("/missing")]
    assert server.hits("/a.html") == 1


def test_corrupt_cache_entry_is_ignored_not_trusted(server, cache):
    server.set_page("/a.html", PAGE)
    url = server.url("/a.html")
    fetch(url, cache)
    (body_file,) = (cache.root / "pages").rglob("*.body")
    body_file.write_bytes(b"tampered")
    assert cache.get(url) is None
    page = fetch(url, cache)  # no usable copy: a plain GET, not a conditional one
    assert "if-none-match" not in page_requests(server, "/a.html")[-1]["headers"]
    assert page.status == "fetched" and cache.get(url).body == PAGE.encode()


def test_undecodable_body_fails_with_reason(server, cache):
    # Declared gzip, but not gzip: the client cannot decode it; that is one failed page, not a crash.
    server.set("/gz.html", Response(body=b"this is not gzip data at all", headers={"Content-Encoding": "gzip"}))
    page = fetch(server.url("/gz.html"), cache, settings=replace(FAST, max_retries=0))
    assert page.status == "failed" and page.reason


@pytest.mark.shared
def test_real_page_is_served_and_cached_byte_for_byte(server, cache, readability_dir):
    served = server.serve_fixture("/wiki.html", "wikipedia-3")
    page = fetch(server.url("/wiki.html"), cache)
    assert page.status == "fetched" and page.body == served
    assert cache.get(server.url("/wiki.html")).body == (readability_dir / "wikipedia-3" / "source.html").read_bytes()


def test_revalidating_unchanged_pages_does_not_pause_between_them(server, cache, monkeypatch):
    import indexer.fetch as fetch_module

    for i in range(3):
        server.set_page(f"/p{i}.html", PAGE)
    urls = [server.url(f"/p{i}.html") for i in range(3)]
    polite = replace(FAST, per_host_delay=0.3)
    pauses: list[float] = []
    real_sleep = fetch_module.time.sleep
    monkeypatch.setattr(fetch_module.time, "sleep", lambda s: pauses.append(s) or real_sleep(s))
    with Fetcher(polite, cache) as f:
        assert all(p.status == "fetched" for p in f.fetch_all(urls, workers=1).values())
    downloads = len(pauses)
    assert downloads == 3  # before each page after robots.txt
    pauses.clear()
    with Fetcher(polite, cache) as f:  # the next build: every page answers 304
        pages = f.fetch_all(urls, workers=1)
    assert all(p.reason == "not modified since last fetch" for p in pages.values())
    assert all(server.hits(f"/p{i}.html") == 2 for i in range(3))
    assert len(pauses) == 1  # after robots.txt only; none between the 304s


def test_a_robots_txt_redirected_to_another_host_waits_for_that_hosts_turn(server, cache):
    """127.0.0.1's robots.txt redirects to localhost's, whose pages are slow: the redirected request is
    made under localhost's one-request-at-a-time rule, not beside one of its pages."""
    paths = [f"/p{i}.html" for i in range(3)]
    for p in paths:
        server.set(p, Response(body=PAGE.encode(), delay=0.3))
    local = f"localhost:{server.port}"
    server.set_redirect("/robots.txt", server.url("/robots-shared.txt", "localhost"))
    server.set("/robots-shared.txt", Response(body=b"User-agent: *\nAllow: /\n", content_type="text/plain",
                                              delay=0.3))
    # localhost's pages first: its worker is busy with them when 127.0.0.1's robots.txt redirects there
    urls = [server.url(p, "localhost") for p in paths] + [server.url("/p0.html", "127.0.0.1")]
    with Fetcher(FAST, cache) as f:
        pages = f.fetch_all(urls, workers=4)
    assert all(p.status == "fetched" for p in pages.values()), {u: p.reason for u, p in pages.items()}
    assert any(r["host"] == local and r["path"] == "/robots-shared.txt" for r in server.requests())
    assert server.max_in_flight(local) == 1
