"""Blind families scored with what each embedding model ships: the second model decision (docs/models.md).

The families here were written after every setting had been chosen, by agents that saw no result, and
nothing is fitted on them: every line of each is scored (no halves), each model with its shipped ranker
file and answer probability, the condition of a new FAQ meeting the product. The rule that reads these
numbers was committed before the families existed (docs/models.md, "A second look"); this script
computes its three criteria and says which model it picks.

    .venv/bin/python -m bench.blind                   # both models; raw numbers in bench/out/blind.json
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bench import learn
from bench.collect import DEPTH, Record, collect_set
from bench.common import OUT, SetUnavailable, command_line, git_revision, now, write_raw
from bench.evalsets import FAMILIES, ensure_index, open_set
from bench.quality import REFERENCES, against_reference, fmt, pooled_refusal, rows_of
from indexer import ranker as ranker_file
from indexer.models import MINILM, MPNET, short_name
from indexer.threshold import is_answer

log = logging.getLogger("bench.blind")

_SHIPPED_SECOND = (("shipped-paraphrases2", "shipped_paraphrases2.jsonl"),)
#: The blind families of each set (bench/eval/README.md says how each was written).
BLIND = {"dl": FAMILIES["dl"], "shipped": _SHIPPED_SECOND, "shipped-online": _SHIPPED_SECOND}
#: The incumbent first; each model's indexes live in its own work folder (as bench.quality --work-dir).
MODELS = {MINILM: OUT, MPNET: OUT / "mpnet"}
#: The rule of docs/models.md: mean row MRR gain, largest loss on a row, refusal slack (answerable, OOS).
MIN_MEAN_GAIN = 0.02
MAX_ROW_LOSS = 0.02
MAX_MORE_ANSWERABLE_REFUSED = 0.01
MAX_FEWER_OOS_REFUSED = 0.05
#: Queries per set replayed through the product's own Searcher.search, to check the replay is the product.
CHECK_SAMPLE = 15


@contextlib.contextmanager
def using_model(model: str) -> Iterator[None]:
    """Settings() reads FAQ_MODEL: set it for the duration (the bench's indexes and searchers follow it)."""
    before = os.environ.get("FAQ_MODEL")
    os.environ["FAQ_MODEL"] = model
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FAQ_MODEL", None)
        else:
            os.environ["FAQ_MODEL"] = before


def product_check(eset: Any, records: Sequence[Record], ranker: Any, threshold: float) -> int:
    """How many of a sample of queries the real Searcher ranks or answers differently from the replay."""
    from indexer.search import Searcher

    searcher = Searcher.open(eset.index_dir, threshold=threshold)
    replayed = learn.learned_rankings(records, ranker)
    step = max(1, len(records) // CHECK_SAMPLE)
    differ = 0
    for rec, rk in list(zip(records, replayed))[::step][:CHECK_SAMPLE]:
        response = searcher.search(rec.query, top_k=DEPTH)
        ids = [r.id for r in response.results]
        if ids[:1] != rk.ids[:1] or response.answered != is_answer(rk.top_score, threshold):
            differ += 1
            log.warning("replay differs from Searcher.search on %r: %s vs %s", rec.query, ids[:3], rk.ids[:3])
    return differ


def collect(model: str, work_dir: Path) -> tuple[list[Record], dict[str, Any]]:
    records: list[Record] = []
    sets: dict[str, Any] = {}
    ranker = ranker_file.load(model=model)
    with using_model(model):
        for set_name, families in BLIND.items():
            print(f"[{short_name(model)} / {set_name}] preparing…", file=sys.stderr, flush=True)
            try:
                with open_set(set_name, work_dir, families=families) as eset:
                    build = ensure_index(eset)
                    recs, info = collect_set(set_name, eset)
                    info["build"] = build
                    info["replay_differs"] = product_check(eset, recs, ranker, ranker.answer_threshold)
            except SetUnavailable as exc:
                print(f"[{set_name}] skipped: {exc}", file=sys.stderr)
                sets[set_name] = {"skipped": str(exc)}
                continue
            records += recs
            sets[set_name] = info
    return records, sets


def score(records: Sequence[Record], model: str) -> dict[str, Any]:
    """Per row: the shipped ranker (`final`) and the references, with `final`'s refusals; pooled refusal."""
    ranker = ranker_file.load(model=model)
    threshold = ranker.answer_threshold
    rows: dict[str, Any] = {}
    pooled: list[tuple[Record, Any, float]] = []
    for (set_name, family), recs in rows_of(records).items():
        final = learn.learned_rankings(recs, ranker)
        by_config = {"learned": learn.metrics(recs, final, threshold)}
        reciprocal = {"learned": learn.reciprocal_ranks(recs, final)}
        for ref in REFERENCES:
            ranked = [r.rankings[ref] for r in recs]
            by_config[ref] = learn.metrics(recs, ranked, 0.0)  # ranking only: their scores are not probabilities
            reciprocal[ref] = learn.reciprocal_ranks(recs, ranked)
        rows[f"{set_name} / {family}"] = {"metrics": by_config, "reciprocal": reciprocal["learned"].tolist(),
                                          "against_reference": against_reference(by_config, reciprocal)}
        pooled += [(rec, rk, threshold) for rec, rk in zip(recs, final)]
    return {"threshold": threshold, "rows": rows, "pooled": pooled_refusal(pooled)}


def decide(incumbent: dict[str, Any], challenger: dict[str, Any]) -> dict[str, Any]:
    """The three criteria of docs/models.md, challenger against incumbent, over the rows both scored."""
    shared = [row for row in incumbent["rows"] if row in challenger["rows"]]

    def mrr(scores: dict[str, Any], row: str) -> float:
        return scores["rows"][row]["metrics"]["learned"]["mrr"]

    gains = {row: mrr(challenger, row) - mrr(incumbent, row) for row in shared}
    mean_gain = float(np.mean(list(gains.values()))) if gains else float("nan")
    worst_row = min(gains, key=gains.get) if gains else None
    a, b = incumbent["pooled"], challenger["pooled"]
    more_answerable = b["refused_answerable"] - a["refused_answerable"]
    fewer_oos = a.get("refused_unanswerable", 0.0) - b.get("refused_unanswerable", 0.0)
    criteria = {
        "a_mean_gain": {"value": mean_gain, "met": mean_gain >= MIN_MEAN_GAIN},
        "b_worst_row": {"row": worst_row, "value": gains.get(worst_row, float("nan")),
                        "met": bool(gains) and min(gains.values()) >= -MAX_ROW_LOSS},
        "c_refusal": {"more_answerable_refused": more_answerable, "fewer_oos_refused": fewer_oos,
                      "met": more_answerable <= MAX_MORE_ANSWERABLE_REFUSED and fewer_oos <= MAX_FEWER_OOS_REFUSED},
    }
    return {"rows": shared, "gains": gains, "criteria": criteria,
            "challenger_wins": all(c["met"] for c in criteria.values())}


def render(run: dict[str, Any]) -> str:
    names = list(run["models"])
    short = {m: short_name(m) for m in names}
    lines = [f"Blind families, every line, shipped rankers ({run['date']}, {run['revision']}, `{run['command']}`).", "",
             "| set / family (answerable+OOS) | " + " | ".join(
                 f"{short[m]} final / dense-all / bm25 (MRR) | {short[m]} refused OOS / ans." for m in names) + " |",
             "| --- |" + " ---: | ---: |" * len(names)]
    first = run["models"][names[0]]
    for row in first["rows"]:
        m0 = first["rows"][row]["metrics"]["learned"]
        cells = []
        for m in names:
            by = run["models"][m]["rows"].get(row)
            if by is None:
                cells += ["–", "–"]
                continue
            mt = by["metrics"]
            cells.append(f"**{fmt(mt['learned']['mrr'])}** / {fmt(mt['dense-all']['mrr'])} / {fmt(mt['bm25']['mrr'])}")
            refused = mt["learned"]
            cells.append(f"{fmt(refused['refused_unanswerable'], 2)} / {fmt(refused['refused_answerable'], 2)}")
        lines.append(f"| {row} ({m0['answerable']}+{m0['unanswerable']}) | " + " | ".join(cells) + " |")
    lines.append("")
    for m in names:
        res = run["models"][m]
        p = res["pooled"]
        mean = np.mean([r["metrics"]["learned"]["mrr"] for r in res["rows"].values()])
        behind = [row for row, r in res["rows"].items() if r["against_reference"]["mrr"] < 0]
        below = [row for row, r in res["rows"].items() if r["against_reference"]["mrr_high"] < 0]
        lines.append(f"- {short[m]} (answer probability {res['threshold']:g}): mean row MRR {mean:.3f}; pooled refused "
                     f"{fmt(p.get('refused_unanswerable'), 3)} OOS / {fmt(p['refused_answerable'], 3)} answerable; rows "
                     f"behind the better reference {len(behind)} ({', '.join(behind) or 'none'}), of which with the interval "
                     f"wholly below zero {len(below)}; replay vs Searcher.search differences "
                     f"{run['sets'][m]['replay_differs']}.")
    d = run["decision"]
    c = d["criteria"]
    lines += ["", f"Rule ({short[names[1]]} against {short[names[0]]}): "
              f"(a) mean row MRR gain {c['a_mean_gain']['value']:+.3f} (needs ≥ {MIN_MEAN_GAIN:+.2f}): "
              f"{'met' if c['a_mean_gain']['met'] else 'not met'}; "
              f"(b) worst row {c['b_worst_row']['row']} {c['b_worst_row']['value']:+.3f} (needs ≥ {-MAX_ROW_LOSS:+.2f}): "
              f"{'met' if c['b_worst_row']['met'] else 'not met'}; "
              f"(c) answerable refused {c['c_refusal']['more_answerable_refused'] * 100:+.1f} points (at most "
              f"+{MAX_MORE_ANSWERABLE_REFUSED * 100:.0f}), out of scope refused "
              f"{-c['c_refusal']['fewer_oos_refused'] * 100:+.1f} points (at least {-MAX_FEWER_OOS_REFUSED * 100:.0f}): "
              f"{'met' if c['c_refusal']['met'] else 'not met'}. "
              f"Decision: **{short[names[1]] if d['challenger_wins'] else short[names[0]]}**."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=OUT / "blind.json", help="raw numbers (bench/out/blind.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    run: dict[str, Any] = {"date": now(), "command": command_line(), "revision": git_revision(), "models": {},
                           "sets": {}}
    for model, work_dir in MODELS.items():
        records, sets = collect(model, work_dir)
        run["models"][model] = score(records, model)
        run["sets"][model] = {"replay_differs": sum(s.get("replay_differs", 0) for s in sets.values()),
                              "detail": sets}
    incumbent, challenger = (run["models"][m] for m in MODELS)
    run["decision"] = decide(incumbent, challenger)
    run["runtime_s"] = round(time.monotonic() - started, 1)
    print(render(run))
    write_raw(args.json, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
