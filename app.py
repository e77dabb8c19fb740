"""Course FAQ search: the web app (`streamlit run app.py`).

Thin by design: searching is `indexer.search` (this file opens the searcher and
renders the `SearchResponse` it returns), everything shown is built by the
`webapp` package (escaped, safe HTML: `webapp.html`, `webapp.cards`,
`webapp.browse`, `webapp.index_state`, `webapp.maintainer`; the look is
`webapp/style.css`; what is loaded once per process, and the configuration, is
`webapp.resources`), the query log and votes are `indexer.querylog`, a rebuild
started here runs in `webapp.rebuild`'s thread. This file only wires Streamlit
widgets to them.

Two audiences. Learners see the search and nothing of the index's internals.
With FAQ_ADMIN=1 (or true/yes/on), e.g. `FAQ_ADMIN=1 make app`, a third view,
"Maintainer" (`?view=Maintainer`), shows the index's status, the pages it could
not use and why, whether the answer threshold is calibrated, and the rebuild.

Configuration (environment): FAQ_INDEX_DIR (default data/index), FAQ_APP_DB
(default data/app.sqlite), FAQ_CACHE_DIR (default data/cache: rebuilds, and the ONNX query encoder),
FAQ_EXAMPLES (default data/examples.txt: example questions offered under the empty search box, one per
line; only those the current index answers are shown), FAQ_CONTACT (where a learner can ask when the
FAQ has no answer: a URL, an e-mail address or a sentence; shown on the "no good answer" panel),
FAQ_ADMIN (the maintainer view; off by default).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from indexer.config import DEFAULT_FAQ
from indexer.store import IndexError_
from indexer.text import clip_query
from indexer.querylog import CastVote
from webapp import browse, cards, index_state, maintainer
from webapp.html import esc, link_html, md_escape, safe_url
from webapp.rebuild import same_index
from webapp.resources import (ROOT, cache_dir, contact, db_path, examples_path, get_insights,
                              get_searcher, get_store, index_dir, load_report, rebuilder, run_search,
                              searcher_loader)

if TYPE_CHECKING:
    from indexer.search import Searcher, SearchResponse

STYLE = ROOT / "webapp" / "style.css"
#: Results asked for: the answer, the related entries shown, and the rest behind "show more".
TOP_K = 8
#: Related (or, without an answer, nearest) entries shown before "show more".
RELATED_SHOWN = 3
EXAMPLES_SHOWN = 3
#: The section picker's first choice, offered when the FAQ has several sections (courses, modules).
ALL_SECTIONS = "All sections"
#: The two views; the label is also the `?view=` value of a deep link (`?view=Browse`).
VIEWS = ["Search", "Browse"]
log = logging.getLogger("faq_app")


# Constant code, no user or page text in it. It puts the cursor in the search box when the page opens,
# and makes each search (and each Browse filter or view) a browser history step: Streamlit writes a bound
# widget's value into the URL with history.replaceState, so Back would leave the app; here a change of the
# query string is pushed instead, and Back/Forward reload the page at that URL (the widgets read it).
PAGE_JS = """
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
(function historySteps() {
  if (window.__faqHistory) return;
  window.__faqHistory = true;
  const replace = history.replaceState.bind(history);
  history.replaceState = function (state, title, url) {
    try {
      const next = new URL(url, location.href);
      if (next.pathname === location.pathname && next.search !== location.search) {
        return history.pushState(state, title, url);
      }
    } catch (e) {}
    return replace(state, title, url);
  };
  window.addEventListener('popstate', function () { location.reload(); });
})();
</script>
"""


def admin_view() -> bool:
    """FAQ_ADMIN=1 (or true/yes/on): the maintainer view is on. Read by `webapp.maintainer`, only there."""
    return maintainer.admin_enabled()


def views() -> list[str]:
    """The view switch's options: the maintainer's only when the flag is on (so `?view=Maintainer` is inert)."""
    return [*VIEWS, maintainer.VIEW] if admin_view() else VIEWS


# -- actions ----------------------------------------------------------------------------------------
def faq_sources(manifest: dict | None) -> list[Path]:
    if manifest and manifest.get("sources"):
        return [index_state.resolve_source(s["path"], [ROOT]) for s in manifest["sources"]]
    return [ROOT / DEFAULT_FAQ]


def start_rebuild(manifest: dict | None, offline: bool) -> None:
    """Start a build in the background (see `webapp.rebuild`); `show_rebuild` then draws it."""
    sources, target, cache = faq_sources(manifest), index_dir(), cache_dir()

    def build(on_stage):
        from indexer.build import build_index  # in the build's thread: the model stack loads there

        return build_index(sources, index_dir=target, cache_dir=cache, offline=offline, on_stage=on_stage)

    if not rebuilder().start(target, build, offline=offline):
        st.warning("A rebuild is already running; the app switches to the new index when it is done.")


def show_rebuild(manifest: dict | None) -> None:
    """The rebuild of this index: while it runs, its stages live, then a rerun onto the new index;
    once it has ended, how it ended (expanded for the session that watched it)."""
    job = rebuilder()
    progress = job.progress()
    if progress is None or not same_index(progress.index_dir, index_dir()):
        return
    if progress.running:
        box = st.status(md_escape(maintainer.rebuild_label(progress)), expanded=True)
        body = box.empty()
        drawn = None
        while progress.running:  # a click elsewhere stops this run, not the build
            if progress is not drawn:
                # `expanded` again: an update without it re-sends the box collapsed.
                box.update(label=md_escape(maintainer.rebuild_label(progress)), expanded=True)
                body.html(maintainer.rebuild_html(progress))
                drawn = progress
            progress = job.wait(progress, timeout=1.0)
        st.session_state["_rebuild_seen"] = progress.job
        st.rerun()  # the new build_id: the next run opens the new index
    box = st.status(md_escape(maintainer.rebuild_label(progress)), state="complete" if progress.ok else "error",
                    expanded=st.session_state.get("_rebuild_seen") == progress.job)
    after = maintainer.after_rebuild_html(maintainer.calibration_state(manifest)) if progress.ok and manifest else ""
    box.html(maintainer.rebuild_html(progress) + after)


def rebuild_panel(manifest: dict | None) -> None:
    """The rebuild controls (maintainer only): a button, the command, and the rebuild's status."""
    st.caption("After editing the FAQ, or to fetch its pages again. The build runs in the background and the app "
               f"switches to the new index when it is done. From a terminal: `{index_state.BUILD_COMMAND}`")
    row = st.container(horizontal=True, vertical_alignment="center", gap="medium")
    clicked = row.button("Rebuild now", key="rebuild", icon=":material/refresh:", disabled=rebuilder().running)
    offline = row.checkbox("Cached pages only (offline)", key="offline_build")
    if clicked:
        start_rebuild(manifest, offline)
    show_rebuild(manifest)


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


