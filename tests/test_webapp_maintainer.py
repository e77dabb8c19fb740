"""webapp/maintainer.py: the admin flag, the index's status, pages not indexed, the threshold, the rebuild's words.

Every title, reason and path shown here comes from the FAQ, a web page or the
file system, so the hostile ones must come out as text.
"""

from __future__ import annotations

import re

import pytest

from indexer.build import BuildSummary
from indexer.config import SearchSettings
from indexer.threshold import fingerprint
from webapp import maintainer
from webapp.rebuild import Progress

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def assert_inert(markup: str) -> None:
    """No tag or attribute of the hostile text survived as markup."""
    low = markup.lower()
    assert not re.search(r"<(script|img|iframe|svg)\b", low), markup
    assert not re.search(r"<[^>]*\son\w+\s*=", low), markup
    assert "javascript:" not in re.findall(r'href="([^"]*)"', low)


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("Yes", True), (" on ", True), ("0", False),
                                       ("", False), ("no", False), ("false", False), ("admin", False)])
def test_admin_flag(value, on):
    assert maintainer.admin_enabled({"FAQ_ADMIN": value}) is on
    assert maintainer.admin_enabled({}) is False


def test_status_in_plain_words_with_hostile_model_name_as_text():
    manifest = {"counts": {"entries": 8, "resources": 11, "pages_fetched": 3, "pages_cached": 2, "pages_failed": 5,
                           "pages_thin": 1},
                "built_at": "2026-01-02T09:00:00+00:00", "model": "<img src=x onerror=alert(1)>"}
    out = maintainer.status_html(manifest)
    text = re.sub(r"<[^>]+>", "", out)
    assert "8 FAQ entries with 11 links to pages." in text
    assert "3 fetched, 2 from the cache, 5 could not be fetched, 1 paywalled (only a teaser)" in text
    assert "Built 2026-01-02 09:00 UTC" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert_inert(out)
    one = re.sub(r"<[^>]+>", "", maintainer.status_html({"counts": {"entries": 1, "resources": 1}}))
    assert "1 FAQ entry with 1 link to pages" in one and "unknown" in one


@pytest.mark.parametrize("raw, meaning", [
    ("cannot connect: [Errno 111] Connection refused", "no network (connection refused)"),
    ("cannot connect: [Errno -3] Temporary failure in name resolution",
     "no network (the site's name could not be looked up)"),
    ("cannot connect: [Errno 101] Network is unreachable", "no network (network unreachable)"),
    ("cannot connect: ConnectError", "could not connect to the site"),
    ("offline and not in cache", "not fetched: an offline rebuild, and no earlier copy in the cache"),
    ("HTTP 404", "page not found (HTTP 404)"),
    ("HTTP 403", "the site refused access (HTTP 403)"),
    ("HTTP 503; server asked to wait 120s", "the site had an error (HTTP 503)"),
    ("HTTP 429", "the site asked us to slow down (HTTP 429)"),
    ("timed out (ReadTimeout)", "the site did not answer in time"),
    ("disallowed by robots.txt", "the site's robots.txt asks crawlers to keep out"),
    ("unsupported content type application/pdf", "not a web page (another content type)"),
    ("too short; only a teaser: the page is behind a paywall", "only a teaser: the page is behind a paywall"),
    ("something   new\nhappened", "something new happened"),
    ("", "no reason recorded"),
])
def test_readable_reasons(raw, meaning):
    assert maintainer.readable_reason(raw) == meaning


def test_failed_pages_grouped_by_reason_largest_first_and_shown_as_text():
    refused = "cannot connect: [Errno 111] Connection refused"
    problems = ([{"url": f"https://site{i}.example/p", "title": f"Page {i}", "status": "failed", "reason": refused}
                 for i in range(11)]
                + [{"url": "javascript:alert(1)", "title": HOSTILE, "status": "failed", "reason": "HTTP 404"},
                   {"url": "https://x.example/", "title": "", "status": "thin",
                    "reason": "only a teaser: the page is behind a paywall " + HOSTILE}])
    groups = maintainer.group_problems(problems)
    assert [(len(g.pages), g.reason) for g in groups] == [
        (11, "no network (connection refused)"), (1, "only a teaser: the page is behind a paywall"),
        (1, "page not found (HTTP 404)")]
    assert groups[0].details == (refused,)  # the raw text once per group, not eleven times
    assert groups[2].details == ()  # 'HTTP 404' says nothing more than the reason
    out = maintainer.problems_html(groups)
    assert out.count("<details") == 3
    assert "<b>11 pages</b>: no network (connection refused)" in out and "<b>1 page</b>: page not found" in out
    assert out.count("Errno 111") == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out  # the hostile title and reason, as text
    assert_inert(out)
    assert '<span>&lt;script&gt;' in out  # a javascript: page is named, never linked
    assert 'href="https://x.example/"' in out and ">https://x.example/</a>" in out  # no title: the URL
    assert "Every linked page was fetched" in maintainer.problems_html([])


