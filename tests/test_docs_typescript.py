"""The TypeScript files the docs show are the files of the Vitest example project that ``make ts``
runs: docs/typescript.md shows the project, docs/faults.md its quota test."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

DOCS = ROOT / "docs"
EXAMPLE = ROOT / "tests" / "ts" / "example"
#: Which page shows which of the example's files.
SHOWN_IN = {"quota.test.ts": "faults.md"}


def doc_files(doc: Path) -> dict[str, str]:
    """The TypeScript blocks of ``doc`` that start with ``// FILE.ts``, by file."""
    blocks = re.findall(r"^```ts\n(.*?)^```", doc.read_text(encoding="utf-8"), re.S | re.M)
    return {
        block.splitlines()[0][3:]: block
        for block in blocks
        if block.startswith("// ") and block.splitlines()[0].endswith(".ts")
    }


def test_the_documented_files_are_the_example_project() -> None:
    files = {p.name for p in EXAMPLE.glob("*.ts")}
    for page in {*SHOWN_IN.values(), "typescript.md"}:
        shown = doc_files(DOCS / page)
        assert set(shown) == {f for f in files if SHOWN_IN.get(f, "typescript.md") == page}, page
        for name, text in shown.items():
            assert text == (EXAMPLE / name).read_text(encoding="utf-8"), f"docs/{page}: {name}"


def test_each_example_file_names_itself_on_its_first_line() -> None:
    for path in EXAMPLE.glob("*.ts"):
        assert path.read_text(encoding="utf-8").startswith(f"// {path.name}\n"), path.name
