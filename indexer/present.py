"""Everything the web app shows, as plain functions: labels, safe HTML, grouping, filtering, status.

`app.py` only wires Streamlit widgets to these. The one rule: text from the
FAQ, from fetched pages and from the user's query is untrusted. Every piece of
it goes through `esc` (html.escape) before it is placed in markup, highlight
spans are applied to the raw text and each piece escaped on its own, and only
http(s) URLs (checked by `safe_url`) ever become links. What comes out of the
`*_html` functions is therefore markup we wrote around escaped text; the app
renders it with `st.html`, which sanitises it once more (DOMPurify) and never
runs scripts.
"""

from __future__ import annotations

import html
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote, urlsplit

from .status import source_state

KIND_LABELS = {"article": "Article", "video": "Video", "qa": "Q&A", "paper": "Paper", "book": "Book",
               "other": "Link"}
KIND_ICONS = {"article": "📄", "video": "▶️", "qa": "💬", "paper": "🎓", "book": "📘", "other": "🔗"}
UNCATEGORISED = "Other questions"
BUILD_COMMAND = "python -m indexer build"
EVIDENCE_CHARS = 360


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


def entry_href(entry_id: str) -> str:
    """Relative deep link to one entry (`?entry=<id>`)."""
    return "?entry=" + quote(str(entry_id), safe="")


def query_href(query: str) -> str:
    """Relative deep link that runs a query (`?q=...`)."""
    return "?q=" + quote(str(query), safe="")


def md_escape(text: Any) -> str:
    """Text for a Streamlit Markdown slot (labels, alerts): markup characters backslash-escaped."""
    text = "" if text is None else " ".join(str(text).split())
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~:$&])", r"\\\1", text)


# -- highlighting -------------------------------------------------------------------------
def _clean_spans(spans: Iterable[Sequence[int]] | None, length: int) -> list[tuple[int, int]]:
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


def highlight_html(text: Any, spans: Iterable[Sequence[int]] | None = None, *,
                   max_chars: int | None = None) -> str:
    """Escaped `text` with the [start, end) `spans` wrapped in <mark>; long text cut around the first mark."""
    text = "" if text is None else str(text)
    marks = _clean_spans(spans, len(text))
    start, end = _window(text, marks, max_chars) if max_chars else (0, len(text))
    return ("… " if start > 0 else "") + _marked(text, start, end, marks) + (" …" if end < len(text) else "")


_BARE_URL = re.compile(r"https?://[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]")


def text_html(text: Any, spans: Iterable[Sequence[int]] | None = None) -> str:
    """Multi-paragraph text (an FAQ answer): escaped, highlighted, bare http(s) URLs as links."""
    text = "" if text is None else str(text)
    marks = _clean_spans(spans, len(text))
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


def _marked(text: str, start: int, end: int, marks: list[tuple[int, int]]) -> str:
    pieces, pos = [], start
    for s, e in marks:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        pieces.append(esc(text[pos:s]))
        pieces.append(f"<mark>{esc(text[s:e])}</mark>")
        pos = e
    pieces.append(esc(text[pos:end]))
    return "".join(pieces)


# -- labels -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Relevance:
    label: str
    level: str  # strong | good | weak | low: a CSS class suffix
    percent: int


def relevance(score: float, threshold: float, top: float | None = None) -> Relevance:
    """A words-and-bar reading of a fused score.

    Below the index's answer threshold a result is a weak match. Above it, the label weighs how far
    above the threshold it is and how close to the best result of the same query (`top`): with a
    low calibrated threshold, the runner-up entries are related, not equally good answers.
    """
    try:
        score = float(score)
    except (TypeError, ValueError):
        score = 0.0
    if score != score:  # NaN
        score = 0.0
    percent = int(round(min(max(score, 0.0), 1.0) * 100))
    if score < threshold:
        return Relevance("Weak match", "low", percent)
    margin = (score - threshold) / max(1.0 - threshold, 1e-6)
    share = score / top if top and top > 0 else 1.0
    if margin >= 0.35 and share >= 0.8:
        return Relevance("Strong match", "strong", percent)
    if margin >= 0.15 and share >= 0.5:
        return Relevance("Good match", "good", percent)
    return Relevance("Possible match", "weak", percent)


