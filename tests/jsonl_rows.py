"""Writing JSON Lines files for tests: FAQ rows and labelled query cases are both one object a line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Each row as one line of JSON, the file ending with a newline, as the indexer's readers expect."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    return path
