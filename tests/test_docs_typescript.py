"""docs/typescript.md shows the files of the Vitest example project that ``make ts`` runs."""

from __future__ import annotations

import re

from conftest import ROOT

DOC = ROOT / "docs" / "typescript.md"
EXAMPLE = ROOT / "tests" / "ts" / "example"


def doc_files() -> dict[str, str]:
    """The TypeScript blocks of docs/typescript.md that start with ``// FILE.ts``, by file."""
    blocks = re.findall(r"^```ts\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    return {
        block.splitlines()[0][3:]: block
        for block in blocks
        if block.startswith("// ") and block.splitlines()[0].endswith(".ts")
    }


def test_the_documented_files_are_the_example_project() -> None:
    shown = doc_files()
    assert set(shown) == {p.name for p in EXAMPLE.glob("*.ts")}
    for name, text in shown.items():
        assert text == (EXAMPLE / name).read_text(encoding="utf-8"), f"docs/typescript.md: {name}"


def test_each_example_file_names_itself_on_its_first_line() -> None:
    for path in EXAMPLE.glob("*.ts"):
        assert path.read_text(encoding="utf-8").startswith(f"// {path.name}\n"), path.name
