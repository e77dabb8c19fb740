"""Fetch the FAQ's linked pages over HTTP, politely, and fall back on the cache.

Concurrent across hosts, one request at a time per host with a pause between
them; robots.txt is honoured; 429 and 5xx are retried with backoff (a
Retry-After is obeyed up to a cap); bodies are capped and content types
checked. A host that cannot be reached at all (no DNS, connection refused) is
marked dead for the rest of the build, so an offline build fails fast instead
of waiting out timeouts page after page. A page that fails now but was fetched
before keeps its last good copy.

Under hostile servers (issue 12):
- every request runs under one deadline, response headers included: a watchdog
  closes the socket when the page's time is up, so a server trickling its
  headers cannot stall a build; the whole fetching stage has a deadline too;
- bodies (robots.txt included) are decompressed here, chunk by chunk, under a
  size cap, so neither a huge body nor a gzip bomb grows in memory;
- robots.txt runs under the same deadline; a failure to get it (timeout, 5xx)
  is remembered for the host and means "disallow all" (RFC 9309), so it costs
  one timeout, not one per page;
- redirects are followed here, hop by hop, each hop under robots.txt, the
  one-request-per-host rule and the scheme rule; a bad hop fails its page only;
- private, loopback, link-local and metadata addresses are refused unless
  allowed (`FetchSettings.allow_private`): the host is resolved and every address
  checked first, and the address actually connected to is checked again, so DNS
  tricks do not pass; URLs carrying credentials are refused;
- binary bodies are refused whatever their Content-Type (indexer/sniff.py);
- a fetched page replaces the cached one only when it is at least as good
  (indexer/quality.py): otherwise the last good copy is kept and the page is
  `suspect`; a page now answering 404/410 is `gone` and keeps its copy for
  `gone_keep_days`.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import quote, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from .cache import PageCache
from .config import FetchSettings
from .records import Page
from .sniff import binary_reason
from .text import utc_now

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
GONE_STATUSES = {404, 410}
SCHEMES = ("http", "https")
PRIVATE_HINT = "allow with `build --allow-private` or FAQ_ALLOW_PRIVATE=1"

#: judge(new, cached) -> why `new` must not replace `cached` ("" when it may).
Judge = Callable[[Page, "Page | None"], str]


class SoftNotFound(str):
    """A judge's verdict that a page says "not found" while answering 200 (a soft 404).

    Words alone cannot tell a soft 404 from a short page about HTTP 404s. With no earlier copy to
    keep, the fetcher asks the site for a page that surely does not exist beside it: a site that
    answers that with a real 404 does not hide missing pages behind 200, and the page is indexed.
    """


class FetchFailure(Exception):
    """Why a page could not be had; `retry_after` is set when the server asked us to wait.

    `refused`: the page is not to be fetched at all (an internal address, credentials in the URL,
    a binary body); `gone`: the server says the page no longer exists (404, 410)."""

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None,
                 host_down: bool = False, refused: bool = False, gone: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.host_down = host_down
        self.refused = refused
        self.gone = gone


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


def internal_address(address: str) -> bool:
    """Whether an IP address is private, loopback, link-local, metadata or otherwise not public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True  # not an address we understand: not public
    mapped = getattr(ip, "ipv4_mapped", None) or getattr(ip, "sixtofour", None)
    if mapped is not None:
        ip = mapped
    return not ip.is_global or ip.is_multicast


def resolve(name: str, port: int, timeout: float | None = None) -> list[str]:
    """Every address `name` resolves to (the check looks at all of them, not the first).

    The system resolver has no deadline of its own, so the lookup runs in a daemon thread and is
    given up after `timeout` seconds (a hung lookup is left to finish on its own)."""
    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(sorted({info[4][0] for info in socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)}))
        except BaseException as exc:  # handed to the caller
            found.append(exc)

    worker = threading.Thread(target=lookup, daemon=True, name=f"resolve {name}")
    worker.start()
    worker.join(timeout)
    if not found:
        raise socket.timeout(f"no answer from DNS in {timeout:g}s")
    if isinstance(found[0], BaseException):
        raise found[0]
    return found[0]


