"""Helpers for the web app tests: a tiny FAQ with a hostile page, its index (built once), a live app.

The index is built for real (`build_index`, the packaged model) from a FAQ whose
links all point at a stdlib HTTP server on 127.0.0.1, so no test touches the
internet. One of its pages is hostile: its title and text carry `<script>` and
`<img onerror>` as text, and the page itself has a real <script>. One link is a
404, so the index has a failed page with a reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "app.py"

XSS_TEXT = "<script>alert(1)</script><img src=x onerror=alert(1)>"
HOSTILE_QUERY = "<img src=x onerror=alert('q')> [click](javascript:alert(2)) **striped momentum**"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _article(title: str, paragraphs: list[str], head: str = "") -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
            f"<body><header><nav>Home | About</nav></header><main><article><h1>{title}</h1>{body}</article></main>"
            f"<footer>Footer</footer></body></html>").encode("utf-8")


HOSTILE_PAGE = _article(
    _html_escape(XSS_TEXT) + " Striped momentum, explained",
    [
        "Striped momentum is a schedule that alternates the momentum coefficient between two values on "
        "every other mini-batch, so that the optimiser neither oscillates nor stalls in flat valleys.",
        "Careful readers will notice this page tries to inject markup: " + _html_escape(XSS_TEXT)
        + " and a link [click me](javascript:alert(2)). None of it may ever run in the app.",
        "In practice striped momentum behaves like ordinary heavy-ball momentum with a slightly lower "
        "effective coefficient, and it is mostly a curiosity used in this test suite.",
    ],
    head="<script>window.__pwned = 1; alert('page script')</script>",
)

LOSS_PAGE = _article(
    "Understanding binary cross-entropy / log loss: a visual explanation",
    [
        "Binary cross-entropy, also called log loss, compares each predicted probability with the actual "
        "class, which is either 0 or 1. It scores the prediction by how far it is from the true value.",
        "The loss is the negative average of the log of the corrected predicted probabilities, which is why "
        "confident wrong predictions are penalised so heavily by log loss.",
        "Minimising the cross-entropy is the same as maximising the likelihood of the labels under the model.",
    ],
)

ROUTES: dict[str, tuple[int, str, bytes]] = {
    "/striped-momentum.html": (200, "text/html; charset=utf-8", HOSTILE_PAGE),
    "/log-loss.html": (200, "text/html; charset=utf-8", LOSS_PAGE),
}


def faq_text(base: str) -> str:
    return f"""# Neural networks

**Q: What is cross entropy loss?**

Cross entropy measures how far predicted probabilities are from the true labels.

-   [Understanding binary cross-entropy / log loss]({base}/log-loss.html)

**Q: What is striped momentum?**

  Resource:

-   [Striped momentum notes]({base}/striped-momentum.html)

**Q: How to find the optimal learning rate?**

Try a learning-rate range test: raise the rate every batch and pick one before the loss explodes.

-   [Deep Learning book, chapter 8: optimisation]({base}/gone-missing.html)

# Tools and setup

**Q: How do I install PyTorch?**

Use pip or conda as the official page explains: {base}/pytorch-install

**Q: Why do I see <img src=x onerror=alert(1)> in my notebook output?**

Notebooks show raw HTML when a cell prints markup as text; <script>alert('faq')</script> is harmless there.
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        status, ctype, body = ROUTES.get(self.path.split("?")[0], (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class PageServer:
    """The FAQ's pages on http://127.0.0.1:<free port>."""

    def __enter__(self) -> "PageServer":
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class AppIndex:
    root: Path
    faq: Path
    index_dir: Path
    cache_dir: Path
    base_url: str

    def db(self, name: str) -> Path:
        return self.root / f"{name}.sqlite"


def build(faq: Path, index_dir: Path, cache_dir: Path, *, offline: bool = False):
    from indexer.build import build_index

    return build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=offline)


_BUILT: dict[Path, AppIndex] = {}


def app_index_at(root: Path) -> AppIndex:
    """The test index under `root`, built on first use (once per session for a given root)."""
    root = Path(root)
    if root not in _BUILT:
        root.mkdir(parents=True, exist_ok=True)
        with PageServer() as srv:
            faq = root / "faq.md"
            faq.write_text(faq_text(srv.base), "utf-8")
            index = AppIndex(root=root, faq=faq, index_dir=root / "index", cache_dir=root / "cache",
                             base_url=srv.base)
            build(faq, index.index_dir, index.cache_dir)
        _BUILT[root] = index
    return _BUILT[root]


@pytest.fixture(scope="session")
def app_index(tmp_path_factory: pytest.TempPathFactory) -> AppIndex:
    return app_index_at(tmp_path_factory.getbasetemp() / "app-index")


# -- a live `streamlit run app.py` ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none"]


def wait_healthy(port: int, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"streamlit did not become healthy on port {port} within {timeout:.0f}s")


class RunningApp:
    """`streamlit run app.py` on a free port, stopped (by its own pid) on exit."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path = REPO_ROOT) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(streamlit_command(self.port), cwd=cwd, env={**os.environ, **env},
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def __enter__(self) -> "RunningApp":
        try:
            wait_healthy(self.port, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""


def chromium_or_skip() -> str:
    """The Debian Chromium, or a skip that says how to get it (never downloads a browser)."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        pytest.skip(f"Chromium is not installed ({CHROMIUM} missing): run scripts/install-chromium.sh "
                    "(apt-get install chromium) to enable the browser test")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -r requirements-dev.txt)")
    return path
