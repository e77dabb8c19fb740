"""How fast the web app answers: first result after starting it, and later queries.

Starts `streamlit run app.py` headless on a free port (as a learner would, but
without opening a browser), waits for /_stcore/health, then drives Debian's
headless Chromium with Playwright: open the page, type a query, press Enter,
and time until the first result card of *that* query is on screen. Later
queries are timed the same way, each a new query (nothing cached).

    .venv/bin/python -m bench.app_latency                 # data/index, 10 later queries
    .venv/bin/python -m bench.app_latency --runs 3 --later 20 --screenshots bench/out/app

Chromium is launched before the app starts, so its own start-up is not counted:
"first result" is from spawning the app process to the result being visible.
A hello-world Streamlit app (a text box that echoes the query) is timed the same way after each
run, interleaved, as the floor: the app's first result against its first answer, and the app's
later queries against its reruns (the targets: <= 1.2x and <= 1.5x).
Prints the numbers and appends them to bench/RESULTS-app.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS-app.md"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIRST_QUERY = "what is log loss"
LATER_QUERIES = ["how does backpropagation work", "why exponential in softmax", "perceptron algorithm",
                 "what does the bias do in a neuron", "gradient descent video", "learning rate finder",
                 "why do we need activation functions", "cross entropy vs log loss", "chain rule through layers",
                 "what is relu", "batch size and momentum", "intercept term in a neuron", "SGD explained",
                 "softmx", "how do I pick a learning rate", "single layer neural unit", "BCE loss",
                 "non linearity in networks", "what is a neural network", "derivative of the loss"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query_key(query: str) -> str:
    """Same as app.query_key on the app's normalised query."""
    return hashlib.sha1(" ".join(query.split()).encode("utf-8")).hexdigest()[:12]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.02)
    raise SystemExit("streamlit did not become healthy in time")


def ask(page, query: str, timeout_ms: int = 120_000) -> None:
    box = page.locator(".st-key-q input")
    box.fill(query)
    box.press("Enter")
    # The answer card, or without an answer the list of nearest entries: both carry the query's key.
    page.locator(f'[data-q="{query_key(query)}"]').first.wait_for(timeout=timeout_ms)


def one_run(browser, env: dict[str, str], later: list[str], log_path: Path, shots: Path | None,
            extra_args: list[str]) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.port", str(port), "--server.address", "127.0.0.1",
           *extra_args]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    with open(log_path, "ab") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(port, proc)
            t_health = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="commit")
            page.locator(".faq-title").wait_for(timeout=120_000)
            t_title = time.perf_counter()
            page.locator(".st-key-q input").wait_for(timeout=120_000)
            t_box = time.perf_counter()
            ask(page, FIRST_QUERY)
            t_first = time.perf_counter()
            later_ms = time_queries(page, later)
            if shots:
                shots.mkdir(parents=True, exist_ok=True)
                ask(page, FIRST_QUERY)
                page.screenshot(path=str(shots / "laptop-results.png"), full_page=True)
                page.set_viewport_size({"width": 390, "height": 844})
                page.wait_for_timeout(500)
                page.screenshot(path=str(shots / "phone-results.png"), full_page=True)
        finally:
            page.close()
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {"health_s": t_health - t0, "title_s": t_title - t0, "box_s": t_box - t0, "first_result_s": t_first - t0,
            "first_query_s": t_first - t_box, "later_ms": later_ms}


def time_queries(page, queries: list[str]) -> list[float]:
    """Milliseconds from Enter to the answer of each query, one after the other (each a rerun)."""
    times = []
    for query in queries:
        start = time.perf_counter()
        ask(page, query)
        times.append((time.perf_counter() - start) * 1000)
    return times


#: The floor any Streamlit app pays: a title, a text box, and on Enter a rerun that shows the query in an element
#: keyed like the app's result card (`data-q`), so `ask` times its first answer and later reruns the same way.
HELLO_APP = """import hashlib
import streamlit as st
st.html('<div class="faq-title">Hello</div>')
q = st.text_input("Ask a question", key="q")
if q:
    key = hashlib.sha1(" ".join(q.split()).encode("utf-8")).hexdigest()[:12]
    st.html(f'<div data-q="{key}">{len(q)} characters</div>')
"""


