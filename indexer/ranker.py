"""The learned ranker: a score per candidate entry, a softmax with a "none" option, shipped as JSON.

For each candidate entry of a query it gives the probability that the entry
answers the query, from the entry's FEATURES (indexer/features.py). The
candidates of one query compete: each gets a score s_i (a linear function of
its standardised features, plus in a format-3 file a small hidden layer), and
the FAQ's not answering at all is one more option with the fixed score 0, so

    P(entry i answers) = exp(s_i) / (1 + sum_j exp(s_j)),

the sum running over the query's `rivals` best candidates (20), not all of them.
Over all of them the probability fell as the FAQ grew: each entry that has
nothing to do with the query still adds its small share (on StackFAQ's 113
entries, together about as much as "none"). `python -m bench.faq_size`: compared
with all candidates, the course FAQ's answerable dev queries are refused 4.2% of
the time on its own 60 entries and 7.1% with 121 other FAQs' entries beside
them; over the best 20, 2.5% and 4.2%.

This is a conditional (multinomial) logit over the query's candidates, trained
by `bench/train_ranker.py` on the pooled development halves of every
evaluation set, out-of-scope queries included (their answer is "none"). Two
things follow from the form rather than from tuning: an entry is judged
against its rivals (a second entry almost as good lowers the top one's
probability, which a per-entry logistic had to learn from margin features),
and the top entry's probability is directly the chance that the FAQ answers
the query, so one score both ranks and decides "no good answer"
(indexer/threshold.py).

The file holds numbers only (no pickle): feature names, the standardisation
(mean and scale per feature), coefficients, intercept, the answer threshold
and where they came from. A file of format 3 (the default model's, since the
tenth blind look) adds a small hidden layer to the linear score (`HiddenLayer`:
how much one kind of evidence counts depending on another; docs/hidden-layer.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .config import DEFAULT_MODEL
from .features import FEATURES
from .models import canonical

#: Version 2: probabilities are a softmax over the candidates with a "none" option (version 1 was
#: an independent logistic per entry; its coefficients mean something else, so it is refused).
FORMAT = "faq-ranker/2"
#: Version 3: version 2 plus a `hidden` block, which a reader of version 2 would silently ignore.
FORMAT_HIDDEN = "faq-ranker/3"
#: The rankers the product ships, one per embedding model whose cosines they were fitted on (written by
#: bench/train_ranker.py): `<model's short name>.json`.
SHIPPED_DIR = Path(__file__).with_name("rankers")


def shipped_path(model: str) -> Path:
    """The shipped ranker file for rankers fitted on `model` (it may not exist: a model given by path)."""
    return SHIPPED_DIR / f"{canonical(model).rstrip('/').rsplit('/', 1)[-1]}.json"


#: The ranker fitted on the default model.
DEFAULT_PATH = shipped_path(DEFAULT_MODEL)


class RankerError(ValueError):
    """The ranker file is missing or malformed: a one-line message naming the file."""


@dataclass(frozen=True)
class HiddenLayer:
    """`sum_h out_h * relu(weights_h . x + bias_h)` over the standardised features, added to the linear score.

    Why: a linear score weighs each kind of evidence the same whatever the others say; a few hidden units
    can weigh it by another (a page's passage counting less when the entry's own text already matches).
    """

    #: One row per unit, one column per feature of the file (a feature the layer does not read: 0).
    weights: np.ndarray
    bias: np.ndarray
    out: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ self.weights.T + self.bias, 0.0) @ self.out

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist(), "bias": self.bias.tolist(), "out": self.out.tolist()}


@dataclass(frozen=True)
class LearnedRanker:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    #: Probability from which the top entry counts as an answer (chosen on the dev halves).
    answer_threshold: float
    #: How many of a query's best candidates share the softmax with "none" (0: all; files from before).
    rivals: int = 0
    sha256: str = ""
    trained: dict[str, Any] = field(default_factory=dict)
    hidden: HiddenLayer | None = None

    def logits(self, matrix: np.ndarray) -> np.ndarray:
        """Log-odds per row of a FEATURES matrix (the columns are picked by name)."""
        columns = [FEATURES.index(f) for f in self.features]
        x = (np.asarray(matrix, dtype=np.float64)[:, columns] - self.mean) / self.scale
        if np.isnan(x).any():  # a feature the caller did not know (entry_features without faq_words)
            unknown = [f for f, bad in zip(self.features, np.isnan(x).any(axis=0)) if bad]
            raise ValueError(f"the ranker reads {', '.join(unknown)}, which these features do not hold")
        linear = x @ self.coef + self.intercept
        return linear if self.hidden is None else linear + self.hidden(x)

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """P(each row answers), the rows being all the candidates of one query: its best `rivals` and "none"
        share the mass; a row beyond them is scored against the same sum (so below each of them)."""
        return softmax_with_none(self.logits(matrix), self.rivals)

    @property
    def embedding_model(self) -> str:
        """The model whose cosines the coefficients were fitted on ("" if the file does not say): on another
        model's scores the probabilities, and so the answer threshold, mean something else."""
        value = self.trained.get("embedding_model")
        return value if isinstance(value, str) else ""

    def to_dict(self) -> dict[str, Any]:
        data = {"format": FORMAT if self.hidden is None else FORMAT_HIDDEN, "features": list(self.features),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}
        if self.hidden is not None:
            data["hidden"] = self.hidden.to_dict()
        return data | {"answer_threshold": self.answer_threshold, "rivals": self.rivals, "trained": self.trained}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", "utf-8")


