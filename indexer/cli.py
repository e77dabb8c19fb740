"""Command line: `python -m indexer build | search | status | eval`.

Thin by design: each command parses its arguments, calls the library, and
prints. User errors (a bad FAQ, a missing index) exit non-zero with one line.
"""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from .config import DEFAULT_CACHE_DIR, DEFAULT_FAQ, DEFAULT_INDEX_DIR, Settings, env_path

index_dir_option = click.option(
    "--index-dir", type=click.Path(path_type=Path), default=lambda: env_path("FAQ_INDEX_DIR", DEFAULT_INDEX_DIR),
    show_default="data/index", help="Folder of the index (FAQ_INDEX_DIR).")
cache_dir_option = click.option(
    "--cache-dir", type=click.Path(path_type=Path), default=lambda: env_path("FAQ_CACHE_DIR", DEFAULT_CACHE_DIR),
    show_default="data/cache", help="Fetched pages, vectors and the ONNX query encoder, kept across builds.")


def _user_errors():
    from .embed import ModelError
    from .faq import FaqError
    from .ranker import RankerError
    from .store import IndexError_
    from .threshold import ThresholdError
    return (FaqError, IndexError_, ModelError, RankerError, ThresholdError)


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def system_error_line(exc: OSError | sqlite3.Error, paths: list[Path]) -> str:
    """One line for a file-system or SQLite error: which path, what happened, what to do."""
    where = str(getattr(exc, "filename", None) or "") or ", ".join(dict.fromkeys(str(p) for p in paths)) or "?"
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code in _FULL or "disk is full" in text or "no space" in text:
        fix = "the disk is full: free some space (or point --index-dir / --cache-dir at another disk) and run again"
    elif code == errno.EFBIG:
        fix = "a file grew past the size limit (ulimit -f): raise the limit and run again"
    elif code in _DENIED or "readonly" in text or "read-only" in text:
        fix = ("cannot write there: make the folder writable (or point --index-dir / --cache-dir at a writable "
               "folder)")
    elif code in (errno.ENOTDIR, errno.EISDIR):
        fix = ("a file stands where a folder is expected (or a folder where a file is): point --index-dir / "
               "--cache-dir at a folder")
    elif code == errno.ENOENT:
        fix = "no such file or folder"
    elif code == errno.EIO or "disk i/o error" in text:
        fix = ("a write failed (a full disk, a file-size limit such as ulimit -f, or a failing disk): free some "
               "space or raise the limit and run again")
    elif isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        fix = "a database file is damaged: delete it (or rebuild the index) and run again"
    elif isinstance(exc, sqlite3.Error):
        fix = f"database error ({exc})"
    else:
        fix = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{where}: {fix}" + ("; the previous index is untouched" if fix.startswith(("the disk", "a file grew", "a write")) else "")


def _run(fn, *args, **kwargs):
    """Call into the library, turning its user-facing errors, and any file-system or SQLite error, into
    one-line CLI errors (a traceback helps nobody whose disk is full)."""
    try:
        return fn(*args, **kwargs)
    except _user_errors() as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        paths: list[Any] = [a for a in (*args, *kwargs.values()) if isinstance(a, Path)]
        raise click.ClickException(system_error_line(exc, paths)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Semantic search over a course FAQ and the pages it links to.

    \b
        python -m indexer build                 # data/faq.md -> data/index
        python -m indexer search "what is log loss"
        python -m indexer status
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "trafilatura", "sentence_transformers", "htmldate", "courlan", "bm25s"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING) if verbose < 2 else logging.DEBUG)


@cli.command()
@click.option("--faq", "faq_paths", multiple=True, type=click.Path(path_type=Path),
              help="FAQ file (.md, .jsonl, .csv) or folder; repeatable. Default: data/faq.md")
@index_dir_option
@cache_dir_option
@click.option("--offline", is_flag=True, help="Do not touch the network: use cached pages only.")
@click.option("--refresh", is_flag=True, help="Re-download every page instead of revalidating.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Concurrent fetches (default 4).")
@click.option("--model", default=None, help="sentence-transformers model name or folder (FAQ_MODEL).")
@click.option("--allow-private", is_flag=True,
              help="Also fetch private, loopback and link-local addresses (local mirrors, intranet FAQs; "
                   "FAQ_ALLOW_PRIVATE=1).")
def build(faq_paths: tuple[Path, ...], index_dir: Path, cache_dir: Path, offline: bool, refresh: bool,
          workers: int | None, model: str | None, allow_private: bool) -> None:
    """Build or update the index from the FAQ and the pages it links to.

    \b
        python -m indexer build
        python -m indexer build --faq data/faq.md --faq more.jsonl --workers 8
        python -m indexer build --offline      # cached pages only
    """
    from dataclasses import replace

    from .build import build_index

    settings = Settings() if model is None else replace(Settings(), model=model)
    if allow_private:
        settings = replace(settings, fetch=replace(settings.fetch, allow_private=True))
    try:
        summary = _run(build_index, list(faq_paths) or [DEFAULT_FAQ], index_dir=index_dir, cache_dir=cache_dir,
                       settings=settings, offline=offline, refresh=refresh, workers=workers)
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: the previous index is untouched; pages and vectors "
                                   "fetched so far are cached for the next run") from None
    from .store import read_report

    for rec in read_report(index_dir):
        if rec["status"] in ("failed", "thin", "suspect", "gone", "empty", "refused"):
            click.echo(f"  {rec['status']}: {rec['url']} ({rec['reason']})", err=True)
    click.echo(f"Built {index_dir}: {summary.line()}")


