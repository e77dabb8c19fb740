"""A query encoder that starts in a fraction of a second: BERT in numpy, no torch.

Importing torch + transformers + sentence-transformers takes 6-8 s on a laptop
CPU, which is most of the web app's cold start. A query is a few dozen word
pieces, so the model's forward pass is cheap in plain numpy: this module reads
the same `model.safetensors` and `tokenizer.json` and computes the same vector
(`Transformer -> mean pooling -> normalize`, as in the model's `modules.json`).
It only takes models it can reproduce exactly (BERT, absolute positions, GELU,
mean pooling); for any other, `load_query_encoder` returns the usual
sentence-transformers `Embedder`. Indexing always uses `Embedder`.

The object has the surface `Searcher` uses: `name`, `dimension`, `max_tokens`,
`encode(texts)` and `count_tokens(texts)`.
"""

from __future__ import annotations

import json
import logging
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), vectorised."""
    sign = np.sign(x)
    a = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def supported(path: Path) -> bool:
    """Whether `path` is a sentence-transformers folder this module reproduces exactly."""
    try:
        config = _read_json(path / "config.json")
        modules = [m.get("type", "") for m in _read_json(path / "modules.json")]
        pooling_dir = next((m["path"] for m in _read_json(path / "modules.json")
                            if m.get("type", "").endswith("Pooling")), "1_Pooling")
        pooling = _read_json(path / pooling_dir / "config.json")
    except (OSError, ValueError, KeyError, StopIteration):
        return False
    return (config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
            and [t.rsplit(".", 1)[-1] for t in modules] in (["Transformer", "Pooling", "Normalize"],
                                                              ["Transformer", "Pooling"])
            and pooling.get("pooling_mode_mean_tokens") is True
            and not any(pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                                   "pooling_mode_mean_sqrt_len_tokens",
                                                   "pooling_mode_weightedmean_tokens",
                                                   "pooling_mode_lasttoken")))


class NumpyBertEncoder:
    """Mean-pooled, L2-normalised BERT sentence vectors computed with numpy."""

    def __init__(self, name: str, path: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.name = name
        path = Path(path)
        config = _read_json(path / "config.json")
        try:
            st_config = _read_json(path / "sentence_bert_config.json")
        except OSError:
            st_config = {}
        self.max_tokens = int(st_config.get("max_seq_length") or config["max_position_embeddings"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dimension = int(config["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        weights = load_file(str(path / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        self.w = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        # Transposed once so the forward pass is x @ W.
        for key in list(self.w):
            if key.endswith(".weight") and self.w[key].ndim == 2 and key.startswith("encoder."):
                self.w[key] = np.ascontiguousarray(self.w[key].T)
        self._lock = threading.Lock()
        # A query's matrices are tiny: BLAS threads only fight each other (and faiss's OpenMP threads) for
        # the cores; on a busy 2-core laptop that turns 12 ms into 500 ms. One thread is the fast choice.
        try:
            from threadpoolctl import ThreadpoolController

            self._threads = ThreadpoolController()
        except Exception:  # optional: without it numpy keeps its default threads
            self._threads = None

    def _one_blas_thread(self):
        return self._threads.limit(limits=1, user_api="blas") if self._threads is not None else nullcontext()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def _ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=True).ids
        if len(ids) > self.max_tokens:  # keep [CLS] ... [SEP], as the HF tokenizer's truncation does
            ids = ids[: self.max_tokens - 1] + ids[-1:]
        return ids

    def _forward(self, ids: list[int]) -> np.ndarray:
        w, n = self.w, len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        d = self.dimension // self.heads
        scale = np.float32(1.0 / np.sqrt(d))
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = (x @ w[p + "attention.self.query.weight"] + w[p + "attention.self.query.bias"])
            k = (x @ w[p + "attention.self.key.weight"] + w[p + "attention.self.key.bias"])
            v = (x @ w[p + "attention.self.value.weight"] + w[p + "attention.self.value.bias"])
            q, k, v = (t.reshape(n, self.heads, d).transpose(1, 0, 2) for t in (q, k, v))
            att = (q @ k.transpose(0, 2, 1)) * scale
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, self.dimension)
            h = ctx @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            x = _layer_norm(h + x, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = _gelu(x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"])
            h = h @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
            x = _layer_norm(h + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        vec = x.mean(0)  # no padding: every token counts
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock, self._one_blas_thread():
            vectors = [self._forward(self._ids(t)) for t in texts]
        return np.ascontiguousarray(np.stack(vectors), dtype=np.float32)


def load_query_encoder(model: str, *, batch_size: int = 32):
    """The fast numpy encoder when it reproduces `model` exactly, else sentence-transformers."""
    from .embed import Embedder, ModelError, resolve_model

    try:
        path = Path(resolve_model(model))
    except ModelError:
        path = None
    if path is not None and path.is_dir() and supported(path):
        try:
            return NumpyBertEncoder(model, path)
        except Exception as exc:  # any surprise: fall back on the reference implementation
            log.warning("numpy encoder unavailable for %s (%s); using sentence-transformers", model, exc)
    return Embedder(model, batch_size=batch_size)
