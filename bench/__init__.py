"""Benchmarks of the indexer: retrieval quality, embedding speed, build time.

Run the scripts from the repository root with the project's interpreter:

    .venv/bin/python bench/quality.py
    .venv/bin/python bench/embed_speed.py
    .venv/bin/python bench/offline_build.py

Results go to bench/RESULTS.md (one marked section per script) and bench/out/.
"""
