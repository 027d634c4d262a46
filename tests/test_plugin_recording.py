"""Recording through the pytest plugin, as a user project does it: each test's own cassette,
record modes, every setting from where a project keeps its settings, and the examples of
docs/pytest.md's "Recording fixtures" — recorded against a stand-in upstream, then passing
with the upstream gone."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from fake_upstream import FakeUpstream

pytest_plugins = ["pytester"]

DOC = ROOT / "docs" / "pytest.md"
INI = """\
[pytest]
filterwarnings =
    error
    ignore:The model .* is deprecated:DeprecationWarning
"""
GONE = "http://127.0.0.1:9"


def doc_block(first_line: str) -> str:
    """The fenced block of docs/pytest.md whose first line is ``first_line``."""
    for block in re.findall(r"^```\w*\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M):
        if block.startswith(first_line + "\n"):
            return str(block)
    raise AssertionError(f"docs/pytest.md lost its {first_line!r} block")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=60)


def user_project(pytester: pytest.Pytester, upstream_url: str) -> Path:
    """The documented project: pyproject.toml, tests/test_weather.py, no cassettes yet."""
    pytester.makefile(".ini", pytest=INI)
    pyproject = doc_block("# pyproject.toml").replace("https://api.anthropic.com", upstream_url)
    (pytester.path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_weather.py").write_text(
        doc_block("# tests/test_weather.py"), encoding="utf-8"
    )
    return pytester.path


def cassettes(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml"))


def test_the_documented_project_records_once_then_replays_without_the_upstream(
    pytester: pytest.Pytester, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    root = user_project(pytester, upstream.base_url)

    run(pytester, "--tapedeck-mode", "once").assert_outcomes(passed=2)

    assert cassettes(root) == [
        "tests/cassettes/test_weather/test_counts_tokens.yaml",
        "tests/cassettes/test_weather/test_streams_an_answer.yaml",
    ]
    assert upstream.count == 2
    run(pytester, "--tapedeck-mode", "once").assert_outcomes(passed=2)  # exists: replayed
    assert upstream.count == 2

    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(upstream.base_url, GONE))
    replayed = run(pytester)  # CI: the default mode, and nothing to call
    replayed.assert_outcomes(passed=2)
    assert upstream.count == 2


def test_new_episodes_with_a_named_cassette_keeps_the_first_runs_turns(
    pytester: pytest.Pytester, upstream: FakeUpstream
) -> None:
    pytester.makefile(".ini", pytest=INI)
    (pytester.path / "tests").mkdir()
    conversation = """
import pytest

@pytest.mark.tapedeck(cassette="convo")
def test_talk(tapedeck):
    client = tapedeck.client()
    for text in {turns}:
        reply = client.messages.create(
            model="m", max_tokens=16, messages=[{{"role": "user", "content": text}}]
        )
        assert reply.content[0].text == text
"""
    test = pytester.path / "tests" / "test_talk.py"
    test.write_text(conversation.format(turns=["turn one"]))
    flags = ["--tapedeck-mode", "auto", "-o", f"tapedeck_upstream={upstream.base_url}"]
    run(pytester, *flags).assert_outcomes(passed=1)
    test.write_text(conversation.format(turns=["turn one", "turn two"]))
    run(pytester, *flags).assert_outcomes(passed=1)

    recorded = yaml.safe_load((pytester.path / "tests/cassettes/convo.yaml").read_text())
    asked = [i["request"]["body"]["messages"][0]["content"] for i in recorded["interactions"]]
    assert asked == ["turn one", "turn two"]
    assert upstream.count == 2
    run(pytester, "-o", f"tapedeck_upstream={GONE}").assert_outcomes(passed=1)


SETTINGS_TEST = """
def test_settings(tapedeck_server):
    settings = tapedeck_server.settings
    print("SETTINGS", settings.upstream, settings.sequence_end, settings.port != 8999)
