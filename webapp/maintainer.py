"""The maintainer view: what the index holds, which pages it could not use and why, how answers are
thresholded, and the rebuild's progress, in plain words.

Learners never see any of this: the view exists only when the app runs with
`FAQ_ADMIN=1` (`admin_enabled` is the one place that reads the flag). Plain
functions from plain data (the manifest, the build report, a rebuild's
`Progress`) to escaped markup or sentences; `webapp.maintainer_view` draws them and
wires the widgets. Page titles, reasons and paths come from the FAQ, the web and the
file system, so every one of them goes through `esc` like any other FAQ text.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from indexer.config import SearchSettings
from indexer.models import short_name
from indexer.threshold import ThresholdError, calibrated_threshold, resolve

from .html import esc, link_html
from .index_state import built_at_text

if TYPE_CHECKING:  # only the types: indexer.build loads the model stack
    from indexer.build import BuildSummary
    from indexer.insights import Insights
    from indexer.links import LinkHealth

    from .rebuild import Progress

ADMIN_ENV = "FAQ_ADMIN"
_YES = {"1", "true", "yes", "on"}
#: The view's label in the app's view switch, and its `?view=` value.
VIEW = "Maintainer"
CALIBRATE_COMMAND = "python -m indexer calibrate bench/eval/shipped_*.jsonl"


def admin_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the maintainer view is on: `FAQ_ADMIN` set to 1, true, yes or on (any case)."""
    value = (os.environ if environ is None else environ).get(ADMIN_ENV, "")
    return value.strip().lower() in _YES


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


# -- the index ----------------------------------------------------------------------------------------------------
def status_html(manifest: Mapping[str, Any]) -> str:
    """The index in three sentences: entries and links, what became of the pages, when and with what it was built."""
    c = manifest.get("counts", {}) or {}
    entries, links = int(c.get("entries", 0) or 0), int(c.get("resources", 0) or 0)
    pages = [(int(c.get("pages_fetched", 0) or 0), "fetched"), (int(c.get("pages_cached", 0) or 0), "from the cache"),
             (int(c.get("pages_failed", 0) or 0), "could not be fetched"),
             (int(c.get("pages_thin", 0) or 0), "paywalled (only a teaser)")]
    page_text = ", ".join(f"<b>{n}</b> {what}" for n, what in pages)
    return ('<ul class="faq-mt-facts">'
            f"<li><b>{entries}</b> FAQ {'entry' if entries == 1 else 'entries'} with "
            f"<b>{links}</b> {'link' if links == 1 else 'links'} to pages.</li>"
            f"<li>Linked pages: {page_text}.</li>"
            f"<li>Built {esc(built_at_text(manifest.get('built_at')))} with the model "
            f"<code>{esc(short_name(manifest.get('model')))}</code>.</li></ul>")


def source_notes(changes: Iterable[Mapping[str, Any]]) -> list[str]:
    """One sentence per FAQ source that is missing or changed since the build (plain text, for an alert)."""
    notes = []
    for src in changes:
        if src.get("missing"):
            notes.append(f"{src['path']} is missing: the index still holds its entries.")
        elif src.get("changed"):
            notes.append(f"{src['path']} changed since this index was built. Rebuild to include the changes.")
    return notes


# -- pages not indexed --------------------------------------------------------------------------------------------
_HTTP = re.compile(r"\bHTTP (\d{3})\b")
#: (pattern in the recorded reason, what it means), first match wins; HTTP statuses are handled apart.
_REASONS: tuple[tuple[str, str], ...] = (
    (r"paywall", "only a teaser: the page is behind a paywall"),
    (r"offline and not in cache", "not fetched: an offline rebuild, and no earlier copy in the cache"),
    (r"connection refused", "no network (connection refused)"),
    (r"name resolution|name or service not known|nodename nor servname|getaddrinfo|no address associated",
     "no network (the site's name could not be looked up)"),
    (r"network is unreachable|no route to host", "no network (network unreachable)"),
    (r"^cannot connect", "could not connect to the site"),
    (r"timed out", "the site did not answer in time"),
    (r"robots\.txt", "the site's robots.txt asks crawlers to keep out"),
    (r"redirects", "too many redirects"),
    (r"unsupported content type", "not a web page (another content type)"),
    (r"body larger than", "the page is too large"),
    (r"slower than", "the page took too long to download"),
    (r"empty body", "the page was empty"),
)


