"""Untrusted text made safe to show: escaping, http(s)-only links, highlighted passages.

The one rule of the web app: text from the FAQ, from fetched pages and from the
user's query is untrusted. Every piece of it goes through `esc` (html.escape)
before it is placed in markup, highlight spans are applied to the raw text and
each piece escaped on its own, and only http(s) URLs (checked by `safe_url`)
ever become links. What comes out of the `*_html` functions is therefore markup
we wrote around escaped text; the app renders it with `st.html`, which
sanitises it once more (DOMPurify) and never runs scripts.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable, Sequence
from urllib.parse import quote, urlsplit


# -- escaping and links ---------------------------------------------------------------
def esc(text: Any) -> str:
    """Text as inert HTML: every <, >, &, quote escaped."""
    return html.escape("" if text is None else str(text), quote=True)


def safe_url(url: Any) -> str | None:
    """`url` if it is an absolute http(s) URL with a host and no whitespace or control characters."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > 4096 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "\\" in parts.netloc:
        return None
    return url


def link_html(url: Any, text: Any, *, cls: str = "", new_tab: bool = True) -> str:
    """An <a> to an http(s) URL, or just the escaped text when the URL is anything else."""
    label = esc(text) or esc(url)
    good = safe_url(url)
    cls_attr = f' class="{esc(cls)}"' if cls else ""
    if not good:
        return f"<span{cls_attr}>{label}</span>"
    target = ' target="_blank" rel="noopener noreferrer nofollow"' if new_tab else ""
    return f'<a href="{esc(good)}"{cls_attr}{target}>{label}</a>'


def linked_marked_html(url: str, text: str, spans: Any) -> str:
    """`text` with `spans` marked, as a link to `url` when that is http(s) (a link title that matched)."""
    inner = highlight_html(text, spans)
    good = safe_url(url)
    if not good:
        return f"<span>{inner}</span>"
    return f'<a href="{esc(good)}" target="_blank" rel="noopener noreferrer nofollow">{inner}</a>'


def entry_href(entry_id: str, **keep: str | None) -> str:
    """Relative deep link to one entry (`?entry=<id>`), carrying `keep` params (the query, the view)
    so that the entry's Back button returns to the same search."""
    params = {"entry": entry_id, **{k: v for k, v in keep.items() if v}}
    return "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())


# -- links into a page: URL text fragments ---------------------------------------------------
#: Words quoted at each end of a text fragment: enough to be unique on a page, few enough to match.
FRAGMENT_WORDS = 4
# A run of plain words separated by single spaces: text a browser finds verbatim in the rendered page
# (no punctuation, formulas or symbols, which pages render differently from the extracted text).
_PLAIN_RUN = re.compile(r"(?<![\w'’-])[^\W\d_][\w'’-]*(?: [^\W\d_][\w'’-]*)+(?![\w'’-])")


def _fragment_part(text: str) -> str:
    # Percent-encode everything but letters and digits: '-', ',' and '&' are syntax in a text directive.
    return quote(text, safe="").replace("-", "%2D")


def _trim(words: list[str]) -> list[str]:
    """A run without one-letter words at its ends: next to a formula they are its variables (`∂ w of`)."""
    while words and len(words[0]) == 1:
        words = words[1:]
    while words and len(words[-1]) == 1:
        words = words[:-1]
    return words


def text_fragment_url(url: Any, passage: str) -> str | None:
    """`url` opening at `passage` (`#:~:text=start,end`, followed by Chromium and Safari; others open the top).

    Quotes the first words of the passage's first plain run and the last words of its last one, so the
    browser scrolls to and highlights the passage. None when the URL is not http(s) or the passage has no
    run of three plain words to quote (a formula, a code line): then there is nothing to open at.
    """
    good = safe_url(url)
    if good is None:
        return None
    runs = [words for m in _PLAIN_RUN.finditer(passage or "") if len(words := _trim(m.group(0).split(" "))) >= 3]
    if not runs:
        return None
    first, last = runs[0], runs[-1]
    if len(runs) == 1 and len(first) <= 2 * FRAGMENT_WORDS:
        directive = _fragment_part(" ".join(first))
    else:
        start = first[:FRAGMENT_WORDS]
        end = last[-FRAGMENT_WORDS:] if len(runs) > 1 else last[len(start):][-FRAGMENT_WORDS:]
        directive = f"{_fragment_part(' '.join(start))},{_fragment_part(' '.join(end))}"
    return f"{good}{':~:' if '#' in good else '#:~:'}text={directive}"