def test_source_notes():
    notes = maintainer.source_notes([{"path": "data/faq.md", "changed": True, "missing": False},
                                     {"path": "b.md", "changed": True, "missing": True},
                                     {"path": "c.md", "changed": False, "missing": False}])
    assert notes == ["data/faq.md changed since this index was built. Rebuild to include the changes.",
                     "b.md is missing: the index still holds its entries."]


def calibrated_manifest(settings: SearchSettings, cases: str = "bench/eval/shipped_faq.jsonl") -> dict:
    return {"answer_threshold": 0.42, "calibration": {
        "threshold": 0.42, "answerable": 30, "unanswerable": 12, "cases": cases,
        "search_settings": fingerprint(settings), "calibrated_at": "2026-01-02T09:00:00+00:00"}}


def test_calibration_state_in_words(monkeypatch):
    monkeypatch.delenv("FAQ_ANSWER_THRESHOLD", raising=False)
    settings = SearchSettings()
    default = maintainer.calibration_state({"answer_threshold": None, "calibration": None}, settings)
    assert default.source == "default" and not default.calibrated and not default.stale
    out = maintainer.calibration_html(default)
    assert "Not calibrated: answers use the default threshold" in out
    assert "<code>python -m indexer calibrate bench/eval/shipped_*.jsonl</code>" in out
    assert "not calibrated" in maintainer.after_rebuild_html(default)

    done = maintainer.calibration_state(calibrated_manifest(settings, cases=HOSTILE), settings)
    assert done.calibrated and done.index_calibrated and done.value == pytest.approx(0.42) and done.queries == 42
    out = maintainer.calibration_html(done)
    assert "calibrated on 42 labelled queries" in out and "2026-01-02 09:00 UTC" in out and "(0.4200)" in out
    assert "&lt;script&gt;" in out
    assert_inert(out)
    assert maintainer.after_rebuild_html(done) == ""

    stale = calibrated_manifest(settings)
    stale["calibration"]["search_settings"] = "made-under-other-weights"
    state = maintainer.calibration_state(stale, settings)
    assert state.source == "default" and state.stale
    assert "calibration was made under other settings" in maintainer.calibration_html(state)

    monkeypatch.setenv("FAQ_ANSWER_THRESHOLD", "0.5")
    env = maintainer.calibration_state(calibrated_manifest(settings), settings)
    assert env.source == "environment" and env.index_calibrated and env.value == 0.5
    assert "FAQ_ANSWER_THRESHOLD" in maintainer.calibration_html(env)
    assert maintainer.after_rebuild_html(env) == ""  # the index itself is calibrated
    monkeypatch.setenv("FAQ_ANSWER_THRESHOLD", "<b>high</b>")
    bad = maintainer.calibration_state({}, settings)
    assert bad.source == "invalid"
    assert "&lt;b&gt;high&lt;/b&gt;" in maintainer.calibration_html(bad)


def test_stage_lines():
    assert maintainer.stage_line("fetching", 3, 11) == "Fetching pages 3/11"
    assert maintainer.stage_line("extracting", 0, 0) == "Extracting text"
    assert maintainer.stage_line("extracting", 2, 3) == "Extracting text 2/3"
    assert maintainer.stage_line("embedding", 0, 0) == "Embedding (loading the model)"
    assert maintainer.stage_line("embedding", 40, 193) == "Embedding 40/193"
    assert maintainer.stage_line("saving", 0, 1) == "Saving"
    assert maintainer.stage_line("saving", 1, 1) == "Saved"


