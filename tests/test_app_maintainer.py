"""The two audiences of the running app (AppTest): learners see no index internals; with FAQ_ADMIN=1 a
Maintainer view holds the index's status, the pages not indexed, the answer threshold and the rebuild."""

from __future__ import annotations

import json
import shutil

import pytest

from app_fixtures import app_index  # noqa: F401
from conftest import seed_query_log
from test_app import app_env, assert_no_trace, card_ids, new_app, search, texts  # noqa: F401


def page_text(at) -> str:
    """All the text of the page (Markdown escapes aside), buttons and status labels included."""
    labels = [b.label for b in at.button] + [s.label for s in at.status] + [c.label for c in at.checkbox]
    return " ".join([t for t in texts(at) if not t.startswith("<style>")] + labels).replace("\\", "")


@pytest.fixture
def admin(app_env, monkeypatch):
    monkeypatch.setenv("FAQ_ADMIN", "1")
    return app_env


def maintainer_page(**params):
    at = new_app(view="Maintainer", **params)
    assert_no_trace(at)
    assert at.segmented_control(key="view").value == "Maintainer"
    return at


def test_learners_see_no_index_internals(app_env, monkeypatch):
    monkeypatch.delenv("FAQ_ADMIN", raising=False)
    pages = [new_app(), search(new_app(), "what is the optimal learning rate"), new_app(view="Browse"),
             new_app(view="Maintainer")]  # the maintainer's deep link without the flag: the search page
    for at in pages:
        assert_no_trace(at)
        assert at.segmented_control(key="view").options == ["Search", "Browse"]
        assert not at.metric and not at.status and not at.sidebar.children
        assert not [b for b in at.button if b.key in ("rebuild", "build_main")]
        shown = page_text(at)
        for internal in ("Rebuild", "Failed", "HTTP 404", "page not found", "Pages not indexed", "MiniLM",
                         "calibrat", "FAQ_ADMIN"):
            assert internal not in shown, internal
    assert card_ids(pages[1])[0] == "how-to-find-the-optimal-learning-rate"  # its failed page's entry is shown
    assert pages[3].segmented_control(key="view").value == "Search"


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_the_flag_turns_the_maintainer_view_on(app_env, monkeypatch, value):
    monkeypatch.setenv("FAQ_ADMIN", value)
    assert new_app().segmented_control(key="view").options == ["Search", "Browse", "Maintainer"]


def test_maintainer_view_shows_status_failed_pages_grouped_and_calibration(admin, app_index):
    at = maintainer_page()
    shown = page_text(at)
    assert "5 FAQ entries with 4 links" in shown.replace("<b>", "").replace("</b>", "")
    assert "2 fetched, 0 from the cache, 2 could not be fetched" in shown.replace("<b>", "").replace("</b>", "")
    assert "all-MiniLM-L6-v2" in shown and "UTC" in shown
    assert [s.value for s in at.subheader] == ["Index", "Pages not indexed (2)", "Links", "Answer threshold", "Rebuild",
                                                     "What learners ask"]
    (failed,) = [h.value for h in at.main.html if "faq-mt-group" in h.value]
    assert failed.count("<details") == 1  # the two 404s are one group
    assert "<b>2 pages</b>: page not found (HTTP 404)" in failed and "gone-missing.html" in failed
    assert "Not calibrated: answers use the default threshold" in shown
    assert "python -m indexer calibrate bench/eval/shipped_*.jsonl" in shown
    assert at.button(key="rebuild") and not at.status
    assert not at.warning and not at.sidebar.children  # the FAQ is unchanged
    original = app_index.faq.read_text("utf-8")
    try:
        app_index.faq.write_text(original + "\n**Q: A new question?**\n\nNew.\n", "utf-8")
        at = maintainer_page()
        assert any("changed since this index was built" in w.value for w in at.main.warning)
        at = new_app()  # on the search page, a maintainer sees the note in the sidebar
        assert any("changed since this index was built" in w.value for w in at.sidebar.warning)
    finally:
        app_index.faq.write_text(original, "utf-8")


def test_maintainer_view_says_when_the_index_is_calibrated(admin, app_index, tmp_path, monkeypatch):
    from indexer.calibrate import calibrate_index

    index_dir = tmp_path / "index"
    shutil.copytree(app_index.index_dir.resolve(), index_dir)
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"query": "what is log loss", "expected": "what-is-cross-entropy-loss"}\n'
                     '{"query": "how do I bake bread", "expected": null}\n', "utf-8")
    calibrate_index(index_dir, cases)
    monkeypatch.setenv("FAQ_INDEX_DIR", str(index_dir))
    shown = page_text(maintainer_page())
    assert "calibrated on 2 labelled queries from" in shown and "cases.jsonl" in shown
    assert "Not calibrated" not in shown
    monkeypatch.setenv("FAQ_ANSWER_THRESHOLD", "0.5")
    assert "set by FAQ_ANSWER_THRESHOLD" in page_text(maintainer_page()).replace("<code>", "").replace("</code>", "")


