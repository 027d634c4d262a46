"""The pytest example of docs/faults.md (``# tests/test_rate_limits.py``), run through the plugin
in a project of its own, as a user's would run it. Its TypeScript twin is the Vitest example
project's quota.test.ts, which test_docs_typescript.py checks against the same page."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import CASSETTES, ROOT

pytest_plugins = ["pytester"]

DOC = ROOT / "docs" / "faults.md"
INI = """\
[pytest]
addopts = --strict-markers
filterwarnings =
    error
    ignore:The model .* is deprecated:DeprecationWarning
"""


def doc_block(first_line: str) -> str:
    """The fenced Python block of docs/faults.md whose first line is ``first_line``."""
    for block in re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M):
        if block.startswith(first_line + "\n"):
            return str(block)
    raise AssertionError(f"docs/faults.md lost its {first_line!r} block")


def test_the_documented_rate_limit_tests_pass(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=INI)
    shutil.copytree(CASSETTES, pytester.path / "tests" / "cassettes")
    (pytester.path / "tests" / "test_rate_limits.py").write_text(
        doc_block("# tests/test_rate_limits.py"), encoding="utf-8"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=90)
    result.assert_outcomes(passed=2)
