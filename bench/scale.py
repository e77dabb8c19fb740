"""How search holds up as the index grows: 10k, 100k and 1M units, ours beside bare FAISS flat search.

Synthetic indexes are written through the project's own store (`indexer.store.write_build`,
so the index type, the saved BM25 side and the manifest are exactly what a build makes)
and opened with the real `Searcher.open`. Ten units per entry (question, profile, answer,
link title, six page passages), texts sampled from the sentences of the seed pages
(../shared/fixtures/seed-pages, extracted with `indexer.extract`). Two vector variants:

- `random`: independent uniform unit vectors (the worst case for graph indexes);
- `structured`: vectors clustered like real embeddings (topics, entries within a topic,
  units around their entry, a shared direction), queries near a unit of the index.

Queries carry a sampled sentence as text and a vector given to the searcher by a stand-in
encoder, so the numbers are search alone (the ONNX query encoder adds its own few ms).
Each size is built in one child process and measured in a fresh one, so RSS is what
opening and searching that index costs. Reported per size and variant: build seconds,
open seconds, RSS after open, disk size, query p50/p95 of `Searcher.search` (top 5
entries, hybrid, learned ranker) and of a bare `faiss.IndexFlatIP` search (k=10) over
the same vectors, interleaved in one run, and recall@10 of the stored FAISS index
against exact search.

Seed size: the shipped `data/faq.md` built offline by the real build (8 entries, 28 units;
packaged model, ONNX query encoder, as `make app` without network) and searched with the
queries of bench/eval/shipped_faq.jsonl: `Searcher.search` beside the bare minimum, the same
encoder on the raw query plus an `IndexFlatIP.search(k=10)`, interleaved (issue 13: <= 1.2x).

    python -m bench.scale              # 10k, 100k, 1M; rewrites the `scale` section of bench/RESULTS.md
    python -m bench.scale --short      # 10k only, no RESULTS.md (what the test runs)
    python -m bench.scale --no-seed    # without the seed-size check (data/faq.md, the real model)
    python -m bench.scale --sizes 10000,100000 --variants structured
    python -m bench.scale --reuse --work /tmp/scale   # keep the built indexes there; later runs only measure
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench.common import OUT, ROOT, SHARED, machine_line, memory_mb, now, update_section
from indexer.config import IndexSettings
from indexer.store import nearest

log = logging.getLogger("bench.scale")

SECTION = "scale"
SIZES = (10_000, 100_000, 1_000_000)
VARIANTS = ("structured", "random")
DIM = 384
MODEL = "synthetic/scale-bench"
UNITS_PER_ENTRY = 10
KINDS = ("question", "entry", "answer", "title") + ("passage",) * 6
SEED_PAGES = SHARED / "fixtures" / "seed-pages"
#: The seed-size check: the shipped FAQ built offline (8 entries, 28 units) and its hand-written queries.
SEED_FAQ = ROOT / "data" / "faq.md"
SEED_QUERIES = ROOT / "bench" / "eval" / "shipped_faq.jsonl"
#: The seed index's page, vector and ONNX cache, kept between runs (the export is made once per model).
SEED_CACHE = OUT / "scale-seed-cache"


@dataclass
class Row:
    units: int
    entries: int
    variant: str
    index_type: str
    build_s: float
    open_s: float
    rss_mb: float
    #: After the queries: the process's own (anonymous) memory, and the index file's pages mapped in
    #: (shared with every process that opens the build, dropped by the kernel under pressure).
    rss_anon_mb: float
    rss_file_mb: float
    disk_mb: float
    ours_p50_ms: float
    ours_p95_ms: float
    flat_p50_ms: float
    flat_p95_ms: float
    #: The same bare search on FAISS's default OpenMP threads (what a bare call gets untuned).
    flat_default_p50_ms: float
    recall_at_10: float
    queries: int


# -- synthetic data ----------------------------------------------------------------------------------
def sentences(limit: int = 20000) -> list[str]:
    """Real sentences from the seed pages, extracted by the project's own extractor."""
    from indexer.chunk import split_sentences
    from indexer.extract import extract
    from indexer.records import Page

    out: list[str] = []
    for path in sorted(SEED_PAGES.glob("*.html")):
        page = Page(url=f"https://example.org/{path.name}", status="fetched", body=path.read_bytes(),
                    content_type="text/html")
        out.extend(s for s in split_sentences(extract(page).text) if 20 <= len(s) <= 400)
    if not out:  # ../shared absent: a tiny stand-in keeps the benchmark runnable
        out = [f"Sentence {i} about gradients, losses and learning rates." for i in range(200)]
    return out[:limit]


