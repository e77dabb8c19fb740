"""How fast the packaged model embeds passages on this machine: torch (sentence-transformers) and
the ONNX export the build embeds with, paired on the same passages, and whether their vectors agree.

The seed pages (../shared/fixtures/seed-pages/*.html, the local copies of the
shipped FAQ's links) are extracted with `indexer.extract` and chunked with
`indexer.chunk` using the model's own tokenizer, exactly as a build does (each
passage embedded with its page title as context). Both encoders then embed all
passages cold (no vector cache) with the batch size from `Settings` and the same
number of threads: one untimed warm-up batch each, then N paired rounds, the two
encoders one after the other in each round, the order alternating (the machine is
shared, so a slow moment hits both or neither). Reported: each encoder's rate,
the paired ratio ONNX / torch (median of the rounds), the cosine between the two
vectors of every passage, and whether the word pieces each feeds its model (cut
at the model's window) are identical for every passage and for passages made
longer than the window. The ONNX export is taken from the cache folder
(`--cache-dir`, default data/cache), or made in a temporary folder when absent.
The result is appended, with the date, to the embed-speed section of bench/RESULTS.md.

    .venv/bin/python -m bench.embed_speed [--runs 5] [--threads N] [--cache-dir DIR] [--no-results]
    .venv/bin/python -m bench.embed_speed --memory   # peak RSS of ONNX batches, arena on vs off
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import SHARED, machine, memory_mb, now, read_section, update_section

SEED_PAGES = SHARED / "fixtures" / "seed-pages"
SECTION = "embed-speed"
MEMORY_SECTION = "embed-memory"
_MEMORY_INTRO = """## Memory of ONNX batch embedding