# -- views ------------------------------------------------------------------------------------------
def sidebar(manifest: dict | None, token: tuple[str, str] | None) -> None:
    """Nothing for learners (no index internals). For a maintainer, a note when the FAQ changed since the build;
    the rest is on the Maintainer view."""
    if not admin_view() or manifest is None:
        return
    notes = maintainer.source_notes(index_state.source_changes(manifest, [ROOT]))
    if notes:
        with st.sidebar:
            for note in notes:
                st.warning(md_escape(note), icon=":material/edit_document:")
            st.caption("Rebuild from the Maintainer view.")


def no_index_panel(problem: str, manifest: dict | None) -> None:
    """No usable index: learners are told search is not ready (and the command, for whoever runs the app);
    a maintainer also gets the reason and a build button."""
    if not admin_view():
        log.warning("no usable index: %s", problem)
        st.info("**Search is not ready yet**: the FAQ's search index is not built yet (or cannot be read). "
                "Whoever runs this app can build it with this command in the project folder; then reload "
                "this page.", icon=":material/build:")
        st.code(index_state.BUILD_COMMAND, language="bash")
        return
    st.info("**The search index is not built yet** (or cannot be read). Build it here, or once with this command "
            "in the project folder, then reload this page:", icon=":material/build:")
    st.code(index_state.BUILD_COMMAND, language="bash")
    st.caption(md_escape(problem))
    if st.button("Build the index now", key="build_main", type="primary", disabled=rebuilder().running):
        start_rebuild(manifest, offline=False)
    show_rebuild(manifest)


def maintainer_view(manifest: dict, token: tuple[str, str]) -> None:
    """Index status, pages not indexed, link health, the answer threshold, the rebuild, what learners ask:
    only with FAQ_ADMIN=1."""
    from indexer.links import link_health

    st.caption("Maintainer view (FAQ_ADMIN is set). Learners do not see this page.")
    st.subheader("Index", anchor=False)
    st.html(maintainer.status_html(manifest))
    for note in maintainer.source_notes(index_state.source_changes(manifest, [ROOT])):
        st.warning(md_escape(note), icon=":material/edit_document:")
    problems = index_state.problem_pages(load_report(*token))
    st.subheader(f"Pages not indexed ({len(problems)})", anchor=False)
    st.html(maintainer.problems_html(maintainer.group_problems(problems)))
    st.subheader("Links", anchor=False)
    st.caption("Every link's state at the last build (the same as `faq-search links`).")
    st.html(maintainer.links_html(link_health(load_report(*token))))
    st.subheader("Answer threshold", anchor=False)
    st.html(maintainer.calibration_html(maintainer.calibration_state(manifest)))
    st.subheader("Rebuild", anchor=False)
    rebuild_panel(manifest)
    insights_panel(token)


