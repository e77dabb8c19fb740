"""Link health: what became of every link of the FAQ at the last build, in the maintainer's words.

Read from the build's `report.json` (indexer/build.py), one state per link:

- `ok`: fetched (or revalidated) and indexed;
- `redirected`: indexed, but the link now leads elsewhere: update the FAQ to the final URL;
- `thin`: only a paywall teaser or a page with little text;
- `suspect`: the site answered with a block page, a captcha or much less text: the last good copy is kept;
- `empty`: fetched, but no text to index;
- `failing`: a network error or a 5xx; indexed from the last good copy when there is one;
- `dead`: the page is gone (404, 410, or another 4xx);
- `archived`: the live page failed and had no cached copy; the web archive's copy is indexed;
- `refused`: not fetched on purpose (an internal address, credentials in the URL, a binary file).

`python -m indexer links` prints it and exits 1 when a link is dead, so it can run in the
maintainer's CI; the app's Maintainer view lists the same and Browse marks dead links.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

STATES = ("dead", "failing", "archived", "suspect", "thin", "empty", "refused", "redirected", "ok")
#: What each state asks of the maintainer.
ADVICE = {
    "dead": "the page is gone: replace or remove the link",
    "failing": "the site did not answer this time: check again later",
    "archived": "the live page failed and the web archive's copy is indexed: replace the link or keep it",
    "suspect": "the site sent a block or error page: the last good copy is used",
    "thin": "only a teaser was found (paywall?): save the page and `snapshot import` it",
    "empty": "no text on the page: link a page with text, or import a saved copy",
    "refused": "not fetched on purpose (internal address, credentials, or not a web page)",
    "redirected": "the link now leads elsewhere: update the FAQ to the final URL",
    "ok": "",
}
_HTTP_4XX = re.compile(r"\bHTTP (4\d\d)\b")
#: report.json statuses of a page indexed as fetched (fresh or revalidated); every other status is a page
#: the maintainer should hear of: not had, kept from an earlier copy, or kept out on purpose.
INDEXED_AS_FETCHED = ("fetched", "cached")


def not_indexed_as_fetched(report: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The report's records whose page is not indexed as fetched (failed, thin, suspect, gone, empty, ...)."""
    return [r for r in report if r.get("status") not in INDEXED_AS_FETCHED]


@dataclass
class LinkHealth:
    url: str
    state: str
    reason: str = ""
    title: str = ""
    #: Where the link leads now (for `redirected`).
    final_url: str = ""
    #: When the indexed copy was fetched ("" when there is none).
    last_good: str = ""
    entries: list[str] = field(default_factory=list)

    @property
    def advice(self) -> str:
        return ADVICE[self.state]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "advice": self.advice}


def _same_place(a: str, b: str) -> bool:
    """Whether two URLs name the same page for the maintainer (a trailing slash or http->https aside)."""
    def norm(u: str) -> str:
        return re.sub(r"^https?://", "", u.strip()).rstrip("/").lower()
    return norm(a) == norm(b)


def state_of(record: Mapping[str, Any]) -> str:
    """One of STATES for a report.json record."""
    status, reason = record.get("status", ""), record.get("reason") or ""
    if status == "gone":
        return "dead"
    if status == "failed":
        return "dead" if _HTTP_4XX.search(reason) else "failing"
    if status in ("thin", "suspect", "empty", "refused", "archived"):
        return status
    if status == "cached" and "using copy fetched" in reason:
        return "failing"  # the site failed this time; the last good copy is indexed
    final = record.get("final_url") or ""
    if final and not _same_place(final, record.get("url", "")):
        return "redirected"
    return "ok"


def link_health(report: Iterable[Mapping[str, Any]]) -> list[LinkHealth]:
    """Every link of the report with its state, the worst first (dead, failing, ...), then by URL."""
    links = [LinkHealth(url=r.get("url", ""), state=state_of(r), reason=r.get("reason") or "",
                        title=r.get("title") or "", final_url=r.get("final_url") or "",
                        last_good=r.get("last_good") or "", entries=list(r.get("entries") or []))
             for r in report]
    return sorted(links, key=lambda link: (STATES.index(link.state), link.url))


def dead_urls(report: Iterable[Mapping[str, Any]]) -> set[str]:
    return {link.url for link in link_health(report) if link.state == "dead"}


def stale_copies(report: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """{url: when its indexed copy was fetched} for the pages gone at the last build (404/410) whose last
    good copy is still indexed (stale, for `gone_keep_days`): what search results mark as stale."""
    return {r["url"]: r["last_good"] for r in report
            if r.get("status") == "gone" and r.get("last_good") and r.get("chars") and r.get("url")}
