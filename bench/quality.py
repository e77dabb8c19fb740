"""Retrieval quality, leave-one-set-out, and query latency of each search configuration.

Every FAQ set (bench/evalsets.py) is built, or reused when nothing that goes
into it changed, and every query of every query family is scored once
(bench/collect.py). Then, for each family F in turn (a "set" of the
leave-one-set-out table: one way of asking, on one FAQ), everything a
configuration tunes is fitted on the dev halves of all the other families and
scored on F, which was never seen:

- `zscore`, `minmax`: their one lexical weight (a grid, family-balanced MRR);
- `learned`: the softmax-with-none ranker (bench/learn.py, what bench/train_ranker.py ships);
- every other configuration: its answer threshold (refuse at most 2% of answerable
  queries, as many out-of-scope ones as possible, every family weighing the same);
  `learned` answers from a fixed probability (bench/learn.py ANSWER_PROBABILITIES, chosen
  leave-one-set-out on the dev halves: fitted per fold, it swung with the hardest family).

A family that appears on two indexes (the shipped FAQ offline and online) is
held out of both. The left-out family is scored on its test half (the default)
or, while choosing settings, on its dev half (`--half dev`), so that choices
never look at a test half. The per-set table (everything fitted on all dev
halves, i.e. what the product ships) stays for reference. Latency is the real
`Searcher.search` (embedding included) of `final` against `dense-all`,
interleaved on a sample of each set's queries.

    .venv/bin/python -m bench.quality                 # everything; rewrites bench/RESULTS.md
    .venv/bin/python -m bench.quality --half dev --no-results --sets shipped,stackfaq
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench import learn
from bench.collect import DEPTH, FIXED, Ranking, Record, collect_set
from bench.common import (OUT, ROOT, SetUnavailable, command_line, git_revision, machine, machine_line, now,
                          update_section, write_raw)
from bench.configs import config_settings, describe
from bench.evalsets import SET_NAMES, ensure_index, open_set
from bench.learn import pooled_refusal
from indexer import ranker as ranker_file
from indexer.threshold import is_answer

log = logging.getLogger("bench.quality")

FITTED = ("zscore", "minmax", "learned")
CONFIGS = FIXED + FITTED
#: The references `learned` must not lose to on any left-out set.
REFERENCES = ("dense-all", "bm25")


# -- fitting and scoring one fold -----------------------------------------------------------------------
def fit(config: str, train: Sequence[Record]) -> dict[str, Any]:
    """What `config` tunes, fitted on `train` (dev records): its weight or ranker, and its threshold."""
    if config in ("zscore", "minmax"):
        weight = learn.choose_weight(train, config)
        return {"weight": weight, "threshold": learn.fit_threshold(
            train, learn.weighted_rankings(train, config, weight))}
    if config == "learned":
        ranker = learn.fit_shipped_form(train)  # the FAQ shift, or the hidden layer, when shipped with it
        return {"ranker": ranker, "threshold": ranker.answer_threshold}
    return {"threshold": learn.fit_threshold(train, [r.rankings[config] for r in train])}


def rankings(config: str, fitted: dict[str, Any], records: Sequence[Record]) -> list[Ranking]:
    if config in ("zscore", "minmax"):
        return learn.weighted_rankings(records, config, fitted["weight"])
    if config == "learned":
        return learn.learned_rankings(records, fitted["ranker"])
    return [r.rankings[config] for r in records]


def rows_of(records: Sequence[Record]) -> dict[tuple[str, str], list[Record]]:
    out: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        out.setdefault((r.set, r.family), []).append(r)
    return out


def learned_folds(records: Sequence[Record], families: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`fit("learned", ...)` for each family left out, the folds spread over the machine's cores
    (`learn.map_folds`): with a hidden layer a fold takes about a minute."""
    def fold(family: str) -> dict[str, Any]:
        return fit("learned", [r for r in records if r.half == "dev" and r.family != family])

    return dict(zip(families, learn.map_folds(fold, families)))


