"""webapp/browse.py: entries grouped by category, filtered by words, sampled as examples."""

from __future__ import annotations

from indexer.records import Entry, Resource
from webapp import browse


def _entry(id_, question, category="", answer="", resources=()):
    return Entry(id=id_, question=question, answer=answer, category=category,
                 resources=tuple(Resource(url=u, title=t, kind=k, site=s) for u, t, k, s in resources))


def test_group_and_filter_entries():
    entries = [_entry("a", "What is ReLU?", "Activations"), _entry("b", "Why Adam?", "Optimisers", "Adaptive moments"),
               _entry("c", "What is GELU?", "Activations"), _entry("d", "Where is the syllabus?", "",
                                                                    resources=[("https://x.org/v", "Intro vidéo",
                                                                                "video", "x.org")])]
    groups = browse.group_by_category(entries)
    assert [(c, [e.id for e in es]) for c, es in groups] == [
        ("Activations", ["a", "c"]), ("Optimisers", ["b"]), (browse.UNCATEGORISED, ["d"])]
    assert [e.id for e in browse.filter_entries(entries, "  ")] == ["a", "b", "c", "d"]
    assert [e.id for e in browse.filter_entries(entries, "what")] == ["a", "c"]
    assert [e.id for e in browse.filter_entries(entries, "ADAPTIVE adam")] == ["b"]
    assert [e.id for e in browse.filter_entries(entries, "video")] == ["d"]  # kind, title with accents
    assert [e.id for e in browse.filter_entries(entries, "activations gelu")] == ["c"]
    assert browse.filter_entries(entries, "nothing-like-this") == []


def test_example_questions_are_short_and_varied():
    entries = [_entry(str(i), f"Question number {i} about things?", f"C{i % 3}") for i in range(12)]
    entries.append(_entry("long", "x" * 200, "C9"))
    picked = browse.example_questions(entries, n=2)
    assert len(picked) == 2 and len(set(picked)) == 2 and all(len(q) <= 60 for q in picked)
    assert browse.example_questions([], n=2) == []
    assert browse.example_questions([_entry("a", "Only one?")], n=2) == ["Only one?"]


def test_read_examples_skips_comments_and_blank_lines(tmp_path):
    path = tmp_path / "examples.txt"
    path.write_text("# a comment\n\n  why a bias?  \n   # indented comment\nwhat is log loss\n", "utf-8")
    assert browse.read_examples(path) == ["why a bias?", "what is log loss"]
    assert browse.read_examples(tmp_path / "missing.txt") == []
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    assert browse.read_examples(tmp_path / "bad.txt") == []
