"""webapp/resources.py's SearcherLoader: the build's searcher, its encoder opened beside it, once per process."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app_fixtures import app_index  # noqa: F401  (fixture)
from indexer.onnx_encoder import OnnxEncoder
from indexer.store import IndexError_


@pytest.fixture
def resources(app_index, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    from webapp import resources

    monkeypatch.setenv("FAQ_CACHE_DIR", str(app_index.cache_dir))
    resources.get_encoder.clear()
    yield resources
    resources.get_encoder.clear()


def test_the_encoder_opens_in_its_own_thread_while_the_index_loads(resources, app_index,  # noqa: F811
                                                                    monkeypatch: pytest.MonkeyPatch):
    threads: list[str] = []
    real = resources.encoder_for

    def recording(model: str):
        threads.append(threading.current_thread().name)
        return real(model)

    monkeypatch.setattr(resources, "encoder_for", recording)
    loader = resources.SearcherLoader()
    searcher = loader.start((str(app_index.index_dir), "build-1")).result()
    assert isinstance(searcher.embedder, OnnxEncoder)  # the build's export, from the cache folder
    assert threads and all(name.startswith("faq-encoder-loader") for name in threads), threads
    assert searcher.search("what is log loss").results

    # Another build of the same model (a rebuild): a new searcher, the same encoder, loaded once.
    again = loader.start((str(app_index.index_dir), "build-2")).result()
    assert again is not searcher and again.embedder is searcher.embedder
    assert loader.start((str(app_index.index_dir), "build-2")).result() is again


def test_a_failed_load_says_why_and_the_next_run_tries_again(resources, app_index, tmp_path: Path):  # noqa: F811
    loader = resources.SearcherLoader()
    key = (str(tmp_path / "index"), "b")
    failed = loader.start(key)
    with pytest.raises(IndexError_, match="no index here"):
        failed.result()
    (tmp_path / "index").symlink_to(app_index.index_dir, target_is_directory=True)  # then it is built
    retried = loader.start(key)
    assert retried is not failed and retried.result().search("what is log loss").results
