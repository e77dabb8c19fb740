"""The fault suite against real builds: every kind of bad HTTP and bad file of issue 12.

Each case programs a local fault server (tests/http_server.py, on 127.0.0.1) or
a bad file, then runs a real build in a child process (`build_index` with the
packaged model, or the CLI for the file faults) and records what the report
says, how long the fetching stage took, the child's peak RSS (its own VmHWM,
written at exit), whether any traceback was printed, and whether an internal
address was requested when it must not be. Cases that need an earlier good copy
run a good build first. The fetcher runs with its shipped settings except
shorter deadlines (page 10 s, read 3 s), so the suite ends in minutes.

Before the cases, one untimed, unmeasured build exports the model to ONNX into a
shared cache folder (`warm_up`): that first build on a machine needs torch (the
export is made with it). Every case's cache links to that export, as a machine
that has built once has it, so the measured builds embed with ONNX Runtime and
never import torch.

    .venv/bin/python bench/faults.py            # writes bench/RESULTS-faults.md
    .venv/bin/python bench/faults.py -k gzip    # only cases whose name contains "gzip"
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(1, str(ROOT / "tests"))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Callable  # noqa: E402

from bench.common import command_line, git_revision, machine_line, now  # noqa: E402
from http_server import LocalServer, Response, article_html  # noqa: E402

OUT = ROOT / "bench" / "RESULTS-faults.md"
PAGE_DEADLINE, READ_TIMEOUT = 10.0, 3.0
#: The child's fetch settings: the shipped ones with shorter deadlines.
FETCH = {"page_deadline": PAGE_DEADLINE, "read_timeout": READ_TIMEOUT, "connect_timeout": 3.0, "max_retries": 1,
         "backoff_base": 0.2, "per_host_delay": 0.0}
ARTICLE = article_html("Momentum", ["Momentum keeps a running average of past gradients, which damps the "
                                    "oscillations of plain gradient descent across a narrow valley. " * 3] * 8)
RSS_LIMIT_MB = 500


# -- the child: one build, its facts as JSON on stdout -------------------------------------------------

def child(spec_file: str) -> None:
    from dataclasses import replace

    from indexer.build import build_index
    from indexer.config import FetchSettings, Settings

    spec = json.loads(Path(spec_file).read_text("utf-8"))
    settings = Settings(fetch=replace(FetchSettings(), **spec["fetch"]))
    marks: dict[str, float] = {}

    def on_stage(stage: str, done: int, total: int) -> None:
        marks.setdefault(stage, time.monotonic())

    build_index([Path(p) for p in spec["faq"]], index_dir=Path(spec["index"]), cache_dir=Path(spec["cache"]),
                settings=settings, on_stage=on_stage)
    report = json.loads((Path(spec["index"]) / "report.json").read_text("utf-8"))
    print(json.dumps({"fetch_seconds": round(marks.get("extracting", 0) - marks.get("fetching", 0), 2),
                      "report": report}))


# -- the cases ------------------------------------------------------------------------------------------

@dataclass
class Ctx:
    server: LocalServer
    root: Path
    #: A second server for the control page when the fault is server-wide (robots.txt).
    other: LocalServer | None = None


@dataclass
class Case:
    name: str
    expected: str
    #: Programs the server (or files) and returns the FAQ's links: {label: url}; "good" is the control page.
    setup: Callable[[Ctx], dict[str, str]]
    #: Checks the result; returns "" when as expected, else what went wrong.
    check: Callable[[dict[str, Any], Ctx], str]
    deadline: float = PAGE_DEADLINE
    #: Serve every page once and build (the good copies), then apply `fault`, then the measured build.
    fault: Callable[[Ctx], None] | None = None
    allow_private: bool = True
    #: The FAQ itself is the fault: {"file": name, "text": ...} built with the CLI, offline.
    cli: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def status_is(label: str, status: str, reason: str = "", keep: bool = False) -> Callable[[dict, Ctx], str]:
    def check(result: dict[str, Any], ctx: Ctx) -> str:
        rec = result["records"].get(label)
        if rec is None:
            return f"{label}: not in report"
        problems = []
        if rec["status"] not in status.split("|"):
            problems.append(f"status {rec['status']}")
        if reason and reason not in rec["reason"]:
            problems.append(f"reason {rec['reason'][:80]!r}")
        if keep and rec["chars"] < 1000:
            problems.append(f"good text lost ({rec['chars']} chars)")
        return "; ".join(problems)
    return check


def both(*checks: Callable[[dict, Ctx], str]) -> Callable[[dict, Ctx], str]:
    return lambda result, ctx: "; ".join(p for p in (c(result, ctx) for c in checks) if p)


def gzip_stream(data_unit: bytes, total: int) -> bytes:
    """`total` bytes of `data_unit` repeated, gzip-compressed without holding them in memory."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = data_unit * (1_048_576 // len(data_unit))
    out = [comp.compress(chunk) for _ in range(total // len(chunk))]
    return b"".join(out) + comp.flush()


def page(ctx: Ctx, path: str, body: str | bytes = ARTICLE, **kw: Any) -> str:
    ctx.server.set_page(path, body, **kw)
    return ctx.server.url(path)


def links(ctx: Ctx, *, elsewhere: bool = False, **faulty: str) -> dict[str, str]:
    """The control page ("good": on the same host, or `elsewhere` on another server) and the faulty links."""
    if elsewhere:
        assert ctx.other is not None
        ctx.other.set_page("/good.html", ARTICLE)
        return {"good": ctx.other.url("/good.html"), **faulty}
    return {"good": page(ctx, "/good.html"), **faulty}


def no_hits(*paths: str) -> Callable[[dict, Ctx], str]:
    def check(result: dict[str, Any], ctx: Ctx) -> str:
        hit = [p for p in paths if ctx.server.hits(p)]
        return f"requested {hit}" if hit else ""
    return check


def max_in_flight_one(host: str) -> Callable[[dict, Ctx], str]:
    def check(result: dict[str, Any], ctx: Ctx) -> str:
        n = ctx.server.max_in_flight(f"{host}:{ctx.server.port}")
        return "" if n <= 1 else f"{n} requests at once on {host}"
    return check


def robots_hits(n: int, host: str = "localhost") -> Callable[[dict, Ctx], str]:
    def check(result: dict[str, Any], ctx: Ctx) -> str:
        got = len([r for r in ctx.server.requests("/robots.txt") if r["host"].startswith(host)])
        return "" if got == n else f"robots.txt asked {got} times"
    return check


def cases() -> list[Case]:
    def alias(ctx: Ctx, path: str) -> str:  # a second host name for the same server
        return ctx.server.url(path, "localhost")

    def trickle(ctx: Ctx) -> dict[str, str]:
        ctx.server.set_trickle("/trickle.html", 0.5)
        return links(ctx, fault=ctx.server.url("/trickle.html"))

    def robots_hang(ctx: Ctx) -> dict[str, str]:
        ctx.server.set("/robots.txt", Response(body=b"User-agent: *\n", content_type="text/plain", delay=600))
        return links(ctx, elsewhere=True, **{f"fault{i}": alias(ctx, f"/r{i}.html") for i in range(4)})

    def robots_trickle(ctx: Ctx) -> dict[str, str]:
        ctx.server.set_trickle("/robots.txt", 0.5)
        return links(ctx, elsewhere=True, **{f"fault{i}": alias(ctx, f"/r{i}.html") for i in range(4)})

    def robots_huge(ctx: Ctx) -> dict[str, str]:
        ctx.server.set_robots("User-agent: *\nDisallow: /private/\n" + "# padding\n" * 8_000_000)  # 80 MB
        ctx.server.set_page("/private/p.html", ARTICLE)
        return links(ctx, fault=ctx.server.url("/private/p.html"))

    def robots_bomb(ctx: Ctx) -> dict[str, str]:
        ctx.server.set("/robots.txt", Response(body=gzip_stream(b"#", 1 << 30), content_type="text/plain",
                                               headers={"Content-Encoding": "gzip"}))
        return links(ctx)

    def page_bomb(ctx: Ctx) -> dict[str, str]:
        ctx.server.set("/bomb.html", Response(body=gzip_stream(b"\0", 1 << 30), headers={"Content-Encoding": "gzip"}))
        return links(ctx, fault=ctx.server.url("/bomb.html"))

    def huge(chunked: bool) -> Callable[[Ctx], dict[str, str]]:
        def setup(ctx: Ctx) -> dict[str, str]:
            ctx.server.set_huge("/huge.html", 60_000_000, chunked=chunked)
            return links(ctx, fault=ctx.server.url("/huge.html"))
        return setup

    def redirect_robots(ctx: Ctx) -> dict[str, str]:
        ctx.server.set_robots("User-agent: *\nDisallow: /private/\n")
        ctx.server.set_redirect("/go", "/private/secret.html")
        ctx.server.set_page("/private/secret.html", ARTICLE)
        return links(ctx, fault=ctx.server.url("/go"))

    def redirect_fanin(ctx: Ctx) -> dict[str, str]:
        out = {}
        for i in range(12):
            ctx.server.set_redirect(f"/r{i}", alias(ctx, f"/t{i}.html"))
            short = article_html(f"Momentum {i}", [f"Momentum variant {i} keeps a running average of gradients."])
            ctx.server.set(f"/t{i}.html", Response(body=short.encode(), delay=0.05))
            out[f"fault{i}"] = ctx.server.url(f"/r{i}")
        return links(ctx, **out)

    def redirect_scheme(ctx: Ctx) -> dict[str, str]:
        ctx.server.set_redirect("/ftp", "ftp://example.org/file.txt")
        return links(ctx, fault=ctx.server.url("/ftp"))

    def redirect_loop(ctx: Ctx) -> dict[str, str]:
        ctx.server.set_redirect("/loop", "/loop")
        return links(ctx, fault=ctx.server.url("/loop"))

    def private(host: str) -> Callable[[Ctx], dict[str, str]]:
        def setup(ctx: Ctx) -> dict[str, str]:
            ctx.server.set_page("/internal.html", ARTICLE)
            port = f":{ctx.server.port}" if host != "169.254.169.254" else ""
            return {"fault": f"http://{host}{port}/internal.html"}
        return setup

    def credentials(ctx: Ctx) -> dict[str, str]:
        ctx.server.set_page("/secret.html", ARTICLE)
        return links(ctx, fault=f"http://user:pass@127.0.0.1:{ctx.server.port}/secret.html")

    def simple(path: str, body: bytes | str, ctype: str = "text/html; charset=utf-8") -> Callable[[Ctx], dict]:
        def setup(ctx: Ctx) -> dict[str, str]:
            ctx.server.set_page(path, body, ctype)
            return links(ctx, fault=ctx.server.url(path))
        return setup

    def cached_then(fault: Callable[[Ctx], None]) -> tuple[Callable[[Ctx], dict], Callable[[Ctx], None]]:
        return (lambda ctx: links(ctx, fault=page(ctx, "/page.html"))), fault

    def soft(body: str) -> Callable[[Ctx], None]:
        return lambda ctx: ctx.server.set_page("/page.html", body)

    def gone(status: int) -> Callable[[Ctx], None]:
        return lambda ctx: ctx.server.set_status("/page.html", status)

    def robots_500(ctx: Ctx) -> dict[str, str]:
        ctx.server.fail("/robots.txt", status=500)
        ctx.server.set_page("/page.html", ARTICLE)
        return links(ctx, elsewhere=True, fault=ctx.server.url("/page.html"))

    def retry_after(ctx: Ctx) -> dict[str, str]:
        ctx.server.set("/busy.html", Response(status=429, body=b"busy", content_type="text/plain",
                                              headers={"Retry-After": "3600"}))
        return links(ctx, fault=ctx.server.url("/busy.html"))

    def slow_body(ctx: Ctx) -> dict[str, str]:
        ctx.server.set_slow("/slow.html", ARTICLE * 4, body_delay=60)
        return links(ctx, fault=ctx.server.url("/slow.html"))

    def bad_gzip(ctx: Ctx) -> dict[str, str]:
        ctx.server.set("/gz.html", Response(body=b"not gzip at all" * 100, headers={"Content-Encoding": "gzip"}))
        return links(ctx, fault=ctx.server.url("/gz.html"))

    cp1252 = ('<html><head><meta charset="utf-8"><title>Naïve café</title></head><body><article><h1>Naïve café'
              "</h1>" + "".join(f"<p>It’s a naïve café — crème brûlée number {i} for the momentum crowd, served {i + 2} "
                               f"times a day to students who learn how gradients accumulate.</p>" for i in range(12))
              + "</article></body></html>").encode("cp1252")

    def mojibake(result: dict[str, Any], ctx: Ctx) -> str:
        db = sqlite3.connect(Path(result["index"]) / "meta.sqlite")
        text = " ".join(t for (t,) in db.execute("SELECT text FROM units WHERE kind = 'passage'")).lower()
        db.close()
        return "" if "naïve café" in text and "Ã" not in text else "mojibake or text missing"

    deny = article_html("Access denied", ["You don't have permission to access this server."])
    captcha = article_html("Just a moment...", ["Please complete the CAPTCHA to verify you are human."])
    notfound = article_html("Page not found", ["Sorry, the page you are looking for does not exist."])
    shorter = article_html("Momentum", ["Momentum is a method."])
    deep = "{" + '"question": "q", "x": ' + "[" * 200_000 + "]" * 200_000 + "}\n"
    out = [
        Case("no fault (baseline)", "fetched", lambda ctx: links(ctx), status_is("good", "fetched")),
        Case("headers trickled 1 byte / 0.5 s", "failed at the page deadline, good page fetched", trickle,
             both(status_is("fault", "failed", "deadline"), status_is("good", "fetched|cached"))),
        Case("robots.txt hangs (4 pages on the host)", "one robots.txt timeout, 4 pages failed", robots_hang,
             both(status_is("fault0", "failed", "robots.txt"), status_is("fault3", "failed", "robots.txt"),
                  robots_hits(1), status_is("good", "fetched|cached")), deadline=READ_TIMEOUT + 2),
        Case("robots.txt trickled", "robots.txt cut at the deadline, pages failed", robots_trickle,
             both(status_is("fault0", "failed", "robots.txt"), robots_hits(1), status_is("good", "fetched|cached"))),
        Case("robots.txt of 80 MB", "first 500 KiB read, rules applied", robots_huge,
             both(status_is("fault", "failed", "robots"), status_is("good", "fetched|cached"))),
        Case("robots.txt gzip bomb (1 GB)", "first 500 KiB read, good page fetched", robots_bomb,
             status_is("good", "fetched|cached")),
        Case("page gzip bomb (1 GB)", "failed: larger than the cap", page_bomb,
             both(status_is("fault", "failed", "larger than"), status_is("good", "fetched|cached"))),
        Case("page of 60 MB (declared length)", "failed: larger than the cap", huge(False),
             status_is("fault", "failed", "larger than")),
        Case("page of 60 MB (chunked)", "failed: larger than the cap", huge(True),
             status_is("fault", "failed", "larger than")),
        Case("redirect to a robots-disallowed page", "failed: robots.txt, target not requested", redirect_robots,
             both(status_is("fault", "failed", "robots"), no_hits("/private/secret.html"))),
        Case("12 redirects into one host", "all fetched, one request at a time on the target", redirect_fanin,
             both(status_is("fault0", "fetched"), status_is("fault11", "fetched"), max_in_flight_one("localhost"))),
        Case("redirect to ftp://", "that page failed, its host's other page fetched", redirect_scheme,
             both(status_is("fault", "failed", "unsupported scheme"), status_is("good", "fetched|cached"))),
        Case("redirect loop", "failed: too many redirects", redirect_loop,
             both(status_is("fault", "failed", "redirects"), status_is("good", "fetched|cached"))),
        Case("link to 127.0.0.1 (default settings)", "refused, not requested", private("127.0.0.1"),
             both(status_is("fault", "refused", "internal address"), no_hits("/internal.html")),
             allow_private=False),
        Case("link to localhost (default settings)", "refused, not requested", private("localhost"),
             both(status_is("fault", "refused", "internal address"), no_hits("/internal.html")),
             allow_private=False),
        Case("link to [::1] (default settings)", "refused, not requested", private("[::1]"),
             status_is("fault", "refused", "internal address"), allow_private=False),
        Case("link to 169.254.169.254 (metadata)", "refused, not requested", private("169.254.169.254"),
             status_is("fault", "refused", "internal address"), allow_private=False),
        Case("user:pass@ in a link", "refused, not requested", credentials,
             both(status_is("fault", "refused", "credentials"), no_hits("/secret.html"))),
        Case("random bytes as text/html", "refused: binary", simple("/bin.html", os.urandom(40_000)),
             both(status_is("fault", "refused", "binary"), status_is("good", "fetched|cached"))),
        Case("PDF as text/html", "refused: binary", simple("/doc.html", b"%PDF-1.7\n" + os.urandom(20_000)),
             status_is("fault", "refused", "binary")),
        Case("cp1252 bytes declared UTF-8", "fetched, text decoded without mojibake", simple("/cp.html", cp1252),
             both(status_is("fault", "fetched"), mojibake)),
        Case("page of scripts only", "empty", simple("/js.html", "<html><body><script>app()</script></body></html>"),
             status_is("fault", "empty")),
        Case("robots.txt answers 500", "disallow all (RFC 9309): page failed, other host fetched", robots_500,
             both(status_is("fault", "failed", "robots.txt"), no_hits("/page.html"), status_is("good", "fetched"))),
        Case("429 with Retry-After: 3600", "failed at once, not waited for", retry_after,
             status_is("fault", "failed", "429"), deadline=2.0),
        Case("body stalls for 60 s", "failed: timed out", slow_body,
             status_is("fault", "failed", "timed out"), deadline=READ_TIMEOUT * 2 + 1),
        Case("Content-Encoding gzip, not gzip", "failed: undecodable", bad_gzip,
             status_is("fault", "failed", "undecodable")),
    ]
    for name, fault, check in [
        ("cached page now 'Access denied'", soft(deny), status_is("fault", "suspect", "block page", keep=True)),
        ("cached page now a captcha", soft(captcha), status_is("fault", "suspect", "block page", keep=True)),
        ("cached page now a soft 404", soft(notfound), status_is("fault", "suspect", "soft 404", keep=True)),
        ("cached page now 95 % shorter", soft(shorter), status_is("fault", "suspect", "shrank", keep=True)),
        ("cached page now 404", gone(404), status_is("fault", "gone", "last good copy", keep=True)),
        ("cached page now 410", gone(410), status_is("fault", "gone", "last good copy", keep=True)),
    ]:
        setup, apply = cached_then(fault)
        expected = "suspect, good copy kept" if "now 4" not in name else "gone, stale copy kept with its date"
        out.append(Case(name, expected, setup, both(check, status_is("good", "fetched|cached")), fault=apply))
    files = [
        ("JSONL nested 200,000 deep", "faq.jsonl", deep, "error", "nested too deeply"),
        ("JSONL 'titles' an object", "faq.jsonl",
         '{"question": "q", "urls": ["https://example.org"], "titles": {"a": 1}}\n', "error", "'titles' must be"),
        ("a line of 30,000 '['", "faq.md", "**Q: What?**\n" + "[" * 30000 + "\n", "ok", ""),
        ("explicit id = another entry's slug", "faq.jsonl",
         '{"question": "What is momentum?"}\n{"question": "Other", "id": "what-is-momentum"}\n', "ok", ""),
        ("corrupt vectors.sqlite", "faq.md", "**Q: What?**\n\nAn answer.\n", "ok", "corrupt-cache"),
        ("ulimit -f 16 KB", "faq.md", "**Q: What?**\n\n" + "An answer. " * 2000 + "\n", "error", "ulimit"),
        ("index folder under a file", "faq.md", "**Q: What?**\n\nAn answer.\n", "error", "not-a-folder"),
    ]
    for name, file, text, outcome, needle in files:
        out.append(Case(name, "one-line error, exit 1" if outcome == "error" else "builds",
                        lambda ctx: {}, lambda result, ctx: "", cli=True,
                        extra={"file": file, "text": text, "outcome": outcome, "needle": needle}))
    return out


# -- running a case ---------------------------------------------------------------------------------------

#: Runs a script or `-m module` as the child and, at its exit, writes the child's own peak RSS (VmHWM, kB)
#: to the file named by FAULTS_HWM_FILE. `os.wait4`'s ru_maxrss would not do: Linux carries the parent's
#: peak over the fork into the child's, and this parent once held an 80 MB robots.txt.
_HWM_WRAPPER = """
import atexit, os, runpy, sys
def _hwm():
    try:
        kb = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        with open(os.environ["FAULTS_HWM_FILE"], "w") as f:
            f.write(kb)
    except Exception:
        pass
atexit.register(_hwm)
args = sys.argv[1:]
if args[0] == "-m":
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
"""


def run_child(args: list[str], *, preexec: Callable[[], None] | None = None) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".hwm") as hwm:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "FAULTS_HWM_FILE": hwm.name}
        proc = subprocess.Popen([sys.executable, "-c", _HWM_WRAPPER, *args], cwd=ROOT, stdout=out, stderr=err,
                                env=env, preexec_fn=preexec)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
        own = Path(hwm.name).read_text().strip()
    rss_mb = int(own) / 1024 if own.isdigit() else usage.ru_maxrss / 1024  # killed before atexit: the upper bound
    return {"code": proc.returncode, "stdout": stdout, "stderr": stderr, "rss_mb": rss_mb,
            "seconds": time.monotonic() - started, "traceback": "Traceback (most recent call last)" in stderr}


