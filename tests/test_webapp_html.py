"""webapp/html.py: escaping, http(s)-only links, highlighting, Markdown escaping."""

from __future__ import annotations

import pytest

from app_fixtures import XSS_TEXT
from webapp import html


@pytest.mark.parametrize("url", ["http://example.com", "https://example.com/a?b=1&c=<2>", "HTTPS://EXAMPLE.COM/x",
                                 "http://127.0.0.1:8000/page.html"])
def test_safe_url_accepts_http_and_https(url):
    assert html.safe_url(url) == url


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
                                 "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
                                 "file:///etc/passwd", "//evil.example/x", "/relative", "http://", "https:///x",
                                 "java\nscript:alert(1)", "http://exa mple.com", "https:\\\\evil.example", "", None,
                                 "http://ex\x00ample.com", 42])
def test_safe_url_rejects_everything_else(url):
    assert html.safe_url(url) is None


def test_link_html_links_only_http_and_escapes_text():
    good = html.link_html("https://example.com/?a=1&b=\"2\"", "<b>Title</b>")
    assert good.startswith('<a href="https://example.com/?a=1&amp;b=&quot;2&quot;"')
    assert "&lt;b&gt;Title&lt;/b&gt;" in good and "<b>" not in good
    assert 'rel="noopener noreferrer nofollow"' in good
    bad = html.link_html("javascript:alert(1)", "click <me>")
    assert "<a" not in bad and "href" not in bad and "click &lt;me&gt;" in bad


def test_highlight_html_escapes_every_piece_and_marks_spans():
    text = "see " + XSS_TEXT + " and momentum"
    start = text.index("momentum")
    out = html.highlight_html(text, [[start, start + 8], [0, 3]])
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in out
    assert out.count("<mark>") == 2 and "<mark>momentum</mark>" in out and out.startswith("<mark>see</mark>")
    # A mark over the hostile text is escaped inside the mark too.
    tag = text.index("<script>")
    assert "<mark>&lt;script&gt;</mark>" in html.highlight_html(text, [[tag, tag + 8]])


def test_highlight_html_tolerates_bad_spans_and_cuts_long_text():
    assert html.highlight_html("abc", [[2, 99], [-5, 1], [2, 1], ["x", 3], [1]]) == "<mark>a</mark>b<mark>c</mark>"
    assert html.highlight_html("abcdef", [[0, 3], [2, 5]]) == "<mark>abcde</mark>f"
    long = ("word " * 400) + "target " + ("word " * 400)
    pos = long.index("target")
    out = html.highlight_html(long, [[pos, pos + 6]], max_chars=200)
    assert "<mark>target</mark>" in out and out.startswith("… ") and out.endswith(" …")
    assert len(out) < 260


def test_backticked_code_is_shown_as_code_and_stays_escaped():
    """Course FAQs quote commands and error messages in backticks; they are shown as code, their text
    escaped, a highlighted word inside kept, and a mark that would cross a backtick leaves it literal."""
    text = "`docker: Error <b>` then run `docker ps`"
    assert html.highlight_html(text, [[1, 7], [37, 39]]) == (
        "<code><mark>docker</mark>: Error &lt;b&gt;</code> then run <code>docker <mark>ps</mark></code>")
    assert html.highlight_html("don`t stop") == "don`t stop"  # one backtick is not code
    assert html.highlight_html("`a <mark>` b") == "<code>a &lt;mark&gt;</code> b"  # markup in the text is text
    assert "<code>" not in html.highlight_html("`half", [[0, 3]]) and "<code>" not in html.text_html("`a\nb`")
    assert html.highlight_html("`alloc`ated", [[3, 9]]) == "`al<mark>loc`at</mark>ed"
    assert html.text_html("Run `pip install x`.") == "<p>Run <code>pip install x</code>.</p>"


def test_text_html_paragraphs_links_and_escaping():
    out = html.text_html("First <b>para</b> see https://example.com/x.\n\nSecond javascript:alert(1) line")
    assert out.count("<p>") == 2
    assert '<a href="https://example.com/x"' in out and "x.</a>" not in out  # the full stop is not in the link
    assert "&lt;b&gt;para&lt;/b&gt;" in out and "javascript:alert(1)" in out and 'href="javascript' not in out


def test_md_escape_neutralises_markdown():
    out = html.md_escape("[click](javascript:alert(1)) **bold** <img src=x>")
    assert "\\[click\\]\\(javascript\\:alert\\(1\\)\\)" in out and "\\*\\*bold\\*\\*" in out and "\\<img" in out


def test_text_fragment_url_quotes_the_ends_of_the_passage():
    passage = ("The bias lets a neuron fire even when all of its inputs are zero. A weight alone cannot do "
               "that, since zero times anything is zero.")
    assert html.text_fragment_url("https://ex.org/a", passage) == (
        "https://ex.org/a#:~:text=The%20bias%20lets%20a,times%20anything%20is%20zero")
    # A short passage is quoted whole; an existing fragment is kept before the text directive.
    assert html.text_fragment_url("https://ex.org/a#sec", "Cross-entropy, or log-loss, measures the error.") == (
        "https://ex.org/a#sec:~:text=measures%20the%20error")


def test_text_fragment_url_encodes_directive_syntax_and_skips_formulas():
    url = html.text_fragment_url("https://ex.org/a", "well-known trade-off words & more words here now")
    directive = url.split("#:~:text=")[1]
    assert "-" not in directive.replace("%2D", "") and "&" not in directive
    assert directive.startswith("well%2Dknown%20trade%2Doff%20words")
    # Symbols and one-letter variables next to a formula are never quoted (pages render math differently).
    url = html.text_fragment_url("https://ex.org/a", "the rate ∂ C / ∂ w of change tells us how fast the cost moves")
    assert url.split("#:~:text=")[1].startswith("of%20change")
    assert html.text_fragment_url("https://ex.org/a", "∂ C / ∂ w = δ") is None
    assert html.text_fragment_url("javascript:alert(1)", "plenty of plain words here") is None
    assert html.text_fragment_url("https://ex.org/a", "") is None
