"""Benchmarks of the indexer: retrieval quality, embedding speed, build time.

Run the scripts from the repository root with the project's interpreter:

    .venv/bin/python -m bench.quality
    .venv/bin/python -m bench.embed_speed
    .venv/bin/python -m bench.offline_build
    .venv/bin/python -m bench.ray_embed      # needs the optional extra: pip install .[scale]

Results go to bench/RESULTS.md (one marked section per script) and bench/out/.
"""