#: One ONNX export for all cases (the build makes it once per cache; each case links to it).
SHARED_CACHE = Path(tempfile.gettempdir()) / "faq-faults-shared-cache"


def link_shared_export(cache: Path) -> None:
    (SHARED_CACHE / "onnx").mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "onnx").exists():
        (cache / "onnx").symlink_to(SHARED_CACHE / "onnx", target_is_directory=True)


def warm_up() -> None:
    """Export the model to ONNX once, outside the measured cases: the first build on a machine needs torch
    for it; the cases then build as every later build does (ONNX Runtime, no torch)."""
    with tempfile.TemporaryDirectory(prefix="faq-fault-") as tmp:
        faq = Path(tmp) / "faq.md"
        faq.write_text("**Q: What?**\n\nAn answer.\n", "utf-8")
        link_shared_export(Path(tmp) / "cache")
        run_child(["-m", "indexer", "build", "--offline", "--faq", str(faq), "--index-dir", str(Path(tmp) / "index"),
                   "--cache-dir", str(Path(tmp) / "cache")])


def build_child(ctx: Ctx, urls: dict[str, str], tag: str, allow_private: bool) -> dict[str, Any]:
    faq = ctx.root / "faq.md"
    faq.write_text("**Q: What is momentum?**\n\n" + "".join(f"- [{k}]({u})\n" for k, u in urls.items()), "utf-8")
    link_shared_export(ctx.root / "cache")
    spec = ctx.root / f"spec-{tag}.json"
    spec.write_text(json.dumps({"faq": [str(faq)], "index": str(ctx.root / "index"), "cache": str(ctx.root / "cache"),
                                "fetch": {**FETCH, "allow_private": allow_private}}), "utf-8")
    result = run_child([str(Path(__file__).resolve()), "--child", str(spec)])
    facts = json.loads(result["stdout"].strip().splitlines()[-1]) if result["code"] == 0 else {"report": []}
    by_url = {r["url"]: r for r in facts["report"]}
    result["records"] = {label: by_url[u] for label, u in urls.items() if u in by_url}
    result["fetch_seconds"] = facts.get("fetch_seconds", result["seconds"])
    result["index"] = str(ctx.root / "index")
    return result


