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
	V6_MODE=$${V6_MODE:-sim} $(BIN)/streamlit run serve.py --server.port $(PORT)

# Two cores: the tests that do not drive chromium run on two workers (a module stays on one
# worker: its simulator and fixtures are shared); the browser tests run after, one at a time,
# each under its own CPU load. Both parts always run; either failing fails the target.
test: install-dev browser
	@rc=0; \
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "not browser" tests || rc=1; \
	$(BIN)/python -m pytest -q -p no:cacheprovider -m browser tests || rc=1; \
	exit $$rc

bench: install-dev
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done
