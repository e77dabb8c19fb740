"""Does the answer probability hold when the FAQ grows? The course FAQ's dev queries on its own index and
on indexes with other FAQs' entries beside it.

A hidden course FAQ may hold several hundred entries; the dev FAQs hold 8 to 113. Each FAQ's queries
should be answered (and refused) alike however many unrelated entries sit beside it. Indexes (built
offline, under the work folder):

- `course`: bench/eval/course_faq.jsonl alone (60 entries);
- `+ stackfaq`: with StackFAQ's 113 entries (needs ../shared);
- `+ stackfaq + shipped`: and data/faq.md's.

Each index is searched with the shipped ranker as it is (its softmax over each query's best `rivals`
candidates, indexer/ranker.py) and with the same coefficients over all candidates (`rivals = 0`), to
show what comparing against every candidate did as the FAQ grew. Scored on the course dev halves only:
top-1 and MRR@10 over the answerable queries, and how many of them are refused at the ranker's
threshold. Out-of-scope refusal is shown for the course FAQ alone: beside other FAQs an out-of-scope
course query may have a real answer. No choice is made on these numbers.

    .venv/bin/python -m bench.faq_size [--no-results]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from bench.common import OUT, SetUnavailable, command_line, git_revision, machine_line, now, update_section
from bench.evalsets import COURSE_FAQ, SHIPPED_FAQ, EvalSet, ensure_index, open_set, prepare_stackfaq


def indexes(work_dir: Path) -> list[tuple[str, list[Path]]]:
    """(name, FAQ files) of each index, the ones whose FAQs are unavailable left out with a note."""
    out = [("course", [COURSE_FAQ])]
    try:
        stackfaq = prepare_stackfaq(work_dir)[0]
    except SetUnavailable as exc:
        print(f"[faq_size] StackFAQ left out: {exc}", file=sys.stderr)
        return out
    return out + [("+ stackfaq", [COURSE_FAQ, *stackfaq]), ("+ stackfaq + shipped", [COURSE_FAQ, *stackfaq, SHIPPED_FAQ])]


def dev_halves(work_dir: Path) -> list[Path]:
    """The case file of every course family's dev half."""
    with open_set("course", work_dir) as eset:
        return [dev for dev, _test in eset.families().values()]


def run(work_dir: Path) -> list[dict]:
    from indexer.evaluate import evaluate, read_cases, resolve_expected
    from indexer.search import Searcher

    halves = [(path, read_cases(path)) for path in dev_halves(work_dir)]
    cases = [c for _path, file_cases in halves for c in file_cases]
    rows = []
    for name, faqs in indexes(work_dir):
        folder = work_dir / "faq-size" / name.replace(" ", "").replace("+", "plus-")
        eset = EvalSet(name, faqs, dev_cases=Path(), test_cases=None, folder=folder, offline=True,
                       fresh_cache=False, note="")
        ensure_index(eset)
        searcher = Searcher.open(eset.index_dir)
        expected = [e for path, file_cases in halves
                    for e in resolve_expected(file_cases, searcher.stored.entries, str(path))]
        for rivals in (searcher.ranker.rivals, 0):
            s = searcher.with_settings(searcher.settings)
            s.ranker = dataclasses.replace(searcher.ranker, rivals=rivals)
            report = evaluate(s, cases, expected)  # what `python -m indexer eval` reports
            rows.append({"index": name, "entries": len(searcher.entry_ids), "rivals": rivals, "top1": report.top1,
                         "mrr": report.mrr, "refused_answerable": report.refused_answerable,
                         "refused_oos": report.refused_unanswerable, "answerable": report.answerable,
                         "oos": report.unanswerable})
            print(f"[faq_size] {name}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def render(rows: list[dict]) -> str:
    from indexer.config import Settings

    lines = [f"`{command_line()}` ({now()}; {machine_line()}; indexer at {git_revision()}; model "
             f"{Settings().model}). The course FAQ's dev "
             f"queries ({rows[0]['answerable']} answerable, {rows[0]['oos']} out of scope) on its own index and beside "
             "other FAQs' entries, built offline; the shipped ranker over each query's best `rivals` candidates, and "
             "the same coefficients over all of them (`rivals` 0). No choice is made on these numbers.", "",
             "| index | entries | compared candidates | top-1 / MRR@10 | answerable refused | out of scope refused |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        compared = f"best {r['rivals']}" if r["rivals"] else "all"
        oos = f"{r['refused_oos']:.0%}" if r["index"] == "course" else "–"
        lines.append(f"| {r['index']} | {r['entries']} | {compared} | {r['top1']:.3f} / {r['mrr']:.3f} | "
                     f"{r['refused_answerable']:.1%} | {oos} |")
    return "## Answer probability as the FAQ grows\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=OUT)
    parser.add_argument("--no-results", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    body = render(run(args.work_dir))
    print(body)
    if not args.no_results:
        update_section("faq-size", body)
        print("bench/RESULTS.md: faq-size section rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
