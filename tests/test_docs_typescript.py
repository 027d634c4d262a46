"""The TypeScript files the docs show are the files of the Vitest example project that ``make ts``
runs: docs/typescript.md shows the project, docs/faults.md its quota test. And the SDK releases
the docs say CI checks are the ones the locks install."""

from __future__ import annotations

import json
import re
import tomllib
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


def checked_releases() -> dict[str, str]:
    """The SDK releases CI runs the conformance table with: the newest and the oldest supported
    ``anthropic`` in uv.lock, and the two ``@anthropic-ai/sdk`` in tests/ts/package.json."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    python = sorted(
        (p["version"] for p in lock["package"] if p["name"] == "anthropic"),
        key=lambda v: tuple(int(n) for n in v.split(".")),
    )
    pins = json.loads((ROOT / "tests" / "ts" / "package.json").read_text(encoding="utf-8"))
    typescript = pins["dependencies"]
    return {
        "anthropic newest": python[-1],
        "anthropic oldest": python[0],
        "@anthropic-ai/sdk newest": typescript["@anthropic-ai/sdk"],
        "@anthropic-ai/sdk oldest": typescript["anthropic-sdk-floor"].rpartition("@")[2],
    }


def test_the_docs_name_the_sdk_releases_ci_checks() -> None:
    releases = checked_releases()
    assert len(set(releases.values())) == 4, releases
    pages = [
        DOCS / "faults.md",
        DOCS / "typescript.md",
        ROOT / "tests" / "conformance" / "README.md",
    ]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for which, release in releases.items():
            named = rf"(?<![\w.]){re.escape(release)}(?!\.?\d)"
            assert re.search(named, text), f"{page.name} does not name {which}: {release}"


def test_faults_md_has_every_release_range_of_the_conformance_table() -> None:
    """Where the table says an outcome changed with a release, docs/faults.md's SDK columns
    say so: they name the release and the class on each side of it."""
    table = json.loads((ROOT / "tests" / "conformance" / "cases.json").read_text("utf-8"))
    text = (DOCS / "faults.md").read_text(encoding="utf-8")
    missing = set()
    for case in table["cases"] + table["round_trip"]:
        for step in case.get("steps") or [case]:
            for sdk in ("python", "typescript"):
                entries = step.get(sdk, case.get(sdk))
                for entry in entries if isinstance(entries, list) else [entries or {}]:
                    if "releases" not in entry:
                        continue
                    bounds = re.findall(r"\d+(?:\.\d+)*", entry["releases"])
                    for named in [*bounds, entry.get("error")]:
                        if named and not re.search(rf"(?<![\w.]){re.escape(named)}\b", text):
                            missing.add(f"{case['id']} ({sdk}): {named}")
    assert not missing, sorted(missing)
