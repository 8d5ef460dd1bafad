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

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m eval.bench

lint: install
	$(VENV)/bin/ruff check assistant ingest eval tests
	$(VENV)/bin/mypy assistant ingest eval

clean:
	rm -rf .answerdesk
