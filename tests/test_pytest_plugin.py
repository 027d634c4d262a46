"""The pytest plugin (loaded through its pytest11 entry point) and ``tapedeck.serve()``.

The plugin runs in pytester subprocesses, so that it is loaded exactly as in a user's project:
by being installed. Their test files are the examples of docs/pytest.md.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import anthropic
import pytest

import tapedeck
from conftest import CASSETTES, HELLO, ROOT
from tapedeck.pytest_plugin import Tapedeck, make_test_id
from tapedeck.shaping.timing import Timing

pytest_plugins = ["pytester"]

DOC = ROOT / "docs" / "pytest.md"
INI = """\
[pytest]
addopts = --strict-markers
filterwarnings =
    error
    ignore:The model .* is deprecated:DeprecationWarning
"""


def doc_files() -> dict[str, str]:
    """The Python blocks of docs/pytest.md that start with ``# PATH``, by path."""
    blocks = re.findall(r"^ *```python\n(.*?)^ *```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    files = {}
    for block in blocks:
        lines = block.splitlines()
        indent = len(lines[0]) - len(lines[0].lstrip())
        text = "\n".join(line[indent:] for line in lines) + "\n"
        first = text.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            files[first[2:]] = text
    return files


def project(pytester: pytest.Pytester, cassettes_at: str | None = "tests/cassettes") -> Path:
    """A pytester directory with an ini file and, at ``cassettes_at``, the shipped cassettes."""
    pytester.makefile(".ini", pytest=INI)
    if cassettes_at is not None:
        shutil.copytree(CASSETTES, pytester.path / cassettes_at)
    return pytester.path


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=60)


def test_the_documented_examples_pass(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    # The recording example and the conftest run in tests of their own
    # (test_plugin_recording.py): they need an upstream and settings of their own.
    own = {"tests/test_weather.py", "tests/conftest.py"}
    tests = {p: t for p, t in doc_files().items() if p.startswith("tests/") and p not in own}
    assert set(tests) == {
        "tests/test_hello.py",
        "tests/test_faults.py",
        "tests/test_marker.py",
        "tests/test_async.py",
        "tests/test_options.py",
    }
    assert own <= set(doc_files())
    for path, text in tests.items():
        (root / path).write_text(text, encoding="utf-8")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=14)
    assert "tapedeck could not start" not in result.stdout.str()


def test_cassettes_option_and_the_cassettes_fallback(pytester: pytest.Pytester) -> None:
    root = project(pytester, cassettes_at="cassettes")
    shutil.copytree(CASSETTES / "errors", root / "elsewhere" / "errors")
    pytester.makepyfile(
        test_dir="""
        def test_dir(tapedeck, tapedeck_server, pytestconfig):
            given = pytestconfig.getoption("tapedeck_cassettes")
            assert tapedeck_server.settings.cassettes.name == (given or "cassettes")
            assert len(tapedeck_server.library) == (2 if given else 7)
        """
    )
    run(pytester, "test_dir.py").assert_outcomes(passed=1)
    run(pytester, "test_dir.py", "--tapedeck-cassettes=elsewhere").assert_outcomes(passed=1)
    missing = run(pytester, "test_dir.py", "--tapedeck-cassettes=missing")
    missing.assert_outcomes(errors=1)
    missing.stdout.fnmatch_lines(["*tapedeck could not start: *missing*not a directory*"])


def test_invalid_options_and_markers_are_reported(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_marker="""
        import pytest

        @pytest.mark.tapedeck(casette="streaming/hello")
        def test_typo(tapedeck):
            pass

        def test_without_the_fixture():
            pass
        """
    )
    bad_mode = run(pytester, "--tapedeck-mode=bogus")
    assert bad_mode.ret == pytest.ExitCode.USAGE_ERROR
    bad_mode.stderr.fnmatch_lines(["*tapedeck: --tapedeck-mode: expected one of 'none'*bogus*"])
    bad_timing = run(pytester, "--tapedeck-timing=fast")
    bad_timing.stderr.fnmatch_lines(["*tapedeck: --tapedeck-timing: invalid timing 'fast'*"])
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.tapedeck: unknown argument(s) casette*"])


