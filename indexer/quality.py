"""Whether a freshly fetched page is at least as good as the copy it would replace.

A site that starts answering with a captcha, an "Access denied" page or a
"page not found" page with status 200 (a soft 404) must not wipe out the text
indexed from its last good copy. The fetcher asks `judge` before replacing a
cached page; a non-empty answer keeps the old copy and reports the page
`suspect` with that reason. A page that only reads like a soft 404 and has no
earlier copy is indexed when its site answers a made-up page with a real 404
(`fetch.SoftNotFound`): a short page about HTTP 404s is not a missing page.
"""

from __future__ import annotations

import logging
import re

import lxml.html

from .config import ExtractSettings, FetchSettings
from .extract import decode_body, extract
from .fetch import SoftNotFound
from .records import Page

log = logging.getLogger(__name__)

#: Only short pages are judged by their words: an article about captchas is long.
SHORT_PAGE_CHARS = 1500
_BLOCKED = re.compile(
    r"captcha|access denied|access to this page has been denied|are you a (?:robot|human)|"
    r"verify (?:that )?you are (?:a )?human|unusual traffic|attention required|request (?:was )?blocked|"
    r"you have been blocked|checking your browser|bot (?:detection|protection)|ddos protection|"
    r"\b403 forbidden\b|too many requests", re.IGNORECASE)
_NOT_FOUND = re.compile(
    r"\b404\b|page (?:was )?not found|not be found|(?:page|article|post) (?:does not|doesn'?t|no longer) exists?|"
    r"nothing (?:was )?found here", re.IGNORECASE)


def visible_text(page: Page) -> str:
    """The page's visible words (scripts and styles dropped): what a block page says is often not what
    trafilatura keeps as its main text."""
    try:
        tree = lxml.html.fromstring(decode_body(page.body))
    except (ValueError, lxml.etree.ParserError):
        return ""
    for node in tree.xpath("//script|//style|//noscript|//template"):
        node.drop_tree()
    return " ".join(tree.text_content().split())


def judge(new: Page, old: Page | None, fetch: FetchSettings = FetchSettings(),
          settings: ExtractSettings = ExtractSettings()) -> str:
    """Why `new` should not replace `old` ("" when it may). `old` is the cached copy, if any."""
    doc = extract(new, settings)
    text = doc.text or ""
    visible = visible_text(new) if len(text) < SHORT_PAGE_CHARS else ""
    if len(text) < SHORT_PAGE_CHARS and len(visible) < 2 * SHORT_PAGE_CHARS:
        head = f"{doc.title}\n{text[:400]}\n{visible[:600]}"
        blocked = _BLOCKED.search(head)
        if blocked:
            return f"looks like a block page ({blocked.group(0)!r})"
        missing = _NOT_FOUND.search(head)
        if missing:
            return SoftNotFound(f"looks like a 'not found' page answered with 200 (soft 404: {missing.group(0)!r})")
    if old is not None and old.body:
        before = len(extract(old, settings).text or "")
        if before >= fetch.suspect_min_chars and len(text) < fetch.suspect_shrink_ratio * before:
            return f"text shrank from {before} to {len(text)} characters"
    return ""
