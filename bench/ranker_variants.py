"""Ranker variants (features, L2 strength) compared leave-one-set-out on the dev halves only.

For each variant and each family in turn, the softmax-with-none ranker is fitted on every other
family's dev half and ranks the left-out family's dev half (as bench/quality.py does for its test
halves); no test half is read. Printed per variant: mean row MRR, the mean over the hard-paraphrase
rows (where dense-only search is the reference to beat) and over the others, and pooled refusal at
a few answer probabilities. This is how the fourth look's candidate was chosen (docs/ranker-refit.md).

    .venv/bin/python -m bench.ranker_variants --work-dir bench/out/mpnet
    .venv/bin/python -m bench.ranker_variants --variants base,c0.3
    .venv/bin/python -m bench.ranker_variants --work-dir bench/out/mpnet --variants base,by-set  # docs/set-weights.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench import learn
from bench.collect import Record
from bench.common import OUT
from bench.evalsets import SET_NAMES
from bench.quality import collect, rows_of

#: name -> (features, C, weighing of the training queries: bench/learn.py WEIGHINGS)
VARIANTS: dict[str, tuple[tuple[str, ...], float, str]] = {
    "base": (learn.RANKER_FEATURES, 0.03, "family"),
    "d_best": (learn.RANKER_FEATURES + ("d_best",), 0.03, "family"),
    "c0.1": (learn.RANKER_FEATURES, 0.1, "family"),
    "c0.3": (learn.RANKER_FEATURES, 0.3, "family"),
    "by-set": (learn.RANKER_FEATURES, 0.03, "set"),
}
PROBABILITIES = (0.15, 0.17, 0.19, 0.21)


def is_paraphrase_row(family: str) -> bool:
    """Families written to share no word with their entry (bench/eval/README.md)."""
    return "paraphrases" in family or family.endswith("-vocab")


def compare(dev: Sequence[Record], features: Sequence[str], c: float, weigh_by: str = "family") -> dict[str, Any]:
    """One variant, leave-one-set-out over `dev`: means over rows (each family's dev half weighs the same)."""
    held_out = learn.held_out_rankings(dev, features, c, weigh_by)
    ranking = {id(rec): rk for rec, rk in held_out}
    mrr = {row: float(np.mean(learn.reciprocal_ranks(recs, [ranking[id(rec)] for rec in recs])))
           for row, recs in rows_of([rec for rec, _ in held_out]).items()}
    para = [row for row in mrr if is_paraphrase_row(row[1])]
    return {"mean": float(np.mean(list(mrr.values()))),
            "paraphrase_rows": float(np.mean([mrr[r] for r in para])),
            "other_rows": float(np.mean([v for r, v in mrr.items() if r not in para])),
            "refused": {p: learn.pooled_refusal([(rec, rk, p) for rec, rk in held_out]) for p in PROBABILITIES}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=OUT)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    args = parser.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    records, _ = collect(SET_NAMES, args.work_dir, rebuild=False, latency_sample=0)
    dev = [r for r in records if r.half == "dev"]
    print("| variant | mean row MRR | paraphrase rows | other rows | " + " | ".join(
        f"refused ans. / OOS at {p}" for p in PROBABILITIES) + " |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(PROBABILITIES))
    for name in names:
        r = compare(dev, *VARIANTS[name])
        cells = [f"{r['refused'][p]['refused_answerable']:.1%} / {r['refused'][p]['refused_unanswerable']:.1%}"
                 for p in PROBABILITIES]
        print(f"| {name} | {r['mean']:.4f} | {r['paraphrase_rows']:.4f} | {r['other_rows']:.4f} | "
              + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
