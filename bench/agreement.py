"""Refusing by two models' agreement (docs/agreement.md): the dev halves, and the fifth blind look.

"Answered" today is one threshold on the default model's probability that its top entry answers.
The candidate keeps that ranking and uses two thresholds: `t_agree` when all-MiniLM-L6-v2's shipped
searcher (its own index of the same FAQ, its own ranker) puts the same entry first, `t_disagree`
when it does not. Both searchers are the product's own `Searcher.search`, each on its model's index.

    .venv/bin/python -m bench.agreement dev     # leave-one-set-out on the dev halves; the pair fitted on all
    .venv/bin/python -m bench.agreement blind   # the blind families: incumbent against the frozen pair

Raw numbers go to bench/out/agreement-<command>.json.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from bench.blind import EPSILON, WORK_DIRS, using_model
from bench.common import OUT, SetUnavailable, command_line, git_revision, now, write_raw
from bench.evalsets import ensure_index, open_set, written_families
from bench.learn import query_weights, refused_shares
from indexer import ranker as ranker_file
from indexer.evaluate import read_cases, resolve_expected
from indexer.models import MINILM, MPNET

#: The dev pool's sets built with both models when the pair was fitted (web has no MiniLM index; sql came
#: after, as the blind set).
DEV_SETS = ("shipped", "shipped-online", "articles", "stackfaq", "course", "dataeng", "mlops", "llm", "dl", "ab")
#: The blind families of the fifth look (bench/eval/README.md says how they were written); the answer cuts
#: joined the set with the pool, after the look.
BLIND = {"sql": written_families("sql")}
#: Thresholds tried for each of the pair.
GRID = np.round(np.arange(0.02, 0.60, 0.01), 2)
#: At most this share of answerable dev queries refused (pooled, every family weighing the same).
MAX_REFUSED_ANSWERABLE = 0.05
#: The candidate, fitted on all dev halves by `fit` and frozen before any blind line was scored.
FROZEN_PAIR: tuple[float, float] = (0.13, 0.23)
#: docs/agreement.md's rule: the candidate must refuse at least this many more points of out-of-scope
#: queries, and at most this many more points of answerable ones, than the incumbent.
MIN_OOS_GAIN = 3.0
MAX_ANSWERABLE_RISE = 0.5


@dataclass(frozen=True)
class Query:
    set: str
    family: str
    query: str
    expected: str | None
    #: The default model's top entry and its probability; MiniLM's top entry.
    top: str | None
    probability: float
    other_top: str | None

    @property
    def answerable(self) -> bool:
        return self.expected is not None

    @property
    def agree(self) -> bool:
        return self.top is not None and self.top == self.other_top


def collect(set_name: str, families: Sequence[tuple[str, str | None]] | None, half: str) -> list[Query]:
    """Every query of the set's families (`half`: "dev", or "all" for blind families), searched by both
    models' shipped searchers."""
    from indexer.search import Searcher

    searchers, cases = {}, {}
    for model in (MPNET, MINILM):
        with using_model(model), open_set(set_name, WORK_DIRS[model], families=families) as eset:
            ensure_index(eset)
            searchers[model] = Searcher.open(eset.index_dir, cache_dir=eset.cache_dir)
            if model == MPNET:
                for family, (dev, test) in eset.families().items():
                    cases[family] = [*read_cases(dev), *(read_cases(test) if half == "all" else [])]
    out = []
    for family, rows in cases.items():
        expected = resolve_expected(rows, searchers[MPNET].stored.entries, family)
        for case, exp in zip(rows, expected):
            best = searchers[MPNET].search(case.query, top_k=1).results
            other = searchers[MINILM].search(case.query, top_k=1).results
            out.append(Query(set_name, family, case.query, exp, best[0].id if best else None,
                             best[0].score if best else 0.0, other[0].id if other else None))
    return out


def refusal(queries: Sequence[Query], t_agree: float, t_disagree: float) -> dict[str, float]:
    """Shares refused, every (set, family) weighing the same (as bench.learn.pooled_refusal)."""
    cut = np.where([q.agree for q in queries], t_agree, t_disagree)
    return refused_shares(queries, np.array([q.probability for q in queries]) < cut)


def fit(queries: Sequence[Query], *, two: bool = True) -> tuple[float, float]:
    """The pair that refuses the most out-of-scope queries while refusing at most MAX_REFUSED_ANSWERABLE of
    answerable ones (ties: the lower t_agree, then the lower t_disagree); `two=False`: one threshold."""
    w = query_weights(queries)
    p = np.array([q.probability for q in queries])
    agree = np.array([q.agree for q in queries])
    ans = np.array([q.answerable for q in queries])
    below = p[:, None] < GRID[None, :]  # (queries, grid): refused at each threshold

    def share(group: np.ndarray, agreeing: bool) -> np.ndarray:
        """Per threshold, the share of `group` refused among its queries on which the models (dis)agree."""
        mask = group & (agree if agreeing else ~agree)
        return (below[mask] * w[mask, None]).sum(0) / max(w[group].sum(), 1e-12)

    a = share(ans, True)[:, None] + share(ans, False)[None, :]  # (t_agree, t_disagree)
    u = share(~ans, True)[:, None] + share(~ans, False)[None, :]
    feasible = a <= MAX_REFUSED_ANSWERABLE + 1e-12
    if not two:
        feasible &= np.eye(len(GRID), dtype=bool)
    if not feasible.any():
        return float(GRID[0]), float(GRID[0])
    i, j = np.unravel_index(np.argmax(np.where(feasible, u, -1.0)), u.shape)  # first maximum: row-major
    return float(GRID[i]), float(GRID[j])


