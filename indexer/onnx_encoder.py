"""Queries (and the build's new passages) encoded with ONNX Runtime, without importing torch.

Importing torch + transformers + sentence-transformers takes 6-8 s on a laptop
CPU, most of the web app's cold start. So the build exports the model's
transformer to ONNX once per model (with optimum), into the cache folder, and
the app and the CLI encode queries with onnxruntime and the model's own
`tokenizer.json` (the `tokenizers` library): transformer -> mean pooling over
the attention mask -> L2 normalisation, which is what sentence-transformers
does for a model whose `modules.json` reads Transformer, Pooling (mean),
Normalize. Only such models are exported; for any other, or while there is no
export, `load_query_encoder` returns the usual sentence-transformers
`Embedder`.

The build embeds new passages with the export too (`load_passage_encoder`,
`Settings.embed_with_onnx`): in batch it is at least as fast as torch on these
CPUs (bench/embed_speed.py, bench/RESULTS.md) and a build process that never
imports torch peaks far lower in memory (bench/RESULTS-faults.md). Its vectors
are sentence-transformers' to a cosine >= 0.9999 (checked on `_PROBES` at
export, and on real passages by the tests and the benchmark), so both share the
vector cache's entries, keyed by model and text hash: a passage embedded by
either is reused by both. The very first build still loads torch, because the
export needs it, and embeds with it.

The export keeps the weights in a file of their own (`model.onnx.data`, ONNX
external data) beside a small graph: onnxruntime then reads them without
parsing hundreds of MB of protobuf, and opening all-mpnet-base-v2's 435 MB
export takes 0.5-0.6 s instead of 1.3-1.8 s, which the app's first answer
waits for (bench/RESULTS-app.md). An export from before that is rewritten so by
the next build (`ensure_export`), without torch; its vectors are the same.

`OnnxEncoder` has the surface `Searcher` and the build use: `name`, `dimension`,
`max_tokens`, `batch_size`, `encode(texts)` and `count_tokens(texts)`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .config import ONNX_CPU_MEM_ARENA, ONNX_DIR_NAME, ONNX_STALE_EXPORT_SECONDS, ONNX_THREADS
from .embed import Embedder, resolve_model
from .files import file_sha256
from .text import whole_words

log = logging.getLogger(__name__)

ENCODER_JSON = "encoder.json"
MODEL_FILE = "model.onnx"
#: The weights, beside MODEL_FILE (named in the graph, relative to it, and in encoder.json's "weights").
WEIGHTS_FILE = "model.onnx.data"
TOKENIZER_FILE = "tokenizer.json"
#: Texts the build encodes both ways after an export; a mismatch discards the export.
_PROBES = ["what is log loss", "Why do we need an activation function?", "Ünïcode café — résumé 😀", "?!",
           "backpropagation " * 300]


def _read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text("utf-8"))


def export_dir(model: str, cache_dir: Path) -> Path:
    """Where the export of `model` lives: `cache_dir/onnx/<slug of the model name>`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", model).strip("-.") or "model"
    return Path(cache_dir) / ONNX_DIR_NAME / slug


#: The model's files an export is made from: when one of them changes (new weights under the same
#: model name or folder), the export no longer encodes for that model.
SOURCE_FILES = ("model.safetensors", "pytorch_model.bin", "config.json", TOKENIZER_FILE)


def transformer_folder(model: str) -> Path:
    """The folder of the model's transformer module (its weights, config and tokenizer)."""
    folder = Path(resolve_model(model))
    return folder / _read_json(folder / "modules.json")[0].get("path", "")


def source_files(transformer: Path, *, hashed: bool = True) -> dict[str, dict[str, Any]]:
    """Size, mtime and (with `hashed`) SHA-256 of each SOURCE_FILES file in a model's `transformer_folder`."""
    out = {}
    for name in SOURCE_FILES:
        path = transformer / name
        if path.is_file():
            stat = path.stat()
            out[name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                         **({"sha256": file_sha256(path)} if hashed else {})}
    return out


