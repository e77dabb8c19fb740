"""Turn a fetched page into a document: main text and metadata, via trafilatura.

Trafilatura is right for articles, but some pages give it nothing worth
indexing: a YouTube watch page yields footer boilerplate, a JavaScript-only
page yields a line. Then the page's own metadata (title, description, an
abstract) is the honest summary, and `method` says which path was taken.
Paywalled teasers (Medium's "member-only story") are flagged `thin`. Credits, share
prompts and TeX are tidied by indexer/cleanup.py.
"""

from __future__ import annotations

import codecs
import logging
import re

import lxml.html
import trafilatura
from trafilatura.deduplication import LRUCache

from .cleanup import clean_text
from .config import ExtractSettings
from .faq import repair_text
from .records import Document, Page

log = logging.getLogger(__name__)

# Text that only ever appears in site chrome, never in an article.
_BOILERPLATE = [
    re.compile(r"About\s+Press\s+Copyright\s+Contact us\s+Creators", re.IGNORECASE),
    re.compile(r"How YouTube works", re.IGNORECASE),
    re.compile(r"NFL Sunday Ticket", re.IGNORECASE),
    re.compile(r"(enable|turn on) JavaScript", re.IGNORECASE),
]
_PAYWALL = [
    re.compile(r"member[- ]only story", re.IGNORECASE),
    re.compile(r'"isAccessibleForFree"\s*:\s*"?false', re.IGNORECASE),
    re.compile(r"(sign up|subscribe|become a member) to (read|continue|unlock)", re.IGNORECASE),
    re.compile(r"\bmeteredContent\b|\bpaywall\b", re.IGNORECASE),
]


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
#: Labels browsers read as windows-1252 (the WHATWG Encoding standard).
_LATIN1_LABELS = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii", "windows-1252", "cp1252"}


def decode_body(body: bytes) -> str:
    """The body as text: a BOM, then UTF-8, then the charset the page declares, then windows-1252 (what
    mislabelled pages almost always are: cp1252 bytes declared UTF-8), then a guess from the bytes.
    A declared charset that does not decode the bytes is not believed."""
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", "replace")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", "replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates = []
    declared = _META_CHARSET.search(body[:4096])
    if declared:
        label = declared.group(1).decode("ascii", "ignore").lower()
        candidates.append("cp1252" if label in _LATIN1_LABELS else label)
    candidates.append("cp1252")
    for encoding in [*candidates, *trafilatura.utils.detect_encoding(body[:20000])]:
        try:
            return body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", "replace")


def _decode(page: Page) -> str:
    return decode_body(page.body) if page.body else ""


def _meta_abstract(html: str) -> str:
    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return ""
    for value in tree.xpath('//meta[@name="citation_abstract"]/@content'):
        if value.strip():
            return value.strip()
    for node in tree.xpath('//blockquote[contains(@class, "abstract")]'):
        text = " ".join(node.text_content().split())
        return re.sub(r"^Abstract:\s*", "", text)
    return ""


def _looks_like_junk(text: str, settings: ExtractSettings) -> str:
    if len(text) < settings.min_text_chars:
        return f"main text too short ({len(text)} chars)"
    for pattern in _BOILERPLATE:
        if pattern.search(text):
            return "main text is site boilerplate"
    return ""


def extract(page: Page, settings: ExtractSettings = ExtractSettings()) -> Document:
    """Main text and metadata of one page; never raises on bad HTML."""
    url = page.final_url or page.url
    doc = Document(url=page.url)
    if not page.body:
        return doc
    html = _decode(page)
    if page.content_type == "text/plain":
        doc.text, doc.method = repair_text(html).strip(), "plain"
        return doc
    try:
        meta = trafilatura.extract_metadata(html, default_url=url)
        # A fresh cache per page: with `deduplicate=True` trafilatura counts segments in one
        # process-wide cache, so a page extracted a fourth time in the same process (a rebuild
        # in the app, a test session) loses its paragraphs as "duplicates".
        text = trafilatura.extract(html, url=url, include_comments=True, include_tables=True,
                                   deduplicate=LRUCache(maxsize=4096)) or ""
    except Exception as exc:  # trafilatura raises a wide variety on malformed markup
        log.warning("%s: extraction failed (%s)", url, exc)
        meta, text = None, ""
    if meta is not None:
        doc.title = repair_text(meta.title or "")
        doc.description = repair_text(meta.description or "")
        doc.author = meta.author or ""
        doc.date = meta.date or ""
        doc.site = meta.sitename or ""
    text = clean_text(repair_text(text)).strip()
    junk = _looks_like_junk(text, settings)
    if not junk:
        doc.text, doc.method = text, "trafilatura"
    else:
        abstract = _meta_abstract(html)
        fallback = "\n".join(p for p in (doc.title, abstract or doc.description) if p).strip()
        if fallback:
            doc.text, doc.method = fallback, "metadata"
            doc.note = f"{junk}; indexed the page's title and description instead"
        else:
            doc.text, doc.method = text, ("trafilatura" if text else "none")
            doc.note = junk
    if len(doc.text) < settings.thin_max_chars and any(p.search(html) for p in _PAYWALL):
        doc.thin = True
        doc.note = (doc.note + "; " if doc.note else "") + "only a teaser: the page is behind a paywall"
    return doc
