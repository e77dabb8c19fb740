"""Tidy a page's extracted text: drop page furniture, make TeX math readable.

Trafilatura keeps what sits inside an article's body, and that includes lines no
learner wants quoted back as evidence: photo credits ("Photo by ... on Unsplash"),
"Originally posted on ...", share and follow prompts, cookie notices, and markup
a script-built page leaves behind (`<Interactive Component=... />`). Pages about
maths write formulas in TeX (`$\\partial C / \\partial w$`), which reads as noise in
a passage. Both are fixed once, at extraction, so that what is embedded, matched,
highlighted and shown is the same clean text.

Only short lines are ever dropped, and only on patterns that never open a real
sentence; a `$` that is not TeX (a price, a shell prompt) is left alone.
"""

from __future__ import annotations

import logging
import re

from pylatexenc.latex2text import LatexNodes2Text

log = logging.getLogger(__name__)

#: A line longer than this is prose, never furniture.
MAX_FURNITURE_CHARS = 160
#: Credits and prompts are a few words; a longer line opening the same way is a sentence.
MAX_FURNITURE_WORDS = 10

_FURNITURE = [
    # Credits: "Photo by G. Crescoli on Unsplash", "Lion photo by Kevin Pluck", "Image credit: NASA".
    re.compile(r"^(\w+\s+){0,2}(photo|image|picture|illustration|graphic|cover|header)(\s+image)?s?"
               r"(\s+(by|from|via|courtesy\s+of)\b|\s*(credit|source)s?\s*:)", re.IGNORECASE),
    re.compile(r"^(this\s+(article|post|story)\s+(was\s+)?)?originally\s+(posted|published|appeared)\b",
               re.IGNORECASE),
    # Share / follow / newsletter prompts.
    re.compile(r"^(share(\s+this(\s+(article|post|story|page))?)?(\s+on\s+\w+)?|tweet(\s+this)?"
               r"|follow\s+(us|me)(\s+on\s+\w+)?|click\s+to\s+share\b.*"
               r"|(sign\s+up|subscribe)(\s+(to|for))?\s+(our|my|the)\s+newsletter\b.*)\s*[.!:]?$", re.IGNORECASE),
]
# Furniture at any word count: cookie notices run to a sentence or two, a stray tag carries attributes.
_NOTICES = [
    # Cookie notices.
    re.compile(r"\b(we|this\s+(site|website))\s+uses?\s+cookies\b|\b(accept|reject)\s+(all\s+)?cookies\b"
               r"|\bcookie\s+(policy|settings|preferences)\b", re.IGNORECASE),
    # Markup left in the text: a component or tag alone on its line.
    re.compile(r"^<[A-Z][\w.]*\b.*/>$|^</?[a-z][\w-]*(\s+[\w:-]+(=(\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>$"),
]

# TeX math: $$...$$, \[...\], \(...\), $...$ (single-line, not empty, no space just inside the dollars).
_MATH = re.compile(r"\$\$(?P<display>.+?)\$\$|\\\[(?P<bracket>.+?)\\\]|\\\((?P<paren>.+?)\\\)"
                   r"|(?<![\\$\w])\$(?P<inline>[^\s$](?:[^$\n]*?[^\s$\\])?)\$(?![\w$])", re.DOTALL)
# What makes a $...$ span TeX rather than two prices: a command, a sub/superscript, or a lone symbol.
_TEX_SIGNS = re.compile(r"\\[A-Za-z]+|[\^_]|^[A-Za-z]{1,2}'?$")
_latex = LatexNodes2Text(math_mode="text", strict_latex_spaces="based-on-source")


def is_furniture(line: str) -> bool:
    """True for a short line that is page furniture (credit, share prompt, cookie notice, stray markup)."""
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_FURNITURE_CHARS:
        return False
    if any(p.search(stripped) for p in _NOTICES):
        return True
    return len(stripped.split()) <= MAX_FURNITURE_WORDS and any(p.search(stripped) for p in _FURNITURE)


def drop_furniture(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not is_furniture(line))


def _readable(tex: str) -> str:
    try:
        text = _latex.latex_to_text(tex)
    except Exception as exc:  # pylatexenc is lenient, but never let one formula fail a page
        log.debug("TeX left as written (%s): %r", exc, tex[:80])
        return tex
    return " ".join(text.split())


def readable_math(text: str) -> str:
    """TeX formulas as Unicode text: `$\\partial C / \\partial w$` -> `∂C / ∂w`."""
    def convert(m: re.Match[str]) -> str:
        inline = m.group("inline")
        if inline is not None and not _TEX_SIGNS.search(inline):
            return m.group(0)
        return _readable(next(g for g in m.groups() if g is not None))

    return _MATH.sub(convert, text) if ("$" in text or "\\" in text) else text


def clean_text(text: str) -> str:
    """Extracted page text without furniture lines, its math readable."""
    return readable_math(drop_furniture(text))
