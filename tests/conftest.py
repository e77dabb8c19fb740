"""Shared fixtures: the real model (once per session), a real local HTTP server, the shared test data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tests serve their pages on 127.0.0.1, an internal address the fetcher refuses by default;
# tests of that refusal pass `allow_private=False` explicitly.
os.environ["FAQ_ALLOW_PRIVATE"] = "1"
#: The model the suite builds and searches with: the small one, so that the suite stays quick (every code
#: path is the same for any model; the default, all-mpnet-base-v2, embeds about seven times slower). Tests
#: of the default model itself clear FAQ_MODEL (tests/test_models.py; tests/test_cli.py's subprocesses).
TEST_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
os.environ["FAQ_MODEL"] = TEST_MODEL

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
READABILITY_DIR = SHARED_DIR / "fixtures" / "html" / "readability"
SHIPPED_FAQ = REPO_ROOT / "data" / "faq.md"

sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_server import LocalServer  # noqa: E402


def shared_available() -> bool:
    return READABILITY_DIR.is_dir()


def readability_or_none() -> Path | None:
    return READABILITY_DIR if shared_available() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repository; tests that need it skip where it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DIR} (expected ../shared beside the repository)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def readability_dir(shared_dir: Path) -> Path:
    if not READABILITY_DIR.is_dir():
        pytest.skip(f"readability fixtures not found at {READABILITY_DIR}")
    return READABILITY_DIR


@pytest.fixture(scope="session")
def embedder():
    """The real packaged all-MiniLM-L6-v2 (TEST_MODEL), loaded offline once for the whole session."""
    from indexer.embed import Embedder

    return Embedder(TEST_MODEL)


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding TEST_MODEL's ONNX export, made once for the session (optimum, torch)."""
    from indexer.onnx_encoder import export_dir, export_onnx

    cache = tmp_path_factory.mktemp("onnx-cache")
    export_onnx(TEST_MODEL, export_dir(TEST_MODEL, cache))
    return cache


def with_export(cache_dir: Path, onnx_cache: Path) -> Path:
    """`cache_dir` (created) whose ONNX export is the session's, as a build leaves it: so a build there
    embeds new passages with ONNX and exports nothing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "onnx").symlink_to(onnx_cache / "onnx", target_is_directory=True)
    return cache_dir


@pytest.fixture
def server():
    """A real threaded HTTP server on 127.0.0.1:<port 0>, programmable per test."""
    with LocalServer(readability_or_none()) as srv:
        yield srv


def seed_query_log(path: Path, suggestion: str = "what is dropout"):
    """A query log as the app leaves it: three askings about dropout and one about CUDA (in the section "ml")
    that the FAQ did not answer, one answered question with a thumbs-down, and one suggestion."""
    from indexer.querylog import QueryLog

    log = QueryLog(path)
    for q in ("what is dropout", "how does dropout work", "dropout regularization explained"):
        log.log_query(q, top_id=None, top_score=0.02, answered=False, n_results=5)
    log.log_query("how to install cuda on ubuntu", top_id=None, top_score=0.02, answered=False, n_results=5,
                  section="ml")  # searched in one course of the FAQ
    log.log_query("what is log loss", top_id="what-is-cross-entropy-loss", top_score=0.93, answered=True,
                  n_results=5)
    log.record_vote("what is log loss", "what-is-cross-entropy-loss", -1)
    log.record_suggestion(suggestion)
    return log
