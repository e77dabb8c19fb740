"""Does search hold when the FAQ grows? Each course FAQ's dev queries on its own index and on indexes
with other FAQs' entries beside it, against plain dense and BM25 on the same indexes.

The public course FAQs the product is also scored on hold about 300 entries a course; the course FAQs
written for this benchmark hold 48 to 72. So each of them (`HOMES`: course, dataeng, mlops, llm) is
searched on three indexes, built offline under the work folder:

- `own`: the FAQ alone (the set's own index, as bench.quality builds it);
- `+ stackfaq + shipped`: with StackFAQ's 113 entries and data/faq.md's 8 (unrelated topics);
- `every dev FAQ`: every FAQ of bench/eval with StackFAQ and data/faq.md, 1,151 entries, shared by
  the four. Some of its entries are on a home FAQ's topics (a Docker FAQ, a data-engineering FAQ), so
  a drop here mixes real confusions with another FAQ's entry that answers as well: `other FAQ first`
  counts the answerable queries whose top entry is not the home FAQ's, and `own entries only` scores
  the same rankings with other FAQs' entries taken out (the true top-1 lies between the two).

Configurations: the shipped ranker as it is (its softmax over each query's best `rivals` candidates,
indexer/ranker.py), the same coefficients over all candidates (`rivals` 0, what comparing against every
candidate would do as the FAQ grows), on the bigger indexes the ranker with `faq_words` (the FAQ shift:
the typical entry's length, which the other FAQs' entries move) held at the home FAQ's own value, and
the references `dense-all` and `bm25` (bench/configs.py).
Scored on the dev halves of every family of the home FAQ: top-1 and MRR@10 over the answerable
queries; for the ranker, how many of them are refused at its threshold, and on the home FAQ's own index
how many out-of-scope queries are (beside other FAQs an out-of-scope query may have a real answer).
No choice is made on these numbers.

    .venv/bin/python -m bench.faq_size [--homes course,llm] [--no-results]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import OUT, SetUnavailable, command_line, git_revision, machine_line, now, update_section
from bench.configs import config_settings
from bench.evalsets import REPO_FAQS, SHIPPED_FAQ, EvalSet, ensure_index, open_set, prepare_stackfaq

if TYPE_CHECKING:
    from indexer.search import Searcher

#: The course FAQs written for the benchmark, each searched on its own and beside the others.
HOMES = ("course", "dataeng", "mlops", "llm")
REFERENCES = ("dense-all", "bm25")
#: Results read a query: deep enough that the home FAQ's best ten remain when other FAQs' entries are taken out.
DEPTH = 100


def _index(name: str, faqs: list[Path], work_dir: Path) -> Path:
    """An offline index of `faqs` under work_dir/faq-size, built unless the same inputs built it already."""
    folder = work_dir / "faq-size" / name
    eset = EvalSet(name, faqs, dev_cases=Path(), test_cases=None, folder=folder, offline=True, fresh_cache=False,
                   note="")
    ensure_index(eset)
    return eset.index_dir


def indexes(home: str, work_dir: Path) -> list[tuple[str, Path]]:
    """(name, index folder) of each index `home`'s queries are searched on; without ../shared only its own."""
    with open_set(home, work_dir) as eset:
        ensure_index(eset)
        out = [("own", eset.index_dir)]
    try:
        stackfaq = prepare_stackfaq(work_dir)[0]
    except SetUnavailable as exc:
        print(f"[faq_size] only the FAQ's own index: {exc}", file=sys.stderr)
        return out
    every = [*REPO_FAQS.values(), *stackfaq, SHIPPED_FAQ]
    return out + [("+ stackfaq + shipped", _index(f"{home}-plus-stackfaq-shipped",
                                                  [REPO_FAQS[home], *stackfaq, SHIPPED_FAQ], work_dir)),
                  ("every dev FAQ", _index("every", every, work_dir))]


def dev_halves(home: str, work_dir: Path) -> list[Path]:
    """The case file of every family's dev half."""
    with open_set(home, work_dir) as eset:
        return [dev for dev, _test in eset.families().values()]


