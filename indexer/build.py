"""The build: FAQ -> pages -> documents -> units -> vectors -> a new index, swapped in.

Every stage keeps its work where a re-run finds it (the page cache, the vector
cache), and the index itself is only replaced once the new one is complete, so
a build can be interrupted at any moment and simply run again.

Progress: tqdm bars on a terminal (the CLI), and `on_stage(stage, done, total)`
for any other caller (the web app's rebuild), called with the stages of `STAGES`
in order, always from the thread that called `build_index`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from . import store
from .cache import PageCache
from .chunk import TokenCounter, chunk_text, fit_tokens
from .config import SCHEMA_VERSION, Settings
from .embed import Embedder, VectorCache, embed_cached, resolve_model
from .extract import extract
from .faq import faq_files, load_entries
from .fetch import Fetcher
from .files import file_sha256
from .onnx_encoder import (TOKENIZER_FILE, OnnxEncoder, changed_weights, ensure_export, export_dir, export_problem,
                           load_passage_encoder, pipeline_info, transformer_folder)
from .quality import judge
from .records import Document, Entry, Page, ReportRecord, Unit
from .text import utc_now
from .threshold import calibrated_threshold

log = logging.getLogger(__name__)

#: The build's stages, in the order `on_stage` reports them.
STAGES = ("fetching", "extracting", "embedding", "saving")
#: `on_stage(stage, done, total)`: `done` of `total` pages (fetching, extracting), passages (embedding;
#: total 0 while the model is still loading) or steps (saving) are through.
StageCallback = Callable[[str, int, int], None]


@dataclass
class BuildSummary:
    entries: int = 0
    resources: int = 0
    pages_fetched: int = 0
    pages_cached: int = 0
    pages_thin: int = 0
    pages_failed: int = 0
    #: A fetched page judged worse than its cached copy (block page, soft 404, much shorter): the copy is kept.
    pages_suspect: int = 0
    #: 404/410 now; the last good copy is kept (stale) for `gone_keep_days`.
    pages_gone: int = 0
    #: Fetched, but no text to index (a page of scripts only, an empty document).
    pages_empty: int = 0
    #: Not fetched on purpose: an internal address, credentials in the URL, a binary body.
    pages_refused: int = 0
    #: Failed, no cached copy, and indexed from the web archive (`--archive-fallback`).
    pages_archived: int = 0
    passages: int = 0
    vectors_embedded: int = 0
    vectors_reused: int = 0
    #: What embedded the new vectors: "onnx", "sentence-transformers", or "" when none was new.
    embedded_with: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.entries} entries, {self.resources} resources: {self.pages_fetched} fetched, "
                f"{self.pages_cached} from cache, {self.pages_thin} thin, {self.pages_failed} failed"
                + "".join(f", {n} {name}" for name, n in (("suspect", self.pages_suspect), ("gone", self.pages_gone),
                                                           ("empty", self.pages_empty),
                                                           ("refused", self.pages_refused),
                                                           ("archived", self.pages_archived)) if n)
                + f"; {self.passages} passages, {self.vectors_embedded} vectors embedded"
                + (f" ({self.embedded_with})" if self.embedded_with and self.vectors_embedded else "") + ", "
                f"{self.vectors_reused} reused; {self.seconds:.1f}s")


def sections_differ(entries: Sequence[Entry]) -> bool:
    """Whether the FAQ's section headings carry information: only when there are at least two.

    A course FAQ's module ("Module 4: Deploying with Flask and Docker") names the topic an entry's own
    words may leave out; one heading over the whole FAQ would only add the same words to every entry."""
    return len({e.category for e in entries if e.category}) > 1


def entry_units(entry: Entry, documents: dict[str, Document], count_tokens: TokenCounter,
                settings: Settings, *, with_category: bool = False) -> list[Unit]:
    """The searchable units of one entry: its question, answer, link titles and page passages."""
    units = [Unit(entry.id, "question", entry.question)]
    section = entry.category if with_category else ""
    if entry.answer or entry.resources or section:
        # The entry as a whole (its section, question, answer, link titles): context a lone question
        # lacks. The section is searched, first so that a long answer cut to fit never drops it, but
        # not shown: the card shows the entry's own words.
        searched = fit_tokens(" ".join(p for p in [section, entry.question, entry.answer,
                                                     *(r.title for r in entry.resources)] if p),
                              count_tokens, settings.chunk.max_tokens)
        if section:
            shown = " ".join(searched.split()[len(section.split()):])
            units.append(Unit(entry.id, "entry", shown, embed_text=searched, lexical_text=searched))
        else:
            units.append(Unit(entry.id, "entry", searched))
    for passage in chunk_text(entry.answer, count_tokens, settings.chunk):
        units.append(Unit(entry.id, "answer", passage))
    for resource in entry.resources:
        units.append(Unit(entry.id, "title", resource.title, url=resource.url))
        doc = documents.get(resource.url)
        if doc is None or not doc.text:
            continue
        context = doc.title or resource.title
        for passage in chunk_text(doc.text, count_tokens, settings.chunk):
            units.append(Unit(entry.id, "passage", passage, url=resource.url,
                              embed_text=f"{context}: {passage}" if context else passage))
    return units


#: Below this many columns a progress bar wraps into noise: the bar is dropped, the counts kept.
NARROW_TERMINAL = 50


def _progress(total: int, desc: str) -> tqdm:
    """A progress bar on a terminal (none when stderr is a file or a pipe); on a narrow or zero-width
    terminal just `fetch 3/11`, which still fits."""
    # ncols only bounds the line ("fetch 3/11" is far shorter): tqdm would cut it to a zero-width terminal.
    narrow = ({"bar_format": "{desc} {n_fmt}/{total_fmt}", "ncols": NARROW_TERMINAL}
              if _columns() < NARROW_TERMINAL else {})
    return tqdm(total=total, desc=desc, unit="page" if desc == "fetch" else "vec",
                disable=not sys.stderr.isatty(), leave=False, **narrow)


def _columns() -> int:
    """The terminal's width: COLUMNS if set, else what the terminal says (0 for a zero-width one)."""
    value = os.environ.get("COLUMNS", "").strip()
    if value.isdigit():
        return int(value)
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except OSError:  # not a terminal: no bar is drawn anyway
        return 80


