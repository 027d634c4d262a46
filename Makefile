# tapedeck — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench reliability clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tapedeck serve --cassettes cassettes --host 127.0.0.1 --port 8765

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/tapedeck lint cassettes

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/replay.py

# The full reliability suite (about 10 minutes); `make test` runs the short version of each
# scenario. ARGS="--before DIR/server" also measures another tapedeck tree.
reliability: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m reliability $(ARGS)

clean:
	rm -rf $(VENV) build dist server/*.egg-info .mypy_cache .pytest_cache .ruff_cache
