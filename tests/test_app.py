"""The web app: its plain functions (webapp/, query encoder) and every page and state via AppTest.

The app tests run `app.py` with Streamlit's AppTest against a real index built
once per session from a tiny FAQ (tests/app_fixtures.py), one of whose pages is
hostile. Each test points the app at its own SQLite file through FAQ_APP_DB.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from app_fixtures import APP, HOSTILE_QUERY, REPO_ROOT, XSS_TEXT, AppIndex, app_index, build  # noqa: F401
from indexer.records import Document, Entry, Resource
from indexer.search import Evidence, Result, SearchResponse
from indexer.status import file_sha256
from webapp import browse, cards as card_markup, html as markup, index_state
from webapp.feedback import FeedbackStore, default_db_path

TIMEOUT = 60


# == webapp.html: escaping, links, highlighting ===================================================
@pytest.mark.parametrize("url", ["http://example.com", "https://example.com/a?b=1&c=<2>", "HTTPS://EXAMPLE.COM/x",
                                 "http://127.0.0.1:8000/page.html"])
def test_safe_url_accepts_http_and_https(url):
    assert markup.safe_url(url) == url


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
                                 "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
                                 "file:///etc/passwd", "//evil.example/x", "/relative", "http://", "https:///x",
                                 "java\nscript:alert(1)", "http://exa mple.com", "https:\\\\evil.example", "", None,
                                 "http://ex\x00ample.com", 42])
def test_safe_url_rejects_everything_else(url):
    assert markup.safe_url(url) is None


def test_link_html_links_only_http_and_escapes_text():
    good = markup.link_html("https://example.com/?a=1&b=\"2\"", "<b>Title</b>")
    assert good.startswith('<a href="https://example.com/?a=1&amp;b=&quot;2&quot;"')
    assert "&lt;b&gt;Title&lt;/b&gt;" in good and "<b>" not in good
    assert 'rel="noopener noreferrer nofollow"' in good
    bad = markup.link_html("javascript:alert(1)", "click <me>")
    assert "<a" not in bad and "href" not in bad and "click &lt;me&gt;" in bad


def test_highlight_html_escapes_every_piece_and_marks_spans():
    text = "see " + XSS_TEXT + " and momentum"
    start = text.index("momentum")
    out = markup.highlight_html(text, [[start, start + 8], [0, 3]])
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in out
    assert out.count("<mark>") == 2 and "<mark>momentum</mark>" in out and out.startswith("<mark>see</mark>")
    # A mark over the hostile text is escaped inside the mark too.
    tag = text.index("<script>")
    assert "<mark>&lt;script&gt;</mark>" in markup.highlight_html(text, [[tag, tag + 8]])


def test_highlight_html_tolerates_bad_spans_and_cuts_long_text():
    assert markup.highlight_html("abc", [[2, 99], [-5, 1], [2, 1], ["x", 3], [1]]) == "<mark>a</mark>b<mark>c</mark>"
    assert markup.highlight_html("abcdef", [[0, 3], [2, 5]]) == "<mark>abcde</mark>f"
    long = ("word " * 400) + "target " + ("word " * 400)
    pos = long.index("target")
    out = markup.highlight_html(long, [[pos, pos + 6]], max_chars=200)
    assert "<mark>target</mark>" in out and out.startswith("… ") and out.endswith(" …")
    assert len(out) < 260


def test_text_html_paragraphs_links_and_escaping():
    out = markup.text_html("First <b>para</b> see https://example.com/x.\n\nSecond javascript:alert(1) line")
    assert out.count("<p>") == 2
    assert '<a href="https://example.com/x"' in out and "x.</a>" not in out  # the full stop is not in the link
    assert "&lt;b&gt;para&lt;/b&gt;" in out and "javascript:alert(1)" in out and 'href="javascript' not in out


def test_md_escape_neutralises_markdown():
    out = markup.md_escape("[click](javascript:alert(1)) **bold** <img src=x>")
    assert "\\[click\\]\\(javascript\\:alert\\(1\\)\\)" in out and "\\*\\*bold\\*\\*" in out and "\\<img" in out


# == webapp: labels, grouping, filtering, status ===============================================
def test_relevance_labels_follow_the_threshold_and_the_best_result():
    assert card_markup.relevance(0.9, 0.45) == card_markup.Relevance("Strong match", "strong", 90)
    assert card_markup.relevance(0.6, 0.45).level == "good"
    assert card_markup.relevance(0.5, 0.45).level == "weak"  # just above the answer bar
    assert card_markup.relevance(0.4, 0.45) == card_markup.Relevance("Weak match", "low", 40)  # below it
    # With a low calibrated threshold, a runner-up far below the best result is only a possible match.
    assert card_markup.relevance(0.68, 0.11, top=0.68).level == "strong"
    assert card_markup.relevance(0.25, 0.11, top=0.68).level == "weak"
    assert card_markup.relevance(0.45, 0.11, top=0.68).level == "good"
    assert card_markup.relevance(-0.3, 0.45).percent == 0 and card_markup.relevance(1.7, 0.45).percent == 100
    assert card_markup.relevance(float("nan"), 0.45).percent == 0 and card_markup.relevance("x", 0.45).level == "low"


def test_kind_badges():
    assert [card_markup.kind_label(k) for k in ("article", "video", "qa", "paper", "book", "other", "weird")] == \
        ["Article", "Video", "Q&A", "Paper", "Book", "Link", "Link"]
    assert card_markup.kind_badge_html("qa") == '<span class="faq-kind faq-kind-qa">Q&amp;A</span>'
    assert 'faq-kind-other' in card_markup.kind_badge_html('"><script>')


def _entry(id_, question, category="", answer="", resources=()):
    return Entry(id=id_, question=question, answer=answer, category=category,
                 resources=tuple(Resource(url=u, title=t, kind=k, site=s) for u, t, k, s in resources))


def test_group_and_filter_entries():
    entries = [_entry("a", "What is ReLU?", "Activations"), _entry("b", "Why Adam?", "Optimisers", "Adaptive moments"),
               _entry("c", "What is GELU?", "Activations"), _entry("d", "Where is the syllabus?", "",
                                                                    resources=[("https://x.org/v", "Intro vidéo",
                                                                                "video", "x.org")])]
    groups = browse.group_by_category(entries)
    assert [(c, [e.id for e in es]) for c, es in groups] == [
        ("Activations", ["a", "c"]), ("Optimisers", ["b"]), (browse.UNCATEGORISED, ["d"])]
    assert [e.id for e in browse.filter_entries(entries, "  ")] == ["a", "b", "c", "d"]
    assert [e.id for e in browse.filter_entries(entries, "what")] == ["a", "c"]
    assert [e.id for e in browse.filter_entries(entries, "ADAPTIVE adam")] == ["b"]
    assert [e.id for e in browse.filter_entries(entries, "video")] == ["d"]  # kind, title with accents
    assert [e.id for e in browse.filter_entries(entries, "activations gelu")] == ["c"]
    assert browse.filter_entries(entries, "nothing-like-this") == []


def test_browse_html_escapes_and_links_entries():
    links = [("javascript:alert(1)", "bad link", "other", ""), ("https://ok.org", "<i>ok</i>", "paper", "ok.org")]
    entries = [_entry("x<1", "Why <script>alert(1)</script>?", "<b>Cat</b>", "A <img src=x onerror=alert(1)>", links)]
    out = card_markup.browse_html(browse.group_by_category(entries), expanded=True)
    assert "<script" not in out and "<img" not in out and "<b>Cat" not in out and "<i>ok" not in out
    assert 'href="javascript' not in out and '<a href="https://ok.org"' in out
    assert 'href="?entry=x%3C1"' in out and "<details" in out and " open>" in out


def test_example_questions_are_short_and_varied():
    entries = [_entry(str(i), f"Question number {i} about things?", f"C{i % 3}") for i in range(12)]
    entries.append(_entry("long", "x" * 200, "C9"))
    picked = browse.example_questions(entries, n=2)
    assert len(picked) == 2 and len(set(picked)) == 2 and all(len(q) <= 60 for q in picked)
    assert browse.example_questions([], n=2) == []
    assert browse.example_questions([_entry("a", "Only one?")], n=2) == ["Only one?"]


def test_built_at_and_model_names():
    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
    assert index_state.built_at_text("2026-01-02T09:00:00+00:00", now) == "2026-01-02 09:00 UTC (3 hours ago)"
    assert index_state.built_at_text("2026-01-02T11:59:30+00:00", now).endswith("(just now)")
    assert index_state.built_at_text("2025-12-20T12:00:00+00:00", now).endswith("(13 days ago)")
    assert index_state.built_at_text(None, now) == "unknown"
    assert index_state.short_model("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"


def test_source_changes_and_problem_pages(tmp_path):
    faq = tmp_path / "faq.md"
    faq.write_text("one", "utf-8")
    manifest = {"sources": [{"path": "faq.md", "sha256": file_sha256(faq)},
                            {"path": str(tmp_path / "gone.md"), "sha256": "0"}]}
    first, gone = index_state.source_changes(manifest, [tmp_path])
    assert not first["changed"] and not first["missing"] and gone["missing"]
    faq.write_text("two", "utf-8")
    assert index_state.source_changes(manifest, [tmp_path])[0]["changed"]
    report = [{"url": "https://a", "status": "fetched"},
              {"url": "javascript:x", "status": "failed", "reason": "HTTP 404", "title": "<b>t</b>"},
              {"url": "https://c", "status": "thin", "reason": "paywall"}]
    problems = index_state.problem_pages(report)
    assert [p["status"] for p in problems] == ["failed", "thin"]
    out = index_state.problem_pages_html(problems)
    assert "HTTP 404" in out and "&lt;b&gt;t&lt;/b&gt;" in out and 'href="javascript' not in out


def test_result_card_escapes_hostile_fields():
    result = Result(id="e\"1", question="Why <script>alert(1)</script>?", answer=XSS_TEXT, category="<i>c</i>",
                    score=0.8,
                    resources=[Resource(url="javascript:alert(1)", title=XSS_TEXT, kind="video", site="<s>"),
                               Resource(url="https://ok.example/p", title="Fine", kind="paper", site="ok.example")],
                    evidence=Evidence(source="resource", url="https://ok.example/p", text="momentum " + XSS_TEXT,
                                      highlights=[[0, 8]]))
    documents = {"https://ok.example/p": Document(url="https://ok.example/p", title=XSS_TEXT, site="ok")}
    out = card_markup.result_card_html(result, 1, 0.45, documents)
    assert "<script" not in out and "<img" not in out and "<i>c" not in out and "<s>" not in out
    assert 'href="javascript' not in out
    assert "<mark>momentum</mark>" in out and "From the linked page" in out
    assert 'data-entry="e&quot;1"' in out and 'href="?entry=e%221"' in out
    assert "Strong match" in out and "Video" in out and "Paper" in out


def test_result_card_marks_question_or_answer_in_place():
    q = Result(id="a", question="What is log loss?", answer="", category="", score=0.3, resources=[],
               evidence=Evidence(source="question", text="What is log loss?", highlights=[[8, 11], [12, 16]]))
    out = card_markup.result_card_html(q, 2, 0.45)
    assert "What is <mark>log</mark> <mark>loss</mark>?" in out and "Matched the FAQ question" in out
    a = replace(q, answer="Intro.\n\nLog loss is cross entropy.",
                evidence=Evidence(source="answer", text="Log loss is cross entropy.", highlights=[[0, 3]]))
    out = card_markup.result_card_html(a, 1, 0.45)
    assert "<mark>Log</mark> loss is cross entropy." in out and "Matched the FAQ answer" in out
    other = replace(q, evidence=Evidence(source="question", text="Something else entirely", highlights=[[0, 9]]))
    assert "<mark>Something</mark> else" in card_markup.result_card_html(other, 1, 0.45)


# == query encoder ===============================================================================
def test_app_searches_with_the_builds_onnx_export_and_never_imports_torch(app_index: AppIndex):
    """The build left an ONNX export in the cache folder; the app's searcher encodes queries with it, torch-free."""
    code = ("import sys; from pathlib import Path; from indexer.search import Searcher; "
            "import webapp.browse, webapp.cards, webapp.feedback, webapp.html, webapp.index_state; "
            "from indexer.onnx_encoder import load_query_encoder; "
            f"s = Searcher.open(Path({str(app_index.index_dir)!r}), encoder_for="
            f"lambda m: load_query_encoder(m, Path({str(app_index.cache_dir)!r}))); "
            "r = s.search('what is log loss'); "
            "print(type(s.embedder).__name__, r.results[0].id, sorted({'torch', 'transformers', "
            "'sentence_transformers', 'optimum'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["OnnxQueryEncoder", "what-is-cross-entropy-loss", "[]"], proc.stderr


# == feedback store ===============================================================================
def test_feedback_store_logs_queries_and_votes(tmp_path):
    store = FeedbackStore(tmp_path / "sub" / "app.sqlite")
    store.log_query("  what is   log loss ", top_id="loss", top_score=0.71, answered=True, n_results=5)
    store.log_response(SearchResponse(query="pizza", answered=False, results=[], threshold=0.2))
    store.record_vote("what is log loss", "loss", 1, rank=1)
    store.record_vote("what is log loss", "loss", -1, rank=1)
    store.record_vote("what is log loss", "other", -1, rank=2)
    with pytest.raises(ValueError):
        store.record_vote("q", "loss", 0)
    queries = store.queries()
    assert [(q["query"], q["top_id"], q["answered"], q["n_results"]) for q in queries] == [
        ("pizza", None, 0, 0), ("what is log loss", "loss", 1, 5)]
    assert queries[1]["top_score"] == pytest.approx(0.71)
    assert [(v["entry_id"], v["vote"], v["rank"]) for v in store.votes()] == [("other", -1, 2), ("loss", -1, 1),
                                                                                ("loss", 1, 1)]
    counts = store.vote_counts()
    assert (counts["loss"].up, counts["loss"].down, counts["other"].down) == (1, 1, 1)
    assert store.unanswered()[0]["query"] == "pizza"
    FeedbackStore(tmp_path / "sub" / "app.sqlite")  # reopening keeps the data
    assert len(store.queries()) == 2


def test_feedback_store_keeps_nothing_personal(tmp_path):
    FeedbackStore(tmp_path / "app.sqlite")
    db = sqlite3.connect(tmp_path / "app.sqlite")
    columns = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in ("queries", "feedback")}
    db.close()
    assert columns == {"queries": ["id", "ts", "query", "top_id", "top_score", "answered", "n_results"],
                       "feedback": ["id", "ts", "query", "entry_id", "vote", "rank"]}