def kind_label(kind: Any) -> str:
    return KIND_LABELS.get(str(kind), KIND_LABELS["other"])


def kind_badge_html(kind: Any) -> str:
    kind = str(kind) if str(kind) in KIND_LABELS else "other"
    return f'<span class="faq-kind faq-kind-{kind}">{esc(KIND_LABELS[kind])}</span>'


# -- field access (dataclasses or the dicts of --json) ------------------------------------------
def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _resource_title(resources: Iterable[Any], url: str) -> str:
    for r in resources or ():
        if _get(r, "url") == url:
            return _get(r, "title", "") or ""
    return ""


# -- cards --------------------------------------------------------------------------------------
def resources_html(resources: Iterable[Any], title_marks: Mapping[int, list[list[int]]] | None = None) -> str:
    """The entry's links: kind badge, title (with `title_marks[i]` marked in the i-th), site name."""
    items = []
    for i, r in enumerate(resources or ()):
        site = _get(r, "site", "") or ""
        site_html = f' <span class="faq-site">{esc(site)}</span>' if site else ""
        title = _get(r, "title", "") or site
        marks = (title_marks or {}).get(i)
        link = _linked_marked(_get(r, "url", ""), title, marks) if marks else link_html(_get(r, "url", ""), title)
        items.append(f"<li>{kind_badge_html(_get(r, 'kind', 'other'))} {link}{site_html}</li>")
    return f'<ul class="faq-res">{"".join(items)}</ul>' if items else ""


def evidence_html(result: Any, documents: Mapping[str, Any] | None = None) -> str:
    """Why a result matched: the passage with the query's words marked, and where it comes from.

    A match in the question or the answer is marked in place (see `result_card_html`); this block
    is for link titles and page passages.
    """
    ev = _get(result, "evidence")
    if ev is None:
        return ""
    source = _get(ev, "source", "")
    text, url, spans = _get(ev, "text", "") or "", _get(ev, "url", "") or "", _get(ev, "highlights", [])
    resources = _get(result, "resources", ())
    doc = (documents or {}).get(url)
    title = (_get(doc, "title", "") if doc is not None else "") or _resource_title(resources, url) or url
    site = (_get(doc, "site", "") if doc is not None else "") or _site(url)
    site_html = f' <span class="faq-site">{esc(site)}</span>' if site else ""
    if source == "title":
        return (f'<div class="faq-ev"><div class="faq-ev-label">Matched the title of a linked page'
                f'{site_html}</div><div class="faq-ev-text">{_linked_marked(url, text, spans)}</div></div>')
    if source == "resource":
        return (f'<div class="faq-ev"><div class="faq-ev-label">From the linked page '
                f'{link_html(url, title)}{site_html}</div>'
                f'<blockquote class="faq-ev-text">{highlight_html(text, spans, max_chars=EVIDENCE_CHARS)}'
                f"</blockquote></div>")
    return ""


def _place(spans: list[tuple[int, int]], offset: int, field: str, used: set[tuple[int, int]]) -> list[list[int]]:
    """The spans that fall inside `field` (found at `offset` in the evidence), relative to the field."""
    out = []
    for s, e in spans:
        if offset <= s and e <= offset + len(field):
            out.append([s - offset, e - offset])
            used.add((s, e))
    return out


def _linked_marked(url: str, text: str, spans: Any) -> str:
    inner = highlight_html(text, spans)
    good = safe_url(url)
    if not good:
        return f"<span>{inner}</span>"
    return f'<a href="{esc(good)}" target="_blank" rel="noopener noreferrer nofollow">{inner}</a>'