@pytest.mark.parametrize("counts, words", [
    (dict(entries=8, resources=11, pages_failed=11),
     "Rebuilt: 8 entries, 11 links (11 pages could not be fetched — offline?). Search now uses the new index."),
    (dict(entries=5, resources=4, pages_fetched=1, pages_cached=3),
     "Rebuilt: 5 entries, 4 links (all 4 pages read). Search now uses the new index."),
    (dict(entries=1, resources=3, pages_cached=1, pages_failed=1, pages_thin=1),
     "Rebuilt: 1 entry, 3 links (1 page read, 1 could not be fetched, 1 only a teaser behind a paywall). "
     "Search now uses the new index."),
    (dict(entries=2, resources=0), "Rebuilt: 2 entries, 0 links. Search now uses the new index."),
])
def test_rebuild_summary_without_jargon(counts, words):
    summary = BuildSummary(**counts, passages=40, vectors_embedded=4, vectors_reused=28)
    assert maintainer.summary_text(summary) == words
    assert not re.search(r"thin|vector|passage|embedded", words)


def test_rebuild_label_and_body():
    running = Progress(job=1, index_dir="/i", offline=True, started_at="2026-01-02T09:00:00+00:00",
                       stages=(("fetching", 11, 11), ("extracting", 0, 0), ("embedding", 40, 193)))
    assert maintainer.rebuild_label(running) == "Rebuilding the index… Embedding 40/193"
    body = maintainer.rebuild_html(running)
    assert body.count("✓") == 2 and "… Embedding 40/193" in re.sub(r"<[^>]+>", "", body)
    assert "cached pages only" in body
    starting = Progress(job=1, index_dir="/i", offline=False, started_at="2026-01-02T09:00:00+00:00")
    assert maintainer.rebuild_label(starting) == "Rebuilding the index… Reading the FAQ"

    failed = Progress(job=2, index_dir="/i", offline=False, started_at="2026-01-02T09:00:00+00:00",
                      stages=(("fetching", 1, 4),), finished_at="2026-01-02T09:01:00+00:00",
                      error=f"faq.md:3: bad link {HOSTILE}")
    assert maintainer.rebuild_label(failed) == "The rebuild failed; the previous index is unchanged."
    body = maintainer.rebuild_html(failed)
    assert "The rebuild failed: faq.md:3: bad link &lt;script&gt;" in body and "✓" not in body
    assert_inert(body)

    done = Progress(job=3, index_dir="/i", offline=False, started_at="2026-01-02T09:00:00+00:00",
                    stages=(("fetching", 4, 4), ("saving", 1, 1)), finished_at="2026-01-02T09:01:00+00:00",
                    summary=BuildSummary(entries=5, resources=4, pages_fetched=4))
    assert maintainer.rebuild_label(done).startswith("Rebuilt: 5 entries, 4 links (all 4 pages read).")
    assert maintainer.rebuild_html(done).count("✓") == 2


def test_links_html_lists_what_needs_the_maintainer_as_text():
    from indexer.links import link_health

    report = [{"url": "https://ok.example/a", "status": "fetched", "title": "fine"},
              {"url": "https://gone.example/b", "status": "failed", "reason": "HTTP 404",
               "title": "<script>alert(1)</script>", "last_good": "2026-10-01T10:00:00+00:00"},
              {"url": "https://moved.example/c", "status": "fetched", "final_url": "https://new.example/c",
               "title": "moved"}]
    out = maintainer.links_html(link_health(report))
    assert "<script" not in out and "&lt;script&gt;" in out
    assert out.index("faq-mt-state-dead") < out.index("faq-mt-state-redirected")
    assert "last good 2026-10-01" in out and 'href="https://new.example/c"' in out and "1 other link fine" in out
    assert "All 1 link fine" in maintainer.links_html(link_health(report[:1]))


def test_unanswered_groups_say_which_sections_they_were_asked_in_as_text():
    from indexer.insights import Insights, QueryGroup

    groups = [QueryGroup(name="docker port taken", size=3, newest="2026-11-20T10:00:00+00:00",
                         queries=["docker port taken"], sections={HOSTILE: 2, "ml": 1}),
              QueryGroup(name="what is dropout", size=1, newest="2026-11-19T10:00:00+00:00",
                         queries=["what is dropout"])]
    report = Insights(since="2026-11-01", queries=4, answered=0, per_day=[], scores=[], unanswered=groups,
                      top_entries=[], votes=[], suggestions=[])
    markup = maintainer.unanswered_html(report)
    assert_inert(markup)
    assert "in &lt;script&gt;" in markup and ", ml 1" in markup
    assert markup.count(" · in ") == 1, "a group asked over all sections names none"
