"""Entries and search results as cards: question, relevance, answer, evidence, resources.

Takes the indexer's own records (`indexer.search.Result`, `indexer.records.Entry`,
`Resource`, `Document`): the app renders what the searcher returned, with no
second shape of a result in between. All text goes through `webapp.html`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Collection, Iterable, Mapping, Sequence

from indexer.records import Document, Entry, Resource
from indexer.text import site_name
from indexer.threshold import confidence_level

from .html import (clean_spans, entry_href, esc, highlight_html, link_html, linked_marked_html, snippet_bounds,
                   text_fragment_url, text_html)

if TYPE_CHECKING:  # the search module loads numpy, FAISS and BM25: only its types are needed here
    from indexer.search import Result

KIND_LABELS = {"article": "Article", "video": "Video", "qa": "Q&A", "paper": "Paper", "book": "Book",
               "other": "Link"}
EVIDENCE_CHARS = 360


# -- labels -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Relevance:
    label: str
    level: str  # strong | good | weak | low: a CSS class suffix
    percent: int
    #: The label in a sentence, shown on the card (a phone has no hover tooltips).
    meaning: str = ""


#: Per confidence level (indexer.threshold.confidence_level): the label, its CSS class suffix, its meaning.
_LEVELS = {
    "weak": ("Weak match", "low", "Probably not what you asked."),
    "possible": ("Possible match", "weak", "This entry may answer your question: check the passage."),
    "good": ("Good match", "good", "This entry very likely answers your question."),
    "strong": ("Strong match", "strong", "This entry answers questions like yours."),
}


def relevance(score: float, threshold: float) -> Relevance:
    """Words and a bar for a result's confidence: below the answer threshold it is a weak match."""
    try:
        score = float(score)
    except (TypeError, ValueError):
        score = 0.0
    if score != score:  # NaN
        score = 0.0
    percent = int(round(min(max(score, 0.0), 1.0) * 100))
    label, css, meaning = _LEVELS[confidence_level(score, threshold)]
    return Relevance(label, css, percent, meaning)


def relevance_html(rel: Relevance, *, explain: bool = True) -> str:
    """The label, a bar of the confidence, and (on the answer card) the label's meaning in words."""
    meaning = f'<span class="faq-rel-why">{esc(rel.meaning)}</span>' if explain and rel.meaning else ""
    return (f'<span class="faq-rel faq-rel-{rel.level}">{esc(rel.label)}</span>'
            f'<span class="faq-bar faq-bar-{rel.level}" role="img" aria-label="confidence {rel.percent}%" '
            f'title="confidence {rel.percent}%"><span style="width:{rel.percent}%"></span></span>{meaning}')


def kind_label(kind: Any) -> str:
    return KIND_LABELS.get(str(kind), KIND_LABELS["other"])


def kind_badge_html(kind: Any) -> str:
    kind = str(kind) if str(kind) in KIND_LABELS else "other"
    return f'<span class="faq-kind faq-kind-{kind}">{esc(KIND_LABELS[kind])}</span>'


# -- pieces of a card ----------------------------------------------------------------------------
def resources_html(resources: Iterable[Resource], title_marks: Mapping[int, list[list[int]]] | None = None,
                   dead: Collection[str] = ()) -> str:
    """The entry's links: kind badge, title (with `title_marks[i]` marked in the i-th), site name, and a
    "dead link" mark on the URLs in `dead` (gone at the last build, indexer/links.py)."""
    items = []
    for i, r in enumerate(resources or ()):
        site = r.site or ""
        site_html = f' <span class="faq-site">{esc(site)}</span>' if site else ""
        title = r.title or site
        marks = (title_marks or {}).get(i)
        link = linked_marked_html(r.url, title, marks) if marks else link_html(r.url, title)
        gone = ' <span class="faq-dead" title="this page was gone at the last build">dead link</span>' \
            if r.url in dead else ""
        items.append(f"<li>{kind_badge_html(r.kind)} {link}{site_html}{gone}</li>")
    return f'<ul class="faq-res">{"".join(items)}</ul>' if items else ""