def leave_one_out(records: Sequence[Record], half: str) -> dict[str, Any]:
    """Per (set, family) row, per config: metrics on the left-out family's `half`, fitted without it."""
    families = sorted({r.family for r in records})
    learned = learned_folds(records, families)
    table: dict[str, dict[str, Any]] = {}
    pooled: dict[str, list[tuple[Record, Ranking, float]]] = {c: [] for c in CONFIGS}
    params: dict[str, dict[str, Any]] = {}
    reciprocal: dict[str, dict[str, np.ndarray]] = {}
    for family in families:
        train = [r for r in records if r.half == "dev" and r.family != family]
        held = [r for r in records if r.half == half and r.family == family]
        for config in CONFIGS:
            fitted = learned[family] if config == "learned" else fit(config, train)
            params.setdefault(config, {})[family] = {k: (round(v, 4) if isinstance(v, float) else None)
                                                     for k, v in fitted.items() if k != "ranker"}
            for (set_name, fam), recs in rows_of(held).items():
                ranked = rankings(config, fitted, recs)
                table.setdefault(f"{set_name} / {fam}", {})[config] = learn.metrics(recs, ranked, fitted["threshold"])
                if config == "learned" or config in REFERENCES:  # what the interval against the reference reads
                    reciprocal.setdefault(f"{set_name} / {fam}", {})[config] = learn.reciprocal_ranks(recs, ranked)
                pooled[config] += [(rec, rk, fitted["threshold"]) for rec, rk in zip(recs, ranked)]
    return {"rows": table, "pooled": {c: pooled_refusal(v) for c, v in pooled.items()},
            "pooled_lengths_matched": {c: pooled_refusal(v, lengths_matched=True) for c, v in pooled.items()},
            "params": params,
            "against_reference": {row: against_reference(table[row], rr) for row, rr in reciprocal.items()}}


def better_reference(by_config: dict[str, Any]) -> str:
    """The reference `learned` is held to on a row: the one of REFERENCES with the higher MRR (then top-1)."""
    return max(REFERENCES, key=lambda r: (by_config[r]["mrr"], by_config[r]["top1"]))


def against_reference(by_config: dict[str, Any], reciprocal: dict[str, np.ndarray]) -> dict[str, Any]:
    """`learned` minus the better reference on one row, with a paired bootstrap interval on the MRR difference."""
    ref = better_reference(by_config)
    lo, hi = learn.paired_interval(reciprocal["learned"], reciprocal[ref])
    return {"reference": ref,
            "top1": by_config["learned"]["top1"] - max(by_config[r]["top1"] for r in REFERENCES),
            "mrr": by_config["learned"]["mrr"] - by_config[ref]["mrr"], "mrr_low": lo, "mrr_high": hi}


def per_set(records: Sequence[Record], half: str) -> dict[str, Any]:
    """Everything fitted on all dev halves (what the product ships), scored on each row's `half`."""
    dev = [r for r in records if r.half == "dev"]
    table: dict[str, dict[str, Any]] = {}
    fitted_all = {config: fit(config, dev) for config in CONFIGS}
    for (set_name, fam), recs in rows_of([r for r in records if r.half == half]).items():
        for config, fitted in fitted_all.items():
            table.setdefault(f"{set_name} / {fam}", {})[config] = learn.metrics(
                recs, rankings(config, fitted, recs), fitted["threshold"])
    return {"rows": table, "thresholds": {c: f["threshold"] for c, f in fitted_all.items()},
            "weights": {c: f.get("weight") for c, f in fitted_all.items() if "weight" in f}}


# -- latency ----------------------------------------------------------------------------------------------
def measure_latency(eset, sample: list[str]) -> dict[str, Any]:
    """Mean / median wall time of `Searcher.search` per query for `final` and `dense-all` (interleaved)."""
    from indexer.config import Settings
    from indexer.search import Searcher

    base = Searcher.open(eset.index_dir, settings=Settings(search=config_settings("dense-all")), threshold=0.0)
    searchers = {name: base.with_settings(config_settings(name), threshold=0.0) for name in ("final", "dense-all")}
    times: dict[str, list[float]] = {name: [] for name in searchers}
    names = list(searchers)
    for q in sample[:2]:  # warm-up, untimed
        for name in names:
            searchers[name].search(q, top_k=DEPTH)
    for i, q in enumerate(sample):
        for name in names[i % 2:] + names[:i % 2]:
            started = time.perf_counter()
            searchers[name].search(q, top_k=DEPTH)
            times[name].append(time.perf_counter() - started)
    return {"sample": len(sample), "mean_ms": {k: round(float(np.mean(v)) * 1000, 2) for k, v in times.items() if v},
            "median_ms": {k: round(float(np.median(v)) * 1000, 2) for k, v in times.items() if v}}


