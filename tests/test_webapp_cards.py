"""webapp/cards.py: relevance and kind labels; result, entry and browse cards, every field escaped."""

from __future__ import annotations

from dataclasses import replace

from app_fixtures import XSS_TEXT
from indexer.records import Document, Entry, Resource
from indexer.search import Evidence, Result
from webapp import browse, cards


def test_relevance_reads_the_confidence_in_words():
    strong = cards.relevance(0.9, 0.2)
    assert (strong.label, strong.level, strong.percent) == ("Strong match", "strong", 90) and strong.meaning
    assert cards.relevance(0.6, 0.2).level == "good"
    assert cards.relevance(0.3, 0.2).level == "weak"  # above the answer threshold, below even odds
    weak = cards.relevance(0.1, 0.2)
    assert (weak.label, weak.level, weak.percent) == ("Weak match", "low", 10) and "not" in weak.meaning
    # A calibrated threshold above even odds: nothing between it and "good" reads as "possible".
    assert cards.relevance(0.7, 0.65).level == "good" and cards.relevance(0.6, 0.65).level == "low"
    assert cards.relevance(-0.3, 0.45).percent == 0 and cards.relevance(1.7, 0.45).percent == 100
    assert cards.relevance(float("nan"), 0.45).percent == 0 and cards.relevance("x", 0.45).level == "low"


def test_relevance_html_explains_the_label_in_words_and_draws_the_confidence():
    out = cards.relevance_html(cards.relevance(0.62, 0.2))
    assert ">Good match<" in out and 'style="width:62%"' in out and "very likely answers" in out
    assert "very likely" not in cards.relevance_html(cards.relevance(0.62, 0.2), explain=False)


def test_related_html_is_one_escaped_line_per_result_linking_back_to_the_search():
    results = [Result(id=f"e{i}", question=f"Question <{i}>?", answer="", category="", score=s, resources=[],
                      evidence=Evidence(source="question", text="", highlights=[]))
               for i, s in enumerate((0.7, 0.05))]
    out = cards.related_html(results, 0.2, query_key="k1", query="a&b")
    assert out.count("<li ") == 2 and 'data-q="k1"' in out
    assert "Question &lt;0&gt;?" in out and "<0>" not in out
    assert 'href="?entry=e0&amp;q=a%26b"' in out
    assert out.index("Good match") < out.index("Weak match")
    assert cards.related_html([], 0.2) == ""


def test_kind_badges():
    assert [cards.kind_label(k) for k in ("article", "video", "qa", "paper", "book", "other", "weird")] == \
        ["Article", "Video", "Q&A", "Paper", "Book", "Link", "Link"]
    assert cards.kind_badge_html("qa") == '<span class="faq-kind faq-kind-qa">Q&amp;A</span>'
    assert 'faq-kind-other' in cards.kind_badge_html('"><script>')


def test_browse_html_escapes_and_links_entries():
    links = (Resource(url="javascript:alert(1)", title="bad link", kind="other", site=""),
             Resource(url="https://ok.org", title="<i>ok</i>", kind="paper", site="ok.org"))
    entries = [Entry(id="x<1", question="Why <script>alert(1)</script>?", category="<b>Cat</b>",
                     answer="A <img src=x onerror=alert(1)>", resources=links)]
    out = cards.browse_html(browse.group_by_category(entries), expanded=True)
    assert "<script" not in out and "<img" not in out and "<b>Cat" not in out and "<i>ok" not in out
    assert 'href="javascript' not in out and '<a href="https://ok.org"' in out
    assert 'href="?entry=x%3C1"' in out and "<details" in out and " open>" in out