def _print_human(response) -> None:
    mark = "" if response.answered else "  (no confident answer in the FAQ; nearest entries:)"
    click.echo(f"? {response.query}{mark}")
    for rank, r in enumerate(response.results, start=1):
        click.echo(f"{rank:>2}. [{r.score:.2f}] {r.question}  ({r.id})")
        snippet = " ".join(r.evidence.text.split())
        click.echo(f"      matched {r.evidence.source}: {snippet[:160]}{'…' if len(snippet) > 160 else ''}")
        for res in r.resources:
            click.echo(f"      - {res.kind}: {res.title} <{res.url}>")


@cli.command()
@click.argument("query", nargs=-1)
@index_dir_option
@cache_dir_option
@click.option("-k", "--top-k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line, per query.")
@click.option("--threshold", type=float, default=None, help="Override the calibrated answer threshold.")
def search(query: tuple[str, ...], index_dir: Path, cache_dir: Path, top_k: int, as_json: bool,
           threshold: float | None) -> None:
    """Find the FAQ entries that answer a question (one query a line from stdin if none given).

    \b
        python -m indexer search "what is log loss"
        python -m indexer search --json -k 3 "why exp in softmax"
        printf 'relu\\nlearning rate\\n' | python -m indexer search --json
    """
    from .search import Searcher

    searcher = _run(Searcher.open, index_dir, threshold=threshold, cache_dir=cache_dir)
    queries = [" ".join(query)] if query else (line.strip() for line in sys.stdin)
    for q in queries:
        if not q:
            continue
        response = searcher.search(q, top_k=top_k)
        if as_json:
            click.echo(json.dumps(response.to_dict(), ensure_ascii=False))
        else:
            _print_human(response)


@cli.command()
@index_dir_option
@click.option("--json", "as_json", is_flag=True)
def status(index_dir: Path, as_json: bool) -> None:
    """Model, counts, build time, and whether the FAQ changed since the build.

    \b
        python -m indexer status --json
    """
    from .status import index_status

    info = _run(index_status, index_dir)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=1))
        return
    click.echo(f"index:    {index_dir} (built {info['built_at']})")
    click.echo(f"model:    {info['model']} ({info['dimension']}-d)")
    click.echo("counts:   " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()))
    how = {"calibrated": "calibrated on this index", "environment": "from FAQ_ANSWER_THRESHOLD",
           "default": "default; calibrate it with `python -m indexer calibrate`"}.get(info["threshold_source"],
                                                                                     info["threshold_source"])
    click.echo(f"answers:  from score {info['answer_threshold']:.4f} ({how}; fusion {info['fusion']})")
    for src in info["sources"]:
        click.echo(f"source:   {src['path']}{'  (changed since build)' if src['changed'] else ''}")


@cli.command("eval")
@click.argument("file", type=click.Path(path_type=Path))
@index_dir_option
@cache_dir_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--threshold", type=float, default=None, help="Override the calibrated answer threshold.")
def eval_(file: Path, index_dir: Path, cache_dir: Path, as_json: bool, threshold: float | None) -> None:
    """Measure retrieval on labelled queries (JSONL: {"query": ..., "expected": id|question|null}).

    \b
        python -m indexer eval bench/eval/shipped_faq.jsonl
    """
    from .evaluate import evaluate, read_cases, resolve_expected
    from .search import Searcher

    cases = _run(read_cases, file)
    searcher = _run(Searcher.open, index_dir, threshold=threshold, cache_dir=cache_dir)
    expected = _run(resolve_expected, cases, searcher.stored.entries, str(file))
    report = evaluate(searcher, cases, expected)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        click.echo("\n".join(report.lines()))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@index_dir_option
@click.option("--max-refused-answerable", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Share of answerable queries the threshold may refuse.")
def calibrate(file: Path, index_dir: Path, max_refused_answerable: float) -> None:
    """Set the index's "no good answer" threshold from labelled queries (eval's JSONL format).

    The threshold is stored in the index manifest and kept by later builds with
    the same model and scoring settings. Include out-of-scope queries ("expected": null).

    \b
        python -m indexer calibrate bench/eval/shipped_faq.jsonl
    """
    from .calibrate import calibrate_index

    result = _run(calibrate_index, index_dir, file, max_refused_answerable=max_refused_answerable)
    click.echo(f"threshold {result.threshold:.4f} from {result.answerable} answerable and {result.unanswerable} "
               f"out-of-scope queries: refuses {result.refused_unanswerable:.0%} of out-of-scope and "
               f"{result.refused_answerable:.0%} of answerable ones" + (f" ({result.note})" if result.note else ""))


def main() -> None:
    try:
        code = cli.main(prog_name="python -m indexer", standalone_mode=False)
    except click.UsageError as exc:
        if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
            exc.show()  # no command at all: the help is the answer
        else:  # one line naming the problem, like every other error (not click's usage block)
            click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except (OSError, sqlite3.Error) as exc:  # outside the library calls: printing, reading stdin
        click.echo(f"Error: {system_error_line(exc, [])}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