def _sample(items: Sequence[str], n: int) -> list[str]:
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def write_misses(path: Path, records: Sequence[Record], ranker: Any, threshold: float) -> None:
    """The dev queries the shipped ranker gets wrong (wrong top-1, wrongly refused, wrongly answered)."""
    lines = []
    for rec, rk in zip(records, learn.learned_rankings(records, ranker)):
        answered = is_answer(rk.top_score, threshold)
        if rec.answerable and rk.ids[:1] == [rec.expected] and answered or not rec.answerable and not answered:
            continue
        kind = ("answered (out of scope)" if not rec.answerable else
                "wrong top-1" if rk.ids[:1] != [rec.expected] else "refused (answerable)")
        got = ", ".join(f"{i} {s:.3f}" for i, s in zip(rk.ids[:3], rk.scores[:3]))
        lines.append(f"[{rec.set} / {rec.family}] [{kind}] {rec.query!r}\n    expected: {rec.expected} "
                     f"(rank {learn.rank_of(rk, rec.expected) if rec.answerable else '-'}); got: {got}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# dev misses of the ranker fitted on all dev halves (threshold {threshold:.4f})\n\n"
                    + "\n".join(lines) + "\n", "utf-8")


# -- rendering ---------------------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pair(m: dict[str, Any]) -> str:
    return f"{fmt(m['top1'])} / {fmt(m['mrr'])}"


def _table(rows: dict[str, dict[str, Any]], configs: Sequence[str], bold: str = "learned") -> list[str]:
    lines = ["| set / family (queries) | " + " | ".join(configs) + " | refused OOS / ans. (" + bold + ") |",
             "| --- |" + " ---: |" * (len(configs) + 1)]
    for row, by_config in rows.items():
        m = by_config[bold]
        cells = []
        for c in configs:
            cell = _pair(by_config[c])
            cells.append(f"**{cell}**" if c == bold else cell)
        refusal = f"{fmt(m['refused_unanswerable'], 2)} / {fmt(m['refused_answerable'], 2)}"
        lines.append(f"| {row} ({m['answerable']}+{m['unanswerable']}) | " + " | ".join(cells) + f" | {refusal} |")
    return lines


def _bins(bounds: Sequence[int]) -> str:
    """Upper bounds (the last bin open) as labels: (2, 3, 5) -> "1-2, 3, 4-5, 6+"."""
    labels, low = [], 1
    for high in bounds:
        labels.append(f"{low}-{high}" if low < high else str(high))
        low = high + 1
    return ", ".join(labels + [f"{low}+"])


