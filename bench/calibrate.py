"""Pick the answer threshold from development queries, using each query's top-1 score.

A query is answered when its top entry scores at or above the threshold. Two objectives:

- `constrained` (default): the threshold refuses at most `max_refused_answerable`
  (5%) of the answerable queries and, within that, refuses as many out-of-scope
  queries as possible; of the thresholds that do so, the lowest is taken, placed
  halfway between the highest refused out-of-scope score and the next score
  above it (a margin, rather than a value fitted to one query).
- `accuracy`: maximises (out-of-scope refused + answerable answered) / all.

Whether an answerable query's top-1 is the right entry does not matter here:
the threshold only decides whether the nearest entries are presented as an answer.

CLI (a set of the benchmark, built or reused in bench/out/, its dev cases):

    .venv/bin/python bench/calibrate.py --set stackfaq --config final

or any index and case file:

    .venv/bin/python bench/calibrate.py --index-dir data/index bench/eval/shipped_faq.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Sequence  # noqa: E402

import numpy as np  # noqa: E402

OBJECTIVES = ("constrained", "accuracy")
#: Thresholds are compared with scores rounded like the product's (4 decimals).
DECIMALS = 4


@dataclass
class Calibration:
    threshold: float
    objective: str
    answerable: int
    unanswerable: int
    #: Shares at `threshold` on the calibration queries themselves.
    refused_unanswerable: float
    refused_answerable: float
    accuracy: float
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def refusal_rates(top_scores: Sequence[float | None], answerable: Sequence[bool],
                  threshold: float) -> tuple[float, float, float]:
    """(refused unanswerable, refused answerable, accuracy) at `threshold`."""
    s = np.array([-math.inf if x is None else float(x) for x in top_scores], dtype=np.float64)
    a = np.asarray(answerable, dtype=bool)
    answered = s >= threshold
    ru = float((~answered[~a]).mean()) if (~a).any() else 0.0
    ra = float((~answered[a]).mean()) if a.any() else 0.0
    acc = float(((answered & a) | (~answered & ~a)).mean()) if len(a) else 0.0
    return round(ru, 4), round(ra, 4), round(acc, 4)


def calibrate(top_scores: Sequence[float | None], answerable: Sequence[bool], *,
              objective: str = "constrained", max_refused_answerable: float = 0.05,
              weights: Sequence[float] | None = None) -> Calibration:
    """The threshold for these queries' top-1 scores (None: the query had no result at all).

    `weights` (one per query) weigh the shares, e.g. to let several sets of
    different sizes count equally when pooled; the rates reported are weighted too.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}")
    s = np.array([-math.inf if x is None else round(float(x), DECIMALS) for x in top_scores], dtype=np.float64)
    a = np.asarray(answerable, dtype=bool)
    if len(s) != len(a) or not len(s):
        raise ValueError("need one answerable flag per score, and at least one query")
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != s.shape or (w < 0).any() or not w.sum():
        raise ValueError("need one non-negative weight per query")
    finite = np.unique(s[np.isfinite(s)])
    if not len(finite):
        return Calibration(0.0, objective, int(a.sum()), int((~a).sum()), 1.0, 1.0, float((~a).mean()),
                           note="no query has any result")
    # Candidate thresholds: below every score, between each two consecutive scores, above every score.
    step = 10 ** -DECIMALS
    candidates = [finite[0] - step]
    for lo, hi in zip(finite[:-1], finite[1:]):
        t = round((lo + hi) / 2, DECIMALS)
        candidates.append(t if lo < t <= hi else hi)
    candidates.append(finite[-1] + step)
    cand = np.array(candidates)
    answered = s[None, :] >= cand[:, None]  # (thresholds, queries)
    n_a, n_u = int(a.sum()), int((~a).sum())
    refused_a = (~answered[:, a] * w[a]).sum(axis=1) / max(w[a].sum(), 1e-12)
    refused_u = (~answered[:, ~a] * w[~a]).sum(axis=1) / max(w[~a].sum(), 1e-12)
    accuracy = (((answered & a) | (~answered & ~a)) * w).sum(axis=1) / w.sum()
    note = ""
    if objective == "accuracy":
        best = int(np.flatnonzero(accuracy == accuracy.max())[0])
    else:
        feasible = refused_a <= max_refused_answerable + 1e-12
        if not n_u:
            note = "no out-of-scope query: the threshold refuses nothing"
        if not feasible.any():  # cannot happen (the lowest candidate refuses nothing) but stay total
            feasible[0] = True
        best_refusal = refused_u[feasible].max()
        best = int(np.flatnonzero(feasible & (refused_u == best_refusal))[0])
        if n_u and best_refusal == 0:
            note = "no out-of-scope query can be refused within the answerable budget"
    threshold = round(float(cand[best]), DECIMALS)
    answered_t = s >= threshold
    ru = float((~answered_t[~a] * w[~a]).sum() / max(w[~a].sum(), 1e-12)) if n_u else 0.0
    ra = float((~answered_t[a] * w[a]).sum() / max(w[a].sum(), 1e-12)) if n_a else 0.0
    acc = float((((answered_t & a) | (~answered_t & ~a)) * w).sum() / w.sum())
    return Calibration(threshold, objective, n_a, n_u, round(ru, 4), round(ra, 4), round(acc, 4), note)


# -- CLI ------------------------------------------------------------------------------------------
def _top_scores(searcher, cases) -> list[float | None]:
    scores = []
    for case in cases:
        response = searcher.search(case.query, top_k=1)
        scores.append(response.results[0].score if response.results else None)
    return scores


def main(argv: list[str] | None = None) -> int:
    from bench.configs import CONFIG_NAMES, config_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="?", type=Path, help="JSONL cases {query, expected} (with --index-dir)")
    parser.add_argument("--index-dir", type=Path, help="index to calibrate (default: the --set's index)")
    parser.add_argument("--set", dest="set_name", help="benchmark set (shipped, articles, stackfaq): its dev cases")
    parser.add_argument("--config", default="final", choices=CONFIG_NAMES)
    parser.add_argument("--objective", default="constrained", choices=OBJECTIVES)
    parser.add_argument("--max-refused-answerable", type=float, default=0.05)
    parser.add_argument("--json", action="store_true", help="print the calibration as JSON")
    args = parser.parse_args(argv)
    if bool(args.set_name) == bool(args.cases and args.index_dir):
        parser.error("give either --set NAME, or --index-dir DIR and a CASES file")

    from indexer.evaluate import read_cases, resolve_expected
    from indexer.search import Searcher

    def run(index_dir: Path, cases_path: Path) -> Calibration:
        searcher = Searcher.open(index_dir)
        searcher = searcher.with_settings(config_settings(args.config), threshold=searcher.threshold)
        cases = read_cases(cases_path)
        expected = resolve_expected(cases, searcher.stored.entries, str(cases_path))
        return calibrate(_top_scores(searcher, cases), [e is not None for e in expected], objective=args.objective,
                         max_refused_answerable=args.max_refused_answerable)

    if args.set_name:
        from bench.datasets import ensure_index, open_set

        with open_set(args.set_name) as eset:
            ensure_index(eset)
            result = run(eset.index_dir, eset.dev_cases)
    else:
        result = run(args.index_dir, args.cases)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"threshold {result.threshold:.4f} ({result.objective}; {result.answerable} answerable, "
              f"{result.unanswerable} out of scope): refuses {result.refused_unanswerable:.1%} of out-of-scope, "
              f"{result.refused_answerable:.1%} of answerable; accuracy {result.accuracy:.1%}"
              + (f"; {result.note}" if result.note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