def _current_sources(model: str) -> tuple[Path, dict[str, dict[str, Any]]] | None:
    """The model's `transformer_folder` and its source files' size and mtime (not hashed); None when the
    model is not a readable folder here, so there is nothing to compare an export with."""
    try:
        transformer = transformer_folder(model)
        return transformer, source_files(transformer, hashed=False)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _changed_source(recorded: dict[str, Any], current: tuple[Path, dict[str, dict[str, Any]]] | None) -> str | None:
    """The first recorded source file that is no longer what the export was made from, or None.
    `current`: the model's `_current_sources`.

    Same size and mtime: unchanged, without reading it (the app's start stays fast). Otherwise the
    file's SHA-256 decides, so a copy or a reinstall of the same weights is not taken for new ones.
    """
    if current is None:
        return None
    transformer, now = current
    for name, then in recorded.items():
        stat = now.get(name)
        if stat is None:
            return name
        if _moved(stat, then):
            if stat["size"] != then.get("size") or file_sha256(transformer / name) != then.get("sha256"):
                return name
    return None


def _moved(current: dict[str, Any], recorded: dict[str, Any]) -> bool:
    """Whether a source file's size or mtime differ from what was recorded (its bytes may still be the same)."""
    return (current["size"], current["mtime_ns"]) != (recorded.get("size"), recorded.get("mtime_ns"))


def pipeline_info(model_folder: Path) -> dict[str, Any] | None:
    """The encoder's settings if the model is Transformer -> mean Pooling -> Normalize, else None."""
    folder = Path(model_folder)
    try:
        modules = _read_json(folder / "modules.json")
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = _read_json(folder / modules[1]["path"] / "config.json")
        transformer = folder / modules[0].get("path", "")
        st_config = _read_json(transformer / "sentence_bert_config.json")
        info = {"max_seq_length": int(st_config["max_seq_length"]), "pooling": "mean", "normalize": True,
                "dimension": int(pooling["word_embedding_dimension"])}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    modes = {k for k, on in pooling.items() if k.startswith("pooling_mode_") and on}
    if (kinds != ["Transformer", "Pooling", "Normalize"] or modes != {"pooling_mode_mean_tokens"}
            or st_config.get("do_lower_case") or not (transformer / TOKENIZER_FILE).is_file()):
        return None
    return info