def test_rebuild_from_the_maintainer_view_shows_its_stages_and_switches_to_the_new_index(admin, app_index,
                                                                                       tmp_path, monkeypatch):
    index_dir, cache_dir, faq = tmp_path / "index", tmp_path / "cache", tmp_path / "faq.md"
    shutil.copytree(app_index.index_dir.resolve(), index_dir)  # a copy: the shared index stays as it is
    shutil.copytree(app_index.cache_dir, cache_dir)
    faq.write_text(app_index.faq.read_text("utf-8"), "utf-8")
    monkeypatch.setenv("FAQ_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("FAQ_CACHE_DIR", str(cache_dir))
    at = search(new_app(), "batch normalisation layers")
    assert "what-is-batch-normalisation" not in card_ids(at)
    # The copied index's manifest names the shared FAQ: rebuild from the copy, with one entry more.
    manifest = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    manifest["sources"] = [{"path": str(faq), "sha256": manifest["sources"][0]["sha256"]}]
    (index_dir / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    faq.write_text(faq.read_text("utf-8") + "\n**Q: What is batch normalisation?**\n\nIt normalises layer inputs.\n",
                   "utf-8")
    at = maintainer_page()
    assert any("changed since" in w.value for w in at.main.warning)
    at.checkbox(key="offline_build").check()
    at.button(key="rebuild").click().run()
    assert_no_trace(at)
    (status,) = at.status
    assert status.state == "complete"
    label = status.label.replace("\\", "")
    assert label.startswith("Rebuilt: 6 entries, 4 links (2 pages read, 2 could not be fetched)")
    assert label.endswith("Search now uses the new index.")
    body = " ".join(h.value for h in status.html)
    for stage in ("Fetching pages 4/4", "Extracting text 2/2", "Embedding ", "Saved"):
        assert stage in body, stage
    assert body.index("Fetching") < body.index("Extracting") < body.index("Embedding") < body.index("Saved")
    assert "The new index is not calibrated" in body and "python -m indexer calibrate" in body
    assert not at.main.warning  # the FAQ matches the new build
    shown = page_text(at).replace("<b>", "").replace("</b>", "")
    assert "6 FAQ entries with 4 links" in shown
    at.segmented_control(key="view").set_value("Search").run()
    search(at, "batch normalisation layers")
    assert card_ids(at)[0] == "what-is-batch-normalisation"  # the same app, now on the new build
    assert app_index.index_dir.resolve() != index_dir.resolve()


def test_a_failed_rebuild_says_so_and_keeps_the_index(admin, app_index, tmp_path, monkeypatch):
    index_dir, faq = tmp_path / "index", tmp_path / "faq.md"
    shutil.copytree(app_index.index_dir.resolve(), index_dir)
    faq.write_text("**Q: Broken?**\n\nSee [<b>x</b>](htp:/nowhere)\n", "utf-8")
    manifest = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    manifest["sources"] = [{"path": str(faq), "sha256": "0"}]
    (index_dir / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    monkeypatch.setenv("FAQ_INDEX_DIR", str(index_dir))
    at = maintainer_page()
    at.button(key="rebuild").click().run()
    assert_no_trace(at)
    (status,) = at.status
    assert status.state == "error" and "previous index is unchanged" in status.label
    body = " ".join(h.value for h in status.html)
    assert "The rebuild failed:" in body and str(faq) in body and "<b>x</b>" not in body
    assert json.loads((index_dir / "manifest.json").read_text("utf-8"))["build_id"] == manifest["build_id"]


def test_no_index_learners_get_the_command_and_maintainers_a_build_button(tmp_path, monkeypatch):
    monkeypatch.setenv("FAQ_INDEX_DIR", str(tmp_path / "no-index"))
    monkeypatch.setenv("FAQ_APP_DB", str(tmp_path / "app.sqlite"))
    monkeypatch.delenv("FAQ_ADMIN", raising=False)
    at = new_app(q="log loss")
    assert_no_trace(at)
    assert any("Search is not ready yet" in i.value for i in at.info)
    assert "python -m indexer build" in [c.value for c in at.main.code]
    assert not at.button and "no-index" not in page_text(at)  # no button, no path
    monkeypatch.setenv("FAQ_ADMIN", "1")
    at = new_app()
    assert_no_trace(at)
    assert at.button(key="build_main") and "no-index" in page_text(at)


def test_maintainer_view_sums_up_what_learners_asked(admin):
    """A seeded query log: the questions the FAQ missed are grouped by meaning, with votes and suggestions."""
    seed_query_log(admin, suggestion="<b>how do I bake bread</b>")
    at = maintainer_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Questions"] == "5" and metrics["Answered"] == "20%" and metrics["Suggested"] == "1"
    groups = [h.value for h in at.main.html if "asked</b>" in h.value][0]
    assert "<b>3 asked</b>: " in groups and "dropout" in groups.split("<b>3 asked</b>: ")[1].split("<")[0]
    assert "<b>1 asked</b>: how to install cuda on ubuntu" in groups
    page = "".join(h.value for h in at.main.html)
    assert "thumbs down on: what is log loss" in page and "What is cross entropy loss?" in page
    assert "&lt;b&gt;how do I bake bread&lt;/b&gt;" in page and "<b>how do I bake" not in page  # text, not markup
    assert len(at.get("vega_lite_chart")) == 2  # questions per day, and the score histogram
    at.selectbox(key="insights_period").select("Last 7 days").run()
    assert_no_trace(at)


def test_maintainer_view_lists_link_health_and_browse_marks_dead_links(admin):
    at = maintainer_page()
    page = "".join(h.value for h in at.main.html)
    assert page.count('class="faq-mt-state faq-mt-state-dead"') == 2  # the two 404s of the test FAQ
    assert "replace or remove the link" in page and "fine at the last build" not in page
    browse = new_app(view="Browse")
    html = "".join(h.value for h in browse.main.html)
    assert html.count('class="faq-dead"') == 2 and "gone-missing.html" in html