def test_the_documented_script_runs(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    (root / "check_hello.py").write_text(doc_files()["check_hello.py"], encoding="utf-8")
    result = pytester.run(sys.executable, "check_hello.py", timeout=60)
    assert result.ret == 0, result.stderr.str()
    assert result.stdout.lines == [
        "Hello!",
        "serve(timing=...): invalid timing 'fast': expected 'recorded', 'speed=F' (F > 0), "
        "'fixed=MS' (MS >= 0) or 'instant'",
    ]


def test_serve_parses_settings_like_the_command_line() -> None:
    with tapedeck.serve(
        cassettes=CASSETTES, mode="AUTO", timing="speed=10", faults="ping:every=5"
    ) as server:
        assert str(server.settings.mode) == "new_episodes"
        assert server.settings.timing == Timing.parse("speed=10")
        assert [f.text for f in server.settings.faults] == ["ping:every=5"]
        assert server.settings.port == 0
        assert server.base_url.startswith("http://127.0.0.1:")
    with tapedeck.serve(
        str(CASSETTES), timing=Timing.parse("instant"), sequence_end="error"
    ) as server:
        assert str(server.settings.sequence_end) == "error"
        with (
            anthropic.Anthropic(base_url=server.base_url, api_key="test") as client,
            client.messages.stream(**HELLO) as stream,
        ):
            assert stream.get_final_text() == "Hello!"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timing": "fast"}, "serve(timing=...): invalid timing 'fast': expected 'recorded'"),
        ({"mode": "replya"}, "serve(mode=...): expected one of 'none'"),
        ({"faults": "bogus"}, "serve(faults=...): fault 'bogus': unknown kind 'bogus'"),
        ({"port": -1}, "serve(port=...): expected a port number"),
        ({"sequnce_end": "error"}, "unknown setting(s) 'sequnce_end' (known settings: mode,"),
    ],
)
def test_serve_refuses_invalid_settings(settings: dict[str, object], message: str) -> None:
    with (
        pytest.raises(tapedeck.ConfigError, match=re.escape(message)),
        tapedeck.serve(cassettes=CASSETTES, **settings),  # type: ignore[arg-type]
    ):
        pass


def test_teardown_drops_faults_and_rewinds() -> None:
    with tapedeck.serve(cassettes=CASSETTES, timing="instant") as server:
        deck = Tapedeck(server, "test-a", cassette="streaming/hello")
        assert deck.set_faults("status:code=529") == "status:code=529"
        with pytest.raises(ValueError, match="unknown kind 'bogus'"):
            deck.set_faults("bogus")
        client = deck.client(max_retries=0)
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(**HELLO, stream=True)
        other = Tapedeck(server, "test-b").client(max_retries=0)
        with other.messages.stream(**HELLO) as stream:
            assert stream.get_final_text() == "Hello!"  # test-a's faults are test-a's only
        deck.close()
        assert client.is_closed()
        again = Tapedeck(server, "test-a")
        assert again.set_faults(None) == "none"
        again.close()  # DELETE: test-a falls back to the server-wide faults (none)
        with other.messages.stream(**HELLO) as stream:
            assert stream.get_final_text() == "Hello!"
        other.close()


def test_test_ids_are_header_safe_and_unique() -> None:
    assert make_test_id("tests/test_a.py::test_b[1-x]") == "tests/test_a.py::test_b[1-x]"
    odd = make_test_id("tests/test_a.py::test_b[héllo wörld]")
    assert odd.isascii()
    assert " " not in odd
    assert odd != make_test_id("tests/test_a.py::test_b[hallo wörld]")
    assert len(make_test_id("t::" + "x" * 500)) < 200


def test_the_plugin_sends_the_admin_token_it_is_given(pytester: pytest.Pytester) -> None:
    """With ``admin_token`` set, the fixture's faults, reset and teardown and
    ``--tapedeck-unused`` all pass the admin API's token check."""
    project(pytester)
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="session")
def tapedeck_config():
    return {"admin_token": "plugin-admin-token-0123"}
"""
    )
    pytester.makepyfile(
        """
import anthropic, httpx, pytest

HELLO = dict(model="claude-sonnet-4-5", max_tokens=256,
             messages=[{"role": "user", "content": "Hello"}])

def test_faults_through_the_admin_api(tapedeck):
    assert httpx.post(tapedeck.base_url + "/_tapedeck/reset").status_code == 401
    tapedeck.set_faults("status:code=529,times=1")
    client = tapedeck.client(cassette="streaming/hello", max_retries=0)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(**HELLO)
    with client.messages.stream(**HELLO) as stream:
        assert stream.get_final_text() == "Hello!"
    assert tapedeck.reset() >= 0
"""
    )
    result = run(pytester, "--tapedeck-unused")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tapedeck: unused cassettes*", "streaming/tool-use: *"])


def test_an_unknown_key_in_tapedeck_config_names_the_nearest(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="session")
def tapedeck_config():
    return {"timming": "instant"}
"""
    )
    pytester.makepyfile("def test_uses_it(tapedeck):\n    tapedeck.client()\n")
    result = run(pytester)
    assert result.ret != 0
    assert (
        "tapedeck_config: unknown setting(s) ['timming']; did you mean 'timing'? (known"
        in result.stdout.str()
    )
