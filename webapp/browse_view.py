"""The Browse view in Streamlit: the whole FAQ by section, filtered by words; and one entry on its own
(`?entry=`), opened from a search or from the list. The HTML is `webapp.cards`'."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from webapp import browse, cards

if TYPE_CHECKING:
    from indexer.search import Searcher

#: The view's label, also the `?view=` value of a deep link (`?view=Browse`).
VIEW = "Browse"


def close_entry() -> None:
    if "entry" in st.query_params:
        del st.query_params["entry"]


def entry_view(searcher: Searcher, entry_id: str) -> None:
    """One entry on its own (`?entry=`), with the way back to where the learner came from."""
    entry = searcher.stored.entries.get(entry_id)
    back = ("← Back to your search" if st.query_params.get("q") else
            "← Back to the list" if st.query_params.get("view") == VIEW else "← Back")
    st.button(back, key="close_entry", on_click=close_entry, type="tertiary")
    if entry is None:
        st.warning("That FAQ entry does not exist (any more). Try searching for it instead.")
        return
    with st.container(border=True, key="entry_card"):
        st.html(cards.entry_card_html(entry))


def show(searcher: Searcher) -> None:
    """Every entry by section, narrowed by the filter box (a deep link keeps the filter: `?filter=`)."""
    text = st.text_input("Filter the FAQ", key="filter", bind="query-params", label_visibility="collapsed",
                         placeholder="Filter by a word, e.g. loss, video, arxiv", icon=":material/filter_list:")
    entries = list(searcher.stored.entries.values())
    shown = browse.filter_entries(entries, text)
    if not shown:
        st.info("No FAQ entry contains all of those words. Try fewer words, or use Search.")
        return
    st.caption(f"{len(shown)} of {len(entries)} entries" if text else f"{len(entries)} entries")
    st.html(cards.browse_html(browse.group_by_category(shown), expanded=bool(text and text.strip()), view=VIEW,
                              filter_text=(text or "").strip(), dead=searcher.link_marks[0]))
