"""The Maintainer view in Streamlit (only with FAQ_ADMIN=1): index status, pages not indexed, link health,
the answer threshold, the rebuild, and what learners ask; and the maintainer's note in the sidebar.

What it shows is built as HTML by `webapp.maintainer`; a rebuild runs in `webapp.rebuild`'s thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from indexer.config import DEFAULT_FAQ
from webapp import index_state, maintainer
from webapp.html import md_escape
from webapp.rebuild import same_index
from webapp.resources import ROOT, cache_dir, db_path, get_insights, get_searcher, index_dir, load_report, rebuilder

log = logging.getLogger(__name__)


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


def sidebar(manifest: dict | None) -> None:
    """Nothing for learners (no index internals). For a maintainer, a note when the FAQ changed since the build;
    the rest is on the Maintainer view."""
    if not maintainer.admin_enabled() or manifest is None:
        return
    notes = maintainer.source_notes(index_state.source_changes(manifest, [ROOT]))
    if notes:
        with st.sidebar:
            for note in notes:
                st.warning(md_escape(note), icon=":material/edit_document:")
            st.caption("Rebuild from the Maintainer view.")


def show(manifest: dict, token: tuple[str, str]) -> None:
    """Index status, pages not indexed, link health, the answer threshold, the rebuild, what learners ask:
    only with FAQ_ADMIN=1."""
    from indexer.links import link_health

    st.caption("Maintainer view (FAQ_ADMIN is set). Learners do not see this page.")
    st.subheader("Index", anchor=False)
    st.html(maintainer.status_html(manifest))
    for note in maintainer.source_notes(index_state.source_changes(manifest, [ROOT])):
        st.warning(md_escape(note), icon=":material/edit_document:")
    report = load_report(*token)
    problems = index_state.problem_pages(report)
    st.subheader(f"Pages not indexed ({len(problems)})", anchor=False)
    st.html(maintainer.problems_html(maintainer.group_problems(problems)))
    st.subheader("Links", anchor=False)
    st.caption("Every link's state at the last build (the same as `faq-search links`).")
    st.html(maintainer.links_html(link_health(report)))
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
