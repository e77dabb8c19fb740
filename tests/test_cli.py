"""`python -m indexer` as a user runs it: a real subprocess against a FAQ whose pages are served locally.

Each command that searches loads the model in its own process (seconds each), so the number of
invocations is kept small: one build, two searches, two evals; status and errors need no model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import REPO_ROOT, seed_query_log
from http_server import LocalServer, closed_port
from jsonl_rows import write_jsonl

KINDS = {"article", "video", "qa", "paper", "book", "other"}


def run(*args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQ_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "indexer", *args], cwd=REPO_ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    with LocalServer() as srv:
        srv.set_article("/entropy.html", "Log loss, visually", [
            "Binary cross-entropy, also called log loss, compares predicted probabilities with the true labels.",
            "A confident wrong prediction is punished hard: the loss grows without bound as the probability "
            "of the true class goes to zero.",
            "The archaeologist Mortimer Wheeler never used it, but the otter-shaped plot in figure three shows "
            "the curve of minus log p for every sample.",
            "Averaging over the samples gives the value that logistic regression minimises during training.",
        ])
        srv.set_article("/relu.html", "Rectifiers", [
            "The rectified linear unit returns its input when positive and zero otherwise.",
            "Without a non-linear activation function, a stack of layers collapses into one linear map, "
            "however deep the network is.",
            "Leaky variants keep a small slope for negative inputs so that units do not die during training.",
        ])
        dead_port = closed_port()
        faq = root / "faq.md"
        faq.write_text(f"""# Basics

**Q: What is cross entropy Loss?**

  Resource:

-   [Understanding binary cross-entropy]({srv.url('/entropy.html')})

**Q: Why do we need activation function?**

