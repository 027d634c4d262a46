"""docs/observe.md, run: its test files through pytester (the plugin installed as a user has
it), its script, its journal entry, its metrics table and its scrape configuration."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import CASSETTES, ROOT
from tapedeck.server.runner import ServerThread

pytest_plugins = ["pytester"]

DOC = ROOT / "docs" / "observe.md"
TEXT = DOC.read_text(encoding="utf-8")
INI = """\
[pytest]
addopts = --strict-markers
filterwarnings =
    error
    ignore:The model .* is deprecated:DeprecationWarning
"""


def fenced() -> list[tuple[int, str, str]]:
    """Every fenced block of the page: (offset of its opening fence, language, text)."""
    found = []
    for match in re.finditer(r"^```([a-z]*)\n(.*?)^```$", TEXT, re.S | re.M):
        found.append((match.start(), match.group(1), match.group(2)))
    return found


def blocks(language: str) -> list[str]:
    return [text for _, lang, text in fenced() if lang == language]


def named(language: str) -> dict[str, str]:
    """The blocks that start with ``# NAME``, by name."""
    found = {}
    for block in blocks(language):
        first = block.splitlines()[0]
        if first.startswith("# "):
            found[first[2:]] = block
    return found


def shown_after(marker: str) -> list[str]:
    """The lines of the first plain block after ``marker`` in the page."""
    at = TEXT.index(marker)
    return next(text for start, lang, text in fenced() if start > at and not lang).splitlines()


def project(pytester: pytest.Pytester) -> Path:
    pytester.makefile(".ini", pytest=INI)
    shutil.copytree(CASSETTES, pytester.path / "tests" / "cassettes")
    return pytester.path


def test_the_documented_tests_and_the_report_of_the_one_that_fails(
    pytester: pytest.Pytester,
) -> None:
    root = project(pytester)
    for name in ("tests/test_calls.py", "tests/test_report.py"):
        (root / name).write_text(named("python")[name])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=60)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_report.py::test_fails_and_shows_its_requests FAILED*"])
    output = result.stdout.lines
    sections = [i for i, line in enumerate(output) if re.fullmatch(r"-+ tapedeck -+", line)]
    (header,) = sections  # the failed test's only: those that passed get none
    shown = shown_after("# tests/test_report.py")
    assert re.fullmatch(r"-+ tapedeck -+", shown[0])

    def timeless(line: str) -> str:
        return re.sub(r"\d+\.\d ms$", "N ms", line)

    got = [timeless(line) for line in output[header + 1 : header + len(shown)]]
    assert got == [timeless(line) for line in shown[1:]]


def test_the_documented_script(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    shutil.copytree(CASSETTES, root / "cassettes")
    (root / "watch_journal.py").write_text(named("python")["watch_journal.py"])
    result = pytester.run(sys.executable, "watch_journal.py", timeout=60)
    assert result.ret == 0, result.stderr.str()
    assert result.stdout.lines == shown_after("# watch_journal.py")


def test_the_documented_entry_is_what_the_journal_holds(server: ServerThread) -> None:
    (documented,) = [json.loads(b) for b in blocks("json")]
    request = documented["request"]
    headers = {
        **request["headers"],
        "x-api-key": "sk-ant-api03-documented",
        "x-tapedeck-test-id": f"{documented['test_id']} (docs)",
        "x-tapedeck-fault": documented["faults"][0]["spec"],
    }
    httpx.post(f"{server.base_url}/v1/messages", json=request["body"], headers=headers)
    journal = f"{server.base_url}/_tapedeck/journal"
    (entry,) = httpx.get(journal, params={"test_id": headers["x-tapedeck-test-id"]}).json()[
        "entries"
    ]
    assert list(entry) == list(documented)
    varies = ("id", "at", "test_id", "duration_ms")
    assert {k: v for k, v in entry.items() if k not in varies} == {
        k: v for k, v in documented.items() if k not in varies
    }
    fields = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)?(?:, `([a-z_]+)`)? \|", TEXT, re.M)
    listed = {name for row in fields for name in row if name}
    assert set(entry) <= listed  # every field is described


def documented_metrics() -> list[str]:
    section = TEXT[TEXT.index("## Prometheus metrics") : TEXT.index("## The web view")]
    return re.findall(r"^\| `(tapedeck_[a-z_]+)` \|", section, re.M)


def scrape(server: ServerThread, path: str = "/metrics") -> dict[str, Any]:
    text = httpx.get(f"{server.base_url}{path}", timeout=10).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_metric_is_documented_and_served(server: ServerThread) -> None:
    names = documented_metrics()
    families = scrape(server)
    ours = {name for name in families if name.startswith("tapedeck_")}
    assert {n.removesuffix("_total") for n in names} == ours


def test_the_scrape_config_scrapes_tapedeck(server: ServerThread) -> None:
    config = yaml.safe_load(named("yaml")["prometheus.yml"])
    (job,) = config["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    assert target == "127.0.0.1:8765"  # tapedeck serve's default address
    families = scrape(server, job["metrics_path"])
    assert "tapedeck_requests" in families


def test_the_documented_scrape_output(make_server: Any) -> None:
    shown = shown_after("and what it reads, after one replayed stream:")
    with make_server() as s:
        body = {"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
                "messages": [{"role": "user", "content": "Hello"}]}  # fmt: skip
        httpx.post(f"{s.base_url}/v1/messages", json=body, timeout=10)
        lines = httpx.get(f"{s.base_url}/metrics", timeout=10).text.splitlines()
    for line in shown:
        assert line in lines
