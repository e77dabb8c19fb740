"""Search: dense (FAISS) and lexical (BM25) unit scores, fused, grouped per FAQ entry.

Each unit (question, answer, link title, page passage) gets a dense cosine
score and a BM25 score normalised to [0, 1] for the query; the fused unit score
is `kind_weight * ((1 - w) * dense + w * lexical)` (or reciprocal rank fusion
of the two, by `fusion`; or one signal alone, by `mode`), and a passage's score
is mixed with its entry's best direct match (`passage_context`). An entry scores
as its best unit (plus a share of its second best); the evidence shown is the
entry's unit whose text matched the query best. `answered` compares the top
entry's score with the threshold calibrated on development queries (stored in
the manifest).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import store
from .calibrate import calibrated_threshold
from .config import SearchSettings, Settings
from .embed import Embedder
from .lexical import Lexical, highlight_spans
from .onnx_encoder import OnnxQueryEncoder, load_query_encoder
from .query import PreparedQuery, prepare
from .records import Entry, Resource

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


@dataclass
class Result:
    id: str
    question: str
    answer: str
    category: str
    score: float
    resources: list[Resource]
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resources"] = [{"url": r.url, "title": r.title, "kind": r.kind, "site": r.site} for r in self.resources]
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


def _ranks(scores: np.ndarray, present: np.ndarray) -> np.ndarray:
    """1-based rank of each unit by `scores` among the `present` ones; inf elsewhere."""
    ranks = np.full(len(scores), np.inf, dtype=np.float64)
    order = np.flatnonzero(present)[np.argsort(-scores[present], kind="stable")]
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


def _fuse(dense: np.ndarray, lexical: np.ndarray, s: SearchSettings) -> np.ndarray:
    """One hybrid score per unit from its dense cosine and its normalised BM25 score."""
    if s.fusion == "rrf":
        rrf = 1.0 / (s.rrf_k + _ranks(dense, np.isfinite(dense))) + 1.0 / (s.rrf_k + _ranks(lexical, lexical > 0))
        return np.where(np.isfinite(dense) | (lexical > 0), rrf, -np.inf).astype(np.float32)
    if s.fusion != "weighted":
        raise ValueError(f"unknown fusion {s.fusion!r} (weighted or rrf)")
    return (1 - s.lexical_weight) * dense + s.lexical_weight * lexical


class ModelMismatch(store.IndexError_):
    pass


class Searcher:
    """Everything loaded once: the index, the model, the BM25 side. `search` is cheap after that."""

    def __init__(self, stored: store.StoredIndex, embedder: Embedder | OnnxQueryEncoder,
                 settings: SearchSettings | None = None, *, threshold: float | None = None,
                 lexical: Lexical | None = None) -> None:
        self.stored = stored
        self.embedder = embedder
        self.settings = settings or SearchSettings()
        if threshold is None:
            threshold = calibrated_threshold(stored.manifest, self.settings)
        if threshold is None:
            if stored.manifest.get("calibration"):
                log.warning("%s: its threshold was calibrated under other search settings; using the default "
                            "%.4f until `python -m indexer calibrate` is run again", stored.path,
                            self.settings.answer_threshold)
            threshold = self.settings.answer_threshold
        self.threshold = threshold
        self.units = stored.units
        self.entry_ids = list(stored.entries)
        position = {entry_id: i for i, entry_id in enumerate(self.entry_ids)}
        self.unit_entry = np.array([position[u.entry_id] for u in self.units], dtype=np.int64)
        self.kind_weight = np.array([self.settings.kind_weights.get(u.kind, 1.0) for u in self.units], np.float32)
        self.unit_mask = np.array([u.kind in self.settings.unit_kinds for u in self.units], dtype=bool)
        self.is_passage = np.array([u.kind == "passage" for u in self.units], dtype=bool)
        order = np.argsort(self.unit_entry, kind="stable")
        self.entry_units = np.split(order, np.searchsorted(self.unit_entry[order], np.arange(1, len(self.entry_ids))))
        self.lexical = lexical or Lexical([u.text for u in self.units])

    @classmethod
    def open(cls, index_dir: Path, *, model: str | None = None, settings: Settings | None = None,
             threshold: float | None = None, cache_dir: Path | None = None,
             encoder_for: Callable[[str], Embedder | OnnxQueryEncoder] | None = None) -> "Searcher":
        """The index at `index_dir`; queries use the build's ONNX export under `cache_dir` when it is there.

        `encoder_for(model name)` supplies an already loaded encoder instead (the app keeps one
        per process across rebuilds).
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
        env_threshold = os.environ.get("FAQ_ANSWER_THRESHOLD")
        if threshold is None and env_threshold:
            threshold = float(env_threshold)
        return cls(stored, embedder, settings.search, threshold=threshold)

    def with_settings(self, settings: SearchSettings, *, threshold: float | None = None) -> "Searcher":
        """The same loaded index and model under other settings (for tuning and benchmarks)."""
        return Searcher(self.stored, self.embedder, settings, threshold=threshold if threshold is not None
                        else self.threshold, lexical=self.lexical)

    # -- scoring ------------------------------------------------------------------
    def prepare(self, query: str) -> PreparedQuery:
        return prepare(query, self.lexical, self.embedder.count_tokens, self.embedder.max_tokens - 2)

    def unit_scores(self, prepared: PreparedQuery, vector: np.ndarray | None = None) -> np.ndarray:
        """Every unit's score as evidence for its entry: its match, kind-weighted and in entry context."""
        return self.weigh(self.match_scores(prepared, vector))

    def match_scores(self, prepared: PreparedQuery, vector: np.ndarray | None = None) -> np.ndarray:
        """How well each unit's own text matches the query (fused); -inf where a unit is not a candidate."""
        s = self.settings
        n = len(self.units)
        fused = np.full(n, -np.inf, dtype=np.float32)
        if n == 0:
            return fused
        k = min(s.candidates, n)
        dense = np.full(n, -np.inf, dtype=np.float32)
        if s.mode in ("dense", "hybrid"):
            if vector is None:
                vector = self.embedder.encode([prepared.dense_text])[0]
            sims, ids = self.stored.faiss_index.search(vector.reshape(1, -1), k)
            valid = ids[0] >= 0
            dense[ids[0][valid]] = sims[0][valid]
        lexical = np.zeros(n, dtype=np.float32)
        if s.mode in ("lexical", "hybrid") and prepared.terms:
            if s.lexical_norm == "max":
                raw = self.lexical.scores(prepared.terms)
                lexical = raw / raw.max() if raw.max() > 0 else raw
            else:
                lexical = self.lexical.normalised_scores(prepared.terms)
        if s.mode == "dense":
            fused = dense
        elif s.mode == "lexical":
            fused = np.where(lexical > 0, lexical, -np.inf).astype(np.float32)
        else:
            extra = np.argsort(-lexical)[:k]
            extra = extra[(lexical[extra] > 0) & ~np.isfinite(dense[extra])]
            for i in extra:  # lexical-only candidates still need their dense score
                dense[i] = float(self.stored.faiss_index.reconstruct(int(i)) @ vector)
            fused = _fuse(dense, lexical, s)
        return np.where(self.unit_mask, fused, -np.inf).astype(np.float32)

    def weigh(self, matches: np.ndarray) -> np.ndarray:
        """Match scores as evidence for the entries: kind-weighted, passages in their entry's context.

        A passage's score is mixed with its entry's best direct unit (`passage_context`).
        """
        fused = (self.kind_weight * matches).astype(np.float32)
        c = self.settings.passage_context
        if not c or not self.is_passage.any():
            return fused
        direct = np.full(len(self.entry_ids), -np.inf, dtype=np.float32)
        np.maximum.at(direct, self.unit_entry[~self.is_passage], fused[~self.is_passage])
        context = direct[self.unit_entry]
        mixed = (1 - c) * fused + c * context
        use = self.is_passage & np.isfinite(fused) & np.isfinite(context)
        return np.where(use, mixed, fused).astype(np.float32)

    def entry_scores(self, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score per entry, index of its best unit) from unit scores."""
        n_entries = len(self.entry_ids)
        best = np.full(n_entries, -np.inf, dtype=np.float32)
        best_unit = np.full(n_entries, -1, dtype=np.int64)
        second = np.full(n_entries, -np.inf, dtype=np.float32)
        for u in np.argsort(-fused):
            if not np.isfinite(fused[u]):
                break
            e = self.unit_entry[u]
            if best_unit[e] < 0:
                best[e], best_unit[e] = fused[u], u
            elif not np.isfinite(second[e]):
                second[e] = fused[u]
        if self.settings.second_unit_weight:
            best = best + self.settings.second_unit_weight * np.where(np.isfinite(second), np.maximum(second, 0), 0)
        return best, best_unit

    # -- public -------------------------------------------------------------------
    def search(self, query: str, *, top_k: int | None = None) -> SearchResponse:
        top_k = top_k or self.settings.top_k
        prepared = self.prepare(query)
        if not prepared.text or not self.units:
            return SearchResponse(query=query, answered=False, results=[], threshold=self.threshold)
        matches = self.match_scores(prepared)
        scores, _ = self.entry_scores(self.weigh(matches))
        ranked = [int(e) for e in np.argsort(-scores) if np.isfinite(scores[e])][:top_k]
        results = [self._result(e, float(scores[e]), self._evidence_unit(e, matches), prepared) for e in ranked]
        answered = bool(results) and results[0].score >= self.threshold
        return SearchResponse(query=query, answered=answered, results=results, threshold=self.threshold,
                              corrections=prepared.corrections)

    def _evidence_unit(self, entry_pos: int, matches: np.ndarray) -> int:
        """The entry's unit whose own text matches the query best.

        Kind weights say how far a unit kind is trusted to rank an entry; what to
        show as the reason is the text that matched best, so a page passage that
        explains the answer wins over a terse link title that scores a little higher
        once weighted.
        """
        units = self.entry_units[entry_pos]
        return int(units[np.argmax(matches[units])])

    def _result(self, entry_pos: int, score: float, unit_pos: int, prepared: PreparedQuery) -> Result:
        entry: Entry = self.stored.entries[self.entry_ids[entry_pos]]
        unit = self.units[unit_pos]
        evidence = Evidence(source=_EVIDENCE_SOURCE[unit.kind], text=unit.text, url=unit.url,
                            highlights=highlight_spans(prepared.terms, unit.text))
        return Result(id=entry.id, question=entry.question, answer=entry.answer, category=entry.category,
                      score=round(score, 4), resources=list(entry.resources), evidence=evidence)