def readable_reason(raw: str) -> str:
    """What a recorded fetch or extraction reason means, in words (the raw text when it is not one we know)."""
    text = " ".join(str(raw or "").split())
    low = text.lower()
    for pattern, meaning in _REASONS[:2]:  # said by the build itself, whatever an HTTP status says
        if re.search(pattern, low):
            return meaning
    http = _HTTP.search(text)
    if http:
        code = int(http.group(1))
        if code in (404, 410):
            return f"page not found (HTTP {code})"
        if code in (401, 403):
            return f"the site refused access (HTTP {code})"
        if code == 429:
            return "the site asked us to slow down (HTTP 429)"
        return f"the site had an error (HTTP {code})" if code >= 500 else f"the site answered HTTP {code}"
    for pattern, meaning in _REASONS[2:]:
        if re.search(pattern, low):
            return meaning
    return text or "no reason recorded"


@dataclass(frozen=True)
class ProblemGroup:
    """Pages not indexed for the same reason."""

    reason: str
    #: "failed" (not fetched) or "thin" (a paywalled teaser).
    status: str
    pages: tuple[Mapping[str, str], ...]
    #: The reasons as the build recorded them, when they say more than `reason`.
    details: tuple[str, ...] = ()


def group_problems(problems: Iterable[Mapping[str, str]]) -> list[ProblemGroup]:
    """`index_state.problem_pages` grouped by readable reason, the largest group first."""
    groups: dict[tuple[str, str], list[Mapping[str, str]]] = {}
    for page in problems:
        groups.setdefault((str(page.get("status", "failed")), readable_reason(page.get("reason", ""))), []).append(page)
    out = []
    for (status, reason), pages in groups.items():
        raw = dict.fromkeys(" ".join(str(p.get("reason", "")).split()) for p in pages)
        details = tuple(r for r in raw if r and r not in reason)  # 'HTTP 404' adds nothing to '… (HTTP 404)'
        out.append(ProblemGroup(reason, status, tuple(pages), details))
    return sorted(out, key=lambda g: (-len(g.pages), g.reason))


def problems_html(groups: Sequence[ProblemGroup]) -> str:
    """Each group as one line ("11 pages: no network (connection refused)") that opens on its pages."""
    if not groups:
        return '<p class="faq-mt-ok">Every linked page was fetched and indexed.</p>'
    items = []
    for g in groups:
        pages = "".join(f'<li>{link_html(p.get("url", ""), p.get("title") or p.get("url", ""))}</li>' for p in g.pages)
        shown = g.details[:3] + (("…",) if len(g.details) > 3 else ())
        details = (f'<div class="faq-mt-detail">As recorded: {esc("; ".join(shown))}</div>' if shown else "")
        items.append(f'<details class="faq-mt-group faq-mt-{esc(g.status)}"><summary>'
                     f'<b>{_n(len(g.pages), "page")}</b>: {esc(g.reason)}</summary>'
                     f'<ul class="faq-pp">{pages}</ul>{details}</details>')
    return "".join(items)


# -- the answer threshold -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationState:
    """Which "no good answer" threshold searches of this index use, and where it comes from."""

    #: "calibrated", "environment", "default", or "invalid" (FAQ_ANSWER_THRESHOLD is not a number).
    source: str
    value: float | None
    #: The index itself holds a calibration that applies (FAQ_ANSWER_THRESHOLD may still override it).
    index_calibrated: bool = False
    #: The manifest holds a calibration made under other search settings (so it no longer applies).
    stale: bool = False
    queries: int = 0
    cases: str = ""
    calibrated_at: str = ""
    error: str = ""

    @property
    def calibrated(self) -> bool:
        return self.source == "calibrated"


def calibration_state(manifest: Mapping[str, Any], settings: SearchSettings | None = None) -> CalibrationState:
    """The threshold as `indexer.threshold.resolve` picks it for this manifest, with the calibration's facts."""
    calibration = manifest.get("calibration") or {}
    settings = settings or SearchSettings()
    own = calibrated_threshold(dict(manifest), settings) is not None
    try:
        threshold = resolve(dict(manifest), settings)
    except ThresholdError as exc:
        return CalibrationState("invalid", None, index_calibrated=own, error=str(exc))
    queries = int(calibration.get("answerable", 0) or 0) + int(calibration.get("unanswerable", 0) or 0)
    return CalibrationState(threshold.source, threshold.value, index_calibrated=own,
                            stale=bool(calibration) and not own, queries=queries,
                            cases=str(calibration.get("cases", "") or ""),
                            calibrated_at=str(calibration.get("calibrated_at", "") or ""))