def _resource_title(resources: Iterable[Resource], url: str) -> str:
    for r in resources or ():
        if r.url == url:
            return r.title or ""
    return ""


def evidence_html(result: Result, documents: Mapping[str, Document] | None = None,
                  dead: Collection[str] = ()) -> str:
    """Why a result matched: the passage with the query's words marked, and where it comes from.

    A match in the question or the answer is marked in place (see `answer_card_html`); this block
    is for link titles and page passages. A passage of a page in `dead` (gone at the last build, its
    last good copy still indexed) says it is from that copy.
    """
    ev = result.evidence
    text, url, spans = ev.text or "", ev.url or "", ev.highlights
    doc = (documents or {}).get(url)
    # The page under the name the FAQ gives it (as in the card's list of links), not a second title.
    title = _resource_title(result.resources, url) or (doc.title if doc is not None else "") or url
    site = (doc.site if doc is not None else "") or site_name(url)
    site_html = f' <span class="faq-site">{esc(site)}</span>' if site else ""
    if ev.source == "title":
        return (f'<div class="faq-ev"><div class="faq-ev-label">Matched the title of a linked page'
                f'{site_html}</div><div class="faq-ev-text">{linked_marked_html(url, text, spans)}</div></div>')
    if ev.source == "resource":
        start, end = snippet_bounds(text, spans, EVIDENCE_CHARS)
        at_passage = text_fragment_url(url, text[start:end])
        open_link = (f'<div class="faq-ev-open">{link_html(at_passage, "Read this passage on the page ↗")}</div>'
                     if at_passage and url not in dead else "")
        stale = (' <span class="faq-dead" title="the page was gone at the last build">from the last copy: '
                 "the page is gone</span>" if url in dead else "")
        return (f'<div class="faq-ev"><div class="faq-ev-label">From “{esc(title)}”{site_html}{stale}</div>'
                f'<blockquote class="faq-ev-text">{highlight_html(text, spans, max_chars=EVIDENCE_CHARS)}'
                f"</blockquote>{open_link}</div>")
    return ""


def _place(spans: list[tuple[int, int]], offset: int, field: str, used: set[tuple[int, int]]) -> list[list[int]]:
    """The spans that fall inside `field` (found at `offset` in the evidence), relative to the field."""
    out = []
    for s, e in spans:
        if offset <= s and e <= offset + len(field):
            out.append([s - offset, e - offset])
            used.add((s, e))
    return out


# -- cards ---------------------------------------------------------------------------------------
def answer_card_html(result: Result, threshold: float, documents: Mapping[str, Document] | None = None,
                     *, query_key: str = "", query: str = "", dead: Collection[str] = ()) -> str:
    """The best result in full: question, confidence in words, answer, evidence passage, resources.

    `dead`: links gone at the last build (indexer/links.py), marked as such, their passages as stale.
    `query_key` (a hash of the query) is set as `data-q`, so a browser test can tell a fresh card from
    the previous query's; `query` is carried in the entry link, so Back returns to this search.
    """
    ev = result.evidence
    source, ev_text, spans = ev.source, ev.text or "", ev.highlights
    question, answer, entry_id = result.question or "", result.answer or "", result.id or ""

    resources = list(result.resources or ())
    clean = clean_spans(spans, len(ev_text))
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
            title = r.title or ""
            at = ev_text.find(title, cursor) if title and ev_text != question else -1
            if at >= 0:
                title_marks[i] = _place(clean, at, title, used)
                cursor = at + len(title)
        placed = len(used) == len(clean)
        matched = "Matched the FAQ question" if ev_text == question else "Matched the FAQ entry"
    if source == "title":
        ev_url = ev.url or ""
        for i, r in enumerate(resources):
            if r.url == ev_url and (r.title or "") == ev_text:
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
    category = result.category or ""
    cat_html = f'<span class="faq-cat">{esc(category)}</span>' if category else ""
    matched_html = f'<span class="faq-matched">{esc(matched)}</span>' if matched else ""
    return (
        f'<div class="faq-card" data-entry="{esc(entry_id)}" data-q="{esc(query_key)}">'
        f'<div class="faq-head"><div class="faq-q">{q_html}</div></div>'
        f'<div class="faq-meta">{relevance_html(relevance(result.score, threshold))}</div>'
        f'<div class="faq-meta">{cat_html}{matched_html}</div>'
        f"{answer_html}{extra}"
        f"{evidence_html(result, documents, dead) if show_evidence else ''}"
        f"{resources_html(resources, title_marks, dead)}"
        f'<div class="faq-foot"><a href="{esc(entry_href(entry_id, q=query))}" target="_self">'
        f"Open this entry</a></div></div>"
    )


