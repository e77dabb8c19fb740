"""Opening the current build's searcher for a view, or saying why there is none (and, for a maintainer,
offering to build it)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import streamlit as st

from indexer.store import IndexError_
from webapp import index_state, maintainer
from webapp.html import md_escape
from webapp.maintainer_view import show_rebuild, start_rebuild
from webapp.resources import rebuilder, searcher_loader

if TYPE_CHECKING:
    from indexer.search import Searcher

log = logging.getLogger(__name__)


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


def no_index_panel(problem: str, manifest: dict | None) -> None:
    """No usable index: learners are told search is not ready (and the command, for whoever runs the app);
    a maintainer also gets the reason and a build button."""
    if not maintainer.admin_enabled():
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
