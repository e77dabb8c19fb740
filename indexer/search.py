"""Search: dense (FAISS) and lexical (BM25) unit scores, fused, ranked per FAQ entry.

Each unit (question, entry profile, answer passage, link title, page passage)
gets a dense cosine and a BM25 score normalised to [0, 1] for the query. How
the two become one score per entry is the fusion's job (indexer/fusion.py): by
default the learned ranker reads each entry's evidence (indexer/features.py)
and gives the probability that the entry answers the query. The evidence shown
is the entry's unit whose own text matched the query best. `answered` compares
the top entry's score with the threshold indexer/threshold.py resolves.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import fusion, store
from . import ranker as ranker_file
from .config import PARALLEL_LEXICAL_UNITS, PHRASE_UNITS, SearchSettings, Settings
from .embed import Embedder
from .features import (KINDS, Centroid, EntryFeatures, Layout, entry_features, entry_words, faq_words_of,
                       passage_focus, query_words_of)
from .lexical import Lexical, highlight_spans, phrase_share, phrases
from .models import canonical
from .onnx_encoder import OnnxEncoder, load_query_encoder
from .query import PreparedQuery, fit_query, prepare
from .records import COURSE_SEPARATOR, Entry, Resource, Unit
from .threshold import Threshold, is_answer, resolve

log = logging.getLogger(__name__)

_EVIDENCE_SOURCE = {"question": "question", "entry": "question", "answer": "answer", "title": "title",
                    "passage": "resource"}


@dataclass
class Evidence:
    source: str
    text: str
    url: str = ""
    #: [start, end) character offsets in `text` of the query's matching words.
    highlights: list[list[int]] = field(default_factory=list)
    #: The passage comes from the last good copy of a page that was gone (404/410) at the last build;
    #: `last_good` is when that copy was fetched (ISO 8601), "" when not stale.
    stale: bool = False
    last_good: str = ""


@dataclass
class Result:
    id: str
    question: str
    answer: str
    category: str
    score: float
    resources: list[Resource]
    evidence: Evidence
    #: The links of `resources` that were dead at the last build (indexer/links.py), and of those the
    #: gone pages whose last good copy is still indexed: {url: when that copy was fetched}.
    dead: list[str] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (README, `search --json`): `stale` on the evidence and on each resource
        (with `last_good` when true), `dead` on each resource."""
        data = asdict(self)
        del data["dead"], data["stale"]
        if not self.evidence.stale:
            del data["evidence"]["last_good"]
        data["resources"] = [{"url": r.url, "title": r.title, "kind": r.kind, "site": r.site,
                              "dead": r.url in self.dead, "stale": r.url in self.stale,
                              **({"last_good": self.stale[r.url]} if r.url in self.stale else {})}
                             for r in self.resources]
        return data


@dataclass
class SearchResponse:
    query: str
    answered: bool
    results: list[Result]
    threshold: float
    corrections: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "answered": self.answered, "results": [r.to_dict() for r in self.results],
                "threshold": self.threshold, "corrections": self.corrections}


@dataclass
class Candidates:
    """One query's candidate units (the dense and the lexical retriever's hits), ascending by unit id.

    Every other unit has no dense score (-inf) and no BM25 (0): per-query work runs over these only.
    """

    units: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray
    #: The dense cosines measured from the FAQ's centre (features.Centroid); None without a query vector.
    centred: np.ndarray | None = None

    def only(self, keep: np.ndarray) -> "Candidates":
        """The candidates where `keep` (one bool per candidate) is true."""
        return Candidates(self.units[keep], self.dense[keep], self.lexical[keep],
                          None if self.centred is None else self.centred[keep])


