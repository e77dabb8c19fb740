"""The optional Ray Data embed stage (indexer/distributed.py): the same vectors as the build's Embedder.

ray is the optional `scale` extra, which CI does not install: the Ray tests skip there, and the
missing-ray message is tested everywhere.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from indexer.config import RaySettings
from indexer.distributed import RayUnavailable, embed_into_cache, embed_with_ray, start_ray, stop_ray
from indexer.embed import VectorCache, embed_cached
from indexer.records import content_hash

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed (the optional extra: pip install '.[scale]'; CI does not install it)")

PASSAGES = [
    "Cross entropy loss measures how far predicted probabilities are from the true labels.",
    "The softmax function turns logits into probabilities by exponentiating and normalising them.",
    "ReLU outputs zero for negative inputs and the input itself otherwise.",
    "A learning rate that is too large makes gradient descent overshoot the minimum.",
    "Dropout randomly zeroes activations during training to reduce overfitting.",
    "Batch normalisation rescales each layer's inputs to zero mean and unit variance.",
    "Cross entropy loss measures how far predicted probabilities are from the true labels.",  # a repeat
]


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module's tests (starting it takes seconds), stopped afterwards."""
    start_ray(RaySettings(workers=2))
    yield
    stop_ray()


@needs_ray
@pytest.mark.slow
def test_ray_vectors_equal_the_embedders(ray_session, embedder) -> None:
    settings = RaySettings(workers=2, batch_size=2)  # several batches over two workers: the order must hold
    vectors = embed_with_ray(PASSAGES, model=embedder.name, embed_batch_size=embedder.batch_size, settings=settings)
    expected = embedder.encode(PASSAGES)
    assert vectors.dtype == np.float32 and vectors.shape == expected.shape
    cosines = (vectors * expected).sum(axis=1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.9999, cosines
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@needs_ray
@pytest.mark.slow
def test_ray_fills_the_vector_cache_the_build_reuses(ray_session, embedder, tmp_path) -> None:
    hashes = [content_hash(t) for t in PASSAGES]
    cache = VectorCache(tmp_path / "vectors.sqlite")
    try:
        cache.put_many(embedder.name, {hashes[0]: embedder.encode(PASSAGES[:1])[0]})  # one already cached
        embedded, reused = embed_into_cache(PASSAGES, hashes, cache, model=embedder.name,
                                            dimension=embedder.dimension, settings=RaySettings(workers=1))
        assert (embedded, reused) == (len(set(PASSAGES)) - 1, 1)
        # What build_index does next: every vector is found, none embedded.
        vectors, embedded, reused = embed_cached(embedder, cache, PASSAGES, hashes)
        assert (embedded, reused) == (0, len(set(PASSAGES)))
    finally:
        cache.close()
    cosines = (vectors * embedder.encode(PASSAGES)).sum(axis=1)
    assert cosines.min() >= 0.9999


def test_missing_ray_is_one_clear_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(RayUnavailable) as excinfo:
        embed_with_ray(["a passage"])
    message = str(excinfo.value)
    assert "\n" not in message and "pip install '.[scale]'" in message and "ray" in message
