# Two entry points the README documents: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup deps run test lint bench

$(BIN)/python:
	$(PY) -m venv $(VENV)

deps: $(BIN)/python
	@command -v mosquitto >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q mosquitto mosquitto-clients; }
	@command -v node >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q nodejs; }
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt

setup: deps

run: deps
	$(BIN)/python -m adapter run-local

test: deps
	$(BIN)/ruff check .
	$(BIN)/mypy adapter simulator infra app.py
	$(BIN)/python -m pytest -q

bench: deps
	$(BIN)/python -m simulator bench --json bench.json
