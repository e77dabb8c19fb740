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

from conftest import TEST_MODEL
from indexer.build import build_index
from indexer.embed import Embedder
from indexer.onnx_encoder import (OnnxEncoder, export_dir, export_onnx, load_query_encoder,
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
def exported(onnx_cache: Path) -> Path:
    """A cache folder holding an export of the packaged model (made once for the session)."""
    return onnx_cache


def test_export_writes_model_tokenizer_and_description(exported: Path):
    folder = export_dir(TEST_MODEL, exported)
    assert folder.parent == exported / "onnx"
    assert {"model.onnx", "model.onnx.data", "tokenizer.json", "encoder.json"} <= {p.name for p in folder.iterdir()}
    # The weights are in their own file, the graph beside them small (onnxruntime opens it faster).
    assert (folder / "model.onnx").stat().st_size < 1_000_000 < (folder / "model.onnx.data").stat().st_size
    assert (folder / "model.onnx.data").stat().st_mode == (folder / "model.onnx").stat().st_mode  # not owner-only
    meta = json.loads((folder / "encoder.json").read_text("utf-8"))
    files = meta.pop("files")
    assert meta == {"source": TEST_MODEL, "max_seq_length": 256, "pooling": "mean", "normalize": True,
                    "dimension": 384, "weights": "model.onnx.data",
                    "weights_bytes": (folder / "model.onnx.data").stat().st_size}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in files.values())
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left behind


def test_vectors_and_token_counts_match_sentence_transformers(exported: Path, embedder: Embedder):
    encoder = load_query_encoder(TEST_MODEL, exported)
    assert isinstance(encoder, OnnxEncoder)
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
        encoder = load_query_encoder(TEST_MODEL, tmp_path)
    assert isinstance(encoder, Embedder)
    assert "no export at" in caplog.text
    assert not (tmp_path / "onnx").exists()  # never exported at query time


def test_an_export_of_another_model_is_not_used(exported: Path, tmp_path: Path):
    folder = export_dir(TEST_MODEL, tmp_path)
    shutil.copytree(export_dir(TEST_MODEL, exported), folder)
    meta = json.loads((folder / "encoder.json").read_text("utf-8"))
    (folder / "encoder.json").write_text(json.dumps({**meta, "source": "someone/else"}), "utf-8")
    assert isinstance(load_query_encoder(TEST_MODEL, tmp_path), Embedder)


def test_an_export_made_from_other_weights_of_the_model_is_not_used(exported: Path, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture):
    folder = export_dir(TEST_MODEL, tmp_path)
    shutil.copytree(export_dir(TEST_MODEL, exported), folder)
    meta = json.loads((folder / "encoder.json").read_text("utf-8"))
    weights = meta["files"]["model.safetensors"]

    def recorded(**changes) -> None:
        files = {**meta["files"], "model.safetensors": {**weights, **changes}}
        (folder / "encoder.json").write_text(json.dumps({**meta, "files": files}), "utf-8")

    recorded(mtime_ns=1)  # touched (a reinstall, a copy) but the same bytes: still the export
    assert isinstance(load_query_encoder(TEST_MODEL, tmp_path), OnnxEncoder)
    recorded(mtime_ns=1, sha256="0" * 64)  # other weights of the same size (a fine-tuned copy)
    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        assert isinstance(load_query_encoder(TEST_MODEL, tmp_path), Embedder)
    assert "exported from an earlier model.safetensors" in caplog.text