def md_escape(text: Any) -> str:
    """Text for a Streamlit Markdown slot (labels, alerts): markup characters backslash-escaped."""
    text = "" if text is None else " ".join(str(text).split())
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~:$&])", r"\\\1", text)


# -- highlighting -------------------------------------------------------------------------
def clean_spans(spans: Iterable[Sequence[int]] | None, length: int) -> list[tuple[int, int]]:
    """[start, end) spans clipped to a text of `length`, malformed ones dropped, overlaps merged, in order."""
    out: list[tuple[int, int]] = []
    for span in spans or []:
        try:
            start, end = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            continue
        start, end = max(0, start), min(length, end)
        if start < end:
            out.append((start, end))
    out.sort()
    merged: list[tuple[int, int]] = []
    for start, end in out:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _window(text: str, spans: list[tuple[int, int]], max_chars: int) -> tuple[int, int]:
    """The part of a long passage worth showing: around its first highlight, cut at spaces."""
    if len(text) <= max_chars:
        return 0, len(text)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - max_chars // 4, len(text) - max_chars))
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 40 else start
    end = min(len(text), start + max_chars)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + max_chars // 2 else end
    return start, end


def snippet_bounds(text: str, spans: Iterable[Sequence[int]] | None, max_chars: int) -> tuple[int, int]:
    """[start, end) of the part of `text` that `highlight_html(..., max_chars=max_chars)` shows."""
    return _window(text, clean_spans(spans, len(text)), max_chars)


def highlight_html(text: Any, spans: Iterable[Sequence[int]] | None = None, *,
                   max_chars: int | None = None) -> str:
    """Escaped `text` with the [start, end) `spans` wrapped in <mark>; long text cut around the first mark."""
    text = "" if text is None else str(text)
    marks = clean_spans(spans, len(text))
    start, end = _window(text, marks, max_chars) if max_chars else (0, len(text))
    return ("… " if start > 0 else "") + _marked(text, start, end, marks) + (" …" if end < len(text) else "")


_BARE_URL = re.compile(r"https?://[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]")


def text_html(text: Any, spans: Iterable[Sequence[int]] | None = None) -> str:
    """Multi-paragraph text (an FAQ answer): escaped, highlighted, bare http(s) URLs as links."""
    text = "" if text is None else str(text)
    marks = clean_spans(spans, len(text))
    out: list[str] = []
    pos = 0
    # Links first (never split a URL by a mark), then marks in the text between them.
    for m in _BARE_URL.finditer(text):
        out.append(_marked(text, pos, m.start(), marks))
        out.append(link_html(m.group(0), m.group(0)))
        pos = m.end()
    out.append(_marked(text, pos, len(text), marks))
    body = "".join(out)
    paragraphs = [p.replace("\n", "<br>") for p in re.split(r"\n\s*\n", body) if p.strip()]
    return "".join(f"<p>{p}</p>" for p in paragraphs)


# `code` in FAQ text (a command, an error message), after escaping (a backtick is not escaped). The
# only markup allowed in between is a whole <mark>…</mark> of ours, so the tags always nest.
_CODE = re.compile(r"`((?:[^`<\n]|<mark>[^`<\n]*</mark>)+)`")


def _marked(text: str, start: int, end: int, marks: list[tuple[int, int]]) -> str:
    """text[start:end] escaped, `marks` in <mark>, `code` spans in <code>."""
    pieces, pos = [], start
    for s, e in marks:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        pieces.append(esc(text[pos:s]))
        pieces.append(f"<mark>{esc(text[s:e])}</mark>")
        pos = e
    pieces.append(esc(text[pos:end]))
    return _CODE.sub(r"<code>\1</code>", "".join(pieces))
