"""A newcomer's first mistakes, over the real ``tapedeck`` command: a flag or settings key
from another tool or misspelt ("did you mean"), a port already taken, a cassette directory
that does not exist."""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import tapedeck
from conftest import CASSETTES, ROOT
from tapedeck.config.suggest import nearest_directory, nearest_flag, nearest_setting
from test_cli import clean_env, run, serving

pytest_plugins = ["pytester"]

KEY = "sk-ant-api03-" + "x1y2z3" * 8
SERVE_FLAGS = ["--mode", "--cassettes", "--port", "--fault", "--metrics", "--no-metrics"]


def _project(tmp_path: Path) -> Path:
    """A project with its cassettes in tests/cassettes."""
    shutil.copytree(CASSETTES, tmp_path / "tests" / "cassettes")
    return tmp_path


# --- did you mean: the nearest setting or flag -------------------------------------------


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("timming", "timing"),
        ("record_mode", "mode"),  # vcrpy; pytest-recording's --record-mode
        ("cassette_library_dir", "cassettes"),  # vcrpy
        ("filter_headers", "redact_headers"),  # vcrpy
        ("max-body-size", "max_body_size"),  # a flag's spelling as a key
        ("TAPEDECK_PORT", "port"),  # an environment variable's
        ("fault", "faults"),
        ("upstream_timout", "upstream_timeout"),
        ("server_port", "port"),  # a known name among its words
        ("cassette_dir", "cassettes"),
        ("verbose", None),
        (3, None),
    ],
)
def test_nearest_setting(name: object, nearest: str | None) -> None:
    assert nearest_setting(name) == nearest


@pytest.mark.parametrize(
    ("flag", "nearest"),
    [
        ("--record-mode", "--mode"),
        ("--record-mode=all", "--mode"),
        ("--faults", "--fault"),  # the setting's key leads to its flag
        ("--cassette-dir", "--cassettes"),
        ("--metric", "--metrics"),
        ("--prot", "--port"),
        ("--verbose", None),
    ],
)
def test_nearest_flag(flag: str, nearest: str | None) -> None:
    assert nearest_flag(flag, SERVE_FLAGS) == nearest


def test_nearest_directory(tmp_path: Path) -> None:
    (tmp_path / "tests" / "cassettes").mkdir(parents=True)

    assert nearest_directory(tmp_path / "tests" / "casettes") == tmp_path / "tests" / "cassettes"
    assert nearest_directory(tmp_path / "test" / "cassettes") == tmp_path / "tests" / "cassettes"
    assert nearest_directory(tmp_path / "tests" / "fixtures") is None
    assert nearest_directory(tmp_path / "tests" / "cassettes") is None  # it exists


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--record-mode", "all"], "--record-mode all (did you mean --mode all?)"),
        (["--record-mode=once"], "--record-mode=once (did you mean --mode=once?)"),
        (["--cassette-library-dir", "x"], "--cassette-library-dir x (did you mean --cassettes x?)"),
        (
            ["--faults", "ping:every=5"],
            "--faults ping:every=5 (did you mean --fault ping:every=5?)",
        ),
        # Not taken as an abbreviation of --record-errors, nor --cassette of --cassettes.
        (["--record", "all"], "--record all (did you mean --mode all?)"),
        (["--cassette", "x"], "--cassette x (did you mean --cassettes x?)"),
        (["--metric"], "--metric (did you mean --metrics?)"),
        (
            ["--prot", "1", "--timming", "instant"],
            "--prot 1 (did you mean --port 1?) --timming instant (did you mean --timing instant?)",
        ),
        (["--verbose"], "--verbose; 'tapedeck serve --help' lists them"),
    ],
)
def test_unknown_flag_names_the_nearest(tmp_path: Path, args: list[str], said: str) -> None:
    result = run("serve", *args, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == f"tapedeck: error: unrecognized arguments: {said}"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--admin-tokn", "s3cret-t0ken"], "--admin-tokn [REDACTED] (did you mean --admin-token?)"),
        (["--admin-tokn=s3cret-t0ken"], "--admin-tokn=[REDACTED] (did you mean --admin-token?)"),
        # A key typed where the variable's name goes is not repeated into the suggestion.
        ([f"--api-key={KEY}"], "--api-key=[REDACTED] (did you mean --upstream-api-key-env?)"),
        (["--key", KEY], "--key sk-ant-REDACTED; 'tapedeck serve --help' lists them"),
    ],
)
def test_unknown_flag_never_shows_a_secret(tmp_path: Path, args: list[str], said: str) -> None:
    result = run("serve", *args, cwd=tmp_path)

    assert result.returncode == 2
    assert "s3cret-t0ken" not in result.stderr
    assert KEY not in result.stderr
    assert result.stderr.splitlines()[-1] == f"tapedeck: error: unrecognized arguments: {said}"


