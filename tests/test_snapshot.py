"""indexer/snapshot.py: saved pages into the page cache and back out, and a build that uses them."""

from __future__ import annotations

import pytest

from indexer.cache import PageCache
from indexer.snapshot import MAPPING, SnapshotError, export_snapshot, import_snapshot, read_mapping

ARTICLE = ("<html><head><title>Members only: dropout</title></head><body><article><h1>Dropout</h1>"
           + "".join(f"<p>Paragraph {i}: dropout switches off a random half of the units at every training step, "
                     "so no unit can rely on another one being there.</p>" for i in range(8))
           + "</article></body></html>")


def saved_folder(tmp_path, rows: str, files: dict[str, str | bytes]):
    folder = tmp_path / "saved"
    folder.mkdir(parents=True)
    for name, body in files.items():
        (folder / name).write_bytes(body.encode("utf-8") if isinstance(body, str) else body)
    (folder / MAPPING).write_text(rows, "utf-8")
    return folder


def test_import_then_export_round_trips_every_page(tmp_path):
    folder = saved_folder(tmp_path, "url\tfile\nhttps://paywalled.example/dropout\tdropout.html\n"
                                    "https://notes.example/a.txt\tnotes.txt\n",
                          {"dropout.html": ARTICLE, "notes.txt": "plain notes about momentum"})
    cache = PageCache(tmp_path / "cache")
    result = import_snapshot(folder, cache)
    assert result.pages == 2 and result.skipped == []
    page = cache.get("https://paywalled.example/dropout")
    assert page.body == ARTICLE.encode("utf-8") and page.content_type == "text/html" and page.fetched_at
    assert cache.get("https://notes.example/a.txt").content_type == "text/plain"

    out = export_snapshot(cache, tmp_path / "out")
    assert out.pages == 2
    again = PageCache(tmp_path / "cache2")
    assert import_snapshot(tmp_path / "out", again).pages == 2
    for url in ("https://paywalled.example/dropout", "https://notes.example/a.txt"):
        assert again.get(url).body == cache.get(url).body


def test_skips_what_is_not_a_page_and_refuses_bad_mappings(tmp_path):
    folder = saved_folder(tmp_path, "https://a.example/x\tvideo.mp4\nhttps://a.example/y\tempty.html\n",
                          {"video.mp4": b"\x00\x01", "empty.html": "  \n"})
    result = import_snapshot(folder, PageCache(tmp_path / "cache"))
    assert result.pages == 0 and len(result.skipped) == 2
    bad = saved_folder(tmp_path / "b", "url\tfile\njavascript:alert(1)\tx.html\n", {"x.html": ARTICLE})
    with pytest.raises(SnapshotError, match=r"urls.tsv:2: malformed URL"):
        read_mapping(bad)
    escape = saved_folder(tmp_path / "c", "https://a.example/x\t../../etc/passwd\n", {})
    with pytest.raises(SnapshotError, match="outside the snapshot folder"):
        read_mapping(escape)
    with pytest.raises(SnapshotError, match="no mapping file"):
        read_mapping(tmp_path)
    with pytest.raises(SnapshotError, match=r"urls.tsv:1: expected 'URL<TAB>file'"):
        read_mapping(saved_folder(tmp_path / "d", "just one column\n", {}))


def test_an_offline_build_indexes_the_imported_page(tmp_path, embedder):
    from indexer.build import build_index
    from indexer.search import Searcher

    folder = saved_folder(tmp_path, "https://paywalled.example/dropout\tdropout.html\n", {"dropout.html": ARTICLE})
    faq = tmp_path / "faq.md"
    faq.write_text("**Q: How do I regularise a network?**\n\n- [A members-only article]"
                   "(https://paywalled.example/dropout)\n\n**Q: What is momentum?**\n\nA running average.\n", "utf-8")
    cache = tmp_path / "cache"
    import_snapshot(folder, PageCache(cache))
    summary = build_index([faq], index_dir=tmp_path / "index", cache_dir=cache, offline=True)
    assert summary.pages_cached == 1 and summary.pages_failed == 0
    response = Searcher.open(tmp_path / "index").search("switch off random units while training")
    assert response.results[0].id == "how-do-i-regularise-a-network"
    assert response.results[0].evidence.source == "resource"
