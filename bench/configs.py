"""The search configurations the benchmarks compare.

- `dense-questions` (baseline): dense similarity to the FAQ questions only.
- `bm25`: BM25 alone over all units.
- `dense-all`: dense over all units (question, answer, link title, page passage).
- `rrf`: dense + BM25 over all units fused by reciprocal rank (k = rrf_k).
- `hybrid`: dense + BM25 over all units fused by config.py's weighted sum.
- `legacy`: the previous product ranking: the weighted sum (lexical weight 0.15) with kind
  weights and passages read in their entry's context (0.3), tuned on the earlier dev sets.
- `zscore`, `minmax`: each entry's best dense and best BM25 score normalised over the query's
  candidate entries, mixed by one weight (chosen leave-one-set-out by bench/quality.py).
- `learned`: the softmax-with-none ranker over each entry's features (indexer/ranker.py).
- `final`: `SearchSettings()` as config.py defines it now (what the product runs).

The references score an entry by its best unit with no kind weights, no
second-unit bonus and no passage context (plain max), so they stay fixed while
config.py is tuned; `final` adds the tuned kind weights and entry scoring on
top of `hybrid`.

For tuning, any configuration can be varied by name: `BASE:key=value;key=value`
with SearchSettings fields, e.g. `final:mode=dense`, `final:lexical_weight=0.15`,
`final:kind_weights.passage=0.8;second_unit_weight=0.1`,
`dense-all:unit_kinds=question+answer`.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace

from indexer.config import SearchSettings

#: Unit kinds every index has; kinds config.py adds (e.g. "entry") join them in all_units().
BASE_UNITS = ("question", "answer", "title", "passage")
CONFIG_NAMES = ("dense-questions", "bm25", "dense-all", "rrf", "hybrid", "legacy", "zscore", "minmax", "learned",
                "final")
#: The previous product ranking (before the learned ranker), kept as a reference.
LEGACY = {"fusion": "weighted", "lexical_weight": 0.15, "passage_context": 0.3,
          "kind_weights": {"question": 1.0, "entry": 1.0, "answer": 0.85, "title": 1.0, "passage": 0.85}}


def all_units(base: SearchSettings | None = None) -> tuple[str, ...]:
    """Every unit kind: the base four plus any config.py's default search uses."""
    base = base or SearchSettings()
    return tuple(dict.fromkeys((*base.unit_kinds, *BASE_UNITS)))


def _plain(base: SearchSettings, **changes: object) -> SearchSettings:
    changes.setdefault("fusion", "weighted")
    return replace(base, kind_weights={k: 1.0 for k in all_units(base)}, second_unit_weight=0.0, passage_context=0.0,
                   **changes)


def _value(text: str, current: object) -> object:
    if isinstance(current, tuple):
        return tuple(v for v in text.split("+") if v)
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_overrides(settings: SearchSettings, spec: str, name: str = "") -> SearchSettings:
    """`key=value;key=value` (SearchSettings fields; `kind_weights.KIND=x` sets one weight)."""
    known = {f.name for f in fields(SearchSettings)}
    changes: dict[str, object] = {}
    for item in (part.strip() for part in spec.split(";")):
        if not item:
            continue
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"{name}: override {item!r} is not key=value")
        if key.startswith("kind_weights."):
            weights = dict(changes.get("kind_weights", settings.kind_weights))
            weights[key.split(".", 1)[1]] = float(text)
            changes["kind_weights"] = weights
            continue
        if key not in known:
            raise ValueError(f"{name}: {key!r} is not a SearchSettings field ({', '.join(sorted(known))})")
        changes[key] = _value(text.strip(), getattr(settings, key))
    return replace(settings, **changes)


def config_settings(name: str) -> SearchSettings:
    base_name, sep, spec = name.partition(":")
    if sep:
        return apply_overrides(config_settings(base_name), spec, name)
    base = SearchSettings()
    ALL_UNITS = all_units(base)
    if name == "dense-questions":
        return _plain(base, mode="dense", unit_kinds=("question",))
    if name == "bm25":
        return _plain(base, mode="lexical", unit_kinds=ALL_UNITS)
    if name == "dense-all":
        return _plain(base, mode="dense", unit_kinds=ALL_UNITS)
    if name == "rrf":
        return _plain(base, mode="hybrid", fusion="rrf", unit_kinds=ALL_UNITS)
    if name == "hybrid":
        return _plain(base, mode="hybrid", fusion="weighted", unit_kinds=ALL_UNITS)
    if name == "legacy":
        return replace(base, mode="hybrid", **LEGACY)
    if name in ("zscore", "minmax", "learned"):
        return _plain(base, mode="hybrid", fusion=name, unit_kinds=ALL_UNITS)
    if name == "final":
        return base
    raise ValueError(f"unknown configuration {name!r} (known: {', '.join(CONFIG_NAMES)}, each optionally "
                     "followed by :key=value;...)")


def describe(settings: SearchSettings) -> str:
    """One line of what a configuration does, for the results legend (the JSON has every field)."""
    parts = [f"mode={settings.mode}", f"units={'+'.join(settings.unit_kinds)}"]
    if settings.mode == "hybrid" and settings.fusion == "rrf":
        parts.append(f"fusion=rrf (k={settings.rrf_k})")
    elif settings.mode == "hybrid" and settings.fusion == "learned":
        parts.append("fusion=learned (indexer/rankers/, the model's)")
    elif settings.mode == "hybrid":
        parts.append(f"fusion={settings.fusion}, lexical_weight={settings.lexical_weight:g}")
    if settings.mode != "dense" and getattr(settings, "lexical_norm", None):
        parts.append(f"lexical_norm={settings.lexical_norm}")
    weights = {k: v for k, v in settings.kind_weights.items() if k in settings.unit_kinds}
    if len(settings.unit_kinds) > 1 and any(v != 1.0 for v in weights.values()):
        parts.append("kind_weights=" + ",".join(f"{k}:{v:g}" for k, v in weights.items()))
    if settings.second_unit_weight:
        parts.append(f"second_unit_weight={settings.second_unit_weight:g}")
    parts.append(f"candidates={settings.candidates}")
    return ", ".join(parts)
