"""FAQ sources: the shipped Markdown seed, other Markdown forms, JSONL, CSV, folders, and errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import SHIPPED_FAQ
from indexer.faq import FaqError, load_entries, read_source, resource_kind, slugify


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, "utf-8")
    return path


@pytest.fixture(scope="module")
def shipped():
    return load_entries([SHIPPED_FAQ])


def by_question(entries, fragment):
    found = [e for e in entries if fragment.lower() in e.question.lower()]
    assert len(found) == 1, f"{fragment!r} matched {[e.question for e in found]}"
    return found[0]


# -- the shipped seed -------------------------------------------------------------------------

def test_shipped_faq_has_eight_entries_without_q_prefix(shipped):
    assert len(shipped) == 8
    assert [e.question for e in shipped] == [
        "I am having some trouble understanding backpropagation when training the neural net.",
        "What's the perceptron algorithm?",
        "How to find the optimal learning rate?",
        "What is cross entropy Loss?",
        "What is bias?",
        "What is Gradient Descent?",
        "In softmax function why do we take exponential?",
        "Why do we need activation function?",
    ]
    assert not any(e.question.startswith("Q") and e.question[1:2] in ":." for e in shipped)
    assert {e.category for e in shipped} == {"Introduction to Neural Networks"}


def test_shipped_faq_keeps_the_written_answer(shipped):
    lr = by_question(shipped, "learning rate")
    assert "Leslie Smith" in lr.answer
    # The link texts stay readable in the answer, the Markdown syntax does not.
    assert "](" not in lr.answer and "https://" not in lr.answer
    # Entries whose body is only "Resource:" and a list of links have no written answer.
    assert by_question(shipped, "perceptron").answer == ""


def test_shipped_faq_resources_use_link_text_as_titles(shipped):
    resources = [r for e in shipped for r in e.resources]
    assert len(resources) == 11
    assert all(r.url.startswith(("http://", "https://")) for r in resources)
    ce = by_question(shipped, "cross entropy")
    assert [r.title for r in ce.resources] == ["Understanding binary cross-entropy / log loss: a visual explanation"]
    lr = by_question(shipped, "learning rate")
    assert [r.url for r in lr.resources] == [
        "https://arxiv.org/abs/1803.09820",
        "https://towardsdatascience.com/estimating-optimal-learning-rate-for-a-deep-neural-network-ce32f2556ce0",
    ]
    bias = by_question(shipped, "bias")
    # Emphasis inside a link text is dropped; the URL with a query string is kept whole.
    assert [r.title for r in bias.resources][1] == "But what is a Neural Network? | Deep learning, chapter 1"
    gd = by_question(shipped, "gradient descent")
    assert gd.resources[0].url == "https://www.youtube.com/watch?v=IHZwWFHWa-w&t=2s"


def test_shipped_faq_mojibake_is_repaired(shipped):
    act = by_question(shipped, "activation function")
    assert act.resources[0].title == "Activation functions and it\u2019s types-Which is better?"
    assert not any("â€" in r.title for e in shipped for r in e.resources)


def test_shipped_faq_ids_are_stable_slugs(shipped):
    again = load_entries([SHIPPED_FAQ])
    assert [e.id for e in again] == [e.id for e in shipped]
    assert len({e.id for e in shipped}) == 8
    assert by_question(shipped, "cross entropy").id == "what-is-cross-entropy-loss"
    assert slugify("What is cross entropy Loss?") == "what-is-cross-entropy-loss"
    assert by_question(shipped, "perceptron").id == "whats-the-perceptron-algorithm"


def test_shipped_faq_resource_kinds(shipped):
    kinds = {r.url: r.kind for e in shipped for r in e.resources}
    assert kinds["http://neuralnetworksanddeeplearning.com/chap2.html"] == "book"
    assert kinds["https://arxiv.org/abs/1803.09820"] == "paper"
    assert kinds["https://stackoverflow.com/questions/2480650/role-of-bias-in-neural-networks"] == "qa"
    assert kinds["https://datascience.stackexchange.com/questions/23159/in-softmax-classifier-why-use-exp-function-to-do-normalization"] == "qa"
    assert kinds["https://www.youtube.com/watch?v=aircAruvnKk"] == "video"
    assert kinds["https://towardsdatascience.com/what-the-hell-is-perceptron-626217814f53"] == "article"


@pytest.mark.parametrize("url, kind", [
    ("https://youtu.be/aircAruvnKk", "video"),
    ("https://m.youtube.com/watch?v=x", "video"),
    ("https://math.stackexchange.com/questions/1", "qa"),
    ("https://arxiv.org/pdf/1803.09820.pdf", "paper"),
    ("https://example.org/papers/smith2018.pdf", "paper"),
    ("https://www.deeplearningbook.org/contents/mlp.html", "book"),
    ("https://medium.com/@someone/post-123", "article"),
    ("https://github.com/owner/repo", "other"),
])
def test_resource_kind_from_address(url, kind):
    assert resource_kind(url) == kind


# -- Markdown forms ---------------------------------------------------------------------------

def test_markdown_headings_ending_in_question_mark_are_entries(tmp_path):
    faq = write(tmp_path / "faq.md", """# Optimisation

