"""bench/ is a package run as `python -m bench.<name>`, without sys.path tricks and without shadowing installed names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("calibrate", "embed_speed", "faq_size", "offline_build", "quality", "ray_embed", "scale", "train_ranker")


def test_no_bench_module_shadows_an_installed_package() -> None:
    assert not (ROOT / "bench" / "datasets.py").exists()
    for script in SCRIPTS:
        assert "sys.path[:]" not in (ROOT / "bench" / f"{script}.py").read_text("utf-8"), script


def test_every_script_runs_as_a_module() -> None:
    for script in ("faq_size", "quality", "ray_embed", "scale", "train_ranker"):
        out = subprocess.run([sys.executable, "-m", f"bench.{script}", "--help"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0 and "usage:" in out.stdout, (script, out.stderr[-2000:])
    code = ("import importlib, importlib.util; "
            f"[importlib.import_module('bench.' + s) for s in {SCRIPTS!r}]; "
            "spec = importlib.util.find_spec('datasets'); print(spec.origin if spec else None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert str(ROOT / "bench") not in out.stdout