def test_unknown_flag_of_a_cassette_tool(tmp_path: Path) -> None:
    result = run("lint", "--max-agee", "90d", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "tapedeck: error: unrecognized arguments: --max-agee (did you mean --max-age?)"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("port: 0\ntimming: instant\n", "2: timming: unknown setting; did you mean 'timing'?"),
        ("record_mode: once\n", "1: record_mode: unknown setting; did you mean 'mode'?"),
        (
            "max-body-size: 1MiB\n",
            "1: max-body-size: unknown setting; did you mean 'max_body_size'?",
        ),
        ("fault: ping:every=5\n", "1: fault: unknown setting; did you mean 'faults'?"),
        ("1: x\n", "1: 1: unknown setting (known settings: mode, cassettes, host, port, "),
        ("verbose: true\n", "1: verbose: unknown setting (known settings: mode, cassettes, "),
    ],
)
def test_unknown_key_of_the_project_file(tmp_path: Path, text: str, problem: str) -> None:
    """The project's tapedeck.yaml, found from the working directory as serve finds it."""
    (tmp_path / "tapedeck.yaml").write_text(text)

    result = run("serve", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith(f"tapedeck: error: {tmp_path / 'tapedeck.yaml'}:{problem}")
    assert len(result.stderr.splitlines()) == 1


def test_unknown_key_of_tool_tapedeck(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.tapedeck]\ncassette_library_dir = "tests/cassettes"\n'
    )

    result = run("ls", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        f"tapedeck: error: {tmp_path / 'pyproject.toml'}:5: cassette_library_dir: unknown "
        "setting; did you mean 'cassettes'?\n"
    )


def test_unknown_keyword_of_serve() -> None:
    with (
        pytest.raises(tapedeck.ConfigError) as raised,
        tapedeck.serve(cassettes=CASSETTES, record_mode="all"),
    ):
        pass
    assert str(raised.value).endswith("; did you mean 'mode'?")

    with pytest.raises(tapedeck.ConfigError) as raised, tapedeck.serve(timming="x", bogus=1):
        pass
    assert str(raised.value).endswith("; did you mean 'timing' for 'timming'?")


def test_the_pytest_plugin_names_the_nearest_key(pytester: pytest.Pytester) -> None:
    """The plugin reads the project's tapedeck.yaml the same way, before any test runs."""
    pytester.makefile(".yaml", tapedeck="timming: instant\n")
    pytester.makepyfile(test_x="def test_x(tapedeck):\n    pass\n")

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)

    assert result.ret != 0
    assert result.stderr.lines[0] == (
        f"ERROR: tapedeck: {pytester.path / 'tapedeck.yaml'}:1: timming: unknown setting; "
        "did you mean 'timing'?"
    )


# --- a port already taken ----------------------------------------------------------------


def _suggested_port(stderr: str, busy: int) -> int:
    """The free port the message suggests, checked to be one."""
    found = re.search(r"\((\d+) is free\)", stderr)
    assert found, stderr
    port = int(found[1])
    assert port != busy
    socket.create_server(("127.0.0.1", port)).close()
    return port