def run_cli_case(case: Case, root: Path) -> dict[str, Any]:
    extra = case.extra
    faq = root / extra["file"]
    faq.write_text(extra["text"], "utf-8")
    index, cache = root / "index", root / "cache"
    link_shared_export(cache)
    preexec = None
    if extra["needle"] == "corrupt-cache":
        (cache / "vectors.sqlite").write_bytes(b"garbage, not SQLite" * 1000)
    if extra["needle"] == "not-a-folder":  # (a read-only folder cannot be staged as root: root writes anyway)
        (root / "file").write_text("a file, not a folder")
        index = root / "file" / "index"
    if extra["needle"] == "ulimit":
        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))
    result = run_child(["-m", "indexer", "build", "--offline", "--faq", str(faq), "--index-dir", str(index),
                        "--cache-dir", str(cache)], preexec=preexec)
    errors = [line for line in result["stderr"].splitlines() if line.startswith("Error:")]
    if extra["outcome"] == "error":
        needle = {"not-a-folder": "at a folder"}.get(extra["needle"], extra["needle"])
        ok = result["code"] == 1 and len(errors) == 1 and needle in errors[0]
        result["observed"] = errors[0][:140] if errors else f"exit {result['code']}, no one-line error"
    else:
        ok = result["code"] == 0
        if extra["needle"] == "corrupt-cache":
            ok = ok and any(cache.glob("vectors.sqlite.corrupt-*"))
        result["observed"] = ("built" if result["code"] == 0 else (errors or ["failed"])[0][:140]) + (
            ", damaged cache moved aside" if extra["needle"] == "corrupt-cache" and ok else "")
    result["problem"] = "" if ok else result["observed"]
    result["fetch_seconds"] = 0.0
    return result


