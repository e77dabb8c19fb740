"""Course FAQ search: the web app (`streamlit run app.py`).

Thin by design: searching is `indexer.search` (this file opens the searcher and
renders the `SearchResponse` it returns), everything shown is built by the
`webapp` package (escaped, safe HTML: `webapp.html`, `webapp.cards`,
`webapp.browse`, `webapp.index_state`; the look is `webapp/style.css`), the query
log and votes are `webapp.feedback`. This file only wires Streamlit widgets to them.

Configuration (environment): FAQ_INDEX_DIR (default data/index), FAQ_APP_DB
(default data/app.sqlite), FAQ_CACHE_DIR (default data/cache: rebuilds, and the ONNX query encoder).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from indexer.config import DEFAULT_CACHE_DIR, DEFAULT_FAQ, DEFAULT_INDEX_DIR, env_path
from indexer.store import IndexError_, read_report
from indexer.text import clip_query
from webapp import browse, cards, index_state
from webapp.feedback import CastVote, FeedbackStore, default_db_path
from webapp.html import md_escape

if TYPE_CHECKING:  # loaded in the loader thread (see SearcherLoader), not before the page draws
    from indexer.search import Searcher, SearchResponse

ROOT = Path(__file__).resolve().parent
STYLE = ROOT / "webapp" / "style.css"
TOP_K = 5
#: The two views; the label is also the `?view=` value of a deep link (`?view=Browse`).
VIEWS = ["Search", "Browse"]
log = logging.getLogger("faq_app")


# Puts the cursor in the search box when the page opens (constant code: no user or page text in it).
FOCUS_JS = """
<script>
(function focusSearch(tries) {
  const box = document.querySelector('.st-key-q input');
  if (box) {
    const active = document.activeElement;
    if (!active || active === document.body) box.focus();
  } else if (tries > 0) {
    setTimeout(function () { focusSearch(tries - 1); }, 100);
  }
})(30);
</script>
"""


# -- configuration -----------------------------------------------------------------------------
def index_dir() -> Path:
    return env_path("FAQ_INDEX_DIR", ROOT / DEFAULT_INDEX_DIR)


def cache_dir() -> Path:
    return env_path("FAQ_CACHE_DIR", ROOT / DEFAULT_CACHE_DIR)


def db_path() -> Path:
    return default_db_path(ROOT)


# -- loaded once per process ---------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def get_encoder(model: str, cache: str):
    """The query encoder: the build's ONNX export in the cache folder, else sentence-transformers (slower start)."""
    from indexer.onnx_encoder import load_query_encoder

    return load_query_encoder(model, Path(cache))


def encoder_for(model: str):
    return get_encoder(model, str(cache_dir()))


class SearcherLoader:
    """Loads the current build's searcher in a background thread, once per process.

    Started at the top of a run, before anything is drawn, so on a cold start the index and model
    load while the browser renders the page. A rebuild has another (path, build_id): the next run
    starts loading it, and the old build is let go. A failed load is retried on the next run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faq-index-loader")
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

    @staticmethod
    def _open(path: Path) -> Searcher:
        # Imported here, in the loader thread: numpy, FAISS and BM25 load while the page draws.
        from indexer.search import Searcher

        return Searcher.open(path, encoder_for=encoder_for)


@st.cache_resource(show_spinner=False)
def searcher_loader() -> SearcherLoader:
    return SearcherLoader()


def get_searcher(path: str, build_id: str) -> Searcher:
    """The searcher for one build (waits for the background load if it is still running)."""
    return searcher_loader().start((path, build_id)).result()


@st.cache_resource(show_spinner=False)
def get_store(path: str) -> FeedbackStore | None:
    try:
        return FeedbackStore(path)
    except (OSError, sqlite3.Error) as exc:
        log.warning("feedback database %s unavailable (%s); queries and votes are not logged", path, exc)
        return None


@st.cache_resource(show_spinner=False)
def build_lock() -> threading.Lock:
    return threading.Lock()


@st.cache_data(show_spinner=False, max_entries=2000)
def run_search(path: str, build_id: str, query: str, top_k: int) -> SearchResponse:
    """The searcher's response, cached per build (st.cache_data pickles it: plain dataclasses)."""
    return get_searcher(path, build_id).search(query, top_k=top_k)