@dataclass
class Scored:
    """One query scored: the candidate entries' scores and the candidate units' own match; -inf elsewhere."""

    n_entries: int
    n_units: int
    #: Candidate entry positions (ascending) and their scores.
    entry_positions: np.ndarray
    entry_scores: np.ndarray
    #: Candidate unit ids (ascending) and how well each one's own text matches the query.
    units: np.ndarray
    unit_matches: np.ndarray
    #: The entry-level evidence, for entry fusions (None for unit fusions and single-signal modes).
    features: EntryFeatures | None = None
    #: Per candidate unit, how much of the query it holds word for word (None where not read).
    unit_phrase: np.ndarray | None = None

    @property
    def entries(self) -> np.ndarray:
        """A score per entry of the index (-inf: not a candidate)."""
        out = np.full(self.n_entries, -np.inf, dtype=self.entry_scores.dtype)
        out[self.entry_positions] = self.entry_scores
        return out

    @property
    def matches(self) -> np.ndarray:
        """Each unit's own match (-inf: not a candidate)."""
        out = np.full(self.n_units, -np.inf, dtype=self.unit_matches.dtype)
        out[self.units] = self.unit_matches
        return out


class ModelMismatch(store.IndexError_):
    pass


class UnknownSection(ValueError):
    """A section to search in that the index does not have; the message lists the ones it has."""


_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _in_background(work: Callable[[], Any]) -> Future:
    """Run `work` on the process's search worker threads (started on first use, shared by every searcher
    and app session): a large index's lexical side runs there while the searching thread embeds the
    query and scans the vectors (`Searcher._retrieve`)."""
    global _workers
    with _workers_lock:
        if _workers is None:
            _workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="search")
    return _workers.submit(work)


_warned_models: set[tuple[str, str]] = set()


def _warn_if_fitted_on_another_model(ranker: ranker_file.LearnedRanker, stored: store.StoredIndex) -> None:
    """Say once per process when the ranker was fitted on another model's cosines than the index's (`--model`)."""
    fitted_on, built_with = canonical(ranker.embedding_model), canonical(str(stored.manifest.get("model") or ""))
    if fitted_on and built_with and fitted_on != built_with and (fitted_on, built_with) not in _warned_models:
        _warned_models.add((fitted_on, built_with))
        log.warning("%s is embedded with %s, but the ranker was fitted on %s's scores: its probabilities and "
                    "answer threshold are not calibrated for this model (fit one with bench/train_ranker.py "
                    "into indexer/rankers/, or set SearchSettings.ranker)", stored.path, built_with, fitted_on)


