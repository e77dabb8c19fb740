"""Fetch the FAQ's linked pages over HTTP, politely, and fall back on the cache.

Concurrent across hosts, one request at a time per host with a pause between
them; robots.txt is honoured; 429 and 5xx are retried with backoff (a
Retry-After is obeyed up to a cap); bodies are capped and content types
checked. A host that cannot be reached at all (no DNS, connection refused) is
marked dead for the rest of the build, so an offline build fails fast instead
of waiting out timeouts page after page. A page that fails now but was fetched
before keeps its last good copy.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from typing import Callable, Iterable
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from .cache import PageCache
from .config import FetchSettings
from .records import Page
from .text import utc_now

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}


class FetchFailure(Exception):
    """Why a page could not be had; `retry_after` is set when the server asked us to wait."""

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None,
                 host_down: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.host_down = host_down


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class _Host:
    """Per-host state: a lock so one request runs at a time, robots rules, and whether it is down."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_request = 0.0
        self.robots: RobotFileParser | None = None
        self.down_reason = ""


class Fetcher:
    def __init__(self, settings: FetchSettings, cache: PageCache, *, offline: bool = False,
                 refresh: bool = False, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.offline = offline
        self.refresh = refresh
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent,
                     "Accept": "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.5,*/*;q=0.1"},
            timeout=timeout, follow_redirects=True, max_redirects=settings.max_redirects,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public -----------------------------------------------------------------
    def fetch_all(self, urls: Iterable[str], *, workers: int | None = None,
                  on_done: Callable[[Page], None] | None = None) -> dict[str, Page]:
        """Every URL once, in the order given. `on_done` is called in the calling thread as each page
        completes (not in the workers), so a caller can draw progress from it without locking."""
        urls = list(dict.fromkeys(urls))
        with ThreadPoolExecutor(max_workers=max(1, workers or self.settings.workers)) as pool:
            futures = [pool.submit(self.fetch, url) for url in urls]
            for future in as_completed(futures):
                if on_done:
                    on_done(future.result())
            pages = [future.result() for future in futures]
        return {page.url: page for page in pages}

    def fetch(self, url: str) -> Page:
        """The page at `url`: fresh, revalidated, or the last good copy; `failed` only when none exists."""
        cached = self.cache.get(url)
        if self.offline:
            if cached:
                cached.reason = "offline: using cached copy"
                return cached
            return Page(url=url, status="failed", reason="offline and not in cache")
        try:
            page = self._fetch_live(url, None if self.refresh else cached)
        except FetchFailure as failure:
            if cached:
                log.info("%s: %s; keeping the copy fetched %s", url, failure.reason, cached.fetched_at)
                cached.reason = f"{failure.reason}; using copy fetched {cached.fetched_at}"
                return cached
            log.info("%s: %s", url, failure.reason)
            return Page(url=url, status="failed", reason=failure.reason)
        if page.status == "fetched":
            self.cache.put(page)
        return page

    # -- internals --------------------------------------------------------------
    def _host(self, url: str) -> tuple[str, _Host]:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}".lower()
        with self._hosts_lock:
            return key, self._hosts.setdefault(key, _Host())

    def _fetch_live(self, url: str, cached: Page | None) -> Page:
        origin, host = self._host(url)
        deadline = time.monotonic() + self.settings.page_deadline
        with host.lock:  # one request at a time per host
            if host.down_reason:
                raise FetchFailure(host.down_reason)
            try:
                if self.settings.respect_robots and not self._allowed(origin, host, url):
                    raise FetchFailure("disallowed by robots.txt")
                return self._get_with_retries(url, host, cached, deadline)
            except FetchFailure as failure:
                if failure.host_down:
                    host.down_reason = failure.reason
                raise

    def _pause(self, host: _Host) -> None:
        wait = host.last_request + self.settings.per_host_delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        host.last_request = time.monotonic()

    def _allowed(self, origin: str, host: _Host, url: str) -> bool:
        if host.robots is None:
            rules = RobotFileParser()
            try:
                self._pause(host)
                resp = self.client.get(f"{origin}/robots.txt")
            except httpx.RequestError as exc:  # TransportError, TooManyRedirects, DecodingError
                raise self._transport_failure(exc) from None
            if resp.status_code >= 500:
                log.info("%s/robots.txt answered %d; treating the site as allowing all", origin, resp.status_code)
                rules.parse([])
            elif resp.status_code >= 400:
                rules.parse([])
            else:
                rules.parse(resp.text.splitlines())
            host.robots = rules
        return host.robots.can_fetch(self.settings.user_agent, url)

    def _transport_failure(self, exc: httpx.RequestError) -> FetchFailure:
        if isinstance(exc, httpx.TimeoutException):
            return FetchFailure(f"timed out ({type(exc).__name__})", retryable=True)
        if isinstance(exc, httpx.TooManyRedirects):
            return FetchFailure(f"more than {self.settings.max_redirects} redirects")
        if isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol)):
            detail = str(exc) or type(exc).__name__
            return FetchFailure(f"cannot connect: {detail}", host_down=True)
        if isinstance(exc, httpx.DecodingError):
            return FetchFailure(f"undecodable body: {exc or type(exc).__name__}")
        return FetchFailure(f"network error: {exc or type(exc).__name__}", retryable=True)

    def _get_with_retries(self, url: str, host: _Host, cached: Page | None, deadline: float) -> Page:
        attempt = 0
        while True:
            try:
                self._pause(host)
                return self._get_once(url, cached, deadline)
            except FetchFailure as failure:
                if not failure.retryable or attempt >= self.settings.max_retries:
                    raise
                delay = failure.retry_after
                if delay is None:
                    delay = self.settings.backoff_base * (2 ** attempt)
                if delay > self.settings.max_retry_after or time.monotonic() + delay > deadline:
                    raise FetchFailure(f"{failure.reason}; server asked to wait {delay:.0f}s") from None
                log.info("%s: %s; retrying in %.1fs", url, failure.reason, delay)
                time.sleep(delay)
                attempt += 1

    def _get_once(self, url: str, cached: Page | None, deadline: float) -> Page:
        headers = {}
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        cap = self.settings.max_bytes
        try:
            with self.client.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 304 and cached is not None:
                    cached.reason = "not modified since last fetch"
                    return cached
                if resp.status_code in RETRY_STATUSES:
                    raise FetchFailure(f"HTTP {resp.status_code}", retryable=True,
                                       retry_after=parse_retry_after(resp.headers.get("Retry-After")))
                if resp.status_code >= 400:
                    raise FetchFailure(f"HTTP {resp.status_code}")
                ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if ctype and ctype not in self.settings.accepted_types:
                    raise FetchFailure(f"unsupported content type {ctype}")
                declared = resp.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise FetchFailure(f"body larger than {cap} bytes ({declared} declared)")
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise FetchFailure(f"body larger than {cap} bytes")
                    if time.monotonic() > deadline:
                        raise FetchFailure(f"slower than {self.settings.page_deadline:.0f}s for the whole page")
                    chunks.append(chunk)
                body = b"".join(chunks)
                if not body.strip():
                    raise FetchFailure("empty body")
                return Page(url=url, status="fetched", final_url=str(resp.url), http_status=resp.status_code,
                            content_type=ctype, body=body, etag=resp.headers.get("ETag", ""),
                            last_modified=resp.headers.get("Last-Modified", ""), fetched_at=utc_now())
        except httpx.RequestError as exc:  # TooManyRedirects and DecodingError are not TransportErrors
            raise self._transport_failure(exc) from None
