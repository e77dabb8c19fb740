"""The web app's code (`app.py` is its entry point): what it shows, and what it stores.

Kept out of `indexer/`, which builds and searches the index and never imports
from here. `html` escapes text and makes safe links, `cards` turns entries and
search results into markup, `browse` groups and filters entries, `index_state`
reads the build's status for the sidebar, `feedback` is the query log and the
votes; `style.css` is the app's stylesheet.
"""