@st.cache_data(show_spinner=False, max_entries=4)
def load_report(path: str, build_id: str) -> list[dict]:
    return read_report(Path(path))


# -- actions ----------------------------------------------------------------------------------------
def faq_sources(manifest: dict | None) -> list[Path]:
    if manifest and manifest.get("sources"):
        return [index_state.resolve_source(s["path"], [ROOT]) for s in manifest["sources"]]
    return [ROOT / DEFAULT_FAQ]


def rebuild(manifest: dict | None, offline: bool) -> None:
    """Run the build in this process, then rerun: the new build_id loads the new index."""
    lock = build_lock()
    if not lock.acquire(blocking=False):
        st.warning("A rebuild is already running; the app switches to the new index when it is done.")
        return
    try:
        from indexer.build import build_index

        sources = faq_sources(manifest)
        with st.spinner("Rebuilding the index: reading the FAQ, fetching its pages, embedding. "
                        "This can take a minute…", show_time=True):
            summary = build_index(sources, index_dir=index_dir(), cache_dir=cache_dir(), offline=offline)
    except Exception as exc:  # a bad FAQ, no model, a full disk: say so, keep the old index
        log.exception("rebuild failed")
        st.session_state["_rebuild_msg"] = ("error", f"The rebuild failed: {exc}. The previous index is unchanged.")
    else:
        st.session_state["_rebuild_msg"] = ("success", f"Index rebuilt: {summary.line()}")
    finally:
        lock.release()
    st.rerun()


def query_key(query: str) -> str:
    """A short stable id of a query: feedback widget keys, and `data-q` on its result cards."""
    return hashlib.sha1(query.encode("utf-8")).hexdigest()[:12]


def set_query(text: str) -> None:
    st.session_state["q"] = text


def close_entry() -> None:
    if "entry" in st.query_params:
        del st.query_params["entry"]


def on_vote(key: str, query: str, entry_id: str, rank: int) -> None:
    """A thumb clicked (one vote, replacing this session's earlier one on the result) or un-clicked (withdrawn)."""
    value = st.session_state.get(key)
    cast: dict[str, CastVote] = st.session_state.setdefault("_votes", {})  # widget key -> this session's vote
    earlier = cast.get(key)
    store = get_store(str(db_path()))
    if store is None or (value is None and earlier is None):
        return
    try:
        if value is None:
            store.withdraw_vote(earlier)
            del cast[key]
        else:
            cast[key] = store.record_vote(query, entry_id, 1 if value == 1 else -1, rank=rank, replaces=earlier)
    except sqlite3.Error as exc:
        log.warning("vote not saved: %s", exc)
        st.toast("Sorry, your feedback could not be saved.")
        return
    if value is None:
        st.toast("Your vote was taken back.", icon=":material/undo:")
    else:
        st.toast("Thanks! Your feedback helps improve the FAQ.", icon=":material/thumb_up:")


def log_query(build_id: str, response: SearchResponse) -> None:
    """One row per query asked in this session (reruns for feedback clicks are not new queries)."""
    key = (build_id, response.query)
    if st.session_state.get("_logged") == key:
        return
    st.session_state["_logged"] = key
    store = get_store(str(db_path()))
    if store is not None:
        try:
            store.log_response(response)
        except sqlite3.Error as exc:
            log.warning("query not logged: %s", exc)


