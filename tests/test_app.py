"""The running web app: every page and state through Streamlit's AppTest, and the searcher it opens.

The app tests run `app.py` with Streamlit's AppTest against a real index built
once per session from a tiny FAQ (tests/app_fixtures.py), one of whose pages is
hostile. Each test points the app at its own SQLite file through FAQ_APP_DB.
The `webapp` modules' own tests are tests/test_webapp_*.py.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import urllib.parse

import pytest

from app_fixtures import APP, HOSTILE_QUERY, REPO_ROOT, XSS_TEXT, AppIndex, app_index, build  # noqa: F401
from indexer.querylog import QueryLog

TIMEOUT = 60


# == the searcher the app opens ===============================================================================
def test_app_searches_with_the_builds_onnx_export_and_never_imports_torch(app_index: AppIndex):
    """The build left an ONNX export in the cache folder; the app's searcher encodes queries with it, torch-free."""
    code = ("import sys; from pathlib import Path; from indexer.search import Searcher; "
            "import webapp.browse, webapp.cards, webapp.html, webapp.index_state; "
            "from indexer.onnx_encoder import load_query_encoder; "
            f"s = Searcher.open(Path({str(app_index.index_dir)!r}), encoder_for="
            f"lambda m: load_query_encoder(m, Path({str(app_index.cache_dir)!r}))); "
            "r = s.search('what is log loss'); "
            "print(type(s.embedder).__name__, r.results[0].id, sorted({'torch', 'transformers', "
            "'sentence_transformers', 'optimum'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["OnnxEncoder", "what-is-cross-entropy-loss", "[]"], proc.stderr


# == the app, through AppTest ======================================================================
@pytest.fixture
def app_env(app_index: AppIndex, tmp_path, monkeypatch):
    """The app pointed at the shared test index and a fresh feedback database."""
    db = tmp_path / "app.sqlite"
    monkeypatch.setenv("FAQ_INDEX_DIR", str(app_index.index_dir))
    monkeypatch.setenv("FAQ_APP_DB", str(db))
    monkeypatch.setenv("FAQ_CACHE_DIR", str(app_index.cache_dir))
    monkeypatch.setenv("FAQ_EXAMPLES", str(tmp_path / "no-examples.txt"))  # the FAQ's own questions
    monkeypatch.delenv("FAQ_ANSWER_THRESHOLD", raising=False)
    monkeypatch.delenv("FAQ_CONTACT", raising=False)
    return db


def new_app(**query_params):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(query_params)
    return at.run()


def cards(at) -> list[str]:
    return [h.value for h in at.main.html if 'class="faq-card' in h.value]


def card_ids(at) -> list[str]:
    return [re.search(r'data-entry="([^"]*)"', c).group(1) for c in cards(at)]


def related(at) -> list[str]:
    """The one-line results below the answer (or, without one, the nearest entries), in order."""
    return [m for h in at.main.html if 'class="faq-related' in h.value
            for m in re.findall(r'<li class="faq-rel-item" data-entry="([^"]*)"', h.value)]


def shown_ids(at) -> list[str]:
    return card_ids(at) + related(at)


def plain(markup: str) -> str:
    """What a reader sees of some markup: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def texts(at) -> list[str]:
    """Every piece of text the page shows (main and sidebar), as sent to the browser."""
    out = []
    for kind in ("markdown", "caption", "warning", "info", "error", "success", "code", "html", "title", "header",
                 "subheader", "exception", "metric"):
        out += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    return out


def assert_no_trace(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not any("Traceback" in t for t in texts(at))


def search(at, query: str):
    return at.text_input(key="q").input(query).run()


def test_home_page_has_search_box_and_examples(app_env, app_index):
    from indexer.store import load

    at = new_app()
    assert_no_trace(at)
    assert at.text_input(key="q").value == ""
    assert "Ask a question" in at.text_input(key="q").placeholder
    examples = [b for b in at.button if str(b.key).startswith("example_")]
    assert 1 <= len(examples) <= 2
    at = examples[0].click().run()
    assert at.text_input(key="q").value == examples[0].label
    by_question = {e.question: e.id for e in load(app_index.index_dir).entries.values()}
    assert shown_ids(at)[0] == by_question[examples[0].label]


def test_configured_examples_are_shown_only_when_the_index_answers_them(app_env, tmp_path, monkeypatch):
    path = tmp_path / "examples.txt"
    path.write_text("# comment\nhow do I measure the error of predicted probabilities?\n\n"
                    "how do I bake sourdough bread at home\n**bold** [x](javascript:alert(1))\n", "utf-8")
    monkeypatch.setenv("FAQ_EXAMPLES", str(path))
    at = new_app()
    assert_no_trace(at)
    labels = [b.label for b in at.button if str(b.key).startswith("example_")]
    assert labels and labels[0] == "how do I measure the error of predicted probabilities?"
    assert all("sourdough" not in label for label in labels)
    at = [b for b in at.button if str(b.key) == "example_0"][0].click().run()
    assert card_ids(at) == ["what-is-cross-entropy-loss"]


def test_examples_stop_at_three_and_none_answered_shows_no_heading(app_env, tmp_path, monkeypatch):
    path = tmp_path / "examples.txt"
    monkeypatch.setenv("FAQ_EXAMPLES", str(path))
    path.write_text("how do I bake sourdough bread at home\nbest hiking boots for wet weather\n", "utf-8")
    at = new_app()
    assert_no_trace(at)
    assert not [b for b in at.button if str(b.key).startswith("example_")]
    assert all("Or try an example" not in c.value for c in at.caption)

    path.write_text("what is log loss?\nwhat is cross entropy?\nhow to measure log loss\n"
                    "log loss of predicted probabilities\n", "utf-8")
    at = new_app()
    labels = [b.label for b in at.button if str(b.key).startswith("example_")]
    assert len(labels) == 3 and labels == ["what is log loss?", "what is cross entropy?", "how to measure log loss"]
    assert any("Or try an example" in c.value for c in at.caption)


def test_an_example_label_is_text_not_markdown(app_env, tmp_path, monkeypatch):
    from webapp.html import md_escape

    path = tmp_path / "examples.txt"
    hostile = "what is log loss ![x](https://evil.example/x.png) **bold**"
    path.write_text(hostile + "\n", "utf-8")
    monkeypatch.setenv("FAQ_EXAMPLES", str(path))
    at = new_app()
    labels = [b.label for b in at.button if str(b.key).startswith("example_")]
    assert labels == [md_escape(hostile)]


def test_search_shows_results_with_resources_evidence_and_logs_the_query(app_env):
    at = search(new_app(), "what is log loss")
    assert_no_trace(at)
    assert card_ids(at)[0] == "what-is-cross-entropy-loss"
    assert not at.warning  # answered: no "no good answer" notice
    top = cards(at)[0]
    assert "What is cross entropy loss?" in plain(top) and "Cross entropy measures" in plain(top)  # Q and answer
    assert re.search(r'class="faq-rel faq-rel-(strong|good)"', top) and 'class="faq-bar' in top
    assert "Understanding binary cross-entropy / log loss" in plain(top) and "faq-kind-article" in top
    assert "127.0.0.1" in top  # the site name
    assert "<mark>" in top
    assert len(cards(at)) == 1 and len(at.feedback) == 1  # the answer in full; the rest one line each
    rest = related(at)
    assert rest and "what-is-cross-entropy-loss" not in rest and len(rest) == len(set(rest))
    assert any("1 answer and" in c.value for c in at.caption)
    rows = QueryLog(app_env).queries()
    assert [(r["query"], r["top_id"], r["answered"]) for r in rows] == [
        ("what is log loss", "what-is-cross-entropy-loss", 1)]
    assert rows[0]["top_score"] > 0 and rows[0]["n_results"] == 1 + len(rest)
    at.run()  # a rerun (e.g. a feedback click) is not a new query
    assert len(QueryLog(app_env).queries()) == 1
    search(at, "striped momentum")
    assert len(QueryLog(app_env).queries()) == 2


def test_a_faq_of_several_sections_can_be_searched_in_one(app_env, app_index):
    """Learners of one course (or module) search its entries only; the best answer elsewhere is not shown."""
    from indexer import store

    tools = {e.id for e in store.load(app_index.index_dir).entries.values() if e.category == "Tools and setup"}
    at = search(new_app(), "what is log loss")
    assert at.selectbox(key="section").options == ["All sections", "Neural networks", "Tools and setup"]
    assert card_ids(at)[0] == "what-is-cross-entropy-loss"
    at.selectbox(key="section").select("Tools and setup").run()
    assert_no_trace(at)
    assert shown_ids(at) and set(shown_ids(at)) <= tools
    assert any("no good answer" in h.value for h in at.main.html if "faq-notice" in h.value)
    at.selectbox(key="section").select("All sections").run()
    assert card_ids(at)[0] == "what-is-cross-entropy-loss"
    # The same question in another section is a new search, logged with the section it was kept to.
    logged = [(r["query"], r["section"]) for r in reversed(QueryLog(app_env).queries())]
    assert logged == [("what is log loss", None), ("what is log loss", "Tools and setup"), ("what is log loss", None)]


def test_evidence_from_a_page_links_to_its_source(app_env, app_index):
    at = search(new_app(), "alternates the momentum coefficient every other mini-batch")
    assert_no_trace(at)
    assert card_ids(at)[0] == "what-is-striped-momentum"
    top = cards(at)[0]
    page = f"{app_index.base_url}/striped-momentum.html"
    assert "From “" in top and f'href="{page}"' in top  # the FAQ's link to the page, to its top
    # and "read this passage" opens the page at the passage (a URL text fragment)
    fragment = re.search(r'href="(' + re.escape(page) + r'#:~:text=[^"]+)"', top)
    assert fragment and "Read this passage on the page" in plain(top)
    start = html.unescape(fragment.group(1)).split("#:~:text=")[1].split(",")[0]
    assert urllib.parse.unquote(start) in plain(top)
    assert "<mark>alternates</mark>" in top


def test_no_answer_says_so_and_still_offers_the_nearest_entries(app_env):
    at = search(new_app(), "how do I bake sourdough bread at home")
    assert_no_trace(at)
    notice = [h.value for h in at.main.html if "faq-notice" in h.value]
    assert notice and "no good answer" in notice[0]
    assert not cards(at) and len(related(at)) >= 3  # nearest entries, compact: nothing looks like an answer
    assert QueryLog(app_env).queries()[0]["answered"] == 0
    at.button(key="suggest").click().run()
    assert_no_trace(at)
    assert [r["query"] for r in QueryLog(app_env).suggestions()] == ["how do I bake sourdough bread at home"]
    assert at.button(key="suggest").disabled and any("maintainer" in t.value for t in at.toast)


def test_no_answer_points_to_the_configured_contact(app_env, monkeypatch):
    monkeypatch.setenv("FAQ_CONTACT", "https://forum.example/c/course")
    at = search(new_app(), "how do I bake sourdough bread at home")
    notice = [h.value for h in at.main.html if "faq-notice" in h.value][0]
    assert '<a href="https://forum.example/c/course"' in notice
    monkeypatch.setenv("FAQ_CONTACT", "<b>Ask</b> in the Tuesday lab")
    notice = [h.value for h in search(new_app(), "how do I bake sourdough bread at home").main.html if "faq-notice" in h.value][0]
    assert "&lt;b&gt;Ask&lt;/b&gt; in the Tuesday lab" in notice


@pytest.mark.parametrize("query", ["???", "the", "what is it?", "..."])
def test_a_query_with_nothing_to_search_for_says_so(app_env, query):
    at = search(new_app(), query)
    assert_no_trace(at)
    assert any("Nothing to search for" in i.value for i in at.info)
    assert not shown_ids(at) and not [h for h in at.main.html if "faq-notice" in h.value]


def test_feedback_is_stored_with_the_query(app_env):
    at = search(new_app(), "what is log loss")
    at.feedback[0].set_value(1).run()
    assert_no_trace(at)
    votes = QueryLog(app_env).votes()
    assert [(v["query"], v["entry_id"], v["vote"], v["rank"]) for v in votes] == [
        ("what is log loss", "what-is-cross-entropy-loss", 1, 1)]
    assert any("Thanks" in t.value for t in at.toast)
    at = search(at, "striped momentum")
    at.feedback[0].set_value(0).run()
    votes = QueryLog(app_env).votes()
    assert (votes[0]["query"], votes[0]["vote"], votes[0]["entry_id"]) == ("striped momentum", -1, card_ids(at)[0])


def test_deep_link_runs_the_query(app_env):
    at = new_app(q="log loss")
    assert_no_trace(at)
    assert at.text_input(key="q").value == "log loss"
    assert card_ids(at)[0] == "what-is-cross-entropy-loss"


def test_deep_link_to_one_entry_and_back(app_env):
    at = new_app(entry="what-is-striped-momentum")
    assert_no_trace(at)
    assert card_ids(at) == ["what-is-striped-momentum"]
    assert "Striped momentum notes" in cards(at)[0]
    assert not at.text_input  # the entry alone
    at.button(key="close_entry").click().run()
    assert "entry" not in at.query_params and at.text_input(key="q")


def test_an_entry_opened_from_a_search_comes_back_to_the_same_search(app_env):
    at = search(new_app(), "what is log loss")
    href = re.search(r'href="(\?entry=[^"]+)"', cards(at)[0]).group(1)
    params = dict(urllib.parse.parse_qsl(html.unescape(href)[1:]))
    assert params == {"entry": "what-is-cross-entropy-loss", "q": "what is log loss"}
    opened = new_app(**params)  # the link reloads the page: a new session with these params
    assert card_ids(opened) == ["what-is-cross-entropy-loss"] and not opened.text_input
    assert opened.button(key="close_entry").label == "← Back to your search"
    back = opened.button(key="close_entry").click().run()
    assert_no_trace(back)
    assert back.text_input(key="q").value == "what is log loss"
    assert card_ids(back) == ["what-is-cross-entropy-loss"] and related(back)
    missing = new_app(entry="no-such-entry")
    assert_no_trace(missing)
    assert any("does not exist" in w.value for w in missing.warning)


def test_browse_groups_every_entry_by_category_and_filters(app_env):
    at = new_app()
    at.segmented_control(key="view").set_value("Browse").run()
    assert_no_trace(at)
    page = "".join(h.value for h in at.main.html)
    assert page.count('class="faq-item"') == 5
    assert [m for m in re.findall(r'faq-group-title">([^<]*?) <', page)] == ["Neural networks", "Tools and setup"]
    assert "Striped momentum notes" in page and 'href="?entry=what-is-striped-momentum&amp;view=Browse"' in page
    at.text_input(key="filter").input("momentum").run()
    page = "".join(h.value for h in at.main.html)
    assert page.count('class="faq-item"') == 1 and " open>" in page
    assert any("1 of 5" in c.value for c in at.caption)
    at.text_input(key="filter").input("zzzz nothing").run()
    assert any("No FAQ entry" in i.value for i in at.info)
    deep = new_app(view="Browse", filter="pytorch")
    page = "".join(h.value for h in deep.main.html)
    assert page.count('class="faq-item"') == 1
    href = html.unescape(re.search(r'href="(\?entry=[^"]+)"', page).group(1))
    back = new_app(**dict(urllib.parse.parse_qsl(href[1:]))).button(key="close_entry")
    assert back.label == "← Back to the list"
    back = back.click().run()
    assert back.text_input(key="filter").value == "pytorch"
    assert "".join(h.value for h in back.main.html).count('class="faq-item"') == 1


def test_hostile_page_faq_and_query_are_shown_as_text(app_env):
    at = search(new_app(), "striped momentum: careful readers notice the page tries to inject markup")
    assert_no_trace(at)
    assert card_ids(at) == ["what-is-striped-momentum"]  # the hostile passage is the evidence
    at2 = search(new_app(), "why do I see img src onerror in my notebook")
    at3 = search(new_app(), HOSTILE_QUERY)
    assert_no_trace(at3)
    shown = [t for a in (at, at2, at3) for t in texts(a) if t.strip() and "focusSearch" not in t]
    page = "\n".join(shown)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page  # the page, as text
    assert "&lt;img src=x onerror=alert(1)&gt; in my notebook" in page  # the FAQ question, as text
    for text in shown:
        low = text.lower()
        assert not re.search(r"<(script|img|iframe|object|embed|svg|math)\b", low), text
        assert not re.search(r"<[^>]*\son\w+\s*=", low), text  # no event-handler attribute in any tag
        assert 'href="javascript' not in low and "href='javascript" not in low
    for element in at3.markdown:  # the query never reaches a Markdown slot unescaped
        assert "](javascript" not in element.value and "<img" not in element.value
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(h.startswith(("http://", "https://", "?entry=")) for h in hrefs)


def test_missing_index_explains_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FAQ_INDEX_DIR", str(tmp_path / "no-index"))
    monkeypatch.setenv("FAQ_APP_DB", str(tmp_path / "app.sqlite"))
    at = new_app(q="log loss")
    assert_no_trace(at)
    assert any("not built yet" in i.value for i in at.info)
    assert "python -m indexer build" in [c.value for c in at.main.code]
    assert not at.button  # a learner gets no build button (the maintainer view: tests/test_app_maintainer.py)
    (tmp_path / "empty-dir").mkdir()
    monkeypatch.setenv("FAQ_INDEX_DIR", str(tmp_path / "empty-dir"))
    at = new_app()
    assert_no_trace(at)
    assert any("not built yet" in i.value for i in at.info)


def test_empty_or_damaged_index_never_shows_a_stack_trace(app_index, tmp_path, monkeypatch):
    from indexer.config import SCHEMA_VERSION

    monkeypatch.setenv("FAQ_APP_DB", str(tmp_path / "app.sqlite"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "build_id": "e",
                                                     "counts": {"entries": 0}}), "utf-8")
    monkeypatch.setenv("FAQ_INDEX_DIR", str(empty))
    at = new_app(q="log loss")
    assert_no_trace(at)
    assert any("index is empty" in i.value for i in at.info)

    damaged = tmp_path / "damaged"
    shutil.copytree(app_index.index_dir.resolve(), damaged)
    (damaged / "meta.sqlite").write_bytes(b"this is not a database")
    manifest = json.loads((damaged / "manifest.json").read_text("utf-8"))
    manifest["build_id"] = "damaged"
    (damaged / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    monkeypatch.setenv("FAQ_INDEX_DIR", str(damaged))
    at = new_app(q="log loss")
    assert_no_trace(at)
    assert any("not built yet" in i.value or "cannot be read" in i.value for i in at.info)
    assert not cards(at)


def test_a_rebuild_elsewhere_is_picked_up_on_the_next_run(tmp_path, monkeypatch):
    faq = tmp_path / "faq.md"
    faq.write_text("**Q: What is dropout?**\n\nDropout zeroes random activations.\n", "utf-8")
    index_dir, cache_dir = tmp_path / "index", tmp_path / "cache"
    build(faq, index_dir, cache_dir, offline=True)
    monkeypatch.setenv("FAQ_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("FAQ_APP_DB", str(tmp_path / "app.sqlite"))
    at = search(new_app(), "weight decay")
    assert shown_ids(at) == ["what-is-dropout"]
    assert not [box for box in at.selectbox if box.key == "section"], "one section: nothing to pick"
    faq.write_text(faq.read_text("utf-8") + "\n**Q: What is weight decay?**\n\nAn L2 penalty on weights.\n", "utf-8")
    build(faq, index_dir, cache_dir, offline=True)  # e.g. `python -m indexer build` in a terminal
    at.run()
    assert shown_ids(at)[0] == "what-is-weight-decay"