def insights_panel(token: tuple[str, str]) -> None:
    """What learners asked, what the FAQ did not answer (grouped by meaning), votes and suggestions."""
    st.subheader("What learners ask", anchor=False)
    label = st.selectbox("Period", list(maintainer.INSIGHT_PERIODS), index=1, key="insights_period")
    try:
        report = get_insights(*token, str(db_path()), maintainer.INSIGHT_PERIODS[label])
    except Exception:  # an unreadable log must not take the maintainer view down
        log.exception("insights failed")
        st.warning("The query log could not be read; see the server log.")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Questions", report.queries)
    c2.metric("Answered", f"{report.answered_share:.0%}")
    c3.metric("Suggested", sum(n for _, n, _ in report.suggestions))
    if report.per_day:
        st.caption("Questions per day: answered, and not answered")
        st.bar_chart({"answered": {d.day: d.answered for d in report.per_day},
                      "not answered": {d.day: d.queries - d.answered for d in report.per_day}}, height=180)
    if report.scores:
        st.caption("Confidence of the best entry, per question (the answer threshold is "
                   f"{get_searcher(*token).threshold:.2f})")
        st.bar_chart({"questions": report.score_histogram()}, height=160)
    st.markdown("**Not answered, or answered with little confidence**, grouped by meaning")
    st.html(maintainer.unanswered_html(report))
    st.html(maintainer.entries_html(report))
    st.markdown("**Suggested for the FAQ**")
    st.html(maintainer.suggestions_html(report))


def entry_view(searcher: Searcher, entry_id: str) -> None:
    entry = searcher.stored.entries.get(entry_id)
    back = ("← Back to your search" if st.query_params.get("q") else
            "← Back to the list" if st.query_params.get("view") == VIEWS[1] else "← Back")
    st.button(back, key="close_entry", on_click=close_entry, type="tertiary")
    if entry is None:
        st.warning("That FAQ entry does not exist (any more). Try searching for it instead.")
        return
    with st.container(border=True, key="entry_card"):
        st.html(cards.entry_card_html(entry))


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


def search_view(token: tuple[str, str], manifest: dict) -> None:
    # The box comes first, so it is on screen (and focused) while the index loads on a cold start.
    query = st.text_input("Ask a question", key="q", bind="query-params", label_visibility="collapsed",
                          placeholder="Ask a question, e.g. what is log loss?", icon=":material/search:")
    sidebar(manifest, token)  # after the box, so the box is on screen first
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


def browse_view(searcher: Searcher) -> None:
    text = st.text_input("Filter the FAQ", key="filter", bind="query-params", label_visibility="collapsed",
                         placeholder="Filter by a word, e.g. loss, video, arxiv", icon=":material/filter_list:")
    entries = list(searcher.stored.entries.values())
    shown = browse.filter_entries(entries, text)
    if not shown:
        st.info("No FAQ entry contains all of those words. Try fewer words, or use Search.")
        return
    st.caption(f"{len(shown)} of {len(entries)} entries" if text else f"{len(entries)} entries")
    st.html(cards.browse_html(browse.group_by_category(shown), expanded=bool(text and text.strip()), view=VIEWS[1],
                              filter_text=(text or "").strip(), dead=searcher.link_marks[0]))


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
    st.html(PAGE_JS, unsafe_allow_javascript=True)
    # The main column first: the search box is what a learner waits for; the sidebar follows.
    if manifest is None or token is None:
        sidebar(manifest, token)
        no_index_panel(problem or "no index", manifest)
        return
    if not manifest.get("counts", {}).get("entries"):
        sidebar(manifest, token)
        st.info("The index is empty: the FAQ had no entries when it was built. Add entries to the FAQ, "
                "then rebuild:", icon=":material/build:")
        if admin_view():
            rebuild_panel(manifest)
        else:
            st.code(index_state.BUILD_COMMAND, language="bash")
        return
    entry_id = st.query_params.get("entry")
    if entry_id:
        sidebar(manifest, token)
        searcher = load_searcher(token, manifest)
        if searcher is not None:
            entry_view(searcher, entry_id)
        return
    view = st.segmented_control("View", views(), key="view", bind="query-params", default=VIEWS[0], required=True,
                                label_visibility="collapsed")
    if view == maintainer.VIEW:
        maintainer_view(manifest, token)
    elif view == VIEWS[1]:
        sidebar(manifest, token)
        searcher = load_searcher(token, manifest)
        if searcher is not None:
            browse_view(searcher)
    else:
        search_view(token, manifest)


def load_searcher(token: tuple[str, str], manifest: dict) -> Searcher | None:
    """The searcher for the current build (loaded once per process), or None after saying why not."""
    try:
        future = searcher_loader().start(token)
        if not future.done():  # a spinner starts a timer thread: only while there is something to wait for
            with st.spinner("Loading the search index…"):
                future.exception()  # waits; the result (or the error) is taken below
        return future.result()
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
