"""The README's first screens, as a new user follows them: the two commands come first, and
"Your first recorded test" records against a stand-in upstream, then replays with the upstream
gone, its fault examples included."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from fake_upstream import FakeUpstream

pytest_plugins = ["pytester"]

README = ROOT / "README.md"
INI = """\
[pytest]
filterwarnings =
    error
    ignore:The model .* is deprecated:DeprecationWarning
"""
GONE = "http://127.0.0.1:9"
KEY = "sk-ant-api03-readme-" + "x" * 40


def readme_block(first_line: str) -> str:
    """The fenced block of the README whose first line (dedented) is ``first_line``."""
    text = README.read_text(encoding="utf-8")
    for indent, block in re.findall(r"^( *)```\w*\n(.*?)^\1```", text, re.S | re.M):
        lines = [line.removeprefix(indent) for line in block.splitlines()]
        if lines and lines[0] == first_line:
            return "\n".join(lines) + "\n"
    raise AssertionError(f"README.md lost its {first_line!r} block")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=60)


def test_the_readme_opens_with_the_two_commands() -> None:
    opening = README.read_text(encoding="utf-8").split("\n\n")[1]
    assert opening.startswith("```sh\nmake run ")
    assert "\nmake test " in opening


def test_the_first_recorded_test_records_then_replays_without_the_network(
    pytester: pytest.Pytester, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".ini", pytest=INI)
    tests = pytester.path / "tests"
    tests.mkdir()
    (tests / "test_hello.py").write_text(readme_block("# tests/test_hello.py"), encoding="utf-8")

    monkeypatch.setenv("TAPEDECK_UPSTREAM", fake.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    recorded = run(pytester, "--tapedeck-mode", "once")
    recorded.assert_outcomes(passed=1)
    cassette = tests / "cassettes" / "test_hello" / "test_says_hello.yaml"
    assert cassette.is_file(), "the README names this file as the recording"
    assert fake.count == 1
    assert KEY not in cassette.read_text(encoding="utf-8")
    # The terminal summary lists the cassettes the run wrote, as the README shows it.
    shown = readme_block("=" * 25 + " tapedeck: recorded cassettes " + "=" * 25)
    recorded.stdout.fnmatch_lines(shown.splitlines())

    # Replay: no key, no upstream; the fault examples answer from the same recording.
    monkeypatch.setenv("TAPEDECK_UPSTREAM", GONE)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    (tests / "test_faults.py").write_text(readme_block("# tests/test_faults.py"), encoding="utf-8")
    run(pytester).assert_outcomes(passed=3)
    assert fake.count == 1


def test_the_server_docs_count_the_shipped_cassettes_alike() -> None:
    text = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
    shipped = len(list((ROOT / "cassettes").rglob("*.yaml")))
    health = re.findall(r'"cassettes": (\d+)\}', text)
    start = re.findall(r"mode on http://\S+ (\d+) cassettes from", text)
    assert health
    assert start
    assert {int(n) for n in health + start} == {shipped}


def test_no_page_tells_a_user_to_install_from_the_index_before_it_is_published() -> None:
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for paragraph in page.read_text(encoding="utf-8").split("\n\n"):
            if "install tapedeck-mock" in paragraph:
                assert "published" in paragraph, f"{page.name}: {paragraph.strip()}"