# -- views ------------------------------------------------------------------------------------------
def sidebar(manifest: dict | None, token: tuple[str, str] | None) -> None:
    with st.sidebar:
        st.subheader("Index status")
        msg = st.session_state.pop("_rebuild_msg", None)
        if msg:
            (st.success if msg[0] == "success" else st.error)(md_escape(msg[1]))
        if manifest is None:
            st.warning("No index yet: build it to start searching.")
        else:
            counts = manifest.get("counts", {})
            c1, c2 = st.columns(2)
            c1.metric("Entries", counts.get("entries", 0))
            c2.metric("Links", counts.get("resources", 0))
            c1.metric("Pages fetched", counts.get("pages_fetched", 0))
            c2.metric("From cache", counts.get("pages_cached", 0))
            c1.metric("Failed", counts.get("pages_failed", 0))
            if counts.get("pages_thin"):
                c2.metric("Paywalled", counts.get("pages_thin", 0))
            st.caption(f"Model: {md_escape(index_state.short_model(manifest.get('model')))}  \n"
                       f"Built: {md_escape(index_state.built_at_text(manifest.get('built_at')))}")
            for src in index_state.source_changes(manifest, [ROOT]):
                if src["missing"]:
                    st.warning(f"{md_escape(src['path'])} is missing: the index still holds it.")
                elif src["changed"]:
                    st.warning(f"{md_escape(src['path'])} changed since this index was built. "
                               "Rebuild to include the changes.")
            problems = index_state.problem_pages(load_report(*token)) if token else []
            if problems:
                with st.expander(f"Pages not indexed ({len(problems)})"):
                    st.html(index_state.problem_pages_html(problems))
        with st.expander("Rebuild the index", expanded=manifest is None):
            st.markdown("In a terminal, in the project folder:")
            st.code(index_state.BUILD_COMMAND, language="bash", wrap_lines=True)
            st.caption("Or rebuild here; the app switches to the new index when it is done.")
            offline = st.checkbox("Cached pages only (offline)", key="offline_build")
            if st.button("Rebuild now", key="rebuild", icon=":material/refresh:"):
                rebuild(manifest, offline)


def no_index_panel(problem: str, manifest: dict | None) -> None:
    st.info("**The search index is not built yet** (or cannot be read). Build it once with this command "
            "in the project folder, then reload this page:", icon=":material/build:")
    st.code(index_state.BUILD_COMMAND, language="bash")
    st.caption(md_escape(problem))
    if st.button("Build the index now", key="build_main", type="primary"):
        rebuild(manifest, offline=False)


def entry_view(searcher: Searcher, entry_id: str) -> None:
    entry = searcher.stored.entries.get(entry_id)
    st.button("← Back", key="close_entry", on_click=close_entry, type="tertiary")
    if entry is None:
        st.warning("That FAQ entry does not exist (any more). Try searching for it instead.")
        return
    with st.container(border=True, key="entry_card"):
        st.html(cards.entry_card_html(entry))


def search_view(token: tuple[str, str], manifest: dict) -> None:
    # The box comes first, so it is on screen (and focused) while the index loads on a cold start.
    query = st.text_input("Ask a question", key="q", bind="query-params", label_visibility="collapsed",
                          placeholder="Ask a question, e.g. what is log loss?", icon=":material/search:")
    st.html(FOCUS_JS, unsafe_allow_javascript=True)
    sidebar(manifest, token)  # after the box, so the box is on screen first
    query = clip_query(query)
    searcher = load_searcher(token, manifest)
    if searcher is None:
        return
    if not query:
        examples = browse.example_questions(searcher.stored.entries.values(), n=2)
        if examples:
            st.caption("Or try an example:")
            row = st.container(horizontal=True, gap="small", key="examples")
            for i, text in enumerate(examples):
                row.button(text, key=f"example_{i}", on_click=set_query, args=(text,), type="secondary")
        return
    try:
        response = run_search(*token, query, TOP_K)
    except Exception:
        log.exception("search failed for a query")
        st.error("The search failed. Please try again; if it keeps failing, rebuild the index.")
        return
    log_query(token[1], response)
    results = response.results
    if response.corrections:
        fixes = ", ".join(f"{md_escape(fixed)} (for {md_escape(typed)})"
                          for typed, fixed in response.corrections.items())
        st.caption(f"Also searched for: {fixes}")
    if not results:
        st.info("Nothing to search for in that question. Try a few words about your problem.")
        return
    if not response.answered:
        st.warning("**The FAQ has no good answer to this question.** These are the nearest entries; "
                   "they may still help.", icon=":material/help:")
    threshold = response.threshold
    qkey = query_key(query)
    top = results[0].score
    for rank, result in enumerate(results, start=1):
        with st.container(border=True, key=f"result_{rank}"):
            st.html(cards.result_card_html(result, rank, threshold, searcher.stored.documents, top_score=top,
                                           query_key=qkey))
            key = f"vote_{qkey}_{rank}"
            st.feedback("thumbs", key=key, on_change=on_vote, args=(key, query, result.id, rank))