class Searcher:
    """Everything loaded once: the index, the model, the BM25 side, the ranker. `search` is cheap after that."""

    def __init__(self, stored: store.StoredIndex, embedder: Embedder | OnnxEncoder,
                 settings: SearchSettings | None = None, *, threshold: float | None = None,
                 lexical: Lexical | None = None) -> None:
        self.stored = stored
        self.embedder = embedder
        self.settings = settings or SearchSettings()
        fusion.check(self.settings.fusion)
        self.ranker = (ranker_file.load(self.settings.ranker or None, model=stored.manifest.get("model"))
                       if self.settings.learned else None)
        if self.ranker is not None:
            _warn_if_fitted_on_another_model(self.ranker, stored)
        self.threshold_info: Threshold = resolve(stored.manifest, self.settings, given=threshold)
        if self.threshold_info.source == "default" and stored.manifest.get("calibration"):
            log.warning("%s: its threshold was calibrated under other search settings; using the default "
                        "%.4f until `python -m indexer calibrate` is run again", stored.path,
                        self.threshold_info.value)
        self.threshold = self.threshold_info.value
        self.entry_ids = list(stored.entries)
        self.unit_entry = stored.unit_entry
        self.layout = Layout(stored.unit_entry, stored.unit_kind, len(self.entry_ids))
        kinds = self.layout.unit_kind
        self.kind_weight = np.array([self.settings.kind_weights.get(k, 1.0) for k in KINDS], np.float32)[kinds]
        self.unit_mask = self.layout.kind_mask(*(k for k in KINDS if k in self.settings.unit_kinds))
        self.is_passage = self.layout.kind_mask("passage")
        # Each entry's units: positions `_entry_order[_entry_starts[e]:_entry_starts[e + 1]]`.
        self._entry_order = np.argsort(self.unit_entry, kind="stable")
        self._entry_starts = np.searchsorted(self.unit_entry[self._entry_order], np.arange(len(self.entry_ids) + 1))
        self.lexical = lexical or self._stored_lexical(stored) or Lexical([u.text for u in stored.units])
        self._focus: np.ndarray | None = stored.focus
        self._centroid: Centroid | None = stored.centroid
        self._faq_words: float | None = None
        self._links: tuple[set[str], dict[str, str]] | None = None
        self._sections: list[str] | None = None
        self._section_masks: dict[str, np.ndarray] = {}

    @staticmethod
    def _stored_lexical(stored: store.StoredIndex) -> Lexical | None:
        folder = stored.path / store.LEXICAL_DIR
        if not folder.is_dir():
            # An index from before the build saved its BM25 side: made in memory, from the shown text
            # (a sectioned FAQ's profiles then miss their section words until the next build).
            return None
        try:
            return Lexical.load(folder)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: unreadable BM25 index (%s); rebuilding it in memory", folder, exc)
            return None

    @property
    def link_marks(self) -> tuple[set[str], dict[str, str]]:
        """(dead links, {gone page still indexed from its last good copy: when fetched}) of the build's
        report.json, read once."""
        if self._links is None:
            from .links import dead_urls, stale_copies

            report = store.read_report(self.stored.path)
            self._links = (dead_urls(report), stale_copies(report))
        return self._links

    @property
    def units(self) -> list[Unit]:
        """Every unit of the index (read from the metadata on first use; a search reads only what it shows)."""
        return self.stored.units

    @property
    def n_units(self) -> int:
        return self.stored.n_units

    def entry_units(self, entry_pos: int) -> np.ndarray:
        return self._entry_order[self._entry_starts[entry_pos]:self._entry_starts[entry_pos + 1]]

    @property
    def focus(self) -> np.ndarray:
        """How much each page passage is about its own entry (saved by the build; else computed once)."""
        if self._focus is None:
            self._focus = passage_focus(self._all_vectors(), self.layout)
        return self._focus

    @property
    def centroid(self) -> Centroid:
        """The FAQ's centre, from which `c_direct` measures cosines (saved by the build; else computed once)."""
        if self._centroid is None:
            self._centroid = Centroid.of(self._all_vectors(), self.layout)
        return self._centroid

    @property
    def faq_words(self) -> float:
        """The index's `faq_words` feature, from the entries' words the build saved (else read from its entries),
        once."""
        if self._faq_words is None:
            words = self.stored.entry_words
            self._faq_words = faq_words_of(entry_words(self.stored.entries.values()) if words is None else words)
        return self._faq_words

    @faq_words.setter
    def faq_words(self, value: float) -> None:
        """Score as if the FAQ's typical entry had another length (bench.faq_size searches an index of several
        FAQs with one FAQ's own value, to tell the FAQ shift's part in a change from the other entries')."""
        self._faq_words = float(value)

    def _all_vectors(self) -> np.ndarray:
        """Every stored vector: only for what an index from an older build did not save."""
        n = self.stored.faiss_index.ntotal
        return self.stored.faiss_index.reconstruct_n(0, n) if n else np.zeros((0, self.embedder.dimension), np.float32)

    @classmethod
    def open(cls, index_dir: Path, *, model: str | None = None, settings: Settings | None = None,
             threshold: float | None = None, cache_dir: Path | None = None,
             encoder_for: Callable[[str], Embedder | OnnxEncoder] | None = None) -> "Searcher":
        """The index at `index_dir`; queries use the build's ONNX export under `cache_dir` when it is there.

        `encoder_for(model name)` supplies an already loaded encoder instead (the app keeps one
        per process across rebuilds). `threshold` overrides every other (indexer/threshold.py).
        """
        settings = settings or Settings()
        stored = store.load(Path(index_dir))
        built_with = stored.manifest.get("model")
        if model and canonical(model) != canonical(built_with or ""):
            raise ModelMismatch(f"{index_dir} was built with model {built_with!r}, not {model!r}; "
                                f"rebuild with: python -m indexer build --model {model}")
        if encoder_for is not None:
            embedder = encoder_for(built_with)
        elif cache_dir is None:
            embedder = Embedder(built_with, batch_size=settings.embed_batch_size)
        else:
            embedder = load_query_encoder(built_with, Path(cache_dir), batch_size=settings.embed_batch_size)
        if embedder.dimension != stored.manifest.get("dimension"):
            raise ModelMismatch(f"{index_dir}: model {built_with!r} gives {embedder.dimension}-d vectors, the index "
                                f"holds {stored.manifest.get('dimension')}-d; rebuild the index")
        return cls(stored, embedder, settings.search, threshold=threshold)

    def sections(self) -> list[str]:
        """The index's sections in FAQ order: its entries' categories and, in a multi-course FAQ
        ("ml · General"), each course before its own sections."""
        if self._sections is None:
            self._sections = list(dict.fromkeys(s for c in self.stored.entries.categories() if c
                                                for s in (c.split(COURSE_SEPARATOR)[0], c)))
        return self._sections

    def in_section(self, section: str) -> np.ndarray:
        """One bool per entry: whether it is filed under `section` (a course holds its sections)."""
        mask = self._section_masks.get(section)
        if mask is None:
            mask = np.array([c == section or c.startswith(section + COURSE_SEPARATOR)
                             for c in self.stored.entries.categories()], dtype=bool)
            if not mask.any():
                raise UnknownSection(f"no section {section!r} in this index (sections: "
                                     f"{'; '.join(self.sections()) or 'none'})")
            self._section_masks[section] = mask
        return mask

    def clear_caches(self) -> None:
        """Forget what earlier queries left cached (typo repairs, shown unit rows, highlight analyses), so
        that a benchmark times queries as new."""
        from .lexical import forget_highlights

        self.lexical.forget_repairs()
        self.stored.forget_rows()
        forget_highlights()

    def with_settings(self, settings: SearchSettings, *, threshold: float | None = None) -> "Searcher":
        """The same loaded index and model under other settings (for tuning and benchmarks)."""
        other = Searcher(self.stored, self.embedder, settings, threshold=threshold if threshold is not None
                         else self.threshold, lexical=self.lexical)
        other._focus, other._centroid, other._faq_words = self._focus, self._centroid, self._faq_words
        return other

    # -- scoring ------------------------------------------------------------------
    def prepare(self, query: str, fitted: tuple[str, str] | None = None) -> PreparedQuery:
        return prepare(query, self.lexical, self.embedder.count_tokens, self.embedder.max_tokens - 2, fitted,
                       self.embedder.whole_words)

    def candidates(self, prepared: PreparedQuery, vector: np.ndarray | None = None) -> Candidates:
        """Each retriever's `candidates` best units, with their dense cosine and normalised BM25.

        A unit whose kind is off keeps no score (-inf / 0). Lexical-only candidates get their
        cosine from one batched read of their stored vectors. `vector`: the query's embedding
        (None: `prepared.dense_text` is embedded here). `search` runs the same steps with the
        two retrievers side by side (`_retrieve`).
        """
        lexical_top = self._lexical_top(prepared)
        if vector is None and self._uses_dense:
            vector = self.embedder.encode([prepared.dense_text])[0]
        return self._merge(self._dense_top(vector), lexical_top, vector)

    @property
    def _uses_features(self) -> bool:
        """Whether entries are scored from their features (an entry fusion) rather than their best unit."""
        return self.settings.mode == "hybrid" and self.settings.fusion not in fusion.UNIT_FUSIONS

    @property
    def _uses_dense(self) -> bool:
        return bool(self.n_units) and self.settings.mode in ("dense", "hybrid")

    def _lexical_top(self, prepared: PreparedQuery) -> tuple[np.ndarray, np.ndarray]:
        """BM25's best units (ids ascending; `lexical_candidates` of them in hybrid mode, `candidates` in
        lexical mode) and their normalised scores: cut, then scaled."""
        s = self.settings
        k = min(s.lexical_candidates if s.mode == "hybrid" else s.candidates, self.n_units)
        if not (self.n_units and s.mode in ("lexical", "hybrid") and prepared.terms):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if s.lexical_norm == "max":
            ids, raw = self.lexical.top_scores(prepared.terms, limit=k)
            top = raw.max() if len(raw) else 0.0
            return ids, (raw / top if top > 0 else raw)
        return self.lexical.normalised_top(prepared.terms, limit=k)

    def _dense_top(self, vector: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's `candidates` nearest units to the query's embedding (ids, cosines); none without one."""
        if vector is None or not self._uses_dense:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        sims, ids = store.nearest(self.stored.faiss_index, vector.reshape(1, -1), min(self.settings.candidates,
                                                                                       self.n_units))
        valid = ids[0] >= 0
        return ids[0][valid].astype(np.int64), sims[0][valid]

    def _merge(self, dense_top: tuple[np.ndarray, np.ndarray], lexical_top: tuple[np.ndarray, np.ndarray],
               vector: np.ndarray | None) -> Candidates:
        """Both retrievers' units as one ascending list with both signals (see `candidates`)."""
        (dense_ids, dense_values), (lex_ids, lex_values) = dense_top, lexical_top
        units = np.union1d(dense_ids, lex_ids)
        dense = np.full(len(units), -np.inf, dtype=np.float32)
        dense[np.searchsorted(units, dense_ids)] = dense_values
        lexical = np.zeros(len(units), dtype=np.float32)
        lexical[np.searchsorted(units, lex_ids)] = lex_values
        if self.settings.mode == "hybrid" and vector is not None:
            # lexical-only candidates still need their dense score: one batched read
            extra = np.flatnonzero((lexical > 0) & ~np.isfinite(dense))
            if len(extra):
                dense[extra] = self.stored.faiss_index.reconstruct_batch(units[extra]) @ vector
        on = self.unit_mask[units]
        dense = np.where(on, dense, -np.inf).astype(np.float32)
        centred = self.centroid.cosines(dense, units, vector) if vector is not None and self._uses_features else None
        return Candidates(units, dense, np.where(on, lexical, 0.0).astype(np.float32), centred)

    def _retrieve(self, query: str) -> tuple[PreparedQuery, Candidates | None]:
        """The query prepared and its candidates (None: nothing to search), as `candidates` gives them.

        From PARALLEL_LEXICAL_UNITS units up, the lexical side (mending typos, reading BM25's
        postings: Python and numpy) runs on a worker thread while this one embeds the query and
        scans the vectors, which release the GIL: the two sides share the cores instead of taking
        turns. The embedding is then of the query as typed; when typos were mended, the mended
        query is embedded and searched again.
        """
        fitted = fit_query(query, self.embedder.count_tokens, self.embedder.max_tokens - 2)
        focus = fitted[1]
        if self.n_units < PARALLEL_LEXICAL_UNITS or not focus:
            prepared = self.prepare(query, fitted)
            found = self.candidates(prepared) if prepared.searchable and self.n_units else None
            return prepared, found

        def lexical_side() -> tuple[PreparedQuery, tuple[np.ndarray, np.ndarray]]:
            prepared = self.prepare(query, fitted)
            return prepared, self._lexical_top(prepared)

        pending = _in_background(lexical_side)
        vector = self.embedder.encode([focus])[0] if self._uses_dense else None
        dense_top = self._dense_top(vector)
        prepared, lexical_top = pending.result()
        if not prepared.searchable:
            return prepared, None
        if vector is not None and prepared.dense_text != focus:
            vector = self.embedder.encode([prepared.dense_text])[0]
            dense_top = self._dense_top(vector)
        return prepared, self._merge(dense_top, lexical_top, vector)

    def signals(self, prepared: PreparedQuery, vector: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(dense cosine, normalised BM25) per unit of the index; -inf / 0 where a unit is not a candidate."""
        found = self.candidates(prepared, vector)
        dense = np.full(self.n_units, -np.inf, dtype=np.float32)
        lexical = np.zeros(self.n_units, dtype=np.float32)
        dense[found.units] = found.dense
        lexical[found.units] = found.lexical
        return dense, lexical

    def match_scores(self, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """How well each unit's own text matches the query; -inf where a unit is not a candidate."""
        s = self.settings
        if s.mode == "dense":
            return dense
        if s.mode == "lexical":
            return np.where(lexical > 0, lexical, -np.inf).astype(np.float32)
        return fusion.fuse_units(dense, lexical, s)

    def weigh(self, matches: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
        """Match scores as evidence for the entries: kind-weighted, passages in their entry's context.

        A passage's score is mixed with its entry's best direct unit (`passage_context`).
        `units`: the unit ids `matches` are given for (None: every unit of the index).
        """
        units = np.arange(self.n_units) if units is None else units
        fused = (self.kind_weight[units] * matches).astype(np.float32)
        c = self.settings.passage_context
        is_passage = self.is_passage[units]
        if not c or not is_passage.any():
            return fused
        entries, slot = np.unique(self.unit_entry[units], return_inverse=True)
        direct = np.full(len(entries), -np.inf, dtype=np.float32)
        scored = np.flatnonzero(~is_passage & np.isfinite(fused))  # a max with -inf changes nothing
        np.maximum.at(direct, slot[scored], fused[scored])
        context = direct[slot]
        mixed = (1 - c) * fused + c * context
        use = is_passage & np.isfinite(fused) & np.isfinite(context)
        return np.where(use, mixed, fused).astype(np.float32)

    def best_units(self, units: np.ndarray, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(entry positions, score, best unit) of each entry with a finite unit score, from the units'
        scores, plus `second_unit_weight` of its runner-up."""
        finite = np.flatnonzero(np.isfinite(fused))
        ue = self.unit_entry[units]
        order = finite[np.lexsort((-fused[finite], ue[finite]))]  # by entry, best unit first
        entries = ue[order]
        first = np.r_[True, entries[1:] != entries[:-1]] if len(order) else np.zeros(0, dtype=bool)
        positions = entries[first]
        best = fused[order[first]]
        if self.settings.second_unit_weight and len(order):
            second_pos = np.flatnonzero(~first & np.r_[False, first[:-1]])
            second = np.zeros(len(positions), dtype=np.float32)
            second[np.searchsorted(positions, entries[second_pos])] = np.maximum(fused[order[second_pos]], 0)
            best = best + self.settings.second_unit_weight * second
        return positions, best, units[order[first]]

    def score(self, prepared: PreparedQuery, vector: np.ndarray | None = None, *,
              found: Candidates | None = None) -> Scored:
        """The candidate entries' scores for the query, under this searcher's fusion (`found`: its
        candidates, when already retrieved)."""
        found = found if found is not None else self.candidates(prepared, vector)
        matches = self.match_scores(found.dense, found.lexical)
        s = self.settings
        n_entries = len(self.entry_ids)
        if not self._uses_features:
            positions, best, _ = self.best_units(found.units, self.weigh(matches, found.units))
            return Scored(n_entries, self.n_units, positions, best, found.units, matches)
        phrase = self._phrase_shares(prepared, found)
        features = entry_features(found.dense, found.lexical, self.layout, self.focus, units=found.units,
                                  centred=found.centred, phrase=phrase, faq_words=self.faq_words,
                                  query_words=query_words_of(prepared.words))
        scores = np.asarray(fusion.fuse_entries(features, s, self.ranker), dtype=np.float64)
        return Scored(n_entries, self.n_units, features.entries, scores, found.units, matches, features, phrase)

    def _phrase_shares(self, prepared: PreparedQuery, found: Candidates) -> np.ndarray:
        """Per candidate unit, how much of the query it holds word for word (`lexical.phrase_share`), read
        for the PHRASE_UNITS best BM25 units of the entries' own text (0 for the others and for page
        passages: config.PHRASE_TERMS says why)."""
        out = np.zeros(len(found.units), dtype=np.float64)
        wanted = phrases(prepared.terms)
        hits = np.flatnonzero((found.lexical > 0) & ~self.is_passage[found.units])
        if not len(wanted) or not len(hits):
            return out
        if len(hits) > PHRASE_UNITS:
            hits = hits[np.argpartition(-found.lexical[hits], PHRASE_UNITS - 1)[:PHRASE_UNITS]]
        units = self.stored.units_at(found.units[hits])
        out[hits] = [phrase_share(wanted, unit.text) for unit in units]
        return out

    @staticmethod
    def rank(scores: np.ndarray, k: int, positions: np.ndarray | None = None) -> list[int]:
        """Positions of the `k` best finite scores, best first.

        `positions`: ascending positions the scores belong to (None: 0, 1, 2, ...); the same
        ranking, ties included, as the scores laid out over every position with -inf elsewhere.
        """
        finite = np.flatnonzero(np.isfinite(scores))
        if len(finite) > k:
            finite = finite[np.argpartition(-scores[finite], k - 1)[:k]]
        best = finite[np.argsort(-scores[finite], kind="stable")]
        return [int(e) for e in (best if positions is None else positions[best])]

    # -- public -------------------------------------------------------------------
    def search(self, query: str, *, top_k: int | None = None, section: str | None = None) -> SearchResponse:
        """The best entries for `query`; with `section`, among that section's entries only (a course of a
        multi-course FAQ): they compete with each other alone, for the ranking and for "no good answer"."""
        top_k = top_k or self.settings.top_k
        in_section = self.in_section(section) if section else None
        prepared, found = self._retrieve(query)
        if found is not None and in_section is not None:
            found = found.only(in_section[self.unit_entry[found.units]])
        if found is None:
            return SearchResponse(query=query, answered=False, results=[], threshold=self.threshold)
        scored = self.score(prepared, found=found)
        ranked = self.rank(scored.entry_scores, top_k, scored.entry_positions)
        scores = scored.entry_scores[np.searchsorted(scored.entry_positions, ranked)]
        shown = self.stored.units_at(self._evidence_units(ranked, scored))
        entries = self.stored.entries.many([self.entry_ids[e] for e in ranked])
        results = [self._result(entry, float(score), unit, prepared)
                   for entry, score, unit in zip(entries, scores, shown)]
        answered = bool(results) and is_answer(results[0].score, self.threshold)
        return SearchResponse(query=query, answered=answered, results=results, threshold=self.threshold,
                              corrections=prepared.corrections)

    def _evidence_units(self, entry_positions: list[int], scored: Scored) -> list[int]:
        """For each entry, its unit whose own text matches the query best.

        Kind weights and the ranker say how far a unit kind is trusted to rank an
        entry; what to show as the reason is the text that matched best, so a page
        passage that explains the answer wins over a terse link title. Words pasted
        from the entry's text come first: the unit holding most of them word for word
        (`Scored.unit_phrase`), where the learner sees their own words again.
        Ties go to the lowest unit id; an entry without a scored unit shows its first.
        """
        unit_entry = self.unit_entry[scored.units]
        shown = []
        for entry_pos in entry_positions:
            own = np.flatnonzero(unit_entry == entry_pos)
            held = scored.unit_phrase[own] if scored.unit_phrase is not None and len(own) else None
            if held is not None and held.max() > 0:
                own = own[held == held.max()]
            best = own[np.argmax(scored.unit_matches[own])] if len(own) else -1
            shown.append(int(scored.units[best]) if best >= 0 and np.isfinite(scored.unit_matches[best])
                         else int(self.entry_units(entry_pos)[0]))
        return shown

    def _result(self, entry: Entry, score: float, unit: Unit, prepared: PreparedQuery) -> Result:
        dead, stale = self.link_marks
        source = _EVIDENCE_SOURCE[unit.kind]
        last_good = stale.get(unit.url, "") if source == "resource" else ""
        evidence = Evidence(source=source, text=unit.text, url=unit.url,
                            highlights=highlight_spans(prepared.terms, unit.text),
                            stale=bool(last_good), last_good=last_good)
        urls = {r.url for r in entry.resources}
        return Result(id=entry.id, question=entry.question, answer=entry.answer, category=entry.category,
                      score=round(score, 4), resources=list(entry.resources), evidence=evidence,
                      dead=sorted(urls & dead), stale={u: d for u, d in stale.items() if u in urls})