def _site(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def result_card_html(result: Any, rank: int, threshold: float, documents: Mapping[str, Any] | None = None,
                     *, top_score: float | None = None, query_key: str = "") -> str:
    """One search result: question, relevance, answer, evidence, resources, a link to the entry.

    `top_score` is the best score of the same query (for the relevance label); `query_key` (a hash
    of the query) is set as `data-q`, so a browser test can tell a fresh card from the previous query's.
    """
    ev = _get(result, "evidence")
    source = _get(ev, "source", "") if ev is not None else ""
    ev_text = _get(ev, "text", "") or "" if ev is not None else ""
    spans = _get(ev, "highlights", []) if ev is not None else []
    question = _get(result, "question", "") or ""
    answer = _get(result, "answer", "") or ""
    entry_id = _get(result, "id", "") or ""

    resources = list(_get(result, "resources", ()) or ())
    clean = _clean_spans(spans, len(ev_text))
    q_spans: list[list[int]] = []
    answer_spans: list[list[int]] = []
    title_marks: dict[int, list[list[int]]] = {}
    matched, placed = "", source == "resource"
    show_evidence = source == "resource"
    if source == "question" and ev_text.startswith(question):
        # The question itself, or the entry's profile (question, answer, link titles): the marks go
        # onto the card's own fields instead of repeating the same text below them.
        used: set[tuple[int, int]] = set()
        q_spans = _place(clean, 0, question, used)
        cursor = len(question)
        if answer and ev_text != question:
            at = ev_text.find(answer, cursor)
            if at >= 0:
                answer_spans = _place(clean, at, answer, used)
                cursor = at + len(answer)
        for i, r in enumerate(resources):
            title = _get(r, "title", "") or ""
            at = ev_text.find(title, cursor) if title and ev_text != question else -1
            if at >= 0:
                title_marks[i] = _place(clean, at, title, used)
                cursor = at + len(title)
        placed = len(used) == len(clean)
        matched = "Matched the FAQ question" if ev_text == question else "Matched the FAQ entry"
    if source == "title":
        ev_url = _get(ev, "url", "") or ""
        for i, r in enumerate(resources):
            if _get(r, "url") == ev_url and (_get(r, "title", "") or "") == ev_text:
                title_marks[i], matched, placed = [[s, e] for s, e in clean], "Matched a linked page's title", True
                break
        else:  # the title is not among the card's links: show it as evidence
            placed = show_evidence = True
    if source == "answer":
        offset = answer.find(ev_text) if ev_text else -1
        if offset >= 0:  # mark the words in the answer itself
            matched, placed = "Matched the FAQ answer", True
            answer_spans = [[s + offset, e + offset] for s, e in clean]
    q_html = highlight_html(question, q_spans)
    extra = ""
    if not placed and ev_text:
        label = {"question": "Matched the FAQ entry", "answer": "Matched the FAQ answer"}.get(source, "Matched")
        matched = ""
        extra = (f'<div class="faq-ev"><div class="faq-ev-label">{esc(label)}</div>'
                 f'<blockquote class="faq-ev-text">{highlight_html(ev_text, spans, max_chars=EVIDENCE_CHARS)}'
                 f"</blockquote></div>")
    answer_html = f'<div class="faq-answer">{text_html(answer, answer_spans)}</div>' if answer else ""
    rel = relevance(_get(result, "score", 0.0), threshold, top_score)
    score = _get(result, "score", 0.0)
    category = _get(result, "category", "") or ""
    cat_html = f'<span class="faq-cat">{esc(category)}</span>' if category else ""
    matched_html = f'<span class="faq-matched">{esc(matched)}</span>' if matched else ""
    return (
        f'<div class="faq-card" data-entry="{esc(entry_id)}" data-q="{esc(query_key)}">'
        f'<div class="faq-head"><span class="faq-rank">{int(rank)}</span>'
        f'<div class="faq-q">{q_html}</div></div>'
        f'<div class="faq-meta"><span class="faq-rel faq-rel-{rel.level}" '
        f'title="relevance {esc(_fmt_score(score))} (answer threshold {esc(_fmt_score(threshold))})">'
        f'{esc(rel.label)}</span><span class="faq-bar faq-bar-{rel.level}" role="img" '
        f'aria-label="relevance {rel.percent}%"><span style="width:{rel.percent}%"></span></span>'
        f"{cat_html}{matched_html}</div>"
        f"{answer_html}{extra}"
        f"{evidence_html(result, documents) if show_evidence else ''}"
        f"{resources_html(resources, title_marks)}"
        f'<div class="faq-foot"><a href="{esc(entry_href(entry_id))}" target="_self">Link to this entry</a></div>'
        f"</div>"
    )


def _fmt_score(value: Any) -> str:
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return "?"


def entry_body_html(entry: Any) -> str:
    answer = _get(entry, "answer", "") or ""
    body = f'<div class="faq-answer">{text_html(answer)}</div>' if answer else ""
    res = resources_html(_get(entry, "resources", ()))
    if not body and not res:
        body = '<div class="faq-answer faq-muted">No written answer or links in the FAQ.</div>'
    return body + res


def entry_card_html(entry: Any) -> str:
    """One FAQ entry on its own (the `?entry=` deep link)."""
    category = _get(entry, "category", "") or ""
    cat_html = f'<div class="faq-meta"><span class="faq-cat">{esc(category)}</span></div>' if category else ""
    return (f'<div class="faq-card faq-entry-card" data-entry="{esc(_get(entry, "id", ""))}">'
            f'<div class="faq-head"><div class="faq-q">{esc(_get(entry, "question", ""))}</div></div>'
            f"{cat_html}{entry_body_html(entry)}</div>")


def browse_html(groups: Sequence[tuple[str, Sequence[Any]]], *, expanded: bool = False) -> str:
    """Every entry grouped by category, each a collapsible item with its answer and resources."""
    sections = []
    for category, entries in groups:
        items = []
        for entry in entries:
            entry_id = _get(entry, "id", "")
            n_res = len(_get(entry, "resources", ()) or ())
            count = f'<span class="faq-count">{n_res} link{"s" if n_res != 1 else ""}</span>' if n_res else ""
            items.append(
                f'<details class="faq-item" id="{esc(entry_id)}"{" open" if expanded else ""}>'
                f'<summary><span class="faq-item-q">{esc(_get(entry, "question", ""))}</span>{count}</summary>'
                f'<div class="faq-item-body">{entry_body_html(entry)}'
                f'<div class="faq-foot"><a href="{esc(entry_href(entry_id))}" target="_self">Link to this entry</a>'
                f"</div></div></details>")
        sections.append(f'<section class="faq-group"><h4 class="faq-group-title">{esc(category)} '
                        f'<span class="faq-count">{len(entries)}</span></h4>{"".join(items)}</section>')
    return "".join(sections)


# -- browse ------------------------------------------------------------------------------------
def group_by_category(entries: Iterable[Any]) -> list[tuple[str, list[Any]]]:
    """Entries grouped by category, categories and entries in FAQ order."""
    groups: dict[str, list[Any]] = {}
    for entry in entries:
        groups.setdefault(_get(entry, "category", "") or UNCATEGORISED, []).append(entry)
    return list(groups.items())


def fold(text: Any) -> str:
    text = unicodedata.normalize("NFKD", str(text or "").lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def _haystack(entry: Any) -> str:
    parts = [_get(entry, "question", ""), _get(entry, "answer", ""), _get(entry, "category", ""),
             _get(entry, "id", "")]
    for r in _get(entry, "resources", ()) or ():
        parts += [_get(r, "title", ""), _get(r, "site", ""), kind_label(_get(r, "kind", "")), _get(r, "url", "")]
    return fold(" ".join(str(p or "") for p in parts))


def filter_entries(entries: Iterable[Any], text: str | None) -> list[Any]:
    """Entries whose question, answer, category or links contain every word of `text` (any case/accents)."""
    words = fold(text or "").split()
    entries = list(entries)
    if not words:
        return entries
    return [e for e in entries if all(w in _haystack(e) for w in words)]


def example_questions(entries: Iterable[Any], n: int = 2) -> list[str]:
    """A few short FAQ questions, from different categories when there are several, to click and try."""
    entries = list(entries)
    short = [e for e in entries if 10 <= len(_get(e, "question", "") or "") <= 60] or entries
    picked: list[str] = []
    seen: set[str] = set()
    for pass_ in (0, 1):
        for e in short[::max(1, len(short) // (n * 2 + 1))] if pass_ == 0 else short:
            q = _get(e, "question", "") or ""
            cat = _get(e, "category", "") or ""
            if q in picked or (pass_ == 0 and cat in seen):
                continue
            picked.append(q)
            seen.add(cat)
            if len(picked) >= n:
                return picked
    return picked


# -- index status --------------------------------------------------------------------------------
def resolve_source(path: str, bases: Sequence[Path] = ()) -> Path:
    """A manifest's source path: absolute as is; relative against the working folder, then `bases`."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    for base in bases:
        if (Path(base) / p).exists():
            return Path(base) / p
    return p


def source_changes(manifest: Mapping[str, Any], bases: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """Each FAQ source of the build: its path, where it is now, and whether it changed or went missing."""
    out = []
    for src in manifest.get("sources", []) or []:
        path = resolve_source(str(src.get("path", "")), bases)
        changed, missing = source_state(path, src.get("sha256"))
        out.append({"path": str(src.get("path", "")), "resolved": str(path), "changed": changed,
                    "missing": missing})
    return out


def built_at_text(iso: Any, now: datetime | None = None) -> str:
    """'2026-11-25 18:37 UTC (3 hours ago)' from the manifest's ISO time."""
    try:
        when = datetime.fromisoformat(str(iso))
    except (TypeError, ValueError):
        return "unknown"
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    now = now or datetime.now(timezone.utc)
    seconds = (now - when).total_seconds()
    if seconds < 90:  # a clock a little ahead counts as now too
        ago = "just now"
    elif seconds < 3600 * 1.5:
        ago = f"{round(seconds / 60)} minutes ago"
    elif seconds < 86400 * 1.5:
        ago = f"{round(seconds / 3600)} hours ago"
    else:
        ago = f"{round(seconds / 86400)} days ago"
    return f"{when:%Y-%m-%d %H:%M} UTC ({ago})"


def short_model(name: Any) -> str:
    name = str(name or "?")
    return name.split("/")[-1] if "/" in name and not os.path.isabs(name) else name


def problem_pages(report: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Resources whose page could not be used (failed, or a paywalled teaser), with the reason."""
    out = []
    for rec in report or []:
        status = rec.get("status")
        if status in ("failed", "thin"):
            out.append({"url": str(rec.get("url", "")), "title": str(rec.get("title", "") or ""),
                        "status": str(status), "reason": str(rec.get("reason", "") or "no reason recorded")})
    return out


def problem_pages_html(problems: Sequence[Mapping[str, str]]) -> str:
    items = []
    for p in problems:
        label = "paywalled / thin" if p["status"] == "thin" else "failed"
        items.append(f'<li><div class="faq-pp-title">{link_html(p["url"], p["title"] or p["url"])}</div>'
                     f'<div class="faq-pp-reason"><span class="faq-pp-status">{esc(label)}</span> '
                     f'{esc(p["reason"])}</div></li>')
    return f'<ul class="faq-pp">{"".join(items)}</ul>'


def current_index(index_dir: Path) -> tuple[tuple[str, str], dict[str, Any]]:
    """(token, manifest) of the current build, read once per run.

    The token, (resolved index folder, build id + threshold), changes when a rebuild is swapped
    in, or when `calibrate` sets a new threshold in the manifest.
    Raises `store.IndexError_` when there is no readable index.
    """
    from . import store

    real = Path(index_dir).resolve()
    manifest = store.read_manifest(real)
    build = str(manifest.get("build_id", "")) or _mtime_token(real)
    return (str(real), f"{build}@{manifest.get('answer_threshold')}"), manifest


def _mtime_token(path: Path) -> str:
    try:
        return str((path / "manifest.json").stat().st_mtime_ns)
    except OSError:
        return ""


def response_dict(response: Any) -> dict[str, Any]:
    """A search response as plain data (what the app caches, logs and renders)."""
    return response if isinstance(response, dict) else json.loads(json.dumps(response.to_dict()))


def open_searcher(index_dir: Path, encoder_for: Any):
    """A `Searcher` over the index at `index_dir`, with the encoder `encoder_for(model_name)` returns.

    The (slow to load) model comes from the caller, so the app loads it once per process and
    keeps it across index rebuilds.
    """
    from .search import Searcher

    return Searcher.open(Path(index_dir), encoder_for=encoder_for)
