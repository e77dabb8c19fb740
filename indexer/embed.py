"""Embed text with sentence-transformers, offline, with a content-hash cache.

The model is loaded from a local folder only (`HF_HUB_OFFLINE=1`), found by
indexer/models.py (the packaged models, or a folder the user gave). Vectors
are cached by (model, sha256 of the text), so a rebuild with nothing changed
embeds nothing and a changed page re-embeds only its own passages.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from .config import DEFAULT_MODEL  # noqa: E402
from .models import ModelError, resolve_model  # noqa: E402
from .text import whole_words  # noqa: E402

log = logging.getLogger(__name__)

#: Held while a model is built from its files. transformers builds it under `init_empty_weights`, which
#: patches `torch.nn.Module` for the whole process: two builds at once (the app's encoder thread beside a
#: rebuild's) can leave that patch on, and every later model in the process then lands on the meta device
#: ("Cannot copy out of meta tensor"). One build at a time.
MODEL_LOAD_LOCK = threading.Lock()


class Embedder:
    """A sentence-transformers model: normalized vectors and its tokenizer's counts."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # counting a long text's tokens is not an error here

        self.name = model
        self.batch_size = batch_size
        path = resolve_model(model)
        try:
            with MODEL_LOAD_LOCK:
                self.model = SentenceTransformer(path, device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load model {model!r} offline: {exc}".splitlines()[0]) from None
        self.dimension = int(self.model.get_embedding_dimension()
                             if hasattr(self.model, "get_embedding_dimension")
                             else self.model.get_sentence_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self._lock = threading.Lock()

    @cached_property
    def whole_words(self) -> frozenset[str]:
        return whole_words(self.model.tokenizer.get_vocab())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:  # the model is not safe to call from two Streamlit sessions at once
            vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)


class VectorCache:
    """Vectors keyed by model and content hash, in one SQLite file beside the page cache."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db = self._open(path)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, disk full: not corruption
                raise
            # A damaged cache is only a cache: set it aside (for a look) and start afresh.
            aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            log.warning("%s is damaged (%s); moved aside to %s, vectors will be re-embedded", path, exc, aside.name)
            os.replace(path, aside)
            for suffix in ("-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self.db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB,"
                       " PRIMARY KEY (model, hash))")
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        self.db.close()

    def get_many(self, model: str, hashes: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 500):
            batch = unique[i:i + 500]
            rows = self.db.execute(
                f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({','.join('?' * len(batch))})",
                [model, *batch])
            for h, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim:
                    found[h] = vec
        return found

    def forget(self, model: str) -> int:
        """Drop every vector of `model` (its weights changed); returns how many."""
        with self.db:
            return self.db.execute("DELETE FROM vectors WHERE model = ?", (model,)).rowcount

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self.db:  # one transaction
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                                [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()])


def embed_cached(embedder: Embedder, cache: VectorCache, texts: Sequence[str], hashes: Sequence[str], *,
                 progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, int, int]:
    """Vectors for `texts` (row i for texts[i]); returns (vectors, embedded, reused).

    `progress(n)` counts texts (repeats included) as their vectors become available: the cached
    ones at once, then each batch as it is embedded, summing to `len(texts)`.
    """
    known = cache.get_many(embedder.name, hashes, embedder.dimension)
    uses = Counter(hashes)
    if progress and known:
        progress(sum(uses[h] for h in known))
    todo: dict[str, str] = {}
    for text, h in zip(texts, hashes):
        if h not in known:
            todo.setdefault(h, text)
    new: dict[str, np.ndarray] = {}
    keys = list(todo)
    step = max(embedder.batch_size * 4, 1)
    for i in range(0, len(keys), step):
        batch = keys[i:i + step]
        vectors = embedder.encode([todo[h] for h in batch])
        batch_new = dict(zip(batch, vectors))
        cache.put_many(embedder.name, batch_new)  # saved as we go: an interrupted build keeps its work
        new.update(batch_new)
        if progress:
            progress(sum(uses[h] for h in batch))
    known.update(new)
    matrix = np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, embedder.dimension), np.float32)
    return matrix.astype(np.float32), len(new), len(set(hashes)) - len(new)
