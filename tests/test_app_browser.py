"""End to end in real headless Chromium: `streamlit run app.py`, type, Enter, see, vote, stay safe.

Uses Debian's Chromium (/usr/bin/chromium, installed by scripts/install-chromium.sh)
driven by Playwright's Python package; it never downloads a browser, and skips
with the reason where Chromium is not installed.
"""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.parse

import pytest

from app_fixtures import (CHROMIUM_ARGS, HOSTILE_QUERY, ROUTES, XSS_TEXT, AppIndex, RunningApp,  # noqa: F401
                          app_index, chromium_or_skip)

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


def shoot(page, folder, name: str) -> None:
    """A full-page screenshot kept in the test's tmp dir (`<name>.png`), for a person to look at."""
    page.wait_for_timeout(300)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_search_feedback_and_safety_in_headless_chromium(app_index: AppIndex, tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    db = tmp_path / "app.sqlite"
    env = {"FAQ_INDEX_DIR": str(app_index.index_dir), "FAQ_APP_DB": str(db), "FAQ_CACHE_DIR": str(app_index.cache_dir),
           "FAQ_EXAMPLES": str(tmp_path / "no-examples.txt"), "FAQ_ADMIN": ""}
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
            shoot(page, tmp_path, "search-laptop")

            # A hostile query, then the hostile page's passage: shown as text, nothing runs.
            box.fill(HOSTILE_QUERY)
            box.press("Enter")
            expect(page.locator(".faq-card, .faq-related").first).to_be_visible(timeout=WAIT_MS)
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
            hrefs = page.eval_on_selector_all(".faq-card a[href], .faq-related a[href]",
                                              "els => els.map(e => e.getAttribute('href'))")
            assert hrefs and all(re.match(r"^(https?://|\?entry=)", h) for h in hrefs), hrefs

            # The passage is one click away: a text-fragment link whose words are on the source page.
            fragment = hostile.locator(".faq-ev-open a").get_attribute("href")
            source, directive = fragment.split("#:~:text=")
            assert source == f"{app_index.base_url}/striped-momentum.html"
            body = ROUTES["/striped-momentum.html"][2].decode("utf-8")  # what the index was built from
            for part in directive.split(","):
                assert urllib.parse.unquote(part) in " ".join(re.sub(r"<[^>]+>", " ", body).split())

            # Open the entry, come back: the query and its results are still there.
            hostile.locator(".faq-foot a").click()
            entry = page.locator(".st-key-entry_card .faq-card")
            expect(entry).to_have_attribute("data-entry", "what-is-striped-momentum", timeout=WAIT_MS)
            shoot(page, tmp_path, "entry-laptop")
            page.locator(".st-key-close_entry button").click()
            expect(page.locator(".st-key-q input")).to_have_value(
                "alternates the momentum coefficient every other mini-batch", timeout=WAIT_MS)
            expect(page.locator(".st-key-result_1 .faq-card")).to_have_attribute(
                "data-entry", "what-is-striped-momentum", timeout=WAIT_MS)

            # No good answer: said so, the nearest entries compact, a next step.
            box = page.locator(".st-key-q input")
            box.fill("how do I bake sourdough bread at home")
            box.press("Enter")
            expect(page.locator(".faq-notice")).to_contain_text("no good answer", timeout=WAIT_MS)
            expect(page.locator(".faq-related li").first).to_be_visible()
            expect(page.locator(".st-key-suggest button")).to_be_visible()
            assert page.locator(".faq-card").count() == 0
            shoot(page, tmp_path, "no-answer-laptop")

            # Each search is a history step: Back shows the previous search again, results and all.
            page.go_back()
            expect(page.locator(".st-key-q input")).to_have_value(
                "alternates the momentum coefficient every other mini-batch", timeout=WAIT_MS)
            expect(page.locator(".st-key-result_1 .faq-card")).to_have_attribute(
                "data-entry", "what-is-striped-momentum", timeout=WAIT_MS)
            page.go_forward()
            expect(page.locator(".faq-notice")).to_contain_text("no good answer", timeout=WAIT_MS)
            box = page.locator(".st-key-q input")

            # Learners see no index internals.
            for internal in ("Rebuild", "Index status", "Pages fetched", "HTTP 404"):
                assert page.get_by_text(internal).count() == 0, internal

            # Phone width: nothing wider than the screen, in every state.
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(500)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
            shoot(page, tmp_path, "no-answer-phone")
            box.fill("what is log loss")
            box.press("Enter")
            expect(page.locator(".st-key-result_1 .faq-card")).to_have_attribute(
                "data-entry", "what-is-cross-entropy-loss", timeout=WAIT_MS)
            page.wait_for_timeout(300)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
            shoot(page, tmp_path, "search-phone")
            page.locator(".st-key-result_1 .faq-foot a").click()
            expect(page.locator(".st-key-entry_card .faq-card")).to_be_visible(timeout=WAIT_MS)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
            shoot(page, tmp_path, "entry-phone")
            page.locator(".st-key-close_entry button").click()
            expect(page.locator(".st-key-q input")).to_have_value("what is log loss", timeout=WAIT_MS)
            assert (tmp_path / "search-laptop.png").stat().st_size > 0
            assert "Traceback" not in page.content()
        finally:
            browser.close()


def test_maintainer_view_in_headless_chromium(app_index: AppIndex, tmp_path):
    """With FAQ_ADMIN=1 the Maintainer view holds the index's state; it fits a phone too."""
    chromium = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    env = {"FAQ_INDEX_DIR": str(app_index.index_dir), "FAQ_APP_DB": str(tmp_path / "app.sqlite"),
           "FAQ_CACHE_DIR": str(app_index.cache_dir), "FAQ_ADMIN": "1"}
    with RunningApp(env, tmp_path / "streamlit.log") as app, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(app.url + "?view=Maintainer")
            main = page.locator("[data-testid='stMain']")
            expect(main).to_contain_text("Pages not indexed (2)", timeout=WAIT_MS)
            expect(main).to_contain_text("page not found (HTTP 404)")
            expect(page.get_by_role("button", name="Rebuild now")).to_be_visible()
            shoot(page, tmp_path, "maintainer-laptop")
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(500)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
            shoot(page, tmp_path, "maintainer-phone")
            assert "Traceback" not in page.content()
        finally:
            browser.close()
