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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import fusion, store
from . import ranker as ranker_file
from .config import SearchSettings, Settings
from .embed import Embedder
from .features import KINDS, EntryFeatures, Layout, entry_features, passage_focus
from .lexical import Lexical, highlight_spans
from .onnx_encoder import OnnxEncoder, load_query_encoder
from .query import PreparedQuery, prepare
from .records import Entry, Resource, Unit
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
class Scored:
    """One query scored: a score per entry (-inf: not a candidate) and each unit's own match."""

    entries: np.ndarray
    matches: np.ndarray
    #: The entry-level evidence, for entry fusions (None for unit fusions and single-signal modes).
    features: EntryFeatures | None = None


class ModelMismatch(store.IndexError_):
    pass


class Searcher:
    """Everything loaded once: the index, the model, the BM25 side, the ranker. `search` is cheap after that."""

    def __init__(self, stored: store.StoredIndex, embedder: Embedder | OnnxEncoder,
                 settings: SearchSettings | None = None, *, threshold: float | None = None,
                 lexical: Lexical | None = None) -> None:
        self.stored = stored
        self.embedder = embedder
        self.settings = settings or SearchSettings()
        fusion.check(self.settings.fusion)
        self.ranker = (ranker_file.load(self.settings.ranker or None)
                       if self.settings.learned else None)
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
        self._links: tuple[set[str], dict[str, str]] | None = None

    @staticmethod
    def _stored_lexical(stored: store.StoredIndex) -> Lexical | None:
        folder = stored.path / store.LEXICAL_DIR
        if not folder.is_dir():
            return None  # an index from before the build saved its BM25 side: made in memory
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
            n = self.stored.faiss_index.ntotal
            vectors = self.stored.faiss_index.reconstruct_n(0, n) if n else np.zeros((0, 1), np.float32)
            self._focus = passage_focus(vectors, self.layout)
        return self._focus

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
        if model and model != built_with:
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

    def with_settings(self, settings: SearchSettings, *, threshold: float | None = None) -> "Searcher":
        """The same loaded index and model under other settings (for tuning and benchmarks)."""
        other = Searcher(self.stored, self.embedder, settings, threshold=threshold if threshold is not None
                         else self.threshold, lexical=self.lexical)
        other._focus = self._focus
        return other

    # -- scoring ------------------------------------------------------------------
    def prepare(self, query: str) -> PreparedQuery:
        return prepare(query, self.lexical, self.embedder.count_tokens, self.embedder.max_tokens - 2)

    def signals(self, prepared: PreparedQuery, vector: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(dense cosine, normalised BM25) per unit; -inf / 0 where a unit is not a candidate or its kind is off."""
        s = self.settings
        n = self.n_units
        k = min(s.candidates, n)
        dense = np.full(n, -np.inf, dtype=np.float32)
        lexical = np.zeros(n, dtype=np.float32)
        if n == 0:
            return dense, lexical
        if s.mode in ("lexical", "hybrid") and prepared.terms:
            # Both retrievers return their `k` best units: BM25 is cut to its top k before it is scaled.
            if s.lexical_norm == "max":
                raw = self.lexical.scores(prepared.terms, limit=k)
                lexical = raw / raw.max() if raw.max() > 0 else raw
            else:
                lexical = self.lexical.normalised_scores(prepared.terms, limit=k)
        if s.mode in ("dense", "hybrid"):
            if vector is None:
                vector = self.embedder.encode([prepared.dense_text])[0]
            sims, ids = self.stored.faiss_index.search(vector.reshape(1, -1), k)
            valid = ids[0] >= 0
            dense[ids[0][valid]] = sims[0][valid]
            if s.mode == "hybrid":  # lexical-only candidates still need their dense score: one batched read
                extra = np.flatnonzero(lexical > 0)
                extra = extra[~np.isfinite(dense[extra])]
                if len(extra):
                    dense[extra] = self.stored.faiss_index.reconstruct_batch(extra) @ vector
        return (np.where(self.unit_mask, dense, -np.inf).astype(np.float32),
                np.where(self.unit_mask, lexical, 0.0).astype(np.float32))

    def match_scores(self, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """How well each unit's own text matches the query; -inf where a unit is not a candidate."""
        s = self.settings
        if s.mode == "dense":
            return dense
        if s.mode == "lexical":
            return np.where(lexical > 0, lexical, -np.inf).astype(np.float32)
        return fusion.fuse_units(dense, lexical, s)

    def weigh(self, matches: np.ndarray) -> np.ndarray:
        """Match scores as evidence for the entries: kind-weighted, passages in their entry's context.

        A passage's score is mixed with its entry's best direct unit (`passage_context`).
        """
        fused = (self.kind_weight * matches).astype(np.float32)
        c = self.settings.passage_context
        if not c or not self.is_passage.any():
            return fused
        direct = np.full(len(self.entry_ids), -np.inf, dtype=np.float32)
        scored = np.flatnonzero(~self.is_passage & np.isfinite(fused))  # a max with -inf changes nothing
        np.maximum.at(direct, self.unit_entry[scored], fused[scored])
        context = direct[self.unit_entry]
        mixed = (1 - c) * fused + c * context
        use = self.is_passage & np.isfinite(fused) & np.isfinite(context)
        return np.where(use, mixed, fused).astype(np.float32)

    def best_units(self, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score per entry, index of its best unit) from unit scores, plus `second_unit_weight` of the runner-up."""
        n_entries = len(self.entry_ids)
        best = np.full(n_entries, -np.inf, dtype=np.float32)
        best_unit = np.full(n_entries, -1, dtype=np.int64)
        finite = np.flatnonzero(np.isfinite(fused))
        if not len(finite):
            return best, best_unit
        order = finite[np.lexsort((-fused[finite], self.unit_entry[finite]))]  # by entry, best unit first
        entries = self.unit_entry[order]
        first = np.r_[True, entries[1:] != entries[:-1]]
        best[entries[first]] = fused[order[first]]
        best_unit[entries[first]] = order[first]
        if self.settings.second_unit_weight:
            second_pos = np.flatnonzero(~first & np.r_[False, first[:-1]])
            second = np.zeros(n_entries, dtype=np.float32)
            second[entries[second_pos]] = np.maximum(fused[order[second_pos]], 0)
            best = best + self.settings.second_unit_weight * second
        return best, best_unit

    def score(self, prepared: PreparedQuery, vector: np.ndarray | None = None) -> Scored:
        """Every entry's score for the query, under this searcher's fusion."""
        dense, lexical = self.signals(prepared, vector)
        matches = self.match_scores(dense, lexical)
        s = self.settings
        if s.mode != "hybrid" or s.fusion in fusion.UNIT_FUSIONS:
            return Scored(self.best_units(self.weigh(matches))[0], matches)
        features = entry_features(dense, lexical, self.layout, self.focus)
        scores = features.scatter(fusion.fuse_entries(features, s, self.ranker), len(self.entry_ids))
        return Scored(scores, matches, features)

    @staticmethod
    def rank(scores: np.ndarray, k: int) -> list[int]:
        """Positions of the `k` best finite scores, best first."""
        finite = np.flatnonzero(np.isfinite(scores))
        if len(finite) > k:
            finite = finite[np.argpartition(-scores[finite], k - 1)[:k]]
        return [int(e) for e in finite[np.argsort(-scores[finite], kind="stable")]]

    # -- public -------------------------------------------------------------------
    def search(self, query: str, *, top_k: int | None = None) -> SearchResponse:
        top_k = top_k or self.settings.top_k
        prepared = self.prepare(query)
        if not prepared.searchable or not self.n_units:
            return SearchResponse(query=query, answered=False, results=[], threshold=self.threshold)
        scored = self.score(prepared)
        ranked = self.rank(scored.entries, top_k)
        shown = self.stored.units_at([self._evidence_unit(e, scored.matches) for e in ranked])
        results = [self._result(e, float(scored.entries[e]), unit, prepared) for e, unit in zip(ranked, shown)]
        answered = bool(results) and is_answer(results[0].score, self.threshold)
        return SearchResponse(query=query, answered=answered, results=results, threshold=self.threshold,
                              corrections=prepared.corrections)

    def _evidence_unit(self, entry_pos: int, matches: np.ndarray) -> int:
        """The entry's unit whose own text matches the query best.

        Kind weights and the ranker say how far a unit kind is trusted to rank an
        entry; what to show as the reason is the text that matched best, so a page
        passage that explains the answer wins over a terse link title.
        """
        units = self.entry_units(entry_pos)
        return int(units[np.argmax(matches[units])])

    def _result(self, entry_pos: int, score: float, unit: Unit, prepared: PreparedQuery) -> Result:
        entry: Entry = self.stored.entries[self.entry_ids[entry_pos]]
        dead, stale = self.link_marks
        source = _EVIDENCE_SOURCE[unit.kind]
        last_good = stale.get(unit.url, "") if source == "resource" else ""
        evidence = Evidence(source=source, text=unit.text, url=unit.url,
                            highlights=highlight_spans(prepared.terms, unit.text), stale=bool(last_good),
                            last_good=last_good)
        urls = {r.url for r in entry.resources}
        return Result(id=entry.id, question=entry.question, answer=entry.answer, category=entry.category,
                      score=round(score, 4), resources=list(entry.resources), evidence=evidence,
                      dead=sorted(urls & dead), stale={u: d for u, d in stale.items() if u in urls})
