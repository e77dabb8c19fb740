"""The ONNX query encoder: exported once per model by the build, it gives sentence-transformers' vectors.

Real components throughout: optimum exports the packaged all-MiniLM-L6-v2 once
for this module, onnxruntime runs it, and its vectors are compared with the
sentence-transformers model the index is built with.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexer.build import build_index
from indexer.config import DEFAULT_MODEL
from indexer.embed import Embedder
from indexer.onnx_encoder import (OnnxQueryEncoder, export_dir, export_onnx, load_query_encoder,
                                  pipeline_info)
from indexer.search import Searcher

TEXTS = [
    "what is log loss",
    "relu",
    "Why do we need an activation function in a neural network?",
    "How to find the optimal learning rate?",
    "SGD vs Adam: which optimiser should I use for a small CNN?",
    "softmx exponentail",  # typos
    "BCE",
    "What's the derivative of the sigmoid, σ(x)(1 − σ(x))?",
    "¿Qué es la entropía cruzada?",
    "Warum brauchen neuronale Netze eine Nichtlinearität?",
    "交叉熵损失是什么",
    "ニューラルネットワークの学習率",
    "Ünïcode café — résumé 😀",
    "?!",
    "...",
    "   ",
    "",
    "gradient " * 20,
    "backpropagation through time " * 120,  # far over 256 word pieces: truncated like sentence-transformers
    "The chain rule " + "and the Jacobian of each layer " * 60 + "gives the gradient.",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding an export of the packaged model (made once for the module)."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    export_onnx(DEFAULT_MODEL, export_dir(DEFAULT_MODEL, cache))
    return cache


def test_export_writes_model_tokenizer_and_description(exported: Path):
    folder = export_dir(DEFAULT_MODEL, exported)
    assert folder.parent == exported / "onnx"
    assert {"model.onnx", "tokenizer.json", "encoder.json"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "encoder.json").read_text("utf-8")) == {
        "source": DEFAULT_MODEL, "max_seq_length": 256, "pooling": "mean", "normalize": True, "dimension": 384}
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left behind


def test_vectors_and_token_counts_match_sentence_transformers(exported: Path, embedder: Embedder):
    encoder = load_query_encoder(DEFAULT_MODEL, exported)
    assert isinstance(encoder, OnnxQueryEncoder)
    assert (encoder.name, encoder.dimension, encoder.max_tokens) == (embedder.name, embedder.dimension,
                                                                      embedder.max_tokens)
    counts = encoder.count_tokens(TEXTS)
    assert counts == embedder.count_tokens(TEXTS)
    assert max(counts) > 2 * encoder.max_tokens and 0 in counts
    ours, reference = encoder.encode(TEXTS), embedder.encode(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    cosines = (ours * reference).sum(1)
    assert cosines.min() > 0.9999, dict(zip(TEXTS, cosines.round(6)))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # One query at a time (as the app asks) gives the same vector as a padded batch.
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS])
    assert np.allclose(alone, ours, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384) and encoder.count_tokens([]) == []


def test_without_an_export_queries_use_sentence_transformers(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        encoder = load_query_encoder(DEFAULT_MODEL, tmp_path)
    assert isinstance(encoder, Embedder)
    assert "no export at" in caplog.text
    assert not (tmp_path / "onnx").exists()  # never exported at query time


def test_an_export_of_another_model_is_not_used(exported: Path, tmp_path: Path):
    folder = export_dir(DEFAULT_MODEL, tmp_path)
    shutil.copytree(export_dir(DEFAULT_MODEL, exported), folder)
    meta = json.loads((folder / "encoder.json").read_text("utf-8"))
    (folder / "encoder.json").write_text(json.dumps({**meta, "source": "someone/else"}), "utf-8")
    assert isinstance(load_query_encoder(DEFAULT_MODEL, tmp_path), Embedder)


def _fake_model(root: Path, modules: list[str], pooling: dict[str, bool]) -> Path:
    root.mkdir()
    (root / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
         for i, (kind, path) in enumerate(zip(modules, ["", "1_Pooling", "2_Normalize", "3_Dense"]))]), "utf-8")
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 8, **pooling}), "utf-8")
    (root / "sentence_bert_config.json").write_text('{"max_seq_length": 128, "do_lower_case": false}', "utf-8")
    (root / "tokenizer.json").write_text("{}", "utf-8")
    return root


def test_only_mean_pooling_with_normalize_is_exported(tmp_path: Path):
    mean = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}
    good = _fake_model(tmp_path / "good", ["Transformer", "Pooling", "Normalize"], mean)
    assert pipeline_info(good) == {"max_seq_length": 128, "pooling": "mean", "normalize": True, "dimension": 8}
    for name, modules, pooling in [
        ("no-normalize", ["Transformer", "Pooling"], mean),
        ("dense", ["Transformer", "Pooling", "Normalize", "Dense"], mean),
        ("cls", ["Transformer", "Pooling", "Normalize"], {"pooling_mode_cls_token": True}),
        ("mean-and-max", ["Transformer", "Pooling", "Normalize"], {**mean, "pooling_mode_max_tokens": True}),
    ]:
        assert pipeline_info(_fake_model(tmp_path / name, modules, pooling)) is None, name
    with pytest.raises(ValueError, match="not exported"):
        export_onnx(str(tmp_path / "cls"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_build_exports_once_and_search_uses_the_export(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    faq = tmp_path / "faq.md"
    faq.write_text("# Losses\n\n**Q: What is cross entropy loss?**\n\nIt compares predicted probabilities with "
                   "the true labels; also called log loss.\n\n**Q: What is dropout?**\n\nDropout zeroes random "
                   "activations while training.\n", "utf-8")
    index_dir, cache_dir = tmp_path / "index", tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    assert "exporting the query encoder to ONNX (once per model)" in caplog.text
    model_file = export_dir(DEFAULT_MODEL, cache_dir) / "model.onnx"
    first_mtime = model_file.stat().st_mtime_ns

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    assert "exporting" not in caplog.text
    assert model_file.stat().st_mtime_ns == first_mtime

    searcher = Searcher.open(index_dir, cache_dir=cache_dir)
    assert isinstance(searcher.embedder, OnnxQueryEncoder)
    assert searcher.search("what is log loss").results[0].id == "what-is-cross-entropy-loss"
    assert isinstance(Searcher.open(index_dir).embedder, Embedder)  # no cache folder given: sentence-transformers