"""


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("yaml", "http://from-yaml.invalid repeat"),
        ("pyproject", "http://from-pyproject.invalid error"),
        ("ini", "http://from-ini.invalid repeat"),
        ("env", "http://from-env.invalid repeat"),
        ("fixture", "http://from-fixture.invalid error"),
    ],
)
def test_every_setting_from_where_a_project_keeps_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str, expected: str
) -> None:
    """Each source given alone reaches the server; ``port`` from the project file does not
    (it is ``tapedeck serve``'s), so sessions never collide on a port."""
    pytester.makefile(".ini", pytest=INI)
    pytester.makepyfile(test_settings=SETTINGS_TEST)
    (pytester.path / "cassettes").mkdir()
    if where == "yaml":
        (pytester.path / "tapedeck.yaml").write_text(
            "upstream: http://from-yaml.invalid\nport: 8999\n"
        )
    elif where == "pyproject":
        (pytester.path / "pyproject.toml").write_text(
            '[tool.tapedeck]\nupstream = "http://from-pyproject.invalid"\n'
            'sequence_end = "error"\nport = 8999\n'
        )
    elif where == "ini":
        pytester.makefile(".ini", pytest=INI + "tapedeck_upstream = http://from-ini.invalid\n")
    elif where == "env":
        monkeypatch.setenv("TAPEDECK_UPSTREAM", "http://from-env.invalid")
        monkeypatch.setenv("TAPEDECK_PORT", "8999")
    else:
        pytester.makeconftest(
            """
            import pytest

            @pytest.fixture(scope="session")
            def tapedeck_config():
                return {"upstream": "http://from-fixture.invalid", "sequence_end": "error"}
            """
        )
    result = run(pytester, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*SETTINGS {expected} True*"])


def test_the_nearest_project_file_is_found_from_a_subfolder(pytester: pytest.Pytester) -> None:
    (pytester.path / "tapedeck.yaml").write_text("upstream: http://from-yaml.invalid\n")
    (pytester.path / "cassettes").mkdir()  # the project's, beside its tapedeck.yaml
    sub = pytester.path / "service" / "tests"
    sub.mkdir(parents=True)
    (sub / "pytest.ini").write_text(INI)
    (sub / "test_settings.py").write_text(SETTINGS_TEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "test_settings.py"],
        cwd=sub,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SETTINGS http://from-yaml.invalid repeat True" in result.stdout


def test_a_bad_setting_names_where_it_came_from(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".ini", pytest=INI + "tapedeck_sequence_end = sometimes\n")
    pytester.makepyfile(test_settings=SETTINGS_TEST)
    (pytester.path / "cassettes").mkdir()
    bad_ini = run(pytester)
    assert bad_ini.ret == pytest.ExitCode.USAGE_ERROR
    bad_ini.stderr.fnmatch_lines(["*tapedeck: ini tapedeck_sequence_end: expected one of*"])

    pytester.makefile(".ini", pytest=INI)
    (pytester.path / "pyproject.toml").write_text('[tool.tapedeck]\n\ntiming = "fast"\n')
    bad_file = run(pytester)
    bad_file.stderr.fnmatch_lines(["*pyproject.toml:3: timing: invalid timing 'fast'*"])

    (pytester.path / "pyproject.toml").unlink()
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def tapedeck_config():
            return {"mode": "sometimes"}
        """
    )
    bad_fixture = run(pytester)
    bad_fixture.assert_outcomes(errors=1)
    bad_fixture.stdout.fnmatch_lines(["*tapedeck_config?'mode'?: expected one of*"])
    assert "During handling" not in bad_fixture.stdout.str()


def test_the_documented_conftest_and_its_hook(
    pytester: pytest.Pytester, upstream: FakeUpstream
) -> None:
    pytester.makefile(".ini", pytest=INI)
    (pytester.path / "tests").mkdir()
    conftest = doc_block("# tests/conftest.py").replace(
        "https://api.anthropic.com", upstream.base_url
    )
    (pytester.path / "tests" / "conftest.py").write_text(conftest)
    (pytester.path / "tests" / "test_user.py").write_text(
        """
def test_settings_and_hook(tapedeck, tapedeck_server):
    assert str(tapedeck_server.settings.sequence_end) == "error"
    reply = tapedeck.client().messages.create(
        model="m", max_tokens=16, metadata={"user_id": "user-1234"},
        messages=[{"role": "user", "content": "account acct-123456"}],
    )
    assert reply.content[0].text == "account acct-123456"
"""
    )
    run(pytester, "--tapedeck-mode", "once").assert_outcomes(passed=1)
    (cassette,) = (pytester.path / "tests" / "cassettes").rglob("*.yaml")
    text = cassette.read_text()
    assert "user-1234" not in text  # the hook dropped it
    assert "123456" not in text  # the pattern replaced it
    assert "[REDACTED]" in text


def test_unused_cassettes_are_listed_at_the_end(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=INI)
    cassettes_dir = pytester.path / "tests" / "cassettes"
    (cassettes_dir / "streaming").mkdir(parents=True)
    for name in ("hello", "tool-use"):
        source = ROOT / "cassettes" / "streaming" / f"{name}.yaml"
        (cassettes_dir / "streaming" / f"{name}.yaml").write_text(source.read_text())
    (pytester.path / "tests" / "test_hello.py").write_text(
        """
def test_hello(tapedeck):
    with tapedeck.client().messages.stream(
        model="claude-sonnet-4-5", max_tokens=256,
        messages=[{"role": "user", "content": "Hello"}],
    ) as stream:
        assert stream.get_final_text() == "Hello!"
"""
    )
    result = run(pytester, "--tapedeck-unused")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tapedeck: unused cassettes*", "streaming/tool-use: *"])
    assert "streaming/hello:" not in result.stdout.str()


def test_the_cassette_tools_find_a_projects_cassettes_without_flags(tmp_path: Path) -> None:
    (tmp_path / "tests" / "cassettes" / "streaming").mkdir(parents=True)
    hello = ROOT / "cassettes" / "streaming" / "hello.yaml"
    (tmp_path / "tests" / "cassettes" / "streaming" / "hello.yaml").write_text(hello.read_text())
    tapedeck = Path(sys.executable).with_name("tapedeck")

    for command in (["ls"], ["lint"], ["show", "streaming/hello"]):
        done = subprocess.run(
            [str(tapedeck), *command], cwd=tmp_path / "tests", capture_output=True, text=True
        )
        assert done.returncode == 0, (command, done.stderr)
        assert "streaming/hello" in done.stdout or "1 cassette" in done.stdout, done.stdout


THREE_ANSWERS = """
import anthropic
import pytest


def ask(client, text):
    messages = [{"role": "user", "content": text}]
    return client.messages.create(model="m", max_tokens=16, messages=messages)


def test_three_answers(tapedeck):
    client = tapedeck.client(max_retries=0)
    assert ask(client, "hello there").content[0].text == "hello there"
    with pytest.raises(anthropic.AuthenticationError):
        ask(client, "refused please")
    with pytest.raises(anthropic.APIStatusError):
        ask(client, "overloaded now")
    assert False, "failed on purpose: its report section shows each request"


def test_refused_only(tapedeck):
    with pytest.raises(anthropic.AuthenticationError):
        ask(tapedeck.client(max_retries=0), "refused again")
"""
REFUSED = (
    "the upstream refused the key (401): 401 and 403 answers are never recorded; "
    "nothing was written"
)


def test_a_recording_run_says_what_it_did_with_every_answer(
    pytester: pytest.Pytester, upstream: FakeUpstream
) -> None:
    """The report line of an answer that was not recorded says so and why, as the log
    warning does; the end of the run lists the cassettes written, new or changed."""
    pytester.makefile(".ini", pytest=INI)
    (pytester.path / "cassettes").mkdir()
    pytester.makepyfile(test_rec=THREE_ANSWERS)
    flags = ["-o", f"tapedeck_upstream={upstream.base_url}", "--tapedeck-cassettes", "cassettes"]
    own = "test_rec/test_three_answers"

    first = run(pytester, "--tapedeck-mode", "once", *flags)
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(
        [
            "*- tapedeck -*",
            f"POST /v1/messages 200 upstream, recorded into {own} (1 interaction), end complete, *",
            f"POST /v1/messages 401 upstream, not recorded into {own}: {REFUSED}, end complete, *",
            f"POST /v1/messages 529 upstream, not recorded into {own}: the upstream answered 529: "
            "a transient failure is recorded only with record_errors; nothing was written, *",
        ]
    )
    first.stdout.fnmatch_lines([f"WARNING *not recorded into {own}: {REFUSED} (a cassette *"])
    summary = [
        "*= tapedeck: recorded cassettes =*",
        f"new: cassettes/{own}.yaml (1 interaction)",
        f"not written: cassettes/test_rec/test_refused_only.yaml: {REFUSED}",
        "1 cassette(s) written (1 new, 0 changed), 1 not written",
    ]
    first.stdout.fnmatch_lines(summary)
    assert "recorded into test_rec/test_refused_only" not in first.stdout.str()
    assert cassettes(pytester.path) == [f"cassettes/{own}.yaml"]
    recorded = yaml.safe_load((pytester.path / f"cassettes/{own}.yaml").read_text())
    assert [i["response"]["status"] for i in recorded["interactions"]] == [200]

    again = run(pytester, "--tapedeck-mode", "all", *flags)
    again.stdout.fnmatch_lines(
        [summary[0], f"changed: cassettes/{own}.yaml (1 interaction)", summary[2]]
    )
    replayed = run(pytester, *flags)  # the default mode records nothing: no such section
    assert "tapedeck: recorded cassettes" not in replayed.stdout.str()
    replayed.stdout.fnmatch_lines([f"POST /v1/messages 200 cassette {own}#0, *"])
