"""The scale benchmark's short mode (10k units) runs end to end; its timings are reported, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

from bench import scale


def test_short_mode_builds_opens_and_measures(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    assert scale.main(["--short", "--queries", "20", "--json", str(out)]) == 0
    rows = json.loads(out.read_text("utf-8"))
    assert [(r["units"], r["variant"]) for r in rows] == [(10_000, "structured"), (10_000, "random")]
    for row in rows:
        assert row["entries"] == 1000 and row["queries"] > 0
        assert row["recall_at_10"] == 1.0  # 10k units stay on exact search
        assert row["disk_mb"] > 0 and row["rss_mb"] > 0
    seed = json.loads(out.with_suffix(".seed.json").read_text("utf-8"))
    assert (seed["entries"], seed["units"]) == (8, 28) and seed["queries"] == 20  # data/faq.md, built offline
    assert seed["ours_p50_ms"] > 0 and seed["bare_p50_ms"] > 0


def test_structured_vectors_cluster_by_entry() -> None:
    import numpy as np

    vectors = scale.make_vectors(2000, "structured", np.random.default_rng(0))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    same_entry = float(np.mean(np.sum(vectors[0:2000:10] * vectors[1:2000:10], axis=1)))
    other = float(np.mean(np.sum(vectors[0:1000] * vectors[1000:2000], axis=1)))
    assert same_entry > other + 0.2
