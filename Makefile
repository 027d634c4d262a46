# tapedeck — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The oldest supported anthropic release (pyproject.toml's `floor` group), in its own venv.
FLOOR  := .venv-floor
# The TypeScript suite: its own package.json and package-lock.json.
TS       := tests/ts
NPM      ?= npm
TS_STAMP := $(TS)/node_modules/.package-lock.json
TS_ENV   := TAPEDECK_BIN=$(CURDIR)/$(BIN)/tapedeck TAPEDECK_PYTHON=$(CURDIR)/$(BIN)/python

.PHONY: run test prereqs lint typecheck pytest pytest-all pytest-workers beside-workers ts ts-table ts-floor ts-example sdk-range clients lock drift floors wheel bench bench-instructions bench-peers ui-screenshot reliability clean

# The development environment comes from uv.lock (exact versions, with hashes); uv itself is
# pinned in the lock's dev group and bootstrapped into the venv by pip. Bytecode is compiled
# at install, as pip does: with PYTHONDONTWRITEBYTECODE set, every process would otherwise
# compile its imports again (a tapedeck command starts in 0.4 s instead of 1 s).
UV_VERSION := $(shell sed -n 's/^ *"uv==\([0-9.]*\)",*$$/\1/p' pyproject.toml)
UV := $(BIN)/uv

$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(UV) --version 2>/dev/null | grep -q '^uv $(UV_VERSION) ' || \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --all-extras --quiet --compile-bytecode \
	  --python $(BIN)/python
	touch $(STAMP)

# Tests and the commands they start write bytecode caches too (the tree's own modules, and
# pytest's assert-rewritten plugin modules): tests/conftest.py turns them on for a direct
# pytest run as well.
unexport PYTHONDONTWRITEBYTECODE

# PORT=N picks the port; without it, TAPEDECK_PORT or tapedeck's default (8765). A port in
# use is then explained as make run takes it (TAPEDECK_VIA_MAKE_RUN).
PORT ?=
run: $(STAMP)
	TAPEDECK_VIA_MAKE_RUN=1 $(BIN)/tapedeck serve --cassettes cassettes --host 127.0.0.1 \
	  $(if $(PORT),--port $(PORT))

# The --workers re-run keeps about one core busy, the TypeScript suite and the oldest-SDK runs
# mostly wait on their servers: they share the two job slots (output kept per target).
test: prereqs lint typecheck pytest-all $(TS_STAMP) $(FLOOR)/.installed
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest-workers beside-workers

beside-workers: ts sdk-range

lint: $(STAMP)
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/tapedeck lint cassettes

typecheck: $(STAMP)
	$(BIN)/mypy

# The sequence and fault tests run again against `tapedeck serve --workers 2` with its
# state in a real redis-server: two workers must behave exactly like one.
WORKER_TESTS = tests/test_sequences_and_selection.py tests/test_faults_scoping.py \
	tests/test_faults_status.py tests/test_faults_stream.py tests/test_journal.py \
	tests/test_workers.py

# One test process per core (pytest-xdist), a test file's tests in the same process.
XDIST = -n auto --dist loadfile

pytest: pytest-all pytest-workers

pytest-all: $(STAMP)
	$(BIN)/pytest $(XDIST)

pytest-workers: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider $(XDIST) --server-workers 2 $(WORKER_TESTS)

# The conformance table with the locked newest @anthropic-ai/sdk, its smoke cases with the
# oldest supported one (an npm alias in tests/ts/package.json), and the docs/typescript.md example.
ts: ts-table ts-floor ts-example

ts-table: $(STAMP) prereqs $(TS_STAMP)
	cd $(TS) && $(TS_ENV) $(NPM) test

ts-floor: $(STAMP) prereqs $(TS_STAMP)
	cd $(TS) && $(TS_ENV) $(NPM) run test:floor

ts-example: $(STAMP) prereqs $(TS_STAMP)
	cd $(TS) && $(NPM) run typecheck
	cd $(TS) && $(TS_ENV) TAPEDECK_CASSETTES=$(CURDIR)/cassettes $(NPM) run example

# Node.js, redis-server and Chromium, checked before the first step (.ci/prereqs says how to
# get each; .ci/prereqs --install installs them as root with apt-get).
prereqs:
	@.ci/prereqs

$(TS_STAMP): $(TS)/package.json $(TS)/package-lock.json | prereqs
	cd $(TS) && $(NPM) ci --no-audit --no-fund
	touch $(TS_STAMP)