Peak RSS (the process's own VmHWM, after its exec) of a fresh process that loads the ONNX export and
embeds the seed pages' passages, per batch size and onnxruntime CPU arena setting; each configuration
in its own process, interleaved. `python -m bench.embed_speed --memory`, {when}, load {load}.
The build uses the first batch size (`Settings.onnx_batch_size`) with the arena as
`config.ONNX_CPU_MEM_ARENA` says."""
KEEP_ROWS = 30
#: The long-passage truncation check repeats each passage to about this many times the model's window.
LONG_REPEATS = 2

_INTRO = """## Embedding speed

Passages of the seed pages (../shared/fixtures/seed-pages, extracted and chunked as a build does) embedded
cold by the packaged model, by sentence-transformers (torch, batch `embed_batch_size`) and by the model's
ONNX export (onnxruntime, batch `onnx_batch_size`: each as a build runs it; the ONNX export embeds a
build's new passages once it exists), with the same number of threads. One untimed warm-up batch each, then paired rounds: both encoders over all passages one
after the other, the order alternating. *passages/s* is the mean over rounds (min–max); *ONNX / torch* the
median of the per-round ratios of rates (> 1: ONNX faster). *word pieces/s* (torch) counts the model's input
tokens (special tokens included, cut at its window). *cosine* is the lowest (mean) cosine between the two
vectors of a passage; *same word pieces* counts passages whose truncated model input is identical both ways,
for the seed passages and for the same passages repeated past the window (all are truncated).
One row per run of `.venv/bin/python -m bench.embed_speed`; the machines are shared, so the load average
at the start is given.

| date | machine | model | threads | batch torch / ONNX | passages (word pieces) | rounds | torch passages/s | ONNX passages/s | ONNX / torch (paired) | word pieces/s (torch) | cosine min (mean) | same word pieces (seed; long) | load torch / ONNX |
| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"""

#: Rows from before the ONNX comparison (torch only), kept below the current table.
_OLD_INTRO = """Earlier rows, torch only:

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


def onnx_folder(model: str, cache_dir: Path, scratch: Path) -> Path:
    """The export of `model` under `cache_dir`, else a fresh one in `scratch` (which needs torch)."""
    from indexer.onnx_encoder import export_dir, export_onnx, export_problem

    folder = export_dir(model, cache_dir)
    if export_problem(folder, model) is None:
        return folder
    print(f"no ONNX export under {cache_dir}: exporting into {scratch}", file=sys.stderr)
    return export_onnx(model, export_dir(model, scratch))


def model_inputs(embedder, onnx, texts: list[str]) -> int:
    """How many texts get the same truncated word pieces from sentence-transformers and from the export."""
    prepare = getattr(embedder.model, "preprocess", None) or embedder.model.tokenize  # renamed in 5.x
    reference = prepare(texts)["input_ids"]
    ours = onnx.tokenizer.encode_batch(texts)
    same = 0
    for row, enc in zip(reference.tolist(), ours):
        n = len(enc.ids)
        same += row[:n] == enc.ids and all(t == 0 for t in row[n:])
    return same


def memory_child(folder: str, arena: bool, texts_file: str, batch: int) -> None:
    """Encode the passages with the export, arena on or off; print the peak RSS (MB) before and after.

    The peak is the process's own (VmHWM): `ru_maxrss` would also count the parent's memory at the fork,
    and this parent holds torch."""
    from indexer.onnx_encoder import OnnxEncoder

    texts = json.loads(Path(texts_file).read_text("utf-8"))
    encoder = OnnxEncoder(Path(folder), batch_size=batch, threads=0, arena=arena)
    before = memory_mb("VmHWM")
    encoder.encode(texts)
    print(json.dumps({"before": before, "after": memory_mb("VmHWM")}))


def memory(args: argparse.Namespace, settings, folder: Path, texts: list[str]) -> int:
    """Peak RSS of a process that loads the export and embeds every passage: arena on vs off, at the
    build's ONNX batch size and at the torch one, each configuration in a fresh process, interleaved."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(texts, f)
    configs = [(batch, arena) for batch in dict.fromkeys((settings.onnx_batch_size, settings.embed_batch_size))
               for arena in (True, False)]
    peaks: dict[tuple[int, bool], list[dict]] = {c: [] for c in configs}
    try:
        for i in range(args.runs):
            for batch, arena in (configs if i % 2 == 0 else configs[::-1]):
                out = subprocess.run([sys.executable, "-m", "bench.embed_speed", "--memory-child", str(folder),
                                      str(int(arena)), f.name, str(batch)],
                                     capture_output=True, text=True, check=True)
                peaks[batch, arena].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        os.unlink(f.name)
    lines = []
    for (batch, arena), runs in peaks.items():
        lines.append(f"batch {batch}, arena {'on' if arena else 'off'}: peak RSS after loading "
                     f"{statistics.median(r['before'] for r in runs):.0f} MB, after embedding {len(texts)} passages "
                     f"{statistics.median(r['after'] for r in runs):.0f} MB (median of {len(runs)}; all: "
                     f"{', '.join(format(r['after'], '.0f') for r in runs)})")
    print("\n".join(lines))
    if not args.no_results:
        update_section(MEMORY_SECTION, "\n".join([_MEMORY_INTRO.format(when=now(), load=machine()["load_average"]),
                                                   "", *[f"- {line}" for line in lines]]))
        print("bench/RESULTS.md: embed-memory section replaced", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="paired rounds")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both encoders (default: torch's own choice, the physical cores)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where the ONNX export is (data/cache)")
    parser.add_argument("--memory", action="store_true", help="peak RSS of ONNX batches, arena on vs off")
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if args.memory_child:
        folder, arena, texts_file, batch = args.memory_child
        memory_child(folder, arena == "1", texts_file, int(batch))
        return 0

    info = machine()
    import numpy as np

    from indexer.config import DEFAULT_CACHE_DIR, Settings, env_path
    from indexer.embed import Embedder
    from indexer.onnx_encoder import OnnxEncoder

    settings = Settings()
    cache_dir = args.cache_dir or env_path("FAQ_CACHE_DIR", DEFAULT_CACHE_DIR)
    scratch = Path(tempfile.mkdtemp(prefix="embed-speed-"))
    started = time.perf_counter()
    embedder = Embedder(settings.model, batch_size=settings.embed_batch_size)
    load_torch = time.perf_counter() - started
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    folder = onnx_folder(settings.model, cache_dir, scratch)
    texts = seed_passages(embedder, settings)
    if args.memory:
        return memory(args, settings, folder, texts)
    started = time.perf_counter()
    onnx = OnnxEncoder(folder, batch_size=settings.onnx_batch_size, threads=threads)
    load_onnx = time.perf_counter() - started

    window = embedder.max_tokens
    pieces = sum(min(n + 2, window) for n in embedder.count_tokens(texts))
    long_texts = [" ".join([t] * (LONG_REPEATS * window // max(n, 1) + 1))
                  for t, n in zip(texts, embedder.count_tokens(texts))]
    same_seed, same_long = model_inputs(embedder, onnx, texts), model_inputs(embedder, onnx, long_texts)
    assert all(n > window for n in embedder.count_tokens(long_texts))
    encoders = {"torch": embedder, "onnx": onnx}
    vectors = {}
    for name, encoder in encoders.items():
        encoder.encode(texts[: settings.embed_batch_size])  # warm-up, untimed
    times: dict[str, list[float]] = {"torch": [], "onnx": []}
    for i in range(args.runs):
        for name in (("torch", "onnx") if i % 2 == 0 else ("onnx", "torch")):
            started = time.perf_counter()
            vectors[name] = encoders[name].encode(texts)
            times[name].append(time.perf_counter() - started)
            assert vectors[name].shape[0] == len(texts)
        print(f"round {i + 1}: " + ", ".join(f"{n} {len(texts) / times[n][-1]:.1f} passages/s" for n in times),
              file=sys.stderr)
    cosines = (vectors["torch"] * vectors["onnx"]).sum(1)
    long_cos = (embedder.encode(long_texts) * onnx.encode(long_texts)).sum(1)
    rate = {n: [len(texts) / t for t in ts] for n, ts in times.items()}
    mean = {n: len(texts) / statistics.mean(ts) for n, ts in times.items()}
    ratios = [o / t for o, t in zip(rate["onnx"], rate["torch"])]
    ratio = statistics.median(ratios)
    span = {n: f"{mean[n]:.1f} ({min(r):.1f}–{max(r):.1f})" for n, r in rate.items()}
    cos_min = float(min(cosines.min(), long_cos.min()))
    row = (f"| {now()} | {info['cpu']}, nproc {info['nproc']}, load {info['load_average']} | {embedder.name} "
           f"| {threads} | {settings.embed_batch_size} / {settings.onnx_batch_size} | {len(texts)} ({pieces}) "
           f"| {args.runs} | {span['torch']} | {span['onnx']} | {ratio:.2f} ({min(ratios):.2f}–{max(ratios):.2f}) "
           f"| {pieces / statistics.mean(times['torch']):.0f} | {cos_min:.7f} ({float(np.mean(cosines)):.7f}) "
           f"| {same_seed}/{len(texts)}; {same_long}/{len(long_texts)} | {load_torch:.1f}s / {load_onnx:.1f}s |")
    print(f"{len(texts)} passages, {pieces} word pieces, {threads} threads, batch {settings.embed_batch_size} "
          f"(torch) / {settings.onnx_batch_size} (ONNX): "
          f"torch {span['torch']} passages/s, ONNX {span['onnx']}; ONNX / torch paired median {ratio:.2f}; "
          f"cosine min {cos_min:.7f} (long passages {float(long_cos.min()):.7f}); same word pieces "
          f"{same_seed}/{len(texts)} (long {same_long}/{len(long_texts)})")
    print(row)
    if not args.no_results:
        lines = read_section(SECTION).splitlines()
        old_start = next((i for i, line in enumerate(lines) if line.startswith("Earlier rows")), len(lines))
        current = [line for line in lines[:old_start] if line.startswith("| 2") and line.count("|") > 12]
        older = [line for line in lines if line.startswith("| 2") and line.count("|") <= 12]
        body = [_INTRO, *current[-(KEEP_ROWS - 1):], row]
        if older:
            body += ["", _OLD_INTRO, *older[-KEEP_ROWS:]]
        update_section(SECTION, "\n".join(body))
        print("bench/RESULTS.md: embed-speed row appended", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
