"""Blind families scored with what the product ships: the decisions of docs/models.md and docs/ranker-refit.md.

The families here were written after every setting had been chosen, by agents that saw no result, and
nothing is fitted on them: every line of each is scored (no halves), each contender with its ranker
file and answer probability, the condition of a new FAQ meeting the product. The rule that reads these
numbers was committed before the families existed; this script computes its three criteria and says
which contender it picks.

    .venv/bin/python -m bench.blind                   # the refit decision (docs/ranker-refit.md)
    .venv/bin/python -m bench.blind --decision model  # the second model decision (docs/models.md), as taken
    .venv/bin/python -m bench.blind --decision paraphrase  # the fourth look (docs/ranker-refit.md)
    .venv/bin/python -m bench.blind --decision lift   # the sixth look (docs/page-lift.md)
    .venv/bin/python -m bench.blind --decision weights  # the seventh look (docs/set-weights.md)
    .venv/bin/python -m bench.blind --decision shift  # the eighth look (docs/faq-shift.md)
    .venv/bin/python -m bench.blind --decision hidden  # the ninth look (docs/hidden-layer.md)
    .venv/bin/python -m bench.blind --decision curve   # the tenth look (docs/hidden-layer.md)
    .venv/bin/python -m bench.blind --decision length  # the eleventh look (docs/query-length.md)

Raw numbers go to bench/out/blind-<decision>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bench import learn
from bench.collect import DEPTH, Record, collect_set
from bench.common import OUT, ROOT, SetUnavailable, command_line, git_revision, now, write_raw
from bench.evalsets import ensure_index, one_family, open_set, written_families
from bench.learn import pooled_refusal
from bench.quality import REFERENCES, against_reference, fmt, rows_of
from indexer import ranker as ranker_file
from indexer.models import MINILM, MPNET, short_name
from indexer.threshold import is_answer

log = logging.getLogger("bench.blind")

#: Each model's indexes live in its own work folder (as bench.quality --work-dir).
WORK_DIRS = {MINILM: OUT, MPNET: OUT / "mpnet"}
#: Revisions of the ranker files each decision compares, so that a decision reads the same files whenever
#: it is run: the files fitted on thirty-one dev families (the model decision's two, the refit's
#: incumbents), the refit candidates as frozen (6b7e011), and the files the refit decision left (5d5aa72,
#: the fourth look's incumbent), and the fourth look's candidate as frozen (1ea2107).
INCUMBENT_REVISION = "15f6538"
REFIT_CANDIDATE_REVISION = "6b7e011"
REFIT_REVISION = "5d5aa72"
PARAPHRASE_CANDIDATE_REVISION = "1ea2107"
#: The sixth look (docs/page-lift.md): the shipped features refitted on the fifty rows (shown, not deciding),
#: then the candidate with `page_lift`, each frozen in its own commit before any blind line was scored.
LIFT_REFIT_REVISION = "fd523a8"
LIFT_CANDIDATE_REVISION = "f33bfa0"
#: The seventh look (docs/set-weights.md): the shipped features refitted on the fifty-six rows, every family
#: weighing the same (shown), then the candidate, every set weighing the same; each frozen before the look.
WEIGHTS_FAMILY_REVISION = "4b6edfd"
WEIGHTS_CANDIDATE_REVISION = "00e4c8d"
#: The eighth look (docs/faq-shift.md): the shipped file plus the FAQ shift, frozen before the look.
SHIFT_CANDIDATE_REVISION = "52343f5"
#: The ninth look (docs/hidden-layer.md): the shipped file (the eighth look's candidate, shipped since) against the
#: hidden layer; shown, the shipped form refitted on the same sixty-nine rows; each frozen before the look.
HIDDEN_CANDIDATE_REVISION = "9b2638a"
HIDDEN_REFIT_REVISION = "fbdd9f3"
#: The eleventh look (docs/query-length.md): the shipped file (the tenth look's candidate) plus the query shift,
#: frozen before the look.
QUERY_CANDIDATE_REVISION = "fe54c08"
#: Shares are differences of sums of weights: a bound met exactly must not fail on the last bit.
EPSILON = 1e-9
#: Queries per set replayed through the product's own Searcher.search, to check the replay is the product.
CHECK_SAMPLE = 15


@dataclass(frozen=True)
class Rule:
    """A challenger replaces the incumbent iff (a) its mean row MRR gains at least `min_mean_gain`, (b) no
    row loses more than `max_row_loss`, (c) its pooled refusal of answerable queries rises by at most
    `max_more_answerable_refused` and of out-of-scope ones falls by at most `max_fewer_oos_refused` (a negative
    bound asks for a rise of at least that much)."""

    min_mean_gain: float
    max_row_loss: float = 0.02
    max_more_answerable_refused: float = 0.01
    max_fewer_oos_refused: float = 0.05
    #: (d), where a rule has it: rows that must each gain at least this much MRR.
    row_gains: tuple[tuple[str, float], ...] = ()
    #: (b) read by noise instead of `max_row_loss`: a row fails only if the paired bootstrap interval of its MRR
    #: change (`learn.paired_interval` over the rows' reciprocal ranks) lies wholly below zero.
    row_loss_by_interval: bool = False
    #: (e), where a rule has it: (row with pages served, the same family offline): the challenger's top-1 and MRR
    #: on the first must be at least its own on the second.
    pages_not_below_offline: tuple[str, str] | None = None
    #: (c) read along the incumbent's curve instead of at its one probability: the challenger must refuse at least
    #: the out-of-scope share the incumbent refuses at the highest probability of `learn.PROBABILITY_GRID` that
    #: refuses no more answerable queries than the challenger does (docs/hidden-layer.md, the tenth look); the
    #: bound on answerable queries refused (`max_more_answerable_refused`) still holds at the shipped points.
    refusal_along_curve: bool = False


@dataclass(frozen=True)
class Contender:
    """What one side of a decision searches with: the model its indexes are embedded with, and the model's
    ranker file as it was at `revision` (so a decision reads the same files whenever it is run)."""

    model: str
    revision: str
    label: str

    @property
    def ranker(self) -> Path:
        return ranker_at(self.revision, self.model)


def ranker_at(revision: str, model: str) -> Path:
    """The model's shipped ranker file as it was at `revision` (extracted to bench/out/rankers/<revision>/)."""
    shipped = ranker_file.shipped_path(model)
    relative = shipped.relative_to(ROOT).as_posix()
    out = OUT / "rankers" / revision / shipped.name
    raw = subprocess.run(["git", "show", f"{revision}:{relative}"], cwd=ROOT, capture_output=True, check=True).stdout
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_bytes() != raw:
        out.write_bytes(raw)
    return out