def test_answer_card_escapes_hostile_fields():
    result = Result(id="e\"1", question="Why <script>alert(1)</script>?", answer=XSS_TEXT, category="<i>c</i>",
                    score=0.8,
                    resources=[Resource(url="javascript:alert(1)", title=XSS_TEXT, kind="video", site="<s>"),
                               Resource(url="https://ok.example/p", title="Fine", kind="paper", site="ok.example")],
                    evidence=Evidence(source="resource", url="https://ok.example/p", text="momentum " + XSS_TEXT,
                                      highlights=[[0, 8]]))
    documents = {"https://ok.example/p": Document(url="https://ok.example/p", title=XSS_TEXT, site="ok")}
    out = cards.answer_card_html(result, 0.45, documents, query='log <loss>')
    assert "<script" not in out and "<img" not in out and "<i>c" not in out and "<s>" not in out
    assert 'href="javascript' not in out
    assert "<mark>momentum</mark>" in out and "From “Fine”" in out  # the page under the FAQ's name for it
    assert 'href="https://ok.example/p#:~:text=' not in out  # no plain words to quote: the page itself
    assert 'data-entry="e&quot;1"' in out and 'href="?entry=e%221&amp;q=log%20%3Closs%3E"' in out
    assert "Strong match" in out and "Video" in out and "Paper" in out


def test_answer_card_marks_question_or_answer_in_place():
    q = Result(id="a", question="What is log loss?", answer="", category="", score=0.3, resources=[],
               evidence=Evidence(source="question", text="What is log loss?", highlights=[[8, 11], [12, 16]]))
    out = cards.answer_card_html(q, 0.45)
    assert "What is <mark>log</mark> <mark>loss</mark>?" in out and "Matched the FAQ question" in out
    a = replace(q, answer="Intro.\n\nLog loss is cross entropy.",
                evidence=Evidence(source="answer", text="Log loss is cross entropy.", highlights=[[0, 3]]))
    out = cards.answer_card_html(a, 0.45)
    assert "<mark>Log</mark> loss is cross entropy." in out and "Matched the FAQ answer" in out
    other = replace(q, evidence=Evidence(source="question", text="Something else entirely", highlights=[[0, 9]]))
    assert "<mark>Something</mark> else" in cards.answer_card_html(other, 0.45)


def test_answer_card_spreads_entry_profile_marks_over_its_fields():
    question, answer, title = "What is log loss?", "It is cross entropy.", "Log loss explained"
    profile = f"{question} {answer} {title}"
    spans = [[profile.index("log"), profile.index("log") + 3], [profile.index("cross"), profile.index("cross") + 5],
             [profile.index("Log"), profile.index("Log") + 3]]
    result = Result(id="a", question=question, answer=answer, category="", score=0.6,
                    resources=[Resource(url="https://x.org/a", title=title, kind="article", site="x.org")],
                    evidence=Evidence(source="question", text=profile, highlights=spans))
    out = cards.answer_card_html(result, 0.45)
    assert "What is <mark>log</mark> loss?" in out and "It is <mark>cross</mark> entropy." in out
    assert ">" + "<mark>Log</mark> loss explained</a>" in out
    assert "faq-ev-text" not in out and "Matched the FAQ entry" in out


def test_answer_card_marks_a_matching_link_title_in_the_link_list():
    title = "Gradient descent, how neural networks learn"
    result = Result(id="gd", question="What is Gradient Descent?", answer="", category="", score=0.5,
                    resources=[Resource(url="https://youtube.com/watch?v=1", title=title, kind="video",
                                        site="youtube.com")],
                    evidence=Evidence(source="title", url="https://youtube.com/watch?v=1", text=title,
                                      highlights=[[0, 8]]))
    out = cards.answer_card_html(result, 0.45)
    assert "<mark>Gradient</mark> descent, how neural networks learn</a>" in out
    assert "Matched a linked page&#x27;s title" in out and "faq-ev" not in out
    other = replace(result, evidence=replace(result.evidence, url="https://elsewhere.org/x"))
    assert "Matched the title of a linked page" in cards.answer_card_html(other, 0.45)


def test_a_passage_of_a_gone_page_says_it_is_from_the_last_copy():
    url = "https://gone.example/p"
    result = Result(id="e", question="What is momentum?", answer="", category="", score=0.8,
                    resources=[Resource(url=url, title="Momentum notes", kind="article", site="gone.example")],
                    evidence=Evidence(source="resource", url=url, text="momentum keeps a running average of steps",
                                      highlights=[[0, 8]]))
    fresh = cards.answer_card_html(result, 0.2)
    assert "the page is gone" not in fresh and "#:~:text=" in fresh
    stale = cards.answer_card_html(result, 0.2, dead={url})
    assert "from the last copy: the page is gone" in stale and "dead link" in stale
    assert "#:~:text=" not in stale  # no "read on the page": there is no page
