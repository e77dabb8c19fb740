"""webapp/index_state.py: build time, model name, FAQ source changes, pages not indexed."""

from __future__ import annotations

from datetime import datetime, timezone

from indexer.files import file_sha256
from webapp import index_state


def test_built_at_text():
    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
    assert index_state.built_at_text("2026-01-02T09:00:00+00:00", now) == "2026-01-02 09:00 UTC (3 hours ago)"
    assert index_state.built_at_text("2026-01-02T11:59:30+00:00", now).endswith("(just now)")
    assert index_state.built_at_text("2025-12-20T12:00:00+00:00", now).endswith("(13 days ago)")
    assert index_state.built_at_text(None, now) == "unknown"


def test_source_changes_and_problem_pages(tmp_path):
    faq = tmp_path / "faq.md"
    faq.write_text("one", "utf-8")
    manifest = {"sources": [{"path": "faq.md", "sha256": file_sha256(faq)},
                            {"path": str(tmp_path / "gone.md"), "sha256": "0"}]}
    first, gone = index_state.source_changes(manifest, [tmp_path])
    assert not first["changed"] and not first["missing"] and gone["missing"]
    faq.write_text("two", "utf-8")
    assert index_state.source_changes(manifest, [tmp_path])[0]["changed"]
    report = [{"url": "https://a", "status": "fetched"},
              {"url": "javascript:x", "status": "failed", "reason": "HTTP 404", "title": "<b>t</b>"},
              {"url": "https://c", "status": "thin", "reason": "paywall"},
              {"url": "https://d", "status": "cached", "reason": "not modified since last fetch"},
              {"url": "https://e", "status": "suspect", "reason": "block page; kept the copy fetched 2026-11-01"}]
    problems = index_state.problem_pages(report)
    assert [p["status"] for p in problems] == ["failed", "thin", "suspect"]
    assert problems[0] == {"url": "javascript:x", "title": "<b>t</b>", "status": "failed", "reason": "HTTP 404"}
    assert problems[1]["title"] == "" and problems[1]["reason"] == "paywall"