-   [Activation functions]({srv.url('/relu.html')})
-   [A talk](http://127.0.0.1:{dead_port}/talk)

**Q: How to find the optimal learning rate?**

  Use a learning-rate range test: increase it every batch and watch the loss.
""", "utf-8")
        index_dir, cache_dir = root / "index", root / "cache"
        # The pages are on 127.0.0.1: the flag allows internal addresses (run() drops FAQ_ALLOW_PRIVATE).
        proc = run("build", "--faq", str(faq), "--index-dir", str(index_dir), "--cache-dir", str(cache_dir),
                   "--workers", "2", "--allow-private")
        yield SimpleNamespace(root=root, faq=faq, index=index_dir, cache=cache_dir, build=proc, server=srv)


def test_build_succeeds_and_reports_failed_pages(cli_index):
    proc = cli_index.build
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Built {cli_index.index}")
    assert "3 entries, 3 resources: 2 fetched" in proc.stdout and "1 failed" in proc.stdout
    # The talk's host refuses connections: the page is reported, the build goes on.
    failed = [line for line in stderr_lines(proc) if line.strip().startswith("failed:")]
    assert len(failed) == 1 and "/talk" in failed[0] and "cannot connect" in failed[0]
    assert "could not fetch 1 page (offline?); questions, answers and link titles are indexed anyway:" in proc.stderr
    assert (cli_index.index / "manifest.json").is_file() and (cli_index.index / "report.json").is_file()


def test_search_json_matches_the_design(cli_index):
    proc = run("search", "--json", "--index-dir", str(cli_index.index), "what is log loss")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert {"query", "answered", "results"} <= set(data)
    assert data["query"] == "what is log loss" and isinstance(data["answered"], bool)
    assert 1 <= len(data["results"]) <= 5
    for r in data["results"]:
        assert {"id", "question", "answer", "category", "score", "resources", "evidence"} <= set(r)
        assert isinstance(r["score"], float)
        for res in r["resources"]:
            assert {"url", "title", "kind"} <= set(res) and res["kind"] in KINDS
        assert {"source", "url", "text"} <= set(r["evidence"])
    top = data["results"][0]
    assert top["id"] == "what-is-cross-entropy-loss"
    assert top["question"] == "What is cross entropy Loss?" and top["category"] == "Basics"
    assert [{k: res[k] for k in ("url", "title", "kind")} for res in top["resources"]] == [
        {"url": cli_index.server.url("/entropy.html"), "title": "Understanding binary cross-entropy",
         "kind": "article"}]
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_reads_queries_from_stdin(cli_index):
    queries = ["otter-shaped plot of minus log p", "", "why does a deep network need non-linearity",
               "learning rate range test"]
    proc = run("search", "--json", "-k", "2", "--index-dir", str(cli_index.index), stdin="\n".join(queries) + "\n")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["query"] for r in rows] == [q for q in queries if q]
    assert all(len(r["results"]) <= 2 for r in rows)
    first, second, third = rows
    assert first["results"][0]["id"] == "what-is-cross-entropy-loss"
    assert first["results"][0]["evidence"]["source"] == "resource"
    assert first["results"][0]["evidence"]["url"] == cli_index.server.url("/entropy.html")
    assert "otter" in first["results"][0]["evidence"]["text"]
    assert second["results"][0]["id"] == "why-do-we-need-activation-function"
    assert third["results"][0]["id"] == "how-to-find-the-optimal-learning-rate"
    assert third["results"][0]["evidence"]["source"] in ("answer", "question")


def test_status_json_and_change_detection(cli_index):
    proc = run("status", "--json", "--index-dir", str(cli_index.index))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert {"model", "dimension", "built_at", "counts", "sources"} <= set(info)
    # run() clears FAQ_MODEL (conftest.TEST_MODEL): the CLI's own default model, end to end.
    from indexer.config import DEFAULT_MODEL

    assert info["model"] == DEFAULT_MODEL and info["dimension"] == 768
    assert {"entries", "resources", "pages_fetched", "pages_cached", "pages_failed", "passages"} <= set(info["counts"])
    assert info["counts"]["entries"] == 3 and info["counts"]["resources"] == 3
    assert info["counts"]["pages_fetched"] == 2 and info["counts"]["pages_failed"] == 1
    assert info["counts"]["passages"] > 3
    sha = hashlib.sha256(cli_index.faq.read_bytes()).hexdigest()
    assert info["sources"] == [{"path": str(cli_index.faq), "sha256": sha, "changed": False}]

    original = cli_index.faq.read_bytes()
    try:
        cli_index.faq.write_bytes(original + b"\n**Q: What is an epoch?**\nOne pass over the data.\n")
        changed = json.loads(run("status", "--json", "--index-dir", str(cli_index.index)).stdout)
        assert changed["sources"][0]["changed"] is True
        human = run("status", "--index-dir", str(cli_index.index))
        assert human.returncode == 0 and "changed since build" in human.stdout
    finally:
        cli_index.faq.write_bytes(original)
    assert json.loads(run("status", "--json", "--index-dir", str(cli_index.index)).stdout)["sources"][0]["changed"] is False


def test_eval_prints_metrics_as_text_and_json(cli_index, tmp_path):
    cases = tmp_path / "cases.jsonl"
    write_jsonl(cases, [
        {"query": "what is log loss", "expected": "what-is-cross-entropy-loss"},
        {"query": "why use relu at all", "expected": "Why do we need activation function?"},
        {"query": "how should I pick the learning rate", "expected": "how-to-find-the-optimal-learning-rate"},
        {"query": "what is the capital of Peru", "expected": None},
    ])
    text = run("eval", str(cases), "--index-dir", str(cli_index.index))
    assert text.returncode == 0, text.stderr
    for label in ("top-1", "MRR", "recall@5", "refused"):
        assert label in text.stdout
    js = run("eval", str(cases), "--json", "--index-dir", str(cli_index.index))
    assert js.returncode == 0, js.stderr
    report = json.loads(js.stdout)
    assert report["queries"] == 4 and report["answerable"] == 3 and report["unanswerable"] == 1
    for key in ("top1", "mrr", "recall_at_5", "refused_unanswerable"):
        assert 0.0 <= report[key] <= 1.0
    assert report["recall_at_5"] == 1.0  # three entries: every expected one is in the top 5
    assert report["top1"] >= 2 / 3 and report["mrr"] >= report["top1"]
    assert f"top-1 accuracy: {report['top1']:.3f}" in text.stdout


# -- errors: non-zero exit, one line naming the problem ---------------------------------------------

def test_bad_faq_fails_with_one_line_naming_file_and_line(tmp_path):
    faq = tmp_path / "bad.md"
    faq.write_text("**Q: Fine?**\nYes.\n\n**Q: Broken?**\n- [x](htp:/nowhere)\n", "utf-8")
    index_dir = tmp_path / "index"
    proc = run("build", "--faq", str(faq), "--index-dir", str(index_dir), "--cache-dir", str(tmp_path / "cache"))
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert f"{faq}:5" in lines[0] and "malformed URL" in lines[0]
    assert not index_dir.exists()


def test_missing_faq_fails_with_one_line(tmp_path):
    proc = run("build", "--faq", str(tmp_path / "nope.md"), "--index-dir", str(tmp_path / "index"),
               "--cache-dir", str(tmp_path / "cache"))
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "nope.md" in lines[0]


def test_search_without_index_says_to_build(tmp_path):
    proc = run("search", "--index-dir", str(tmp_path / "none"), "what is log loss")
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert "build" in lines[0]
    assert proc.stdout == ""


def test_status_without_index_says_to_build(tmp_path):
    proc = run("status", "--json", "--index-dir", str(tmp_path / "none"))
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "build" in lines[0]


def test_eval_with_invalid_cases_names_file_and_line(cli_index, tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"query": "a", "expected": None}) + "\n{not json\n", "utf-8")
    proc = run("eval", str(cases), "--index-dir", str(cli_index.index))
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1 and f"{cases}:2" in lines[0]


def test_bad_argument_fails_with_one_line(tmp_path):
    proc = run("search", "--top-k", "0", "--index-dir", str(tmp_path / "none"), "x")
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert "top-k" in lines[0]


# -- a CLI people like: help, version, exit codes, the maintainer's commands -----------------------------

def test_help_summaries_are_whole_and_every_option_is_explained():
    proc = run("--help")
    assert proc.returncode == 0
    commands = proc.stdout.split("Commands:")[1].splitlines()
    assert {"build", "search", "status", "eval", "calibrate", "check", "insights", "forget"} <= {
        line.split()[0] for line in commands if line.strip()}
    assert not any(line.rstrip().endswith("...") for line in commands), commands
    from indexer.cli import cli

    import click
    missing = [(name, p.name) for name, cmd in cli.commands.items() for p in cmd.params
               if isinstance(p, click.Option) and not p.help]
    assert missing == []
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("faq-search ")


def test_search_says_how_confident_which_typos_it_mended_and_exits_1_without_an_answer(cli_index):
    proc = run("search", "--index-dir", str(cli_index.index), "why do we need an activaton function")
    assert proc.returncode == 0, proc.stderr
    assert "also searched for:" in proc.stdout
    first = [line for line in proc.stdout.splitlines() if line.startswith(" 1.")][0]
    assert first.split()[1] in ("strong", "good", "possible") and "[0." not in first
    nothing = run("search", "--index-dir", str(cli_index.index), "the")
    assert nothing.returncode == 1 and "nothing to search for" in nothing.stdout
    # above any probability: a query the FAQ answers word for word can reach 0.99999
    refused = run("search", "--json", "--threshold", "1.01", "--index-dir", str(cli_index.index),
                  stdin="what is log loss\nrelu\n")
    assert refused.returncode == 1 and all(not json.loads(r)["answered"] for r in refused.stdout.splitlines())


def test_search_never_echoes_terminal_escape_codes_from_the_query(cli_index):
    proc = run("search", "--index-dir", str(cli_index.index),
               "\x1b[31mwhat is log loss\x07 \x1b]0;a title\x07\x1b[2J")
    assert proc.returncode in (0, 1), proc.stderr
    assert not any(c in proc.stdout for c in "\x1b\x07"), repr(proc.stdout[:200])
    assert proc.stdout.splitlines()[0].startswith("? what is log loss")


def test_check_validates_a_faq_without_building(cli_index, tmp_path):
    ok = run("check", str(cli_index.faq))
    assert ok.returncode == 0 and "3 entries, 3 distinct links: OK" in ok.stdout
    bad = tmp_path / "bad.md"
    bad.write_text("**Q: Fine?**\n\n- [broken](javascript:alert(1))\n", "utf-8")
    proc = run("check", str(bad))
    assert proc.returncode != 0 and len(stderr_lines(proc)) == 1 and f"{bad}:3" in proc.stderr


def test_insights_and_forget_over_a_query_log(cli_index, tmp_path):
    from indexer.querylog import QueryLog

    db = tmp_path / "app.sqlite"
    seed_query_log(db)
    js = run("insights", "--json", "--db", str(db), "--index-dir", str(cli_index.index))
    assert js.returncode == 0, js.stderr
    report = json.loads(js.stdout)
    assert report["queries"] == 5 and report["answered"] == 1
    assert [(g["size"], "dropout" in g["name"]) for g in report["unanswered"]] == [(3, True), (1, False)]
    assert [g["sections"] for g in report["unanswered"]] == [{}, {"ml": 1}]
    assert report["votes"][0]["down_queries"] == ["what is log loss"]
    text = run("insights", "--db", str(db), "--index-dir", str(cli_index.index), "--since", "7d")
    assert text.returncode == 0 and "grouped by meaning" in text.stdout and "20% answered" in text.stdout
    assert "; in ml 1]" in text.stdout
    assert run("insights", "--since", "lately", "--db", str(db), "--index-dir", str(cli_index.index)).returncode != 0

    asked = run("forget", "--db", str(db), stdin="n\n")
    assert asked.returncode != 0 and len(QueryLog(db).queries()) == 5  # asked, declined: nothing wiped
    wiped = run("forget", "--yes", "--db", str(db))
    assert wiped.returncode == 0 and "7 rows wiped" in wiped.stdout
    assert QueryLog(db).queries() == [] and QueryLog(db).votes() == []


def test_status_lists_the_pages_not_indexed_and_points_to_the_report(cli_index):
    proc = run("status", "--index-dir", str(cli_index.index))
    assert proc.returncode == 0, proc.stderr
    assert f"1 of 3 linked pages not indexed (details per link: {cli_index.index / 'report.json'})" in proc.stdout
    assert "failed: http://127.0.0.1:" in proc.stdout and "/talk" in proc.stdout


def test_snapshot_import_and_export_from_the_command_line(tmp_path):
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "page.html").write_text("<html><body><p>Saved by hand.</p></body></html>", "utf-8")
    (saved / "urls.tsv").write_text("url\tfile\nhttps://paywalled.example/a\tpage.html\n", "utf-8")
    cache = tmp_path / "cache"
    imported = run("snapshot", "import", str(saved), "--cache-dir", str(cache))
    assert imported.returncode == 0 and "1 pages imported" in imported.stdout, imported.stderr
    exported = run("snapshot", "export", str(tmp_path / "out"), "--cache-dir", str(cache))
    assert exported.returncode == 0 and (tmp_path / "out" / "urls.tsv").read_text("utf-8").startswith("url\tfile\n")
    missing = run("snapshot", "import", str(tmp_path / "nowhere"), "--cache-dir", str(cache))
    assert missing.returncode != 0 and len(stderr_lines(missing)) == 1 and "urls.tsv" in missing.stderr


@pytest.mark.parametrize("columns", [20, 0])
def test_build_progress_reads_on_a_narrow_terminal(tmp_path, server, columns):
    """On a terminal (a pty here) of 20 or 0 columns: counts instead of a wrapped bar, and the slow steps
    (model load, ONNX export) on lines of their own."""
    import fcntl
    import pty
    import struct
    import termios

    server.set_article("/p.html", "Momentum", ["Momentum keeps a running average of past gradients."] * 3)
    faq = tmp_path / "faq.md"
    faq.write_text(f"**Q: What is momentum?**\n\n- [Notes]({server.url('/p.html')})\n", "utf-8")
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQ_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS=str(columns), LINES="24")
    proc = subprocess.Popen([sys.executable, "-m", "indexer", "build", "--allow-private", "--faq", str(faq),
                             "--index-dir", str(tmp_path / "index"), "--cache-dir", str(tmp_path / "cache")],
                            cwd=REPO_ROOT, env=env, stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    assert proc.wait(timeout=300) == 0
    out = b"".join(chunks).decode("utf-8", "replace")
    assert "fetch 1/1" in out and "%|" not in out, out[:300]  # counts, no bar to wrap
    assert "loading the embedding model" in out and "exporting the query encoder to ONNX" in out, out[-600:]
    assert "Built " in out and "Traceback" not in out


@pytest.mark.slow  # two real builds and a search in a subprocess
def test_search_json_marks_a_gone_pages_stale_copy(tmp_path, onnx_cache):
    """A page that answers 404 at the next build stays indexed from its last good copy: `search --json`
    says so on the evidence and on the resource (`stale`, `last_good`), and marks the link `dead`."""
    from conftest import with_export
    from indexer.build import build_index

    with LocalServer() as srv:
        srv.set_article("/entropy.html", "Log loss, visually", [
            "Binary cross-entropy, also called log loss, compares predicted probabilities with the true labels.",
            "The otter-shaped plot in figure three shows the curve of minus log p for every sample.",
        ] * 4)
        srv.set_article("/relu.html", "Rectifiers", [
            "The rectified linear unit returns its input when positive and zero otherwise."] * 4)
        faq = tmp_path / "faq.md"
        faq.write_text(f"""# Basics

**Q: What is cross entropy Loss?**

-   [Understanding binary cross-entropy]({srv.url('/entropy.html')})

**Q: Why do we need activation function?**

-   [Activation functions]({srv.url('/relu.html')})
""", "utf-8")
        index_dir, cache_dir = tmp_path / "index", with_export(tmp_path / "cache", onnx_cache)
        build_index([faq], index_dir=index_dir, cache_dir=cache_dir)
        srv.set_status("/entropy.html", 404)
        summary = build_index([faq], index_dir=index_dir, cache_dir=cache_dir)
        assert summary.pages_gone == 1
    report = {r["url"]: r for r in json.loads((index_dir / "report.json").read_text("utf-8"))}
    gone_url, live_url = srv.url("/entropy.html"), srv.url("/relu.html")
    last_good = report[gone_url]["last_good"]
    assert report[gone_url]["status"] == "gone" and last_good

    proc = run("search", "--json", "-k", "2", "--index-dir", str(index_dir), "--cache-dir", str(cache_dir),
               stdin="otter-shaped plot of minus log p\nrectified linear unit\n")
    assert proc.returncode == 0, proc.stderr
    gone, live = (json.loads(line) for line in proc.stdout.splitlines())
    top = gone["results"][0]
    assert top["id"] == "what-is-cross-entropy-loss" and top["evidence"]["url"] == gone_url
    assert top["evidence"]["stale"] is True and top["evidence"]["last_good"] == last_good
    assert top["resources"] == [{"url": gone_url, "title": "Understanding binary cross-entropy", "kind": "article",
                                 "site": top["resources"][0]["site"], "dead": True, "stale": True,
                                 "last_good": last_good}]
    other = live["results"][0]
    assert other["id"] == "why-do-we-need-activation-function" and other["evidence"]["url"] == live_url
    assert other["evidence"]["stale"] is False and "last_good" not in other["evidence"]
    assert [(r["dead"], r["stale"], "last_good" in r) for r in other["resources"]] == [(False, False, False)]

    readable = run("search", "--index-dir", str(index_dir), "--cache-dir", str(cache_dir),
                   "otter-shaped plot of minus log p")
    assert f"from its last good copy, fetched {last_good[:10]}" in readable.stdout
    assert "[dead link]" in readable.stdout


def test_search_in_a_section_and_an_unknown_section_is_one_line(cli_index):
    proc = run("search", "--json", "--section", "Basics", "--index-dir", str(cli_index.index), "what is log loss")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["id"] == "what-is-cross-entropy-loss"
    proc = run("search", "--section", "Advanced", "--index-dir", str(cli_index.index), "what is log loss")
    assert proc.returncode != 0 and proc.stdout == ""
    assert stderr_lines(proc) == ["Error: no section 'Advanced' in this index (sections: Basics)"]