def test_the_builds_first_check_records_new_file_dates_of_the_same_weights_so_later_checks_do_not_hash(
        exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from indexer import onnx_encoder

    folder = export_dir(TEST_MODEL, tmp_path)
    shutil.copytree(export_dir(TEST_MODEL, exported), folder)
    meta = json.loads((folder / "encoder.json").read_text("utf-8"))
    weights = meta["files"]["model.safetensors"]
    files = {**meta["files"], "model.safetensors": {**weights, "mtime_ns": 1}}  # a reinstall: same bytes
    (folder / "encoder.json").write_text(json.dumps({**meta, "files": files}), "utf-8")

    assert onnx_encoder.changed_weights(TEST_MODEL, tmp_path) is None, "the same bytes: not new weights"
    refreshed = json.loads((folder / "encoder.json").read_text("utf-8"))["files"]["model.safetensors"]
    assert refreshed == weights, "the file's real date, its hash unchanged"

    def no_hashing(path):
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(onnx_encoder, "file_sha256", no_hashing)
    assert onnx_encoder.export_problem(folder, TEST_MODEL) is None
    assert isinstance(load_query_encoder(TEST_MODEL, tmp_path), OnnxEncoder)


def _export_with_weights_inside(exported: Path, cache_dir: Path) -> Path:
    """A copy of the session's export as exports were made before `model.onnx.data`: weights inside the
    graph file, no "weights" in encoder.json."""
    import onnx

    folder = export_dir(TEST_MODEL, cache_dir)
    shutil.copytree(export_dir(TEST_MODEL, exported), folder)
    model = onnx.load(str(folder / "model.onnx"))
    (folder / "model.onnx.data").unlink()
    onnx.save_model(model, str(folder / "model.onnx"))
    meta = json.loads((folder / "encoder.json").read_text("utf-8"))
    del meta["weights"], meta["weights_bytes"]
    (folder / "encoder.json").write_text(json.dumps(meta), "utf-8")
    return folder


def test_an_export_with_its_weights_inside_still_encodes_and_the_next_build_moves_them_out(
        exported: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    from indexer.onnx_encoder import ensure_export, export_problem

    cache_dir = tmp_path / "cache"
    folder = _export_with_weights_inside(exported, cache_dir)
    assert (folder / "model.onnx").stat().st_size > 50_000_000
    assert export_problem(folder, TEST_MODEL) is None
    before = load_query_encoder(TEST_MODEL, cache_dir)
    assert isinstance(before, OnnxEncoder)

    def no_reference(texts):
        raise AssertionError("the rewrite needs no torch and no re-export")

    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        assert ensure_export(TEST_MODEL, cache_dir, no_reference) == folder
    assert "moving the weights out of model.onnx" in caplog.text
    meta = json.loads((folder / "encoder.json").read_text("utf-8"))
    assert meta["weights"] == "model.onnx.data" and meta["files"]
    assert meta["weights_bytes"] == (folder / "model.onnx.data").stat().st_size
    assert (folder / "model.onnx").stat().st_size < 1_000_000 < (folder / "model.onnx.data").stat().st_size
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # nothing temporary left
    after = load_query_encoder(TEST_MODEL, cache_dir)
    assert np.array_equal(after.encode(TEXTS), before.encode(TEXTS))

    caplog.clear()  # done once: the next build leaves it alone
    mtime = (folder / "model.onnx").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        ensure_export(TEST_MODEL, cache_dir, no_reference)
    assert "moving" not in caplog.text and (folder / "model.onnx").stat().st_mtime_ns == mtime


def test_a_failed_rewrite_keeps_the_export_as_it_was(exported: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture):
    from indexer import onnx_encoder

    cache_dir = tmp_path / "cache"
    folder = _export_with_weights_inside(exported, cache_dir)
    size = (folder / "model.onnx").stat().st_size

    def disk_full(model_file, out):
        (out / "model.onnx.data").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_encoder, "_separate_weights", disk_full)
    with caplog.at_level(logging.WARNING, logger="indexer.onnx_encoder"):
        assert onnx_encoder.ensure_export(TEST_MODEL, cache_dir, lambda texts: None) == folder
    assert "could not move the weights into model.onnx.data" in caplog.text
    assert (folder / "model.onnx").stat().st_size == size and not (folder / "model.onnx.data").exists()
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]
    assert isinstance(load_query_encoder(TEST_MODEL, cache_dir), OnnxEncoder)


def test_an_export_missing_its_weights_file_is_not_used(exported: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture):
    folder = export_dir(TEST_MODEL, tmp_path)
    shutil.copytree(export_dir(TEST_MODEL, exported), folder)
    (folder / "model.onnx.data").unlink()
    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        assert isinstance(load_query_encoder(TEST_MODEL, tmp_path), Embedder)
    assert "lacks model.onnx.data" in caplog.text


