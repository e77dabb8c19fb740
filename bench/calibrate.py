"""Pick the answer threshold from development queries, using each query's top-1 score.

The rule itself lives in `indexer.calibrate` (the product's `python -m indexer
calibrate` uses it too); this script runs it over a benchmark set.

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

    .venv/bin/python -m bench.calibrate --set stackfaq --config final

or any index and case file:

    .venv/bin/python -m bench.calibrate --index-dir data/index bench/eval/shipped_faq.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.evalsets import SET_NAMES
from indexer.calibrate import top_scores
from indexer.threshold import OBJECTIVES, Calibration, calibrate, refusal_rates  # noqa: F401


# -- CLI ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from bench.configs import CONFIG_NAMES, config_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="?", type=Path, help="JSONL cases {query, expected} (with --index-dir)")
    parser.add_argument("--index-dir", type=Path, help="index to calibrate (default: the --set's index)")
    parser.add_argument("--set", dest="set_name", choices=SET_NAMES, help="benchmark set: its dev cases")
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
        return calibrate(top_scores(searcher, cases), [e is not None for e in expected], objective=args.objective,
                         max_refused_answerable=args.max_refused_answerable)

    if args.set_name:
        from bench.evalsets import ensure_index, open_set

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
