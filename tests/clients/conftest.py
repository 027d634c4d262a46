"""What the client suites share: where the Node clients are installed, and the environment
every client runs in (no traffic to anywhere but 127.0.0.1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: tests/clients/node, installed by `make clients` (npm ci).
NODE_DIR = Path(os.environ.get("TAPEDECK_CLIENTS_NODE") or Path(__file__).parent / "node")
NODE_BIN = NODE_DIR / "node_modules" / ".bin"
#: The Node.js release the Node clients need (the `node` package of package.json).
NODE = NODE_BIN / "node"


@pytest.fixture(scope="session")
def node_bin() -> Path:
    """The Node clients' ``.bin`` directory (``node``, ``claude``), installed or failing."""
    if not NODE.exists():
        pytest.fail(f"{NODE} is missing: run `make clients` (npm ci in {NODE_DIR})")
    return NODE_BIN
