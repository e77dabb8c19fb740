"""Read FAQ sources (Markdown, JSONL, CSV) into entries.

Markdown is the form users write by hand: an entry starts at a line that is
wholly bold (`**Q: ...**`) or at a `##`/`###` heading ending in `?`; the text
up to the next entry is its answer and every link in it is a resource. Text is
repaired with ftfy (`itâ€™s` -> `it’s`) since FAQs are often pasted from
mis-decoded web pages. Errors name the file and line: a bad FAQ fails the
build, it is never half-indexed.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import ftfy

from .records import COURSE_SEPARATOR, Entry, Resource, ResourceKind
from .text import site_name

log = logging.getLogger(__name__)

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".jsonl": "jsonl", ".json": "json", ".csv": "csv"}

_BOLD_LINE = re.compile(r"^\s*(\*\*|__)(?P<text>.+?)\1\s*:?\s*$")
# Linear in the line's length (a closing `###` is stripped in code, not by a lazy pattern that
# retries the rest of the line at every character).
_HEADING = re.compile(r"^\s*(?P<hashes>#{1,6})\s+(?P<text>.*\S)\s*$")
_Q_PREFIX = re.compile(r"^\s*Q\s*[:.)-]\s*", re.IGNORECASE)
# [text](url) with one level of balanced parentheses inside the URL (Wikipedia links) and of brackets
# inside the text. Text never spans a bare `[`, so a line of 30,000 `[` is parsed in linear time.
_MD_LINK = re.compile(r"\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(?P<url><[^>]*>|(?:[^\s()]|\([^\s()]*\))*)(?:\s+\"[^\"]*\")?\s*\)")
_BARE_URL = re.compile(r"(?<![(<\[])\bhttps?://[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'\"]")
# What is left of a line after its links are taken out and still looks like one: `[title](some text)`,
# e.g. a URL with spaces. Not after a word or `]` (code such as `f[0](x, y)`), not in inline code.
_BROKEN_LINK = re.compile(r"(?<![\w\]])\[[^\[\]]+\]\((?P<url>[^()]*)\)")
_INLINE_CODE = re.compile(r"`[^`]*`")
_LABEL_LINE = re.compile(r"^\s*(resources?|links?|see also|further reading)\s*:?\s*$", re.IGNORECASE)
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")


class FaqError(ValueError):
    """A FAQ source that cannot be read; the message names the file and line."""


def repair_text(text: str) -> str:
    """Fix mojibake and stray control characters, keeping curly quotes as written."""
    return ftfy.fix_text(text, uncurl_quotes=False, fix_latin_ligatures=False, normalization="NFC")


def strip_emphasis(text: str) -> str:
    return _EMPHASIS.sub(r"\2", text).strip()


def slugify(text: str, max_len: int = 80) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"['’`]", "", ascii_text.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len].rsplit("-", 1)[0]
    return slug or "entry"


_VIDEO_HOSTS = ("youtube.com", "youtu.be", "vimeo.com", "dailymotion.com")
_QA_HOSTS = ("stackoverflow.com", "stackexchange.com", "superuser.com", "serverfault.com",
             "askubuntu.com", "quora.com", "mathoverflow.net")
_PAPER_HOSTS = ("arxiv.org", "doi.org", "openreview.net", "aclanthology.org", "proceedings.neurips.cc",
                "papers.nips.cc", "jmlr.org", "semanticscholar.org")
_BOOK_HOSTS = ("neuralnetworksanddeeplearning.com", "deeplearningbook.org", "d2l.ai", "oreilly.com")


def _host_matches(host: str, hosts: Iterable[str]) -> bool:
    return any(host == h or host.endswith("." + h) for h in hosts)


def resource_kind(url: str, title: str = "") -> ResourceKind:
    """Guess what a link is from its address (and title), for the UI's badge."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.lower()
    if _host_matches(host, _VIDEO_HOSTS):
        return "video"
    if _host_matches(host, _QA_HOSTS):
        return "qa"
    if _host_matches(host, _PAPER_HOSTS) or path.endswith(".pdf"):
        return "paper"
    if _host_matches(host, _BOOK_HOSTS) or re.search(r"\b(book|chapter)\b", title, re.IGNORECASE):
        return "book"
    if re.search(r"\.(zip|tar|gz|csv|json|ipynb|py)$", path) or host in ("github.com", "gitlab.com"):
        return "other"
    return "article"


def check_url(url: str, where: str) -> str:
    url = url.strip().strip("<>")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise FaqError(f"{where}: malformed URL {url!r} (expected http:// or https:// with a host)")
    return url