def test_port_held_by_another_tapedeck(tmp_path: Path) -> None:
    with serving("--cassettes", str(CASSETTES), "--port", "0", cwd=tmp_path) as first:
        busy = int(first.start["port"])
        by_flag = run("serve", "--cassettes", str(CASSETTES), "--port", str(busy), cwd=tmp_path)
        by_env = run("serve", env=clean_env(TAPEDECK_PORT=str(busy)), cwd=_project(tmp_path))

    for result in (by_flag, by_env):
        free = _suggested_port(result.stderr, busy)
        assert result.returncode == 2
        assert result.stderr == (
            f"tapedeck: error: cannot listen on 127.0.0.1:{busy}: another tapedeck is serving "
            "on it (none mode, 7 cassettes); stop it, or choose another port: "
            f"--port {free} or TAPEDECK_PORT={free} ({free} is free), or --port 0 for any "
            "free port\n"
        )


def test_make_run_on_a_port_in_use() -> None:
    """``make run`` takes the port as PORT=N: the message says so when make runs tapedeck."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            ["make", "--no-print-directory", "run", f"PORT={port}"],
            cwd=ROOT,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    free = _suggested_port(result.stderr, port)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert (
        f"tapedeck: error: cannot listen on 127.0.0.1:{port}: another program (or another "
        f"tapedeck) holds it; choose another port: make run PORT={free} ({free} is free), or "
        "PORT=0 for any free port"
    ) in result.stderr.splitlines()


# --- a cassette directory that does not exist ----------------------------------------------


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all"])
def test_a_recording_mode_creates_the_directory_and_says_so(tmp_path: Path, mode: str) -> None:
    project = _project(tmp_path)

    with serving("--mode", mode, "--cassettes", "tests/casettes", "--port", "0", cwd=project) as s:
        assert s.start["mode"] == mode
        assert s.start["dir"] == "tests/casettes"
        before = [line.split(" ", 1)[1] for line in s.before]

    assert before == [
        "tapedeck: created cassette directory tests/casettes (it did not exist; did you mean "
        "tests/cassettes?)"
    ]
    assert (project / "tests" / "casettes").is_dir()


def test_the_default_directory_of_a_new_project_is_created(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()

    with serving("--mode", "once", "--port", "0", cwd=tmp_path) as server:
        before = [line.split(" ", 1)[1] for line in server.before]

    assert before == ["tapedeck: created cassette directory tests/cassettes (it did not exist)"]
    assert (tmp_path / "tests" / "cassettes").is_dir()


def test_an_existing_directory_is_not_announced(tmp_path: Path) -> None:
    with serving("--mode", "once", "--port", "0", cwd=_project(tmp_path)) as server:
        assert server.before == []
        assert server.start["count"] == "7"


@pytest.mark.parametrize("mode", ["none", "passthrough"])
def test_a_mode_that_records_nothing_refuses_a_missing_directory(tmp_path: Path, mode: str) -> None:
    project = _project(tmp_path)

    result = run("serve", "--mode", mode, "--cassettes", "test/casettes", cwd=project)

    assert result.returncode == 2
    assert result.stderr == (
        "tapedeck: error: test/casettes: no such cassette directory (did you mean "
        f"tests/cassettes?); mode {mode} does not create one: give the right --cassettes DIR, "
        "or record into a new one with --mode once\n"
    )
    assert not (project / "test").exists()


def test_a_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    result = run("serve", "--mode", "once", "--cassettes", "file/tapes", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        "tapedeck: error: file/tapes: cannot create the cassette directory: Not a directory\n"
    )


def test_serve_in_python_logs_the_created_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tapedeck")

    with tapedeck.serve(cassettes=tmp_path / "tapes", mode="once"):
        pass

    assert f"tapedeck: created cassette directory {tmp_path / 'tapes'} (it did not exist)" in (
        caplog.messages
    )