def calibration_html(state: CalibrationState) -> str:
    """One paragraph: calibrated (on what, when), or which threshold is used instead and how to calibrate."""
    how = f"Calibrate with <code>{esc(CALIBRATE_COMMAND)}</code> (labelled queries about the shipped FAQ)."
    value = "" if state.value is None else f" ({state.value:.4f})"
    if state.calibrated:
        on = f" on {_n(state.queries, 'labelled query', 'labelled queries')}" if state.queries else ""
        source = f" from <code>{esc(state.cases)}</code>" if state.cases else ""
        when = f" at {esc(built_at_text(state.calibrated_at))}" if state.calibrated_at else ""
        text = f"Answers use a threshold{value} calibrated{on}{source}{when}."
        return f'<p class="faq-mt-cal faq-mt-cal-ok">{text}</p>'
    if state.source == "environment":
        text = (f"Answers use the threshold{value} set by <code>FAQ_ANSWER_THRESHOLD</code>, "
                "not the index's calibration.")
    elif state.source == "invalid":
        text = f"<code>FAQ_ANSWER_THRESHOLD</code> is not usable: {esc(state.error)}."
    elif state.stale:
        text = (f"Not calibrated for the current search settings: the index's calibration was made under other "
                f"settings, so answers use the default threshold{value}. {how}")
    else:
        text = f"Not calibrated: answers use the default threshold{value}. {how}"
    return f'<p class="faq-mt-cal">{text}</p>'


# -- the rebuild --------------------------------------------------------------------------------------------------
def stage_line(stage: str, done: int, total: int) -> str:
    """'Fetching pages 3/11', 'Extracting text 2/3', 'Embedding 40/193', 'Saving'."""
    if stage == "fetching":
        return f"Fetching pages {done}/{total}"
    if stage == "extracting":
        return f"Extracting text {done}/{total}" if total else "Extracting text"
    if stage == "embedding":
        return f"Embedding {done}/{total}" if total else "Embedding (loading the model)"
    if stage == "saving":
        return "Saving" if done < total else "Saved"
    return stage.capitalize()


def summary_text(summary: BuildSummary) -> str:
    """What a rebuild did, without the build's jargon: 'Rebuilt: 8 entries, 11 links (…). Search now uses …'."""
    read = summary.pages_fetched + summary.pages_cached
    failed, thin, links = summary.pages_failed, summary.pages_thin, summary.resources
    notes = []
    if links and failed == links:
        notes.append(f"{'the page' if links == 1 else _n(links, 'page')} could not be fetched — offline?")
    else:
        if read:
            notes.append(f"all {_n(read, 'page')} read" if read == links else f"{_n(read, 'page')} read")
        if failed:
            notes.append(f"{failed} could not be fetched")
    if thin:
        notes.append(f"{thin} only {'a teaser' if thin == 1 else 'teasers'} behind a paywall")
    pages = f" ({', '.join(notes)})" if notes else ""
    return (f"Rebuilt: {_n(summary.entries, 'entry', 'entries')}, {_n(links, 'link')}{pages}. "
            "Search now uses the new index.")


def rebuild_label(progress: Progress) -> str:
    """The status box's label: the current stage while running, then how it ended."""
    if progress.running:
        current = stage_line(*progress.stages[-1]) if progress.stages else "Reading the FAQ"
        return f"Rebuilding the index… {current}"
    if progress.error or progress.summary is None:
        return "The rebuild failed; the previous index is unchanged."
    return summary_text(progress.summary)


def rebuild_html(progress: Progress) -> str:
    """The status box's body: each stage reached (done ones ticked), and the error if it failed."""
    items = []
    for i, (stage, done, total) in enumerate(progress.stages):
        finished = i < len(progress.stages) - 1 or (not progress.running and not progress.error)
        mark = "✓" if finished else "…"
        items.append(f'<li><span class="faq-mt-mark">{mark}</span> {esc(stage_line(stage, done, total))}</li>')
    mode = " (cached pages only)" if progress.offline else ""
    started = f'<p class="faq-mt-detail">Started {esc(built_at_text(progress.started_at))}{mode}.</p>'
    error = (f'<p class="faq-mt-error">The rebuild failed: {esc(progress.error)}</p>' if progress.error else "")
    return f'{started}<ul class="faq-mt-stages">{"".join(items)}</ul>{error}'


def after_rebuild_html(state: CalibrationState) -> str:
    """Said after a rebuild when the new index is not calibrated, and how to calibrate it."""
    if state.index_calibrated:
        return ""
    used = ("the threshold set by <code>FAQ_ANSWER_THRESHOLD</code>" if state.source == "environment"
            else "the default threshold")
    return (f'<p class="faq-mt-cal"><b>The new index is not calibrated</b>: answers use {used}. '
            f"Calibrate it with <code>{esc(CALIBRATE_COMMAND)}</code></p>")