## What is momentum?

It keeps a running average of gradients. See https://example.com/momentum, and
https://example.org/adam.

### Q: Why normalise inputs?
Because features on very different scales slow gradient descent.

## Notes on tuning

Not an entry: this heading does not end in a question mark.

# Regularisation

## What is dropout?
Randomly zeroing activations. [Dropout paper](https://jmlr.org/papers/v15/srivastava14a.html)
""")
    entries = load_entries([faq])
    assert [e.question for e in entries] == ["What is momentum?", "Why normalise inputs?", "What is dropout?"]
    assert [e.category for e in entries] == ["Optimisation", "Optimisation", "Regularisation"]
    momentum = entries[0]
    # Bare URLs are resources (trailing punctuation is not part of them), titled by their site.
    assert [r.url for r in momentum.resources] == ["https://example.com/momentum", "https://example.org/adam"]
    assert [r.title for r in momentum.resources] == ["example.com", "example.org"]
    # The non-question heading stays in the previous entry's answer instead of starting one.
    assert "Notes on tuning" in entries[1].answer
    assert entries[2].resources[0].title == "Dropout paper"
    assert entries[2].resources[0].kind == "paper"
    assert [e.line for e in entries] == [3, 8, 17]


def test_markdown_bold_lines_without_q_prefix_and_duplicate_links(tmp_path):
    faq = write(tmp_path / "faq.md", """**What is a tensor?**

A multi-dimensional array. [Tensors](https://example.com/t) and again [Tensors again](https://example.com/t).

__Q. What is a scalar?__
A single number.
""")
    entries = load_entries([faq])
    assert [e.question for e in entries] == ["What is a tensor?", "What is a scalar?"]
    # One resource per URL, the first title wins.
    assert [(r.url, r.title) for r in entries[0].resources] == [("https://example.com/t", "Tensors")]
    assert entries[1].answer == "A single number."


# -- JSONL and CSV ---------------------------------------------------------------------------

def test_jsonl_source(tmp_path):
    rows = [
        {"question": "What is a GPU?", "answer": "A graphics processor.", "id": "gpu",
         "urls": ["https://example.com/gpu", "https://www.youtube.com/watch?v=abc"], "category": "Hardware"},
        {"question": "What is a TPU?"},
    ]
    faq = write(tmp_path / "faq.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    entries = load_entries([faq])
    assert [e.id for e in entries] == ["gpu", "what-is-a-tpu"]
    gpu = entries[0]
    assert gpu.answer == "A graphics processor." and gpu.category == "Hardware"
    assert [r.url for r in gpu.resources] == ["https://example.com/gpu", "https://www.youtube.com/watch?v=abc"]
    assert [r.kind for r in gpu.resources] == ["article", "video"]
    assert entries[1].resources == () and entries[1].line == 2


def test_course_faq_exports_text_and_section_are_read_and_other_fields_named(tmp_path, caplog):
    """Course FAQ exports call the answer `text` and the module `section`; those are read as ours, and
    a field nothing reads is named in a warning instead of silently dropping what it holds."""
    rows = [{"course": "ml", "section": "Module 4: Docker", "question": "Port already allocated?",
             "text": "Stop the other container.", "document": "a1b2"},
            {"question": "Which Python?", "answer": "3.12", "text": "not this one", "section": "Module 1: Setup"}]
    faq = write(tmp_path / "faq.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    with caplog.at_level("WARNING", logger="indexer.faq"):
        entries = load_entries([faq])
    assert [(e.answer, e.category) for e in entries] == [("Stop the other container.", "Module 4: Docker"),
                                                         ("3.12", "Module 1: Setup")]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "ignored field(s) document" in warned[0] and str(faq) in warned[0]

    csv_faq = write(tmp_path / "faq.csv", "Question,Text,Section\nPort already allocated?,Stop it.,Docker\n")
    caplog.clear()
    with caplog.at_level("WARNING", logger="indexer.faq"):
        (entry,) = load_entries([csv_faq])
    assert (entry.answer, entry.category) == ("Stop it.", "Docker") and not caplog.records


def test_json_course_export_is_read_and_several_courses_are_told_apart(tmp_path):
    """A course FAQ export is one JSON document: a list of courses, each with its `documents`. Two
    courses in one file each have their own "How do I join?", so the course leads the category; a
    file of one course keeps its sections as they are."""
    export = [{"course": "data-engineering", "documents": [
                  {"question": "How do I join?", "text": "Register on the form.", "section": "General"},
                  {"question": "Docker port in use?", "text": "Stop postgres.", "section": "Module 1", "id": "de-1"}]},
              {"course": "ml", "documents": [
                  {"question": "How do I join?", "text": "Just start watching.", "section": "General"}]}]
    faq = write(tmp_path / "documents.json", json.dumps(export, indent=2))
    entries = load_entries([faq])
    assert [(e.id, e.category, e.answer) for e in entries] == [
        ("how-do-i-join", "data-engineering · General", "Register on the form."),
        ("de-1", "data-engineering · Module 1", "Stop postgres."),
        ("how-do-i-join-2", "ml · General", "Just start watching.")]
    assert entries[2].line == 3  # the entry's position in the file

    one_course = write(tmp_path / "one.json", json.dumps({"course": "ml", "documents": export[1]["documents"]}))
    assert [e.category for e in load_entries([one_course])] == ["General"]
    flat = write(tmp_path / "flat.json", json.dumps([{"question": "What is a GPU?", "answer": "A processor."}]))
    assert [e.answer for e in load_entries([flat])] == ["A processor."]


@pytest.mark.parametrize("text, message", [
    ('[{"question": "Q?"},\n {"question": }]', "bad.json:2: invalid JSON"),
    ('{"name": "not a FAQ"}', "bad.json: expected a JSON array of entries"),
    ('[{"question": "Q?"}, "just text"]', "bad.json: entry 2: expected a JSON object"),
    ('[{"question": "A?", "id": "x"}, {"question": "B?", "id": "x"}]', "bad.json: entry 2: duplicate id 'x'"),
    ('{"documents": []}', "bad.json: no FAQ entries found"),
])
def test_bad_json_faq_is_one_line_naming_the_file_and_entry(tmp_path, text, message):
    faq = write(tmp_path / "bad.json", text)
    with pytest.raises(FaqError) as err:
        load_entries([faq])
    assert message in str(err.value) and "\n" not in str(err.value) and "bold line" not in str(err.value)


def test_csv_source_with_pipe_separated_urls(tmp_path):
    faq = write(tmp_path / "faq.csv",
                "Question,Answer,URLs,ID,Category\n"
                "What is an epoch?,One pass over the data.,https://example.com/epoch | https://stackoverflow.com/q/1,"
                "epoch,Training\n"
                ",,,,\n"
                "\"What is a batch, exactly?\",A group of samples.,,,Training\n")
    entries = load_entries([faq])
    assert [e.id for e in entries] == ["epoch", "what-is-a-batch-exactly"]
    assert [r.url for r in entries[0].resources] == ["https://example.com/epoch", "https://stackoverflow.com/q/1"]
    assert entries[0].resources[1].kind == "qa"
    assert entries[0].category == entries[1].category == "Training"
    assert entries[1].question == "What is a batch, exactly?"
    assert entries[1].line == 4


def test_several_sources_and_a_folder(tmp_path):
    folder = tmp_path / "faqs"
    folder.mkdir()
    write(folder / "a.md", "**Q: What is a neuron?**\nA unit.\n")
    write(folder / "b.jsonl", json.dumps({"question": "What is a layer?", "id": "layer"}) + "\n")
    write(folder / "c.csv", "question,answer\nWhat is a loss?,A number to minimise.\n")
    write(folder / "notes.txt", "**Q: Not read?**\n")  # not a FAQ suffix: ignored in a folder
    extra = write(tmp_path / "extra.md", "## What is a weight?\nA parameter.\n")
    entries = load_entries([folder, extra])
    assert [e.question for e in entries] == ["What is a neuron?", "What is a layer?", "What is a loss?",
                                             "What is a weight?"]
    assert [Path(e.source).name for e in entries] == ["a.md", "b.jsonl", "c.csv", "extra.md"]


def test_duplicate_questions_get_unique_ids(tmp_path):
    a = write(tmp_path / "a.md", "**Q: What is ReLU?**\nOne.\n\n**Q: What is ReLU?**\nTwo.\n")
    b = write(tmp_path / "b.jsonl", json.dumps({"question": "What is ReLU?"}) + "\n")
    entries = load_entries([a, b])
    assert [e.id for e in entries] == ["what-is-relu", "what-is-relu-2", "what-is-relu-3"]
    assert [e.id for e in load_entries([a, b])] == [e.id for e in entries]


def test_duplicate_given_id_is_an_error(tmp_path):
    faq = write(tmp_path / "faq.jsonl", json.dumps({"question": "A?", "id": "x"}) + "\n"
                + json.dumps({"question": "B?", "id": "x"}) + "\n")
    with pytest.raises(FaqError, match=re.escape(f"{faq}:2")):
        load_entries([faq])


# -- errors name the file and line ----------------------------------------------------------

@pytest.mark.parametrize("name, content, line", [
    ("bad-scheme.md", "# C\n\n**Q: One?**\n\nSee [x](htp:/bad) for more.\n", 5),
    ("no-scheme.md", "**Q: One?**\n\nSee [x](not-a-url).\n", 3),
    ("spaces.md", "**Q: One?**\nText.\n\n- [x](not a url)\n", 4),
])
def test_malformed_url_names_file_and_line(tmp_path, name, content, line):
    faq = write(tmp_path / name, content)
    with pytest.raises(FaqError, match=re.escape(f"{faq}:{line}") + ".*malformed URL"):
        load_entries([faq])


def test_malformed_url_in_jsonl(tmp_path):
    faq = write(tmp_path / "faq.jsonl", json.dumps({"question": "A?"}) + "\n"
                + json.dumps({"question": "B?", "urls": ["ftp://example.com/x"]}) + "\n")
    with pytest.raises(FaqError, match=re.escape(f"{faq}:2") + ".*malformed URL"):
        load_entries([faq])


def test_empty_faq_is_an_error(tmp_path):
    faq = write(tmp_path / "faq.md", "# Just a category\n\nSome prose but no question.\n")
    with pytest.raises(FaqError, match=re.escape(str(faq)) + ".*no FAQ entries"):
        load_entries([faq])
    empty = write(tmp_path / "empty.jsonl", "\n\n")
    with pytest.raises(FaqError, match=re.escape(str(empty))):
        load_entries([empty])


def test_missing_file_is_an_error(tmp_path):
    missing = tmp_path / "nope.md"
    with pytest.raises(FaqError, match=re.escape(str(missing)) + ".*no such file"):
        load_entries([missing])


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(FaqError, match="no FAQ file"):
        load_entries([tmp_path])


def test_unreadable_file_is_an_error(tmp_path):
    # A directory named like a FAQ file cannot be read as one (works as root, unlike chmod 000).
    odd = tmp_path / "faq.md"
    odd.mkdir()
    with pytest.raises(FaqError, match=re.escape(str(odd)) + ".*cannot read"):
        read_source(odd)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_permissions_is_an_error(tmp_path):
    faq = write(tmp_path / "faq.md", "**Q: A?**\n")
    faq.chmod(0)
    try:
        with pytest.raises(FaqError, match=re.escape(str(faq)) + ".*cannot read"):
            load_entries([faq])
    finally:
        faq.chmod(0o644)


def test_csv_without_question_column(tmp_path):
    faq = write(tmp_path / "faq.csv", "title,answer\nA,B\n")
    with pytest.raises(FaqError, match=re.escape(f"{faq}:1") + ".*question"):
        load_entries([faq])


def test_invalid_json_line(tmp_path):
    faq = write(tmp_path / "faq.jsonl", json.dumps({"question": "A?"}) + "\n\n{\"question\": oops}\n")
    with pytest.raises(FaqError, match=re.escape(f"{faq}:3") + ".*invalid JSON"):
        load_entries([faq])


def test_jsonl_row_without_question(tmp_path):
    faq = write(tmp_path / "faq.jsonl", json.dumps({"answer": "no question"}) + "\n")
    with pytest.raises(FaqError, match=re.escape(f"{faq}:1") + ".*question"):
        load_entries([faq])


def test_non_utf8_bytes(tmp_path):
    faq = write(tmp_path / "faq.md", "**Q: One?**\nfine\n\n**Q: Caf".encode() + b"\xe9?**\n")
    with pytest.raises(FaqError, match=re.escape(f"{faq}:4") + ".*UTF-8"):
        load_entries([faq])


def test_link_shaped_code_is_not_a_malformed_url(tmp_path):
    faq = write(tmp_path / "faq.md", "**Q: How do I call a layer?**\n"
                "Index then call: `layers[0](x, y)` or fns[1](a b).\n\n"
                "```python\nout = model[0](x, y)\nprint('[x](not a url)')\n```\n"
                "[Docs](https://example.com/docs)\n")
    (entry,) = load_entries([faq])
    assert [r.url for r in entry.resources] == ["https://example.com/docs"]


def test_a_deeper_heading_over_entries_is_their_section_and_leaves_the_answer_above_alone(tmp_path):
    """Course FAQs put modules under `##` headings; the heading names the section of the questions
    below it instead of ending the answer above it. A heading over answer text stays in the answer."""
    faq = write(tmp_path / "faq.md", """# Course FAQ

## Module 1: Setup

**Q: Which Python version?**

Python 3.12.

### Steps

1. Install it.

## Module 2: Docker

### Containers

**Q: Port already allocated?**

Stop the other container.

```
## not a heading inside a fence
```

## Further reading
""")
    entries = load_entries([faq])
    assert [(e.question, e.category) for e in entries] == [("Which Python version?", "Module 1: Setup"),
                                                         ("Port already allocated?", "Containers")]
    first, second = entries
    assert "Steps" in first.answer and "Install it." in first.answer
    assert "Module 2" not in first.answer and "Containers" not in first.answer
    assert "not a heading inside a fence" in second.answer and "Further reading" in second.answer
