"""Per-entry evidence for one query: what each kind of unit of an entry says about the match.

Search scores units (question, entry profile, answer passages, link titles, page
passages) with two retrievers, a dense cosine and a BM25 share; an entry is
answered by its units together. This module turns the two unit arrays into one
row of named features per FAQ entry, the input of every entry-level fusion
(indexer/fusion.py) and of the learned ranker (indexer/ranker.py).

The features are chosen to mean the same thing in any FAQ, whatever its size
or how much page text it has, so that weights learned on some FAQs hold on
another:

- raw dense cosines per unit kind (one model, one scale) and BM25 as a share of
  the best score the query's terms can reach (in [0, 1], indexer/lexical.py);
- the best direct cosine measured from the FAQ's own centre (`Centroid`) instead of
  the origin: a FAQ's texts share their topic's direction ("neural net" in a deep
  learning FAQ), which raw cosines count for every entry and most for long, generic
  questions; centred, what remains is what tells the entries apart;
- page evidence both at its best passage and as the mean of its best three, so
  one lucky passage of a broad page (a book chapter) counts less than a page
  whose passages keep matching;
- how far the entry's best passage beats the entry's own text (`page_lift`, 0 without
  pages): a hinge, since page text that only restates what the question already matches
  should add nothing (a broad page matches everything a little), while a passage that
  matches the query clearly better than the entry's own words is what page text is for;
  read linearly, the two page columns weighed a passage far below a question. Read
  by no shipped ranker: a ranker with it lost on blind families (docs/page-lift.md);
- how broad the entry's pages are: the number of passages (the best of many
  passages of a book chapter is high for many queries) and how much the best
  passage is about its own entry (its cosine to the entry's own text, computed
  once per index: `passage_focus`);
- where the query stands among the candidates: z-scores, the gap to the best
  entry and the lead over the best other entry (the margin an answer needs);
- the lexical lead as far as the dense side backs it (`lead_backed`: the positive
  lead times the entry's best positive cosine): in a small FAQ a word that only
  one entry holds gives that entry a wide BM25 lead whether or not it is about the
  query; read alone, that lead answered such queries with confidence (out-of-scope
  "overfiting" and "self attention" on the shipped FAQ: 0.89 and 0.47, backed 0.60
  and 0.25, dev halves, leave-one-set-out);
- how much text the FAQ's typical entry has (`faq_words`: the log of the median words of an
  entry's question, written answer and link titles), the same for every entry of an index: a
  paraphrase of a bare eight-word question matches it far less well than one of an entry with a
  written answer, so one answer probability refused a quarter of the answerable questions of a FAQ
  of bare questions and hardly any of a FAQ with answers (docs/faq-shift.md). Being the same for
  every candidate of a query, it moves "none" against all of them and changes no ranking;
- how long the query is (`query_words`: the log of its searched words, held within
  QUERY_WORDS_SPAN), the same for every candidate of a query: a true match of a long question
  reaches lower cosines than one of a short question, as the question's other words pull its
  vector away from the entry's, so a long answerable question looked like an out-of-scope one.
  Like `faq_words`, it moves "none" against every candidate and changes no ranking. No shipped
  ranker reads it: the eleventh blind look, on families whose out-of-scope queries are as long as
  their answerable ones, kept the file without it (docs/query-length.md);
- how much of the query an entry's own text holds word for word (`phrase`: runs
  of three terms in order, indexer/lexical.py `phrase_share`), the evidence of
  words pasted from an answer, which BM25's bag of words cannot tell from a
  chance overlap and the dense side, over a long passage, barely sees.

A kind an entry lacks (no written answer, no fetched page) takes the entry's
best direct match instead, so that missing page text neither helps nor hurts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np

KINDS = ("question", "entry", "answer", "title", "passage")
DIRECT_KINDS = ("question", "entry", "answer", "title")
#: How many of an entry's best passages are averaged for `d_pages`.
TOP_PASSAGES = 3
#: `faq_words` holds the median words per entry within this span: the FAQs its weight was fitted on have
#: 9 to 383, and a weight read linearly beyond them would be an extrapolation.
FAQ_WORDS_SPAN = (8, 400)
#: `query_words` holds the query's searched words within this span: the dev queries its weight was fitted on
#: have 1 to about 30, and a weight read linearly beyond them (a pasted page) would be an extrapolation.
QUERY_WORDS_SPAN = (1, 24)

FEATURES = (
    "d_question", "d_entry", "d_answer", "d_title", "d_passage", "d_pages", "d_best", "c_direct",
    "l_direct", "l_passage", "l_best",
    "z_dense", "z_lexical", "gap_dense", "gap_lexical", "lead_dense", "lead_lexical", "lead_backed",
    "has_pages", "page_size", "focus_best", "phrase", "page_lift", "faq_words",
    "query_words",
)


@dataclass(frozen=True)
class Layout:
    """Which entry and kind each unit belongs to: fixed per index, built once per searcher."""

    unit_entry: np.ndarray
    unit_kind: np.ndarray
    n_entries: int

    @classmethod
    def of(cls, unit_entry: Sequence[int], unit_kinds: Sequence[str], n_entries: int) -> "Layout":
        code = {k: i for i, k in enumerate(KINDS)}
        unknown = sorted(set(unit_kinds) - set(code))
        if unknown:
            raise ValueError(f"unknown unit kinds {unknown} (known: {', '.join(KINDS)})")
        return cls(np.asarray(unit_entry, dtype=np.int64),
                   np.array([code[k] for k in unit_kinds], dtype=np.int8), int(n_entries))

    def kind_mask(self, *kinds: str) -> np.ndarray:
        wanted = np.zeros(len(KINDS), dtype=bool)  # a table lookup: np.isin costs more on every query
        wanted[[KINDS.index(k) for k in kinds]] = True
        return wanted[self.unit_kind]

    @cached_property
    def passages_per_entry(self) -> np.ndarray:
        return np.bincount(self.unit_entry[self.kind_mask("passage")], minlength=self.n_entries).astype(np.float64)

    def subset(self, units: np.ndarray) -> "Layout":
        """The layout of some units only (same entries), for work that only they take part in."""
        return Layout(self.unit_entry[units], self.unit_kind[units], self.n_entries)


def entry_words(entries: Sequence[Any]) -> np.ndarray:
    """Words of each entry's own text: its question, written answer and link titles (not page text)."""
    return np.array([len(e.question.split()) + len(e.answer.split()) + sum(len(r.title.split()) for r in e.resources)
                     for e in entries], dtype=np.int64)


