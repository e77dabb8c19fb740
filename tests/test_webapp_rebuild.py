"""webapp/rebuild.py: a real build run in the background, one at a time, its progress readable meanwhile."""

from __future__ import annotations

from indexer.build import STAGES, build_index
from webapp.rebuild import Rebuilder, same_index

FAQ = "# Regularisation\n\n**Q: What is dropout?**\n\nDropout zeroes random activations.\n\n-   [Notes](http://127.0.0.1:9/dropout.html)\n"


def wait_until_done(rebuilder: Rebuilder, timeout: float = 120.0):
    progress = rebuilder.progress()
    seen = []
    while progress is not None and progress.running:
        seen.append(progress)
        progress = rebuilder.wait(progress, timeout=timeout)
    return progress, seen


def test_a_rebuild_runs_in_the_background_one_at_a_time(tmp_path):
    faq, index_dir, cache_dir = tmp_path / "faq.md", tmp_path / "index", tmp_path / "cache"
    faq.write_text(FAQ, "utf-8")
    rebuilder = Rebuilder()
    assert rebuilder.progress() is None and not rebuilder.running

    def build(on_stage):
        return build_index([faq], index_dir=index_dir, cache_dir=cache_dir, offline=True, on_stage=on_stage)

    assert rebuilder.start(index_dir, build, offline=True)
    assert rebuilder.running
    assert not rebuilder.start(index_dir, build)  # the build lock: "a rebuild is already running"
    progress, seen = wait_until_done(rebuilder)
    assert progress.ok and not progress.error and progress.job == 1 and progress.offline
    assert progress.summary.entries == 1 and progress.summary.pages_failed == 1
    assert [s for s, _, _ in progress.stages] == list(STAGES)
    assert progress.stages[0] == ("fetching", 1, 1) and progress.stages[-1] == ("saving", 1, 1)
    assert any(p.stages for p in seen)  # the progress was readable while the build ran
    assert same_index(progress.index_dir, index_dir) and (index_dir / "manifest.json").exists()
    assert not rebuilder.running

    faq.write_text("**Q: Broken?**\n\nSee [x](htp:/nowhere)\n", "utf-8")
    assert rebuilder.start(index_dir, build)  # the lock was released
    failed, _ = wait_until_done(rebuilder)
    assert failed.job == 2 and not failed.ok and failed.summary is None
    assert str(faq) in failed.error
    assert not rebuilder.running and rebuilder.start(index_dir, build) is True
    wait_until_done(rebuilder)