# -- what learners ask (indexer/insights.py) ------------------------------------------------------------------------
#: The periods the maintainer view offers, as `--since` spans.
INSIGHT_PERIODS = {"Last 7 days": "7d", "Last 30 days": "30d", "Last 90 days": "90d"}


def unanswered_html(report: Insights, limit: int = 15) -> str:
    """The unanswered or unsure questions grouped by meaning: "12 asked: what is dropout", opening on wordings."""
    if not report.unanswered:
        return '<p class="faq-mt-ok">Every question of the period was answered with confidence.</p>'
    items = []
    for g in report.unanswered[:limit]:
        wordings = "".join(f"<li>{esc(q)}</li>" for q in g.queries[:10])
        more = f"<li>… and {len(g.queries) - 10} more wordings</li>" if len(g.queries) > 10 else ""
        where = f" · in {g.sections_text()}" if g.sections else ""
        detail = esc(f"newest {g.newest[:10]}{where}")
        items.append(f'<details class="faq-mt-group"><summary><b>{_n(g.size, "asked", "asked")}</b>: '
                     f'{esc(g.name)} <span class="faq-mt-detail">{detail}</span></summary>'
                     f'<ul class="faq-pp">{wordings}{more}</ul></details>')
    hidden = len(report.unanswered) - limit
    tail = f'<p class="faq-mt-detail">… and {hidden} smaller groups (faq-search insights lists all).</p>' \
        if hidden > 0 else ""
    return "".join(items) + tail


def entries_html(report: Insights, limit: int = 10) -> str:
    """The entries that answered most, and the votes per entry with the questions that got a thumbs-down."""
    asked = "".join(f"<li><b>{n}</b> × {esc(q)}</li>" for _, q, n in report.top_entries[:limit])
    votes = []
    for v in report.votes[:limit]:
        downs = (f'<div class="faq-mt-detail">thumbs down on: {esc("; ".join(v.down_queries[:5]))}</div>'
                 if v.down_queries else "")
        votes.append(f"<li>{esc(v.question)}: <b>+{v.up}</b> / <b>−{v.down}</b>{downs}</li>")
    out = [f'<p><b>Answered most</b></p><ul class="faq-mt-facts">{asked}</ul>' if asked else
           '<p class="faq-mt-detail">No question was answered in this period.</p>']
    out.append(f'<p><b>Votes</b></p><ul class="faq-mt-facts">{"".join(votes)}</ul>' if votes else
               '<p class="faq-mt-detail">No votes in this period.</p>')
    return "".join(out)


def suggestions_html(report: Insights, limit: int = 15) -> str:
    """What learners asked to have added to the FAQ, most asked first."""
    if not report.suggestions:
        return '<p class="faq-mt-detail">No question was suggested in this period.</p>'
    items = "".join(f"<li><b>{n}</b> × {esc(q)} <span class=\"faq-mt-detail\">newest {esc(last[:10])}</span></li>"
                    for q, n, last in report.suggestions[:limit])
    return f'<ul class="faq-mt-facts">{items}</ul>'


# -- link health (indexer/links.py) ---------------------------------------------------------------------------------
def links_html(health: Sequence[LinkHealth]) -> str:
    """The links that need the maintainer, worst first: state, link, last good date, what to do."""
    needing = [link for link in health if link.state != "ok"]
    if not needing:
        return f'<p class="faq-mt-ok">All {_n(len(health), "link")} fine at the last build.</p>'
    items = []
    for link in needing:
        good = f", last good {esc(link.last_good[:10])}" if link.last_good else ", never fetched"
        now = (f'<div class="faq-mt-detail">now at {link_html(link.final_url, link.final_url)}</div>'
               if link.state == "redirected" else "")
        items.append(f'<li><b class="faq-mt-state faq-mt-state-{esc(link.state)}">{esc(link.state)}</b> '
                     f'{link_html(link.url, link.title or link.url)}<span class="faq-mt-detail">{good}</span>'
                     f'{now}<div class="faq-mt-detail">{esc(link.advice)}</div></li>')
    fine = len(health) - len(needing)
    tail = f'<p class="faq-mt-detail">{_n(fine, "other link")} fine.</p>' if fine else ""
    return f'<ul class="faq-mt-facts">{"".join(items)}</ul>{tail}'