def related_html(results: Sequence[Result], threshold: float, *, query_key: str = "", query: str = "") -> str:
    """Results in one line each: the question (a link to the entry, keeping the search) and its confidence."""
    items = []
    for r in results:
        rel = relevance(r.score, threshold)
        n_res = len(r.resources or ())
        count = f'<span class="faq-count">{n_res} link{"s" if n_res != 1 else ""}</span>' if n_res else ""
        items.append(f'<li class="faq-rel-item" data-entry="{esc(r.id)}">'
                     f'<a class="faq-rel-q" href="{esc(entry_href(r.id, q=query))}" target="_self">'
                     f"{highlight_html(r.question)}</a>{relevance_html(rel, explain=False)}{count}</li>")
    return f'<ul class="faq-related" data-q="{esc(query_key)}">{"".join(items)}</ul>' if items else ""


def entry_body_html(entry: Entry, dead: Collection[str] = ()) -> str:
    """An entry's written answer and links (or a note that it has neither); `dead`: links gone at the last build."""
    answer = entry.answer or ""
    body = f'<div class="faq-answer">{text_html(answer)}</div>' if answer else ""
    res = resources_html(entry.resources, dead=dead)
    if not body and not res:
        body = '<div class="faq-answer faq-muted">No written answer or links in the FAQ.</div>'
    return body + res


def entry_card_html(entry: Entry) -> str:
    """One FAQ entry on its own (the `?entry=` deep link)."""
    category = entry.category or ""
    cat_html = f'<div class="faq-meta"><span class="faq-cat">{esc(category)}</span></div>' if category else ""
    return (f'<div class="faq-card faq-entry-card" data-entry="{esc(entry.id)}">'
            f'<div class="faq-head"><div class="faq-q">{highlight_html(entry.question)}</div></div>'
            f"{cat_html}{entry_body_html(entry)}</div>")


def browse_html(groups: Sequence[tuple[str, Sequence[Entry]]], *, expanded: bool = False, view: str = "",
                filter_text: str = "", dead: Collection[str] = ()) -> str:
    """Every entry grouped by category, each a collapsible item with its answer and resources.

    Entry links carry `view` and `filter_text`, so Back from an entry returns to the same filtered list.
    """
    sections = []
    for category, entries in groups:
        items = []
        for entry in entries:
            n_res = len(entry.resources or ())
            count = f'<span class="faq-count">{n_res} link{"s" if n_res != 1 else ""}</span>' if n_res else ""
            items.append(
                f'<details class="faq-item" id="{esc(entry.id)}"{" open" if expanded else ""}>'
                f'<summary><span class="faq-item-q">{highlight_html(entry.question)}</span>{count}</summary>'
                f'<div class="faq-item-body">{entry_body_html(entry, dead)}'
                f'<div class="faq-foot"><a href="{esc(entry_href(entry.id, view=view, filter=filter_text))}" '
                f'target="_self">Open this entry</a>'
                f"</div></div></details>")
        sections.append(f'<section class="faq-group"><h4 class="faq-group-title">{esc(category)} '
                        f'<span class="faq-count">{len(entries)}</span></h4>{"".join(items)}</section>')
    return "".join(sections)
