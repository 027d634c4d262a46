"""make drift: the whole suite against the newest release of everything, in a throwaway copy.

The tracked files of this tree are copied to a temporary folder; there the Python lock is
upgraded (``uv lock --upgrade``: every package to its newest release within pyproject.toml's
ranges, mypy, ruff and ``anthropic`` included), and every Node package of ``tests/ts`` moves
to its newest release (the oldest-SDK alias excepted: it is the floor on purpose). Then
``make -k test`` runs there, and the report says which versions moved and what broke.
A ceiling in pyproject.toml (``uvicorn<0.56``: code that subclasses a package's internals)
is lifted in the copy first, so the releases past it are tried before the ceiling moves.
Then ``.ci/floors.py`` runs the floors: the other end of every range.
Nothing in this tree changes; the report is written to ``build/drift/report.md``.

Usage: python3 .ci/drift.py [--keep]   (--keep leaves the copy for a closer look)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TS = Path("tests/ts")
REPORT = ROOT / "build" / "drift" / "report.md"


def run(cmd: list[str], cwd: Path, log: Path | None = None) -> int:
    """Run ``cmd``; its output goes to ``log`` (appended) or is shown."""
    print("$", " ".join(cmd), flush=True)
    if log is None:
        return subprocess.run(cmd, cwd=cwd, check=False).returncode
    with log.open("a") as out:
        return subprocess.run(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode


def copy_tree(dest: Path) -> None:
    """The files git tracks (as they are in the working tree) and untracked, unignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def lift_ceilings(pyproject: Path) -> list[str]:
    """Drop the upper bounds of ``[project]`` dependencies in ``pyproject``; return them."""
    text = pyproject.read_text()
    lifted = re.findall(r'^\s*"([A-Za-z0-9_.-]+)[^"]*?,(<[0-9.]+)', text, re.M)
    pyproject.write_text(re.sub(r'^(\s*"[A-Za-z0-9_.-]+[^"]*?),<[0-9.]+', r"\1", text, flags=re.M))
    return [f"{name}{bound}" for name, bound in lifted]


def python_versions(lock: Path) -> dict[str, str]:
    """Package name -> its versions in a uv.lock (a package locked twice lists both)."""
    found: dict[str, list[str]] = {}
    for package in tomllib.loads(lock.read_text())["package"]:
        if "version" in package:
            found.setdefault(package["name"], []).append(package["version"])
    return {name: ", ".join(sorted(set(v))) for name, v in found.items()}


def node_versions(project: Path) -> dict[str, str]:
    """Each direct dependency of a package.json -> the version its package-lock holds."""
    lock = json.loads((project / "package-lock.json").read_text())
    root = lock["packages"][""]
    names = {**root.get("dependencies", {}), **root.get("devDependencies", {})}
    return {n: lock["packages"].get(f"node_modules/{n}", {}).get("version", "?") for n in names}


def upgrade_node(project: Path, log: Path) -> int:
    """Every direct dependency to its newest release, except npm aliases (the floor)."""
    manifest = json.loads((project / "package.json").read_text())
    wanted = [
        f"{name}@latest"
        for group in ("dependencies", "devDependencies")
        for name, spec in manifest.get(group, {}).items()
        if not spec.startswith("npm:")
    ]
    return run(["npm", "install", "--save-exact", "--no-audit", "--no-fund", *wanted], project, log)


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    rows = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, "—"), after.get(name, "—")
        if old != new:
            rows.append(f"| {name} | {old} | {new} |")
    return rows


