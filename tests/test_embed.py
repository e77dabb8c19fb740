"""The sentence-transformers embedder: loading it beside other loads (the app's encoder thread and a rebuild)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import TEST_MODEL


def test_models_built_at_once_from_several_threads_are_built_one_at_a_time_and_all_work(
        monkeypatch: pytest.MonkeyPatch):
    """transformers builds a model under a process-wide patch of torch.nn.Module (`init_empty_weights`);
    two builds overlapping can leave it on, and every later model lands on the meta device ("Cannot copy
    out of meta tensor", seen once in CI). `embed.MODEL_LOAD_LOCK` keeps the builds apart: this counts how
    many real builds run at once, and checks that models built after such a crowd still encode."""
    import sentence_transformers

    from indexer.embed import Embedder

    real = sentence_transformers.SentenceTransformer
    guard = threading.Lock()
    running = {"now": 0, "peak": 0}

    class Counted(real):  # the real class; only its construction is counted
        def __init__(self, *args, **kwargs):
            with guard:
                running["now"] += 1
                running["peak"] = max(running["peak"], running["now"])
            try:
                super().__init__(*args, **kwargs)
            finally:
                with guard:
                    running["now"] -= 1

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Counted)
    built: list[Embedder] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def load() -> None:
        try:
            start.wait()
            built.append(Embedder(TEST_MODEL))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(built) == 3
    assert running["peak"] == 1, f"{running['peak']} models were built at the same time"
    later = Embedder(TEST_MODEL)
    texts = ["what is gradient descent", "how do I pick a learning rate"]
    reference = later.encode(texts)
    assert reference.shape == (2, later.dimension) and np.isfinite(reference).all()
    for embedder in built:
        assert np.allclose(embedder.encode(texts), reference, atol=1e-5)