def target_lines(loso: dict[str, Any]) -> list[str]:
    """`learned` against the better of dense-all and BM25 on each left-out row."""
    out = ["| set / family | learned top-1 / MRR | better reference (top-1 / MRR) | Δ top-1 | Δ MRR | "
           f"Δ MRR, {learn.BOOTSTRAP_LEVEL:.0%} interval |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row, by_config in loso["rows"].items():
        d = loso["against_reference"][row]
        out.append(f"| {row} | {_pair(by_config['learned'])} | {d['reference']} {_pair(by_config[d['reference']])} "
                   f"| {d['top1']:+.3f} | {d['mrr']:+.3f} | {d['mrr_low']:+.3f} to {d['mrr_high']:+.3f} |")
    return out


def render(run: dict[str, Any]) -> str:
    half = run["half"]
    lines = ["## Retrieval quality (leave-one-set-out) and latency", "",
             f"- date: {run['date']}; runtime {run['runtime_s']:.0f}s; machine: {run['machine_line']}",
             f"- model: {run['model']}; indexer at {run['revision']}; command: `{run['command']}`",
             "- cells: top-1 / MRR@10 over the answerable queries of the row's "
             f"**{half}** half; *refused OOS / ans.*: share of out-of-scope queries refused / of answerable "
             "queries refused, at each configuration's threshold: for `learned` the fixed probability "
             f"{learn.answer_probability(run['model']):g} (bench/learn.py ANSWER_PROBABILITIES), for the others fitted with the "
             f"rest (refuse at most {learn.MAX_REFUSED_ANSWERABLE:.0%} of answerable dev queries, then as many "
             "out-of-scope ones as possible). (n+m): answerable + out-of-scope queries.",
             "", "Configurations:", ""]
    for name in CONFIGS:
        lines.append(f"- `{name}`: {describe(config_settings(name))}")
    shipped = ranker_file.for_model(run["model"])
    fitted_on = len(ranker_file.load(shipped).trained.get("dev_queries") or {})
    lines += [f"- `final` is what config.py runs: `learned` with the ranker shipped for the model "
              f"({shipped.relative_to(ROOT)}), fitted by bench/train_ranker.py on the dev halves of the "
              f"{fitted_on} rows its file lists (`trained.dev_queries`).", ""]
    loso = run["loso"]
    lines += ["### Leave-one-set-out", "",
              "Each row's family was left out of every fit (weights, ranker, threshold) and is scored on its "
              f"{half} half. This is the number that predicts a new FAQ or a new way of asking.", ""]
    lines += _table(loso["rows"], CONFIGS)
    lines += ["", "`learned` against the better of `dense-all` and `bm25` on each left-out row; the interval is a "
              f"paired bootstrap over the row's answerable queries ({learn.BOOTSTRAP_RESAMPLES} resamples): a "
              "difference whose interval holds 0 is within what the row's size can tell.", ""]
    lines += target_lines(loso)
    lines += ["", "Refusal over all left-out queries (every row weighing the same), refused OOS / refused ans. "
              "(refused ans. whose top entry was the expected one: a right answer withheld; the rest had a wrong "
              "entry first): "
              + "; ".join(f"{c} {fmt(v.get('refused_unanswerable'), 2)} / {fmt(v.get('refused_answerable'), 2)} "
                          f"({fmt(v.get('refused_answerable_right'), 2)})"
                          for c, v in loso["pooled"].items() if v) + ".", ""]
    if loso.get("pooled_lengths_matched"):
        lines += ["The same with each family's out-of-scope queries weighted to its answerable queries' lengths "
                  f"(searched words binned {_bins(learn.LENGTH_BINS)}; "
                  "`bench/learn.py length_matched`), so that length alone cannot tell the two kinds apart: "
                  + "; ".join(f"{c} {fmt(v.get('refused_unanswerable'), 2)} / {fmt(v.get('refused_answerable'), 2)}"
                              for c, v in loso["pooled_lengths_matched"].items() if v) + ".", ""]
    weights = {c: sorted({float(p['weight']) for p in loso["params"][c].values()}) for c in ("zscore", "minmax")}
    lines += ["Weights chosen per fold: " + "; ".join(f"{c} {v}" for c, v in weights.items()) + ".", ""]
    ref = run["per_set"]
    lines += ["### Per set, everything fitted on all dev halves (reference)", "",
              f"What the product ships, scored on each row's {half} half. Thresholds: "
              + ", ".join(f"{c} {t:.4f}" for c, t in ref["thresholds"].items())
              + "; weights: " + ", ".join(f"{c} {w}" for c, w in ref["weights"].items()) + ".", ""]
    lines += _table(ref["rows"], CONFIGS)
    lines += ["", "### Sets and latency", "",
              "| set | entries | units | index | searcher open | `final` / `dense-all` ms per query, median (mean) "
              "| ratio by median |", "| --- | ---: | ---: | --- | ---: | --- | ---: |"]
    for set_name, res in run["sets"].items():
        if "skipped" in res:
            lines.append(f"| {set_name} | skipped: {res['skipped']} | | | | | |")
            continue
        build = res["build"]
        how = "reused" if build["reused"] else f"built in {build['seconds']:.0f}s"
        timing = "not measured (`--latency-sample 0`) | –"
        if "latency" in res:
            med, mean = res["latency"]["median_ms"], res["latency"]["mean_ms"]
            timing = (f"{med['final']:.1f} ({mean['final']:.1f}) / {med['dense-all']:.1f} ({mean['dense-all']:.1f}) "
                      f"| {med['final'] / med['dense-all']:.2f}×")
        lines.append(f"| {set_name} | {res['entries']} | {res['units']} | {how} | {res['open_seconds']:.1f}s "
                     f"| {timing} |")
    lines += ["", "Latency: `Searcher.search` wall time with the query embedding, the two configurations "
              "interleaved query by query on an evenly spaced sample of the set's queries. Misses of the shipped "
              "ranker on the dev halves: `bench/out/misses.txt`; raw numbers: `bench/out/quality.json` "
              "(`--json`)."]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------------------
def collect(set_names: Sequence[str], work_dir: Path, rebuild: bool, latency_sample: int
            ) -> tuple[list[Record], dict[str, Any]]:
    records: list[Record] = []
    sets: dict[str, Any] = {}
    for set_name in set_names:
        print(f"[{set_name}] preparing…", file=sys.stderr, flush=True)
        try:
            with open_set(set_name, work_dir) as eset:
                t = time.monotonic()
                build = ensure_index(eset, rebuild=rebuild)
                print(f"[{set_name}] index {'reused' if build['reused'] else 'built'} "
                      f"({time.monotonic() - t:.1f}s); scoring…", file=sys.stderr, flush=True)
                recs, info = collect_set(set_name, eset)
                info["build"] = build
                queries = list(dict.fromkeys(r.query for r in recs))
                if latency_sample > 0:
                    info["latency"] = measure_latency(eset, _sample(queries, latency_sample))
                records += recs
                sets[set_name] = info
        except SetUnavailable as exc:
            print(f"[{set_name}] skipped: {exc}", file=sys.stderr)
            sets[set_name] = {"skipped": str(exc)}
    return records, sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SET_NAMES), help=f"comma-separated, of {', '.join(SET_NAMES)}")
    parser.add_argument("--half", choices=("test", "dev"), default="test",
                        help="which half of the left-out family is scored (dev while choosing settings)")
    parser.add_argument("--json", nargs="?", const=OUT / "quality.json", type=Path, metavar="PATH",
                        help="write raw numbers (default bench/out/quality.json)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild every index even if its inputs are unchanged")
    parser.add_argument("--latency-sample", type=int, default=40, help="queries per set timed with search() (40)")
    parser.add_argument("--work-dir", type=Path, default=OUT)
    results_flag = parser.add_mutually_exclusive_group()
    results_flag.add_argument("--results", dest="results", action="store_true", default=None,
                              help="rewrite the quality section of bench/RESULTS.md (default: full test run only)")
    results_flag.add_argument("--no-results", dest="results", action="store_false")
    args = parser.parse_args(argv)
    set_names = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in set_names if s not in SET_NAMES]
    if unknown:
        raise SystemExit(f"unknown sets: {', '.join(unknown)} (known: {', '.join(SET_NAMES)})")
    write_results = args.results if args.results is not None else (
        set_names == list(SET_NAMES) and args.half == "test")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    from indexer.config import Settings

    run: dict[str, Any] = {"date": now(), "command": command_line(), "revision": git_revision(), "half": args.half,
                           "model": Settings().model}
    records, run["sets"] = collect(set_names, args.work_dir, args.rebuild, args.latency_sample)
    print(f"fitting and scoring {len(records)} records…", file=sys.stderr, flush=True)
    run["loso"] = leave_one_out(records, args.half)
    run["per_set"] = per_set(records, args.half)
    shipped = ranker_file.load(model=run["model"])
    write_misses(args.work_dir / "misses.txt", [r for r in records if r.half == "dev"], shipped,
                 shipped.answer_threshold)
    run["machine_line"] = machine_line(machine())
    run["runtime_s"] = round(time.monotonic() - started, 1)
    text = render(run)
    print(text)
    if write_results:
        update_section("quality", text)
        print("bench/RESULTS.md: quality section rewritten", file=sys.stderr)
    if args.json:
        write_raw(args.json, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
