"""The evaluation sets, prepared in a work folder (default bench/out/, git-ignored).

Each `prepare_*` function returns `(faq_paths, dev_cases_path, test_cases_path)`:

- **shipped**: the shipped FAQ `data/faq.md` and the hand-written queries of
  `bench/eval/shipped_faq.jsonl`. Built OFFLINE with a fresh, empty cache, so
  every linked page fails: this set measures the offline path (questions,
  answers, link titles). Queries alternate into a dev half (tuning and
  threshold calibration) and a test half (reported).
- **articles**: `bench/eval/articles_faq.jsonl` with `{BASE}` replaced by the
  address of a local static server over `../shared/fixtures/html/`; queries
  `bench/eval/articles.jsonl`. Built online against that server, with a page
  cache under the work folder (a rerun revalidates). Dev and test halves as
  for shipped.
- **stackfaq**: StackFAQ (`../shared/datasets/stackfaq/stackExchange-FAQ.json`,
  read in place; only generated files go to the work folder). Thread n becomes
  the JSONL FAQ row `{"id": "sf-<n>", "question": ..., "answer": [answers]}`.
  Every 10th thread (n % 10 == 9) is held out of the index: its rephrasings are
  out-of-scope queries (expected null). Dev cases are the rephrasings before
  the "*" marker, test cases those after it; null or empty ones are skipped.

- **course**: `bench/eval/course_faq.jsonl`, a course FAQ written for this project (60
  entries in six modules, written answers, no links), built offline; queries
  written from the entries' answers (`bench/eval/course_answers.jsonl`), halves as
  for shipped. The one set with many near-duplicate entries (three Docker errors,
  two certificate rules), as in a real course FAQ.
- **dataeng**: `bench/eval/dataeng_faq.jsonl`, a second course FAQ written for this project
  (48 entries of a data-engineering course, written answers, no links), built offline like
  course. It came after every choice made on the other sets, so its families are the first
  check of those choices on a FAQ no setting was tuned on; then it joins the dev pool.
- **mlops**: `bench/eval/mlops_faq.jsonl`, a third (72 entries of an MLOps course), written
  when every other test half had been seen: the one unseen check of the shipped settings
  (bench/eval/README.md says what it decides), then part of the dev pool.
- **llm**: `bench/eval/llm_faq.jsonl`, a fourth (60 entries of a course on LLM applications),
  written after the MLOps FAQ's check, for the same use.

`open_set(name)` wraps a set with what its build needs (the local server for
articles) and `ensure_index` builds its index, or reuses it when nothing that
goes into it changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np

from bench.common import BENCH, OUT, ROOT, SHARED, SetUnavailable, StaticServer
from indexer.files import file_sha256

log = logging.getLogger(__name__)

SET_NAMES = ("shipped", "shipped-online", "articles", "stackfaq", "course", "dataeng", "mlops", "llm", "dl", "ab", "web",
             "sql", "ts", "rds", "net", "sh", "git", "py", "docker", "stats", "viz", "cloud")
#: The query families of each FAQ: (family name, query file in bench/eval or None for the set's own
#: split). A family is one way of asking (hand-written mixes, hard paraphrases, answer-derived
#: questions, short and misspelt queries); leave-one-set-out holds out one family at a time.
#: In place of a file: the family is cut from the FAQ's own written answers (`answer_cuts`).
CUT_FROM_ANSWERS = ":answers"
FAMILIES = {
    "shipped": (("shipped-queries", "shipped_faq.jsonl"), ("shipped-paraphrases", "shipped_paraphrases.jsonl"),
                ("shipped-short", "shipped_short.jsonl"), ("shipped-vocab", "shipped_vocab.jsonl"),
                ("shipped-paraphrases2", "shipped_paraphrases2.jsonl"),
                ("shipped-paraphrases3", "shipped_paraphrases3.jsonl"),
                ("shipped-paraphrases4", "shipped_paraphrases4.jsonl"),
                ("shipped-paraphrases5", "shipped_paraphrases5.jsonl"),
                ("shipped-paraphrases6", "shipped_paraphrases6.jsonl"),
                ("shipped-paraphrases7", "shipped_paraphrases7.jsonl"),
                ("shipped-paraphrases8", "shipped_paraphrases8.jsonl")),
    "articles": (("articles-queries", "articles.jsonl"), ("articles-answers", "articles_answers.jsonl"),
                 ("articles-short", "articles_short.jsonl"),
                 ("articles-paraphrases", "articles_paraphrases.jsonl")),
    "stackfaq": (("stackfaq-rephrasings", None), ("stackfaq-answers", "stackfaq_answers.jsonl"),
                 ("stackfaq-short", "stackfaq_short.jsonl"), ("stackfaq-cuts", CUT_FROM_ANSWERS)),
    "course": (("course-answers", "course_answers.jsonl"), ("course-paraphrases", "course_paraphrases.jsonl"),
               ("course-short", "course_short.jsonl"), ("course-cuts", CUT_FROM_ANSWERS)),
    "dataeng": (("dataeng-answers", "dataeng_answers.jsonl"), ("dataeng-paraphrases", "dataeng_paraphrases.jsonl"),
                ("dataeng-short", "dataeng_short.jsonl"), ("dataeng-cuts", CUT_FROM_ANSWERS)),
    "mlops": (("mlops-answers", "mlops_answers.jsonl"), ("mlops-paraphrases", "mlops_paraphrases.jsonl"),
              ("mlops-short", "mlops_short.jsonl"), ("mlops-cuts", CUT_FROM_ANSWERS)),
    "llm": (("llm-answers", "llm_answers.jsonl"), ("llm-paraphrases", "llm_paraphrases.jsonl"),
            ("llm-short", "llm_short.jsonl"), ("llm-cuts", CUT_FROM_ANSWERS)),
    "dl": (("dl-answers", "dl_answers.jsonl"), ("dl-paraphrases", "dl_paraphrases.jsonl"),
           ("dl-short", "dl_short.jsonl"), ("dl-cuts", CUT_FROM_ANSWERS)),
    "ab": (("ab-answers", "ab_answers.jsonl"), ("ab-paraphrases", "ab_paraphrases.jsonl"),
           ("ab-short", "ab_short.jsonl"), ("ab-cuts", CUT_FROM_ANSWERS)),
    "web": (("web-answers", "web_answers.jsonl"), ("web-paraphrases", "web_paraphrases.jsonl"),
            ("web-short", "web_short.jsonl"), ("web-cuts", CUT_FROM_ANSWERS)),
    "sql": (("sql-answers", "sql_answers.jsonl"), ("sql-paraphrases", "sql_paraphrases.jsonl"),
            ("sql-short", "sql_short.jsonl"), ("sql-cuts", CUT_FROM_ANSWERS)),
    "ts": (("ts-answers", "ts_answers.jsonl"), ("ts-paraphrases", "ts_paraphrases.jsonl"),
           ("ts-short", "ts_short.jsonl"), ("ts-cuts", CUT_FROM_ANSWERS)),
    "rds": (("rds-answers", "rds_answers.jsonl"), ("rds-paraphrases", "rds_paraphrases.jsonl"),
            ("rds-short", "rds_short.jsonl"), ("rds-cuts", CUT_FROM_ANSWERS)),
    # The eighth look's FAQs (docs/faq-shift.md): bare questions (no answers, so no cuts), and written answers.
    "net": (("net-paraphrases", "net_paraphrases.jsonl"), ("net-short", "net_short.jsonl")),
    "sh": (("sh-answers", "sh_answers.jsonl"), ("sh-paraphrases", "sh_paraphrases.jsonl"),
           ("sh-cuts", CUT_FROM_ANSWERS)),
    # The ninth look's FAQs (docs/hidden-layer.md): written answers, and bare questions (no answers, so no cuts).
    "git": (("git-answers", "git_answers.jsonl"), ("git-paraphrases", "git_paraphrases.jsonl"),
            ("git-short", "git_short.jsonl"), ("git-cuts", CUT_FROM_ANSWERS)),
    "py": (("py-paraphrases", "py_paraphrases.jsonl"), ("py-short", "py_short.jsonl")),
    # The tenth look's FAQs (docs/hidden-layer.md): written answers, and bare questions.
    "docker": (("docker-answers", "docker_answers.jsonl"), ("docker-paraphrases", "docker_paraphrases.jsonl"),
               ("docker-short", "docker_short.jsonl"), ("docker-cuts", CUT_FROM_ANSWERS)),
    "stats": (("stats-paraphrases", "stats_paraphrases.jsonl"), ("stats-short", "stats_short.jsonl")),
    # The eleventh look's FAQs (docs/query-length.md): written answers, and bare questions.
    "viz": (("viz-answers", "viz_answers.jsonl"), ("viz-paraphrases", "viz_paraphrases.jsonl"),
            ("viz-short", "viz_short.jsonl"), ("viz-cuts", CUT_FROM_ANSWERS)),
    "cloud": (("cloud-paraphrases", "cloud_paraphrases.jsonl"), ("cloud-short", "cloud_short.jsonl")),
}


def written_families(set_name: str) -> tuple[tuple[str, str | None], ...]:
    """The set's families written as query files, its answer cuts left out: what a blind look scored
    before the set joined the pool with its cuts (bench/blind.py, bench/agreement.py)."""
    return tuple(f for f in FAMILIES[set_name] if f[1] != CUT_FROM_ANSWERS)


def one_family(set_name: str, name: str) -> tuple[tuple[str, str | None], ...]:
    """One family of a set, as FAMILIES lists it (a blind look that scored only that family of a pooled set)."""
    found = tuple(f for f in FAMILIES[set_name] if f[0] == name)
    if not found:
        raise KeyError(f"{set_name} has no family {name!r} (bench/evalsets.py FAMILIES)")
    return found


#: `answer_cuts`: one window of up to CUT_WORDS words from one sentence of CUT_SENTENCE_WORDS words of each
#: written answer, drawn with CUT_SEED.
CUT_WORDS = 10
CUT_SENTENCE_WORDS = (8, 25)
CUT_SEED = 0
FAMILIES["shipped-online"] = FAMILIES["shipped"]
EVAL = BENCH / "eval"
SHIPPED_FAQ = ROOT / "data" / "faq.md"
HTML_FIXTURES = SHARED / "fixtures" / "html"
SEED_PAGES = SHARED / "fixtures" / "seed-pages"
COURSE_FAQ = EVAL / "course_faq.jsonl"
#: The FAQs written for this project (JSONL, written answers, no links; built offline). The halves of each
#: one's first family in FAMILIES stand for the set's own dev / test cases.
REPO_FAQS = {"course": COURSE_FAQ, "dataeng": EVAL / "dataeng_faq.jsonl", "mlops": EVAL / "mlops_faq.jsonl",
             "llm": EVAL / "llm_faq.jsonl", "dl": EVAL / "dl_faq.jsonl", "ab": EVAL / "ab_faq.jsonl",
             "web": EVAL / "web_faq.jsonl", "sql": EVAL / "sql_faq.jsonl", "ts": EVAL / "ts_faq.jsonl",
             "rds": EVAL / "rds_faq.jsonl", "net": EVAL / "net_faq.jsonl", "sh": EVAL / "sh_faq.jsonl",
             "git": EVAL / "git_faq.jsonl", "py": EVAL / "py_faq.jsonl", "docker": EVAL / "docker_faq.jsonl",
             "stats": EVAL / "stats_faq.jsonl", "viz": EVAL / "viz_faq.jsonl", "cloud": EVAL / "cloud_faq.jsonl"}
STACKFAQ_JSON = SHARED / "datasets" / "stackfaq" / "stackExchange-FAQ.json"
#: Thread n is held out of the StackFAQ index when n % HOLDOUT_EVERY == HOLDOUT_EVERY - 1.
HOLDOUT_EVERY = 10

Prepared = tuple[list[Path], Path, Path | None]


def _write_if_changed(path: Path, text: str) -> Path:
    """Write `text` unless the file already holds it (keeps the build fingerprint stable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text("utf-8") != text:
        path.write_text(text, "utf-8")
    return path


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise SetUnavailable(f"{what} not found at {path} (the shared test data is not here; "
                             f"set FAQ_SHARED_DIR if it lives elsewhere)")


# -- the three sets ---------------------------------------------------------------------------------
def split_halves(cases: Path, folder: Path, stem: str = "") -> tuple[Path, Path]:
    """Dev half and test half of a hand-written query file, alternating lines.

    Answerable and out-of-scope lines alternate separately (1st, 3rd, ... of each to dev), so both
    halves get their share of each, however the file orders them (entry by entry).
    """
    lines = [line for line in cases.read_text("utf-8").splitlines() if line.strip()]
    halves: tuple[list[str], list[str]] = ([], [])
    seen = {True: 0, False: 0}
    for line in lines:
        answerable = json.loads(line).get("expected") is not None
        halves[seen[answerable] % 2].append(line)
        seen[answerable] += 1
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"{stem}-" if stem else ""
    dev = _write_if_changed(folder / f"{prefix}dev.jsonl", "".join(line + "\n" for line in halves[0]))
    test = _write_if_changed(folder / f"{prefix}test.jsonl", "".join(line + "\n" for line in halves[1]))
    return dev, test


def answer_cuts(entries: Sequence[Any], seed: int = CUT_SEED) -> list[dict[str, Any]]:
    """Queries of words pasted from the answers: {"query", "expected"} for each entry with a written answer.

    One window of up to CUT_WORDS words of one answer sentence, drawn with a fixed seed (the same on
    every run). Not questions a learner would type ("...this is an official extension developed by"):
    they isolate the case of an error message or a sentence pasted from an answer, where BM25 finds
    the entry and the dense side, over a long passage, barely does.
    """
    from indexer.chunk import split_sentences

    rng = np.random.default_rng(seed)
    low, high = CUT_SENTENCE_WORDS
    cuts = []
    for entry in entries:
        sentences = [s for s in split_sentences(entry.answer or "") if low <= len(s.split()) <= high]
        if not sentences:
            continue
        words = sentences[rng.integers(len(sentences))].split()
        start = rng.integers(max(1, len(words) - CUT_WORDS))
        cuts.append({"query": " ".join(words[start:start + CUT_WORDS]), "expected": entry.id})
    return cuts


def _repo_set(faq: Path, cases: str, folder: Path) -> Prepared:
    """A FAQ kept in this repository, read in place, and a query file of bench/eval split into halves."""
    for path in (faq, EVAL / cases):
        if not path.exists():
            raise SetUnavailable(f"{path} not found")
    dev, test = split_halves(EVAL / cases, folder)
    return [faq], dev, test


def prepare_shipped(work_dir: Path = OUT) -> Prepared:
    """The shipped FAQ and its hand-written mixed queries."""
    return _repo_set(SHIPPED_FAQ, "shipped_faq.jsonl", Path(work_dir) / "shipped")


def prepare_articles(base_url: str, work_dir: Path = OUT) -> Prepared:
    """articles_faq.jsonl pointed at `base_url` (a server over ../shared/fixtures/html)."""
    _require(HTML_FIXTURES / "readability", "the HTML fixtures (../shared/fixtures/html)")
    text = (EVAL / "articles_faq.jsonl").read_text("utf-8").replace("{BASE}", base_url.rstrip("/"))
    faq = _write_if_changed(Path(work_dir) / "articles" / "faq.jsonl", text)
    dev, test = split_halves(EVAL / "articles.jsonl", Path(work_dir) / "articles")
    return [faq], dev, test


def prepare_repo_faq(name: str, work_dir: Path = OUT) -> Prepared:
    """One of REPO_FAQS (this project's own text) and its first query family (the answer-derived queries)."""
    (_, cases), *_ = FAMILIES[name]
    return _repo_set(REPO_FAQS[name], cases, Path(work_dir) / name)


def serve(root: Path, key: str, folder: Path, stack: contextlib.ExitStack) -> StaticServer:
    """A local server over `root`, on the port that `key` had last time in `folder` when it is free.

    The port is part of every served URL, so of the FAQ file and the index's fingerprint: keeping it
    lets a rerun reuse the set's index and page cache instead of rebuilding them.
    """
    memory = folder / "ports.json"
    try:
        ports = json.loads(memory.read_text("utf-8"))
    except (OSError, ValueError):
        ports = {}
    server = stack.enter_context(StaticServer(root, port=int(ports.get(key, 0))))
    if ports.get(key) != server.port:
        folder.mkdir(parents=True, exist_ok=True)
        memory.write_text(json.dumps({**ports, key: server.port}, indent=1, sort_keys=True), "utf-8")
    return server


def online_faq(dest: Path, stack: contextlib.ExitStack) -> Path:
    """data/faq.md with each link replaced by its seed page on a local server (one per original host)."""
    rows = [line.split("\t") for line in (SEED_PAGES / "urls.tsv").read_text("utf-8").splitlines()[1:] if line.strip()]
    servers: dict[str, StaticServer] = {}
    text = SHIPPED_FAQ.read_text("utf-8")
    for url, filename in sorted(rows, key=lambda r: -len(r[0])):  # longest first: no URL is cut by a shorter one
        host = urlsplit(url).hostname or ""
        if host not in servers:
            servers[host] = serve(SEED_PAGES, host, dest.parent, stack)
        if url not in text:
            raise SystemExit(f"{url} (from urls.tsv) is not in {SHIPPED_FAQ}")
        text = text.replace(url, servers[host].url(filename))
    dest.write_text(text, "utf-8")
    return dest


def stackfaq_threads(path: Path = STACKFAQ_JSON) -> list[dict[str, Any]]:
    _require(path, "StackFAQ (../shared/datasets/stackfaq)")
    return json.loads(path.read_text("utf-8"))["root"]["qapair"]


def held_out(n: int) -> bool:
    return n % HOLDOUT_EVERY == HOLDOUT_EVERY - 1


def prepare_stackfaq(work_dir: Path = OUT) -> Prepared:
    """StackFAQ as a JSONL FAQ (held-out threads left out) plus dev and test case files."""
    threads = stackfaq_threads()
    faq_rows: list[dict[str, Any]] = []
    halves: dict[str, list[dict[str, Any]]] = {"dev": [], "test": []}
    for n, thread in enumerate(threads):
        entry_id = f"sf-{n}"
        answers = thread.get("answer") or []
        if isinstance(answers, str):
            answers = [answers]
        if not held_out(n):
            faq_rows.append({"id": entry_id, "question": thread["question"],
                             "answer": [a for a in answers if isinstance(a, str) and a.strip()]})
        half = "dev"
        for rephrasing in thread.get("rephr") or []:
            if rephrasing == "*":
                half = "test"
                continue
            if not isinstance(rephrasing, str) or not rephrasing.strip():
                continue
            halves[half].append({"query": rephrasing.strip(), "expected": None if held_out(n) else entry_id,
                                 "thread": n})
    folder = Path(work_dir) / "stackfaq"
    faq = _write_if_changed(folder / "faq.jsonl", _jsonl(faq_rows))
    dev = _write_if_changed(folder / "dev.jsonl", _jsonl(halves["dev"]))
    test = _write_if_changed(folder / "test.jsonl", _jsonl(halves["test"]))
    return [faq], dev, test


# -- a set with what its build needs ----------------------------------------------------------------
@dataclass
class EvalSet:
    name: str
    faq_paths: list[Path]
    dev_cases: Path
    test_cases: Path | None
    folder: Path
    offline: bool
    #: Wipe the cache before each build (shipped: every page must fail).
    fresh_cache: bool
    note: str
    #: Files whose content goes into the index besides the FAQ (served pages).
    extra_inputs: list[Path] = field(default_factory=list)
    #: The query families scored on this set, as in FAMILIES (None: FAMILIES[name]).
    family_files: Sequence[tuple[str, str | None]] | None = None

    def families(self) -> dict[str, tuple[Path, Path]]:
        """(dev, test) case files of each query family of this set (the set's own split first)."""
        out: dict[str, tuple[Path, Path]] = {}
        spec = FAMILIES.get(self.name, ()) if self.family_files is None else self.family_files
        for family, filename in spec:
            if filename is None:
                if self.test_cases is not None:
                    out[family] = (self.dev_cases, self.test_cases)
            elif filename == CUT_FROM_ANSWERS:
                from indexer.faq import load_entries

                cuts = _write_if_changed(self.folder / f"{family}.jsonl",
                                         _jsonl(answer_cuts(load_entries(self.faq_paths))))
                out[family] = split_halves(cuts, self.folder, family)
            elif (EVAL / filename).exists():
                out[family] = split_halves(EVAL / filename, self.folder, family)
        return out

    @property
    def index_dir(self) -> Path:
        return self.folder / "index"

    @property
    def cache_dir(self) -> Path:
        return self.folder / "cache"


NOTES = {
    "shipped": "The shipped data/faq.md built offline with an empty cache (questions, answers, link titles only). "
               "Queries alternate into a dev half (tuning, threshold calibration) and a test half (reported)",
    "shipped-online": "The shipped data/faq.md with each link pointed at its local copy in ../shared/fixtures/seed-pages "
                      "(served on 127.0.0.1, one server per original host): the build as it would run online. "
                      "Same dev/test halves as shipped",
    "articles": "Pages served from ../shared/fixtures/html by a local server. Queries alternate into a dev half "
                "(tuning, threshold calibration) and a test half (reported)",
    "stackfaq": "StackFAQ threads as FAQ entries, every 10th thread held out (its rephrasings are out of scope); "
                "dev half = rephrasings before '*', test half = after; thresholds calibrated on the dev half only",
    "course": "A course FAQ written for this project (60 entries, six modules, near-duplicate entries, written answers, "
              "no links), built offline; queries written from the answers. Same dev/test halves as shipped",
    "dataeng": "A second course FAQ written for this project (48 entries of a data-engineering course, six modules, "
               "near-duplicate entries, written answers, no links), built offline; queries written from the answers. "
               "Same dev/test halves as shipped",
    "mlops": "A third course FAQ written for this project (72 entries of an MLOps course, six categories, "
             "near-duplicate entries, written answers of one line to a code snippet, no links), built offline; "
             "queries written from the answers. Same dev/test halves as shipped",
    "llm": "A fourth course FAQ written for this project (60 entries of a course on LLM applications, six "
           "categories, near-duplicate entries, written answers, no links), built offline; queries written from "
           "the answers. Same dev/test halves as shipped",
    "dl": "A fifth course FAQ written for this project (50 entries of a deep-learning course, five modules, "
          "near-duplicate entries, written answers, no links), built offline; queries written from the answers, "
          "first scored blind (bench/blind.py). Same dev/test halves as shipped",
    "ab": "A sixth course FAQ written for this project (50 entries of a course on experimentation and A/B testing, "
          "five modules, near-duplicate entries, written answers, no links), built offline; queries written from the "
          "answers, first scored blind (bench/blind.py, docs/ranker-refit.md). Same dev/test halves as shipped",
    "web": "A seventh course FAQ written for this project (50 entries of a full-stack web bootcamp, five modules, "
           "near-duplicate entries, written answers, no links), built offline; queries written from the answers, "
           "first scored blind (bench/blind.py --decision paraphrase). Same dev/test halves as shipped",
    "sql": "An eighth course FAQ written for this project (50 entries of a course on SQL and relational databases, "
           "five modules, near-duplicate entries, written answers, no links), built offline; queries written from the "
           "answers, first scored blind (bench/agreement.py, docs/agreement.md). Same dev/test halves as shipped",
    "ts": "A ninth course FAQ written for this project (50 entries of a course on time-series forecasting, five "
          "modules, near-duplicate entries, written answers, no links), built offline; queries written from the "
          "answers, first scored blind (bench/blind.py --decision lift, docs/page-lift.md). Same dev/test halves as "
          "shipped",
    "rds": "A tenth course FAQ written for this project (150 entries of a course on data science with R, six "
           "modules, near-duplicate entries, written answers, no links), built offline; queries written from the "
           "answers, first scored blind (bench/blind.py --decision weights, docs/set-weights.md). Same dev/test "
           "halves as shipped",
    "net": "An eleventh FAQ written for this project (40 bare questions of an introductory computer-networking "
           "course, six modules, near-duplicate entries, no answers and no links), built offline; hard paraphrases "
           "and short queries written from the questions, first scored blind (bench/blind.py --decision shift, "
           "docs/faq-shift.md). Same dev/test halves as shipped",
    "sh": "A twelfth course FAQ written for this project (60 entries of a course on the Linux command line and shell "
          "scripting, six modules, near-duplicate entries, written answers, no links), built offline; queries written "
          "from the answers, first scored blind (bench/blind.py --decision shift, docs/faq-shift.md). Same dev/test "
          "halves as shipped",
    "git": "A thirteenth course FAQ written for this project (60 entries of a course on Git and GitHub, six "
           "modules, near-duplicate entries, written answers, no links), built offline; queries written from the "
           "answers, first scored blind (bench/blind.py --decision hidden, docs/hidden-layer.md). Same dev/test "
           "halves as shipped",
    "py": "A fourteenth FAQ written for this project (40 bare questions of an introductory Python programming "
          "course, six modules, near-duplicate entries, no answers and no links), built offline; hard paraphrases "
          "and short queries written from the questions, first scored blind (bench/blind.py --decision hidden, "
          "docs/hidden-layer.md). Same dev/test halves as shipped",
    "docker": "A fifteenth course FAQ written for this project (60 entries of a course on Docker containers and "
              "Compose, six modules, near-duplicate entries, written answers, no links), built offline; queries "
              "written from the answers, first scored blind (bench/blind.py --decision curve, docs/hidden-layer.md). "
              "Same dev/test halves as shipped",
    "stats": "A sixteenth FAQ written for this project (40 bare questions of an introductory statistics course, six "
             "modules, near-duplicate entries, no answers and no links), built offline; hard paraphrases and short "
             "queries written from the questions, first scored blind (bench/blind.py --decision curve, "
             "docs/hidden-layer.md). Same dev/test halves as shipped",
    "viz": "A seventeenth course FAQ written for this project (50 entries of a course on data visualisation with "
           "Python, six modules, near-duplicate entries, written answers, no links), built offline; queries written "
           "from the answers, first scored blind (bench/blind.py --decision length, docs/query-length.md). Same "
           "dev/test halves as shipped",
    "cloud": "An eighteenth FAQ written for this project (40 bare questions of a course on AWS cloud fundamentals, "
             "six modules, near-duplicate entries, no answers and no links), built offline; hard paraphrases and "
             "short queries written from the questions, first scored blind (bench/blind.py --decision length, "
             "docs/query-length.md). Same dev/test halves as shipped",
}


@contextlib.contextmanager
def open_set(name: str, work_dir: Path = OUT,
             families: Sequence[tuple[str, str | None]] | None = None) -> Iterator[EvalSet]:
    """Prepare set `name` and keep what its build needs alive (the local server) while in use.

    `families` replaces FAMILIES[name] (bench/blind.py scores families kept out of the tuning pool).
    """
    with _open_set(name, Path(work_dir)) as eset:
        eset.family_files = families
        yield eset


@contextlib.contextmanager
def _open_set(name: str, work_dir: Path) -> Iterator[EvalSet]:
    folder = work_dir / name
    if name == "shipped":
        faq, dev, test = prepare_shipped(work_dir)
        yield EvalSet(name, faq, dev, test, folder, offline=True, fresh_cache=True, note=NOTES[name])
    elif name == "shipped-online":
        _require(SEED_PAGES / "urls.tsv", "the seed pages (../shared/fixtures/seed-pages)")
        with contextlib.ExitStack() as stack:
            folder.mkdir(parents=True, exist_ok=True)
            faq = online_faq(folder / "faq.md", stack)
            dev, test = split_halves(EVAL / "shipped_faq.jsonl", folder)
            yield EvalSet(name, [faq], dev, test, folder, offline=False, fresh_cache=True, note=NOTES[name],
                          extra_inputs=sorted(SEED_PAGES.glob("*.html")))
    elif name == "articles":
        _require(HTML_FIXTURES / "readability", "the HTML fixtures (../shared/fixtures/html)")
        with contextlib.ExitStack() as stack:
            server = serve(HTML_FIXTURES, "html", folder, stack)
            faq, dev, test = prepare_articles(server.base_url, work_dir)
            pages = sorted(HTML_FIXTURES.glob("readability/*/source.html"))
            yield EvalSet(name, faq, dev, test, folder, offline=False, fresh_cache=False, note=NOTES[name],
                          extra_inputs=pages)
    elif name == "stackfaq" or name in REPO_FAQS:  # JSONL FAQs with written answers, built offline
        faq, dev, test = prepare_stackfaq(work_dir) if name == "stackfaq" else prepare_repo_faq(name, work_dir)
        yield EvalSet(name, faq, dev, test, folder, offline=True, fresh_cache=False, note=NOTES[name])
    else:
        raise ValueError(f"unknown set {name!r} (known: {', '.join(SET_NAMES)})")


# -- build or reuse ---------------------------------------------------------------------------------
#: Modules whose code decides what goes into an index (a change there means a rebuild).
_BUILD_MODULES = ("build.py", "chunk.py", "embed.py", "extract.py", "faq.py", "records.py", "store.py")


def fingerprint(eset: EvalSet, settings: Any) -> dict[str, Any]:
    from indexer.config import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "model": settings.model,
        "chunk": asdict(settings.chunk),
        "extract": asdict(settings.extract),
        "offline": eset.offline,
        "faq": {str(p): file_sha256(p) for p in eset.faq_paths},
        "pages": hashlib.sha256("".join(file_sha256(p) for p in eset.extra_inputs).encode()).hexdigest(),
        "code": {m: file_sha256(ROOT / "indexer" / m) for m in _BUILD_MODULES if (ROOT / "indexer" / m).exists()},
    }