@dataclass(frozen=True)
class Decision:
    doc: str
    #: The blind families of each set (bench/eval/README.md says how each was written).
    blind: dict[str, Sequence[tuple[str, str | None]]]
    rule: Rule
    #: (incumbent, challenger) pairs, each decided on its own.
    pairs: Sequence[tuple[Contender, Contender]]
    #: Pairs shown beside the decision, scored the same way, that decide nothing.
    shown: Sequence[tuple[Contender, Contender]] = ()


DECISIONS = {
    "model": Decision("docs/models.md, 'A second look'",
                      {"dl": written_families("dl"), "shipped": one_family("shipped", "shipped-paraphrases2"),
                       "shipped-online": one_family("shipped", "shipped-paraphrases2")},
                      Rule(min_mean_gain=0.02),
                      [(Contender(MINILM, INCUMBENT_REVISION, short_name(MINILM)),
                        Contender(MPNET, INCUMBENT_REVISION, short_name(MPNET)))]),
    "refit": Decision("docs/ranker-refit.md",
                      {"ab": written_families("ab"),
                       "articles": one_family("articles", "articles-paraphrases")},
                      Rule(min_mean_gain=-0.005),
                      [(Contender(m, INCUMBENT_REVISION, f"{short_name(m)} 31 rows"),
                        Contender(m, REFIT_CANDIDATE_REVISION, f"{short_name(m)} 37 rows")) for m in (MPNET, MINILM)]),
    "paraphrase": Decision("docs/ranker-refit.md, 'A fourth blind look'", {"web": written_families("web")},
                           Rule(min_mean_gain=0.0, row_gains=(("web / web-paraphrases", 0.01),)),
                           [(Contender(MPNET, REFIT_REVISION, f"{short_name(MPNET)} refit"),
                             Contender(MPNET, PARAPHRASE_CANDIDATE_REVISION, f"{short_name(MPNET)} candidate"))]),
    "lift": Decision("docs/page-lift.md", {"ts": written_families("ts"),
                                           "shipped": one_family("shipped", "shipped-paraphrases3"),
                                           "shipped-online": one_family("shipped", "shipped-paraphrases3")},
                     Rule(min_mean_gain=-0.005, max_more_answerable_refused=0.005, max_fewer_oos_refused=-0.03),
                     [(Contender(MPNET, REFIT_REVISION, "shipped"),
                       Contender(MPNET, LIFT_CANDIDATE_REVISION, "page_lift, 50 rows"))],
                     shown=[(Contender(MPNET, REFIT_REVISION, "shipped"),
                             Contender(MPNET, LIFT_REFIT_REVISION, "shipped features, 50 rows"))]),
    "weights": Decision("docs/set-weights.md", {"rds": written_families("rds"),
                                                "shipped": one_family("shipped", "shipped-paraphrases4"),
                                                "shipped-online": one_family("shipped", "shipped-paraphrases4")},
                        Rule(min_mean_gain=-0.005),
                        [(Contender(MPNET, REFIT_REVISION, "shipped"),
                          Contender(MPNET, WEIGHTS_CANDIDATE_REVISION, "sets weighing the same, 56 rows"))],
                        shown=[(Contender(MPNET, REFIT_REVISION, "shipped"),
                                Contender(MPNET, WEIGHTS_FAMILY_REVISION, "families weighing the same, 56 rows"))]),
    "shift": Decision("docs/faq-shift.md", {"net": written_families("net"), "sh": written_families("sh"),
                                            "shipped": one_family("shipped", "shipped-paraphrases5"),
                                            "shipped-online": one_family("shipped", "shipped-paraphrases5")},
                      Rule(min_mean_gain=-0.005, max_more_answerable_refused=0.005, max_fewer_oos_refused=-0.03),
                      [(Contender(MPNET, REFIT_REVISION, "shipped"),
                        Contender(MPNET, SHIFT_CANDIDATE_REVISION, "shipped + FAQ shift"))]),
    "hidden": Decision("docs/hidden-layer.md", {"git": written_families("git"), "py": written_families("py"),
                                                "shipped": one_family("shipped", "shipped-paraphrases6"),
                                                "shipped-online": one_family("shipped", "shipped-paraphrases6")},
                       Rule(min_mean_gain=0.0, row_loss_by_interval=True, max_more_answerable_refused=0.005,
                            max_fewer_oos_refused=0.0,
                            pages_not_below_offline=("shipped-online / shipped-paraphrases6",
                                                     "shipped / shipped-paraphrases6")),
                       [(Contender(MPNET, SHIFT_CANDIDATE_REVISION, "shipped"),
                         Contender(MPNET, HIDDEN_CANDIDATE_REVISION, "hidden layer"))],
                       shown=[(Contender(MPNET, SHIFT_CANDIDATE_REVISION, "shipped"),
                               Contender(MPNET, HIDDEN_REFIT_REVISION, "shipped form, 69 rows"))]),
    "curve": Decision("docs/hidden-layer.md, 'A tenth look'",
                      {"docker": written_families("docker"), "stats": written_families("stats"),
                       "shipped": one_family("shipped", "shipped-paraphrases7"),
                       "shipped-online": one_family("shipped", "shipped-paraphrases7")},
                      Rule(min_mean_gain=0.0, row_loss_by_interval=True, max_more_answerable_refused=0.005,
                           refusal_along_curve=True,
                           pages_not_below_offline=("shipped-online / shipped-paraphrases7",
                                                    "shipped / shipped-paraphrases7")),
                      [(Contender(MPNET, SHIFT_CANDIDATE_REVISION, "shipped"),
                        Contender(MPNET, HIDDEN_CANDIDATE_REVISION, "hidden layer"))]),
    "length": Decision("docs/query-length.md",
                       {"viz": written_families("viz"), "cloud": written_families("cloud"),
                        "shipped": one_family("shipped", "shipped-paraphrases8"),
                        "shipped-online": one_family("shipped", "shipped-paraphrases8")},
                       Rule(min_mean_gain=0.0, row_loss_by_interval=True, max_more_answerable_refused=0.005,
                            refusal_along_curve=True),
                       [(Contender(MPNET, HIDDEN_CANDIDATE_REVISION, "shipped"),
                         Contender(MPNET, QUERY_CANDIDATE_REVISION, "query shift"))]),
}


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


