"""End to end in real headless Chromium: `streamlit run app.py`, type, Enter, see, vote, stay safe.

Uses Debian's Chromium (/usr/bin/chromium, installed by scripts/install-chromium.sh)
driven by Playwright's Python package; it never downloads a browser, and skips
with the reason where Chromium is not installed.
"""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from app_fixtures import (CHROMIUM_ARGS, HOSTILE_QUERY, XSS_TEXT, AppIndex, RunningApp, app_index,  # noqa: F401
                          chromium_or_skip)

pytestmark = pytest.mark.browser

WAIT_MS = 60_000


def _votes(db) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT query, entry_id, vote, rank FROM feedback ORDER BY id").fetchall()


def _wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def test_search_feedback_and_safety_in_headless_chromium(app_index: AppIndex, tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    db = tmp_path / "app.sqlite"
    env = {"FAQ_INDEX_DIR": str(app_index.index_dir), "FAQ_APP_DB": str(db), "FAQ_CACHE_DIR": str(app_index.cache_dir)}
    with RunningApp(env, tmp_path / "streamlit.log") as app, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(app.url)

            # The search box has the focus: typing goes straight into it.
            box = page.locator(".st-key-q input")
            box.wait_for(timeout=WAIT_MS)
            page.wait_for_function("() => !!(document.activeElement && document.activeElement.closest('.st-key-q'))",
                                   timeout=WAIT_MS)
            page.keyboard.type("what is log loss")
            page.keyboard.press("Enter")

            first = page.locator(".st-key-result_1 .faq-card")
            expect(first).to_have_attribute("data-entry", "what-is-cross-entropy-loss", timeout=WAIT_MS)
            expect(first).to_contain_text("What is cross entropy loss?")
            expect(first.locator(".faq-kind").first).to_have_text("Article")
            expect(first.locator("mark").first).to_be_visible()
            assert "q=what+is+log+loss" in page.url or "q=what%20is%20log%20loss" in page.url  # shareable

            # Thumbs up on the first result is stored with the query.
            page.locator(".st-key-result_1 [data-testid='stFeedback'] button").first.click()
            votes = _wait_for(lambda: _votes(db))
            assert votes == [("what is log loss", "what-is-cross-entropy-loss", 1, 1)], app.log_text()
            page.screenshot(path=str(tmp_path / "search-laptop.png"), full_page=True)

            # A hostile query, then the hostile page's passage: shown as text, nothing runs.
            box.fill(HOSTILE_QUERY)
            box.press("Enter")
            expect(page.locator(".st-key-result_1 .faq-card")).to_be_visible(timeout=WAIT_MS)
            box.fill("alternates the momentum coefficient every other mini-batch")
            box.press("Enter")
            hostile = page.locator(".st-key-result_1 .faq-card")
            expect(hostile.locator(".faq-ev-text")).to_contain_text(XSS_TEXT, timeout=WAIT_MS)  # literally, as text
            expect(hostile).to_have_attribute("data-entry", "what-is-striped-momentum")
            page.wait_for_timeout(500)
            assert dialogs == []
            assert page.evaluate("() => window.__pwned") is None
            assert page.locator("img[src='x']").count() == 0
            assert page.locator("[data-testid='stMain'] script").count() <= 1  # only the app's own focus script
            hrefs = page.eval_on_selector_all(".faq-card a[href]", "els => els.map(e => e.getAttribute('href'))")
            assert hrefs and all(re.match(r"^(https?://|\?entry=)", h) for h in hrefs), hrefs

            # Phone width: nothing wider than the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(500)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
            page.screenshot(path=str(tmp_path / "search-phone.png"), full_page=True)
            assert (tmp_path / "search-laptop.png").stat().st_size > 0
            assert "Traceback" not in page.content()
        finally:
            browser.close()