def unit_vectors(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_vectors(n_units: int, variant: str, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    """`random`: uniform on the sphere; `structured`: topics > entries > units, plus a shared direction."""
    out = np.empty((n_units, DIM), dtype=np.float32)
    if variant == "random":
        for s in range(0, n_units, chunk):
            out[s:s + chunk] = unit_vectors(rng.standard_normal((min(chunk, n_units - s), DIM), dtype=np.float32))
        return out
    n_entries = n_units // UNITS_PER_ENTRY
    n_topics = max(8, n_entries // 40)
    common = unit_vectors(rng.standard_normal((1, DIM), dtype=np.float32))
    topics = unit_vectors(rng.standard_normal((n_topics, DIM), dtype=np.float32))
    entry_topic = rng.integers(0, n_topics, n_entries)
    entries = unit_vectors(topics[entry_topic] + 0.9 * unit_vectors(
        rng.standard_normal((n_entries, DIM), dtype=np.float32)) + 0.5 * common)
    for s in range(0, n_units, chunk):
        m = min(chunk, n_units - s)
        centre = entries[(s + np.arange(m)) // UNITS_PER_ENTRY]
        noise = unit_vectors(rng.standard_normal((m, DIM), dtype=np.float32))
        out[s:s + m] = unit_vectors(centre + 0.8 * noise)
    return out


def queries_for(vectors: np.ndarray, variant: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if variant == "random":
        return unit_vectors(rng.standard_normal((n, DIM), dtype=np.float32))
    near = vectors[rng.integers(0, len(vectors), n)]
    return unit_vectors(near + 0.6 * unit_vectors(rng.standard_normal((n, DIM), dtype=np.float32)))


def build(index_dir: Path, n_units: int, variant: str, seed: int = 0,
          index_settings: IndexSettings | None = None) -> float:
    """A synthetic index of `n_units` units written through the real store; returns seconds."""
    from indexer import store
    from indexer.config import SCHEMA_VERSION
    from indexer.records import Entry, Resource, Unit

    started = time.monotonic()
    rng = np.random.default_rng(seed)
    pool = sentences()
    n_entries = n_units // UNITS_PER_ENTRY
    pick = rng.integers(0, len(pool), (n_units, 2))
    entries, units = [], []
    for e in range(n_entries):
        eid = f"e{e}"
        url = f"https://example.org/page/{e}"
        base = e * UNITS_PER_ENTRY
        question = pool[pick[base, 0]]
        entries.append(Entry(id=eid, question=question, answer=pool[pick[base + 2, 0]], category="synthetic",
                             resources=(Resource(url=url, title=pool[pick[base + 3, 0]][:80]),)))
        for j, kind in enumerate(KINDS):
            i = base + j
            text = pool[pick[i, 0]] if kind != "passage" else f"{pool[pick[i, 0]]} {pool[pick[i, 1]]}"
            units.append(Unit(eid, kind, text, url=url if kind in ("title", "passage") else ""))
    vectors = make_vectors(len(units), variant, rng)
    manifest: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "build_id": f"scale-{variant}-{n_units}",
                                "model": MODEL, "dimension": DIM, "answer_threshold": None, "calibration": None,
                                "counts": {"entries": n_entries, "passages": len(units)}}
    build_dir = store.new_build_dir(index_dir)
    store.write_build(build_dir, entries=entries, units=units, vectors=vectors, documents=[], manifest=manifest,
                      report=[], index_settings=index_settings)
    store.publish(index_dir, build_dir)
    np.save(index_dir.parent / "queries.npy", queries_for(vectors, variant, 400, rng))
    (index_dir.parent / "query_texts.json").write_text(
        json.dumps([pool[i] for i in rng.integers(0, len(pool), 400)]), "utf-8")
    return time.monotonic() - started


# -- measuring -------------------------------------------------------------------------------------
class GivenVectors:
    """A stand-in query encoder: each query text maps to a vector fixed in advance."""

    name = MODEL
    dimension = DIM
    max_tokens = 256

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    whole_words: frozenset[str] = frozenset()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return np.stack([self.vectors.get(t, self._fallback(t)) for t in texts]).astype(np.float32)

    def _fallback(self, text: str) -> np.ndarray:  # a mended query: any fixed vector of the right size
        return next(iter(self.vectors.values()))


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.resolve().rglob("*") if p.is_file()) / 2**20


def measure(index_dir: Path, n_queries: int) -> dict[str, Any]:
    import faiss

    from indexer.search import Searcher

    encoder = GivenVectors()
    started = time.perf_counter()
    searcher = Searcher.open(index_dir, encoder_for=lambda _model: encoder)
    open_s = time.perf_counter() - started
    rss = memory_mb("VmRSS")
    stored = searcher.stored.faiss_index
    qv = np.load(index_dir.parent / "queries.npy")[:n_queries]
    texts = json.loads((index_dir.parent / "query_texts.json").read_text("utf-8"))[:n_queries]
    encoder.vectors = {t: v for t, v in zip(texts, qv)}
    texts = list(encoder.vectors)  # duplicate texts keep their last vector
    qv = np.stack([encoder.vectors[t] for t in texts])
    for text in texts:  # a warm-up pass (lazy per-index work, pages read in); the memory a server then holds
        searcher.search(text)
    searcher.clear_caches()  # the timed pass runs the same queries: as new ones
    served = {"rss_anon_mb": memory_mb("RssAnon"), "rss_file_mb": memory_mb("RssFile")}
    flat = faiss.IndexFlatIP(DIM)  # the bare baseline's own copy of the vectors (made after the memory is read)
    flat.add(stored.reconstruct_n(0, stored.ntotal))
    flat.search(qv[:1], 10)
    ours, bare, bare_default = [], [], []
    for text, vector in zip(texts, qv):
        t0 = time.perf_counter()
        searcher.search(text)
        t1 = time.perf_counter()
        nearest(flat, vector.reshape(1, -1), 10)  # on the query threads ours uses (config.FAISS_QUERY_THREADS)
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        bare.append(t2 - t1)
    # FAISS's default threads on their own pass: its OpenMP workers keep spinning on the other core for a
    # while after each call, which would slow whatever is measured next.
    for vector in qv:
        t0 = time.perf_counter()
        flat.search(vector.reshape(1, -1), 10)
        bare_default.append(time.perf_counter() - t0)
    _, exact = flat.search(qv, 10)
    _, got = stored.search(qv, 10)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, got)]))
    manifest = searcher.stored.manifest
    return {"open_s": open_s, "rss_mb": rss, **served, "disk_mb": disk_mb(index_dir),
            "index_type": str(manifest.get("faiss", {}).get("type", "flat")),
            "ours_p50_ms": 1000 * float(np.percentile(ours, 50)), "ours_p95_ms": 1000 * float(np.percentile(ours, 95)),
            "flat_p50_ms": 1000 * float(np.percentile(bare, 50)), "flat_p95_ms": 1000 * float(np.percentile(bare, 95)),
            "flat_default_p50_ms": 1000 * float(np.percentile(bare_default, 50)),
            "recall_at_10": recall, "queries": len(texts)}


