"""The web app's code (`app.py` is its entry point): what it shows, and what it stores.

Kept out of `indexer/`, which builds and searches the index and never imports
from here. `html` escapes text and makes safe links, `cards` turns entries and
search results into markup, `browse` groups and filters entries, `index_state`
reads the build's status, `maintainer` renders it for the maintainer view
(shown only with FAQ_ADMIN=1), `rebuild` runs a rebuild started from the app in
its own thread; `style.css` is the app's stylesheet. Those build plain data and
markup; the Streamlit code that draws them is one module per view (`search_view`,
`browse_view`, `maintainer_view`), with `open_index` opening the searcher they
share. The query log and votes are `indexer.querylog`: the command line reads
them too.
"""