def failures(log_text: str) -> dict[str, list[str]]:
    """What broke, by kind, read from make -k test's output."""
    engines = re.findall(
        r"^npm warn EBADENGINE\s+package: '([^']+)',\s*\nnpm warn EBADENGINE\s+required: (.*)$",
        log_text,
        re.M,
    )
    found: dict[str, list[str]] = {
        "make steps": re.findall(r"^make(?:\[\d+\])?: \*\*\* \[[^\]]*: (\S+)\]", log_text, re.M),
        "pytest": re.findall(r"^(?:FAILED|ERROR) (\S+)", log_text, re.M),
        "node --test / vitest": re.findall(r"^\s*(?:not ok \d+ - |× |FAIL )(.+)$", log_text, re.M),
        "ruff": re.findall(r"^(\S+\.py:\d+:\d+: [A-Z]+\d+ .*)$", log_text, re.M),
        "mypy": re.findall(r"^(\S+\.py:\d+: error: .*)$", log_text, re.M),
        "tsc": re.findall(r"^(\S+\.ts\(\d+,\d+\): error .*)$", log_text, re.M),
    }
    found["npm engines"] = [f"{name} wants {wants.rstrip(',')}" for name, wants in engines]
    return {kind: sorted(set(items)) for kind, items in found.items() if items}


def report(
    py: list[str], node: list[str], broke: dict[str, list[str]], status: int, took: float
) -> str:
    lines = [
        f"# make drift, {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"`make -k test` with the newest releases: **{'passed' if status == 0 else 'failed'}**"
        f" ({took / 60:.1f} min).",
        "",
        "## Versions that moved (locked → newest)",
        "",
        "| package | locked | newest |",
        "|---|---|---|",
        *(py or ["| (no Python package moved) | | |"]),
        *(node or ["| (no Node package moved) | | |"]),
        "",
        "## What broke",
        "",
    ]
    warnings = {k: v for k, v in broke.items() if k == "npm engines"}
    broke = {k: v for k, v in broke.items() if k not in warnings}
    if not broke:
        lines.append("Nothing." if status == 0 else "See the log: no failure lines were found.")
    for kind, items in broke.items():
        lines += [f"### {kind} ({len(items)})", "", *(f"- `{item}`" for item in items), ""]
    if warnings:
        lines += ["", "## Warnings (a release that asks for more than this machine has)", ""]
        for items in warnings.values():
            lines += [f"- `{item}`" for item in items]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the throwaway copy")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tapedeck-drift-"))
    tree, log = work / "tree", work / "make-test.log"
    started = time.monotonic()
    try:
        copy_tree(tree)
        ceilings = lift_ceilings(tree / "pyproject.toml")
        if ceilings:
            print("ceilings lifted for this run:", ", ".join(ceilings), flush=True)
        py_before = python_versions(tree / "uv.lock")
        node_before = node_versions(tree / TS)
        uv = ROOT / ".venv" / "bin" / "uv"
        if run([str(uv) if uv.exists() else "uv", "lock", "--upgrade"], tree, log) != 0:
            print(log.read_text(), file=sys.stderr)
            return 2
        if upgrade_node(tree / TS, log) != 0:
            print(log.read_text(), file=sys.stderr)
            return 2
        env_make = ["make", "-k", "test", f"PYTHON={sys.executable}"]
        print(f"$ {' '.join(env_make)}  (in {tree}; output: {log})", flush=True)
        with log.open("a") as out:
            status = subprocess.run(
                env_make,
                cwd=tree,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
            ).returncode
        floors_log = work / "floors.log"
        with floors_log.open("w") as out:
            floors = subprocess.run(
                [sys.executable, str(ROOT / ".ci" / "floors.py")],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        text = report(
            changes(py_before, python_versions(tree / "uv.lock")),
            changes(node_before, node_versions(tree / TS)),
            failures(log.read_text(errors="replace")),
            status,
            time.monotonic() - started,
        )
        text += (
            f"\n## Floors (the oldest release of every dependency: .ci/floors.py)\n\n"
            f"**{'passed' if floors == 0 else 'failed'}**; ceilings lifted for the newest run: "
            f"{', '.join(f'`{c}`' for c in ceilings) or 'none'}. Log: floors.log.\n"
        )
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(floors_log, REPORT.parent / "floors.log")
        REPORT.write_text(text)
        shutil.copy2(log, REPORT.parent / "make-test.log")
        print(text)
        print(f"report: {REPORT.relative_to(ROOT)}; the log beside it: make-test.log")
        return 0 if status == 0 and floors == 0 else 1
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
