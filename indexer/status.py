"""What the index holds, and whether its FAQ sources changed since it was built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import store
from .config import SearchSettings
from .files import file_sha256
from .threshold import resolve


def source_state(path: Path, sha256: str | None) -> tuple[bool, bool]:
    """(changed, missing) of one FAQ source against the hash recorded at build time."""
    try:
        return file_sha256(path) != sha256, False
    except OSError:
        return True, True


def index_status(index_dir: Path, settings: SearchSettings | None = None) -> dict[str, Any]:
    """The manifest's facts, and the threshold searches will use (and where it comes from)."""
    settings = settings or SearchSettings()
    manifest = store.read_manifest(Path(index_dir))
    threshold = resolve(manifest, settings)
    sources = [{"path": src["path"], "sha256": src["sha256"],
                "changed": source_state(Path(src["path"]), src["sha256"])[0]}
               for src in manifest.get("sources", [])]
    return {"model": manifest.get("model"), "dimension": manifest.get("dimension"),
            "built_at": manifest.get("built_at"), "counts": manifest.get("counts", {}),
            "sources": sources, "answer_threshold": threshold.value,
            "threshold_calibrated": threshold.calibrated, "threshold_source": threshold.source,
            "fusion": settings.fusion, "build_id": manifest.get("build_id")}