def export_onnx(model_path: str, out_dir: Path) -> Path:
    """Export the model (a name `resolve_model` knows, or a folder) to `out_dir`, atomically; returns it.

    Writes `model.onnx` (optimum) with its weights in `model.onnx.data`, `tokenizer.json` (copied) and
    `encoder.json` (source model, max_seq_length, pooling, normalize, dimension, the weights file, and
    the source files' size, mtime and SHA-256: `files`). A previous folder at `out_dir` is replaced
    only once the new one is complete.
    """
    folder = Path(resolve_model(model_path))
    info = pipeline_info(folder)
    if info is None:
        raise ValueError(f"{model_path} is not Transformer -> mean Pooling -> Normalize; not exported")
    transformer = transformer_folder(model_path)

    def write(tmp: Path) -> None:
        from optimum.onnxruntime import ORTModelForFeatureExtraction

        from .embed import MODEL_LOAD_LOCK

        with warnings.catch_warnings(), MODEL_LOAD_LOCK:  # torch's tracer warnings are about other uses of the graph
            warnings.simplefilter("ignore")
            ORTModelForFeatureExtraction.from_pretrained(str(transformer), export=True).save_pretrained(tmp)
        if not (tmp / MODEL_FILE).is_file():
            raise RuntimeError(f"optimum wrote no {MODEL_FILE}")
        _separate_weights(tmp / MODEL_FILE, tmp)
        shutil.copyfile(transformer / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        (tmp / ENCODER_JSON).write_text(json.dumps({"source": model_path, **info, **_weights_record(tmp),
                                                    "files": source_files(transformer)}, indent=1), "utf-8")

    return _replace_folder(Path(out_dir), write)


def _separate_weights(model_file: Path, folder: Path) -> None:
    """Write the graph of `model_file` (its weights inline or external) to `folder`/MODEL_FILE with the
    weights in `folder`/WEIGHTS_FILE. `folder` is a new export's own, unpublished folder."""
    import onnx

    model = onnx.load(str(model_file))  # the weights too, wherever they are
    for name in (MODEL_FILE, WEIGHTS_FILE):  # onnx appends to an existing weights file
        (folder / name).unlink(missing_ok=True)
    onnx.save_model(model, str(folder / MODEL_FILE), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=WEIGHTS_FILE, size_threshold=1024)
    # onnx creates the weights owner-only; readable as the graph is (the umask's), for an app run by another user
    os.chmod(folder / WEIGHTS_FILE, (folder / MODEL_FILE).stat().st_mode & 0o777)


def _weights_record(folder: Path) -> dict[str, Any]:
    """encoder.json's note of the weights file: its name, and its size, which tells a file cut short
    (a full disk, a copy stopped half way) from the one exported without reading it."""
    return {"weights": WEIGHTS_FILE, "weights_bytes": (folder / WEIGHTS_FILE).stat().st_size}


def _replace_folder(out_dir: Path, write: Callable[[Path], None]) -> Path:
    """Fill a new folder with `write(folder)` and put it at `out_dir` once complete; a reader (the app)
    sees the old export or the new one, never a mix, and a failed or killed write leaves the old one."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name tells a later build whether the folder is a killed export's leftover.
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        write(tmp)
        old = tmp.with_suffix(".old")
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def separate_weights(folder: Path) -> bool:
    """Rewrite an export made before WEIGHTS_FILE (its weights inside `model.onnx`) the current way,
    atomically; the graph and weights are the same, so are the vectors. False when it already is."""
    folder = Path(folder)
    meta = _read_json(folder / ENCODER_JSON)
    if meta.get("weights"):
        return False

    def write(tmp: Path) -> None:
        for item in folder.iterdir():
            if item.is_file() and item.name not in (MODEL_FILE, WEIGHTS_FILE, ENCODER_JSON):
                shutil.copy2(item, tmp / item.name)
        _separate_weights(folder / MODEL_FILE, tmp)
        (tmp / ENCODER_JSON).write_text(json.dumps({**meta, **_weights_record(tmp)}, indent=1), "utf-8")

    log.info("%s: moving the weights out of %s into %s (a faster start)", folder, MODEL_FILE, WEIGHTS_FILE)
    _replace_folder(folder, write)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale_exports(out_dir: Path) -> list[Path]:
    """Remove the temporary folders of exports that were killed (kill -9, power cut) before they finished:
    `.<name>.<pid>-<id>.tmp` / `.old` whose process is gone. Returns what was removed."""
    removed = []
    for leftover in Path(out_dir).parent.glob(f".{Path(out_dir).name}.*"):
        if not leftover.is_dir() or leftover.suffix not in (".tmp", ".old"):
            continue
        tag = leftover.name[len(Path(out_dir).name) + 2:].split("-", 1)[0]
        if tag.isdigit():
            stale = not _pid_alive(int(tag))
        else:
            try:
                stale = time.time() - leftover.stat().st_mtime > ONNX_STALE_EXPORT_SECONDS
            except OSError:
                continue
        if stale:
            log.info("removing %s, left by an export that did not finish", leftover)
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    return removed


def changed_weights(model: str, cache_dir: Path) -> str | None:
    """The model file that changed since `model` was exported into `cache_dir`, or None. A change means
    new weights under the same name: every vector embedded before came from the old ones.

    The build's first look at the export. Files that only moved (same bytes with a new size or mtime
    record: a reinstall, a copy) get their new size and mtime recorded here, so that the build's later
    checks and every app start compare stats again instead of hashing the weights each time.
    """
    meta_path = export_dir(model, cache_dir) / ENCODER_JSON
    try:
        meta = _read_json(meta_path)
    except (OSError, ValueError):
        return None
    if meta.get("source") != model:
        return None
    current = _current_sources(model)
    changed = _changed_source(meta.get("files") or {}, current)
    if changed is None and current is not None:
        _record_moved_stats(meta_path, meta, current[1])
    return changed


def _record_moved_stats(meta_path: Path, meta: dict[str, Any], now: dict[str, dict[str, Any]]) -> None:
    """Write the source files' current size and mtime (`now`) into the export's `encoder.json` where they
    moved (the caller has found their bytes unchanged); atomically."""
    files = meta.get("files") or {}
    moved = {name: {**then, **now[name]} for name, then in files.items() if name in now and _moved(now[name], then)}
    if not moved:
        return
    tmp = meta_path.with_name(f".{ENCODER_JSON}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**meta, "files": {**files, **moved}}, indent=1), "utf-8")
    os.replace(tmp, meta_path)
    log.info("%s: same weights with new file dates (%s); recorded", meta_path.parent, ", ".join(sorted(moved)))


def export_problem(folder: Path, model: str) -> str | None:
    """Why the export in `folder` cannot encode queries for `model`, or None when it can."""
    try:
        meta = _read_json(Path(folder) / ENCODER_JSON)
    except (OSError, ValueError):
        return f"no export at {folder}"
    if meta.get("source") != model:
        return f"{folder} holds an export of {meta.get('source')!r}"
    if meta.get("pooling") != "mean" or meta.get("normalize") is not True:
        return f"{folder} is not mean pooling + normalize"
    # No "weights": an export from before WEIGHTS_FILE, weights inside MODEL_FILE (`separate_weights`).
    files = (MODEL_FILE, TOKENIZER_FILE, *([str(meta["weights"])] if meta.get("weights") else []))
    missing = [name for name in files if not (Path(folder) / name).is_file()]
    if missing:
        return f"{folder} lacks {', '.join(missing)}"
    if meta.get("weights") and meta.get("weights_bytes") is not None:
        size = (Path(folder) / str(meta["weights"])).stat().st_size
        if size != meta["weights_bytes"]:
            return f"{folder}/{meta['weights']} is damaged ({size} bytes, exported {meta['weights_bytes']})"
    # An export from before `files`: not checked.
    changed = _changed_source(meta.get("files") or {}, _current_sources(model))
    return f"{folder} was exported from an earlier {changed} of {model!r}" if changed else None


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an ONNX export of the model.

    `threads`: onnxruntime's intra-op threads (one for a query, the cores for a build's batches).
    `arena`: onnxruntime's CPU memory arena (config.ONNX_CPU_MEM_ARENA says why it is on).
    """

    def __init__(self, folder: Path, *, batch_size: int = 32, threads: int = ONNX_THREADS,
                 arena: bool = ONNX_CPU_MEM_ARENA) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        meta = _read_json(folder / ENCODER_JSON)
        if meta.get("pooling") != "mean" or meta.get("normalize") is not True:
            raise ValueError(f"{folder}: only mean pooling + normalize is supported")
        self.name = str(meta["source"])
        self.dimension = int(meta["dimension"])
        self.max_tokens = int(meta["max_seq_length"])
        self.batch_size = batch_size
        # tokenizer.json may carry its own truncation and padding (all-MiniLM-L6-v2's: 128, fixed):
        # sentence-transformers truncates at max_seq_length (special tokens included, the end cut off)
        # and pads each batch to its longest text, which `_encode_batch` does by hand.
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._pad_id = int((self.tokenizer.padding or {}).get("pad_id", 0))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        self._counter = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._counter.no_truncation()
        self._counter.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(threads), 0)  # 0: onnxruntime's choice (the physical cores)
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = bool(arena)
        self.session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    @cached_property
    def whole_words(self) -> frozenset[str]:
        return whole_words(self.tokenizer.get_vocab())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens or truncation (like `Embedder.count_tokens`)."""
        if not texts:
            return []
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """One vector per text, in order. Texts are batched longest first (as sentence-transformers
        does), so a batch pads to lengths alike rather than to the one long passage among short ones."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(encodings), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            out[rows] = self._encode_batch([encodings[i] for i in rows])
        return out

    def _encode_batch(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        feeds = {"input_ids": np.full((len(encodings), width), self._pad_id, dtype=np.int64),
                 "attention_mask": np.zeros((len(encodings), width), dtype=np.int64),
                 "token_type_ids": np.zeros((len(encodings), width), dtype=np.int64)}
        for row, e in enumerate(encodings):
            n = len(e.ids)
            feeds["input_ids"][row, :n] = e.ids
            feeds["attention_mask"][row, :n] = e.attention_mask
            feeds["token_type_ids"][row, :n] = e.type_ids
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def load_query_encoder(model: str, cache_dir: Path, *, batch_size: int = 32) -> OnnxEncoder | Embedder:
    """The ONNX encoder when the build exported `model` under `cache_dir`, else sentence-transformers.

    Never exports: that is the build's job (`ensure_export`).
    """
    folder = export_dir(model, cache_dir)
    problem = export_problem(folder, model)
    if problem is None:
        try:
            return OnnxEncoder(folder, batch_size=batch_size)
        except Exception as exc:  # a damaged export: the reference implementation still works
            problem = f"cannot load {folder}: {exc}"
    log.info("queries use sentence-transformers, not ONNX: %s", problem)
    return Embedder(model, batch_size=batch_size)


def load_passage_encoder(model: str, cache_dir: Path, *, batch_size: int = 32,
                         threads: int = 0) -> OnnxEncoder | None:
    """The build's batch encoder from an existing export of `model` (None: there is none, or it is
    damaged; the build then embeds with sentence-transformers). `threads` 0: onnxruntime's choice."""
    folder = export_dir(model, cache_dir)
    problem = export_problem(folder, model)
    if problem is None:
        try:
            return OnnxEncoder(folder, batch_size=batch_size, threads=threads)
        except Exception as exc:
            problem = f"cannot load {folder}: {exc}"
    log.info("passages are embedded with sentence-transformers, not ONNX: %s", problem)
    return None


def ensure_export(model: str, cache_dir: Path, reference: Callable[[list[str]], np.ndarray]) -> Path | None:
    """The build's step: export `model` unless done before; None if it cannot be exported.

    An existing export from before WEIGHTS_FILE is rewritten with it (`separate_weights`).
    A new export must reproduce `reference` (sentence-transformers' `encode`, called only when
    exporting) on a few probe texts, or it is removed.
    """
    folder = export_dir(model, cache_dir)
    clean_stale_exports(folder)
    if export_problem(folder, model) is None:
        try:
            separate_weights(folder)
        except Exception as exc:  # it still encodes as it is, only opens slower
            log.warning("%s: could not move the weights into %s (%s); kept as it was", folder, WEIGHTS_FILE, exc)
        return folder
    if pipeline_info(Path(resolve_model(model))) is None:
        log.info("%s is not Transformer -> mean Pooling -> Normalize: queries will use sentence-transformers",
                 model)
        return None
    log.info("exporting the query encoder to ONNX (once per model)")
    export_onnx(model, folder)
    similarity = (OnnxEncoder(folder).encode(_PROBES) * reference(list(_PROBES))).sum(1)
    if float(similarity.min()) < 0.9999:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"the ONNX export of {model} does not reproduce its vectors "
                           f"(cosine {float(similarity.min()):.5f}); removed")
    return folder
