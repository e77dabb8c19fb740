"""Lexical side of retrieval: one analyzer, BM25 over it, and query-term offsets.

The same analysis (lower case, English stop words, Snowball stems) feeds the
BM25 index and the highlighting of evidence, so what is marked in a passage is
exactly what matched. Typos in the query are mended against the index's own
vocabulary (`backprogation` -> `backpropagation`) before either retriever sees it.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

from .config import (HIGHLIGHT_CACHE_TEXTS, LEXICAL_PRUNE_POSTINGS, PHRASE_TERMS, TYPO_CACHE_WORDS, TYPO_CANDIDATES,
                     TYPO_CUTOFF)
from .text import fold

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(STOPWORDS_EN_PLUS) | {"s", "t", "don", "doesn", "isn", "whats", "hows", "vs", "use", "using", "get"}
_stemmer = Stemmer.Stemmer("english")
#: Beside bm25s' files in a saved lexical index: the words typos are mended to.
VOCAB_FILE = "typo_vocab.json"
TYPO_FILE = "typo_trigrams.npz"


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer.stemWord(word)


def _searched(word: str) -> bool:
    """Whether a folded word is searched: not a stop word, nor a number of one or two digits."""
    return word not in _STOP and not (word.isdigit() and len(word) < 3)


def words(text: str) -> list[tuple[str, int, int]]:
    """(folded word, start, end) for each word of `text`, offsets into the original text."""
    out = []
    for m in _WORD.finditer(text):
        w = fold(m.group(0))
        if _searched(w):
            out.append((w, m.start(), m.end()))
    return out


def terms(text: str) -> list[str]:
    """The stems BM25 reads, in text order: `words` without their offsets, stemmed in one call (a
    passage's terms are read for every query whose best units it is among, `phrase_share`)."""
    # An ASCII text is folded whole (lower case), the common case; any other word by word, as `words` does.
    found = _WORD.findall(text.lower()) if text.isascii() else map(fold, _WORD.findall(text))
    return _stemmer.stemWords([w for w in found if _searched(w)])


@lru_cache(maxsize=HIGHLIGHT_CACHE_TEXTS)
def _spans_by_stem(text: str) -> dict[str, tuple[tuple[int, int], ...]]:
    """Each stem of `text` and where its words are: a shown passage is analysed once, not per query."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for w, s, e in words(text):
        spans.setdefault(stem(w), []).append((s, e))
    return {t: tuple(found) for t, found in spans.items()}


def highlight_spans(query_terms: Sequence[str], text: str) -> list[list[int]]:
    """Character spans [start, end) in `text` of the words whose stem is a query term, in text order."""
    spans = _spans_by_stem(text)
    return [list(span) for span in sorted(s for t in set(query_terms) for s in spans.get(t, ()))]


def phrases(terms_in_order: Sequence[str]) -> np.ndarray:
    """The runs of PHRASE_TERMS consecutive terms (none when there are fewer), as sorted 64-bit hashes:
    ~1 kB for a passage, where a set of tuples took ~10 kB."""
    runs = zip(*(terms_in_order[i:] for i in range(PHRASE_TERMS)))
    return np.unique(np.fromiter((hash(run) for run in runs), dtype=np.int64))


@lru_cache(maxsize=HIGHLIGHT_CACHE_TEXTS)
def _text_phrases(text: str) -> np.ndarray:
    return phrases(terms(text))


def phrase_share(query_phrases: np.ndarray, text: str) -> float:
    """Share of the query's runs of terms (`phrases`) that `text` holds in the same order.

    BM25 ignores word order, so a query pasted from an answer and a paraphrase that happens to
    share its words score alike; an unbroken run of three terms is rarely shared by chance.
    """
    held = _text_phrases(text)
    if not len(query_phrases) or not len(held):
        return 0.0
    at = np.minimum(np.searchsorted(held, query_phrases), len(held) - 1)
    return float(np.count_nonzero(held[at] == query_phrases)) / len(query_phrases)


def forget_highlights() -> None:
    """Drop the analysed passages `highlight_spans` and `phrase_share` keep (a benchmark times queries as new)."""
    _spans_by_stem.cache_clear()
    _text_phrases.cache_clear()


def _trigrams(word: str) -> set[str]:
    padded = f"^{word}$"
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


class TypoIndex:
    """Character trigrams of a vocabulary, inverted: the words likeliest to be what a typo meant.

    `candidates` looks up the postings of the typo's own trigrams (a few hundred words, not
    the vocabulary), keeps the words whose length allows difflib's cutoff, and returns the
    `limit` that share the most trigrams; difflib then scores only those.
    """

    def __init__(self, words: Sequence[str], grams: Sequence[str], indptr: np.ndarray, postings: np.ndarray) -> None:
        self.words = list(words)
        self.lengths = np.array([len(w) for w in self.words], dtype=np.int32)
        self._row = {g: i for i, g in enumerate(grams)}
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.postings = np.asarray(postings, dtype=np.int32)

    @classmethod
    def build(cls, words: Sequence[str]) -> "TypoIndex":
        by_gram: dict[str, list[int]] = {}
        for i, w in enumerate(words):
            for g in _trigrams(w):
                by_gram.setdefault(g, []).append(i)
        grams = sorted(by_gram)
        sizes = np.array([len(by_gram[g]) for g in grams], dtype=np.int64)
        postings = (np.concatenate([np.asarray(by_gram[g], dtype=np.int32) for g in grams]) if grams
                    else np.zeros(0, np.int32))
        return cls(words, grams, np.r_[0, np.cumsum(sizes)], postings)

    def save(self, path: Path) -> None:
        np.savez(path, grams=np.array(list(self._row), dtype=str), indptr=self.indptr, postings=self.postings)

    @classmethod
    def load(cls, path: Path, words: Sequence[str]) -> "TypoIndex":
        with np.load(path) as data:
            return cls(words, data["grams"].tolist(), data["indptr"], data["postings"])

    def candidates(self, word: str, limit: int, cutoff: float) -> list[str]:
        rows = [self._row[g] for g in _trigrams(word) if g in self._row]
        if not rows:
            return []
        hits = np.concatenate([self.postings[self.indptr[r]:self.indptr[r + 1]] for r in rows])
        ids, shared = np.unique(hits, return_counts=True)
        # difflib's real_quick_ratio: 2 * min(len) / (sum of lengths) must reach the cutoff.
        lengths = self.lengths[ids]
        fits = 2 * np.minimum(lengths, len(word)) >= cutoff * (lengths + len(word))
        ids, shared = ids[fits], shared[fits]
        if len(ids) > limit:
            ids = ids[np.argsort(-shared, kind="stable")[:limit]]
        return [self.words[i] for i in ids]


class Lexical:
    """BM25 (bm25s, Lucene variant) over the index's units, plus its vocabulary for typo repair."""

    def __init__(self, texts: Sequence[str] = (), *, bm25: bm25s.BM25 | None = None,
                 vocab: Sequence[str] | None = None, typos: TypoIndex | None = None) -> None:
        """BM25 over `texts`; or, from `load`, an index already built (`bm25`) and its `vocab`."""
        if bm25 is None:
            corpus = [terms(t) or ["\x00"] for t in texts]
            bm25 = bm25s.BM25()
            bm25.index(corpus, show_progress=False)
            vocab = {w for w, _, _ in (wd for t in texts for wd in words(t)) if len(w) >= 4 and w.isalpha()}
        self.bm25 = bm25
        self.vocab = set(vocab or ())
        self._vocab_list = sorted(self.vocab)
        self._typos = typos
        self._known_stems = set(self.bm25.vocab_dict)
        #: Unknown query words already looked up, and what each was mended to (None: nothing close).
        self._mended: dict[str, str | None] = {}
        # The best score each term reaches in any unit: what a perfect match on it is worth.
        data, indptr = self.bm25.scores["data"], np.asarray(self.bm25.scores["indptr"])
        filled = np.flatnonzero(indptr[1:] > indptr[:-1])
        best = np.maximum.reduceat(np.asarray(data), indptr[filled]) if len(filled) else np.zeros(0)
        best_of = dict(zip(filled.tolist(), best.tolist()))
        self._term_best = {t: best_of[i] for t, i in self.bm25.vocab_dict.items() if t and i in best_of}
        self._unseen_weight = max(self._term_best.values(), default=0.0)

    def save(self, folder: Path) -> None:
        """The BM25 index (bm25s' own files) and the typo vocabulary, into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(folder), show_progress=False)
        (folder / VOCAB_FILE).write_text(json.dumps(self._vocab_list, ensure_ascii=False), "utf-8")
        self.typos.save(folder / TYPO_FILE)

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = True) -> "Lexical":
        """What `save` wrote; the score arrays memory-mapped (read on demand, shared between processes)."""
        bm25 = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False)
        vocab = json.loads((folder / VOCAB_FILE).read_text("utf-8"))
        typos = TypoIndex.load(folder / TYPO_FILE, vocab) if (folder / TYPO_FILE).exists() else None
        return cls(bm25=bm25, vocab=vocab, typos=typos)

    @property
    def typos(self) -> TypoIndex:
        """The trigram index typos are looked up in (saved by the build; else made on first use)."""
        if self._typos is None:
            self._typos = TypoIndex.build(self._vocab_list)
        return self._typos

    def top_scores(self, query_terms: Sequence[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(unit ids ascending, BM25) of the units some query term occurs in; with `limit`, the `limit` best only.

        Reads the postings of the query's terms and nothing else, so a query costs what its
        terms' postings hold, not the size of the index. Same values as bm25s' `get_scores`
        (the same float32 additions in the same order). Past LEXICAL_PRUNE_POSTINGS postings,
        units that cannot reach the `limit` best are skipped unscored (`_prune`); which of
        several units tied at the cut is kept may then differ.
        """
        none = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        known = [t for t in query_terms if t in self._known_stems]
        if not known:
            return none
        if self.bm25.nonoccurrence_array is not None:  # BM25L / BM25+: every unit scores; bm25s' dense path
            raw = np.asarray(self.bm25.get_scores(known), dtype=np.float32)
            ids = np.flatnonzero(raw)
            values = raw[ids]
        else:
            postings = self.bm25.scores
            indptr, indices, data = postings["indptr"], postings["indices"], postings["data"]
            lists = [(indices[indptr[t]:indptr[t + 1]], data[indptr[t]:indptr[t + 1]])
                     for t in self.bm25.get_tokens_ids(known)]
            found = None
            if limit is not None and sum(len(docs) for docs, _ in lists) > LEXICAL_PRUNE_POSTINGS:
                bounds = [self._term_best.get(t) or float(scores.max(initial=0.0)) for t, (_, scores) in zip(known, lists)]
                found = self._prune(lists, np.array(bounds), limit)
            ids, values = found if found is not None else self._merge(lists)
            values = values.astype(np.float32, copy=False)
            nonzero = np.flatnonzero(values)
            ids, values = ids[nonzero].astype(np.int64), values[nonzero]
        if limit is not None and len(ids) > limit:
            best = np.sort(np.argpartition(-values, limit - 1)[:limit])
            ids, values = ids[best], values[best]
        return ids, values

    def _merge(self, lists: Sequence[tuple[np.ndarray, np.ndarray]],
               merged: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(unit ids ascending, BM25) of every unit in the posting lists (query order) that are
        `merged` (default all); the other lists only add their scores to those units."""
        dtype = np.dtype(self.bm25.dtype)
        merged = [True] * len(lists) if merged is None else list(merged)
        if len(lists) == 1:  # one posting list: already ascending, nothing to add up
            return lists[0][0], lists[0][1].astype(dtype, copy=False)
        # Each posting list is ascending, so a stable sort merges them; every unit's terms are
        # then added up in query order, as bm25s does.
        docs = np.concatenate([d for (d, _), m in zip(lists, merged) if m])
        order = np.argsort(docs, kind="stable")
        first = np.r_[True, docs[order][1:] != docs[order][:-1]]
        units = docs[order][first]
        slot = np.empty(len(docs), dtype=np.int64)
        slot[order] = np.cumsum(first) - 1
        values = np.zeros(len(units), dtype=dtype)
        start = 0
        for (docs_, scores), m in zip(lists, merged):
            if m:
                values[slot[start:start + len(docs_)]] += scores  # a unit occurs once per list
                start += len(docs_)
            elif len(docs_):
                at = np.minimum(np.searchsorted(docs_, units), len(docs_) - 1)
                hit = docs_[at] == units
                values[hit] += scores[at[hit]]
        return units, values

    def _prune(self, lists: Sequence[tuple[np.ndarray, np.ndarray]], bounds: np.ndarray,
               limit: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The units that can be among the `limit` best, with their BM25 (MaxScore); None if all can.

        The exact scores of the units of the rarest terms give a score `floor` that `limit`
        units reach. A unit holding only terms whose best scores add up to less than `floor`
        cannot make the cut, so only the postings of the other terms are merged; the minor
        terms' postings are looked up for those units alone. Every unit scoring `floor` or
        more is kept, with the same score as without pruning.
        """
        by_size = np.argsort([len(docs) for docs, _ in lists], kind="stable")
        rare = np.zeros(len(lists), dtype=bool)
        seen = 0
        for j in by_size:
            rare[j] = True
            seen += len(lists[j][0])
            if seen >= 2 * limit:
                break
        if rare.all():
            return None
        seed, seed_values = self._merge(lists, rare)
        if len(seed) < limit:
            return None
        floor = np.partition(seed_values, len(seed) - limit)[len(seed) - limit]
        order = np.argsort(bounds, kind="stable")
        # float32 sums of a few terms stay well within this margin of their exact value
        minor = np.zeros(len(lists), dtype=bool)
        minor[order[np.cumsum(bounds[order]) * (1 + 1e-4) < floor]] = True
        return self._merge(lists, ~minor)

    def scores(self, query_terms: Sequence[str], limit: int | None = None) -> np.ndarray:
        """BM25 of every unit; with `limit`, only the `limit` best units keep theirs (the rest 0)."""
        ids, values = self.top_scores(query_terms, limit)
        raw = np.zeros(self.bm25.scores["num_docs"], dtype=np.float32)
        raw[ids] = values
        return raw

    def normalised_top(self, query_terms: Sequence[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(unit ids ascending, BM25 as a share of what a unit matching every query term at its best would score).

        Unlike dividing by the top hit, this stays low when the query's rarest
        words appear nowhere in the FAQ: an unseen term counts as a full miss.
        `limit`: only the `limit` best units are scored, as in `top_scores`.
        """
        terms_ = list(dict.fromkeys(query_terms))
        ceiling = sum(self._term_best.get(t, self._unseen_weight) for t in terms_)
        if ceiling <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids, raw = self.top_scores(terms_, limit)
        return ids, np.minimum(raw / ceiling, 1.0).astype(np.float32)

    def normalised_scores(self, query_terms: Sequence[str], limit: int | None = None) -> np.ndarray:
        """`normalised_top` laid out over every unit (0 where no query term occurs)."""
        ids, values = self.normalised_top(query_terms, limit)
        out = np.zeros(self.bm25.scores["num_docs"], dtype=np.float32)
        out[ids] = values
        return out

    def forget_repairs(self) -> None:
        self._mended.clear()

    def correct(self, word: str) -> str | None:
        """The corpus word a mistyped query word most likely meant, or None."""
        if len(word) < 5 or not word.isalpha() or word in self.vocab or stem(word) in self._known_stems:
            return None
        if word in self._mended:
            return self._mended[word]
        candidates = self.typos.candidates(word, TYPO_CANDIDATES, TYPO_CUTOFF)
        match = difflib.get_close_matches(word, candidates, n=1, cutoff=TYPO_CUTOFF)
        if len(self._mended) >= TYPO_CACHE_WORDS:
            self._mended.clear()
        self._mended[word] = match[0] if match else None
        return self._mended[word]
