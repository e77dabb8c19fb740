"""Retrieval quality and query latency of each search configuration on each evaluation set.

For every set (see bench/datasets.py) the index is built, or reused when
nothing that goes into it changed, and loaded once. Each query is prepared and
embedded ONCE per set; every configuration then scores it from that vector
(`Searcher.unit_scores(prepared, vector)` + `entry_scores`, exactly what
`Searcher.search` runs), and the metrics come from `indexer.evaluate.evaluate`
replaying those rankings. Latency is measured separately with the real
`Searcher.search` (embedding included) on an evenly spaced sample of queries,
the configurations interleaved query by query; the same pass checks that the
replayed rankings agree with `search`.

Each configuration's answer threshold is calibrated on the set's dev cases
(bench/calibrate.py); for shipped and articles that is the set itself, for
StackFAQ the dev half only (the test half is then measured with it). The
threshold pooled over all dev sets for `final` is the single value a product
would store.

    .venv/bin/python bench/quality.py                       # all sets, all configs; rewrites bench/RESULTS.md
    .venv/bin/python bench/quality.py --sets shipped --configs final,dense-all --json
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from bench.calibrate import calibrate, refusal_rates  # noqa: E402
from bench.common import OUT, SetUnavailable, command_line, git_revision, machine, machine_line, now, \
    update_section  # noqa: E402
from bench.configs import CONFIG_NAMES, config_settings, describe  # noqa: E402
from bench.datasets import SET_NAMES, ensure_index, open_set  # noqa: E402

log = logging.getLogger("bench.quality")

DEPTH = 10  # what indexer.evaluate asks for (MRR depth)


# -- replaying rankings -----------------------------------------------------------------------------
@dataclass
class Ranking:
    """The top entries of one query under one configuration, as `Searcher.search` would return them."""

    ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    @property
    def top_score(self) -> float | None:
        return self.scores[0] if self.scores else None


def rank(searcher, prepared, vector, depth: int = DEPTH) -> Ranking:
    if not prepared.text or not searcher.units:
        return Ranking()
    scores, best_unit = searcher.entry_scores(searcher.unit_scores(prepared, vector))
    order = [int(e) for e in np.argsort(-scores) if np.isfinite(scores[e])][:depth]
    return Ranking(ids=[searcher.entry_ids[e] for e in order], scores=[round(float(scores[e]), 4) for e in order],
                   kinds=[searcher.units[int(best_unit[e])].kind for e in order])


class Replay:
    """Quacks like a Searcher for `indexer.evaluate.evaluate`: answers from precomputed rankings."""

    def __init__(self, rankings: dict[str, Ranking], threshold: float) -> None:
        self.rankings = rankings
        self.threshold = threshold

    def search(self, query: str, *, top_k: int | None = None) -> Any:
        r = self.rankings[query]
        k = top_k or DEPTH
        results = [SimpleNamespace(id=i, score=s) for i, s in zip(r.ids[:k], r.scores[:k])]
        return SimpleNamespace(answered=bool(results) and results[0].score >= self.threshold, results=results)


# -- one set ----------------------------------------------------------------------------------------
def _report_dict(report) -> dict[str, Any]:
    data = report.to_dict()
    data["misses"] = len(data["misses"])
    return data


def _sample(items: Sequence[str], n: int) -> list[str]:
    if n <= 0 or not items:
        return []
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def evaluate_set(eset, config_names: Sequence[str], *, latency_sample: int, max_refused_answerable: float,
                 work_dir: Path) -> dict[str, Any]:
    from indexer.config import SearchSettings
    from indexer.evaluate import evaluate, read_cases, resolve_expected
    from indexer.search import Searcher

    started = time.perf_counter()
    searcher = Searcher.open(eset.index_dir)
    open_s = time.perf_counter() - started
    halves: dict[str, tuple[list, list]] = {}
    for half, path in (("dev", eset.dev_cases), ("test", eset.test_cases)):
        if path is not None:
            cases = read_cases(path)
            halves[half] = (cases, resolve_expected(cases, searcher.stored.entries, str(path)))
    queries = list(dict.fromkeys(c.query for cases, _ in halves.values() for c in cases))

    prepared = {q: searcher.prepare(q) for q in queries}
    started = time.perf_counter()
    vectors = dict(zip(queries, searcher.embedder.encode([prepared[q].dense_text for q in queries])))
    encode_ms = (time.perf_counter() - started) * 1000 / max(len(queries), 1)

    configured = SearchSettings().answer_threshold
    out: dict[str, Any] = {"note": eset.note, "entries": len(searcher.entry_ids), "units": len(searcher.units),
                           "open_seconds": round(open_s, 2), "query_encoder": type(searcher.embedder).__name__,
                           "queries": {h: {"total": len(c), "answerable": sum(e is not None for e in x),
                                           "unanswerable": sum(e is None for e in x)}
                                       for h, (c, x) in halves.items()},
                           "encode_ms_per_query_batched": round(encode_ms, 2),
                           "answerable": {h: [e is not None for e in x] for h, (_, x) in halves.items()},
                           "configs": {}}
    searchers, rankings_by_config = {}, {}
    for name in config_names:
        settings = config_settings(name)
        s = searcher.with_settings(settings, threshold=searcher.threshold)
        searchers[name] = s
        started = time.perf_counter()
        rankings = {q: rank(s, prepared[q], vectors[q]) for q in queries}
        scoring_ms = (time.perf_counter() - started) * 1000 / max(len(queries), 1)
        rankings_by_config[name] = rankings
        dev_cases, dev_expected = halves["dev"]
        dev_scores = [rankings[c.query].top_score for c in dev_cases]
        cal = calibrate(dev_scores, [e is not None for e in dev_expected],
                        max_refused_answerable=max_refused_answerable)
        result: dict[str, Any] = {"settings": asdict(settings), "scoring_ms": round(scoring_ms, 3),
                                  "threshold": cal.to_dict(), "top_scores": {}}
        for half, (cases, expected) in halves.items():
            report = evaluate(Replay(rankings, cal.threshold), cases, expected)
            result[half] = _report_dict(report)
            scores = [rankings[c.query].top_score for c in cases]
            answerable = [e is not None for e in expected]
            result["top_scores"][half] = scores
            ru, ra, _ = refusal_rates(scores, answerable, configured)
            result[half]["at_configured_threshold"] = {"threshold": configured, "refused_unanswerable": ru,
                                                       "refused_answerable": ra}
            if name == "final" and half == "dev":
                write_misses(work_dir / f"misses-{eset.name}.txt", eset, s, cases, expected, rankings, prepared,
                             vectors, cal.threshold)
        out["configs"][name] = result

    out["latency"] = measure_latency(searchers, rankings_by_config, _sample(queries, latency_sample))
    for name, ms in out["latency"]["ms_per_query"].items():
        out["configs"][name]["latency_ms"] = ms
    return out


def measure_latency(searchers: dict[str, Any], rankings: dict[str, dict[str, Ranking]],
                    sample: list[str]) -> dict[str, Any]:
    """Mean wall time of `Searcher.search` per query and config (interleaved), and agreement with the replay."""
    times: dict[str, list[float]] = {name: [] for name in searchers}
    disagree = {name: 0 for name in searchers}
    names = list(searchers)
    for q in sample[:2]:  # warm-up, untimed
        for name in names:
            searchers[name].search(q, top_k=DEPTH)
    for i, q in enumerate(sample):
        rotated = names[i % len(names):] + names[:i % len(names)]
        for name in rotated:
            started = time.perf_counter()
            response = searchers[name].search(q, top_k=DEPTH)
            times[name].append(time.perf_counter() - started)
            top = response.results[0].id if response.results else None
            replay = rankings[name][q].ids[:1]
            if top != (replay[0] if replay else None):
                disagree[name] += 1
    return {"sample": len(sample),
            "ms_per_query": {k: round(float(np.mean(v)) * 1000, 2) if v else None for k, v in times.items()},
            "median_ms": {k: round(float(np.median(v)) * 1000, 2) if v else None for k, v in times.items()},
            "top1_disagreements_with_replay": disagree}


def write_misses(path: Path, eset, searcher, cases, expected, rankings, prepared, vectors, threshold: float) -> None:
    """Every dev query `final` gets wrong (wrong top-1, wrongly refused, wrongly answered), with evidence."""
    entries = searcher.stored.entries
    lines = []
    counts = {"wrong top-1": 0, "refused (answerable)": 0, "answered (out of scope)": 0}
    for case, exp in zip(cases, expected):
        r = rankings[case.query]
        top = r.ids[0] if r.ids else None
        answered = r.top_score is not None and r.top_score >= threshold
        if exp is None:
            if not answered:
                continue
            kind = "answered (out of scope)"
        elif top != exp:
            kind = "wrong top-1"
        elif not answered:
            kind = "refused (answerable)"
        else:
            continue
        counts[kind] += 1
        lines.append(f"[{kind}] {case.query!r}")
        scores, best_unit = searcher.entry_scores(searcher.unit_scores(prepared[case.query], vectors[case.query]))
        position = {e: i for i, e in enumerate(searcher.entry_ids)}

        def describe_entry(entry_id: str) -> str:
            e = position[entry_id]
            if not np.isfinite(scores[e]):
                return f"{entry_id} {entries[entry_id].question!r}: not a candidate"
            higher = int((scores > scores[e]).sum())
            unit = searcher.units[int(best_unit[e])]
            text = " ".join(unit.text.split())
            return (f"{entry_id} {entries[entry_id].question!r}: rank {higher + 1}, score {scores[e]:.4f} via "
                    f"{unit.kind}: {text[:110]}{'…' if len(text) > 110 else ''}")

        if exp is not None:
            lines.append(f"    expected: {describe_entry(exp)}")
        if top is not None:
            lines.append(f"    got:      {describe_entry(top)}")
        else:
            lines.append("    got:      no result")
        lines.append("")
    header = [f"# misses of `final` on the {eset.name} dev cases ({eset.dev_cases.name}); answer threshold "
              f"{threshold:.4f} (calibrated on these cases)",
              "# " + ", ".join(f"{k}: {v}" for k, v in counts.items()), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header + lines) + "\n", "utf-8")


# -- all sets ---------------------------------------------------------------------------------------
def pooled_threshold(results: dict[str, Any], max_refused_answerable: float) -> dict[str, Any] | None:
    """One threshold for `final` from every set's dev cases together, and what it does on each set.

    Two poolings: every dev query counts once (StackFAQ, the largest set, dominates), and every set
    counts equally (each query weighted 1 / its set's dev size).
    """
    sets = {k: v for k, v in results.items() if "configs" in v and "final" in v["configs"]}
    if not sets:
        return None
    scores: list[float | None] = []
    answerable: list[bool] = []
    weights: list[float] = []
    for res in sets.values():
        dev = res["configs"]["final"]["top_scores"]["dev"]
        scores += dev
        answerable += res["answerable"]["dev"]
        weights += [1 / len(dev)] * len(dev)
    by_query = calibrate(scores, answerable, max_refused_answerable=max_refused_answerable)
    by_set = calibrate(scores, answerable, max_refused_answerable=max_refused_answerable, weights=weights)
    per_set = {}
    for name, res in sets.items():
        for half in res["queries"]:
            top = res["configs"]["final"]["top_scores"][half]
            flags = res["answerable"][half]
            row = {}
            for label, cal in (("by_query", by_query), ("by_set", by_set)):
                ru, ra, _ = refusal_rates(top, flags, cal.threshold)
                row[label] = {"refused_unanswerable": ru, "refused_answerable": ra}
            per_set[f"{name}/{half}"] = row
    return {"by_query": by_query.to_dict(), "by_set": by_set.to_dict(), "sets": list(sets), "per_set": per_set}


def fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def render(run: dict[str, Any]) -> str:
    lines = ["## Retrieval quality and latency", "",
             f"- date: {run['date']}; runtime {run['runtime_s']:.0f}s",
             f"- machine: {run['machine_line']}",
             f"- model: {run['model']}; indexer at {run['revision']}",
             f"- command: `{run['command']}`",
             "- metrics: top-1 / MRR (depth 10) / recall@5 over answerable queries; *refused OOS*: share of "
             "out-of-scope queries refused; *refused ans.*: share of answerable queries refused. Thresholds are "
             "calibrated per configuration on the dev cases (bench/calibrate.py: refuse at most "
             f"{run['max_refused_answerable']:.0%} of answerable dev queries, refuse as many out-of-scope as "
             "possible, lowest such threshold).",
             "- latency: mean wall time of `Searcher.search` (query embedding included), configurations "
             "interleaved on an evenly spaced sample of each set's queries; *scoring*: the same without the "
             "embedding (vector precomputed). The 2-core machine is shared with other work and single-query "
             "encoding with 2 torch threads suffers badly from contention: trust medians and ratios, not "
             "means.", ""]
    lines.append("Configurations:")
    lines.append("")
    for name, cfg in run["configs"].items():
        same = " (same settings as `final`)" if name != "final" and cfg["settings"] == run["configs"].get(
            "final", {}).get("settings") else ""
        lines.append(f"- `{name}`: {cfg['description']}{same}")
    lines.append("")
    for set_name, res in run["sets"].items():
        if "skipped" in res:
            lines += [f"### {set_name}", "", f"Skipped: {res['skipped']}", ""]
            continue
        build = res["build"]
        how = ("index reused (inputs unchanged)" if build["reused"]
               else f"index built in {build['seconds']:.1f}s")
        summ = build.get("summary") or {}
        counts = ""
        if summ:
            counts = (f"; {summ.get('entries')} entries, {summ.get('resources')} resources "
                      f"({summ.get('pages_fetched', 0)} fetched, {summ.get('pages_cached', 0)} cached, "
                      f"{summ.get('pages_failed', 0)} failed), {summ.get('passages')} units")
        for half in res["queries"]:
            q = res["queries"][half]
            title = set_name if len(res["queries"]) == 1 else f"{set_name} — {half} half"
            about = (f"{res['note']}. {how[0].upper()}{how[1:]}{counts}." if half == "dev"
                     else "Thresholds from the dev half.")
            lines += [f"### {title}", "",
                      f"{q['total']} queries ({q['answerable']} answerable, {q['unanswerable']} out of scope). "
                      f"{about}", ""]
            if half == "dev":
                lines += ["| config | top-1 | MRR | recall@5 | threshold | refused OOS | refused ans. "
                          "| ms/query mean (median) | scoring ms |",
                          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            else:
                lines += ["| config | top-1 | MRR | recall@5 | threshold (dev) | refused OOS | refused ans. |",
                          "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for name, cfg in res["configs"].items():
                m = cfg[half]
                row = (f"| {name} | {fmt(m['top1'])} | {fmt(m['mrr'])} | {fmt(m['recall_at_5'])} "
                       f"| {fmt(cfg['threshold']['threshold'], 4)} | {fmt(m['refused_unanswerable'])} "
                       f"| {fmt(m['refused_answerable'])} |")
                if half == "dev":
                    median = res["latency"]["median_ms"].get(name)
                    row += (f" {fmt(cfg.get('latency_ms'), 1)} ({fmt(median, 1)}) "
                            f"| {fmt(cfg['scoring_ms'], 2)} |")
                lines.append(row)
            lines.append("")
        lat = res["latency"]
        extra = [f"searcher opened in {res['open_seconds']:.1f}s (query encoder: {res['query_encoder']})",
                 f"query embedding alone (batched): {res['encode_ms_per_query_batched']:.1f} ms/query",
                 f"latency sample: {lat['sample']} queries"]
        ms = lat["ms_per_query"]
        med = lat["median_ms"]
        if ms.get("final") and ms.get("dense-all"):
            extra.append(f"final / dense-all latency: {ms['final'] / ms['dense-all']:.2f}× by mean, "
                         f"{med['final'] / med['dense-all']:.2f}× by median "
                         f"({med['final']:.1f} / {med['dense-all']:.1f} ms)")
        bad = {k: v for k, v in lat["top1_disagreements_with_replay"].items() if v}
        if bad:
            extra.append("top-1 of `search` differs from the replay on " +
                         ", ".join(f"{k}: {v}" for k, v in bad.items()) + " sampled queries")
        lines += ["; ".join(extra) + ".", ""]
    pooled = run.get("pooled")
    if pooled:
        q, e = pooled["by_query"], pooled["by_set"]
        configured = run["configured_threshold"]
        lines += ["### One threshold for `final`, pooled over all dev sets", "",
                  f"Calibrated on the {q['answerable']} answerable and {q['unanswerable']} out-of-scope dev queries "
                  f"of {', '.join(pooled['sets'])} together (same rule as above): **{q['threshold']:.4f}** with "
                  f"every query counted once, **{e['threshold']:.4f}** with every set weighted equally; "
                  f"config.py's fallback is {configured}. What each does per set (refused OOS / refused ans.):",
                  "",
                  f"| set | pooled by query ({q['threshold']:.4f}) | pooled by set ({e['threshold']:.4f}) "
                  f"| fallback ({configured}) |",
                  "| --- | ---: | ---: | ---: |"]
        for key, v in pooled["per_set"].items():
            set_name, half = key.split("/")
            at_cfg = run["sets"][set_name]["configs"]["final"][half]["at_configured_threshold"]
            cells = [f"{fmt(v[k]['refused_unanswerable'])} / {fmt(v[k]['refused_answerable'])}"
                     for k in ("by_query", "by_set")]
            cells.append(f"{fmt(at_cfg['refused_unanswerable'])} / {fmt(at_cfg['refused_answerable'])}")
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Misses of `final` on each dev set: `bench/out/misses-<set>.txt`; raw numbers: "
                 "`bench/out/quality.json` (with `--json`).")
    return "\n".join(lines) + "\n"


def _split(values: list[str] | None, known: Sequence[str], what: str) -> list[str]:
    """Comma-separated names (a configuration with :overrides is given alone, as one --configs)."""
    if not values:
        return list(known)
    chosen = [v.strip() for item in values for v in ([item] if ":" in item else item.split(",")) if v.strip()]
    unknown = [v for v in chosen if v.split(":", 1)[0] not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    if what == "configs":
        for name in chosen:
            try:
                config_settings(name)
            except (ValueError, TypeError) as exc:
                raise SystemExit(f"bad configuration {name!r}: {exc}") from None
    return list(dict.fromkeys(chosen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", action="append", help=f"comma-separated, of {', '.join(SET_NAMES)} (default all)")
    parser.add_argument("--configs", action="append",
                        help=f"comma-separated, of {', '.join(CONFIG_NAMES)} (default all); repeatable; a variant "
                             "'final:lexical_weight=0.2;mode=dense' (see bench/configs.py) goes alone")
    parser.add_argument("--json", nargs="?", const=OUT / "quality.json", type=Path, metavar="PATH",
                        help="write raw numbers (default bench/out/quality.json)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild every index even if its inputs are unchanged")
    parser.add_argument("--latency-sample", type=int, default=40, help="queries per set timed with search() (40)")
    parser.add_argument("--max-refused-answerable", type=float, default=0.05)
    parser.add_argument("--work-dir", type=Path, default=OUT)
    results_flag = parser.add_mutually_exclusive_group()
    results_flag.add_argument("--results", dest="results", action="store_true", default=None,
                              help="rewrite the quality section of bench/RESULTS.md (default: only on a full run)")
    results_flag.add_argument("--no-results", dest="results", action="store_false")
    args = parser.parse_args(argv)
    set_names = _split(args.sets, SET_NAMES, "sets")
    config_names = _split(args.configs, CONFIG_NAMES, "configs")
    write_results = args.results if args.results is not None else (
        set_names == list(SET_NAMES) and config_names == list(CONFIG_NAMES))

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    run: dict[str, Any] = {"date": now(), "command": command_line(), "revision": git_revision(),
                           "max_refused_answerable": args.max_refused_answerable, "sets": {}}
    info = machine()
    from indexer.config import SearchSettings, Settings

    run["model"] = Settings().model
    run["configured_threshold"] = SearchSettings().answer_threshold
    run["configs"] = {n: {"settings": asdict(config_settings(n)), "description": describe(config_settings(n))}
                      for n in config_names}
    for set_name in set_names:
        print(f"[{set_name}] preparing…", file=sys.stderr, flush=True)
        try:
            with open_set(set_name, args.work_dir) as eset:
                t = time.monotonic()
                build = ensure_index(eset, rebuild=args.rebuild)
                print(f"[{set_name}] index {'reused' if build['reused'] else 'built'} "
                      f"({time.monotonic() - t:.1f}s); evaluating…", file=sys.stderr, flush=True)
                t = time.monotonic()
                res = evaluate_set(eset, config_names, latency_sample=args.latency_sample,
                                   max_refused_answerable=args.max_refused_answerable, work_dir=args.work_dir)
                res["build"] = build
                res["eval_seconds"] = round(time.monotonic() - t, 1)
                print(f"[{set_name}] evaluated in {res['eval_seconds']:.1f}s", file=sys.stderr, flush=True)
        except SetUnavailable as exc:
            print(f"[{set_name}] skipped: {exc}", file=sys.stderr)
            res = {"skipped": str(exc)}
        run["sets"][set_name] = res
    run["pooled"] = pooled_threshold(run["sets"], args.max_refused_answerable) if "final" in config_names else None
    info = {**info, **{k: v for k, v in machine().items() if k == "torch"}}
    run["machine"] = info
    run["machine_line"] = machine_line(info)
    run["runtime_s"] = round(time.monotonic() - started, 1)
    text = render(run)
    print(text)
    if write_results:
        update_section("quality", text)
        print("bench/RESULTS.md: quality section rewritten", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(run, indent=1, ensure_ascii=False), "utf-8")
        print(f"raw numbers: {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
