"""Measure retrieval on labelled queries: top-1, MRR, recall@5, and refusals.

Each case is `{"query": ..., "expected": ID or question text or null}`; null
means the FAQ has no answer and the right behaviour is `answered: false`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from .faq import FaqError

MRR_DEPTH = 10


@dataclass(frozen=True)
class Case:
    query: str
    expected: str | None
    line: int = 0


@dataclass
class EvalReport:
    queries: int = 0
    answerable: int = 0
    unanswerable: int = 0
    top1: float = 0.0
    mrr: float = 0.0
    recall_at_5: float = 0.0
    #: Share of unanswerable queries rightly refused (answered = false).
    refused_unanswerable: float = 0.0
    #: Share of answerable queries wrongly refused.
    refused_answerable: float = 0.0
    misses: list[dict[str, Any]] = field(default_factory=list)
    #: The answer threshold the searcher used (None when it has none).
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self, max_misses: int = 50) -> list[str]:
        out = [f"queries: {self.queries} ({self.answerable} answerable, {self.unanswerable} unanswerable)",
               f"top-1 accuracy: {self.top1:.3f}", f"MRR: {self.mrr:.3f}", f"recall@5: {self.recall_at_5:.3f}",
               f"unanswerable rightly refused: {self.refused_unanswerable:.3f}",
               f"answerable wrongly refused: {self.refused_answerable:.3f}"]
        if self.threshold is not None:
            out.append(f"answer threshold: {self.threshold:.4f}")
        if self.misses:
            out.append(f"missed ({len(self.misses)}):")
            for m in self.misses[:max_misses]:
                got = ", ".join(m["got"]) or "nothing"
                score = f" {m['score']:.2f}" if m.get("score") is not None else ""
                if m["expected"] is None:
                    why = f"answered (out of scope): got {got}{score}"
                elif m["rank"] == 1:
                    why = f"right entry first, but refused (score{score} < threshold)"
                else:
                    where = f"rank {m['rank']}" if m["rank"] else "not in the top 10"
                    why = f"expected {m['expected']} ({where}); got {got}{score}"
                out.append(f"  {m['query']!r}: {why}")
            if len(self.misses) > max_misses:
                out.append(f"  … and {len(self.misses) - max_misses} more (--json lists them all)")
        return out


class _Searcher(Protocol):
    def search(self, query: str, *, top_k: int | None = None) -> Any: ...


def read_cases(path: Path) -> list[Case]:
    cases = []
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except OSError as exc:
        raise FaqError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FaqError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("query"), str) or "expected" not in row:
            raise FaqError(f"{path}:{number}: expected {{\"query\": str, \"expected\": id, question or null}}")
        cases.append(Case(query=row["query"], expected=row["expected"], line=number))
    return cases


def resolve_expected(cases: Sequence[Case], entries: dict[str, Any], source: str = "") -> list[str | None]:
    """Map each case's expected value (an id or the question text) to an entry id."""
    by_question = {e.question.strip().lower(): e.id for e in entries.values()}
    ids = []
    for case in cases:
        if case.expected is None:
            ids.append(None)
            continue
        key = str(case.expected)
        entry_id = key if key in entries else by_question.get(key.strip().lower())
        if entry_id is None:
            raise FaqError(f"{source}:{case.line}: expected {key!r} is neither an entry id nor a question of the index")
        ids.append(entry_id)
    return ids


def evaluate(searcher: _Searcher, cases: Sequence[Case], expected_ids: Sequence[str | None]) -> EvalReport:
    report = EvalReport(queries=len(cases), threshold=getattr(searcher, "threshold", None))
    hits1 = rr = hits5 = refused_ok = refused_bad = 0.0
    for case, expected in zip(cases, expected_ids):
        response = searcher.search(case.query, top_k=MRR_DEPTH)
        ranked = [r.id for r in response.results]
        if expected is None:
            report.unanswerable += 1
            refused_ok += not response.answered
            if response.answered:
                report.misses.append({"query": case.query, "expected": None, "got": ranked[:1],
                                      "score": response.results[0].score})
            continue
        report.answerable += 1
        rank = ranked.index(expected) + 1 if expected in ranked else 0
        hits1 += rank == 1
        hits5 += 0 < rank <= 5
        rr += 1 / rank if rank else 0
        refused_bad += not response.answered
        if rank != 1 or not response.answered:
            report.misses.append({"query": case.query, "expected": expected, "rank": rank, "got": ranked[:1],
                                  "score": response.results[0].score if response.results else None,
                                  "answered": response.answered})
    if report.answerable:
        report.top1 = round(hits1 / report.answerable, 4)
        report.mrr = round(rr / report.answerable, 4)
        report.recall_at_5 = round(hits5 / report.answerable, 4)
        report.refused_answerable = round(refused_bad / report.answerable, 4)
    if report.unanswerable:
        report.refused_unanswerable = round(refused_ok / report.unanswerable, 4)
    return report
