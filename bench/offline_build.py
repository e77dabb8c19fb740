"""Wall time of `python -m indexer build` of the shipped FAQ, offline and "online", as a subprocess.

Variants (each run in a fresh temporary folder: empty --cache-dir, new --index-dir):

- `no network`: data/faq.md as shipped, default flags. No network is reachable
  on these machines, so every link fails: this is the build a user without
  network gets.
- `--offline`: the same with --offline (never touches the network).
- `online, cold`: a copy of data/faq.md whose links point at the seed pages
  (../shared/fixtures/seed-pages, see urls.tsv there) served locally, one
  local server (its own origin, as politeness goes per origin) per original
  host: the build as it runs online, every page fetched and embedded.
- `online, rebuild`: the online build run again over the cache it left
  (pages revalidated, vectors reused): what `make app` costs the second time.
- with `--entries N`: `N entries, cold` and `N entries, rebuild`, a synthetic FAQ
  of N entries (a question and a one-sentence answer each, no links) built with
  --offline, then built again with nothing changed (issue 13: a 1k-entry FAQ
  rebuilds in under 5 s).

Timings include interpreter start-up and model loading. Results are appended
to the offline-build section of bench/RESULTS.md.

    .venv/bin/python -m bench.offline_build [--runs 3] [--no-results] [--entries 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine, now, read_section, update_section
from bench.evalsets import SEED_PAGES, online_faq

FAQ = ROOT / "data" / "faq.md"
SECTION = "offline-build"
KEEP_ROWS = 40
_SUMMARY = re.compile(r"^Built .*?: (?P<summary>.*)$", re.MULTILINE)

_INTRO = """## Build time of the shipped FAQ

`python -m indexer build` run as a subprocess (interpreter start-up and model loading included), each run
with an empty cache and a new index folder in a temporary directory, except *online, rebuild*, which
reruns over the cache the previous online build left. *no network*: data/faq.md as shipped with default
flags on a machine without network (every link fails); *--offline*: the same with `--offline`;
*online*: data/faq.md with each link pointed at its seed page (../shared/fixtures/seed-pages) served on
127.0.0.1, one server per original host. One row per variant and run of
`.venv/bin/python -m bench.offline_build`; the variant names the model (rows that name none are
all-MiniLM-L6-v2, the default until 2026-11-27).

| date | machine | variant | runs | wall mean (min–max) | last build's summary |
| --- | --- | --- | ---: | ---: | --- |"""


_TOPICS = ("gradient", "loss", "kernel", "tensor", "batch", "layer", "token", "optimiser", "metric", "sampler")


def synthetic_faq(path: Path, entries: int) -> Path:
    """A FAQ of `entries` distinct questions with a short written answer each (made here, no third-party text)."""
    lines = ["# Synthetic FAQ", ""]
    for i in range(entries):
        topic, other = _TOPICS[i % len(_TOPICS)], _TOPICS[(i // len(_TOPICS)) % len(_TOPICS)]
        lines += [f"**Q: How does setting {i} change the {topic} when the {other} grows?**", "",
                  f"Setting {i} scales the {topic} by {i % 7 + 2} whenever the {other} doubles; "
                  f"see note {i} for the {topic} case.", ""]
    path.write_text("\n".join(lines), "utf-8")
    return path


def build_once(faq: Path, cache_dir: Path, index_dir: Path, *extra: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "indexer", "build", "--faq", str(faq), "--cache-dir", str(cache_dir),
           "--index-dir", str(index_dir), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQ_")}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    match = _SUMMARY.search(proc.stdout)
    return wall, (match.group("summary") if match else proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--entries", type=int, default=0,
                        help="also build a synthetic FAQ of this many entries, cold and again unchanged")
    args = parser.parse_args(argv)
    info = machine()
    results: dict[str, tuple[list[float], str]] = {}

    def record(variant: str, wall: float, summary: str) -> None:
        walls, _ = results.setdefault(variant, ([], ""))
        walls.append(wall)
        results[variant] = (walls, summary)
        print(f"{variant}: {wall:.1f}s — {summary}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="faq-build-bench-") as tmp, contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        for i in range(args.runs):
            for variant, extra in (("no network", ()), ("--offline", ("--offline",))):
                run_dir = tmp / f"{variant.strip('-').replace(' ', '-')}-{i}"
                record(variant, *build_once(FAQ, run_dir / "cache", run_dir / "index", *extra))
                shutil.rmtree(run_dir, ignore_errors=True)
        if (SEED_PAGES / "urls.tsv").exists():
            faq = online_faq(tmp / "faq.md", stack)
            for i in range(args.runs):
                run_dir = tmp / f"online-{i}"
                # The mirror is on 127.0.0.1, which a build refuses by default (issue 12): allowed here, as for
                # any local mirror.
                record("online, cold", *build_once(faq, run_dir / "cache", run_dir / "index", "--allow-private"))
                record("online, rebuild", *build_once(faq, run_dir / "cache", run_dir / "index", "--allow-private"))
                shutil.rmtree(run_dir, ignore_errors=True)
        if args.entries > 0:
            faq = synthetic_faq(tmp / f"faq-{args.entries}.md", args.entries)
            for i in range(args.runs):
                run_dir = tmp / f"large-{i}"
                record(f"{args.entries} entries, cold", *build_once(faq, run_dir / "cache", run_dir / "index",
                                                                    "--offline"))
                record(f"{args.entries} entries, rebuild", *build_once(faq, run_dir / "cache", run_dir / "index",
                                                                       "--offline"))
                shutil.rmtree(run_dir, ignore_errors=True)
        if not (SEED_PAGES / "urls.tsv").exists():
            print(f"online variants skipped: no {SEED_PAGES / 'urls.tsv'} (the shared test data is not here)",
                  file=sys.stderr)

    from indexer.config import Settings
    from indexer.models import short_name

    date = now()
    model = short_name(Settings().model)
    rows = []
    for variant, (walls, summary) in results.items():
        rows.append(f"| {date} | {info['cpu']}, nproc {info['nproc']}, load {info['load_average']} | {variant} ({model}) "
                    f"| {len(walls)} | {statistics.mean(walls):.1f}s ({min(walls):.1f}–{max(walls):.1f}) | {summary} |")
    print("\n".join(rows))
    if not args.no_results:
        old = [line for line in read_section(SECTION).splitlines() if line.startswith("| 2")]
        update_section(SECTION, "\n".join([_INTRO, *(old + rows)[-KEEP_ROWS:]]))
        print("bench/RESULTS.md: offline-build rows appended", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
