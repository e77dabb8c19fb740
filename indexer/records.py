"""The records that flow through the pipeline: FAQ -> pages -> passages -> vectors."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ResourceKind = Literal["article", "video", "qa", "paper", "book", "other"]
UnitKind = Literal["question", "entry", "answer", "title", "passage"]
FetchStatus = Literal["fetched", "cached", "thin", "failed", "suspect", "gone", "empty", "refused", "archived"]


def content_hash(text: str) -> str:
    """Stable key for embedded text: unchanged text is never embedded twice."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Resource:
    url: str
    title: str
    kind: ResourceKind = "other"
    site: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Between a course and its section in the category of a multi-course FAQ's entry ("ml · General"):
#: written by the FAQ reader, read by search's section filter.
COURSE_SEPARATOR = " · "


@dataclass(frozen=True)
class Entry:
    """One FAQ entry, as the user wrote it (text repaired, links collected)."""

    id: str
    question: str
    answer: str = ""
    category: str = ""
    resources: tuple[Resource, ...] = ()
    source: str = ""
    line: int = 0


@dataclass
class Page:
    """A fetched page (or the record of why it could not be had)."""

    url: str
    status: FetchStatus
    final_url: str = ""
    http_status: int = 0
    content_type: str = ""
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""
    fetched_at: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.body) and self.status != "failed"


@dataclass
class Document:
    """What extraction keeps of a page: its main text and metadata."""

    url: str
    title: str = ""
    text: str = ""
    description: str = ""
    author: str = ""
    date: str = ""
    site: str = ""
    #: Which path produced `text`: "trafilatura", "metadata" or "none".
    method: str = "none"
    thin: bool = False
    note: str = ""


@dataclass(frozen=True)
class Unit:
    """One searchable piece of text tied to its FAQ entry: the unit of embedding."""

    entry_id: str
    kind: UnitKind
    text: str
    url: str = ""
    #: What is embedded; may carry context (the page title, the section) beyond `text`.
    embed_text: str = ""
    #: What BM25 reads, when more than `text`: the profile's section (a module's name finds its
    #: entries), never a page title (repeated over every passage of a page, it outweighs them).
    lexical_text: str = ""

    @property
    def hash(self) -> str:
        return content_hash(self.embed_text or self.text)


@dataclass
class ReportRecord:
    """One line of report.json: what became of a resource."""

    url: str
    status: FetchStatus
    reason: str = ""
    title: str = ""
    chars: int = 0
    extraction: str = "none"
    entries: list[str] = field(default_factory=list)
    #: Where the link ended after redirects (when the page was had), and the HTTP status of that answer.
    final_url: str = ""
    http_status: int = 0
    #: When the copy that is indexed was fetched ("" when there is none): the date the link was last good.
    last_good: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