def run(work_dir: Path, homes: tuple[str, ...] = HOMES) -> list[dict]:
    from indexer.evaluate import read_cases, resolve_expected
    from indexer.faq import load_entries
    from indexer.search import Searcher

    rows = []
    for home in homes:
        own_ids = {e.id for e in load_entries([REPO_FAQS[home]])}
        halves = [(path, read_cases(path)) for path in dev_halves(home, work_dir)]
        cases = [c for _path, file_cases in halves for c in file_cases]
        own_words = None
        for name, index_dir in indexes(home, work_dir):
            searcher = Searcher.open(index_dir)
            expected = [e for path, file_cases in halves
                        for e in resolve_expected(file_cases, searcher.stored.entries, str(path))]
            runs = [(f"ranker, best {searcher.ranker.rivals}", searcher),
                    ("ranker, all", _with_rivals(searcher, 0))]
            if own_words is None:
                own_words = searcher.faq_words
            else:  # the FAQ shift as on the home FAQ's own index: what the other entries do besides moving it
                alike = searcher.with_settings(searcher.settings)
                alike.faq_words = own_words
                runs.append((f"ranker, best {searcher.ranker.rivals}, own faq_words", alike))
            runs += [(ref, searcher.with_settings(config_settings(ref))) for ref in REFERENCES]
            for config, s in runs:
                rows.append({"home": home, "index": name, "entries": len(searcher.entry_ids), "config": config,
                             "ranker": config.startswith("ranker"),
                             **score([s.search(c.query, top_k=DEPTH) for c in cases], expected, own_ids)})
                print(f"[faq_size] {home} / {name} / {config}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def score(responses: list, expected: list[str | None], own_ids: set[str]) -> dict:
    """Top-1 and MRR@10 as `indexer eval` counts them, and again with other FAQs' entries taken out of
    each ranking (`own_*`: right where another FAQ's entry answers as well, generous where it does not);
    the share of answerable queries whose top entry is another FAQ's; refusal rates."""
    from indexer.evaluate import MRR_DEPTH

    def reciprocal(ranked: list[str], wanted: str) -> float:
        ranked = ranked[:MRR_DEPTH]
        return 1 / (ranked.index(wanted) + 1) if wanted in ranked else 0.0

    answerable = [(r, e) for r, e in zip(responses, expected) if e is not None]
    oos = [r for r, e in zip(responses, expected) if e is None]
    rr = [reciprocal([x.id for x in r.results], e) for r, e in answerable]
    own_rr = [reciprocal([x.id for x in r.results if x.id in own_ids], e) for r, e in answerable]
    n = max(len(answerable), 1)
    return {"top1": sum(v == 1 for v in rr) / n, "mrr": sum(rr) / n,
            "own_top1": sum(v == 1 for v in own_rr) / n, "own_mrr": sum(own_rr) / n,
            "other_faq_first": sum(bool(r.results) and r.results[0].id not in own_ids for r, _e in answerable) / n,
            "refused_answerable": sum(not r.answered for r, _e in answerable) / n,
            "refused_oos": sum(not r.answered for r in oos) / max(len(oos), 1),
            "answerable": len(answerable), "oos": len(oos)}


def _with_rivals(searcher: Searcher, rivals: int) -> Searcher:
    """The same searcher with the ranker's softmax over the best `rivals` candidates (0: all)."""
    s = searcher.with_settings(searcher.settings)
    s.ranker = dataclasses.replace(searcher.ranker, rivals=rivals)
    return s


def render(rows: list[dict]) -> str:
    from indexer.config import Settings

    counts: dict[str, tuple[int, int]] = {}
    for r in rows:
        counts.setdefault(r["home"], (r["answerable"], r["oos"]))
    sizes = ", ".join(f"{home} {a} answerable and {o} out of scope" for home, (a, o) in counts.items())
    lines = [f"`{command_line()}` ({now()}; {machine_line()}; indexer at {git_revision()}; model "
             f"{Settings().model}). Each course FAQ's dev queries ({sizes}) on its own index and beside other "
             "FAQs' entries, built offline: the shipped ranker over each query's best `rivals` candidates and "
             "over all of them, and the references dense-all and BM25. `own entries only`: the same rankings "
             "with other FAQs' entries taken out; `own faq_words`: the ranker with the FAQ shift (`faq_words`, "
             "the typical entry's length, which other FAQs' entries move) held at the home FAQ's own value; "
             "`other FAQ first`: answerable queries whose top entry is another FAQ's (some of which answer as "
             "well, so the true top-1 lies between the two columns). Refusal is the ranker's; out of scope only "
             "on the FAQ's own index. The ranker was fitted on these dev halves, so its lead over the references "
             "here is in sample (the leave-one-set-out table above is the fair comparison); what this section "
             "measures is how each search moves as the index grows. No choice is made on these numbers.", "",
             "| FAQ | index | entries | search | top-1 / MRR@10 | own entries only | other FAQ first | "
             "answerable refused | out of scope refused |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        refused = f"{r['refused_answerable']:.1%}" if r["ranker"] else "–"
        oos = f"{r['refused_oos']:.0%}" if r["ranker"] and r["index"] == "own" and r["oos"] else "–"
        mixed = r["index"] != "own"
        own = f"{r['own_top1']:.3f} / {r['own_mrr']:.3f}" if mixed else "–"
        other = f"{r['other_faq_first']:.1%}" if mixed else "–"
        lines.append(f"| {r['home']} | {r['index']} | {r['entries']} | {r['config']} | {r['top1']:.3f} / "
                     f"{r['mrr']:.3f} | {own} | {other} | {refused} | {oos} |")
    return "## Search as the FAQ grows\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=OUT)
    parser.add_argument("--homes", default=",".join(HOMES), help=f"comma-separated, of {', '.join(HOMES)}")
    parser.add_argument("--no-results", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    homes = tuple(h for h in args.homes.split(",") if h)
    if unknown := [h for h in homes if h not in REPO_FAQS]:
        parser.error(f"--homes: unknown FAQ {', '.join(unknown)} (known: {', '.join(REPO_FAQS)})")
    body = render(run(args.work_dir, homes))
    print(body)
    if not args.no_results:
        update_section("faq-size", body)
        print("bench/RESULTS.md: faq-size section rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
