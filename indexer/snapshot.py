"""Pages the indexer cannot fetch itself, brought in by hand; and the page cache written out.

A paywalled article or a page behind a login can still be indexed: save it from
a browser ("save page as", HTML only), list it in a mapping file, and import the
folder into the page cache. The next build uses it like any cached page (with
`--offline`, or online when the site keeps refusing). `export` writes every
cached page out in the same form, to inspect, archive or move to another machine.

The folder form is the one of `../shared/fixtures/seed-pages`: the pages' files
and `urls.tsv`, a header line `url<TAB>file`, then one line per page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from .cache import PageCache
from .faq import FaqError, check_url
from .files import atomic_write
from .records import Page
from .text import utc_now

log = logging.getLogger(__name__)

MAPPING = "urls.tsv"
HEADER = "url\tfile"
#: A saved page bigger than this is not a page (a video, an archive): refused.
MAX_SNAPSHOT_BYTES = 20_000_000
#: File suffix -> the content type the page is stored with.
CONTENT_TYPES = {".html": "text/html", ".htm": "text/html", ".xhtml": "text/html", ".txt": "text/plain"}


class SnapshotError(FaqError):
    """A snapshot folder that cannot be imported: names the file and line."""


@dataclass
class SnapshotResult:
    pages: int = 0
    folder: Path = Path(".")
    skipped: list[str] = field(default_factory=list)


def read_mapping(folder: Path) -> list[tuple[str, Path]]:
    """(url, file) per line of `folder/urls.tsv`; one-line errors naming the file and line."""
    path = Path(folder) / MAPPING
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no mapping file (a header line '{HEADER.replace(chr(9), '<TAB>')}', "
                            "then one 'URL<TAB>file' line per saved page)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: cannot read ({exc})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.strip().startswith("#") or (number == 1 and line.strip() == HEADER):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip():
            raise SnapshotError(f"{path}:{number}: expected 'URL<TAB>file', got {line[:80]!r}")
        try:
            url = check_url(parts[0], f"{path}:{number}")
        except FaqError as exc:
            raise SnapshotError(str(exc)) from None
        name = parts[1].strip()
        file = (Path(folder) / name).resolve()
        if Path(folder).resolve() not in file.parents:
            raise SnapshotError(f"{path}:{number}: {name!r} is outside the snapshot folder")
        rows.append((url, file))
    return rows


def import_snapshot(folder: Path, cache: PageCache) -> SnapshotResult:
    """Put every page listed in `folder/urls.tsv` into the page cache, as if fetched now."""
    result = SnapshotResult(folder=Path(folder))
    rows = read_mapping(folder)
    for url, file in rows:
        kind = CONTENT_TYPES.get(file.suffix.lower())
        if kind is None:
            result.skipped.append(f"{file.name}: not a saved page ({', '.join(CONTENT_TYPES)} only)")
            continue
        try:
            size = file.stat().st_size
            if size > MAX_SNAPSHOT_BYTES:
                result.skipped.append(f"{file.name}: {size:,} bytes, more than a page")
                continue
            body = file.read_bytes()
        except OSError as exc:
            raise SnapshotError(f"{file}: cannot read ({exc.strerror or exc})") from None
        if not body.strip():
            result.skipped.append(f"{file.name}: empty")
            continue
        cache.put(Page(url=url, status="fetched", final_url=url, http_status=200, content_type=kind, body=body,
                       fetched_at=utc_now()))
        result.pages += 1
    log.info("imported %d pages from %s (%d skipped)", result.pages, folder, len(result.skipped))
    return result


def _file_name(number: int, url: str, content_type: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", url.split("://", 1)[-1].lower()).strip("-")[:60] or "page"
    return f"{number:02d}-{slug}{'.txt' if content_type.startswith('text/plain') else '.html'}"


def export_snapshot(cache: PageCache, folder: Path) -> SnapshotResult:
    """Every cached page as a file plus `urls.tsv`, the form `import_snapshot` reads."""
    folder = Path(folder)
    result = SnapshotResult(folder=folder)
    lines = [HEADER]
    for number, url in enumerate(sorted(cache.urls()), start=1):
        page = cache.get(url)
        if page is None:
            result.skipped.append(f"{url}: cached copy unreadable")
            continue
        name = _file_name(number, url, page.content_type)
        try:
            atomic_write(folder / name, page.body)
        except OSError as exc:
            raise SnapshotError(f"{folder / name}: cannot write ({exc.strerror or exc})") from None
        lines.append(f"{url}\t{name}")
        result.pages += 1
    try:
        atomic_write(folder / MAPPING, ("\n".join(lines) + "\n").encode("utf-8"))
    except OSError as exc:
        raise SnapshotError(f"{folder / MAPPING}: cannot write ({exc.strerror or exc})") from None
    return result
