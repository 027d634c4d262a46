"""The package's import contracts (pyproject.toml's [tool.importlinter], run by make lint)
hold on the tree, and fail on a copy of it with an upward import, a circle or a package no
layer names: a contract that stopped checking would pass all three."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "server" / "tapedeck"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(source: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts, on the ``tapedeck`` found under ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint(ROOT / "server")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _import_into(relative: str, line: str) -> Callable[[Path], None]:
    def change(package: Path) -> None:
        module = package / relative
        text = module.read_text()
        module.write_text(
            text.replace(
                "from __future__ import annotations\n",
                f"from __future__ import annotations\n\n{line}\n",
                1,
            )
        )

    return change


def _new_package(package: Path) -> None:
    (package / "extras").mkdir()
    (package / "extras" / "__init__.py").write_text('"""Placed in no layer."""\n')


@pytest.mark.parametrize(
    ("change", "said"),
    [
        pytest.param(
            _import_into("wire/sse.py", "from ..cassette.model import Cassette"),
            "tapedeck.wire is not allowed to import tapedeck.cassette",
            id="upward-import",
        ),
        pytest.param(
            _import_into("observe/journal.py", "from ..server import handler"),
            "tapedeck.observe is not allowed to import tapedeck.server",
            id="observe-into-server",
        ),
        pytest.param(
            _import_into("cli.py", "from . import pytest_plugin"),
            "tapedeck.cli is not allowed to import tapedeck.pytest_plugin",
            id="ways-in-independent",
        ),
        pytest.param(
            _import_into("tools/common.py", "from . import listing"),
            "No cycles are allowed in tapedeck.tools",
            id="circle",
        ),
        pytest.param(
            _import_into("cassette/save.py", "import httpx"),
            "tapedeck.cassette is not allowed to import httpx",
            id="cassette-over-http",
        ),
        pytest.param(_new_package, "tapedeck.extras", id="unplaced-package"),
    ],
)
def test_a_broken_contract_fails_lint(
    tmp_path: Path, change: Callable[[Path], None], said: str
) -> None:
    copy = tmp_path / "tapedeck"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    change(copy)
    result = lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert said in " ".join(result.stdout.split()), result.stdout
