"""Train the learned ranker on the pooled dev halves of every set and ship it as indexer/rankers/<model>.json.

Collects every dev query of every family (bench/collect.py), fits the softmax-with-none
ranker (bench/learn.py, every family weighing the
same), and writes plain JSON coefficients; no test half is read. How well the
same procedure does on a family it never saw is bench/quality.py's
leave-one-set-out table.

    .venv/bin/python -m bench.train_ranker
    FAQ_MODEL=sentence-transformers/all-mpnet-base-v2 .venv/bin/python -m bench.train_ranker --work-dir bench/out/mpnet
    .venv/bin/python -m bench.train_ranker --choose-probability   # also choose the answer probability
    .venv/bin/python -m bench.train_ranker --work-dir bench/out/mpnet --extra-features page_lift \
        --choose-probability --hold-to 0.17   # a candidate held to the shipped features' refusal at 0.17
    .venv/bin/python -m bench.train_ranker --work-dir bench/out/mpnet --weigh-by set \
        --choose-probability --hold-to 0.17   # every set weighing the same (docs/set-weights.md)
    .venv/bin/python -m bench.train_ranker --work-dir bench/out/mpnet --faq-shift \
        --choose-probability --hold-to 0.17   # the shipped file plus the FAQ shift (docs/faq-shift.md)
    .venv/bin/python -m bench.train_ranker --work-dir bench/out/mpnet --hidden --choose-probability \
        --hold-to 0.18 --leave-out set        # the default model's ranker as shipped (docs/hidden-layer.md)
    .venv/bin/python -m bench.train_ranker --work-dir bench/out/mpnet --query-shift --choose-probability \
        --hold-to 0.18 --leave-out set        # the shipped file plus the query shift (docs/query-length.md)

`--choose-probability` chooses the answer probability on the same dev halves, leave-one-set-out
(bench/learn.py `choose_answer_probability`), prints the curve it chose from and writes the choice into
the file; bench/learn.py `ANSWER_PROBABILITIES` must then say the same (bench/quality.py reads it there).
Its budget is the product's 5% of answerable queries refused, or with `--hold-to P` the share the shipped
features refuse at P on the same dev halves and protocol, so that a candidate with other features is
compared with the incumbent at the incumbent's operating point (docs/page-lift.md). The incumbent there
is the shipped form: the shipped features, with the FAQ shift if the model's shipped file reads it.
`--leave-out set` leaves whole FAQs out instead of families (a fold per FAQ instead of one per family), for
the hidden layer, whose five fits take about a minute a fold.

The form fitted is the shipped file's (a hidden layer if it has one, the FAQ shift and the query shift if it
reads them), so that a plain refit never drops part of it; `--hidden` or `--linear` choose one.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from bench import learn
from bench.common import OUT, git_revision, now
from bench.evalsets import SET_NAMES
from bench.quality import collect
from indexer.features import FEATURES


def main(argv: list[str] | None = None) -> int:
    from indexer.config import Settings
    from indexer.ranker import load as load_ranker
    from indexer.ranker import shipped_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=shipped_path(Settings().model),
                        help="where to write the ranker (indexer/rankers/<model>.json, for the model in FAQ_MODEL)")
    parser.add_argument("--work-dir", type=Path, default=OUT)
    parser.add_argument("--choose-probability", action="store_true",
                        help="choose the answer probability leave-one-set-out on the dev halves (bench/learn.py)")
    parser.add_argument("--extra-features", default="", metavar="NAMES",
                        help="comma-separated features (indexer/features.py FEATURES) added to bench/learn.py RANKER_FEATURES")
    parser.add_argument("--hold-to", type=float, metavar="P",
                        help="with --choose-probability: refuse at most the share of answerable dev queries that "
                             "RANKER_FEATURES refuse at probability P (default budget: 5%%)")
    parser.add_argument("--weigh-by", choices=tuple(learn.WEIGHINGS), default="family",
                        help="weigh every (set, family) the same (default, as shipped) or every set")
    parser.add_argument("--faq-shift", action="store_true",
                        help="keep the shipped file's coefficients and fit only the FAQ shift (faq_words) on top of "
                             "them, so that no ranking moves (bench/learn.py fit_faq_shift, docs/faq-shift.md)")
    parser.add_argument("--query-shift", action="store_true",
                        help="keep the shipped file's weights and fit only the query shift (query_words) on top of "
                             "them, so that no ranking moves (bench/learn.py fit_query_shift, docs/query-length.md)")
    parser.add_argument("--hidden", action="store_true",
                        help="add a hidden layer (bench/learn.py fit_hidden: %d units, %d starts averaged; "
                             "docs/hidden-layer.md)" % (learn.HIDDEN_UNITS, learn.HIDDEN_SEEDS))
    parser.add_argument("--linear", action="store_true",
                        help="no hidden layer even if the shipped file has one")
    parser.add_argument("--leave-out", choices=learn.LEAVE_OUT, default="family",
                        help="with --choose-probability: what each fold leaves out (default: a family)")
    args = parser.parse_args(argv)
    extra = tuple(f.strip() for f in args.extra_features.split(",") if f.strip())
    unknown = [f for f in extra if f not in FEATURES or f in learn.RANKER_FEATURES]
    if unknown:
        parser.error(f"--extra-features: {', '.join(unknown)} unknown or already used (FEATURES: {', '.join(FEATURES)})")
    if args.hold_to is not None and not args.choose_probability:
        parser.error("--hold-to needs --choose-probability")
    if (args.faq_shift or args.query_shift) and (extra or args.weigh_by != "family" or args.hidden or args.linear):
        parser.error("--faq-shift and --query-shift keep the shipped file's form: no --extra-features, --weigh-by, "
                     "--hidden or --linear")
    if args.faq_shift and args.query_shift:
        parser.error("--faq-shift and --query-shift each fit one stage on the shipped file: one at a time")
    if args.hidden and (extra or args.linear):
        parser.error("--hidden reads the shipped features and fits the FAQ shift itself: no --extra-features or "
                     "--linear")
    features = learn.RANKER_FEATURES + extra
    # The shipped form: with the FAQ shift if the model's shipped file reads it, with a hidden layer if it has one,
    # with the query shift if it reads it (a plain refit must not drop any).
    base = load_ranker(shipped_path(Settings().model))
    shipped = learn.form_of(base)
    shift = shipped["shift"]
    hidden = args.hidden or (shipped["hidden"] and not (extra or args.faq_shift or args.linear))
    query = shipped["query"] and not (extra or args.linear)
    records, _ = collect(SET_NAMES, args.work_dir, rebuild=False, latency_sample=0)
    dev = [r for r in records if r.half == "dev"]
    if args.faq_shift:
        ranker = learn.fit_faq_shift(dev, base)
    elif args.query_shift:
        ranker = learn.fit_query_shift(dev, base)
    else:
        ranker = learn.fit_form(dev, features, weigh_by=args.weigh_by, shift=shift, hidden=hidden, query=query)
    if args.choose_probability:
        budget = learn.PROBABILITY_BUDGET
        if args.hold_to is not None:  # the shipped form's point at that probability, same protocol
            budget, oos = learn.choose_answer_probability(
                dev, grid=(args.hold_to,), leave_out=args.leave_out, **shipped).curve[args.hold_to]
            print(f"budget: {budget:.2%} of answerable dev queries refused, the shipped form's at {args.hold_to:g} "
                  f"(out of scope {oos:.1%})")
        choice = learn.choose_answer_probability(dev, budget=budget, features=features, weigh_by=args.weigh_by,
                                                 shift=shift or args.faq_shift or hidden, hidden=hidden,
                                                 leave_out=args.leave_out,
                                                 query=args.query_shift or query)
        print(f"answer probability: refused answerable / out of scope (dev halves, each {args.leave_out} left out, "
              "pooled)")
        for p, (ans, oos) in choice.curve.items():
            print(f"  {p:.2f}  {ans:6.1%} / {oos:6.1%}{'  <- chosen' if p == choice.value else ''}")
        ranker = replace(ranker, answer_threshold=choice.value)
        if choice.value != learn.answer_probability(Settings().model):
            print(f"set bench/learn.py ANSWER_PROBABILITIES[{Settings().model!r}] = {choice.value}", file=sys.stderr)
    counts = Counter(f"{r.set} / {r.family}" for r in dev)
    if args.faq_shift or args.query_shift:  # the shipped file's own record stays; the stage's is added beside it
        stage, feature, sign = (("faq_shift", learn.SHIFT_FEATURE, "<= 0") if args.faq_shift
                                else ("query_shift", learn.QUERY_FEATURE, ">= 0"))
        ranker = replace(ranker, trained={**base.trained, stage: {
            "by": f"bench/train_ranker.py --{stage.replace('_', '-')}", "date": now(), "revision": git_revision(),
            "fitted": f"the weight of {feature} ({sign}) and the intercept, every other weight held as shipped, on "
                      "each dev query's best candidates by the shipped file (bench/learn.py fit_none_stage)",
            "weighting": learn.WEIGHINGS["family"],
            "threshold": "fixed probability %.2f, chosen on the dev halves with the file's form refitted in every "
                         "fold, each %s left out" % (ranker.answer_threshold, args.leave_out),
            "dev_queries": dict(sorted(counts.items()))}})
        ranker.save(args.out)
        print(f"{args.out}: the shipped file plus {feature} {ranker.coef[-1]:+.3f} (intercept "
              f"{base.intercept:+.3f} -> {ranker.intercept:+.3f}), threshold {ranker.answer_threshold:.4f}, "
              f"from {len(dev)} dev queries")
        return 0
    ranker = replace(ranker, trained={
        "by": "bench/train_ranker.py", "date": now(), "revision": git_revision(),
        "embedding_model": Settings().model,
        "model": "softmax over each query's %d best candidate entries with a 'none' option of score 0 "
                 "(conditional logit), L2, C=%g, standardised features, coefficients held to signs %s" % (
                     ranker.rivals, learn.C, "(>= 0 except page_size and faq_words <= 0)")
                 + ("; then the FAQ shift (faq_words) and the intercept fitted with every other coefficient "
                    "held (bench/learn.py fit_faq_shift)" if shift and ranker.hidden is None else "")
                 + ("" if ranker.hidden is None else
                    "; plus a hidden layer of %d unbounded ReLU units over the features but faq_words: %d fits "
                    "from random starts (seeds 0..%d) averaged, their units side by side, output weights divided "
                    "by %d (bench/learn.py fit_hidden, docs/hidden-layer.md)" % (
                        learn.HIDDEN_UNITS, learn.HIDDEN_SEEDS, learn.HIDDEN_SEEDS - 1, learn.HIDDEN_SEEDS))
                 + ("; then the query shift (query_words, >= 0) and the intercept fitted with every other weight "
                    "held (bench/learn.py fit_query_shift)" if query else ""),
        "examples": "the best candidate entries of each dev query (by a first fit over all of them); "
                    "out-of-scope queries' answer is 'none'",
        "weighting": learn.WEIGHINGS[args.weigh_by],
        "threshold": "fixed probability %.2f (bench/learn.py ANSWER_PROBABILITIES: chosen on the dev halves, "
                     "each %s left out)" % (ranker.answer_threshold, args.leave_out),
        "dev_queries": dict(sorted(counts.items()))})
    ranker.save(args.out)
    print(f"{args.out}: {len(ranker.features)} features"
          + ("" if ranker.hidden is None else f" and {len(ranker.hidden.out)} hidden units")
          + f", threshold {ranker.answer_threshold:.4f}, from {len(dev)} dev queries")
    for name, coef in sorted(zip(ranker.features, ranker.coef), key=lambda x: -abs(x[1])):
        print(f"  {name:14s} {coef:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