def baseline_run(browser, env: dict[str, str], script: Path, later: list[str], log_path: Path) -> dict:
    """The hello-world app timed like the app (`one_run`): text box and first answer after spawning
    `streamlit run`, then the same later queries, each a rerun."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.fileWatcherType", "none"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    with open(log_path, "ab") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=script.parent, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(port, proc)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="commit")
            page.locator(".st-key-q input").wait_for(timeout=120_000)
            t_box = time.perf_counter()
            ask(page, FIRST_QUERY)
            t_first = time.perf_counter()
            later_ms = time_queries(page, later)
            return {"box_s": t_box - t0, "first_result_s": t_first - t0, "later_ms": later_ms}
        finally:
            page.close()
            proc.terminate()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, default=ROOT / "data" / "index")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache",
                        help="cache folder the app reads the ONNX query encoder from (default data/cache)")
    parser.add_argument("--runs", type=int, default=3, help="cold starts of the app (default 3)")
    parser.add_argument("--later", type=int, default=10, help="later queries timed per run (default 10)")
    parser.add_argument("--screenshots", type=Path, default=None, help="save laptop and phone screenshots here")
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip timing a hello-world Streamlit app (the floor any Streamlit app pays)")
    parser.add_argument("--streamlit-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `streamlit run`, e.g. --streamlit-arg=--server.fileWatcherType=none")
    args = parser.parse_args()

    manifest_path = args.index_dir / "manifest.json"
    if not manifest_path.exists():
        raise SystemExit(f"no index at {args.index_dir}: build it first with: python -m indexer build")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} not found: run scripts/install-chromium.sh")
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from indexer.onnx_encoder import export_dir, export_problem

    problem = export_problem(export_dir(manifest.get("model", ""), args.cache_dir), manifest.get("model", ""))
    encoder = "ONNX export" if problem is None else f"sentence-transformers ({problem})"
    print(f"query encoder: {encoder}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="app-latency-"))
    env = {**os.environ, "FAQ_INDEX_DIR": str(args.index_dir.resolve()), "FAQ_APP_DB": str(workdir / "app.sqlite"),
           "FAQ_CACHE_DIR": str(args.cache_dir.resolve())}
    later = (LATER_QUERIES * (args.later // len(LATER_QUERIES) + 1))[: args.later]
    runs = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            hello = workdir / "hello_app.py"
            hello.write_text(HELLO_APP, "utf-8")
            baseline: list[dict] = []
            for i in range(args.runs):  # app and hello-world interleaved, so both see the same load
                run = one_run(browser, env, later, workdir / "streamlit.log",
                              args.screenshots if i == args.runs - 1 else None, args.streamlit_arg)
                runs.append(run)
                print(f"run {i + 1}: healthy {run['health_s']:.2f}s, page {run['title_s']:.2f}s, "
                      f"search box {run['box_s']:.2f}s, first result "
                      f"{run['first_result_s']:.2f}s after start ({run['first_query_s']:.2f}s after typing); later "
                      f"queries median {statistics.median(run['later_ms']):.0f} ms, max {max(run['later_ms']):.0f} ms",
                      flush=True)
                if not args.no_baseline:
                    b = baseline_run(browser, env, hello, later, workdir / "hello.log")
                    baseline.append(b)
                    print(f"  hello-world: text box {b['box_s']:.2f}s, first answer {b['first_result_s']:.2f}s after "
                          f"start; later reruns median {statistics.median(b['later_ms']):.0f} ms", flush=True)
        finally:
            browser.close()

    first = [r["first_result_s"] for r in runs]
    later_all = sorted(ms for r in runs for ms in r["later_ms"])
    p90 = later_all[min(len(later_all) - 1, int(round(0.9 * (len(later_all) - 1))))]
    summary = (f"first result after start: median {statistics.median(first):.2f}s (min {min(first):.2f}, "
               f"max {max(first):.2f}) over {len(runs)} cold starts; later queries: median "
               f"{statistics.median(later_all):.0f} ms, p90 {p90:.0f} ms, max {later_all[-1]:.0f} ms "
               f"over {len(later_all)}")
    if baseline:
        b_first = [b["first_result_s"] for b in baseline]
        b_later = sorted(ms for b in baseline for ms in b["later_ms"])
        summary += (f"; a hello-world Streamlit app, interleaved run by run, shows its text box after "
                    f"{statistics.median(b['box_s'] for b in baseline):.2f}s and its first answer after "
                    f"{statistics.median(b_first):.2f}s (median), later reruns median {statistics.median(b_later):.0f} ms"
                    f"; the app's first result is {statistics.median(first) / statistics.median(b_first):.2f}x "
                    f"hello-world's first answer (target <= 1.2x) and its later queries "
                    f"{statistics.median(later_all) / statistics.median(b_later):.2f}x hello-world's rerun "
                    f"(target <= 1.5x)")
    print(summary)
    if args.no_record:
        return
    import streamlit

    lines = [
        f"\n## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Streamlit {streamlit.__version__}, Chromium headless ({CHROMIUM})",
        f"- index: {manifest.get('counts', {}).get('entries')} entries, {manifest.get('counts', {}).get('passages')} "
        f"units, model {manifest.get('model')}, build {str(manifest.get('build_id', ''))[:8]}; "
        f"query encoder: {encoder}",
        f"- first query {FIRST_QUERY!r}; later queries: {len(later)} distinct per run"
        + (f"; streamlit args: {' '.join(args.streamlit_arg)}" if args.streamlit_arg else ""),
        "",
        "| run | healthy (s) | page shown (s) | search box (s) | first result after start (s) | of which query (s) "
        "| later median (ms) | later max (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, r in enumerate(runs, start=1):
        lines.append(f"| {i} | {r['health_s']:.2f} | {r['title_s']:.2f} | {r['box_s']:.2f} | "
                     f"{r['first_result_s']:.2f} | "
                     f"{r['first_query_s']:.2f} | {statistics.median(r['later_ms']):.0f} | {max(r['later_ms']):.0f} |")
    for i, b in enumerate(baseline, start=1):
        lines.append(f"| hello-world {i} | | | {b['box_s']:.2f} | {b['first_result_s']:.2f} | "
                     f"{b['first_result_s'] - b['box_s']:.2f} | {statistics.median(b['later_ms']):.0f} | "
                     f"{max(b['later_ms']):.0f} |")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines += ["", f"Summary: {summary}." + (f" Load average at the end: {load[0]:.1f}." if load else ""), ""]
    if not RESULTS.exists():
        RESULTS.write_text("# Web app latency\n\nAppended by `bench/app_latency.py`: time from starting "
                           "`streamlit run app.py` to the first result on screen in headless Chromium, and the "
                           "time of later queries (type, Enter, result card of that query visible).\n", "utf-8")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
