"""What the web app loads once per process, or once per build, and where it finds its files.

Kept out of `app.py` because Streamlit runs the main script again on every rerun (each query, each
click): the cached functions defined here are created once, when this module is first imported,
instead of on every rerun. Nothing heavy is imported at module level: the searcher (numpy, FAISS,
BM25, the encoder) loads in `SearcherLoader`'s thread while the page draws.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from indexer.config import DEFAULT_CACHE_DIR, DEFAULT_INDEX_DIR, env_path
from indexer.querylog import QueryLog, default_db_path
from indexer.store import read_manifest, read_report
from webapp.rebuild import Rebuilder

if TYPE_CHECKING:  # loaded in the loader thread (see SearcherLoader), not before the page draws
    from indexer.insights import Insights
    from indexer.search import Searcher, SearchResponse

#: The repository: the app's default data folders are under it.
ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


# -- configuration (environment) -----------------------------------------------------------------------------
def index_dir() -> Path:
    return env_path("FAQ_INDEX_DIR", ROOT / DEFAULT_INDEX_DIR)


def cache_dir() -> Path:
    return env_path("FAQ_CACHE_DIR", ROOT / DEFAULT_CACHE_DIR)


def db_path() -> Path:
    return default_db_path(ROOT)


def examples_path() -> Path:
    return env_path("FAQ_EXAMPLES", ROOT / "data" / "examples.txt")


def contact() -> str:
    return " ".join(os.environ.get("FAQ_CONTACT", "").split())


# -- loaded once per process ---------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def get_encoder(model: str, cache: str):
    """The query encoder: the build's ONNX export in the cache folder, else sentence-transformers (slower start)."""
    from indexer.onnx_encoder import load_query_encoder

    encoder = load_query_encoder(model, Path(cache))
    encoder.encode(["warm up"])  # onnxruntime's first run allocates its buffers: not in a learner's first query
    return encoder


def encoder_for(model: str):
    return get_encoder(model, str(cache_dir()))


class SearcherLoader:
    """Loads the current build's searcher in a background thread, once per process.

    Started as soon as the search box is drawn, so on a cold start the index and model load while the
    browser renders the page; the encoder (the model file) opens in a second thread meanwhile (with the
    default model, ready in 0.85 s instead of 1.6 s in a bare process; bench/RESULTS-app.md has the
    app's cold start before and after). A rebuild has another
    (path, build_id): the next run starts loading it, and the old build is let go. A failed load is
    retried on the next run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faq-index-loader")
        self._encoders = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faq-encoder-loader")
        self._key: tuple[str, str] | None = None
        self._future: Future | None = None

    def start(self, key: tuple[str, str]) -> Future:
        with self._lock:
            stale = self._future is None or self._key != key
            failed = self._future is not None and self._future.done() and self._future.exception() is not None
            if stale or failed:
                self._key = key
                self._future = self._pool.submit(self._open, Path(key[0]))
            return self._future

    def _open(self, path: Path) -> Searcher:
        model = read_manifest(path).get("model")
        encoder = self._encoders.submit(encoder_for, model)  # onnxruntime opens the model file meanwhile

        def encoder_of(name: str):
            return encoder.result() if name == model else encoder_for(name)

        # Imported here, in the loader thread: numpy, FAISS and BM25 load while the page draws.
        from indexer.search import Searcher

        return Searcher.open(path, encoder_for=encoder_of)


@st.cache_resource(show_spinner=False)
def searcher_loader() -> SearcherLoader:
    return SearcherLoader()


def get_searcher(path: str, build_id: str) -> Searcher:
    """The searcher for one build (waits for the background load if it is still running)."""
    return searcher_loader().start((path, build_id)).result()


@st.cache_resource(show_spinner=False)
def get_store(path: str) -> QueryLog | None:
    try:
        return QueryLog(path)
    except (OSError, sqlite3.Error) as exc:
        log.warning("feedback database %s unavailable (%s); queries and votes are not logged", path, exc)
        return None


@st.cache_resource(show_spinner=False)
def rebuilder() -> Rebuilder:
    """The process's one rebuild runner: one build at a time, whichever session started it."""
    return Rebuilder()


@st.cache_data(show_spinner=False, max_entries=2000)
def run_search(path: str, build_id: str, query: str, top_k: int, section: str | None = None) -> SearchResponse:
    """The searcher's response, cached per build (st.cache_data pickles it: plain dataclasses)."""
    return get_searcher(path, build_id).search(query, top_k=top_k, section=section)


@st.cache_data(show_spinner=False, max_entries=4)
def load_report(path: str, build_id: str) -> list[dict]:
    return read_report(Path(path))


@st.cache_data(show_spinner=False, ttl=30, max_entries=8)
def get_insights(path: str, build_id: str, db: str, since: str) -> Insights:
    """The query log summed up for `since` (indexer.insights), at most 30 s old."""
    from indexer.insights import gather, parse_since

    searcher = get_searcher(path, build_id)
    return gather(QueryLog(db), parse_since(since), questions={e.id: e.question for e in
                                                               searcher.stored.entries.values()},
                  threshold=searcher.threshold, embed=searcher.embedder.encode)