def softmax_with_none(scores: np.ndarray, rivals: int = 0) -> np.ndarray:
    """exp(s_i) / (1 + sum_j exp(s_j)) over the `rivals` highest s_j (0: all), without overflow."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores
    top = max(float(scores.max()), 0.0)
    e = np.exp(scores - top)
    best = np.partition(e, len(e) - rivals)[len(e) - rivals:] if 0 < rivals < len(e) else e
    return e / (np.exp(-top) + best.sum())


def _numbers(value: Any, key: str, n: int, path: Path, what: str = "feature") -> np.ndarray:
    """`value` as n finite numbers; `key` names it in the error (e.g. 'hidden.bias')."""
    if not isinstance(value, list) or len(value) != n or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise RankerError(f"{path}: {key!r} must be a list of {n} finite numbers, one per {what}")
    return np.asarray(value, dtype=np.float64)


def _number(data: dict[str, Any], key: str, path: Path) -> float:
    value = data.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise RankerError(f"{path}: {key!r} must be a finite number")
    return float(value)


def _hidden(data: dict[str, Any], n: int, path: Path) -> HiddenLayer:
    """The `hidden` block: `weights` (units x n), `bias` and `out` (one per unit), all finite numbers."""
    block = data.get("hidden")
    if not isinstance(block, dict):
        raise RankerError(f"{path}: format {FORMAT_HIDDEN} needs a 'hidden' object with weights, bias and out")
    rows = block.get("weights")
    if not isinstance(rows, list) or not rows:
        raise RankerError(f"{path}: 'hidden.weights' must be a non-empty list of rows, one per unit")
    weights = np.vstack([_numbers(row, "hidden.weights", n, path) for row in rows])
    bias = _numbers(block.get("bias"), "hidden.bias", len(rows), path, what="hidden unit")
    out = _numbers(block.get("out"), "hidden.out", len(rows), path, what="hidden unit")
    return HiddenLayer(weights=weights, bias=bias, out=out)


def parse(raw: bytes, path: Path) -> LearnedRanker:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RankerError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") not in (FORMAT, FORMAT_HIDDEN):
        found = data.get("format") if isinstance(data, dict) else None
        if isinstance(found, str) and found.startswith("faq-ranker/"):
            raise RankerError(f"{path}: ranker format {found} is not {FORMAT} or {FORMAT_HIDDEN}; retrain it with: "
                              "python -m bench.train_ranker")
        raise RankerError(f"{path}: not a ranker file (expected \"format\": \"{FORMAT}\")")
    names = data.get("features")
    if not isinstance(names, list) or not names or not all(isinstance(f, str) for f in names):
        raise RankerError(f"{path}: 'features' must be a non-empty list of feature names")
    unknown = [f for f in names if f not in FEATURES]
    if unknown:
        raise RankerError(f"{path}: unknown features {', '.join(unknown)} (this version computes: "
                          f"{', '.join(FEATURES)})")
    n = len(names)
    scale = _numbers(data.get("scale"), "scale", n, path)
    if (scale <= 0).any():
        raise RankerError(f"{path}: 'scale' must be positive")
    threshold = _number(data, "answer_threshold", path)
    if not 0.0 <= threshold <= 1.0:
        raise RankerError(f"{path}: 'answer_threshold' is a probability, between 0 and 1")
    rivals = data.get("rivals", 0)  # absent in files trained over all candidates
    if not isinstance(rivals, int) or isinstance(rivals, bool) or rivals < 0:
        raise RankerError(f"{path}: 'rivals' must be a whole number >= 0 (0: every candidate)")
    if data["format"] == FORMAT and "hidden" in data:
        raise RankerError(f"{path}: a 'hidden' layer needs \"format\": \"{FORMAT_HIDDEN}\"")
    hidden = _hidden(data, n, path) if data["format"] == FORMAT_HIDDEN else None
    return LearnedRanker(features=tuple(names), mean=_numbers(data.get("mean"), "mean", n, path), scale=scale,
                         coef=_numbers(data.get("coef"), "coef", n, path), intercept=_number(data, "intercept", path),
                         answer_threshold=threshold, rivals=rivals, sha256=hashlib.sha256(raw).hexdigest(),
                         trained=data.get("trained") if isinstance(data.get("trained"), dict) else {},
                         hidden=hidden)


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> LearnedRanker:
    return parse(Path(path).read_bytes(), Path(path))


def for_model(model: str | None) -> Path:
    """The shipped ranker for an index embedded with `model`: its own if one is shipped, else the default
    model's (search then says that its probabilities are not calibrated for that model)."""
    own = shipped_path(model) if model else DEFAULT_PATH
    return own if own.exists() else DEFAULT_PATH


def load(path: Path | str | None = None, *, model: str | None = None) -> LearnedRanker:
    """The ranker at `path`, else the shipped one for `model` (else the default model's); read once per
    file version."""
    path = Path(path) if path else for_model(model)
    try:
        stat = path.stat()
    except OSError as exc:
        raise RankerError(f"{path}: cannot read the ranker file ({exc.strerror or exc}); "
                          "train one with: python -m bench.train_ranker") from None
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)