def collect(model: str, blind: dict[str, Any]) -> tuple[list[Record], dict[str, Any]]:
    records: list[Record] = []
    sets: dict[str, Any] = {}
    shipped = ranker_file.load(model=model)  # what Searcher.search uses: the replay is checked against it
    with using_model(model):
        for set_name, families in blind.items():
            print(f"[{short_name(model)} / {set_name}] preparing…", file=sys.stderr, flush=True)
            try:
                with open_set(set_name, WORK_DIRS[model], families=families) as eset:
                    build = ensure_index(eset)
                    recs, info = collect_set(set_name, eset)
                    info["build"] = build
                    info["replay_differs"] = product_check(eset, recs, shipped, shipped.answer_threshold)
            except SetUnavailable as exc:
                print(f"[{set_name}] skipped: {exc}", file=sys.stderr)
                sets[set_name] = {"skipped": str(exc)}
                continue
            records += recs
            sets[set_name] = info
    return records, sets


def score(records: Sequence[Record], ranker_path: Path) -> dict[str, Any]:
    """Per row: the ranker (`final`) and the references, with `final`'s refusals; pooled refusal."""
    ranker = ranker_file.load(ranker_path)
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
    curve = {f"{p:.2f}": pooled_refusal([(rec, rk, p) for rec, rk, _ in pooled]) for p in learn.PROBABILITY_GRID}
    return {"threshold": threshold, "rows": rows, "pooled": pooled_refusal(pooled), "curve": curve}


