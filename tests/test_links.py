"""Link health (indexer/links.py, `faq-search links`): every link's state from two real builds against a
local server whose answers change in between."""

from __future__ import annotations

import json

from indexer.build import build_index
from indexer.config import Settings
from indexer.links import link_health, state_of
from indexer.store import read_report
from test_cli import run

PARAGRAPHS = ["Momentum keeps a running average of past gradients, so steps follow the long-run slope.",
              "Nesterov's variant looks ahead before it computes the gradient, which damps oscillation.",
              "With a coefficient near 0.9 the average spans about ten steps of training."]


def test_states_from_report_records():
    base = {"url": "https://a.example/x", "reason": ""}
    assert state_of({**base, "status": "fetched", "final_url": "https://a.example/x/"}) == "ok"
    assert state_of({**base, "status": "fetched", "final_url": "https://b.example/y"}) == "redirected"
    assert state_of({**base, "status": "failed", "reason": "HTTP 404"}) == "dead"
    assert state_of({**base, "status": "gone", "reason": "HTTP 410: the page is gone"}) == "dead"
    assert state_of({**base, "status": "failed", "reason": "HTTP 503"}) == "failing"
    assert state_of({**base, "status": "failed", "reason": "cannot connect"}) == "failing"
    assert state_of({**base, "status": "cached", "reason": "HTTP 503; using copy fetched 2026-11-01"}) == "failing"
    assert state_of({**base, "status": "cached", "reason": ""}) == "ok"  # revalidated, unchanged
    for status in ("thin", "suspect", "empty", "refused"):
        assert state_of({**base, "status": status}) == status
    states = [link.state for link in link_health([{**base, "status": "fetched"},
                                                  {**base, "url": "https://z.example", "status": "gone"}])]
    assert states == ["dead", "ok"]  # the worst first


def test_link_states_follow_the_site_across_builds(server, tmp_path):
    for path in ("/stays.html", "/moves.html", "/dies.html", "/flaky.html"):
        server.set_article(path, f"Momentum notes {path}", PARAGRAPHS)
    faq = tmp_path / "faq.md"
    faq.write_text("**Q: What is momentum?**\n\n" + "".join(
        f"- [Notes {p}]({server.url(p)})\n" for p in ("/stays.html", "/moves.html", "/dies.html", "/flaky.html")),
        "utf-8")
    index, cache = tmp_path / "index", tmp_path / "cache"
    settings = Settings()
    build_index([faq], index_dir=index, cache_dir=cache, settings=settings)
    first = {link.url: link for link in link_health(read_report(index))}
    assert {link.state for link in first.values()} == {"ok"} and all(link.last_good for link in first.values())

    server.set_article("/moved-here.html", "Momentum notes, new home", PARAGRAPHS)
    server.set_redirect("/moves.html", server.url("/moved-here.html"), status=301)
    server.set_status("/dies.html", 404)
    server.set_status("/flaky.html", 503)
    build_index([faq], index_dir=index, cache_dir=cache, settings=settings)
    second = {link.url.rsplit("/", 1)[1]: link for link in link_health(read_report(index))}
    assert second["stays.html"].state == "ok"
    assert second["moves.html"].state == "redirected" and second["moves.html"].final_url.endswith("/moved-here.html")
    assert second["dies.html"].state == "dead"
    assert second["dies.html"].last_good == first[server.url("/dies.html")].last_good  # the copy kept, and its date
    assert second["flaky.html"].state == "failing" and second["flaky.html"].last_good

    proc = run("links", "--index-dir", str(index))
    assert proc.returncode == 1, proc.stderr  # a dead link fails the maintainer's CI
    assert "4 links: 1 dead, 1 failing, 1 redirected, 1 ok" in proc.stdout
    assert "replace or remove the link" in proc.stdout and "update the FAQ to the final URL" in proc.stdout
    js = json.loads(run("links", "--json", "--index-dir", str(index)).stdout)
    assert [link["state"] for link in js] == ["dead", "failing", "redirected", "ok"]

    server.set_article("/dies.html", "Momentum notes, back", PARAGRAPHS)
    server.set_article("/flaky.html", "Momentum notes, back", PARAGRAPHS)
    build_index([faq], index_dir=index, cache_dir=cache, settings=settings)
    assert run("links", "--index-dir", str(index)).returncode == 0
