"""The fault suite (issue 12): the fetcher against a hostile local server, with short deadlines.

Each test is one kind of bad HTTP; all must end within their deadline, keep good
pages, refuse what must not be fetched, and report one reason, never a traceback.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

import indexer.fetch as fetch_module
from http_server import Response, article_html
from indexer.cache import PageCache
from indexer.config import FetchSettings
from indexer.fetch import Fetcher, internal_address
from indexer.records import Page

FAST = FetchSettings(per_host_delay=0.0, backoff_base=0.05, max_retries=0, connect_timeout=1.0, read_timeout=0.5,
                     page_deadline=1.5, allow_private=True)
ARTICLE = article_html("Momentum", ["Momentum keeps a running average of past gradients, which damps the "
                                    "oscillations of plain gradient descent across a narrow valley. " * 3] * 8)


@pytest.fixture
def cache(tmp_path) -> PageCache:
    return PageCache(tmp_path / "cache")


def fetcher(cache: PageCache, settings: FetchSettings = FAST, **kw) -> Fetcher:
    return Fetcher(settings, cache, **kw)


def fetch(url: str, cache: PageCache, settings: FetchSettings = FAST, **kw) -> Page:
    with fetcher(cache, settings, **kw) as f:
        return f.fetch(url)


# -- 1. deadlines ----------------------------------------------------------------------------------

def test_trickled_headers_end_at_the_page_deadline(server, cache):
    server.set_trickle("/trickle.html", interval=0.1)  # every read succeeds: read_timeout never fires
    started = time.monotonic()
    page = fetch(server.url("/trickle.html"), cache)
    elapsed = time.monotonic() - started
    assert page.status == "failed" and "deadline" in page.reason
    assert elapsed < FAST.page_deadline + 1.0


def test_build_fetch_deadline_fails_the_pages_left(server, cache):
    for i in range(4):
        server.set(f"/s{i}.html", Response(body=ARTICLE.encode(), delay=0.4))
    settings = replace(FAST, build_deadline=1.0, page_deadline=5.0, read_timeout=2.0)
    started = time.monotonic()
    with fetcher(cache, settings) as f:
        pages = f.fetch_all([server.url(f"/s{i}.html") for i in range(4)], workers=1)
    assert time.monotonic() - started < 2.5
    statuses = [p.status for p in pages.values()]
    assert "fetched" in statuses and "failed" in statuses
    assert any("fetch deadline" in p.reason for p in pages.values())


def test_hanging_robots_costs_one_timeout_for_the_whole_host(server, cache):
    server.set("/robots.txt", Response(body=b"User-agent: *\nAllow: /\n", content_type="text/plain", delay=5.0))
    for i in range(3):
        server.set_page(f"/p{i}.html", ARTICLE)
    started = time.monotonic()
    with fetcher(cache) as f:
        pages = f.fetch_all([server.url(f"/p{i}.html") for i in range(3)], workers=3)
    assert time.monotonic() - started < FAST.read_timeout * 2 + 1.0
    assert all(p.status == "failed" and "robots.txt" in p.reason for p in pages.values())
    assert server.hits("/robots.txt") == 1
    assert sum(server.hits(f"/p{i}.html") for i in range(3)) == 0  # unreachable robots.txt: disallow all


def test_trickled_robots_ends_at_the_deadline(server, cache):
    server.set_trickle("/robots.txt", interval=0.1)
    server.set_page("/a.html", ARTICLE)
    started = time.monotonic()
    page = fetch(server.url("/a.html"), cache)
    assert time.monotonic() - started < FAST.page_deadline + 1.0
    assert page.status == "failed" and "robots.txt" in page.reason


# -- 2. bounded memory -----------------------------------------------------------------------------

def test_gzip_bomb_page_is_cut_at_the_cap(server, cache):
    server.set_gzip("/bomb.html", b"<html>" + b"\0" * 50_000_000)  # 50 MB of zeros, ~50 kB on the wire
    page = fetch(server.url("/bomb.html"), cache, replace(FAST, max_bytes=200_000))
    assert page.status == "failed" and "larger than 200000 bytes" in page.reason


def test_gzip_bomb_robots_is_read_up_to_its_cap(server, cache):
    server.set_gzip("/robots.txt", b"User-agent: *\nDisallow: /private/\n" + b"#" * 30_000_000, "text/plain")
    server.set_page("/a.html", ARTICLE)
    server.set_page("/private/b.html", ARTICLE)
    with fetcher(cache, replace(FAST, robots_max_bytes=10_000)) as f:
        allowed, blocked = f.fetch(server.url("/a.html")), f.fetch(server.url("/private/b.html"))
    assert allowed.status == "fetched"
    assert blocked.status == "failed" and "robots" in blocked.reason


def test_huge_robots_is_truncated_not_read_whole(server, cache):
    server.set_robots("User-agent: *\nDisallow: /private/\n" + "# padding line\n" * 400_000)  # ~6 MB
    server.set_page("/private/b.html", ARTICLE)
    page = fetch(server.url("/private/b.html"), cache, replace(FAST, robots_max_bytes=50_000, page_deadline=5.0))
    assert page.status == "failed" and "robots" in page.reason


def test_well_formed_gzip_page_is_decoded(server, cache):
    server.set_gzip("/gz.html", ARTICLE.encode())
    page = fetch(server.url("/gz.html"), cache)
    assert page.status == "fetched" and page.body == ARTICLE.encode()


# -- 3. redirects, hop by hop ------------------------------------------------------------------------

def test_redirect_target_disallowed_by_robots_is_not_fetched(server, cache):
    server.set_robots("User-agent: *\nDisallow: /private/\n")
    server.set_redirect("/go", "/private/secret.html")
    server.set_page("/private/secret.html", ARTICLE)
    page = fetch(server.url("/go"), cache)
    assert page.status == "failed" and "robots" in page.reason
    assert server.hits("/private/secret.html") == 0


def test_redirects_to_one_host_keep_one_request_at_a_time(server, cache):
    for i in range(6):
        server.set_redirect(f"/r{i}", server.url(f"/t{i}.html", "localhost"))
        server.set(f"/t{i}.html", Response(body=ARTICLE.encode(), delay=0.1))
    with fetcher(cache) as f:
        pages = f.fetch_all([server.url(f"/r{i}") for i in range(6)], workers=6)
    assert all(p.status == "fetched" for p in pages.values())
    assert server.max_in_flight(f"localhost:{server.port}") == 1
    assert pages[server.url("/r0")].final_url == server.url("/t0.html", "localhost")


def test_redirect_to_an_unsupported_scheme_fails_that_page_only(server, cache):
    server.set_redirect("/ftp", "ftp://example.org/file.txt")
    server.set_page("/a.html", ARTICLE)
    with fetcher(cache) as f:
        bad, good = f.fetch(server.url("/ftp")), f.fetch(server.url("/a.html"))
    assert bad.status == "failed" and "unsupported scheme" in bad.reason
    assert good.status == "fetched"


# -- 4. internal addresses and credentials ---------------------------------------------------------------

PRIVATE = replace(FAST, allow_private=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_internal_addresses_are_refused_by_default(server, cache, host):
    server.set_page("/a.html", ARTICLE)
    page = fetch(server.url("/a.html", host), cache, PRIVATE)
    assert page.status == "refused" and "internal address" in page.reason and "allow-private" in page.reason
    assert server.hits() == 0


def test_metadata_address_is_refused_without_connecting(cache):
    started = time.monotonic()
    page = fetch("http://169.254.169.254/latest/meta-data/", cache, PRIVATE)
    assert page.status == "refused" and time.monotonic() - started < 1.0


def test_dns_rebinding_is_caught_at_connect(server, cache, monkeypatch):
    # The name check sees a public address; the connection still lands on 127.0.0.1.
    monkeypatch.setattr(fetch_module, "resolve", lambda name, port: ["93.184.216.34"])
    server.set_page("/a.html", ARTICLE)
    page = fetch(server.url("/a.html"), cache, PRIVATE)
    assert page.status == "refused" and "internal address" in page.reason
    assert server.hits() == 0


def test_allow_private_fetches_local_pages(server, cache):
    server.set_page("/a.html", ARTICLE)
    assert fetch(server.url("/a.html"), cache, replace(PRIVATE, allow_private=True)).status == "fetched"


def test_credentials_in_the_url_are_refused(server, cache):
    server.set_page("/a.html", ARTICLE)
    page = fetch(f"http://user:secret@127.0.0.1:{server.port}/a.html", cache)
    assert page.status == "refused" and "credentials" in page.reason and "secret" not in page.reason
    assert server.hits() == 0


def test_internal_address_classes():
    for address in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254", "::1", "fe80::1",
                    "fd00:ec2::254", "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1"]:
        assert internal_address(address), address
    for address in ["93.184.216.34", "2606:4700:4700::1111"]:
        assert not internal_address(address), address
