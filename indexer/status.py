"""What the index holds, and whether its FAQ sources changed since it was built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import store


def index_status(index_dir: Path) -> dict[str, Any]:
    manifest = store.read_manifest(Path(index_dir))
    sources = []
    for src in manifest.get("sources", []):
        path = Path(src["path"])
        try:
            from .build import file_sha256
            changed = file_sha256(path) != src["sha256"]
        except OSError:
            changed = True
        sources.append({"path": src["path"], "sha256": src["sha256"], "changed": changed})
    return {"model": manifest.get("model"), "dimension": manifest.get("dimension"),
            "built_at": manifest.get("built_at"), "counts": manifest.get("counts", {}),
            "sources": sources, "answer_threshold": manifest.get("answer_threshold"),
            "build_id": manifest.get("build_id")}
