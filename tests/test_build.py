"""End to end: FAQ -> local HTTP pages -> build_index -> index on disk -> search; rebuilds and their guarantees."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import faiss
import pytest

from conftest import SHIPPED_FAQ, TEST_MODEL, readability_or_none
from http_server import LocalServer
from indexer import store
from indexer.build import STAGES, build_index, entry_units, sections_differ
from indexer.config import SCHEMA_VERSION, FetchSettings, Settings
from indexer.models import ModelError
from indexer.faq import FaqError, load_entries
from indexer.search import Searcher

SETTINGS = Settings(model=TEST_MODEL,
                    fetch=FetchSettings(per_host_delay=0.0, backoff_base=0.05, max_retries=0, connect_timeout=2.0,
                                        read_timeout=5.0))
INDEX_FILES = {"vectors.faiss", "meta.sqlite", "manifest.json", "report.json", "bm25", "layout.npz", "focus.npy",
               "centroid.npz"}

DROPOUT_FACT = ("The quokka schedule, first described by a reading group on Rottnest Island, anneals the keep "
                "probability from one half to nine tenths over the first forty epochs.")
CONV_FACT = ("Irwin Sobel popularised his edge operator in a 1968 talk at the Stanford artificial intelligence "
             "laboratory, long before learned kernels replaced hand-made ones.")
BN_FACT = "Batch statistics are replaced by running averages at inference time, which is why eval mode matters."

OTHERS = ["plain gradient descent", "weight decay", "data augmentation", "early stopping", "a wider network",
          "a deeper network", "label smoothing", "a smaller learning rate"]
DATASETS = ["MNIST", "CIFAR-10", "ImageNet", "a speech corpus", "a small tabular dataset", "SVHN"]
METRICS = ["validation accuracy", "test loss", "calibration error", "training speed", "robustness"]


def paragraphs(topic: str, facts: list[str], n: int = 9, seed: int = 0) -> list[str]:
    """`n` varied paragraphs about `topic`, the facts spread among them: a page of several passages."""
    rng = random.Random(f"{topic}-{seed}")
    out = []
    for i in range(n):
        sentences = [f"In lesson {i + 1} {topic} is compared with {rng.choice(OTHERS)} on {rng.choice(DATASETS)}, "
                     f"and the {rng.choice(METRICS)} changes by {rng.randint(2, 9)} points."
                     for _ in range(3)]
        out.append(" ".join(sentences))
    for k, fact in enumerate(facts):
        out.insert(2 + 3 * k, fact)
    return out


def norm(text: str) -> str:
    return " ".join(text.split()).lower()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A local server with generated pages (and two real ones when ../shared is there), and a FAQ linking them."""
    readability = readability_or_none()
    root = tmp_path_factory.mktemp("site")
    with LocalServer(readability) as srv:
        srv.set_article("/dropout.html", "Dropout in practice", paragraphs("dropout", [DROPOUT_FACT]))
        srv.set_article("/conv.html", "Convolutions from scratch", paragraphs("convolution", [CONV_FACT]))
        srv.set_article("/bn.html", "Normalising activations", paragraphs("batch normalization", [BN_FACT]))
        shared = {}
        if readability is not None:
            srv.serve_fixture("/ars.html", "ars-1")
            srv.serve_fixture("/gitlab.html", "gitlab-blog")
            shared = {srv.url("/ars.html"): "ars-1", srv.url("/gitlab.html"): "gitlab-blog"}
        conv_extra = f"-   [Minecraft server crash]({srv.url('/ars.html')})\n" if shared else ""
        bn_extra = f"-   [DevSecOps survey]({srv.url('/gitlab.html')})\n" if shared else ""
        faq = root / "faq.md"
        faq.write_text(f"""# Deep learning basics

**Q: What is dropout?**

  Resource:

-   [Regularization notes]({srv.url('/dropout.html')})

**Q: How do convolutions work?**

A convolution slides a small filter over its input.

-   [Convolution primer]({srv.url('/conv.html')})
{conv_extra}
## What does batch normalization do?

-   [Batch norm explained]({srv.url('/bn.html')})
{bn_extra}
**Q: Where are the lecture slides?**

On the course website: {srv.url('/missing.html')}
""", "utf-8")
        yield SimpleNamespace(server=srv, faq=faq, root=root, shared=shared)