def on_curve(curve: dict[str, dict[str, float]], refused_answerable: float) -> tuple[str, dict[str, float]]:
    """The curve's point at the highest probability refusing no more answerable queries than `refused_answerable`
    (the lowest probability if every point refuses more)."""
    within = [p for p, point in curve.items() if point["refused_answerable"] <= refused_answerable + EPSILON]
    p = max(within, key=float) if within else min(curve, key=float)
    return p, curve[p]


def decide(incumbent: dict[str, Any], challenger: dict[str, Any], rule: Rule) -> dict[str, Any]:
    """The rule's three criteria, challenger against incumbent, over the rows both scored."""
    shared = [row for row in incumbent["rows"] if row in challenger["rows"]]

    def mrr(scores: dict[str, Any], row: str) -> float:
        return scores["rows"][row]["metrics"]["learned"]["mrr"]

    gains = {row: mrr(challenger, row) - mrr(incumbent, row) for row in shared}
    mean_gain = float(np.mean(list(gains.values()))) if gains else float("nan")
    worst_row = min(gains, key=gains.get) if gains else None
    worst: dict[str, Any] = {"row": worst_row, "value": gains.get(worst_row, float("nan"))}
    if rule.row_loss_by_interval:
        intervals = {row: learn.paired_interval(np.asarray(challenger["rows"][row]["reciprocal"]),
                                                np.asarray(incumbent["rows"][row]["reciprocal"])) for row in shared}
        below = [row for row, (_, high) in intervals.items() if high < -EPSILON]
        worst |= {"interval": intervals.get(worst_row), "rows_below": below, "met": bool(gains) and not below}
    else:
        worst["met"] = bool(gains) and min(gains.values()) >= -rule.max_row_loss - EPSILON
    a, b = incumbent["pooled"], challenger["pooled"]
    more_answerable = b["refused_answerable"] - a["refused_answerable"]
    fewer_oos = a.get("refused_unanswerable", 0.0) - b.get("refused_unanswerable", 0.0)
    refusal: dict[str, Any] = {"more_answerable_refused": more_answerable, "fewer_oos_refused": fewer_oos}
    if rule.refusal_along_curve:
        p, point = on_curve(incumbent["curve"], b["refused_answerable"])
        beside = point.get("refused_unanswerable", 0.0) - b.get("refused_unanswerable", 0.0)
        refusal |= {"incumbent_at": p, "incumbent_point": point, "fewer_oos_than_curve": beside}
        oos_met = beside <= EPSILON
    else:
        oos_met = fewer_oos <= rule.max_fewer_oos_refused + EPSILON
    refusal["met"] = more_answerable <= rule.max_more_answerable_refused + EPSILON and oos_met
    criteria = {
        "a_mean_gain": {"value": mean_gain, "met": mean_gain >= rule.min_mean_gain - EPSILON},
        "b_worst_row": worst,
        "c_refusal": refusal,
    }
    if rule.row_gains:
        needed = {row: gain for row, gain in rule.row_gains}
        criteria["d_row_gains"] = {"gains": {row: gains.get(row, float("nan")) for row in needed},
                                   "met": all(gains.get(row, float("-inf")) >= g - EPSILON for row, g in needed.items())}
    if rule.pages_not_below_offline:
        online, offline = (challenger["rows"].get(row, {}).get("metrics", {}).get("learned")
                           for row in rule.pages_not_below_offline)
        criteria["e_pages"] = {"online": online and {k: online[k] for k in ("top1", "mrr")},
                               "offline": offline and {k: offline[k] for k in ("top1", "mrr")},
                               "met": bool(online and offline) and all(
                                   online[k] >= offline[k] - EPSILON for k in ("top1", "mrr"))}
    return {"rows": shared, "gains": gains, "criteria": criteria,
            "challenger_wins": all(c["met"] for c in criteria.values())}


