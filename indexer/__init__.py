"""Semantic FAQ search: FAQ -> pages -> passages -> vectors -> index -> search.

Modules, in the order data flows through them: `faq` (parse), `fetch` and
`cache` (pages), `extract` (main text), `chunk` (passages), `embed` (vectors),
`store` (the index on disk), `lexical` and `query` (BM25, query preparation),
`features`, `fusion`, `ranker` and `search` (ranking), `threshold` (when the
FAQ has an answer), `evaluate` and `calibrate` (metrics, per-index threshold);
`build` runs the pipeline and `cli` is the command line; `text` holds the
small text helpers (fold, site names, UTC timestamps, query clipping) that the
web app (`webapp/`, which imports from here, never the other way) shares.
"""

from .config import VERSION as __version__

__all__ = ["__version__"]
