"""The fault suite (issue 12): the fetcher against a hostile local server, with short deadlines.

Each test is one kind of bad HTTP; all must end within their deadline, keep good
pages, refuse what must not be fetched, and report one reason, never a traceback.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial

import pytest

import indexer.fetch as fetch_module
from http_server import Response, article_html
from indexer.cache import PageCache
from indexer.config import FetchSettings
from indexer.extract import decode_body, extract
from indexer.fetch import Fetcher, internal_address
from indexer.quality import judge
from indexer.records import Page
from indexer.sniff import binary_reason

FAST = FetchSettings(per_host_delay=0.0, backoff_base=0.05, max_retries=0, connect_timeout=1.0, read_timeout=0.5,
                     page_deadline=1.5, allow_private=True)
ARTICLE = article_html("Momentum", ["Momentum keeps a running average of past gradients, which damps the "
                                    "oscillations of plain gradient descent across a narrow valley. " * 3] * 8)


@pytest.fixture
def cache(tmp_path) -> PageCache:
    return PageCache(tmp_path / "cache")


def fetcher(cache: PageCache, settings: FetchSettings = FAST, **kw) -> Fetcher:
    return Fetcher(settings, cache, judge=partial(judge, fetch=settings), **kw)


def fetch(url: str, cache: PageCache, settings: FetchSettings = FAST, **kw) -> Page:
    with fetcher(cache, settings, **kw) as f:
        return f.fetch(url)


# -- 1. deadlines ----------------------------------------------------------------------------------

def test_trickled_headers_end_at_the_page_deadline(server, cache):
    server.set_trickle("/trickle.html", interval=0.1)  # every read succeeds: read_timeout never fires
    page = fetch(server.url("/trickle.html"), cache)  # how long it took: bench/faults.py, "deadlines met"
    assert page.status == "failed" and "deadline" in page.reason


def test_build_fetch_deadline_fails_the_pages_left(server, cache):
    for i in range(4):
        server.set(f"/s{i}.html", Response(body=ARTICLE.encode(), delay=0.4))
    settings = replace(FAST, build_deadline=1.0, page_deadline=5.0, read_timeout=2.0)
    with fetcher(cache, settings) as f:
        pages = f.fetch_all([server.url(f"/s{i}.html") for i in range(4)], workers=1)
    statuses = [p.status for p in pages.values()]
    assert "fetched" in statuses and "failed" in statuses
    assert any("fetch deadline" in p.reason for p in pages.values())


def test_hanging_robots_costs_one_timeout_for_the_whole_host(server, cache):
    server.set("/robots.txt", Response(body=b"User-agent: *\nAllow: /\n", content_type="text/plain", delay=5.0))
    for i in range(3):
        server.set_page(f"/p{i}.html", ARTICLE)
    with fetcher(cache) as f:
        pages = f.fetch_all([server.url(f"/p{i}.html") for i in range(3)], workers=3)
    assert all(p.status == "failed" and "robots.txt" in p.reason for p in pages.values())
    assert server.hits("/robots.txt") == 1
    assert sum(server.hits(f"/p{i}.html") for i in range(3)) == 0  # unreachable robots.txt: disallow all


def test_trickled_robots_ends_at_the_deadline(server, cache):
    server.set_trickle("/robots.txt", interval=0.1)
    server.set_page("/a.html", ARTICLE)
    page = fetch(server.url("/a.html"), cache)
    assert page.status == "failed" and "robots.txt" in page.reason and "deadline" in page.reason


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
    page = fetch("http://169.254.169.254/latest/meta-data/", cache, PRIVATE)
    assert page.status == "refused" and "internal address" in page.reason


def test_dns_rebinding_is_caught_at_connect(server, cache, monkeypatch):
    # The name check sees a public address; the connection still lands on 127.0.0.1.
    monkeypatch.setattr(fetch_module, "resolve", lambda name, port, timeout=None: ["93.184.216.34"])
    server.set_page("/a.html", ARTICLE)
    page = fetch(server.url("/a.html"), cache, PRIVATE)
    assert page.status == "refused" and "internal address" in page.reason
    assert server.hits() == 0


def test_a_hanging_dns_lookup_ends_at_the_connect_timeout(cache, monkeypatch):
    import socket

    def hang(*args, **kwargs):
        time.sleep(5)
        raise socket.gaierror("too late")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    with fetcher(cache, PRIVATE) as f:
        pages = f.fetch_all(["http://slow-dns.example/a", "http://slow-dns.example/b"], workers=2)
    assert all(p.status == "failed" and "cannot resolve" in p.reason and
               f"no answer from DNS in {PRIVATE.connect_timeout:g}s" in p.reason for p in pages.values())


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


# -- 5. soft errors never replace good text; gone pages --------------------------------------------------

def _cache_good(server, cache, path="/a.html") -> tuple[str, bytes]:
    server.set_page(path, ARTICLE)
    url = server.url(path)
    assert fetch(url, cache).status == "fetched"
    return url, ARTICLE.encode()


@pytest.mark.parametrize("body, why", [
    (article_html("Access denied", ["You don't have permission to access this page."]), "block page"),
    (article_html("Just a moment...", ["Please complete the CAPTCHA to verify you are human."]), "block page"),
    (article_html("Page not found", ["Sorry, the page you are looking for does not exist."]), "soft 404"),
    (article_html("Momentum", ["Momentum is a method."]), "shrank"),
], ids=["access-denied", "captcha", "soft-404", "much-shorter"])
def test_soft_error_page_keeps_the_good_copy(server, cache, body, why):
    url, good = _cache_good(server, cache)
    server.set_page("/a.html", body)
    page = fetch(url, cache)
    assert page.status == "suspect" and page.body == good and "kept the copy" in page.reason
    assert why in page.reason
    assert cache.get(url).body == good


def test_block_page_without_a_cached_copy_is_not_indexed(server, cache):
    server.set_page("/blocked.html", article_html("Access denied", ["Request blocked."]))
    page = fetch(server.url("/blocked.html"), cache)
    assert page.status == "suspect" and not page.ok


HTTP_404_REFERENCE = article_html("404 Not Found", [
    "The HTTP 404 Not Found client error response status code indicates that the server cannot find the "
    "requested resource. Links that lead to a 404 page are often called broken or dead links."])
SOFT_404 = article_html("Page not found", ["Sorry, the page you are looking for does not exist."])


def test_a_short_page_about_404s_is_indexed_when_the_site_answers_real_404s(server, cache):
    """Its words read like a soft 404; a made-up page beside it answers 404, so the site does not hide
    missing pages behind 200 and the page is real."""
    server.set_page("/docs/status/404", HTTP_404_REFERENCE)
    page = fetch(server.url("/docs/status/404"), cache)
    assert page.status == "fetched" and page.ok
    assert cache.get(server.url("/docs/status/404")) is not None
    probes = [r["path"] for r in server.requests() if r["path"].startswith("/docs/status/faq-search-missing-")]
    assert len(probes) == 1, "one made-up page in the same folder"


def test_a_soft_404_site_answers_200_for_everything_and_its_not_found_page_is_not_indexed(server, cache):
    server.set_fallback(Response(body=SOFT_404.encode()))
    page = fetch(server.url("/blog/deleted-post"), cache)
    assert page.status == "suspect" and not page.ok and "soft 404" in page.reason
    assert cache.get(server.url("/blog/deleted-post")) is None


def test_changed_page_of_similar_length_replaces_the_copy(server, cache):
    url, _ = _cache_good(server, cache)
    server.set_page("/a.html", ARTICLE.replace("running average", "decaying sum"))
    assert fetch(url, cache).status == "fetched"


@pytest.mark.parametrize("status", [404, 410])
def test_gone_page_keeps_its_stale_copy_for_a_while(server, cache, status):
    url, good = _cache_good(server, cache)
    server.set_status("/a.html", status)
    page = fetch(url, cache)
    assert page.status == "gone" and page.body == good
    assert f"HTTP {status}" in page.reason and "last good copy fetched" in page.reason and "until" in page.reason
    old = fetch(url, cache, replace(FAST, gone_keep_days=0))
    assert old.status == "gone" and not old.ok and "no longer indexed" in old.reason
    assert cache.get(url).body == good  # the copy itself is never deleted


# -- 6. content sniffing -------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [bytes(range(256)) * 40, b"%PDF-1.7\n" + b"x" * 2000, b"\x89PNG\r\n\x1a\n" + b"\0" * 99],
                         ids=["random", "pdf", "png"])
def test_binary_served_as_html_is_refused(server, cache, body):
    server.set_page("/bin.html", body)
    page = fetch(server.url("/bin.html"), cache)
    assert page.status == "refused" and "binary" in page.reason
    assert cache.get(server.url("/bin.html")) is None


def test_cp1252_declared_utf8_is_decoded_from_the_bytes():
    html = ('<html><head><meta charset="utf-8"><title>Café</title></head><body><p>It’s naïve — café crème'
            "</p></body></html>").encode("cp1252")
    assert "It’s naïve — café crème" in decode_body(html)


def test_text_is_not_binary():
    assert binary_reason(ARTICLE.encode()) == ""
    assert binary_reason("Grüße ÿ".encode("latin-1")) == ""
    assert binary_reason("text".encode("utf-16")) == ""


def test_script_only_page_has_no_text():
    page = Page(url="http://x/", status="fetched", content_type="text/html",
                body=b"<html><head><script>var a = 1;</script></head><body><script>go()</script></body></html>")
    assert extract(page).text == ""


# -- 7. a real build reports what became of each page -------------------------------------------------------

@pytest.mark.slow  # two real builds (the model loads twice): ~10-20 s
def test_build_reports_suspect_gone_empty_refused_and_keeps_good_text(server, tmp_path):
    import json

    from indexer.build import build_index
    from indexer.config import Settings

    settings = Settings(fetch=replace(FAST, page_deadline=10.0, read_timeout=5.0))
    server.set_page("/blocked.html", ARTICLE)
    server.set_page("/moved.html", ARTICLE.replace("Momentum", "Nesterov"))
    server.set_page("/scripts.html", "<html><body><script>render()</script></body></html>")
    server.set_page("/binary.html", bytes(range(256)) * 40)
    faq = tmp_path / "faq.md"
    faq.write_text("**Q: What is momentum?**\n\n" + "".join(
        f"- [{p}]({server.url(p)})\n" for p in ("/blocked.html", "/moved.html", "/scripts.html", "/binary.html")),
        "utf-8")
    index_dir, cache_dir = tmp_path / "index", tmp_path / "cache"
    build_index([faq], index_dir=index_dir, cache_dir=cache_dir, settings=settings)
    server.set_page("/blocked.html", article_html("Access denied", ["You don't have permission to access this."]))
    server.set_status("/moved.html", 404)
    summary = build_index([faq], index_dir=index_dir, cache_dir=cache_dir, settings=settings)
    report = {r["url"].rsplit("/", 1)[1]: r for r in json.loads((index_dir / "report.json").read_text("utf-8"))}
    assert {name: r["status"] for name, r in report.items()} == {
        "blocked.html": "suspect", "moved.html": "gone", "scripts.html": "empty", "binary.html": "refused"}
    assert report["blocked.html"]["chars"] > 1000 and "block page" in report["blocked.html"]["reason"]
    assert report["moved.html"]["chars"] > 1000 and "last good copy fetched" in report["moved.html"]["reason"]
    assert (summary.pages_suspect, summary.pages_gone, summary.pages_empty, summary.pages_refused) == (1, 1, 1, 1)
    assert "1 suspect, 1 gone, 1 empty, 1 refused" in summary.line()


# -- 8. bad files and a full disk: one line, never a traceback -----------------------------------------------

def test_system_errors_become_one_line_with_the_fix():
    import errno
    import sqlite3
    from pathlib import Path

    from indexer.cli import system_error_line

    cases = {
        OSError(errno.ENOSPC, "No space left on device", "/data/index/x"): ("/data/index/x", "disk is full"),
        OSError(errno.EROFS, "Read-only file system", "/ro/index"): ("/ro/index", "writable"),
        PermissionError(errno.EACCES, "Permission denied", "/p"): ("/p", "writable"),
        OSError(errno.EFBIG, "File too large", "/big"): ("/big", "ulimit -f"),
        NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/x"): ("/f/x", "point --index-dir"),
        sqlite3.OperationalError("attempt to write a readonly database"): ("data/cache", "writable"),
        sqlite3.OperationalError("database or disk is full"): ("data/cache", "disk is full"),
        sqlite3.DatabaseError("file is not a database"): ("data/cache", "damaged"),
    }
    for exc, (where, fix) in cases.items():
        line = system_error_line(exc, [Path("data/cache")])
        assert "\n" not in line and line.startswith(where) and fix in line, line


def test_corrupt_vector_cache_is_moved_aside_and_rebuilt(tmp_path):
    import numpy as np

    from indexer.embed import VectorCache

    path = tmp_path / "vectors.sqlite"
    path.write_bytes(b"this is not a database at all" * 200)
    cache = VectorCache(path)
    cache.put_many("m", {"h": np.ones(4, dtype=np.float32)})
    assert set(cache.get_many("m", ["h"], 4)) == {"h"}
    cache.close()
    assert len(list(tmp_path.glob("vectors.sqlite.corrupt-*"))) == 1


def test_lines_of_brackets_and_hashes_parse_as_answer_text():
    """The lines that made the link pattern quadratic; how long they take: bench/faults.py."""
    from indexer.faq import parse_markdown

    for line in ["[" * 30000, "## a" + "#" * 30000 + "x", "[[a]" * 7500, "]" * 30000]:
        (entry,) = parse_markdown("**Q: What?**\n" + line + "\n", "faq.md")
        assert entry["question"] == "What?" and len(entry["answer"]) >= 30000, line[:10]


@pytest.mark.parametrize("line, message", [
    ('{"question": "q", "urls": ["https://a.org"], "titles": {"a": 1}}', "'titles' must be a list"),
    ('{"question": "q", "x": ' + "[" * 200_000 + "]" * 200_000 + "}", "nested too deeply"),
])
def test_bad_jsonl_is_one_line(tmp_path, line, message):
    from indexer.faq import FaqError, load_entries

    path = tmp_path / "faq.jsonl"
    path.write_text(line + "\n", "utf-8")
    with pytest.raises(FaqError, match=message) as info:
        load_entries([path])
    assert str(info.value).startswith(f"{path}:1: ")


def test_explicit_id_equal_to_another_entrys_slug_is_not_a_clash(tmp_path):
    from indexer.faq import FaqError, load_entries

    path = tmp_path / "faq.jsonl"
    path.write_text('{"question": "What is momentum?"}\n{"question": "Other", "id": "what-is-momentum"}\n', "utf-8")
    entries = load_entries([path])
    assert [e.id for e in entries] == ["what-is-momentum-2", "what-is-momentum"]
    path.write_text('{"question": "A", "id": "x"}\n{"question": "B", "id": "x"}\n', "utf-8")
    with pytest.raises(FaqError, match="duplicate id"):
        load_entries([path])


@pytest.mark.slow  # a real build in a subprocess (the model loads): ~10 s
def test_build_past_the_file_size_limit_is_one_line(tmp_path):
    import os
    import resource
    import subprocess
    import sys

    from conftest import REPO_ROOT

    faq = tmp_path / "faq.md"
    faq.write_text("**Q: What is momentum?**\n\n" + "A running average of past gradients. " * 400 + "\n", "utf-8")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    proc = subprocess.run([sys.executable, "-m", "indexer", "build", "--offline", "--faq", str(faq),
                           "--index-dir", str(tmp_path / "index"), "--cache-dir", str(tmp_path / "cache")],
                          cwd=REPO_ROOT, capture_output=True, text=True, preexec_fn=limit, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1, proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr[-2000:]
    assert "ulimit" in errors[0] and "previous index is untouched" in errors[0], errors[0]
    assert not (tmp_path / "index").exists()


def test_killed_export_leftovers_are_cleaned_on_the_next_build(tmp_path):
    import os
    import subprocess

    from indexer.onnx_encoder import clean_stale_exports

    out_dir = tmp_path / "onnx" / "model"
    out_dir.parent.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed = out_dir.with_name(f".model.{dead.pid}-abcd1234.tmp")
    killed_old = out_dir.with_name(f".model.{dead.pid}-abcd1234.old")
    running = out_dir.with_name(f".model.{os.getpid()}-abcd1234.tmp")
    legacy_old = out_dir.with_name(".model.abcd1234.tmp")
    for folder in (killed, killed_old, running, legacy_old):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"x" * 100)
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
    removed = clean_stale_exports(out_dir)
    assert sorted(removed) == sorted([killed, killed_old, legacy_old])
    assert running.is_dir()
