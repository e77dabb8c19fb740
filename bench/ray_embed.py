"""The Ray Data embed stage against the single-process build's embedding, on the same machine and passages.

Two passage sets: the seed pages' passages (extracted and chunked as a build does, with the page
title as context: `bench.embed_speed.seed_passages`) and a larger synthetic set (N passages of one to
three sentences sampled from the same pages, seed 0). Per set and run, interleaved in rotating order:

- *single process*: `Embedder.encode` in this process (torch's own threads: all cores), the model
  loaded once beforehand, one warm-up batch untimed; what `build_index` does when nothing is cached;
- *ray, W workers*: `indexer.distributed.embed_with_ray` with W actors (cores / W torch threads
  each) on a local Ray started once beforehand; each run starts its actors and loads the model in
  each, which is counted in the run.

Ray's overheads are given apart: `ray.init` of the local cluster (once), and the fixed cost of a run
(actors started, model loaded, a handful of passages embedded). *steady* rates subtract that fixed
cost. Every Ray run's vectors are compared with the single-process ones (min cosine). The table
replaces the `ray-embed` section of bench/RESULTS.md. Needs the optional extra: `pip install .[scale]`.

    .venv/bin/python -m bench.ray_embed [--runs 2] [--synthetic 5000] [--workers 1 2] [--no-results]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Callable, Sequence

import numpy as np

from bench.common import command_line, git_revision, machine, now, update_section

SECTION = "ray-embed"


def synthetic_passages(n: int, seed: int = 0) -> list[str]:
    """`n` passages of one to three sentences drawn from the seed pages (a larger set than the pages give)."""
    from bench.scale import sentences

    pool = sentences(limit=1_000_000)
    rng = random.Random(seed)
    return [" ".join(rng.choice(pool) for _ in range(rng.randint(1, 3))) for _ in range(n)]


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(((a * b).sum(axis=1) / norms).min())


def timed(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def fmt_rate(n: int, seconds: Sequence[float], fixed: float = 0.0) -> str:
    rates = [n / max(s - fixed, 1e-9) for s in seconds]
    return f"{statistics.median(rates):.1f} ({min(rates):.1f}–{max(rates):.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--synthetic", type=int, default=5000, help="passages in the synthetic set (0: none)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-results", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)

    from bench.embed_speed import seed_passages
    from indexer.config import RaySettings, Settings
    from indexer.distributed import RayUnavailable, embed_with_ray, start_ray, stop_ray, worker_threads
    from indexer.embed import Embedder

    info = machine()
    settings = Settings()
    started = time.perf_counter()
    embedder = Embedder(settings.model, batch_size=settings.embed_batch_size)
    load_s = time.perf_counter() - started
    import torch

    threads = torch.get_num_threads()
    sets = {"seed pages": seed_passages(embedder, settings)}
    if args.synthetic:
        sets[f"synthetic ({args.synthetic:,})"] = synthetic_passages(args.synthetic)
    embedder.encode(next(iter(sets.values()))[: settings.embed_batch_size])  # warm-up, untimed

    try:
        init_s = start_ray(RaySettings())
    except RayUnavailable as exc:
        raise SystemExit(str(exc)) from None
    ray_settings = {w: RaySettings(workers=w) for w in args.workers}
    try:
        # The fixed cost of one Ray run: actors started, the model loaded in each, a few passages embedded.
        probe = ["A passage about gradients."] * 2
        fixed = {w: statistics.median(timed(lambda: embed_with_ray(
            probe * w, model=settings.model, embed_batch_size=settings.embed_batch_size, settings=s))[0]
            for _ in range(2)) for w, s in ray_settings.items()}
        for w, s in fixed.items():
            print(f"ray {w} worker(s): fixed cost per run {s:.1f}s", file=sys.stderr)

        configs = ["single", *(f"ray{w}" for w in args.workers)]
        rows = []
        for name, texts in sets.items():
            pieces = sum(min(n + 2, embedder.max_tokens) for n in embedder.count_tokens(texts))
            times: dict[str, list[float]] = {c: [] for c in configs}
            reference = embedder.encode(texts)
            worst = {c: 1.0 for c in configs}
            for run in range(args.runs):
                order = configs[run % len(configs):] + configs[:run % len(configs)]  # rotate: load drifts
                for config in order:
                    if config == "single":
                        seconds, vectors = timed(lambda: embedder.encode(texts))
                    else:
                        w = int(config[3:])
                        seconds, vectors = timed(lambda: embed_with_ray(
                            texts, model=settings.model, embed_batch_size=settings.embed_batch_size,
                            settings=ray_settings[w]))
                    worst[config] = min(worst[config], min_cosine(vectors, reference))
                    times[config].append(seconds)
                    print(f"{name}: {config} run {run + 1}: {len(texts)} passages in {seconds:.1f}s "
                          f"({len(texts) / seconds:.1f}/s)", file=sys.stderr)
            base = statistics.median(times["single"])
            for config in configs:
                ray_w = None if config == "single" else int(config[3:])
                label = ("single process (torch %d threads)" % threads if ray_w is None else
                         f"ray, {ray_w} worker{'s' if ray_w > 1 else ''} × {worker_threads(ray_settings[ray_w])} thread(s)")
                wall = statistics.median(times[config])
                fx = fixed.get(ray_w, 0.0) if ray_w else 0.0
                rows.append(
                    f"| {name} | {len(texts):,} ({pieces:,}) | {label} | {wall:.1f} s "
                    f"| {fmt_rate(len(texts), times[config])} "
                    f"| {fmt_rate(len(texts), times[config], fx) if ray_w else '–'} "
                    f"| {pieces / wall:.0f} | {base / wall:.2f}x | {worst[config]:.6f} |")
    finally:
        stop_ray()

    fixed_text = ", ".join(f"{w} worker{'s' if w > 1 else ''} {s:.1f} s" for w, s in fixed.items())
    body = "\n".join([
        "## Ray Data embed stage against the single-process embedding",
        "",
        f"`{command_line()}` ({now()}; {info['cpu']}, nproc {info['nproc']}; load average "
        f"{info['load_average']} at start; Python {info['python']}; indexer at {git_revision()}). "
        "Model sentence-transformers/all-MiniLM-L6-v2 (the packaged copy, offline), batch "
        f"{settings.embed_batch_size} in every configuration; {args.runs} run(s) per configuration, interleaved in "
        "rotating order. *wall*: median seconds to embed the whole set (Ray: actors started and the "
        "model loaded in each, included). *steady*: passages/s with Ray's fixed cost per run taken off. "
        "*min cosine*: worst passage against the single-process vectors.",
        "",
        f"Ray's overheads on this machine: `ray.init` of a local cluster {init_s:.1f} s (once per process); "
        f"fixed cost per run (actors, model load in each, a few passages) {fixed_text}; the single "
        f"process loads the model in {load_s:.1f} s (once).",
        "",
        "| passages | count (word pieces) | configuration | wall | passages/s (min–max) | steady passages/s "
        "| word pieces/s | speed vs single | min cosine |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
    ])
    print(body)
    if not args.no_results:
        update_section(SECTION, body)
        print("bench/RESULTS.md: section ray-embed written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
