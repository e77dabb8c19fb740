"""The learned ranker: a logistic regression over an entry's evidence, shipped as plain JSON.

For each candidate entry of a query it gives the probability that the entry
answers the query, from the entry's FEATURES (indexer/features.py). It is
trained by `bench/train_ranker.py` on the pooled development halves of every
evaluation set, out-of-scope queries included (every entry is then a wrong
answer), so the top entry's probability is also the chance that the FAQ
answers at all: one score both ranks and decides "no good answer"
(indexer/threshold.py).

The file holds numbers only (no pickle): feature names, the standardisation
(mean and scale per feature), coefficients, intercept, the threshold chosen on
the development halves, and where they came from.
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

from .features import FEATURES

FORMAT = "faq-ranker/1"
#: The ranker the product ships (written by bench/train_ranker.py).
DEFAULT_PATH = Path(__file__).with_name("ranker.json")


class RankerError(ValueError):
    """The ranker file is missing or malformed: a one-line message naming the file."""


@dataclass(frozen=True)
class LearnedRanker:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    #: Probability from which the top entry counts as an answer (chosen on the dev halves).
    answer_threshold: float
    sha256: str = ""
    trained: dict[str, Any] = field(default_factory=dict)

    def logits(self, matrix: np.ndarray) -> np.ndarray:
        """Log-odds per row of a FEATURES matrix (the columns are picked by name)."""
        columns = [FEATURES.index(f) for f in self.features]
        x = (np.asarray(matrix, dtype=np.float64)[:, columns] - self.mean) / self.scale
        return x @ self.coef + self.intercept

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(matrix), -50, 50)))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "features": list(self.features), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(), "intercept": self.intercept,
                "answer_threshold": self.answer_threshold, "trained": self.trained}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", "utf-8")


def _numbers(data: dict[str, Any], key: str, n: int, path: Path) -> np.ndarray:
    value = data.get(key)
    if not isinstance(value, list) or len(value) != n or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise RankerError(f"{path}: {key!r} must be a list of {n} finite numbers, one per feature")
    return np.asarray(value, dtype=np.float64)


def _number(data: dict[str, Any], key: str, path: Path) -> float:
    value = data.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise RankerError(f"{path}: {key!r} must be a finite number")
    return float(value)


def parse(raw: bytes, path: Path) -> LearnedRanker:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RankerError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RankerError(f"{path}: not a ranker file (expected \"format\": \"{FORMAT}\")")
    names = data.get("features")
    if not isinstance(names, list) or not names or not all(isinstance(f, str) for f in names):
        raise RankerError(f"{path}: 'features' must be a non-empty list of feature names")
    unknown = [f for f in names if f not in FEATURES]
    if unknown:
        raise RankerError(f"{path}: unknown features {', '.join(unknown)} (this version computes: "
                          f"{', '.join(FEATURES)})")
    n = len(names)
    scale = _numbers(data, "scale", n, path)
    if (scale <= 0).any():
        raise RankerError(f"{path}: 'scale' must be positive")
    threshold = _number(data, "answer_threshold", path)
    if not 0.0 <= threshold <= 1.0:
        raise RankerError(f"{path}: 'answer_threshold' is a probability, between 0 and 1")
    return LearnedRanker(features=tuple(names), mean=_numbers(data, "mean", n, path), scale=scale,
                         coef=_numbers(data, "coef", n, path), intercept=_number(data, "intercept", path),
                         answer_threshold=threshold, sha256=hashlib.sha256(raw).hexdigest(),
                         trained=data.get("trained") if isinstance(data.get("trained"), dict) else {})


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> LearnedRanker:
    return parse(Path(path).read_bytes(), Path(path))


def load(path: Path | str | None = None) -> LearnedRanker:
    """The ranker at `path` (default: the shipped one), read once per file version."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        stat = path.stat()
    except OSError as exc:
        raise RankerError(f"{path}: cannot read the ranker file ({exc.strerror or exc}); "
                          "train one with: python -m bench.train_ranker") from None
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)
