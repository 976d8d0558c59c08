# The two commands README.md gives: `make run` (install + start on the simulated gateway)
# and `make test` (install + run the whole suite). Everything else is a building block.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test install install-dev browser bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt

install-dev: $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements-dev.txt

# Debian's chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	V6_MODE=$${V6_MODE:-sim} $(BIN)/streamlit run app.py --server.port $(PORT)

test: install-dev browser
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: install-dev
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done
