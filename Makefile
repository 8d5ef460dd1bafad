# Two commands for a newcomer: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: its CPU wheel is local, and anything looser pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet 'torch==2.13.0'
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/answerdesk ingest docs docs --source answerdesk-docs --base-url http://$(HOST):$(PORT)/kb
	ANSWERDESK_DEMO_DOCS_DIR=docs $(VENV)/bin/answerdesk serve --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium (never a downloaded browser); without it they skip, saying so.
test: install
	@[ -x /usr/bin/chromium ] || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
	  || echo "Chromium could not be installed: the browser tests will skip"
	$(PY) -m pytest

bench: install
	$(PY) -m eval.bench

lint: install
	$(VENV)/bin/ruff check assistant ingest eval tests cli
	$(VENV)/bin/mypy assistant ingest eval cli

clean:
	rm -rf .answerdesk
