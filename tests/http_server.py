"""A real, programmable HTTP server on 127.0.0.1 for the fetch and build tests.

`LocalServer` runs a stdlib `ThreadingHTTPServer` (HTTP/1.1, port 0) in a
background thread. Tests program its routes and then look at what it saw:

    srv.set_page("/a.html", "<html>...</html>")        # 200 with ETag and Last-Modified
    srv.url("/a.html")                                  # http://127.0.0.1:PORT/a.html
    srv.hits("/a.html"); srv.requests("/a.html")        # what arrived, headers included

Conditional GETs are answered with 304 (If-None-Match first, If-Modified-Since
only when no If-None-Match was sent, as RFC 9110 says). Routes can redirect,
fail (500/503, whole server or one path), answer a scripted sequence (429 with
Retry-After, then the page), answer every unknown path alike (`set_fallback`),
stall before or while sending, trickle their headers for ever, send bodies of
any size (declared or chunked, gzip-encoded), any content type, robots.txt
rules, and the shared readability fixture pages.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HTML = "text/html; charset=utf-8"
#: A fixed date, so that Last-Modified is stable across requests.
DEFAULT_LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)
    #: ETag to send (and to compare If-None-Match with); "" sends none.
    etag: str = ""
    #: Last-Modified to send (and to compare If-Modified-Since with); "" sends none.
    last_modified: str = ""
    #: Seconds to wait before sending anything.
    delay: float = 0.0
    #: Seconds to wait after the first half of the body.
    body_delay: float = 0.0
    #: Stream the body with Transfer-Encoding: chunked (no Content-Length).
    chunked: bool = False
    #: Fault: trickle the response headers, one byte every `trickle` seconds, never finishing them.
    trickle: float = 0.0


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def article_html(title: str, paragraphs: list[str], *, extra_head: str = "") -> str:
    """A plain article page of the kind trafilatura extracts cleanly."""
    paras = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>{extra_head}"
            f"</head><body><header><nav><a href=\"/\">Home</a> <a href=\"/about\">About</a></nav></header>"
            f"<main><article><h1>{title}</h1>\n{paras}\n</article></main>"
            f"<footer><p>Site footer</p></footer></body></html>")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        owner = self.server.owner
        host = self.headers.get("Host", "")
        path = self.path
        # Logged on arrival (and the status before anything is sent), so a client that has its
        # answer can never look at the log before its own request is in it.
        self._record = owner._enter(host, path, dict(self.headers.items()))
        self._host, self._left = host, False
        try:
            self._send(owner._response_for(path))
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        finally:
            self._done()

    def _done(self) -> None:
        """No longer in flight. Called just before the headers go out: a client may act on the status
        alone (a robots.txt 404 is not read further) and send its next request while the body is still
        being written, so a request stops counting before any byte of its answer can reach the client."""
        if not self._left:
            self._left = True
            self.server.owner._leave(self._host)

    def _not_modified(self, r: Response) -> bool:
        if r.status != 200:
            return False
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return bool(r.etag) and r.etag in [t.strip() for t in inm.split(",")]
        ims = self.headers.get("If-Modified-Since")
        if ims and r.last_modified:
            try:
                return email.utils.parsedate_to_datetime(ims) >= email.utils.parsedate_to_datetime(r.last_modified)
            except (TypeError, ValueError):
                return False
        return False

    def _send(self, r: Response) -> None:
        stop = self.server.owner._stop
        if r.delay:
            stop.wait(r.delay)
        if r.trickle:
            self.server.owner._set_status(self._record, r.status)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
            while not stop.wait(r.trickle):
                self.wfile.write(b"x")
                self.wfile.flush()
            return
        if self._not_modified(r):
            self.server.owner._set_status(self._record, 304)
            self.send_response(304)
            if r.etag:
                self.send_header("ETag", r.etag)
            self.send_header("Content-Length", "0")
            self._done()
            self.end_headers()
            return
        self.server.owner._set_status(self._record, r.status)
        self.send_response(r.status)
        self.send_header("Content-Type", r.content_type)
        if r.etag:
            self.send_header("ETag", r.etag)
        if r.last_modified:
            self.send_header("Last-Modified", r.last_modified)
        for k, v in r.headers.items():
            self.send_header(k, v)
        body = r.body
        if r.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self._done()
            self.end_headers()
            step = 64 * 1024
            for i in range(0, len(body), step):
                part = body[i:i + step]
                self.wfile.write(f"{len(part):X}\r\n".encode() + part + b"\r\n")
                if r.body_delay and i == 0:
                    self.wfile.flush()
                    stop.wait(r.body_delay)
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self._done()
            self.end_headers()
            half = len(body) // 2
            self.wfile.write(body[:half])
            if r.body_delay:
                self.wfile.flush()
                stop.wait(r.body_delay)
            self.wfile.write(body[half:])
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "LocalServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer (timeouts, size caps) are part of the tests


class LocalServer:
    """Programmable routes on a real HTTP server at 127.0.0.1:<free port>."""

    def __init__(self, readability_dir: Path | None = None) -> None:
        self.readability_dir = readability_dir
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._routes: dict[str, Response] = {}
        self._sequences: dict[str, list[Response]] = {}
        self._failing: dict[str | None, Response] = {}
        #: The answer for a path with no route (None: 404), e.g. a site that answers 200 for everything.
        self._fallback: Response | None = None
        self._log: list[dict[str, Any]] = []
        self._in_flight: dict[str, int] = {}
        self._max_in_flight: dict[str, int] = {}
        self._total_in_flight = 0
        self.max_total_in_flight = 0
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> "LocalServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------
    def url(self, path: str, host: str = "127.0.0.1") -> str:
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{host}:{self.port}{path}"

    # -- programming routes -------------------------------------------------------
    def set(self, path: str, response: Response) -> None:
        with self._lock:
            self._routes[path] = response

    def set_page(self, path: str, body: str | bytes, content_type: str = HTML, *, etag: bool = True,
                 last_modified: str | None = DEFAULT_LAST_MODIFIED, headers: dict[str, str] | None = None) -> None:
        """A 200 page. The ETag follows the body, so changing the body changes it."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.set(path, Response(body=data, content_type=content_type, etag=etag_for(data) if etag else "",
                                last_modified=last_modified or "", headers=dict(headers or {})))

    def set_article(self, path: str, title: str, paragraphs: list[str]) -> None:
        self.set_page(path, article_html(title, paragraphs))

    def set_redirect(self, path: str, location: str, status: int = 302) -> None:
        self.set(path, Response(status=status, body=b"", headers={"Location": location}))

    def set_status(self, path: str, status: int, body: bytes = b"error", headers: dict[str, str] | None = None) -> None:
        self.set(path, Response(status=status, body=body, content_type="text/plain", headers=dict(headers or {})))

    def set_fallback(self, response: Response | None) -> None:
        """Answer every path that has no route with `response` (None: the default 404)."""
        with self._lock:
            self._fallback = response

    def set_sequence(self, path: str, responses: list[Response]) -> None:
        """Answer the next requests to `path` with these, in order, then fall back to its route."""
        with self._lock:
            self._sequences[path] = list(responses)

    def set_slow(self, path: str, body: str, *, delay: float = 0.0, body_delay: float = 0.0) -> None:
        data = body.encode("utf-8")
        self.set(path, Response(body=data, delay=delay, body_delay=body_delay))

    def set_huge(self, path: str, size: int, *, chunked: bool = False) -> None:
        unit = b"<p>" + b"lorem ipsum dolor sit amet " * 30 + b"</p>\n"
        body = b"<html><body>" + unit * (size // len(unit) + 1) + b"</body></html>"
        self.set(path, Response(body=body, chunked=chunked))

    def set_trickle(self, path: str, interval: float = 0.2) -> None:
        """Fault: headers trickled a byte at a time for ever (each read succeeds, none completes)."""
        self.set(path, Response(trickle=interval))

    def set_gzip(self, path: str, data: bytes, content_type: str = HTML) -> None:
        """`data` gzip-compressed, with Content-Encoding: gzip (e.g. a gzip bomb: many zeros)."""
        import gzip

        self.set(path, Response(body=gzip.compress(data, compresslevel=9), content_type=content_type,
                                headers={"Content-Encoding": "gzip"}))

    def set_robots(self, text: str) -> None:
        self.set_page("/robots.txt", text, "text/plain", etag=False, last_modified=None)

    def serve_fixture(self, path: str, name: str) -> bytes:
        """Serve readability/<name>/source.html at `path`; returns the bytes served."""
        if self.readability_dir is None:
            raise RuntimeError("no shared readability fixtures")
        body = (self.readability_dir / name / "source.html").read_bytes()
        self.set_page(path, body)
        return body

    def fail(self, path: str | None = None, status: int = 503, retry_after: str | None = None) -> None:
        """Make `path` (or, with None, every path) answer `status` until `recover`."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        with self._lock:
            self._failing[path] = Response(status=status, body=b"failing", content_type="text/plain",
                                           headers=headers)

    def recover(self, path: str | None = None) -> None:
        with self._lock:
            self._failing.pop(path, None)

    # -- what the server saw ------------------------------------------------------
    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._log if path is None or r["path"] == path]

    def hits(self, path: str | None = None) -> int:
        return len(self.requests(path))

    def statuses(self, path: str) -> list[int]:
        return [r["status"] for r in self.requests(path)]

    def max_in_flight(self, host: str | None = None) -> int:
        with self._lock:
            if host is None:
                return max(self._max_in_flight.values(), default=0)
            return self._max_in_flight.get(host, 0)

    # -- internals ----------------------------------------------------------------
    def _response_for(self, raw_path: str) -> Response:
        with self._lock:
            path = raw_path
            failing = self._failing.get(path) or self._failing.get(urlsplit(path).path) or self._failing.get(None)
            if failing is not None:
                return failing
            seq = self._sequences.get(path)
            if seq:
                return seq.pop(0)
            route = self._routes.get(path) or self._routes.get(urlsplit(path).path)
            fallback = self._fallback
        if route is not None:
            return route
        if fallback is not None:
            return fallback
        if urlsplit(raw_path).path == "/robots.txt":
            return Response(status=404, body=b"no robots.txt", content_type="text/plain")
        return Response(status=404, body=b"not found", content_type="text/plain")

    def _enter(self, host: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
        record = {"path": path, "host": host, "headers": {k.lower(): v for k, v in headers.items()},
                  "status": 0, "time": time.monotonic()}
        with self._lock:
            self._log.append(record)
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self._max_in_flight[host] = max(self._max_in_flight.get(host, 0), self._in_flight[host])
            self._total_in_flight += 1
            self.max_total_in_flight = max(self.max_total_in_flight, self._total_in_flight)
        return record

    def _set_status(self, record: dict[str, Any], status: int) -> None:
        with self._lock:
            record["status"] = status

    def _leave(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] -= 1
            self._total_in_flight -= 1


def closed_port() -> int:
    """A local TCP port with nothing listening on it (connections are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
