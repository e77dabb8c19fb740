"""File helpers every stage shares: writes that are never torn, and content hashes.

Kept free of the project's heavier modules (numpy, faiss, the model) so that the model
unpacker, the ONNX export's freshness check and the benchmark's index fingerprints can
use them without importing search.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

#: Read in blocks of this size, so hashing a model's weights (hundreds of MB) holds one block in memory.
_BLOCK = 1 << 20


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: a reader, or a build cut short, sees the old file
    or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: Path | str) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