def test_a_weights_file_cut_short_is_not_used_and_the_next_build_exports_again(
        exported: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A full disk or a copy stopped half way: the app falls back to sentence-transformers (onnxruntime
    would refuse the file anyway), and the build repairs the export instead of living with it."""
    from indexer.onnx_encoder import ensure_export

    cache_dir = tmp_path / "cache"
    folder = export_dir(TEST_MODEL, cache_dir)
    shutil.copytree(export_dir(TEST_MODEL, exported), folder)
    weights = folder / "model.onnx.data"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        assert isinstance(load_query_encoder(TEST_MODEL, cache_dir), Embedder)
    assert "model.onnx.data is damaged" in caplog.text

    embedder = Embedder(TEST_MODEL)
    assert ensure_export(TEST_MODEL, cache_dir, embedder.encode) == folder
    repaired = load_query_encoder(TEST_MODEL, cache_dir)
    assert isinstance(repaired, OnnxEncoder)
    assert (repaired.encode(TEXTS[:3]) * embedder.encode(TEXTS[:3])).sum(1).min() > 0.9999


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
    model_file = export_dir(TEST_MODEL, cache_dir) / "model.onnx"
    first_mtime = model_file.stat().st_mtime_ns

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="indexer.onnx_encoder"):
        build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    assert "exporting" not in caplog.text
    assert model_file.stat().st_mtime_ns == first_mtime

    searcher = Searcher.open(index_dir, cache_dir=cache_dir)
    assert isinstance(searcher.embedder, OnnxEncoder)
    assert searcher.search("what is log loss").results[0].id == "what-is-cross-entropy-loss"
    assert isinstance(Searcher.open(index_dir).embedder, Embedder)  # no cache folder given: sentence-transformers


# -- the build embeds new passages with the export ---------------------------------------------------------

def _seed_passages(embedder: Embedder) -> list[str]:
    from bench.embed_speed import seed_passages
    from indexer.config import Settings

    return seed_passages(embedder, Settings())


@pytest.mark.shared
def test_passages_from_onnx_match_torch_and_are_truncated_alike(exported: Path, embedder: Embedder,
                                                                shared_dir: Path):
    """The seed pages' real passages, and the same made longer than the model's window: the ONNX encoder
    in its build configuration (batches, all cores) feeds the model the same word pieces, cut at the same
    place, and gives the same vectors as sentence-transformers."""
    from indexer.onnx_encoder import load_passage_encoder

    encoder = load_passage_encoder(TEST_MODEL, exported, batch_size=32, threads=0)
    assert isinstance(encoder, OnnxEncoder)
    texts = _seed_passages(embedder)
    counts = embedder.count_tokens(texts)
    long = [" ".join([t] * (2 * embedder.max_tokens // max(n, 1) + 1)) for t, n in zip(texts, counts)]
    assert len(texts) > 100 and min(embedder.count_tokens(long)) > embedder.max_tokens
    reference_ids = embedder.model.preprocess(texts + long)["input_ids"].tolist()
    for text, row, ours in zip(texts + long, reference_ids, encoder.tokenizer.encode_batch(texts + long)):
        assert row[:len(ours.ids)] == ours.ids and not any(row[len(ours.ids):]), text[:80]
        assert len(ours.ids) <= embedder.max_tokens
    # A shuffled batch order: vectors come back in the caller's order, whatever the length sort does.
    order = np.random.default_rng(0).permutation(len(texts) + len(long))
    mixed = [(texts + long)[i] for i in order]
    cosines = (encoder.encode(mixed) * embedder.encode(mixed)).sum(1)
    assert cosines.min() >= 0.9999, float(cosines.min())


def test_a_build_embeds_new_passages_with_the_export_and_never_imports_torch(exported: Path, tmp_path: Path):
    """With an export in the cache folder and nothing in the vector cache, every passage is new: they are
    embedded with onnxruntime and the build's process never imports torch."""
    import subprocess
    import sys

    from conftest import REPO_ROOT, with_export

    faq = tmp_path / "faq.md"
    faq.write_text("# Losses\n\n**Q: What is cross entropy loss?**\n\nIt compares predicted probabilities with "
                   "the true labels; also called log loss.\n\n**Q: What is dropout?**\n\nDropout zeroes random "
                   "activations while training.\n", "utf-8")
    cache_dir = with_export(tmp_path / "cache", exported)
    script = ("import sys; from pathlib import Path; from indexer.build import build_index; "
              f"s = build_index([Path({str(faq)!r})], index_dir=Path({str(tmp_path / 'index')!r}), "
              f"cache_dir=Path({str(cache_dir)!r}), offline=True); "
              "print(s.vectors_embedded, s.vectors_reused, s.embedded_with, "
              "sorted({'torch', 'sentence_transformers', 'transformers', 'optimum'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    embedded, reused, kind, heavy = out.stdout.strip().split(maxsplit=3)
    assert int(embedded) > 0 and reused == "0" and kind == "onnx" and heavy == "[]", out.stdout
    searcher = Searcher.open(tmp_path / "index", cache_dir=cache_dir)
    assert searcher.search("what is log loss").results[0].id == "what-is-cross-entropy-loss"


def test_torch_and_onnx_vectors_agree_and_share_the_vector_cache(exported: Path, tmp_path: Path):
    """The same FAQ built with torch (no export yet, or `embed_with_onnx` off) and with ONNX gives the same
    vectors; either encoder's vectors are reused by a build with the other, since both are the model's."""
    import faiss

    from conftest import with_export
    from indexer.config import Settings

    faq = tmp_path / "faq.md"
    faq.write_text("# Basics\n\n" + "".join(f"**Q: {q}?**\n\n{a}\n\n" for q, a in [
        ("What is a learning rate", "The step size of gradient descent. " * 3),
        ("Why normalise the inputs", "Features on one scale make the loss surface rounder. " * 40),  # > window
        ("Ünïcode café — résumé", "Accents, emoji 😀 and CJK 交叉熵 in one answer."),
    ]), "utf-8")
    torch_settings = Settings(embed_with_onnx=False)
    by_torch = build_index([faq], index_dir=tmp_path / "i-torch", cache_dir=with_export(tmp_path / "c-torch", exported),
                           settings=torch_settings, offline=True)
    by_onnx = build_index([faq], index_dir=tmp_path / "i-onnx", cache_dir=with_export(tmp_path / "c-onnx", exported),
                          offline=True)
    assert (by_torch.embedded_with, by_onnx.embedded_with) == ("sentence-transformers", "onnx")
    a = faiss.read_index(str(tmp_path / "i-torch" / "vectors.faiss"))
    b = faiss.read_index(str(tmp_path / "i-onnx" / "vectors.faiss"))
    va, vb = a.reconstruct_n(0, a.ntotal), b.reconstruct_n(0, b.ntotal)
    assert va.shape == vb.shape and (va * vb).sum(1).min() >= 0.9999
    # The torch-made cache serves an ONNX build, and the other way round: nothing is embedded again.
    again = build_index([faq], index_dir=tmp_path / "i-torch", cache_dir=tmp_path / "c-torch", offline=True)
    back = build_index([faq], index_dir=tmp_path / "i-onnx", cache_dir=tmp_path / "c-onnx", settings=torch_settings,
                       offline=True)
    assert again.vectors_embedded == back.vectors_embedded == 0


def test_new_weights_under_the_same_model_name_re_embed_every_passage(exported: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture):
    """The export records the weights it came from; when they change, the vectors cached under the
    model's name are from the old weights too, so the build drops them and embeds every passage again."""
    import indexer.build as build_module
    from indexer.onnx_encoder import changed_weights

    cache_dir, index_dir, faq = tmp_path / "cache", tmp_path / "index", tmp_path / "faq.md"
    folder = export_dir(TEST_MODEL, cache_dir)
    shutil.copytree(export_dir(TEST_MODEL, exported), folder)  # a copy: its record is edited below
    faq.write_text("# Losses\n\n**Q: What is cross entropy loss?**\n\nIt compares predicted probabilities with "
                   "the true labels.\n\n**Q: Why use momentum?**\n\nIt averages past gradients.\n", "utf-8")
    first = build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    again = build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    assert first.vectors_embedded == again.vectors_reused == again.passages > 0 and not again.vectors_embedded
    assert changed_weights(TEST_MODEL, cache_dir) is None

    meta = json.loads((folder / "encoder.json").read_text("utf-8"))
    meta["files"]["model.safetensors"].update(mtime_ns=1, sha256="0" * 64)  # as if exported from other weights
    (folder / "encoder.json").write_text(json.dumps(meta), "utf-8")
    assert changed_weights(TEST_MODEL, cache_dir) == "model.safetensors"
    monkeypatch.setattr(build_module, "ensure_export", lambda *args, **kwargs: None)  # no re-export here
    with caplog.at_level(logging.WARNING, logger="indexer.build"):
        after = build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True)
    assert after.vectors_embedded == after.passages and not after.vectors_reused
    assert "model.safetensors changed since the last build" in caplog.text
