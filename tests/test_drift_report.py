"""make drift's report, read from a make -k test log: what moved and what broke."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from conftest import ROOT


def drift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("drift", ROOT / ".ci" / "drift.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOG = """\
npm warn EBADENGINE Unsupported engine {
npm warn EBADENGINE   package: 'vitest@5.1.2',
npm warn EBADENGINE   required: { node: '^22.12.0' },
npm warn EBADENGINE   current: { node: 'v20.20.2', npm: '11.19.1' }
server/tapedeck/x.py:3: error: Unused "type: ignore" comment  [unused-ignore]
make: *** [Makefile:37: typecheck] Error 1
FAILED tests/test_faults_stream.py::test_disconnect_after_n_events[0] - anthropic.APIConnectionError
not ok 3 - fault/disconnect/raw
make: *** [Makefile:61: ts-table] Error 1
"""


def test_failures_are_read_by_kind() -> None:
    found = drift().failures(LOG)
    assert found == {
        "make steps": ["ts-table", "typecheck"],
        "pytest": ["tests/test_faults_stream.py::test_disconnect_after_n_events[0]"],
        "node --test / vitest": ["fault/disconnect/raw"],
        "mypy": ['server/tapedeck/x.py:3: error: Unused "type: ignore" comment  [unused-ignore]'],
        "npm engines": ["vitest@5.1.2 wants { node: '^22.12.0' }"],
    }


def test_the_report_lists_what_moved_what_broke_and_the_warnings() -> None:
    module = drift()
    moved = module.changes(
        {"anthropic": "2.16.0", "mypy": "2.4.1"}, {"anthropic": "2.17.0", "mypy": "2.4.1"}
    )
    assert moved == ["| anthropic | 2.16.0 | 2.17.0 |"]
    text = module.report(moved, [], module.failures(LOG), 2, 90)
    assert "**failed**" in text
    assert "| anthropic | 2.16.0 | 2.17.0 |" in text
    assert "### pytest (1)" in text
    broke, warnings = text.split("## Warnings")
    assert "vitest@5.1.2" not in broke
    assert "vitest@5.1.2" in warnings


def test_a_clean_run_says_nothing_broke() -> None:
    module = drift()
    assert "## What broke\n\nNothing." in module.report([], [], {}, 0, 60)