def render_pair(pair: dict[str, Any], rule: Rule | None) -> list[str]:
    """The pair's table and summaries, then the rule's verdict (`rule` None: a pair shown, deciding nothing)."""
    sides = [pair["incumbent"], pair["challenger"]]
    labels = [side["label"] for side in sides]
    lines = ["| set / family (answerable+OOS) | " + " | ".join(
                 f"{label} final / dense-all / bm25 (MRR) | {label} refused OOS / ans." for label in labels) + " |",
             "| --- |" + " ---: | ---: |" * len(sides)]
    for row in sides[0]["rows"]:
        m0 = sides[0]["rows"][row]["metrics"]["learned"]
        cells = []
        for side in sides:
            by = side["rows"].get(row)
            if by is None:
                cells += ["–", "–"]
                continue
            mt = by["metrics"]
            cells.append(f"**{fmt(mt['learned']['mrr'])}** / {fmt(mt['dense-all']['mrr'])} / {fmt(mt['bm25']['mrr'])}")
            refused = mt["learned"]
            cells.append(f"{fmt(refused['refused_unanswerable'], 2)} / {fmt(refused['refused_answerable'], 2)}")
        lines.append(f"| {row} ({m0['answerable']}+{m0['unanswerable']}) | " + " | ".join(cells) + " |")
    lines.append("")
    for side in sides:
        p = side["pooled"]
        mean = np.mean([r["metrics"]["learned"]["mrr"] for r in side["rows"].values()])
        behind = [row for row, r in side["rows"].items() if r["against_reference"]["mrr"] < 0]
        below = [row for row, r in side["rows"].items() if r["against_reference"]["mrr_high"] < 0]
        lines.append(f"- {side['label']} (answer probability {side['threshold']:g}): mean row MRR {mean:.3f}; pooled "
                     f"refused {fmt(p.get('refused_unanswerable'), 3)} OOS / {fmt(p['refused_answerable'], 3)} "
                     f"answerable; rows behind the better reference {len(behind)} ({', '.join(behind) or 'none'}), of "
                     f"which with the interval wholly below zero {len(below)}.")
    if rule is None:
        return lines
    d = pair["decision"]
    c = d["criteria"]
    lines += ["", f"Rule ({labels[1]} against {labels[0]}): "
              f"(a) mean row MRR gain {c['a_mean_gain']['value']:+.3f} (needs ≥ {rule.min_mean_gain:+.3f}): "
              f"{'met' if c['a_mean_gain']['met'] else 'not met'}; "
              + _render_worst_row(c["b_worst_row"], rule) + "; " + _render_refusal(c["c_refusal"], rule)
              + ("" if "d_row_gains" not in c else "; (d) " + ", ".join(
                  f"{row} {gain:+.3f} (needs ≥ {dict(rule.row_gains)[row]:+.2f})"
                  for row, gain in c["d_row_gains"]["gains"].items())
                 + f": {'met' if c['d_row_gains']['met'] else 'not met'}")
              + ("" if "e_pages" not in c else "; (e) with pages served "
                 + _top1_mrr(c["e_pages"]["online"]) + " against offline " + _top1_mrr(c["e_pages"]["offline"])
                 + f" (needs ≥ on both): {'met' if c['e_pages']['met'] else 'not met'}")
              + f". Decision: **{labels[1] if d['challenger_wins'] else labels[0]}**."]
    return lines


