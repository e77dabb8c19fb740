"""How fast the packaged model embeds passages on this machine (passages/s and word pieces/s).

The seed pages (../shared/fixtures/seed-pages/*.html, the local copies of the
shipped FAQ's links) are extracted with `indexer.extract` and chunked with
`indexer.chunk` using the model's own tokenizer, exactly as a build does (each
passage embedded with its page title as context). The passages are then
embedded cold (no vector cache) with the batch size from `Settings`: one
untimed warm-up batch, then N timed runs over all passages. The result is
appended, with the date, to the embed-speed section of bench/RESULTS.md.

    .venv/bin/python -m bench.embed_speed [--runs 3] [--threads N] [--no-results]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench.common import SHARED, machine, now, read_section, update_section

SEED_PAGES = SHARED / "fixtures" / "seed-pages"
SECTION = "embed-speed"
KEEP_ROWS = 30

_INTRO = """## Embedding speed

Passages of the seed pages (../shared/fixtures/seed-pages, extracted and chunked as a build does) embedded
cold by the packaged model, batch size from `Settings`; mean of the timed runs after one untimed warm-up
batch. *word pieces/s* counts the model's input tokens (special tokens included, cut at its window).
One row per run of `.venv/bin/python -m bench.embed_speed`; the machines are shared, so the load average
at the start is given.

| date | machine | model | threads | batch | passages (word pieces) | runs | passages/s (min–max) | word pieces/s | model load |
| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"""


def seed_passages(embedder, settings) -> list[str]:
    """The texts a build would embed for the seed pages' passages."""
    from indexer.chunk import chunk_text
    from indexer.extract import extract
    from indexer.records import Page

    pages = sorted(SEED_PAGES.glob("*.html"))
    if not pages:
        raise SystemExit(f"no seed pages in {SEED_PAGES} (the shared test data is not here; "
                         "set FAQ_SHARED_DIR if it lives elsewhere)")
    texts = []
    for path in pages:
        url = f"http://seed-pages.invalid/{path.name}"
        page = Page(url=url, status="fetched", final_url=url, http_status=200, content_type="text/html",
                    body=path.read_bytes())
        doc = extract(page, settings.extract)
        for passage in chunk_text(doc.text, embedder.count_tokens, settings.chunk):
            texts.append(f"{doc.title}: {passage}" if doc.title else passage)
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)

    info = machine()
    from indexer.config import Settings
    from indexer.embed import Embedder

    settings = Settings()
    started = time.perf_counter()
    embedder = Embedder(settings.model, batch_size=settings.embed_batch_size)
    load_s = time.perf_counter() - started
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    texts = seed_passages(embedder, settings)
    window = embedder.max_tokens
    pieces = sum(min(n + 2, window) for n in embedder.count_tokens(texts))
    embedder.encode(texts[: settings.embed_batch_size])  # warm-up, untimed
    times = []
    for i in range(args.runs):
        started = time.perf_counter()
        vectors = embedder.encode(texts)
        times.append(time.perf_counter() - started)
        assert vectors.shape[0] == len(texts)
        print(f"run {i + 1}: {len(texts)} passages in {times[-1]:.2f}s ({len(texts) / times[-1]:.1f} passages/s)",
              file=sys.stderr)
    mean = statistics.mean(times)
    rates = [len(texts) / t for t in times]
    row = (f"| {now()} | {info['cpu']}, nproc {info['nproc']}, load {info['load_average']} | {embedder.name} "
           f"| {threads} | {settings.embed_batch_size} | {len(texts)} ({pieces}) | {args.runs} "
           f"| {len(texts) / mean:.1f} ({min(rates):.1f}–{max(rates):.1f}) | {pieces / mean:.0f} | {load_s:.1f}s |")
    print(f"{len(texts)} passages, {pieces} word pieces; mean of {args.runs} runs: {mean:.2f}s = "
          f"{len(texts) / mean:.1f} passages/s, {pieces / mean:.0f} word pieces/s "
          f"(torch threads {threads}, batch {settings.embed_batch_size}; model load {load_s:.1f}s)")
    print(row)
    if not args.no_results:
        old = [line for line in read_section(SECTION).splitlines() if line.startswith("| 2")]
        update_section(SECTION, "\n".join([_INTRO, *old[-(KEEP_ROWS - 1):], row]))
        print("bench/RESULTS.md: embed-speed row appended", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