def ensure_index(eset: EvalSet, *, settings: Any = None, rebuild: bool = False) -> dict[str, Any]:
    """Build the set's index unless an index built from the same inputs is there.

    Returns {"reused": bool, "seconds": float, "summary": {...}} (summary of the build that made it).
    """
    from indexer import store
    from indexer.build import build_index
    from indexer.config import Settings

    settings = settings or Settings()
    # The sets' pages are served on 127.0.0.1, an internal address the fetcher refuses by default.
    settings = dataclasses.replace(settings, fetch=dataclasses.replace(settings.fetch, allow_private=True))
    stamp_file = eset.folder / "fingerprint.json"
    wanted = fingerprint(eset, settings)
    if not rebuild and stamp_file.exists():
        try:
            stamp = json.loads(stamp_file.read_text("utf-8"))
            manifest = store.read_manifest(eset.index_dir)
        except (OSError, ValueError, store.IndexError_):
            stamp, manifest = {}, {}
        if stamp.get("fingerprint") == wanted and manifest.get("build_id") == stamp.get("build_id"):
            return {"reused": True, "seconds": 0.0, "summary": manifest.get("summary", {})}
    if eset.fresh_cache and eset.cache_dir.exists():
        shutil.rmtree(eset.cache_dir)
    started = time.monotonic()
    summary = build_index(eset.faq_paths, index_dir=eset.index_dir, cache_dir=eset.cache_dir, settings=settings,
                          offline=eset.offline)
    seconds = round(time.monotonic() - started, 2)
    manifest = store.read_manifest(eset.index_dir)
    stamp_file.write_text(json.dumps({"fingerprint": wanted, "build_id": manifest.get("build_id")}, indent=1),
                          "utf-8")
    return {"reused": False, "seconds": seconds, "summary": asdict(summary)}