def make_resource(url: str, title: str, where: str) -> Resource:
    url = check_url(url, where)
    title = strip_emphasis(repair_text(title)) or site_name(url)
    return Resource(url=url, title=title, kind=resource_kind(url, title), site=site_name(url))


@dataclass
class _Draft:
    question: str
    category: str
    line: int
    body: list[tuple[int, str]] = field(default_factory=list)


def _links_in(line: str) -> list[tuple[str, str]]:
    """(url, title) pairs of one Markdown line: [title](url) links, then bare URLs."""
    found = [(m.group("url"), m.group("text")) for m in _MD_LINK.finditer(line)]
    rest = _MD_LINK.sub(" ", line)
    found += [(m.group(0), "") for m in _BARE_URL.finditer(rest)]
    return found


def _answer_text(body: list[tuple[int, str]]) -> str:
    """The written answer: body text with labels and link-only list items dropped."""
    kept: list[str] = []
    for _, line in body:
        if _LABEL_LINE.match(line):
            continue
        bare = _LIST_MARK.sub("", line).strip()
        if _links_in(bare) and not _BARE_URL.sub("", _MD_LINK.sub("", bare)).strip(" -–—:;,."):
            continue  # a list of links is the resources, not a written answer
        kept.append(line.rstrip())
    text = "\n".join(kept).strip()
    text = _MD_LINK.sub(lambda m: m.group("text"), text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return strip_emphasis(text)


def _heading(raw: str) -> tuple[int, str] | None:
    """A markdown heading's level and text (a closing `###` taken off), or None."""
    m = _HEADING.match(raw)
    return (len(m.group("hashes")), m.group("text").rstrip("#").rstrip() or m.group("text")) if m else None


def _entry_question(raw: str, heading: tuple[int, str] | None) -> str | None:
    """The question a line starts, or None: a wholly bold line or a heading ending in `?` (`heading`:
    the line's `_heading`)."""
    heading_text = heading[1] if heading else ""
    bold = _BOLD_LINE.match(raw)
    question = bold.group("text") if bold else heading_text if heading_text.endswith("?") else None
    if question is None:
        return None
    return strip_emphasis(_Q_PREFIX.sub("", question.strip())) or None


def parse_markdown(text: str, source: str) -> list[dict[str, Any]]:
    drafts: list[_Draft] = []
    category = ""
    in_fence = False
    fenced: set[int] = set()
    # A `##`-or-deeper heading that is not a question, with the blank lines after it: a section
    # heading if the next line starts an entry or is another heading ("## Module 2: Docker" over its
    # questions), else part of the answer it sits in ("### Steps" over a list).
    section: list[tuple[int, str]] = []
    section_title = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        heading = _heading(raw)
        if section and not in_fence:
            if not raw.strip():
                section.append((number, raw))
                continue
            if heading or _entry_question(raw, heading):  # over a deeper section, or over an entry
                category = section_title
            elif drafts:
                drafts[-1].body.extend(section)
            section, section_title = [], ""
        if raw.lstrip().startswith("```"):
            in_fence = not in_fence
        if in_fence:
            if drafts:
                drafts[-1].body.append((number, raw))
                fenced.add(number)
            continue
        level, heading_text = heading or (0, "")
        if level == 1:
            category = strip_emphasis(heading_text)
            continue
        question = _entry_question(raw, heading)
        if question is not None:
            drafts.append(_Draft(question=question, category=category, line=number))
            continue
        if level and not heading_text.endswith("?"):
            section, section_title = [(number, raw)], strip_emphasis(heading_text)
            continue
        if drafts:
            drafts[-1].body.append((number, raw))
    if section and drafts:
        drafts[-1].body.extend(section)
    rows = []
    for d in drafts:
        resources: list[Resource] = []
        for number, line in d.body:
            for url, title in _links_in(line):
                resources.append(make_resource(url, title, f"{source}:{number}"))
            broken = None if number in fenced else _BROKEN_LINK.search(_INLINE_CODE.sub(" ", _MD_LINK.sub(" ", line)))
            if broken:  # a link the user meant, whose address cannot be one: say so, do not drop it
                check_url(broken.group("url"), f"{source}:{number}")
        rows.append({"question": d.question, "answer": _answer_text(d.body), "category": d.category,
                     "resources": resources, "line": d.line, "where": f"{source}:{d.line}"})
    return rows


def _urls_field(value: Any, where: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [u.strip() for u in value.split("|") if u.strip()]
    if isinstance(value, list) and all(isinstance(u, str) for u in value):
        return [u.strip() for u in value if u.strip()]
    raise FaqError(f"{where}: 'urls' must be a list of strings or a '|'-separated string")


def _titles_field(value: Any, where: str) -> list[str]:
    """Link titles, in the order of `urls`: a list of strings, or a '|'-separated string (CSV)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split("|")]
    if isinstance(value, list) and all(isinstance(t, str) or t is None for t in value):
        return [t or "" for t in value]
    raise FaqError(f"{where}: 'titles' must be a list of strings (one per URL) or a '|'-separated string, "
                   f"not {type(value).__name__}")


#: The fields a JSON, JSONL or CSV row is read for. `course` tells courses apart when one file holds
#: several (a course FAQ export): see `_qualify_by_course`.
FIELDS = ("question", "answer", "urls", "titles", "id", "category", "course")
#: Other names FAQ exports give the same fields (a course FAQ's `text` and `section`): read as ours
#: when the row does not have ours.
FIELD_ALIASES = {"text": "answer", "section": "category"}


def _ignored_fields(names: Iterable[str], source: str) -> None:
    """Say which columns were not read: an answer under a name we do not know would otherwise vanish."""
    ignored = sorted(set(names) - set(FIELDS) - set(FIELD_ALIASES) - {""})
    if ignored:
        log.warning("%s: ignored field(s) %s (read: %s; also %s)", source, ", ".join(ignored), ", ".join(FIELDS),
                    ", ".join(f"{a} as {f}" for a, f in FIELD_ALIASES.items()))


def _row_to_dict(row: dict[str, Any], where: str) -> dict[str, Any]:
    row = row | {field: row[alias] for alias, field in FIELD_ALIASES.items()
                 if alias in row and row.get(field) in (None, "")}
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise FaqError(f"{where}: missing 'question'")
    answer = row.get("answer") or ""
    if isinstance(answer, list):  # several written answers (StackExchange threads)
        answer = "\n\n".join(str(a) for a in answer if a)
    titles = _titles_field(row.get("titles"), where)
    resources = []
    for i, url in enumerate(_urls_field(row.get("urls"), where)):
        title = titles[i] if i < len(titles) else ""
        resources.append(make_resource(url, title, where))
    return {"question": repair_text(question.strip()), "answer": repair_text(str(answer).strip()),
            "category": repair_text(str(row.get("category") or "").strip()),
            "id": str(row["id"]).strip() if row.get("id") not in (None, "") else None,
            "course": repair_text(str(row.get("course") or "").strip()), "resources": resources, "where": where}


def _decode_json(text: str, where: Callable[[int], str]) -> Any:
    """`text` as JSON; an error names `where(line)` of the fault."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaqError(f"{where(exc.lineno)}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise FaqError(f"{where(1)}: JSON nested too deeply (an entry is one flat object)") from None


def _json_rows(items: Iterable[tuple[str, int, Any]], source: str) -> list[dict[str, Any]]:
    """Rows from decoded JSON entries, each given with where it is and its line (or position)."""
    rows = []
    names: set[str] = set()
    for where, line, item in items:
        if not isinstance(item, dict):
            raise FaqError(f"{where}: expected a JSON object")
        rows.append(_row_to_dict(item, where) | {"line": line})
        names.update(item)
    _ignored_fields(names, source)
    return rows


def parse_jsonl(text: str, source: str) -> list[dict[str, Any]]:
    def entries() -> Iterable[tuple[str, int, Any]]:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                where = f"{source}:{number}"
                yield where, number, _decode_json(line, lambda _: where)
    return _json_rows(entries(), source)


#: The keys under which a JSON FAQ file keeps its entries: `{"documents": [...]}`, or a list of
#: such groups, one per course (`[{"course": "...", "documents": [...]}, ...]`, a course FAQ export).
ENTRY_LISTS = ("documents", "entries", "faq", "questions", "items")


def _entry_list(group: dict[str, Any]) -> list[Any] | None:
    return next((group[k] for k in ENTRY_LISTS if isinstance(group.get(k), list)), None)


def _json_entries(data: Any, source: str) -> list[Any]:
    """Each entry of a JSON FAQ file, in file order; an entry of a course's group carries its `course`."""
    if isinstance(data, dict) and _entry_list(data) is not None:
        data = [data]
    if not isinstance(data, list):
        raise FaqError(f"{source}: expected a JSON array of entries, or an object with a list under one of "
                       f"{', '.join(ENTRY_LISTS)}")
    entries: list[Any] = []
    for item in data:
        group = _entry_list(item) if isinstance(item, dict) and "question" not in item else None
        if group is None:
            entries.append(item)
            continue
        course = str(item.get("course") or item.get("name") or "")
        entries += [{"course": course} | entry if course and isinstance(entry, dict) and not entry.get("course")
                    else entry for entry in group]
    return entries


def parse_json(text: str, source: str) -> list[dict[str, Any]]:
    """One JSON document: an array of entries (the JSONL fields), or of groups of them by course."""
    entries = _json_entries(_decode_json(text, lambda line: f"{source}:{line}"), source)
    return _json_rows(((f"{source}: entry {n}", n, entry) for n, entry in enumerate(entries, start=1)), source)


def parse_csv(text: str, source: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "question" not in header:
        raise FaqError(f"{source}:1: CSV has no 'question' column (columns: {', '.join(header) or 'none'})")
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            where = f"{source}:{reader.line_num}"
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            rows.append(_row_to_dict(row, where) | {"line": reader.line_num})
    except csv.Error as exc:
        raise FaqError(f"{source}:{reader.line_num}: bad CSV ({exc})") from None
    _ignored_fields(header, source)
    return rows


def faq_files(path: Path) -> list[Path]:
    """The FAQ files a --faq argument names: the file itself, or a folder's FAQ files."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
        if not files:
            raise FaqError(f"{path}: folder holds no FAQ file ({', '.join(SUFFIXES)})")
        return files
    if not path.exists():
        raise FaqError(f"{path}: no such file")
    return [path]


def source_format(path: Path) -> str:
    """How a FAQ file is read, by its suffix: anything unknown is markdown."""
    return SUFFIXES.get(path.suffix.lower(), "markdown")


def read_source(path: Path) -> list[dict[str, Any]]:
    fmt = source_format(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FaqError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FaqError(f"{path}:{line}: not UTF-8 text") from None
    if fmt == "markdown":
        text = repair_text(text)
    parser = {"markdown": parse_markdown, "jsonl": parse_jsonl, "json": parse_json, "csv": parse_csv}[fmt]
    return _qualify_by_course(parser(text, str(path)))


def _qualify_by_course(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One file holding several courses' FAQs (each with its own "How do I join?") names the course in
    each entry's category, which is searched and shown with it; a file of one course is left as is."""
    if len({row.get("course") for row in rows if row.get("course")}) < 2:
        return rows
    return [row | {"category": COURSE_SEPARATOR.join(p for p in (row["course"], row["category"]) if p)}
            if row.get("course") else row for row in rows]


def load_entries(paths: Iterable[Path]) -> list[Entry]:
    """All entries of all sources, with ids unique across them.

    Explicit ids are taken first, across all sources (two equal explicit ids are an error); generated
    slugs then step around them (`-2`, `-3`, ...), so an explicit id equal to another entry's slug is
    not a clash: the explicit one keeps it."""
    entries: list[Entry] = []
    files = [f for p in paths for f in faq_files(Path(p))]
    sources: list[tuple[Path, list[dict[str, Any]]]] = []
    explicit: set[str] = set()
    for path in files:
        rows = read_source(path)
        if not rows:
            hint = (" (an entry starts with a bold line or a '## ...?' heading)"
                    if source_format(path) == "markdown" else "")
            raise FaqError(f"{path}: no FAQ entries found{hint}")
        for row in rows:
            given = row.get("id")
            if given:
                if given in explicit:
                    raise FaqError(f"{row['where']}: duplicate id {given!r}")
                explicit.add(given)
        sources.append((path, rows))
    seen: set[str] = set(explicit)
    for path, rows in sources:
        for row in rows:
            entry_id = row.get("id")
            if not entry_id:
                base = entry_id = slugify(row["question"])
                n = 2
                while entry_id in seen:
                    entry_id, n = f"{base}-{n}", n + 1
                seen.add(entry_id)
            entries.append(Entry(id=entry_id, question=row["question"], answer=row.get("answer", ""),
                                 category=row.get("category", ""), resources=tuple(_dedupe(row["resources"])),
                                 source=str(path), line=row["line"]))
    log.info("read %d entries from %d source(s)", len(entries), len(files))
    return entries


def _dedupe(resources: list[Resource]) -> list[Resource]:
    seen: dict[str, Resource] = {}
    for r in resources:
        seen.setdefault(r.url, r)
    return list(seen.values())