def browse_view(searcher: Searcher) -> None:
    text = st.text_input("Filter the FAQ", key="filter", bind="query-params", label_visibility="collapsed",
                         placeholder="Filter by a word, e.g. loss, video, arxiv", icon=":material/filter_list:")
    entries = list(searcher.stored.entries.values())
    shown = browse.filter_entries(entries, text)
    if not shown:
        st.info("No FAQ entry contains all of those words. Try fewer words, or use Search.")
        return
    st.caption(f"{len(shown)} of {len(entries)} entries" if text else f"{len(entries)} entries")
    st.html(cards.browse_html(browse.group_by_category(shown), expanded=bool(text and text.strip())))


def main() -> None:
    manifest: dict | None = None
    token: tuple[str, str] | None = None
    problem: str | None = None
    try:
        token, manifest = index_state.current_index(index_dir())
    except IndexError_ as exc:
        problem = str(exc)
    st.html('<div class="faq-title" role="heading" aria-level="1">Course FAQ search</div>'
            '<div class="faq-sub">Ask in your own words. Answers come from the course FAQ and the pages it '
            "links to.</div>")
    # The main column first: the search box is what a learner waits for; the sidebar follows.
    if manifest is None or token is None:
        sidebar(manifest, token)
        no_index_panel(problem or "no index", manifest)
        return
    if not manifest.get("counts", {}).get("entries"):
        sidebar(manifest, token)
        st.info("The index is empty: the FAQ had no entries when it was built. Add entries to the FAQ, "
                "then rebuild:", icon=":material/build:")
        st.code(index_state.BUILD_COMMAND, language="bash")
        return
    entry_id = st.query_params.get("entry")
    if entry_id:
        sidebar(manifest, token)
        searcher = load_searcher(token, manifest)
        if searcher is not None:
            entry_view(searcher, entry_id)
        return
    view = st.segmented_control("View", VIEWS, key="view", bind="query-params", default=VIEWS[0], required=True,
                                label_visibility="collapsed")
    if view == VIEWS[1]:
        sidebar(manifest, token)
        searcher = load_searcher(token, manifest)
        if searcher is not None:
            browse_view(searcher)
    else:
        search_view(token, manifest)


def load_searcher(token: tuple[str, str], manifest: dict) -> Searcher | None:
    """The searcher for the current build (loaded once per process), or None after saying why not."""
    try:
        with st.spinner("Loading the search index…"):
            return get_searcher(*token)
    except IndexError_ as exc:
        no_index_panel(str(exc), manifest)
    except Exception:
        log.exception("cannot load the index")
        no_index_panel("The index could not be loaded (see the server log); rebuilding it usually fixes this.",
                       manifest)
    return None


st.set_page_config(page_title="Course FAQ search", page_icon="🔎", layout="centered")
st.set_option("client.showErrorDetails", "none")
st.set_option("client.toolbarMode", "minimal")
st.html(f"<style>\n{STYLE.read_text('utf-8')}</style>")
try:
    main()
except Exception:  # never a stack trace in front of a learner; the log has it
    log.exception("unexpected error in the app")
    st.error("Something went wrong on our side. Reloading the page usually helps; the details are in the "
             "server log.")