def build_seed(index_dir: Path, cache_dir: Path = SEED_CACHE) -> float:
    """The shipped FAQ built offline through the real build (the packaged model, the ONNX export); seconds."""
    from indexer.build import build_index

    started = time.monotonic()
    build_index([SEED_FAQ], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    return time.monotonic() - started


def measure_seed(index_dir: Path, n_queries: int, cache_dir: Path = SEED_CACHE) -> dict[str, Any]:
    """Ours (`Searcher.search` with the query encoder the app uses) beside the bare minimum (the same
    encoder on the raw query, then `IndexFlatIP.search(k=10)` over the same vectors), interleaved."""
    import faiss

    from indexer.search import Searcher

    searcher = Searcher.open(index_dir, cache_dir=cache_dir)
    encoder = searcher.embedder
    stored = searcher.stored.faiss_index
    flat = faiss.IndexFlatIP(stored.d)
    flat.add(stored.reconstruct_n(0, stored.ntotal))
    lines = SEED_QUERIES.read_text("utf-8").splitlines()
    queries = list(dict.fromkeys(json.loads(line)["query"] for line in lines if line.strip()))[:n_queries]
    for q in queries[:2]:  # warm-up, untimed
        searcher.search(q)
        flat.search(encoder.encode([q]), 10)
    searcher.clear_caches()
    ours, bare = [], []
    for i, q in enumerate(queries):
        def run_ours() -> None:
            t0 = time.perf_counter()
            searcher.search(q)
            ours.append(time.perf_counter() - t0)

        def run_bare() -> None:
            t0 = time.perf_counter()
            nearest(flat, encoder.encode([q]).reshape(1, -1), 10)
            bare.append(time.perf_counter() - t0)

        for run in ((run_ours, run_bare) if i % 2 else (run_bare, run_ours)):  # alternate who goes first
            run()
    return {"units": int(stored.ntotal), "entries": len(searcher.entry_ids), "queries": len(queries),
            "encoder": type(encoder).__name__,
            "ours_p50_ms": 1000 * float(np.percentile(ours, 50)), "ours_p95_ms": 1000 * float(np.percentile(ours, 95)),
            "bare_p50_ms": 1000 * float(np.percentile(bare, 50)), "bare_p95_ms": 1000 * float(np.percentile(bare, 95))}


def run_seed(work: Path, n_queries: int) -> dict[str, Any]:
    """Build (in a child) and measure (in another) the seed-size index; adds `ratio` (ours / bare p50)."""
    folder = work / "seed"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    built = child(["--child-seed-build", str(folder / "index")])
    got = child(["--child-seed-measure", str(folder / "index"), "--queries", str(n_queries)])
    shutil.rmtree(folder, ignore_errors=True)
    return got | built | {"ratio": got["ours_p50_ms"] / got["bare_p50_ms"]}


def seed_line(seed: dict[str, Any]) -> str:
    return (f"Seed size ({seed['entries']} entries, {seed['units']} units: `data/faq.md` built offline; "
            f"{seed['queries']} queries of `bench/eval/shipped_faq.jsonl`, query encoder {seed['encoder']}): "
            f"ours {seed['ours_p50_ms']:.1f} / {seed['ours_p95_ms']:.1f} ms (p50 / p95), bare encode + flat search "
            f"{seed['bare_p50_ms']:.1f} / {seed['bare_p95_ms']:.1f} ms: **{seed['ratio']:.2f}x** by p50 "
            "(target <= 1.2x).")


def child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.scale", *args], capture_output=True, text=True,
                         env=os.environ | {"HF_HUB_OFFLINE": "1"})
    if out.returncode:
        raise RuntimeError(f"bench.scale {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_one(n_units: int, variant: str, work: Path, n_queries: int, index_args: Sequence[str] = (),
            reuse: bool = False) -> Row:
    """Build (or, with `reuse`, take the index a `--keep` run left in `work`) and measure one size and variant."""
    folder = work / f"{variant}-{n_units}"
    record = folder / "build.json"
    if reuse and record.exists() and (folder / "index" / "manifest.json").exists():
        built = json.loads(record.read_text("utf-8"))
        if built.get("index_args") != list(index_args):
            raise SystemExit(f"{folder} was built with {built.get('index_args')}, not {list(index_args)}: "
                             "drop --reuse to rebuild it")
        log.warning("reusing the index in %s (built in %.0f s)", folder, built["build_s"])
    else:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        built = child(["--child-build", str(folder / "index"), "--size", str(n_units), "--variant", variant,
                       *index_args]) | {"index_args": list(index_args)}
        record.write_text(json.dumps(built), "utf-8")
    got = child(["--child-measure", str(folder / "index"), "--queries", str(n_queries)])
    row = Row(units=n_units, entries=n_units // UNITS_PER_ENTRY, variant=variant, build_s=built["build_s"],
              **{f.name: got[f.name] for f in fields(Row) if f.name in got})
    if not reuse:
        shutil.rmtree(folder, ignore_errors=True)
    return row


