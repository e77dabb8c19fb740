"""The build's embed stage as a Ray Data job: the same passages, model and vectors, over many workers.

Optional (`pip install .[scale]` installs `ray[data]`); nothing else in the package imports this
module, and it imports ray only when called, so a missing ray is one clear line, not an import error
at start-up. The stage plugs into the build at its one embedding seam: the content-hash
`VectorCache`. `embed_into_cache` embeds the passages the cache lacks on a Ray cluster (a local one
by default, `FAQ_RAY_ADDRESS` for a real one) and stores them under the same (model, sha256) keys;
the ordinary `build_index` then finds every vector cached, loads no model, and writes the index as
always. `embed_with_ray` returns the matrix itself (row i for texts[i], float32, normalised: what
`store.write_build` takes) for a job that writes the index directly.

    from indexer.distributed import embed_into_cache
    embed_into_cache(texts, hashes, VectorCache(cache_dir / "vectors.sqlite"), model=settings.model)
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import DEFAULT_MODEL, RaySettings
from .embed import VectorCache

log = logging.getLogger(__name__)

#: What to install when ray is missing (pyproject.toml, `[project.optional-dependencies] scale`).
INSTALL_HINT = "pip install '.[scale]'"
#: The folder that holds the `indexer` package: put first on the workers' path, so that they run this
#: checkout's code (not another copy installed in the same environment).
_CODE_ROOT = str(Path(__file__).resolve().parents[1])


class RayUnavailable(RuntimeError):
    """ray (the optional `scale` extra) is not installed; the message says how to install it."""


def _import_ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a build machine
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is a separate extra of ray
    except ImportError as exc:
        raise RayUnavailable(f"the Ray embed stage needs ray[data] ({exc.name} is missing): {INSTALL_HINT}") from None
    return ray


def start_ray(settings: RaySettings = RaySettings()) -> float:
    """Connect to `settings.address`, or start a local Ray for this machine; returns the seconds it took.

    A no-op (0.0) when this process is already connected. Workers get the offline model settings and
    this checkout on their path whichever cluster they run on.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return 0.0
    started = time.perf_counter()
    path = os.pathsep.join(p for p in (_CODE_ROOT, os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"}
    options: dict[str, Any] = {"runtime_env": {"env_vars": env}, "include_dashboard": False,
                               "log_to_driver": False, "logging_level": logging.WARNING}
    if settings.address:
        ray.init(address=settings.address, **options)
    else:
        os.environ["RAY_worker_niceness"] = str(settings.worker_niceness)  # read by the raylet ray.init starts
        ray.init(num_cpus=len(os.sched_getaffinity(0)),
                 object_store_memory=settings.object_store_mb * 1024 * 1024, **options)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    seconds = time.perf_counter() - started
    log.info("ray started in %.1fs (%s)", seconds, settings.address or "local")
    return seconds


def stop_ray() -> None:
    """Disconnect (and stop a local Ray that `start_ray` started)."""
    ray = _import_ray()
    if ray.is_initialized():
        ray.shutdown()


class EmbedBatch:
    """A Ray Data actor: loads the project's `Embedder` once, then embeds batch after batch.

    A class, so that `map_batches` keeps `concurrency` of them alive (one model load per worker, not
    per batch). Rows carry their position `i`, so the driver puts vectors back in order whatever order
    the blocks finish in.
    """

    def __init__(self, model: str, batch_size: int, threads: int) -> None:
        from .embed import Embedder

        self.embedder = Embedder(model, batch_size=batch_size)
        if threads > 0:
            import torch

            torch.set_num_threads(threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(t) for t in batch["text"]])
        return {"i": batch["i"], "vector": vectors}


def worker_threads(settings: RaySettings) -> int:
    """torch threads per worker (and the CPUs Ray reserves for it): as configured, else this machine's
    cores shared among the workers (on a cluster, set `threads` to the cores of one worker's share)."""
    if settings.threads > 0:
        return settings.threads
    return max(1, len(os.sched_getaffinity(0)) // max(1, settings.workers))


def embed_with_ray(texts: Sequence[str], *, model: str = DEFAULT_MODEL, embed_batch_size: int = 32,
                   settings: RaySettings = RaySettings()) -> np.ndarray:
    """Vectors of `texts` (row i for texts[i]; float32, unit length), embedded by `settings.workers` Ray workers.

    The same `Embedder` as the single-process build (same model folder, offline, same batch size), so
    the vectors equal the build's to float precision. Starts Ray when this process is not connected
    yet, and then stops it again at the end.
    """
    ray = _import_ray()
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    started_here = not ray.is_initialized()
    start_ray(settings)
    try:
        threads = worker_threads(settings)
        blocks = max(1, min(math.ceil(len(texts) / settings.batch_size), settings.workers * 8))
        dataset = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)],
                                      override_num_blocks=blocks)
        embedded = dataset.map_batches(
            EmbedBatch, fn_constructor_kwargs={"model": model, "batch_size": embed_batch_size, "threads": threads},
            batch_size=settings.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=settings.workers), num_cpus=threads)
        out: np.ndarray | None = None
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            vectors = np.asarray(batch["vector"], dtype=np.float32)
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[batch["i"]] = vectors
        assert out is not None
        return out
    finally:
        if started_here:
            stop_ray()


def embed_into_cache(texts: Sequence[str], hashes: Sequence[str], cache: VectorCache, *, model: str = DEFAULT_MODEL,
                     dimension: int, embed_batch_size: int = 32,
                     settings: RaySettings = RaySettings()) -> tuple[int, int]:
    """Embed with Ray the texts whose vectors `cache` lacks and store them; returns (embedded, reused).

    Keys are the build's: (model name, sha256 of the text embedded), as `Unit.hash` and `embed_cached`
    use, so the next `build_index` over the same passages reuses every vector and loads no model.
    """
    known = cache.get_many(model, hashes, dimension)
    todo: dict[str, str] = {}
    for text, h in zip(texts, hashes):
        if h not in known:
            todo.setdefault(h, text)
    if todo:
        keys = list(todo)
        vectors = embed_with_ray([todo[h] for h in keys], model=model, embed_batch_size=embed_batch_size,
                                 settings=settings)
        if vectors.shape[1] != dimension:
            raise ValueError(f"model {model!r} gives {vectors.shape[1]}-d vectors, not {dimension}")
        cache.put_many(model, dict(zip(keys, vectors)))
    return len(todo), len(set(hashes)) - len(todo)