def leave_one_set_out(queries: Sequence[Query], *, two: bool) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Fit on every set but one, apply to the one left out; pooled over the left-out sets, and per set."""
    cut: dict[int, tuple[float, float]] = {}
    folds = []
    for held in sorted({q.set for q in queries}):
        pair = fit([q for q in queries if q.set != held], two=two)
        mine = [i for i, q in enumerate(queries) if q.set == held]
        cut.update({i: pair for i in mine})
        folds.append({"set": held, "pair": pair, **refusal([queries[i] for i in mine], *pair)})
    p = np.array([q.probability for q in queries])
    refused = p < np.array([cut[i][0] if q.agree else cut[i][1] for i, q in enumerate(queries)])
    return refused_shares(queries, refused), folds


def decide(incumbent: dict[str, float], candidate: dict[str, float]) -> dict[str, Any]:
    gain = 100 * (candidate["refused_unanswerable"] - incumbent["refused_unanswerable"])
    rise = 100 * (candidate["refused_answerable"] - incumbent["refused_answerable"])
    met = {"a": gain >= MIN_OOS_GAIN - EPSILON, "b": rise <= MAX_ANSWERABLE_RISE + EPSILON}
    return {"oos_gain_points": gain, "answerable_rise_points": rise, "met": met, "ships": all(met.values())}


def _pct(share: dict[str, float]) -> str:
    return f"{100 * share.get('refused_unanswerable', float('nan')):.1f}% / {100 * share['refused_answerable']:.1f}%"


def run_dev() -> dict[str, Any]:
    queries = []
    for set_name in DEV_SETS:
        print(f"[{set_name}] searching the dev halves with both models…", file=sys.stderr, flush=True)
        try:
            queries += collect(set_name, None, "dev")
        except SetUnavailable as exc:
            print(f"[{set_name}] skipped: {exc}", file=sys.stderr)
    one, one_folds = leave_one_set_out(queries, two=False)
    two, two_folds = leave_one_set_out(queries, two=True)
    pair = fit(queries)
    ans = [q for q in queries if q.answerable]
    oos = [q for q in queries if not q.answerable]
    print(f"\n{len(queries)} dev queries; the models agree on {np.mean([q.agree for q in ans]):.0%} of answerable "
          f"and {np.mean([q.agree for q in oos]):.0%} of out-of-scope ones\n")
    print("| leave-one-set-out, pooled | out of scope / answerable refused |\n| --- | ---: |")
    print(f"| one threshold | {_pct(one)} |\n| two thresholds (agreement) | {_pct(two)} |\n")
    print("| left out | one threshold | refused | pair | refused |\n| --- | ---: | ---: | ---: | ---: |")
    for a, b in zip(one_folds, two_folds):
        print(f"| {a['set']} | {a['pair'][0]:.2f} | {_pct(a)} | {b['pair'][0]:.2f} / {b['pair'][1]:.2f} | {_pct(b)} |")
    print(f"\nfitted on all dev halves: t_agree {pair[0]:.2f}, t_disagree {pair[1]:.2f} "
          f"(in sample: {_pct(refusal(queries, *pair))})")
    return {"queries": [asdict(q) for q in queries], "loso_one": one, "loso_two": two, "folds_one": one_folds,
            "folds_two": two_folds, "pair": pair}


def run_blind() -> dict[str, Any]:
    queries = []
    for set_name, families in BLIND.items():
        print(f"[{set_name}] searching the blind families with both models…", file=sys.stderr, flush=True)
        queries += collect(set_name, families, "all")
    shipped = ranker_file.load(model=MPNET).answer_threshold
    incumbent = refusal(queries, shipped, shipped)
    candidate = refusal(queries, *FROZEN_PAIR)
    decision = decide(incumbent, candidate)
    print("\n| family | queries (out of scope) | incumbent refused | candidate refused |\n| --- | ---: | ---: | ---: |")
    for family in dict.fromkeys(q.family for q in queries):
        mine = [q for q in queries if q.family == family]
        print(f"| {family} | {len(mine)} ({sum(not q.answerable for q in mine)}) | "
              f"{_pct(refusal(mine, shipped, shipped))} | {_pct(refusal(mine, *FROZEN_PAIR))} |")
    print(f"| pooled | {len(queries)} | {_pct(incumbent)} | {_pct(candidate)} |\n")
    print(f"(a) out of scope {decision['oos_gain_points']:+.1f} points (needs >= +{MIN_OOS_GAIN}): "
          f"{'met' if decision['met']['a'] else 'not met'}; (b) answerable {decision['answerable_rise_points']:+.1f} "
          f"points (needs <= +{MAX_ANSWERABLE_RISE}): {'met' if decision['met']['b'] else 'not met'}; "
          f"{'the candidate ships' if decision['ships'] else 'the incumbent stays'}")
    return {"queries": [asdict(q) for q in queries], "incumbent_threshold": shipped, "pair": FROZEN_PAIR,
            "incumbent": incumbent, "candidate": candidate, "decision": decision}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("dev", "blind"))
    args = parser.parse_args(argv)
    result = run_dev() if args.command == "dev" else run_blind()
    write_raw(OUT / f"agreement-{args.command}.json", {"when": now(), "revision": git_revision(),
                                                       "command": command_line(), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