def run_case(case: Case) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="faq-fault-") as tmp:
        root = Path(tmp)
        if case.cli:
            return run_cli_case(case, root)
        with LocalServer() as server, LocalServer() as other:
            ctx = Ctx(server=server, root=root, other=other)
            urls = case.setup(ctx)
            if case.fault is not None:
                first = build_child(ctx, urls, "good", case.allow_private)
                if first["code"] != 0:
                    return {**first, "problem": "the good build failed", "observed": first["stderr"][-140:]}
                case.fault(ctx)
            result = build_child(ctx, urls, "fault", case.allow_private)
            problem = case.check(result, ctx) if result["code"] == 0 else f"build exit {result['code']}"
            if result["fetch_seconds"] > case.deadline + 2.0:
                problem = "; ".join(p for p in (problem, f"fetching took {result['fetch_seconds']:.1f}s") if p)
            internal = [r for r in server.requests() + other.requests() if not case.allow_private]
            result["internal_fetched"] = len(internal)
            result["problem"] = problem
            result["observed"] = "; ".join(f"{k}: {r['status']}" + (f" ({r['reason'][:70]})" if r["reason"] else "")
                                           for k, r in result["records"].items() if k != "good" or problem)
            result["good_lost"] = sum(1 for k, r in result["records"].items()
                                      if (k == "good" and r["status"] not in ("fetched", "cached"))
                                      or (case.fault is not None and k == "fault" and r["chars"] < 1000))
            return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--no-results", action="store_true", help="print, do not write RESULTS-faults.md")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    rows, totals = [], {"cases": 0, "as expected": 0, "deadlines met": 0, "good pages lost": 0, "tracebacks": 0,
                        "internal addresses fetched": 0, "over RSS limit": 0, "over baseline + 100 MB": 0}
    peak, baseline = 0.0, 0.0
    warm_up()
    for case in cases():
        if args.k and args.k not in case.name:
            continue
        result = run_case(case)
        ok = not result["problem"]
        in_time = result["fetch_seconds"] <= case.deadline + 2.0
        peak = max(peak, result["rss_mb"])
        if case.name.startswith("no fault"):
            baseline = result["rss_mb"]
        totals["cases"] += 1
        totals["as expected"] += ok
        totals["deadlines met"] += in_time
        totals["good pages lost"] += result.get("good_lost", 0)
        totals["tracebacks"] += result["traceback"]
        totals["internal addresses fetched"] += result.get("internal_fetched", 0)
        totals["over RSS limit"] += result["rss_mb"] > RSS_LIMIT_MB
        totals["over baseline + 100 MB"] += bool(baseline) and result["rss_mb"] > baseline + 100
        row = (f"| {case.name} | {case.expected} | {'ok' if ok else 'NO: ' + result['problem'][:100]} | "
               f"{result['observed'][:160].replace('|', '/')} | {result['fetch_seconds']:.1f} / {case.deadline:g} | "
               f"{result['rss_mb']:.0f} |")
        rows.append(row)
        print(row, flush=True)
    table = "\n".join(["| case | expected | as expected | observed | fetching s / deadline | peak RSS MB |",
                       "| --- | --- | --- | --- | --- | --- |", *rows])
    summary = ", ".join(f"{k} {v}" for k, v in totals.items())
    text = f"""# Fault suite (issue 12)

{now()}, revision {git_revision()}; {machine_line()}. Command: `{command_line()}`.

Each case is a real build in a child process (the packaged model, `build_index`, or the CLI for the
file faults) against a local fault server on 127.0.0.1. Fetch settings: the shipped ones with a page
deadline of {PAGE_DEADLINE:g} s and a read timeout of {READ_TIMEOUT:g} s; links to 127.0.0.1 are
allowed (`allow_private`) except in the internal-address cases, which use the default (refuse).
"fetching s" is the build's fetching stage; peak RSS is the child's own peak (VmHWM, written at its
exit; `os.wait4`'s ru_maxrss would add the parent's peak, which Linux carries over the fork).

The model is exported to ONNX once before the cases, in an unmeasured warm-up build (the first build
on a machine needs torch to make the export, and embeds with it); every case's cache links to that
export, as on any machine that has built once, so the measured builds embed new passages with ONNX
Runtime and never import torch. The first build itself is not in the table: it peaks as the torch
builds did (about 600 MB).

**Totals:** {summary}; highest peak RSS {peak:.0f} MB (limit {RSS_LIMIT_MB} MB); the build without any
fault peaks at {baseline:.0f} MB; "over baseline + 100 MB" is what the faults themselves cost.

{table}
"""
    print(summary)
    if not args.no_results:
        OUT.write_text(text, "utf-8")
        print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
