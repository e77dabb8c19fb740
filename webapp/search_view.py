"""The Search view in Streamlit: the box, example questions, the answer card and related entries or the
"no good answer" panel, votes and suggestions, and the query log. The cards' HTML is `webapp.cards`'."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING

import streamlit as st

from indexer.querylog import CastVote
from indexer.text import clip_query
from webapp import browse, cards
from webapp.html import esc, link_html, md_escape, safe_url
from webapp.maintainer_view import sidebar
from webapp.open_index import load_searcher
from webapp.resources import contact, db_path, examples_path, get_store, run_search

if TYPE_CHECKING:
    from indexer.search import Searcher, SearchResponse

#: The view's label, also the `?view=` value of a deep link.
VIEW = "Search"
#: Results asked for: the answer, the related entries shown, and the rest behind "show more".
TOP_K = 8
#: Related (or, without an answer, nearest) entries shown before "show more".
RELATED_SHOWN = 3
EXAMPLES_SHOWN = 3
#: The section picker's first choice, offered when the FAQ has several sections (courses, modules).
ALL_SECTIONS = "All sections"
log = logging.getLogger(__name__)


def show(token: tuple[str, str], manifest: dict) -> None:
    """The box, then example questions (empty box) or one search's response."""
    # The box comes first, so it is on screen (and focused) while the index loads on a cold start.
    query = st.text_input("Ask a question", key="q", bind="query-params", label_visibility="collapsed",
                          placeholder="Ask a question, e.g. what is log loss?", icon=":material/search:")
    sidebar(manifest)  # after the box, so the box is on screen first
    query = clip_query(query)
    searcher = load_searcher(token, manifest)
    if searcher is None:
        return
    section = section_choice(searcher)
    if not query:
        row = None
        for i, text in enumerate(examples(token, searcher)):  # each drawn as it comes (see examples)
            if row is None:
                st.caption("Or try an example:")
                row = st.container(horizontal=True, gap="small", key="examples")
            # A label is Markdown: escaped, so FAQ text stays text.
            row.button(md_escape(text), key=f"example_{i}", on_click=set_query, args=(text,), type="secondary")
        return
    try:
        response = run_search(*token, query, TOP_K, section)
    except Exception:
        log.exception("search failed for a query")
        st.error("The search failed. Please try again in a moment; if it keeps failing, tell the course team.")
        return
    show_response(response, query, searcher)
    # After the result is drawn: the write (a synced SQLite commit, ~20 ms) is not part of the learner's wait.
    log_query(token[1], response, section)


def section_choice(searcher: Searcher) -> str | None:
    """The section to search in, offered when the FAQ has several (courses, modules); None: all."""
    sections = searcher.sections()
    if len(sections) < 2:
        return None
    choice = st.selectbox("Search in", [ALL_SECTIONS, *sections], key="section", label_visibility="collapsed")
    return None if choice == ALL_SECTIONS else choice


def examples(token: tuple[str, str], searcher: Searcher) -> Iterator[str]:
    """Example questions the current index answers: the configured ones, else a few FAQ questions.

    One at a time, each configured one searched only when the one before has been drawn: Streamlit
    stops a run for a newer one (a query typed meanwhile) only when the run draws something, so on a
    cold start that query waits for one example's search, not for all of them.
    """
    configured = browse.read_examples(examples_path())
    if not configured:
        yield from browse.example_questions(searcher.stored.entries.values(), n=2)
        return
    yield from islice((q for q in configured if run_search(*token, q, 1).answered), EXAMPLES_SHOWN)


def set_query(text: str) -> None:
    st.session_state["q"] = text


def show_response(response: SearchResponse, query: str, searcher: Searcher) -> None:
    """The answer card and the related entries, or the "no good answer" panel, for one search."""
    results = response.results
    if response.corrections:
        fixes = ", ".join(f"{md_escape(fixed)} (for {md_escape(typed)})"
                          for typed, fixed in response.corrections.items())
        st.caption(f"Also searched for: {fixes}")
    if not results:
        st.info("**Nothing to search for** in that question: it has no words the search can use. "
                "Try a few words about your problem, e.g. *why does a neuron need a bias?*",
                icon=":material/edit:")
        return
    threshold = response.threshold
    qkey = query_key(query)
    if not response.answered:
        no_answer_panel(query)
        results_list(f"Nearest entries ({len(results)})", results, threshold, qkey, query)
        return
    best, related = results[0], results[1:]
    st.caption(f"1 answer{f' and {len(related)} related entries' if related else ''} in the FAQ")
    with st.container(border=True, key="result_1"):
        st.html(cards.answer_card_html(best, threshold, searcher.stored.documents, query_key=qkey, query=query,
                                       dead=searcher.link_marks[0]))
        key = f"vote_{qkey}_1"
        st.feedback("thumbs", key=key, on_change=on_vote, args=(key, query, best.id, 1))
    results_list("Related questions", related, threshold, qkey, query)


def results_list(title: str, results: list, threshold: float, qkey: str, query: str) -> None:
    """A heading, the first RELATED_SHOWN results one line each, the rest behind "show more"."""
    if not results:
        return
    st.html(f'<div class="faq-section">{esc(title)}</div>')
    shown, more = results[:RELATED_SHOWN], results[RELATED_SHOWN:]
    with st.container(key="related"):
        st.html(cards.related_html(shown, threshold, query_key=qkey, query=query))
    if more:
        with st.expander(f"Show {len(more)} more"):
            st.html(cards.related_html(more, threshold, query_key=qkey, query=query))


def no_answer_panel(query: str) -> None:
    """Say plainly that the FAQ has no good answer, and what the learner can do next."""
    where = contact()
    if not where:
        ask = ""
    elif safe_url(where):
        ask = f" You can also ask the course team: {link_html(where, where)}."
    elif "@" in where and " " not in where:
        ask = f" You can also ask the course team at <b>{esc(where)}</b>."
    else:
        ask = f" {esc(where)}"
    st.html('<div class="faq-notice" role="status"><b>The FAQ has no good answer to this question.</b>'
            "The entries below are the nearest; they may still help. Try other words, or suggest this "
            f"question for the FAQ.{ask}</div>")
    done = st.session_state.get("_suggested") == query
    st.button("Question suggested ✓" if done else "Suggest this question for the FAQ", key="suggest",
              on_click=on_suggest, args=(query,), disabled=done, icon=":material/add_comment:")


def on_suggest(query: str) -> None:
    st.session_state["_suggested"] = query
    store = get_store(str(db_path()))
    try:
        if store is None:
            raise sqlite3.Error("no feedback database")
        store.record_suggestion(query)
    except sqlite3.Error as exc:
        log.warning("suggestion not saved: %s", exc)
        st.toast("Sorry, your suggestion could not be saved.")
        return
    st.toast("Thanks! The FAQ's maintainer will see your question.", icon=":material/mail:")


def query_key(query: str) -> str:
    """A short stable id of a query: feedback widget keys, and `data-q` on its result cards."""
    return hashlib.sha1(query.encode("utf-8")).hexdigest()[:12]


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


def log_query(build_id: str, response: SearchResponse, section: str | None) -> None:
    """One row per query asked in this session (reruns for feedback clicks are not new queries; the same
    query in another section is)."""
    key = (build_id, response.query, section)
    if st.session_state.get("_logged") == key:
        return
    st.session_state["_logged"] = key
    store = get_store(str(db_path()))
    if store is not None:
        try:
            store.log_response(response, section)
        except sqlite3.Error as exc:
            log.warning("query not logged: %s", exc)