def _log_held(count: float, span: tuple[int, int]) -> float:
    """log(1 + count), the count held within `span`: a weight read linearly stays within what it was fitted on."""
    lo, hi = span
    return math.log1p(min(max(count, lo), hi))


def faq_words_of(words: np.ndarray) -> float:
    """`faq_words` of an index from its `entry_words`: log(1 + the median, held within FAQ_WORDS_SPAN)."""
    return _log_held(float(np.median(words)) if len(words) else float(FAQ_WORDS_SPAN[0]), FAQ_WORDS_SPAN)


def query_words_of(words: int) -> float:
    """`query_words` of a query with `words` searched words: log(1 + words, held within QUERY_WORDS_SPAN)."""
    return _log_held(words, QUERY_WORDS_SPAN)


def _zscore(x: np.ndarray) -> np.ndarray:
    # np.std's own arithmetic (pairwise sums, population variance) without its per-call overhead
    deviation = x - np.add.reduce(x) / len(x)
    sd = math.sqrt(np.add.reduce(deviation * deviation) / len(x))
    return deviation / sd if sd > 1e-9 else np.zeros_like(x)


def _lead(x: np.ndarray) -> np.ndarray:
    """Each value minus the best value among the others (positive only for a clear leader)."""
    if len(x) < 2:
        return np.zeros_like(x)
    top2 = np.partition(x, len(x) - 2)[-2:]
    best, second = top2.max(), top2.min()
    return x - np.where(x >= best, second, best)


@dataclass
class EntryFeatures:
    """One row of FEATURES per candidate entry of one query."""

    #: Entry positions of the rows (the candidates: entries with a finite dense score or BM25 > 0).
    entries: np.ndarray
    matrix: np.ndarray

    def column(self, name: str) -> np.ndarray:
        return self.matrix[:, FEATURES.index(name)]

    def scatter(self, values: np.ndarray, n_entries: int) -> np.ndarray:
        """Per-candidate values laid out over all entries (-inf for non-candidates)."""
        out = np.full(n_entries, -np.inf, dtype=np.float64)
        out[self.entries] = values
        return out


def passage_focus(vectors: np.ndarray, layout: Layout) -> np.ndarray:
    """Per unit: a passage's cosine to its entry's profile (question + answer + link titles); 1 elsewhere.

    A passage of a focused page sits close to its entry; one from a broad page (a whole
    chapter linked for one question) sits far from it.
    """
    focus = np.ones(len(layout.unit_entry), dtype=np.float64)
    profile = np.flatnonzero(layout.kind_mask("entry"))
    if not len(profile):
        return focus
    by_entry = np.full(layout.n_entries, -1, dtype=np.int64)
    by_entry[layout.unit_entry[profile]] = profile
    passages = np.flatnonzero(layout.kind_mask("passage") & (by_entry[layout.unit_entry] >= 0))
    focus[passages] = np.einsum("ij,ij->i", vectors[passages], vectors[by_entry[layout.unit_entry[passages]]])
    return focus