def _render_worst_row(worst: dict[str, Any], rule: Rule) -> str:
    met = "met" if worst["met"] else "not met"
    if not rule.row_loss_by_interval:
        return f"(b) worst row {worst['row']} {worst['value']:+.3f} (needs ≥ {-rule.max_row_loss:+.2f}): {met}"
    low, high = worst["interval"] or (float("nan"), float("nan"))
    return (f"(b) worst row {worst['row']} {worst['value']:+.3f} (interval {low:+.3f} to {high:+.3f}); rows whose "
            f"interval lies wholly below zero: {', '.join(worst['rows_below']) or 'none'} (needs none): {met}")


def _render_refusal(refusal: dict[str, Any], rule: Rule) -> str:
    met = "met" if refusal["met"] else "not met"
    answerable = (f"(c) answerable refused {refusal['more_answerable_refused'] * 100:+.1f} points (at most "
                  f"+{rule.max_more_answerable_refused * 100:g}), out of scope refused "
                  f"{-refusal['fewer_oos_refused'] * 100:+.1f} points")
    if not rule.refusal_along_curve:
        return answerable + f" (at least {-rule.max_fewer_oos_refused * 100:g}): {met}"
    point = refusal["incumbent_point"]
    return (answerable + f"; against the incumbent's curve at {refusal['incumbent_at']} (refusing "
            f"{point['refused_answerable'] * 100:.1f}% of answerable, {point.get('refused_unanswerable', 0) * 100:.1f}% "
            f"out of scope): {-refusal['fewer_oos_than_curve'] * 100:+.1f} points out of scope (at least 0): {met}")


def _top1_mrr(metrics: dict[str, float] | None) -> str:
    return "–" if not metrics else f"{metrics['top1']:.3f} / {metrics['mrr']:.3f}"


def render(run: dict[str, Any], decision: Decision) -> str:
    lines = [f"Blind families, every line ({run['date']}, {run['revision']}, `{run['command']}`); rule: "
             f"{decision.doc}. Replay vs Searcher.search differences: "
             + ", ".join(f"{short_name(m)} {n}" for m, n in run["replay_differs"].items()) + "."]
    for pair in run["pairs"]:
        lines += [""] + render_pair(pair, decision.rule)
    for pair in run.get("shown", []):
        lines += ["", "Shown beside the decision, deciding nothing:", ""] + render_pair(pair, None)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decision", choices=sorted(DECISIONS), default="refit")
    parser.add_argument("--json", type=Path, help="raw numbers (default bench/out/blind-<decision>.json)")
    args = parser.parse_args(argv)
    decision = DECISIONS[args.decision]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    run: dict[str, Any] = {"date": now(), "command": command_line(), "revision": git_revision(),
                           "decision": args.decision, "pairs": [], "replay_differs": {}, "sets": {}}
    pairs = decision.pairs
    records: dict[str, list[Record]] = {}
    for model in dict.fromkeys(side.model for pair in [*pairs, *decision.shown] for side in pair):
        records[model], sets = collect(model, decision.blind)
        run["replay_differs"][model] = sum(s.get("replay_differs", 0) for s in sets.values())
        run["sets"][model] = sets
    def scored(side: Contender) -> dict[str, Any]:
        path = side.ranker
        return score(records[side.model], path) | {"label": side.label, "ranker": str(path)}

    for incumbent, challenger in pairs:
        a, b = scored(incumbent), scored(challenger)
        run["pairs"].append({"incumbent": a, "challenger": b, "decision": decide(a, b, decision.rule)})
    for incumbent, challenger in decision.shown:
        run.setdefault("shown", []).append({"incumbent": scored(incumbent), "challenger": scored(challenger)})
    run["runtime_s"] = round(time.monotonic() - started, 1)
    print(render(run, decision))
    write_raw(args.json or OUT / f"blind-{args.decision}.json", run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
