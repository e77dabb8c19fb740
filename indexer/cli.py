"""Command line: `python -m indexer` (installed as `faq-search`): build, search, status, eval, calibrate,
check, insights, forget.

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

from .config import DEFAULT_CACHE_DIR, DEFAULT_FAQ, DEFAULT_INDEX_DIR, VERSION, Settings, env_path

index_dir_option = click.option(
    "--index-dir", type=click.Path(path_type=Path), default=lambda: env_path("FAQ_INDEX_DIR", DEFAULT_INDEX_DIR),
    help="Folder of the index. Default: FAQ_INDEX_DIR, else data/index.")
db_option = click.option(
    "--db", type=click.Path(path_type=Path), default=None,
    help="The app's query log (default: FAQ_APP_DB, else data/app.sqlite).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
cache_dir_option = click.option(
    "--cache-dir", type=click.Path(path_type=Path), default=lambda: env_path("FAQ_CACHE_DIR", DEFAULT_CACHE_DIR),
    help="Fetched pages, vectors and the ONNX query encoder, kept across builds. Default: FAQ_CACHE_DIR, "
         "else data/cache.")


def _user_errors():
    from .models import ModelError
    from .faq import FaqError
    from .ranker import RankerError
    from .store import IndexError_
    from .insights import PeriodError
    from .search import UnknownSection
    from .threshold import ThresholdError
    return (FaqError, IndexError_, ModelError, RankerError, ThresholdError, PeriodError, UnknownSection)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(VERSION, "--version", prog_name="faq-search", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Semantic search over a course FAQ and the pages it links to.

    \b
        faq-search build                 # data/faq.md -> data/index
        faq-search search "what is log loss"
        faq-search insights --since 30d  # what learners asked that the FAQ does not answer

    `faq-search` and `python -m indexer` are the same command.
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "trafilatura", "sentence_transformers", "htmldate", "courlan", "bm25s"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING) if verbose < 2 else logging.DEBUG)


@cli.command(short_help='Build or update the index from the FAQ and its pages.')
@click.option("--faq", "faq_paths", multiple=True, type=click.Path(path_type=Path),
              help="FAQ file (.md, .jsonl, .json, .csv) or folder; repeatable. Default: data/faq.md")
@index_dir_option
@cache_dir_option
@click.option("--offline", is_flag=True, help="Do not touch the network: use cached pages only.")
@click.option("--refresh", is_flag=True, help="Re-download every page instead of revalidating.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Concurrent fetches (default 4).")
@click.option("--model", default=None, help="sentence-transformers model name or folder (FAQ_MODEL).")
@click.option("--allow-private", is_flag=True,
              help="Also fetch private, loopback and link-local addresses (local mirrors, intranet FAQs; "
                   "FAQ_ALLOW_PRIVATE=1).")
@click.option("--archive-fallback", is_flag=True,
              help="A page that fails and was never cached is taken from the web archive (FAQ_ARCHIVE_API), "
                   "and reported archived.")
def build(faq_paths: tuple[Path, ...], index_dir: Path, cache_dir: Path, offline: bool, refresh: bool,
          workers: int | None, model: str | None, allow_private: bool, archive_fallback: bool) -> None:
    """Build or update the index from the FAQ and the pages it links to.

    \b
        python -m indexer build
        python -m indexer build --faq data/faq.md --faq more.jsonl --workers 8
        python -m indexer build --offline      # cached pages only
        python -m indexer build --archive-fallback
    """
    from dataclasses import replace

    from .build import build_index

    settings = Settings() if model is None else replace(Settings(), model=model)
    if allow_private or archive_fallback:
        settings = replace(settings, fetch=replace(settings.fetch, allow_private=allow_private or
                                                   settings.fetch.allow_private, archive_fallback=archive_fallback))
    try:
        summary = _run(build_index, list(faq_paths) or [DEFAULT_FAQ], index_dir=index_dir, cache_dir=cache_dir,
                       settings=settings, offline=offline, refresh=refresh, workers=workers)
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: the previous index is untouched; pages and vectors "
                                   "fetched so far are cached for the next run") from None
    from .store import read_report

    _echo_problem_pages(read_report(index_dir))
    click.echo(f"Built {index_dir}: {summary.line()}")


def _echo_problem_pages(report: list[dict]) -> None:
    """Pages that could not be fetched, under one heading (to stderr), then the other pages not indexed
    as fetched (paywalled, suspect, gone, empty, refused)."""
    from .links import not_indexed_as_fetched

    problems = not_indexed_as_fetched(report)
    failed = [r for r in problems if r["status"] == "failed"]
    if failed:
        hint = " (offline?)" if all("cannot connect" in (r.get("reason") or "") for r in failed) else ""
        click.echo(f"could not fetch {len(failed)} page{'s' if len(failed) != 1 else ''}{hint}; "
                   "questions, answers and link titles are indexed anyway:", err=True)
        for r in failed:
            click.echo(f"  failed: {r['url']} ({r['reason']})", err=True)
    for r in problems:  # kept out of the index on purpose, or kept from an earlier copy
        if r["status"] != "failed":
            click.echo(f"  {r['status']}: {r['url']} ({r['reason']})", err=True)


def _print_human(response) -> None:
    from .query import clean
    from .threshold import confidence_level

    query = clean(response.query)  # never echo a pasted escape sequence to the terminal
    if not response.results:
        click.echo(f"? {query}  (nothing to search for: no words the search can use)")
        return
    mark = "" if response.answered else "  (no good answer in the FAQ; the nearest entries:)"
    click.echo(f"? {query}{mark}")
    if response.corrections:
        click.echo("  also searched for: " + ", ".join(f"{fixed} (for {typed})"
                                                       for typed, fixed in response.corrections.items()))
    for rank, r in enumerate(response.results, start=1):
        click.echo(f"{rank:>2}. {confidence_level(r.score, response.threshold):<8} {r.question}  ({r.id})")
        snippet = " ".join(r.evidence.text.split())
        click.echo(f"      matched {r.evidence.source}: {snippet[:160]}{'…' if len(snippet) > 160 else ''}")
        if r.evidence.stale:
            click.echo(f"      (stale: the page is gone; from its last good copy, fetched {r.evidence.last_good[:10]})")
        for res in r.resources:
            gone = "  [dead link]" if res.url in r.dead else ""
            click.echo(f"      - {res.kind}: {res.title} <{res.url}>{gone}")


@cli.command(short_help='Find the FAQ entries that answer a question.')
@click.argument("query", nargs=-1)
@index_dir_option
@cache_dir_option
@click.option("-k", "--top-k", type=click.IntRange(1, 100), default=5, show_default=True,
              help="How many entries to list per query.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line, per query.")
@click.option("--threshold", type=float, default=None,
              help="Answer threshold to use instead of the index's (calibrated or default).")
@click.option("--section", default=None, metavar="NAME",
              help="Search only the entries of this section (a FAQ heading, or a course of a multi-course FAQ).")
def search(query: tuple[str, ...], index_dir: Path, cache_dir: Path, top_k: int, as_json: bool,
           threshold: float | None, section: str | None) -> None:
    """Find the FAQ entries that answer a question; exit 1 when none is answered.

    With no QUERY, reads one query a line from stdin (with a prompt on a terminal). Each entry is
    listed with a confidence word: strong, good, possible (above the answer threshold) or weak.
    Exit status: 0 when the FAQ answers at least one query, 1 when it answers none.

    \b
        faq-search search "what is log loss"
        faq-search search --json -k 3 "why exp in softmax"
        printf 'relu\\nlearning rate\\n' | faq-search search --json
        faq-search search --section ml-zoomcamp "port already allocated"
    """
    from .search import Searcher

    searcher = _run(Searcher.open, index_dir, threshold=threshold, cache_dir=cache_dir)
    if section:
        _run(searcher.in_section, section)  # an unknown section is one line naming the ones there are
    answered = False
    for q in [" ".join(query)] if query else _stdin_queries():
        if not q:
            continue
        response = searcher.search(q, top_k=top_k, section=section)
        answered |= response.answered
        if as_json:
            click.echo(json.dumps(response.to_dict(), ensure_ascii=False))
        else:
            _print_human(response)
    if not answered:
        sys.exit(1)


def _stdin_queries():
    """Lines of stdin; on a terminal, with a prompt (Ctrl-D ends)."""
    tty = sys.stdin.isatty()
    while True:
        if tty:
            click.echo("Ask a question (Ctrl-D to quit): ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            return
        yield line.strip()


@cli.command(short_help='Show the index: model, counts, build time, threshold.')
@index_dir_option
@json_option
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
    from .links import not_indexed_as_fetched
    from .store import read_report

    report = read_report(index_dir)
    problems = not_indexed_as_fetched(report)
    if problems:
        click.echo(f"pages:    {len(problems)} of {len(report)} linked pages not indexed "
                   f"(details per link: {index_dir / 'report.json'}):")
        for r in problems:
            click.echo(f"  {r['status']}: {r['url']} ({r['reason']})")


@cli.command("eval", short_help='Measure retrieval on labelled queries.')
@click.argument("file", type=click.Path(path_type=Path))
@index_dir_option
@cache_dir_option
@json_option
@click.option("--threshold", type=float, default=None,
              help="Answer threshold to use instead of the index's (calibrated or default).")
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


@cli.command(short_help='Set the "no good answer" threshold from labelled queries.')
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_dir_option
@cache_dir_option
@click.option("--max-refused-answerable", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Share of answerable queries the threshold may refuse.")
@click.option("--if-stale", is_flag=True,
              help="Only if the index has no calibrated threshold that still applies (none yet, one made "
                   "under another ranker or scoring settings, or one made on other labelled queries than "
                   "FILES hold now); `make app` runs this on every start.")
def calibrate(files: tuple[Path, ...], index_dir: Path, cache_dir: Path, max_refused_answerable: float,
              if_stale: bool) -> None:
    """Set the index's "no good answer" threshold from labelled queries (eval's JSONL format).

    The threshold is stored in the index manifest and kept by later builds with
    the same model and scoring settings. Include out-of-scope queries ("expected": null).
    Several files are pooled: the more queries, the surer the threshold.

    \b
        python -m indexer calibrate bench/eval/shipped_faq.jsonl
        python -m indexer calibrate bench/eval/shipped_*.jsonl             # what `make app` runs
        python -m indexer calibrate bench/eval/shipped_*.jsonl --if-stale
    """
    from .calibrate import calibrate_index, current_calibration

    if if_stale:
        current = _run(current_calibration, index_dir, cases_paths=files)
        if current is not None:
            click.echo(f"threshold {current:.4f}: the index's calibration still applies; nothing to do")
            return
    result = _run(calibrate_index, index_dir, files, max_refused_answerable=max_refused_answerable,
                  cache_dir=cache_dir)
    click.echo(f"threshold {result.threshold:.4f} from {result.answerable} answerable and {result.unanswerable} "
               f"out-of-scope queries: refuses {result.refused_unanswerable:.0%} of out-of-scope and "
               f"{result.refused_answerable:.0%} of answerable ones" + (f" ({result.note})" if result.note else ""))


@cli.command(short_help='Validate FAQ files without building.')
@click.argument("faq_paths", nargs=-1, type=click.Path(path_type=Path))
def check(faq_paths: tuple[Path, ...]) -> None:
    """Validate FAQ files without building: entries, links, errors with file and line.

    \b
        faq-search check                  # data/faq.md
        faq-search check data/faq.md more.jsonl
    """
    from .faq import load_entries

    paths = list(faq_paths) or [DEFAULT_FAQ]
    entries = _run(load_entries, paths)
    links = {r.url for e in entries for r in e.resources}
    click.echo(f"{', '.join(map(str, paths))}: {len(entries)} entries, {len(links)} distinct links: OK")


@cli.command(short_help='What learners asked that the FAQ does not answer.')
@index_dir_option
@cache_dir_option
@db_option
@click.option("--since", default="30d", show_default=True,
              help="The period: a span (30d, 12h, 2w) or a date (2026-11-01).")
@click.option("-n", "--top", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many groups, entries and suggestions to list.")
@json_option
def insights(index_dir: Path, cache_dir: Path, db: Path | None, since: str, top: int, as_json: bool) -> None:
    """What learners asked that the FAQ does not answer, grouped by meaning.

    Reads the app's query log: the questions asked over the period, the share answered, the
    unanswered or unsure questions grouped by meaning (named by their most central question),
    the entries asked for most, votes per entry, and "suggest this question" requests.

    \b
        faq-search insights
        faq-search insights --since 7d --json
    """
    from .insights import gather, parse_since
    from .search import Searcher

    start = _run(parse_since, since)
    searcher = _run(Searcher.open, index_dir, cache_dir=cache_dir)
    questions = {e.id: e.question for e in searcher.stored.entries.values()}
    report = gather(_open_log(db), start, questions=questions,
                    threshold=searcher.threshold, embed=searcher.embedder.encode)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
        return
    click.echo(f"Since {report.since[:10]}: {report.queries} questions, {report.answered_share:.0%} answered.")
    click.echo(f"\nNot answered, or answered with little confidence ({sum(g.size for g in report.unanswered)}), "
               "grouped by meaning:" if report.unanswered else "\nEvery question was answered with confidence.")
    for g in report.unanswered[:top]:
        others = [q for q in g.queries if q != g.name][:2]
        also = f"  (also: {'; '.join(others)})" if others else ""
        where = f"; in {g.sections_text()}" if g.sections else ""
        click.echo(f"  {g.size:>4}  {g.name}  [newest {g.newest[:10]}{where}]{also}")
    if report.top_entries:
        click.echo("\nEntries that answered most:")
        for _, question, n in report.top_entries[:top]:
            click.echo(f"  {n:>4}  {question}")
    if report.votes:
        click.echo("\nVotes per entry (up / down):")
        for v in report.votes[:top]:
            downs = f"  thumbs down on: {'; '.join(v.down_queries[:3])}" if v.down_queries else ""
            click.echo(f"  +{v.up} / -{v.down}  {v.question}{downs}")
    if report.suggestions:
        click.echo("\nSuggested for the FAQ:")
        for query, n, last in report.suggestions[:top]:
            click.echo(f"  {n:>4}  {query}  [newest {last[:10]}]")


@cli.command(short_help='Wipe logged questions, votes and suggestions.')
@db_option
@click.option("--before", default=None,
              help="Wipe what was logged before this date (2026-11-01) or span ago (30d). Default: everything.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(db: Path | None, before: str | None, yes: bool) -> None:
    """Wipe logged questions, votes and suggestions from the app's query log.

    The log keeps rows 90 days anyway (FAQ_QUERY_RETENTION_DAYS); this wipes sooner.

    \b
        faq-search forget --before 2026-11-01
        faq-search forget --yes            # everything
    """
    from .insights import parse_since
    from .querylog import default_db_path

    cutoff = _run(parse_since, before) if before else None
    path = db or default_db_path()
    what = f"everything logged before {cutoff:%Y-%m-%d %H:%M} UTC" if cutoff else "everything logged"
    if not yes and not click.confirm(f"Wipe {what} in {path}?", default=False, err=True):
        raise click.Abort()
    removed = _open_log(path).forget(before=cutoff)
    click.echo(f"{path}: {removed} rows wiped ({what}).")


@cli.command(short_help="Every link's state at the last build; exit 1 if one is dead.")
@index_dir_option
@json_option
@click.option("--all", "show_all", is_flag=True, help="List the links that are fine too.")
def links(index_dir: Path, as_json: bool, show_all: bool) -> None:
    """Every link of the FAQ at the last build: ok, redirected, thin, suspect, empty, failing, dead, refused.

    With the date each was last good and what to do about it. Exit status 1 when a link is dead
    (the page is gone), so it can run in the maintainer's CI; 0 otherwise.

    \b
        faq-search links
        faq-search links --json
    """
    from .links import link_health
    from .store import REPORT_FILE, read_manifest, read_report

    _run(read_manifest, index_dir)  # a missing index is the usual one-line error
    health = link_health(read_report(index_dir))
    if not health and not (index_dir / REPORT_FILE).exists():
        raise click.ClickException(f"{index_dir / REPORT_FILE}: no build report; rebuild the index")
    if as_json:
        click.echo(json.dumps([link.to_dict() for link in health], ensure_ascii=False, indent=1))
    else:
        counts = {state: sum(link.state == state for link in health) for state in dict.fromkeys(
            link.state for link in health)}
        click.echo(f"{len(health)} links: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
        for link in health:
            if link.state == "ok" and not show_all:
                continue
            good = f"; last good {link.last_good[:10]}" if link.last_good else ""
            click.echo(f"  {link.state:<10} {link.url}{good}")
            detail = f"now {link.final_url}" if link.state == "redirected" else link.reason
            if detail:
                click.echo(f"             {detail}")
            if link.advice:
                click.echo(f"             -> {link.advice}")
    if any(link.state == "dead" for link in health):
        sys.exit(1)


@cli.group(short_help="Bring in pages the indexer cannot fetch; write the cache out.")
def snapshot() -> None:
    """Saved pages in and out of the page cache (a folder of files and urls.tsv).

    For paywalled or login pages: save them from a browser ("save page as", HTML only), list them
    in urls.tsv (a header line `url<TAB>file`, then one `URL<TAB>file` line per page), import the
    folder, then build (the pages are used like cached ones).

    \b
        faq-search snapshot import saved-pages/
        faq-search snapshot export backup/
    """


@snapshot.command("import", short_help="Put saved pages into the page cache.")
@click.argument("folder", type=click.Path(path_type=Path))
@cache_dir_option
def snapshot_import(folder: Path, cache_dir: Path) -> None:
    """Put the pages listed in FOLDER/urls.tsv into the page cache, as if fetched now.

    \b
        faq-search snapshot import saved-pages/ && faq-search build --offline
    """
    from .cache import PageCache
    from .snapshot import import_snapshot

    result = _run(import_snapshot, folder, PageCache(cache_dir))
    for reason in result.skipped:
        click.echo(f"  skipped: {reason}", err=True)
    click.echo(f"{folder}: {result.pages} pages imported into {cache_dir}; the next build uses them.")


@snapshot.command("export", short_help="Write every cached page out, with urls.tsv.")
@click.argument("folder", type=click.Path(path_type=Path))
@cache_dir_option
def snapshot_export(folder: Path, cache_dir: Path) -> None:
    """Write every page of the cache to FOLDER, with urls.tsv (the form `snapshot import` reads).

    \b
        faq-search snapshot export backup/
    """
    from .cache import PageCache
    from .snapshot import export_snapshot

    result = _run(export_snapshot, PageCache(cache_dir), folder)
    for reason in result.skipped:
        click.echo(f"  skipped: {reason}", err=True)
    click.echo(f"{folder}: {result.pages} pages written, listed in {folder / 'urls.tsv'}.")


def _open_log(path: Path | None):
    """The query log at `path` (default: FAQ_APP_DB, else data/app.sqlite), or a one-line error naming it."""
    import sqlite3

    from .querylog import QueryLog, default_db_path

    path = path or default_db_path()
    try:
        return QueryLog(path)
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"{path}: cannot open the query log ({exc})") from None


def main() -> None:
    prog = "faq-search" if Path(sys.argv[0]).name == "faq-search" else "python -m indexer"
    try:
        code = cli.main(prog_name=prog, standalone_mode=False)
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