def _say(message: str) -> None:
    """A step the user waits for (model load, ONNX export): its own line on a terminal, else the log."""
    log.info(message)
    if sys.stderr.isatty():
        tqdm.write(message, file=sys.stderr)


class LazyEmbedder:
    """The build's embedder: a model only when something must be embedded, and torch only when needed.

    Chunking needs only the model's tokenizer and the index its dimension: for a model that is
    Transformer -> mean Pooling -> Normalize (what indexer/onnx_encoder.py can export, the default
    among them) both are read from its files, so a rebuild that finds every vector in the cache
    loads no model at all. New passages are embedded with the model's ONNX export when there is one
    (`Settings.embed_with_onnx`): no torch in the process (seconds to import, hundreds of MB). Without
    an export (the first build, which makes it) or for any other model, with sentence-transformers.
    `start()` loads the encoder in the background (the build calls it early when the cache holds no
    vector of this model: a first build).
    """

    def __init__(self, settings: Settings, cache_dir: Path | None = None) -> None:
        self.name = settings.model
        self.batch_size = settings.embed_batch_size
        self._settings = settings
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._thread: threading.Thread | None = None
        self._encoder: Embedder | OnnxEncoder | None = None
        self._reference: Embedder | None = None
        self._error: BaseException | None = None
        self._counter: Any = None
        self._dimension: int | None = None
        folder = Path(resolve_model(self.name))
        info = pipeline_info(folder)
        if info is not None:
            try:
                from tokenizers import Tokenizer

                transformer = transformer_folder(self.name)
                counter = Tokenizer.from_file(str(transformer / TOKENIZER_FILE))
                counter.no_truncation()
                counter.no_padding()
                self._counter, self._dimension = counter, int(info["dimension"])
            except Exception as exc:  # the model will tell: load it
                log.info("%s: tokenizer not read on its own (%s); loading the model", self.name, exc)
        if self._counter is None:
            self.start()

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    @property
    def kind(self) -> str:
        """Which encoder embeds (or embedded) the new passages: "onnx", "sentence-transformers" or ""."""
        if self._encoder is None:
            return ""
        return "onnx" if isinstance(self._encoder, OnnxEncoder) else "sentence-transformers"

    def start(self) -> None:
        """Load the encoder in a background thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            if self._settings.embed_with_onnx and self._cache_dir is not None and self._counter is not None:
                self._encoder = load_passage_encoder(self.name, self._cache_dir,
                                                     batch_size=self._settings.onnx_batch_size,
                                                     threads=self._settings.embed_threads)
            if self._encoder is None:
                self._encoder = self._reference = Embedder(self.name, batch_size=self.batch_size)
        except BaseException as exc:  # re-raised in the calling thread
            self._error = exc

    @property
    def encoder(self) -> Embedder | OnnxEncoder:
        self.start()
        assert self._thread is not None
        if self._thread.is_alive():
            _say(f"loading the embedding model ({self.name})…")
        self._thread.join()
        if self._error:
            raise self._error
        assert self._encoder is not None
        return self._encoder

    def reference_encode(self, texts: list[str]) -> np.ndarray:
        """sentence-transformers' vectors (torch): what a new ONNX export is checked against."""
        if self._reference is None:
            self.encoder  # noqa: B018 - loads (and waits for) the encoder first; it may be the reference
            if self._reference is None:
                self._reference = Embedder(self.name, batch_size=self.batch_size)
        return self._reference.encode(texts)

    @property
    def dimension(self) -> int:
        return self._dimension if self._dimension is not None else self.encoder.dimension

    @property
    def whole_words(self) -> frozenset[str]:
        return self.encoder.whole_words

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text without special tokens or truncation (as `Embedder.count_tokens`)."""
        if self._counter is None:
            return self.encoder.count_tokens(texts)
        if not texts:
            return []
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.encoder.encode(texts, progress=progress)


def _cache_knows(cache_dir: Path, model: str) -> bool:
    """Whether the vector cache holds any vector of `model` (else the build will embed: load the model early)."""
    cache = VectorCache(Path(cache_dir) / "vectors.sqlite")
    try:
        return cache.db.execute("SELECT 1 FROM vectors WHERE model = ? LIMIT 1", (model,)).fetchone() is not None
    finally:
        cache.close()


def _report(entries: Sequence[Entry], pages: dict[str, Page], documents: dict[str, Document]) -> list[ReportRecord]:
    records: dict[str, ReportRecord] = {}
    for entry in entries:
        for resource in entry.resources:
            rec = records.get(resource.url)
            if rec is None:
                page = pages[resource.url]
                doc = documents.get(resource.url)
                status = "thin" if doc and doc.thin else page.status
                if doc is not None and not doc.text and status in ("fetched", "cached"):
                    status = "empty"  # fetched, but nothing to index (only scripts, an empty document)
                    doc.note = doc.note or "no text found on the page"
                reason = "; ".join(r for r in (page.reason, doc.note if doc else "") if r)
                rec = records[resource.url] = ReportRecord(
                    url=resource.url, status=status, reason=reason,
                    title=(doc.title if doc and doc.title else resource.title),
                    chars=len(doc.text) if doc else 0, extraction=doc.method if doc else "none",
                    final_url=page.final_url if page.body else "", http_status=page.http_status,
                    last_good=page.fetched_at if page.body else "")
            rec.entries.append(entry.id)
    return list(records.values())


class _Stages:
    """Counts one stage's steps for `on_stage` (a no-op without one)."""

    def __init__(self, on_stage: StageCallback | None) -> None:
        self.on_stage = on_stage
        self.stage, self.done, self.total = "", 0, 0

    def start(self, stage: str, total: int) -> None:
        self.stage, self.done, self.total = stage, 0, total
        if self.on_stage:
            self.on_stage(stage, 0, total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.on_stage:
            self.on_stage(self.stage, self.done, self.total)


def build_index(faq_paths: Sequence[Path], *, index_dir: Path, cache_dir: Path, settings: Settings | None = None,
                offline: bool = False, refresh: bool = False, workers: int | None = None,
                on_stage: StageCallback | None = None) -> BuildSummary:
    """Build the index of the FAQ files `faq_paths` into `index_dir` and swap it in (see the module docstring).

    `settings` defaults to Settings() read at the call, not at import, so FAQ_MODEL and the like set later count.
    """
    settings = settings or Settings()
    started = time.monotonic()
    stages = _Stages(on_stage)
    entries = load_entries(faq_paths)
    embedder = LazyEmbedder(settings, Path(cache_dir))
    changed = changed_weights(embedder.name, Path(cache_dir))
    if changed:  # the vectors cached under this model's name come from its earlier weights
        cache = VectorCache(Path(cache_dir) / "vectors.sqlite")
        try:
            dropped = cache.forget(embedder.name)
        finally:
            cache.close()
        log.warning("%s: its %s changed since the last build; %d cached vectors dropped, every passage is "
                    "embedded again", embedder.name, changed, dropped)
    if not _cache_knows(cache_dir, embedder.name):
        embedder.start()  # a first build embeds everything: load the model while pages are fetched

    urls = list(dict.fromkeys(r.url for e in entries for r in e.resources))
    summary = BuildSummary(entries=len(entries), resources=len(urls))
    stages.start("fetching", len(urls))

    def fetched(_page: Page) -> None:
        bar.update(1)
        stages.advance()

    with _progress(len(urls), "fetch") as bar, \
            Fetcher(settings.fetch, PageCache(cache_dir), offline=offline, refresh=refresh,
                    judge=partial(judge, fetch=settings.fetch, settings=settings.extract)) as fetcher:
        pages = fetcher.fetch_all(urls, workers=workers, on_done=fetched)

    usable = [page for page in pages.values() if page.ok]
    stages.start("extracting", len(usable))
    documents: dict[str, Document] = {}
    for page in usable:
        documents[page.url] = extract(page, settings.extract)
        stages.advance()
    report = _report(entries, pages, documents)
    for rec in report:
        setattr(summary, f"pages_{rec.status}", getattr(summary, f"pages_{rec.status}") + 1)

    stages.start("embedding", 0)  # the total is known once the model's tokenizer has loaded
    with_category = sections_differ(entries)
    units = [u for e in entries
             for u in entry_units(e, documents, embedder.count_tokens, settings, with_category=with_category)]
    summary.passages = len(units)
    stages.start("embedding", len(units))

    def embedded(n: int) -> None:
        bar.update(n)
        stages.advance(n)

    vector_cache = VectorCache(Path(cache_dir) / "vectors.sqlite")
    try:
        with _progress(len(units), "embed") as bar:
            vectors, summary.vectors_embedded, summary.vectors_reused = embed_cached(
                embedder, vector_cache, [u.embed_text or u.text for u in units], [u.hash for u in units],
                progress=embedded)
    finally:
        vector_cache.close()
    summary.embedded_with = embedder.kind if summary.vectors_embedded else ""
    stages.start("saving", 1)
    try:  # queries are encoded from this export (indexer/onnx_encoder.py); without it, by sentence-transformers
        if export_problem(export_dir(embedder.name, Path(cache_dir)), embedder.name) is not None:
            _say("exporting the query encoder to ONNX (once per model)…")
        ensure_export(embedder.name, Path(cache_dir), embedder.reference_encode)
    except Exception as exc:
        log.warning("the query encoder was not exported to ONNX (%s); queries will use sentence-transformers", exc)

    summary.seconds = round(time.monotonic() - started, 2)
    # Only a calibrated threshold is stored; without one, searches use the default (indexer/threshold.py).
    threshold, calibration = None, None
    previous = store.previous_manifest(Path(index_dir)) or {}
    kept = calibrated_threshold(previous, settings.search)
    if kept is not None and previous.get("model") == embedder.name:
        # A threshold calibrated on labelled queries outlives rebuilds with the same model and scoring.
        threshold, calibration = kept, previous["calibration"]
    sources = [{"path": str(p), "sha256": file_sha256(p)} for fp in faq_paths for p in faq_files(Path(fp))]
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "build_id": uuid.uuid4().hex,
        "model": embedder.name,
        "dimension": embedder.dimension,
        "built_at": utc_now(),
        "sources": sources,
        "counts": {"entries": summary.entries, "resources": summary.resources,
                   "pages_fetched": summary.pages_fetched, "pages_cached": summary.pages_cached,
                   "pages_thin": summary.pages_thin, "pages_failed": summary.pages_failed,
                   "pages_suspect": summary.pages_suspect, "pages_gone": summary.pages_gone,
                   "pages_empty": summary.pages_empty, "pages_refused": summary.pages_refused,
                   "pages_archived": summary.pages_archived,
                   "passages": summary.passages},
        "answer_threshold": threshold,
        "calibration": calibration,
        "chunk": asdict(settings.chunk),
        "summary": asdict(summary),
    }
    build_dir = store.new_build_dir(Path(index_dir))
    try:
        store.write_build(build_dir, entries=entries, units=units, vectors=vectors, documents=list(documents.values()),
                          manifest=manifest, report=[r.to_dict() for r in report], index_settings=settings.index)
    except BaseException:  # disk full, a kill: no half-written build left behind; the index is untouched
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    store.publish(Path(index_dir), build_dir)
    stages.advance()
    log.info("built %s: %s", index_dir, summary.line())
    return summary