@pytest.fixture(scope="module")
def first(site):
    index_dir, cache_dir = site.root / "index", site.root / "cache"
    summary = build_index([site.faq], index_dir=index_dir, cache_dir=cache_dir, settings=SETTINGS)
    return SimpleNamespace(summary=summary, index_dir=index_dir, cache_dir=cache_dir,
                           manifest=json.loads((index_dir / "manifest.json").read_text("utf-8")),
                           report=json.loads((index_dir / "report.json").read_text("utf-8")))


@pytest.fixture(scope="module")
def searcher(first):
    return Searcher.open(first.index_dir)


def unit_rows(index_dir: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(Path(index_dir) / "meta.sqlite")
    try:
        return list(db.execute("SELECT entry_id, kind, url FROM units ORDER BY vector_id"))
    finally:
        db.close()


# -- the first build ---------------------------------------------------------------------------------

def test_summary_counts(site, first):
    s = first.summary
    n_shared = len(site.shared)
    assert s.entries == 4
    assert s.resources == 4 + n_shared
    assert s.pages_fetched == 3 + n_shared
    assert s.pages_failed == 1 and s.pages_cached == 0
    assert s.vectors_embedded > 0
    assert s.passages == len(unit_rows(first.index_dir))


def test_report_has_one_record_per_resource(site, first):
    srv = site.server
    by_url = {r["url"]: r for r in first.report}
    assert len(by_url) == len(first.report) == first.summary.resources
    for rec in first.report:
        assert {"url", "status", "reason", "title", "chars"} <= set(rec)
        assert rec["status"] in ("fetched", "cached", "failed", "thin")
    for path, title in [("/dropout.html", "Dropout in practice"), ("/conv.html", "Convolutions from scratch"),
                        ("/bn.html", "Normalising activations")]:
        rec = by_url[srv.url(path)]
        assert rec["status"] == "fetched" and rec["title"] == title and rec["chars"] > 1000
    missing = by_url[srv.url("/missing.html")]
    assert missing["status"] == "failed" and "HTTP 404" in missing["reason"] and missing["chars"] == 0
    for url, name in site.shared.items():
        expected = json.loads((readability_or_none() / name / "expected-metadata.json").read_text("utf-8"))["title"]
        assert by_url[url]["status"] == "fetched" and by_url[url]["chars"] > 1000
        assert norm(by_url[url]["title"]) == norm(expected)


def test_manifest(site, first):
    m = first.manifest
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["model"] == TEST_MODEL and m["dimension"] == 384
    assert datetime.fromisoformat(m["built_at"]).tzinfo is not None
    assert m["sources"] == [{"path": str(site.faq), "sha256": hashlib.sha256(site.faq.read_bytes()).hexdigest()}]
    counts = m["counts"]
    for key in ("entries", "resources", "pages_fetched", "pages_cached", "pages_failed", "passages"):
        assert counts[key] == getattr(first.summary, key), key
    assert faiss.read_index(str(first.index_dir / "vectors.faiss")).ntotal == counts["passages"]


def test_index_dir_is_a_symlink_to_a_complete_build(first):
    assert first.index_dir.is_symlink()
    real = first.index_dir.resolve()
    assert real.parent == store.builds_root(first.index_dir)
    assert {p.name for p in real.iterdir()} == INDEX_FILES


def test_every_page_passage_fits_the_model_window(first, embedder):
    stored = store.load(first.index_dir)
    passages = [u.text for u in stored.units if u.kind == "passage"]
    assert passages
    assert max(embedder.count_tokens(passages)) <= SETTINGS.chunk.max_tokens


@pytest.mark.parametrize("query, entry_id, path, word", [
    ("when was the quokka schedule described on Rottnest Island", "what-is-dropout", "/dropout.html", "Rottnest"),
    ("who popularised the Sobel operator at the Stanford laboratory", "how-do-convolutions-work", "/conv.html",
     "Sobel"),
])
def test_page_text_finds_its_entry(site, searcher, query, entry_id, path, word):
    entry = searcher.stored.entries[entry_id]
    written = norm(" ".join([entry.question, entry.answer, *(r.title for r in entry.resources)]))
    assert word.lower() not in written  # only the page knows it
    response = searcher.search(query)
    top = response.results[0]
    assert top.id == entry_id
    assert top.evidence.source == "resource"
    assert top.evidence.url == site.server.url(path)
    assert word in top.evidence.text


@pytest.mark.shared
def test_shared_page_text_is_searchable(site, searcher):
    if not site.shared:
        pytest.skip("shared readability fixtures absent: no real pages in this build")
    response = searcher.search("Named Binary Tag nesting exploit by Ammar Askar")
    top = response.results[0]
    assert top.id == "how-do-convolutions-work"
    assert top.evidence.source == "resource" and top.evidence.url == site.server.url("/ars.html")


def test_search_results_carry_the_entry(searcher, site):
    response = searcher.search("what does batch normalization do")
    assert response.answered
    top = response.results[0]
    assert top.id == "what-does-batch-normalization-do"
    assert top.question == "What does batch normalization do?"
    assert top.category == "Deep learning basics"
    assert site.server.url("/bn.html") in [r.url for r in top.resources]
    assert [r.title for r in top.resources][0] == "Batch norm explained"


def test_build_reports_its_stages_in_order_with_counts_from_the_calling_thread(site, tmp_path):
    calls: list[tuple[str, int, int, int]] = []

    def on_stage(stage: str, done: int, total: int) -> None:
        calls.append((stage, done, total, threading.get_ident()))

    def stage(name: str) -> list[tuple[int, int]]:
        return [(done, total) for s, done, total, _ in calls if s == name]

    index_dir, cache_dir = tmp_path / "index", tmp_path / "cache"
    small_batches = replace(SETTINGS, embed_batch_size=2)  # new vectors arrive 8 at a time
    summary = build_index([site.faq], index_dir=index_dir, cache_dir=cache_dir, settings=small_batches,
                          on_stage=on_stage)
    assert {thread for *_, thread in calls} == {threading.get_ident()}  # a caller may draw from the callback
    order = [s for s, *_ in calls]
    assert [s for i, s in enumerate(order) if i == 0 or order[i - 1] != s] == list(STAGES)
    n = summary.resources
    assert stage("fetching") == [(i, n) for i in range(n + 1)]
    usable = n - summary.pages_failed
    assert stage("extracting") == [(i, usable) for i in range(usable + 1)]
    embedding = stage("embedding")
    assert embedding[:2] == [(0, 0), (0, summary.passages)]  # the total is known once the model has loaded
    done = [d for d, _ in embedding[1:]]
    assert done == sorted(set(done)) and embedding[-1] == (summary.passages, summary.passages)
    assert len(embedding) > 3
    assert stage("saving") == [(0, 1), (1, 1)]

    calls.clear()  # a rebuild with nothing new: every vector comes from the cache at once
    again = build_index([site.faq], index_dir=index_dir, cache_dir=cache_dir, settings=SETTINGS, on_stage=on_stage)
    assert again.vectors_embedded == 0
    assert stage("embedding") == [(0, 0), (0, again.passages), (again.passages, again.passages)]


# -- rebuilds -------------------------------------------------------------------------------------

def test_rebuilds_reuse_revalidate_and_survive_failures(site, first, tmp_path):
    srv = site.server
    cache_dir, index_dir = tmp_path / "cache", tmp_path / "index"
    shutil.copytree(first.cache_dir, cache_dir)
    ok_pages = first.summary.pages_fetched

    # 1. Nothing changed: pages revalidated (304), nothing embedded.
    before = len(srv.requests("/dropout.html"))
    same = build_index([site.faq], index_dir=index_dir, cache_dir=cache_dir, settings=SETTINGS)
    assert same.vectors_embedded == 0
    assert same.vectors_reused > 0
    assert same.pages_cached == ok_pages and same.pages_fetched == 0
    assert same.passages == first.summary.passages
    last = srv.requests("/dropout.html")[before:]
    assert len(last) == 1 and last[0]["status"] == 304 and "if-none-match" in last[0]["headers"]

    # 2. One page changed: only its passages are embedded again.
    bn = paragraphs("batch normalization", [BN_FACT])
    bn[-1] = "Ghost batch normalization computes statistics over virtual mini-batches of thirty-two samples."
    srv.set_article("/bn.html", "Normalising activations", bn)
    try:
        changed = build_index([site.faq], index_dir=index_dir, cache_dir=cache_dir, settings=SETTINGS)
    finally:
        srv.set_article("/bn.html", "Normalising activations", paragraphs("batch normalization", [BN_FACT]))
    bn_units = [u for u in unit_rows(index_dir) if u[2] == srv.url("/bn.html") and u[1] == "passage"]
    assert changed.pages_fetched == 1 and changed.pages_cached == ok_pages - 1
    assert 0 < changed.vectors_embedded <= len(bn_units)
    assert changed.vectors_embedded < changed.passages
    assert "Ghost batch normalization" in " ".join(u.text for u in store.load(index_dir).units)

    # 3. The server fails everything: the pages are kept from the cache, the index keeps its passages.
    srv.fail(status=503)
    try:
        failing = build_index([site.faq], index_dir=index_dir, cache_dir=cache_dir, settings=SETTINGS)
    finally:
        srv.recover()
    report = {r["url"]: r for r in store.read_report(index_dir)}
    assert failing.pages_cached == ok_pages and failing.pages_fetched == 0 and failing.pages_failed == 1
    assert failing.passages == changed.passages
    assert failing.vectors_embedded == 0
    for url in [srv.url("/dropout.html"), srv.url("/conv.html"), srv.url("/bn.html"), *site.shared]:
        assert report[url]["status"] == "cached", url
        assert "HTTP 503" in report[url]["reason"] and report[url]["chars"] > 1000


def test_offline_build_of_the_shipped_faq(tmp_path, embedder):
    index_dir, cache_dir = tmp_path / "index", tmp_path / "cache"
    # A first, unrelated index in the same place: the second build must replace it, not mix with it.
    other = tmp_path / "other.md"
    other.write_text("**Q: What is a unicorn gradient?**\nA made-up term.\n", "utf-8")
    build_index([other], index_dir=index_dir, cache_dir=cache_dir, settings=SETTINGS, offline=True)
    first_real = index_dir.resolve()

    faq = tmp_path / "faq.md"
    shutil.copyfile(SHIPPED_FAQ, faq)
    summary = build_index([faq], index_dir=index_dir, cache_dir=cache_dir, settings=SETTINGS, offline=True)
    assert summary.entries == 8 and summary.resources == 11
    assert summary.pages_failed == 11 and summary.pages_fetched == summary.pages_cached == 0
    report = store.read_report(index_dir)
    assert len(report) == 11
    assert all(r["status"] == "failed" and "offline" in r["reason"] for r in report)
    assert not (cache_dir / "pages").exists() or not any((cache_dir / "pages").rglob("*.json"))

    stored = store.load(index_dir)
    assert "what-is-a-unicorn-gradient" not in stored.entries and len(stored.entries) == 8
    assert stored.path != first_real and first_real.is_dir()  # the old build is kept aside, untouched
    assert {p.name for p in stored.path.iterdir()} == INDEX_FILES
    kinds = {u.kind for u in stored.units}
    assert "passage" not in kinds and {"question", "title"} <= kinds
    assert any(u.kind == "answer" and "Leslie Smith" in u.text for u in stored.units)
    # One heading over the whole FAQ tells no entry apart: it is in no unit's text.
    assert not any("Introduction to Neural Networks" in u.text for u in stored.units)

    s = Searcher(stored, embedder)
    top = s.search("log loss").results[0]
    assert top.id == "what-is-cross-entropy-loss"
    assert s.search("why exponential in softmax").results[0].id == "in-softmax-function-why-do-we-take-exponential"


SECTIONED_FAQ = """# Module 4: Deploying with Docker

**Q: The port is already allocated when I start it**

Stop the other container with `docker stop`, or publish the new one on another host port.

**Q: How do I make the image smaller?**

Start from a slim base image and leave the training data out of it.

# Module 6: Certificates

**Q: My name is misspelled**

Fill in the correction form before the certificates are issued.
"""


def test_section_headings_go_into_the_entry_profile_only_when_they_differ(tmp_path, embedder):
    """A course FAQ's module names the topic its entries' own words may leave out ("docker" is in
    neither the second question nor its answer); a FAQ with one heading gets no such words."""
    faq = tmp_path / "faq.md"
    faq.write_text(SECTIONED_FAQ, "utf-8")
    entries = load_entries([faq])
    assert sections_differ(entries) and not sections_differ(entries[:2]) and not sections_differ([])
    profiles = {e.id: [u for u in entry_units(e, {}, embedder.count_tokens, SETTINGS, with_category=True)
                       if u.kind == "entry"] for e in entries}
    image = next(e.id for e in entries if "smaller" in e.question)
    (profile,) = profiles[image]
    own_words = "How do I make the image smaller? Start from a slim base image and leave the training data out of it."
    # Embedded and read by BM25 with its section; shown without it.
    assert profile.embed_text == profile.lexical_text == f"Module 4: Deploying with Docker {own_words}"
    assert profile.text == own_words
    plain = entry_units(entries[1], {}, embedder.count_tokens, SETTINGS)
    assert not any("Module 4" in u.text + u.embed_text + u.lexical_text for u in plain)

    build_index([faq], index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", settings=SETTINGS, offline=True)
    stored = store.load(tmp_path / "index")
    assert not any("Module" in u.text for u in stored.units)
    # The built BM25 finds the entry by its module's word, which its own text lacks.
    searcher = Searcher(stored, embedder)
    lexical = searcher.lexical.scores(["docker"])
    profile_pos = next(i for i, u in enumerate(stored.units) if u.kind == "entry" and u.entry_id == image)
    assert lexical[profile_pos] > 0 and "docker" not in stored.units[profile_pos].text.lower()
    # The card's evidence is the entry's own words: the section that leads the profile is not shown.
    top = searcher.search("deploying docker: start from a slim base image, leave data out").results[0]
    assert top.id == image and top.category == "Module 4: Deploying with Docker"
    assert top.evidence.text.startswith("How do I make the image smaller?"), top.evidence

    # One heading over the whole FAQ leads no profile, so a question that begins with its words is shown whole.
    single = tmp_path / "single.md"
    single.write_text("# Docker\n\n**Q: Docker won't start on my laptop**\n\nRestart the daemon with systemctl.\n\n"
                      "**Q: How big may an image be?**\n\nUnder two gigabytes.\n", "utf-8")
    build_index([single], index_dir=tmp_path / "single", cache_dir=tmp_path / "cache", settings=SETTINGS, offline=True)
    shown = Searcher(store.load(tmp_path / "single"), embedder).search(
        "docker won't start on my laptop, restart the daemon with systemctl").results[0].evidence.text
    assert shown.startswith("Docker won't start on my laptop Restart the daemon"), shown


# -- failures leave the index alone ---------------------------------------------------------------

def snapshot(index_dir: Path):
    root = store.builds_root(index_dir)
    return (os.readlink(index_dir), (index_dir / "manifest.json").read_text("utf-8"),
            sorted(p.name for p in root.iterdir()))


def test_bad_faq_leaves_the_previous_index_untouched(site, first, tmp_path):
    before = snapshot(first.index_dir)
    bad = tmp_path / "bad.md"
    bad.write_text("**Q: Broken?**\n\nSee [x](htp:/nowhere)\n", "utf-8")
    with pytest.raises(FaqError, match=re.escape(f"{bad}:3")):
        build_index([bad], index_dir=first.index_dir, cache_dir=first.cache_dir, settings=SETTINGS)
    assert snapshot(first.index_dir) == before
    assert store.load(first.index_dir).build_id == first.manifest["build_id"]


def test_unloadable_model_leaves_the_previous_index_untouched(site, first, tmp_path):
    before = snapshot(first.index_dir)
    with pytest.raises(ModelError):
        build_index([site.faq], index_dir=first.index_dir, cache_dir=first.cache_dir,
                    settings=replace(SETTINGS, model=str(tmp_path / "no-such-model")))
    assert snapshot(first.index_dir) == before


def test_other_schema_version_is_refused(first, tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(first.index_dir.resolve(), copy)
    manifest = json.loads((copy / "manifest.json").read_text("utf-8"))
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (copy / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(store.IndexError_, match="rebuild"):
        store.load(copy)
    with pytest.raises(store.IndexError_):
        Searcher.open(copy)


def test_missing_or_damaged_index_is_refused(first, tmp_path):
    with pytest.raises(store.IndexError_, match="build"):
        store.load(tmp_path / "nothing-here")
    copy = tmp_path / "index"
    shutil.copytree(first.index_dir.resolve(), copy)
    db = sqlite3.connect(copy / "meta.sqlite")
    with db:
        db.execute("DELETE FROM units WHERE vector_id = (SELECT MAX(vector_id) FROM units)")
    db.close()
    with pytest.raises(store.IndexError_, match="vectors but"):
        store.load(copy)


def test_searching_with_another_model_is_an_error(first):
    with pytest.raises(store.IndexError_, match="other"):
        Searcher.open(first.index_dir, model="other")