class _Host:
    """Per-host state: a lock so one request runs at a time, robots rules, and whether it is down."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_request = 0.0
        self.robots: RobotFileParser | None = None
        #: Why robots.txt could not be had: every page of the host is then disallowed, without asking again.
        self.robots_error = ""
        self.down_reason = ""
        #: None until the host name is resolved and checked; then "" (public) or why it is refused.
        self.address_refusal: str | None = None


class _Refused(Exception):
    """Raised from the connection trace when the address connected to is internal."""


@dataclass
class _Watch:
    """One request's watchdog: at the deadline it shuts the socket, whatever the request is waiting for."""

    allow_private: bool
    sock: socket.socket | None = None
    expired: bool = False
    refused: str = ""

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is None:
            return
        self.sock = sock
        if not self.allow_private:
            try:
                peer = sock.getpeername()[0]
            except OSError:
                peer = ""
            if peer and internal_address(peer):
                self.refused = peer
                self._shut()
                raise _Refused(peer)
        if self.expired:
            self._shut()

    def expire(self) -> None:
        self.expired = True
        self._shut()

    def _shut(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Inflater:
    """Content-Encoding undone here, never producing more than asked for (no gzip bomb in memory)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding.strip().lower()
        self.obj: Any = None
        if self.encoding in ("gzip", "x-gzip"):
            self.obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding not in ("", "identity", "deflate"):
            raise FetchFailure(f"unsupported content encoding {encoding!r}")

    def feed(self, data: bytes, limit: int) -> bytes:
        """Up to `limit` decoded bytes of `data` (more input than that is over the cap anyway)."""
        if self.encoding in ("", "identity"):
            return data[:limit]
        if self.obj is None:  # deflate: zlib-wrapped as the RFC says, or raw as some servers send
            self.obj = zlib.decompressobj(zlib.MAX_WBITS if data[:1] == b"\x78" else -zlib.MAX_WBITS)
        try:
            return self.obj.decompress(data, limit)
        except zlib.error as exc:
            raise FetchFailure(f"undecodable body ({self.encoding}: {exc})") from None


class Fetcher:
    def __init__(self, settings: FetchSettings, cache: PageCache, *, offline: bool = False,
                 refresh: bool = False, transport: httpx.BaseTransport | None = None,
                 judge: Judge | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.offline = offline
        self.refresh = refresh
        self.judge = judge
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()
        self._build_deadline = (time.monotonic() + settings.build_deadline) if settings.build_deadline > 0 \
            else float("inf")
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate",
                     "Accept": "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.5,*/*;q=0.1"},
            # A fresh connection per request: the watchdog and the address check see every socket.
            timeout=timeout, follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0),
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
            if failure.refused:
                log.info("%s: refused: %s", url, failure.reason)
                return Page(url=url, status="refused", reason=failure.reason)
            if cached is None and self.settings.archive_fallback:
                archived = self._archived(url, failure.reason)
                if archived is not None:
                    return archived
            if failure.gone:
                return self._gone(url, failure, cached)
            if cached:
                log.info("%s: %s; keeping the copy fetched %s", url, failure.reason, cached.fetched_at)
                cached.reason = f"{failure.reason}; using copy fetched {cached.fetched_at}"
                return cached
            log.info("%s: %s", url, failure.reason)
            return Page(url=url, status="failed", reason=failure.reason)
        if page.status == "fetched":
            verdict = self._judge(page, cached)
            if isinstance(verdict, SoftNotFound) and cached is None and self._answers_missing_with_404(page):
                log.info("%s: %s, but the site answers 404 for a missing page beside it: indexed", url, verdict)
                verdict = ""
            if verdict:
                if cached:
                    log.warning("%s: %s; keeping the copy fetched %s", url, verdict, cached.fetched_at)
                    cached.status = "suspect"
                    cached.reason = f"{verdict}; kept the copy fetched {cached.fetched_at}"
                    return cached
                log.warning("%s: %s; not indexed", url, verdict)
                return Page(url=url, status="suspect", final_url=page.final_url, http_status=page.http_status,
                            reason=f"{verdict}; no earlier copy, not indexed")
            self.cache.put(page)
        return page

    # -- internals --------------------------------------------------------------
    def _judge(self, page: Page, cached: Page | None) -> str:
        if self.judge is None:
            return ""
        try:
            return self.judge(page, cached)
        except Exception as exc:  # a judge that fails must not lose the page
            log.warning("%s: could not compare with the cached copy (%s)", page.url, exc)
            return ""

    def _answers_missing_with_404(self, page: Page) -> bool:
        """Whether the page's site answers 404 / 410 for a made-up page in the same folder (one request,
        under the host's usual rules)."""
        probe = urljoin(page.final_url or page.url, f"faq-search-missing-{uuid.uuid4().hex[:12]}")
        try:
            self._fetch_live(probe, None)
        except FetchFailure as failure:
            return failure.gone
        return False

    def _archived(self, url: str, why: str) -> Page | None:
        """The web archive's closest copy of a page that failed and has no cached copy (None if it has none).

        Asks the availability API (`FetchSettings.archive_api`: `?url=` answers
        `{"archived_snapshots": {"closest": {"available": true, "url": ..., "timestamp": ...}}}`), then
        fetches the snapshot under the same rules as any page (robots.txt, addresses, caps, deadlines).
        """
        api = f"{self.settings.archive_api}?url={quote(url, safe='')}"
        try:
            answer = self._fetch_live(api, None, accept=("application/json", "text/json"))
            closest = json.loads(answer.body)["archived_snapshots"]["closest"]
            if not closest.get("available") or str(closest.get("status", "200")) != "200":
                log.info("%s: no copy in the web archive", url)
                return None
            snapshot = self._fetch_live(str(closest["url"]), None)
        except (FetchFailure, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.info("%s: the web archive could not help (%s)", url, getattr(exc, "reason", exc))
            return None
        stamp = str(closest.get("timestamp", ""))
        try:
            when = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
            fetched_at = when.isoformat(timespec="seconds")
        except ValueError:
            fetched_at = utc_now()
        log.info("%s: %s; using the web archive's copy of %s", url, why, fetched_at[:10])
        return Page(url=url, status="archived", final_url=snapshot.final_url, http_status=snapshot.http_status,
                    content_type=snapshot.content_type, body=snapshot.body, fetched_at=fetched_at,
                    reason=f"{why}; indexed the web archive's copy of {fetched_at[:10]}")

    def _gone(self, url: str, failure: FetchFailure, cached: Page | None) -> Page:
        if cached is None:
            return Page(url=url, status="failed", reason=failure.reason)
        keep = timedelta(days=self.settings.gone_keep_days)
        try:
            fetched = datetime.fromisoformat(cached.fetched_at.replace("Z", "+00:00"))
            if fetched.tzinfo is None:
                fetched = fetched.replace(tzinfo=timezone.utc)
        except ValueError:
            fetched = datetime.now(timezone.utc)
        until = fetched + keep
        if datetime.now(timezone.utc) <= until:
            cached.status = "gone"
            cached.reason = (f"{failure.reason}: the page is gone; last good copy fetched {cached.fetched_at}, "
                             f"kept (stale) until {until.date().isoformat()}")
            return cached
        return Page(url=url, status="gone", reason=f"{failure.reason}: the page is gone; last good copy fetched "
                                                   f"{cached.fetched_at}, older than {self.settings.gone_keep_days:g} "
                                                   "days, no longer indexed")

    def _host(self, url: str) -> tuple[str, _Host]:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}".lower()
        with self._hosts_lock:
            return key, self._hosts.setdefault(key, _Host())

    def _deadline_failure(self) -> FetchFailure:
        if time.monotonic() >= self._build_deadline:
            return FetchFailure(f"the build's fetch deadline ({self.settings.build_deadline:.0f}s) passed")
        return FetchFailure(f"slower than {self.settings.page_deadline:g}s for the whole page (deadline)")

    def _fetch_live(self, url: str, cached: Page | None, accept: tuple[str, ...] = ()) -> Page:
        """Follow `url` hop by hop; each hop is fetched under its own host's rules. `accept`: content types
        taken besides the settings' (the web archive's JSON answer)."""
        deadline = min(time.monotonic() + self.settings.page_deadline, self._build_deadline)
        current, hops = url, 0
        while True:
            parts = urlsplit(current)
            if parts.scheme not in SCHEMES:
                raise FetchFailure(f"redirected to an unsupported scheme ({current[:80]})")
            if parts.username is not None or parts.password is not None:
                raise FetchFailure("the URL carries credentials (user:password@); refused", refused=True)
            origin, host = self._host(current)
            with host.lock:  # one request at a time per host
                if host.down_reason:
                    raise FetchFailure(host.down_reason)
                if time.monotonic() >= deadline:
                    raise self._deadline_failure()
                try:
                    self._check_address(parts, host, deadline)
                    if self.settings.respect_robots and not self._allowed(origin, host, current, deadline):
                        raise FetchFailure("disallowed by robots.txt" + (f" (after a redirect to {current})"
                                                                         if hops else ""))
                    result = self._get_with_retries(current, host, cached, deadline, accept)
                except FetchFailure as failure:
                    if failure.host_down:
                        host.down_reason = failure.reason
                    raise
            if isinstance(result, Page):
                if result.status == "fetched":
                    result.url, result.final_url = url, current
                return result
            hops += 1
            if hops > self.settings.max_redirects:
                raise FetchFailure(f"more than {self.settings.max_redirects} redirects")
            current = result

    def _check_address(self, parts: Any, host: _Host, deadline: float) -> None:
        """Refuse internal addresses: every address the host name resolves to must be public."""
        if self.settings.allow_private:
            return
        if host.address_refusal is None:
            name = parts.hostname or ""
            try:
                addresses = resolve(name, parts.port or (443 if parts.scheme == "https" else 80),
                                    timeout=max(0.0, min(self.settings.connect_timeout, deadline - time.monotonic())))
            except (UnicodeError, OSError) as exc:  # socket.gaierror is an OSError
                raise FetchFailure(f"cannot connect: cannot resolve {name} ({exc})", host_down=True) from None
            internal = [a for a in addresses if internal_address(a)]
            host.address_refusal = (f"{name} is an internal address ({', '.join(internal)}); {PRIVATE_HINT}"
                                    if internal else "")
        if host.address_refusal:
            raise FetchFailure(host.address_refusal, refused=True)

    def _pause(self, host: _Host) -> None:
        wait = host.last_request + self.settings.per_host_delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        host.last_request = time.monotonic()

    @contextmanager
    def _open(self, url: str, headers: dict[str, str], deadline: float) -> Iterator[httpx.Response]:
        """One request without redirects, under `deadline` from the first byte to the last."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._deadline_failure()
        watch = _Watch(allow_private=self.settings.allow_private)
        timer = threading.Timer(remaining, watch.expire)
        timer.daemon = True
        timer.start()
        timeout = httpx.Timeout(min(self.settings.read_timeout, remaining),
                                connect=min(self.settings.connect_timeout, remaining))
        try:
            with self.client.stream("GET", url, headers=headers, timeout=timeout,
                                    extensions={"trace": watch.trace}) as resp:
                yield resp
        except _Refused:
            raise FetchFailure(f"{urlsplit(url).hostname} connected to an internal address ({watch.refused}); "
                               f"{PRIVATE_HINT}", refused=True) from None
        except (httpx.RequestError, OSError) as exc:
            if watch.expired:
                raise self._deadline_failure() from None
            if isinstance(exc, httpx.RequestError):
                raise self._transport_failure(exc) from None
            raise FetchFailure(f"network error: {exc}", retryable=True) from None
        except FetchFailure:
            raise
        finally:
            timer.cancel()

    def _read_body(self, resp: httpx.Response, cap: int, deadline: float, *, truncate: bool = False) -> bytes:
        """The decoded body, at most `cap` bytes: beyond that a failure, or with `truncate` the first `cap`."""
        inflater = _Inflater(resp.headers.get("Content-Encoding", ""))
        declared = resp.headers.get("Content-Length", "")
        if not truncate and inflater.encoding in ("", "identity") and declared.isdigit() and int(declared) > cap:
            raise FetchFailure(f"body larger than {cap} bytes ({declared} declared)")
        out = bytearray()
        for raw in resp.iter_raw():
            if time.monotonic() > deadline:
                raise self._deadline_failure()
            out += inflater.feed(raw, cap + 1 - len(out))
            if len(out) > cap:
                if truncate:
                    return bytes(out[:cap])
                raise FetchFailure(f"body larger than {cap} bytes")
        return bytes(out)

    def _allowed(self, origin: str, host: _Host, url: str, deadline: float) -> bool:
        if host.robots_error:
            raise FetchFailure(host.robots_error)
        if host.robots is None:
            try:
                lines = self._robots_lines(f"{origin}/robots.txt", host, deadline)
            except FetchFailure as failure:
                if failure.host_down or failure.refused:
                    raise
                host.robots_error = (f"robots.txt could not be read ({failure.reason}); "
                                     "nothing is fetched from this host in this build")
                log.info("%s: %s", origin, host.robots_error)
                raise FetchFailure(host.robots_error) from None
            rules = RobotFileParser()
            rules.parse(lines)
            host.robots = rules
        return host.robots.can_fetch(self.settings.user_agent, url)

    def _robots_lines(self, robots_url: str, host: _Host, deadline: float) -> list[str]:
        """robots.txt's lines; [] (allow all) when it does not exist. A server error or a timeout is a
        failure: the host is then treated as disallowing everything (RFC 9309, 2.3.1.4)."""
        current = robots_url
        for _ in range(self.settings.max_redirects + 1):
            with self._turn_at(current, host, deadline) as target:
                lines_or_next = self._robots_hop(current, target, deadline)
            if isinstance(lines_or_next, list):
                return lines_or_next
            current = lines_or_next
            if urlsplit(current).scheme not in SCHEMES:
                return []
        return []  # a robots.txt redirecting for ever: unavailable, i.e. allow all (RFC 9309)

    @contextmanager
    def _turn_at(self, url: str, held: _Host, deadline: float) -> Iterator[_Host]:
        """`url`'s host, its lock taken unless it is `held` (the caller's): a robots.txt redirected to
        another host is fetched under that host's one-request-at-a-time rule too. The wait is bounded
        by `deadline`, so two hosts whose robots.txt redirect to each other cannot hold up a build."""
        _, target = self._host(url)
        if target is held:
            yield target
            return
        if not target.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise self._deadline_failure()
        try:
            yield target
        finally:
            target.lock.release()

    def _robots_hop(self, url: str, host: _Host, deadline: float) -> list[str] | str:
        """One robots.txt request: its lines ([] when it does not exist), or where it redirects to."""
        self._pause(host)
        with self._open(url, {}, deadline) as resp:
            status = resp.status_code
            if status in REDIRECT_STATUSES and resp.headers.get("Location"):
                return urljoin(url, resp.headers["Location"])
            if status == 429 or status >= 500:
                raise FetchFailure(f"robots.txt answered HTTP {status}")
            if status >= 400:
                return []
            body = self._read_body(resp, self.settings.robots_max_bytes, deadline, truncate=True)
        return body.decode("utf-8", "replace").splitlines()

    def _transport_failure(self, exc: httpx.RequestError) -> FetchFailure:
        if isinstance(exc, httpx.TimeoutException):
            return FetchFailure(f"timed out ({type(exc).__name__})", retryable=True)
        if isinstance(exc, httpx.TooManyRedirects):
            return FetchFailure(f"more than {self.settings.max_redirects} redirects")
        if isinstance(exc, httpx.ConnectError):
            detail = str(exc) or type(exc).__name__
            return FetchFailure(f"cannot connect: {detail}", host_down=True)
        if isinstance(exc, httpx.UnsupportedProtocol):
            return FetchFailure(f"unsupported address: {exc or type(exc).__name__}")
        if isinstance(exc, httpx.DecodingError):
            return FetchFailure(f"undecodable body: {exc or type(exc).__name__}")
        return FetchFailure(f"network error: {exc or type(exc).__name__}", retryable=True)

    def _get_with_retries(self, url: str, host: _Host, cached: Page | None, deadline: float,
                          accept: tuple[str, ...] = ()) -> Page | str:
        attempt = 0
        while True:
            try:
                self._pause(host)
                result = self._get_once(url, cached, deadline, accept)
                if cached is not None and result is cached:
                    # 304, nothing transferred: the pause spaces out downloads, so the next request to
                    # this host need not wait (a rebuild revalidates every page without pausing).
                    host.last_request = 0.0
                return result
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

    def _get_once(self, url: str, cached: Page | None, deadline: float, accept: tuple[str, ...] = ()) -> Page | str:
        """The page at `url`, or where it redirects to (a string)."""
        headers = {}
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        with self._open(url, headers, deadline) as resp:
            status = resp.status_code
            if status in REDIRECT_STATUSES:
                location = resp.headers.get("Location", "").strip()
                if not location:
                    raise FetchFailure(f"HTTP {status} redirect without a Location")
                return urljoin(url, location)
            if status == 304 and cached is not None:
                cached.reason = "not modified since last fetch"
                return cached
            if status in RETRY_STATUSES:
                raise FetchFailure(f"HTTP {status}", retryable=True,
                                   retry_after=parse_retry_after(resp.headers.get("Retry-After")))
            if status in GONE_STATUSES:
                raise FetchFailure(f"HTTP {status}", gone=True)
            if status >= 400:
                raise FetchFailure(f"HTTP {status}")
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype and ctype not in self.settings.accepted_types and ctype not in accept:
                raise FetchFailure(f"unsupported content type {ctype}")
            body = self._read_body(resp, self.settings.max_bytes, deadline)
            etag, last_modified = resp.headers.get("ETag", ""), resp.headers.get("Last-Modified", "")
        if not body.strip():
            raise FetchFailure("empty body")
        binary = binary_reason(body)
        if binary:
            raise FetchFailure(f"{binary} (served as {ctype or 'no content type'})", refused=True)
        return Page(url=url, status="fetched", final_url=url, http_status=status, content_type=ctype, body=body,
                    etag=etag, last_modified=last_modified, fetched_at=utc_now())
