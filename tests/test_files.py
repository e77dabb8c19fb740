"""The shared file helpers: hashes read in blocks, and writes never torn."""

import hashlib
import os

import pytest

from indexer.files import atomic_write, file_sha256


def test_file_sha256_reads_a_file_of_several_blocks_whole(tmp_path):
    data = os.urandom((3 << 20) + 12345)  # three 1 MiB blocks and a partial one
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == file_sha256(path)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_sha256(empty) == hashlib.sha256(b"").hexdigest()


def test_atomic_write_replaces_the_file_and_creates_its_folder(tmp_path):
    path = tmp_path / "new" / "folder" / "manifest.json"
    atomic_write(path, b"first")
    atomic_write(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["manifest.json"], "no temporary file left"


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary_one(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write(path, "text, not bytes")  # fails inside the write, after the temporary file exists
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