@dataclass(frozen=True)
class Centroid:
    """The mean of the FAQ's own unit vectors (questions, profiles, answers, link titles; not page
    passages, so that fetching pages does not move it) and each unit's dot product with it.

    With these, the cosine between a query and a unit measured from the centre follows from their
    plain cosine alone (all vectors have length 1), so a search never reads a vector for it:
    (q.u - q.m - u.m + m.m) / (|q - m| |u - m|), with |x - m|^2 = 1 - 2 x.m + m.m.
    """

    vector: np.ndarray
    unit_dot: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray, layout: Layout) -> "Centroid":
        vectors = np.asarray(vectors, dtype=np.float32)
        direct = np.flatnonzero(~layout.kind_mask("passage"))
        if not len(direct):
            return cls(np.zeros(vectors.shape[1] if vectors.ndim == 2 else 0, np.float32),
                       np.zeros(len(vectors), np.float32))
        centre = vectors[direct].mean(axis=0, dtype=np.float64).astype(np.float32)
        return cls(centre, vectors @ centre)

    def cosines(self, dense: np.ndarray, units: np.ndarray, query: np.ndarray) -> np.ndarray:
        """The centred cosine of each of `units` given its plain cosine `dense` (-inf stays -inf)."""
        mm = float(self.vector @ self.vector)
        qm = float(np.asarray(query, dtype=np.float32) @ self.vector)
        um = self.unit_dot[units].astype(np.float64)
        norms = np.sqrt(np.maximum(1 - 2 * qm + mm, 1e-12) * np.maximum(1 - 2 * um + mm, 1e-12))
        with np.errstate(invalid="ignore"):
            out = (np.asarray(dense, dtype=np.float64) - qm - um + mm) / norms
        return np.where(np.isfinite(dense), np.clip(out, -1.0, 1.0), -np.inf)