# The smoke cases of the conformance table against the oldest supported anthropic release
# (the full table runs against the newest, in .venv, with the rest of the suite).
$(FLOOR)/.installed: pyproject.toml uv.lock $(STAMP)
	UV_PROJECT_ENVIRONMENT=$(FLOOR) $(UV) sync --locked --all-extras --quiet --compile-bytecode \
	  --no-default-groups --group floor --python $(PYTHON)
	touch $@

sdk-range: $(FLOOR)/.installed
	$(FLOOR)/bin/pytest -m smoke -p no:cacheprovider tests/test_conformance.py tests/test_plugin_any_sdk.py

# The agent runtimes and frameworks our users drive Claude through (docs/clients.md): the
# Python ones in .venv-clients (pyproject.toml's `clients` group, from uv.lock), the Node
# ones (and the Node.js release they need) from tests/clients/node/package-lock.json. Each
# records through tapedeck from a stand-in upstream and replays with it gone. Apart from
# make test, which it would take past six minutes; .ci/run runs both.
CLIENTS      := .venv-clients
CLIENTS_NODE := tests/clients/node
$(CLIENTS)/.installed: pyproject.toml uv.lock $(STAMP)
	UV_PROJECT_ENVIRONMENT=$(CLIENTS) $(UV) sync --locked --all-extras --quiet --compile-bytecode \
	  --no-default-groups --group clients --python $(PYTHON)
	touch $@

$(CLIENTS_NODE)/node_modules/.package-lock.json: $(CLIENTS_NODE)/package.json $(CLIENTS_NODE)/package-lock.json | prereqs
	cd $(CLIENTS_NODE) && $(NPM) ci --no-audit --no-fund
	touch $@

clients: $(CLIENTS)/.installed $(CLIENTS_NODE)/node_modules/.package-lock.json
	TAPEDECK_CLIENTS=1 TAPEDECK_CLIENTS_NODE=$(CURDIR)/$(CLIENTS_NODE) \
	  $(CLIENTS)/bin/pytest -p no:cacheprovider $(XDIST) tests/clients

# Refresh the locks: every Python package to its newest release within pyproject.toml's
# ranges (uv.lock), and tests/ts/package-lock.json re-resolved for package.json's exact pins
# (bump one with: cd tests/ts && npm install --save-exact NAME@VERSION). Then make test.
lock: $(STAMP)
	$(UV) lock --upgrade
	cd $(TS) && $(NPM) install --package-lock-only --no-audit --no-fund
	cd $(CLIENTS_NODE) && $(NPM) install --package-lock-only --no-audit --no-fund

# The whole suite in a throwaway copy with the newest release of everything (Python packages,
# both SDKs, mypy, ruff, the Node packages); prints what breaks and writes build/drift/report.md.
# Not part of make test: run it before bumping the locks.
drift:
	$(PYTHON) .ci/drift.py

# The other end of every range: each dependency and extra at the oldest release
# pyproject.toml allows, and the tests that reach them (make drift runs it too).
floors: $(STAMP)
	$(PYTHON) .ci/floors.py

# A wheel to install elsewhere (the distribution is not on the package index yet).
wheel: $(STAMP)
	$(UV) build --wheel --out-dir dist

bench: $(STAMP)
	$(BIN)/python bench/replay.py

# Instructions per instant response under valgrind (tapedeck, the raw app): a measure of the
# server's own work that a busy machine does not move. ARGS="--before DIR/server --observe".
bench-instructions: $(STAMP)
	$(BIN)/python bench/instructions.py $(ARGS)

# tapedeck against aimock (npm, pinned in bench/peers/) and the raw baselines; installs aimock
# and wrk when missing. PEERS_ARGS=--quick for a short run.
bench-peers: $(STAMP)
	$(BIN)/python bench/peers.py $(PEERS_ARGS)

# docs/ui.png, the README's picture of the web view (needs /usr/bin/chromium).
ui-screenshot: $(STAMP)
	$(BIN)/python tests/ui_screenshot.py docs/ui.png

# The full reliability suite (about 9 minutes); `make test` runs the short version of each
# scenario. ARGS="--before DIR/server" also measures another tapedeck tree.
reliability: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m reliability $(ARGS)

clean:
	rm -rf $(VENV) $(FLOOR) $(CLIENTS) $(CLIENTS_NODE)/node_modules build/drift $(TS)/node_modules $(TS)/example/node_modules bench/peers/node_modules build dist server/*.egg-info .mypy_cache .pytest_cache .ruff_cache