def test_feedback_db_path_from_env(tmp_path, monkeypatch):
    monkeypatch.delenv("FAQ_APP_DB", raising=False)
    assert default_db_path(tmp_path) == tmp_path / "data" / "app.sqlite"
    monkeypatch.setenv("FAQ_APP_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path(tmp_path) == tmp_path / "x.sqlite"


# == the app, through AppTest ======================================================================
@pytest.fixture
def app_env(app_index: AppIndex, tmp_path, monkeypatch):
    """The app pointed at the shared test index and a fresh feedback database."""
    db = tmp_path / "app.sqlite"
    monkeypatch.setenv("FAQ_INDEX_DIR", str(app_index.index_dir))
    monkeypatch.setenv("FAQ_APP_DB", str(db))
    monkeypatch.setenv("FAQ_CACHE_DIR", str(app_index.cache_dir))
    monkeypatch.delenv("FAQ_ANSWER_THRESHOLD", raising=False)
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
    assert card_ids(at)[0] == by_question[examples[0].label]


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
    assert len(at.feedback) == len(cards(at))
    rows = FeedbackStore(app_env).queries()
    assert [(r["query"], r["top_id"], r["answered"]) for r in rows] == [
        ("what is log loss", "what-is-cross-entropy-loss", 1)]
    assert rows[0]["top_score"] > 0 and rows[0]["n_results"] == len(cards(at))
    at.run()  # a rerun (e.g. a feedback click) is not a new query
    assert len(FeedbackStore(app_env).queries()) == 1
    search(at, "striped momentum")
    assert len(FeedbackStore(app_env).queries()) == 2


def test_evidence_from_a_page_links_to_its_source(app_env, app_index):
    at = search(new_app(), "alternates the momentum coefficient every other mini-batch")
    assert_no_trace(at)
    assert card_ids(at)[0] == "what-is-striped-momentum"
    top = cards(at)[0]
    assert "From the linked page" in top and f'href="{app_index.base_url}/striped-momentum.html"' in top
    assert "<mark>alternates</mark>" in top


def test_no_answer_says_so_and_still_offers_the_nearest_entries(app_env):
    at = search(new_app(), "how do I bake sourdough bread at home")
    assert_no_trace(at)
    assert any("no good answer" in w.value for w in at.warning)
    assert len(cards(at)) >= 3
    assert FeedbackStore(app_env).queries()[0]["answered"] == 0


def test_feedback_is_stored_with_the_query(app_env):
    at = search(new_app(), "what is log loss")
    at.feedback[0].set_value(1).run()
    assert_no_trace(at)
    votes = FeedbackStore(app_env).votes()
    assert [(v["query"], v["entry_id"], v["vote"], v["rank"]) for v in votes] == [
        ("what is log loss", "what-is-cross-entropy-loss", 1, 1)]
    at.feedback[1].set_value(0).run()
    votes = FeedbackStore(app_env).votes()
    assert (votes[0]["vote"], votes[0]["rank"], votes[0]["entry_id"]) == (-1, 2, card_ids(at)[1])
    assert any("Thanks" in t.value for t in at.toast)


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
    assert "Striped momentum notes" in page and 'href="?entry=what-is-striped-momentum"' in page
    at.text_input(key="filter").input("momentum").run()
    page = "".join(h.value for h in at.main.html)
    assert page.count('class="faq-item"') == 1 and " open>" in page
    assert any("1 of 5" in c.value for c in at.caption)
    at.text_input(key="filter").input("zzzz nothing").run()
    assert any("No FAQ entry" in i.value for i in at.info)
    deep = new_app(view="Browse", filter="pytorch")
    assert "".join(h.value for h in deep.main.html).count('class="faq-item"') == 1


def test_sidebar_shows_index_status_and_failed_pages(app_env, app_index):
    at = new_app()
    metrics = {m.label: m.value for m in at.sidebar.metric}
    assert metrics["Entries"] == "5" and metrics["Links"] == "4"
    assert metrics["Pages fetched"] == "2" and metrics["Failed"] == "2"
    side = " ".join(texts(at)).replace("\\", "")  # Markdown escapes aside
    assert "all-MiniLM-L6-v2" in side and "UTC" in side
    failed = [h.value for h in at.sidebar.html if "faq-pp" in h.value][0]
    assert failed.count("HTTP 404") == 2 and "gone-missing.html" in failed
    assert not at.sidebar.warning  # the FAQ is unchanged
    assert "python -m indexer build" in [c.value for c in at.sidebar.code]
    original = app_index.faq.read_text("utf-8")
    try:
        app_index.faq.write_text(original + "\n**Q: A new question?**\n\nNew.\n", "utf-8")
        at = new_app()
        assert any("changed since this index was built" in w.value for w in at.sidebar.warning)
    finally:
        app_index.faq.write_text(original, "utf-8")


def test_hostile_page_faq_and_query_are_shown_as_text(app_env):
    at = search(new_app(), "striped momentum")
    assert_no_trace(at)
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
    assert at.button(key="build_main")
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


def test_rebuild_button_swaps_in_the_new_index(tmp_path, monkeypatch, app_index):
    faq = tmp_path / "faq.md"
    faq.write_text("# Regularisation\n\n**Q: What is dropout?**\n\nDropout zeroes random activations.\n", "utf-8")
    index_dir, cache_dir = tmp_path / "index", tmp_path / "cache"
    build(faq, index_dir, cache_dir, offline=True)
    monkeypatch.setenv("FAQ_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("FAQ_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("FAQ_APP_DB", str(tmp_path / "app.sqlite"))
    at = search(new_app(), "batch normalisation layers")
    assert card_ids(at) == ["what-is-dropout"]
    faq.write_text(faq.read_text("utf-8") + "\n**Q: What is batch normalisation?**\n\nIt normalises layer inputs.\n",
                   "utf-8")
    at.run()
    assert any("changed since" in w.value for w in at.sidebar.warning)
    at.sidebar.checkbox(key="offline_build").check()
    at.sidebar.button(key="rebuild").click().run()
    assert_no_trace(at)
    assert any("Index rebuilt" in s.value for s in at.sidebar.success)
    assert not at.sidebar.warning
    assert card_ids(at)[0] == "what-is-batch-normalisation"  # the same query, now on the new build
    assert {m.label: m.value for m in at.sidebar.metric}["Entries"] == "2"


def test_a_rebuild_elsewhere_is_picked_up_on_the_next_run(tmp_path, monkeypatch):
    faq = tmp_path / "faq.md"
    faq.write_text("**Q: What is dropout?**\n\nDropout zeroes random activations.\n", "utf-8")
    index_dir, cache_dir = tmp_path / "index", tmp_path / "cache"
    build(faq, index_dir, cache_dir, offline=True)
    monkeypatch.setenv("FAQ_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("FAQ_APP_DB", str(tmp_path / "app.sqlite"))
    at = search(new_app(), "weight decay")
    assert card_ids(at) == ["what-is-dropout"]
    faq.write_text(faq.read_text("utf-8") + "\n**Q: What is weight decay?**\n\nAn L2 penalty on weights.\n", "utf-8")
    build(faq, index_dir, cache_dir, offline=True)  # e.g. `python -m indexer build` in a terminal
    at.run()
    assert card_ids(at)[0] == "what-is-weight-decay"


def test_result_card_spreads_entry_profile_marks_over_its_fields():
    question, answer, title = "What is log loss?", "It is cross entropy.", "Log loss explained"
    profile = f"{question} {answer} {title}"
    spans = [[profile.index("log"), profile.index("log") + 3], [profile.index("cross"), profile.index("cross") + 5],
             [profile.index("Log"), profile.index("Log") + 3]]
    result = Result(id="a", question=question, answer=answer, category="", score=0.6,
                    resources=[Resource(url="https://x.org/a", title=title, kind="article", site="x.org")],
                    evidence=Evidence(source="question", text=profile, highlights=spans))
    out = card_markup.result_card_html(result, 1, 0.45)
    assert "What is <mark>log</mark> loss?" in out and "It is <mark>cross</mark> entropy." in out
    assert ">" + "<mark>Log</mark> loss explained</a>" in out
    assert "faq-ev-text" not in out and "Matched the FAQ entry" in out


def test_result_card_marks_a_matching_link_title_in_the_link_list():
    title = "Gradient descent, how neural networks learn"
    result = Result(id="gd", question="What is Gradient Descent?", answer="", category="", score=0.5,
                    resources=[Resource(url="https://youtube.com/watch?v=1", title=title, kind="video",
                                        site="youtube.com")],
                    evidence=Evidence(source="title", url="https://youtube.com/watch?v=1", text=title,
                                      highlights=[[0, 8]]))
    out = card_markup.result_card_html(result, 1, 0.45)
    assert "<mark>Gradient</mark> descent, how neural networks learn</a>" in out
    assert "Matched a linked page&#x27;s title" in out and "faq-ev" not in out
    other = replace(result, evidence=replace(result.evidence, url="https://elsewhere.org/x"))
    assert "Matched the title of a linked page" in card_markup.result_card_html(other, 1, 0.45)