def entry_features(dense: np.ndarray, lexical: np.ndarray, layout: Layout,
                   focus: np.ndarray | None = None, *, units: np.ndarray | None = None,
                   centred: np.ndarray | None = None, phrase: np.ndarray | None = None,
                   faq_words: float | None = None, query_words: float | None = None) -> EntryFeatures:
    """FEATURES for every candidate entry from unit scores.

    `dense`: each unit's cosine (-inf where the unit was not a dense candidate or its kind is
    switched off); `lexical`: each unit's normalised BM25 (0 where no query term matches);
    `focus`: `passage_focus` of the index (None: every passage counts as focused).
    `units`: the unit ids `dense` and `lexical` hold (ascending), every other unit being
    neither a dense nor a lexical candidate; None: they hold every unit of the index.
    `centred`: the same units' cosines from the FAQ's centre (`Centroid.cosines`); None: from the
    origin, i.e. `dense` itself. `phrase`: the same units' `phrase_share` (0 where not read; None: 0).
    `faq_words`: the index's `faq_words` (None: not known, NaN; a ranker that reads it needs it).
    `query_words`: the query's `query_words_of` (None: not known, NaN; likewise).
    """
    centred = np.asarray(dense if centred is None else centred, dtype=np.float64)
    dense = np.asarray(dense, dtype=np.float64)
    lexical = np.asarray(lexical, dtype=np.float64)
    # A unit that is neither a dense candidate (-inf) nor a lexical one (0) adds nothing to any
    # feature below (a max with -inf or 0; means and z-scores over finite cosines only), so the
    # work runs over the active units alone: a few thousand, whatever the size of the index.
    keep = np.flatnonzero(np.isfinite(dense) | (lexical > 0))
    active = keep if units is None else np.asarray(units)[keep]
    passages_per_entry = layout.passages_per_entry
    if not len(active):
        return EntryFeatures(entries=np.zeros(0, dtype=np.int64), matrix=np.zeros((0, len(FEATURES))))
    # One sort does the grouping: by entry, each entry's units best cosine first (ties: unit order).
    # Every per-entry value is then a reduction over one contiguous segment.
    unit_entry = layout.unit_entry[active]
    order = np.lexsort((-dense[keep], unit_entry))
    active, keep, unit_entry = active[order], keep[order], unit_entry[order]
    phrase = np.zeros(len(dense)) if phrase is None else np.asarray(phrase, dtype=np.float64)
    dense, lexical, centred, phrase = dense[keep], lexical[keep], centred[keep], phrase[keep]
    layout = layout.subset(active)
    new_entry = np.concatenate(([True], unit_entry[1:] != unit_entry[:-1]))
    starts = np.flatnonzero(new_entry)
    candidates = unit_entry[starts]
    n = len(candidates)
    passages_per_entry = passages_per_entry[candidates]

    def entry_max(values: np.ndarray, where: np.ndarray, fill: float) -> np.ndarray:
        return np.maximum.reduceat(np.where(where, values, fill), starts)

    d = {k: entry_max(dense, layout.unit_kind == code, -np.inf) for code, k in enumerate(KINDS)}
    passage = layout.kind_mask("passage")
    d_direct = np.maximum.reduce([d[k] for k in DIRECT_KINDS])
    c_direct = entry_max(centred, ~passage, -np.inf)
    l_direct = entry_max(lexical, ~passage, 0.0)  # BM25 shares are >= 0: 0 is "no match"
    l_passage = entry_max(lexical, passage, 0.0)
    phrase_best = np.maximum.reduceat(phrase, starts)
    has_pages = (passages_per_entry > 0).astype(np.float64)
    page_size = np.log1p(passages_per_entry)
    # Each entry's scored passages in order, best first: the mean of the TOP_PASSAGES best, and the
    # focus of the best one.
    scored = passage & np.isfinite(dense)
    row = np.cumsum(new_entry) - 1  # each unit's entry among the candidates
    seen = np.cumsum(scored)
    rank = seen - 1 - (seen - scored)[starts][row]  # among its entry's scored passages
    sums, counts = np.zeros(n), np.zeros(n)
    for r in range(TOP_PASSAGES):  # best first, added one rank at a time
        at = np.flatnonzero(scored & (rank == r))
        sums[row[at]] += dense[at]
        counts[row[at]] += 1
    d_pages = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
    focus_best = np.ones(n)
    if focus is not None:
        best = np.flatnonzero(scored & (rank == 0))
        focus_best[row[best]] = np.asarray(focus)[active[best]]

    def pick(values: np.ndarray, fallback: np.ndarray | float) -> np.ndarray:
        return np.where(np.isfinite(values), values, fallback)

    def impute(direct: np.ndarray, cosines: np.ndarray) -> np.ndarray:
        # A lexical-only candidate whose direct units were not dense candidates: its weakest plausible cosine.
        if np.isfinite(direct).all():
            return direct
        return pick(direct, np.nanmin(np.where(np.isfinite(cosines), cosines, np.nan))
                    if np.isfinite(cosines).any() else 0.0)

    cand_direct = impute(d_direct, dense)

    cols: dict[str, np.ndarray] = {
        "d_question": pick(d["question"], cand_direct),
        "d_entry": pick(d["entry"], cand_direct),
        "d_answer": pick(d["answer"], cand_direct),
        "d_title": pick(d["title"], cand_direct),
        "d_passage": pick(d["passage"], cand_direct),
        "d_pages": pick(d_pages, cand_direct),
        "c_direct": impute(c_direct, centred),
        "l_direct": l_direct,
        "l_passage": np.where(has_pages > 0, l_passage, l_direct),
        "has_pages": has_pages,
        "page_size": page_size,
        "focus_best": focus_best,
        "phrase": phrase_best,
        "faq_words": np.full(n, math.nan if faq_words is None else float(faq_words)),
        "query_words": np.full(n, math.nan if query_words is None else float(query_words)),
    }
    cols["d_best"] = np.maximum(cand_direct, cols["d_passage"])
    cols["page_lift"] = np.maximum(cols["d_passage"] - cand_direct, 0.0)  # without pages d_passage is cand_direct
    cols["l_best"] = np.maximum(cols["l_direct"], cols["l_passage"])
    cols["z_dense"] = _zscore(cols["d_best"])
    cols["z_lexical"] = _zscore(cols["l_best"])
    cols["gap_dense"] = cols["d_best"] - cols["d_best"].max()
    cols["gap_lexical"] = cols["l_best"] - cols["l_best"].max()
    cols["lead_dense"] = _lead(cols["d_best"])
    cols["lead_lexical"] = _lead(cols["l_best"])
    cols["lead_backed"] = np.maximum(cols["lead_lexical"], 0.0) * np.maximum(cols["d_best"], 0.0)
    matrix = np.empty((n, len(FEATURES)))
    for j, name in enumerate(FEATURES):
        matrix[:, j] = cols[name]
    return EntryFeatures(entries=candidates, matrix=matrix)
