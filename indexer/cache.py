"""The page cache: every page once fetched is kept, revalidated, and never lost.

One JSON file of metadata and one body file per URL, written atomically
(temporary file + rename), so an interrupted build leaves either the old copy
or the new one, never a torn one. A failed fetch never touches the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from .files import atomic_write
from .records import Page

log = logging.getLogger(__name__)


class PageCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.pages = self.root / "pages"

    def _meta_path(self, url: str) -> Path:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.pages / key[:2] / f"{key}.json"

    def urls(self) -> list[str]:
        """The URL of every page in the cache (from its metadata files)."""
        out = []
        for meta_path in self.pages.glob("*/*.json"):
            try:
                out.append(json.loads(meta_path.read_text("utf-8"))["url"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("cache metadata %s unreadable (%s); skipping it", meta_path, exc)
        return out

    def get(self, url: str) -> Page | None:
        meta_path = self._meta_path(url)
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            body = (meta_path.parent / meta["body_file"]).read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("cache entry for %s unreadable (%s); ignoring it", url, exc)
            return None
        if hashlib.sha256(body).hexdigest() != meta.get("body_sha256"):
            log.warning("cache body for %s does not match its metadata; ignoring it", url)
            return None
        return Page(url=url, status="cached", final_url=meta.get("final_url", url),
                    http_status=meta.get("http_status", 200), content_type=meta.get("content_type", ""),
                    body=body, etag=meta.get("etag", ""), last_modified=meta.get("last_modified", ""),
                    fetched_at=meta.get("fetched_at", ""))

    def put(self, page: Page) -> None:
        """Store a good page.

        The body is named by its own hash and written before the metadata that
        points at it, so a crash at any moment leaves the previous copy whole.
        """
        meta_path = self._meta_path(page.url)
        body_sha = hashlib.sha256(page.body).hexdigest()
        body_file = f"{meta_path.stem}.{body_sha[:16]}.body"
        atomic_write(meta_path.parent / body_file, page.body)
        meta = {"url": page.url, "final_url": page.final_url, "http_status": page.http_status,
                "content_type": page.content_type, "etag": page.etag, "last_modified": page.last_modified,
                "fetched_at": page.fetched_at, "body_sha256": body_sha, "body_file": body_file}
        atomic_write(meta_path, json.dumps(meta, indent=1).encode("utf-8"))
        for old in meta_path.parent.glob(f"{meta_path.stem}.*.body"):
            if old.name != body_file:
                old.unlink(missing_ok=True)