def table(rows: Sequence[Row]) -> str:
    lines = ["| units (entries) | vectors | index | build | open | RSS at open | RSS serving: own + index file | disk "
             "| ours p50 / p95 | bare flat p50 / p95 | ours / bare flat (p50) | bare flat, FAISS default threads p50 "
             "| recall@10 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | ---: | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.units:,} ({r.entries:,}) | {r.variant} | {r.index_type} | {r.build_s:.1f} s | "
                     f"{r.open_s:.2f} s | {r.rss_mb:.0f} MB | {r.rss_anon_mb:.0f} + {r.rss_file_mb:.0f} MB | "
                     f"{r.disk_mb:.0f} MB | "
                     f"{r.ours_p50_ms:.1f} / {r.ours_p95_ms:.1f} ms | {r.flat_p50_ms:.1f} / {r.flat_p95_ms:.1f} ms | "
                     f"{r.ours_p50_ms / r.flat_p50_ms:.2f}x | {r.flat_default_p50_ms:.1f} ms | {r.recall_at_10:.3f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="10k units only; RESULTS.md untouched")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--random-max", type=int, default=100_000,
                        help="the random variant only up to this size (a graph's worst case; at 1M it doubles the run)")
    parser.add_argument("--work", type=Path, default=None, help="where indexes are built (default: bench/out/scale)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep each built index in --work and measure it again next time instead of rebuilding "
                             "(the 1M build takes about 9 minutes)")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    defaults = IndexSettings()
    parser.add_argument("--exact-max", type=int, default=defaults.exact_max_units,
                        help="exact search up to this many units, HNSW beyond (config.IndexSettings)")
    parser.add_argument("--hnsw-m", type=int, default=defaults.hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=defaults.hnsw_ef_construction)
    parser.add_argument("--ef-search", type=int, default=defaults.hnsw_ef_search)
    parser.add_argument("--no-seed", action="store_true",
                        help="skip the seed-size check (data/faq.md: ours vs bare encode + flat search)")
    parser.add_argument("--child-build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-seed-build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-seed-measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    index_settings = IndexSettings(exact_max_units=args.exact_max, hnsw_m=args.hnsw_m,
                                   hnsw_ef_construction=args.ef_construction, hnsw_ef_search=args.ef_search)
    index_args = ["--exact-max", str(args.exact_max), "--hnsw-m", str(args.hnsw_m),
                  "--ef-construction", str(args.ef_construction), "--ef-search", str(args.ef_search)]
    if args.child_build:
        print(json.dumps({"build_s": build(args.child_build, args.size, args.variant, index_settings=index_settings)}))
        return 0
    if args.child_measure:
        print(json.dumps(measure(args.child_measure, args.queries)))
        return 0
    if args.child_seed_build:
        print(json.dumps({"build_s": build_seed(args.child_seed_build)}))
        return 0
    if args.child_seed_measure:
        print(json.dumps(measure_seed(args.child_seed_measure, args.queries)))
        return 0
    sizes = [10_000] if args.short else [int(s) for s in args.sizes.split(",") if s]
    variants = args.variants.split(",")
    tmp = None
    if args.work is None and args.short:
        tmp = tempfile.TemporaryDirectory(prefix="faq-scale-")
        work = Path(tmp.name)
    else:
        work = args.work or OUT / "scale"
    rows = []
    seed: dict[str, Any] | None = None
    try:
        if not args.no_seed:
            seed = run_seed(work, args.queries)
            print(f"seed: {json.dumps(seed)}", flush=True)
        for n in sizes:
            for variant in variants:
                if variant == "random" and n > args.random_max:
                    continue
                started = time.monotonic()
                row = run_one(n, variant, work, args.queries, index_args, reuse=args.reuse)
                rows.append(row)
                print(f"{n:,} units, {variant}: {json.dumps(asdict(row))} ({time.monotonic() - started:.0f} s)",
                      flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(table(rows))
    if seed is not None:
        print(seed_line(seed))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1), "utf-8")
        if seed is not None:
            args.json.with_suffix(".seed.json").write_text(json.dumps(seed, indent=1), "utf-8")
    if not (args.short or args.no_results):
        update_section(SECTION, "\n".join([
            "## Scale: synthetic indexes, ours beside bare FAISS flat search",
            "",
            f"`python -m bench.scale` ({now()}; {machine_line()}). Ten units per entry, texts sampled from the",
            "seed pages' sentences, written through `indexer.store` and opened with `Searcher.open`; query times",
            "are search alone (vectors given; the ONNX encoder adds its own few ms). `ours`: `Searcher.search`",
            "(hybrid, learned ranker, top 5 entries); `bare flat`: `faiss.IndexFlatIP.search(k=10)` over the same",
            "vectors on the OpenMP threads ours searches with (`config.FAISS_QUERY_THREADS`, one: FAISS's default",
            "two threads are 2-3x slower for a single query on these machines; that column is given too), interleaved",
            "with ours. recall@10: the stored index's 10 nearest units against exact search.",
            "*RSS at open*: the measuring process after `Searcher.open`; *serving*: after one pass of the queries",
            "(before the bare baseline copies the vectors), split into the process's own memory (RssAnon) and the",
            "memory-mapped index file's pages (RssFile: shared by every process on the build, evictable).",
            "With `--reuse`, an index built by an earlier run keeps",
            "that run's build time (a build on a loaded machine can take several times longer).",
            "",
            table(rows)] + (["", seed_line(seed)] if seed is not None else [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
