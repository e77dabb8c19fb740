"""Course FAQ search: the web app (`streamlit run app.py`).

Thin by design: this file sets the page up and picks the view; each view's Streamlit code is its own
module in the `webapp` package (`webapp.search_view`, `webapp.browse_view`, `webapp.maintainer_view`,
and `webapp.open_index`, which opens the current build's searcher for them). Searching is
`indexer.search`; everything shown is built as escaped, safe HTML by `webapp.html`, `webapp.cards`,
`webapp.browse`, `webapp.index_state` and `webapp.maintainer`; the look is `webapp/style.css`; what is
loaded once per process, and the configuration, is `webapp.resources`; the query log and votes are
`indexer.querylog`; a rebuild started here runs in `webapp.rebuild`'s thread.

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

import logging

import streamlit as st

from indexer.store import IndexError_
from webapp import browse_view, index_state, maintainer, maintainer_view, open_index, search_view
from webapp.resources import ROOT, index_dir

STYLE = ROOT / "webapp" / "style.css"
#: The learners' two views; the label is also the `?view=` value of a deep link (`?view=Browse`).
VIEWS = [search_view.VIEW, browse_view.VIEW]
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


def views() -> list[str]:
    """The view switch's options: the maintainer's only when the flag is on (so `?view=Maintainer` is inert)."""
    return [*VIEWS, maintainer.VIEW] if maintainer.admin_enabled() else VIEWS


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
        maintainer_view.sidebar(manifest)
        open_index.no_index_panel(problem or "no index", manifest)
        return
    if not manifest.get("counts", {}).get("entries"):
        maintainer_view.sidebar(manifest)
        st.info("The index is empty: the FAQ had no entries when it was built. Add entries to the FAQ, "
                "then rebuild:", icon=":material/build:")
        if maintainer.admin_enabled():
            maintainer_view.rebuild_panel(manifest)
        else:
            st.code(index_state.BUILD_COMMAND, language="bash")
        return
    entry_id = st.query_params.get("entry")
    if entry_id:
        maintainer_view.sidebar(manifest)
        searcher = open_index.load_searcher(token, manifest)
        if searcher is not None:
            browse_view.entry_view(searcher, entry_id)
        return
    view = st.segmented_control("View", views(), key="view", bind="query-params", default=search_view.VIEW,
                                required=True, label_visibility="collapsed")
    if view == maintainer.VIEW:
        maintainer_view.show(manifest, token)
    elif view == browse_view.VIEW:
        maintainer_view.sidebar(manifest)
        searcher = open_index.load_searcher(token, manifest)
        if searcher is not None:
            browse_view.show(searcher)
    else:
        search_view.show(token, manifest)


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
