"""The real ``tapedeck`` console script, run as a subprocess on real sockets."""

from __future__ import annotations

import importlib.metadata
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import tapedeck
from conftest import CASSETTES
from tapedeck.cassette.load import load_cassette
from tapedeck.config import OPTIONS

BIN = Path(sys.executable).parent
TAPEDECK = shutil.which("tapedeck", path=str(BIN))
HELLO_BODY = (
    load_cassette(CASSETTES / "streaming" / "hello.yaml", "hello").interactions[0].request.body
)

START = re.compile(
    r"^\d\d:\d\d:\d\d tapedeck (?P<mode>\w+) mode on http://(?P<host>[\d.]+):(?P<port>\d+), "
    r"(?P<count>\d+) cassettes from (?P<dir>.+), timing (?P<timing>\S+)$"
)
REQUEST = re.compile(
    r"^\d\d:\d\d:\d\d (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<what>.+) "
    r"(?P<ms>\d+\.\d)ms$"
)
TIMEOUT = 30


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any TAPEDECK_* variable of the developer's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEDECK_")}
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert TAPEDECK is not None, f"no tapedeck console script in {BIN}"
    return subprocess.run(
        [TAPEDECK, *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
        check=False,
    )


class Server:
    """A ``tapedeck serve`` subprocess whose stderr is read line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        assert TAPEDECK is not None
        self.proc = subprocess.Popen(
            [TAPEDECK, "serve", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        #: The lines before the start line (e.g. that the cassette directory was created).
        self.before: list[str] = []
        try:
            while not (match := START.match(line := self.next_line())):
                self.before.append(line)
                assert len(self.before) < 5, f"no start line: {self.before}"
            self.start_line = line
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        self.start = match
        self.base_url = f"http://{match['host']}:{match['port']}"

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next_line(self) -> str:
        line = self._queue.get(timeout=TIMEOUT)
        if line is None:
            self._queue.put(None)  # for rest()
            self.rest()
            raise AssertionError(
                f"tapedeck exited with {self.proc.returncode}; stderr: {self.lines}"
            )
        self.lines.append(line)
        return line

    def rest(self) -> list[str]:
        """Every line not read yet, once the process has ended."""
        if self._ended:
            return []
        self._ended = True
        self.proc.wait(timeout=TIMEOUT)
        self._reader.join(timeout=TIMEOUT)
        rest: list[str] = []
        while (line := self._queue.get(timeout=TIMEOUT)) is not None:
            rest.append(line)
        self.lines.extend(rest)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return rest

    def stop(self, sig: int = signal.SIGTERM) -> list[str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.rest()


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None, cwd: Path) -> Iterator[Server]:
    server = Server(list(args), env if env is not None else clean_env(), cwd)
    try:
        yield server
    finally:
        server.stop()


def health(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/_tapedeck/health", timeout=TIMEOUT)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def copy_cassettes(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "tapes"
    for name in names:
        target = root / f"{name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CASSETTES / f"{name}.yaml", target)
    return root


def normalized(text: str) -> str:
    return " ".join(text.split())


# --- help and version ---------------------------------------------------------------------


def test_console_script_is_installed() -> None:
    assert TAPEDECK is not None
    assert Path(TAPEDECK).parent == BIN


def test_top_level_help() -> None:
    result = run("--help")

    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.startswith("usage: tapedeck ")
    text = normalized(result.stdout)
    assert "serve serve cassettes over HTTP" in text
    assert "--version" in text
    assert "Run 'tapedeck serve --help' for the server's options." in text


def test_serve_help_mentions_every_option_env_var_and_timing_spec() -> None:
    result = run("serve", "--help")

    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.startswith("usage: tapedeck serve ")
    text = normalized(result.stdout)
    for option in OPTIONS:
        assert option.flags in text, option.flag
        assert f"[env: {option.env}]" in text, option.env
    assert "--config FILE" in text
    assert "TAPEDECK_CONFIG" in text
    assert "Timing SPEC: recorded | speed=F | fixed=MS | instant." in text
    assert "recorded (default), speed=F, fixed=MS or instant" in text
    assert "Precedence: flag > env > file > default." in text
    assert "GET /_tapedeck/health" in text
    assert "Exit status 2" in text


def test_version() -> None:
    result = run("--version")

    assert result.returncode == 0
    assert result.stdout == f"tapedeck {tapedeck.__version__}\n"
    assert tapedeck.__version__ == importlib.metadata.version("tapedeck-mock")


def test_python_dash_m_tapedeck_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tapedeck", "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=TIMEOUT,
        check=False,
    )

    assert result.returncode == 0
    assert result.stdout.startswith("usage: tapedeck ")
    assert "serve cassettes over HTTP" in result.stdout


def test_no_command_is_a_usage_error() -> None:
    result = run()

    assert result.returncode == 2
    assert "tapedeck: error: the following arguments are required: COMMAND" in result.stderr


# --- start-up failures: exit status 2 and a clear message -----------------------------------


def test_broken_cassette_directory(tmp_path: Path) -> None:
    tapes = tmp_path / "tapes"
    (tapes / "sub").mkdir(parents=True)
    (tapes / "sub" / "a.yaml").write_text(
        "version: 1\ninteractions:\n  - request:\n      method: POST\n"
        "      path: /v1/messages\n    response:\n      status: ok\n"
    )
    (tapes / "b.yml").write_text("version: 2\ninteractions: []\n")
    shutil.copyfile(CASSETTES / "streaming" / "hello.yaml", tapes / "hello.yaml")

    result = run("serve", "--cassettes", str(tapes), "--port", "0", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{tapes}/b.yml:1: version: unsupported cassette version 2: this tapedeck reads version 1",
        f"{tapes}/sub/a.yaml:7: interactions[0].response.status: "
        "expected an HTTP status code, got 'ok'",
        f"tapedeck: error: 2 cassette problem(s) in {tapes}; fix them and start again "
        "(the format is described in docs/cassettes.md)",
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("!!float x", "got !!float 'x'", id="float-tag-on-text"),
        pytest.param("!!int 1.5", "got !!int '1.5'", id="int-tag-on-a-fraction"),
        pytest.param("9" * 4301, "more digits than can be read", id="4301-digits"),
        pytest.param("1.0e+400", "expected a finite number of milliseconds, got inf", id="inf"),
    ],
)
def test_values_yaml_cannot_read_stop_serve_and_fail_lint(
    tmp_path: Path, value: str, problem: str
) -> None:
    tapes = tmp_path / "tapes"
    tapes.mkdir()
    (tapes / "a.yaml").write_text(
        "version: 1\ninteractions:\n  - request: {method: POST, path: /v1/messages}\n"
        f"    response:\n      status: 200\n      time_to_headers_ms: {value}\n"
    )

    served = run("serve", "--cassettes", str(tapes), "--port", "0", cwd=tmp_path)
    linted = run("lint", str(tapes), cwd=tmp_path)

    where = f"{tapes}/a.yaml:6: interactions[0].response.time_to_headers_ms: "
    assert served.returncode == 2
    assert "Traceback" not in served.stderr
    assert served.stderr.startswith(where)
    assert problem in served.stderr.splitlines()[0]
    assert linted.returncode == 1
    assert "Traceback" not in linted.stderr + linted.stdout
    assert linted.stdout.startswith(where)
    assert problem in linted.stdout.splitlines()[0]


def test_a_control_character_is_reported_with_its_line(tmp_path: Path) -> None:
    tapes = tmp_path / "tapes"
    tapes.mkdir()
    (tapes / "a.yaml").write_text("version: 1\n# \x1b[31m\ninteractions: []\n")

    served = run("serve", "--cassettes", str(tapes), "--port", "0", cwd=tmp_path)
    linted = run("lint", str(tapes), cwd=tmp_path)

    line = f"{tapes}/a.yaml:2: invalid YAML: character U+001B is not allowed"
    assert served.returncode == 2
    assert served.stderr.startswith(line)
    assert linted.returncode == 1
    assert linted.stdout.startswith(line)


def test_missing_cassette_directory(tmp_path: Path) -> None:
    result = run("serve", "--cassettes", "nowhere", "--port", "0", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        "tapedeck: error: nowhere: no such cassette directory; mode none does not create one: "
        "give the right --cassettes DIR, or record into a new one with --mode once\n"
    )
    assert not (tmp_path / "nowhere").exists()


def test_cassette_with_a_value_json_cannot_carry(tmp_path: Path) -> None:
    """A YAML value with no JSON form (here ``!!binary``) must be a file:line error too."""
    tapes = tmp_path / "tapes"
    tapes.mkdir()
    (tapes / "bin.yaml").write_text(
        "version: 1\ninteractions:\n  - request:\n      method: POST\n"
        "      path: /v1/messages\n    response:\n      status: 200\n"
        "      body: {x: !!binary aGk=}\n"
    )

    result = run("serve", "--cassettes", str(tapes), "--port", "0", cwd=tmp_path)

    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2
    assert result.stderr.startswith(f"{tapes}/bin.yaml:8: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "abc"], "--port: expected a port number from 0 to 65535, got 'abc'"),
        (["--port", "70000"], "--port: expected a port number from 0 to 65535, got '70000'"),
        (
            ["--timing", "speed=0"],
            "--timing: invalid timing 'speed=0': expected 'recorded', 'speed=F' (F > 0), "
            "'fixed=MS' (MS >= 0) or 'instant'",
        ),
        (
            ["--mode", "rec"],
            "--mode: expected one of 'none', 'once', 'new_episodes', 'all', 'passthrough' (or "
            "the earlier names 'replay', 'auto', 'record'), got 'rec'",
        ),
        (
            ["--max-body-size", "lots"],
            "--max-body-size: expected a size such as 32MiB, 512KiB or 1048576, got 'lots'",
        ),
    ],
)
def test_bad_flag_value(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("serve", *args, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"tapedeck: error: {message}\n"


def test_unknown_flag(tmp_path: Path) -> None:
    result = run("serve", "--prot", "9000", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "tapedeck: error: unrecognized arguments: --prot 9000 (did you mean --port 9000?)"
    )


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    result = run("serve", env=clean_env(TAPEDECK_PORT="http"), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        "tapedeck: error: TAPEDECK_PORT: expected a port number from 0 to 65535, got 'http'\n"
    )


def test_bad_config_file_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "tapedeck.yaml"
    cfg.write_text("# settings\nport: 0\ntimming: instant\n")

    result = run("serve", "--config", str(cfg), cwd=tmp_path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        f"tapedeck: error: {cfg}:3: timming: unknown setting; did you mean 'timing'?\n"
    )


def test_bad_yaml_in_config_from_env(tmp_path: Path) -> None:
    cfg = tmp_path / "tapedeck.yaml"
    cfg.write_text("port: 0\ntiming: [instant\n")

    result = run("serve", env=clean_env(TAPEDECK_CONFIG=str(cfg)), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith(f"tapedeck: error: {cfg}:3: invalid YAML: ")


def test_missing_config_file(tmp_path: Path) -> None:
    result = run("serve", "--config", "missing.yaml", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        "tapedeck: error: missing.yaml: cannot read the config file: No such file or directory\n"
    )


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]

        result = run(
            "serve", "--cassettes", str(CASSETTES), "--host", "127.0.0.1", "--port", str(port)
        )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error = re.fullmatch(
        rf"tapedeck: error: cannot listen on 127\.0\.0\.1:{port}: another program \(or another "
        r"tapedeck\) holds it; choose another port: --port (\d+) or TAPEDECK_PORT=\1 "
        r"\(\1 is free\), or --port 0 for any free port\n",
        result.stderr,
    )
    assert error, result.stderr
    assert int(error[1]) > port


# --- a running server ---------------------------------------------------------------------


def test_start_line_health_and_one_log_line_per_request(tmp_path: Path) -> None:
    with serving(
        "--cassettes", str(CASSETTES), "--port", "0", "--timing", "instant", cwd=tmp_path
    ) as server:
        assert server.before == []  # the start line comes first
        assert server.start["mode"] == "none"
        assert server.start["host"] == "127.0.0.1"
        assert int(server.start["port"]) > 0
        assert server.start["count"] == "7"
        assert server.start["dir"] == str(CASSETTES)
        assert server.start["timing"] == "instant"

        assert health(server) == {"status": "ok", "mode": "none", "cassettes": 7}
        health_line = REQUEST.match(server.next_line())
        assert health_line
        assert (health_line["method"], health_line["path"], health_line["status"]) == (
            "GET",
            "/_tapedeck/health",
            "200",
        )

        hit = httpx.post(
            f"{server.base_url}/v1/messages",
            json=HELLO_BODY,
            headers={"x-api-key": "test", "anthropic-version": "2023-06-01"},
            timeout=TIMEOUT,
        )
        assert hit.status_code == 200
        assert hit.headers["x-tapedeck-cassette"] == "streaming/hello"
        assert hit.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert hit.text.startswith("event: message_start\ndata: ")
        assert hit.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
        hit_line = REQUEST.match(server.next_line())
        assert hit_line
        assert hit_line.group("method", "path", "status", "what") == (
            "POST",
            "/v1/messages",
            "200",
            "streaming/hello",
        )

        miss = httpx.post(
            f"{server.base_url}/v1/messages",
            json={**HELLO_BODY, "max_tokens": 512},
            timeout=TIMEOUT,
        )
        assert miss.status_code == 404
        assert miss.json()["error"]["type"] == "not_found_error"
        miss_line = REQUEST.match(server.next_line())
        assert miss_line
        assert miss_line.group("method", "path", "status") == ("POST", "/v1/messages", "404")
        assert miss_line["what"].startswith("miss: closest is streaming/hello (interaction 0, ")
        # The log names the field, never the values the request held.
        assert re.search(
            rf"{re.escape(str(CASSETTES))}/streaming/hello.yaml:12\): "
            r"max_tokens: a number #[0-9a-f]{4} != a number #[0-9a-f]{4}$",
            miss_line["what"],
        )
        assert "512" not in miss_line["what"]

        rest = server.stop()

    assert rest == []
    assert len(server.lines) == 4  # the start line and one line per request, nothing else
    assert sum(1 for line in server.lines if "mode on http://" in line) == 1
    assert "Traceback" not in "\n".join(server.lines)
    # Request lines carry no headers or bodies.
    assert "x-api-key" not in "\n".join(server.lines)


def test_env_vars_configure_the_real_cli(tmp_path: Path) -> None:
    tapes = copy_cassettes(tmp_path, "streaming/hello", "errors/overloaded-529")
    env = clean_env(
        TAPEDECK_MODE="replay",
        TAPEDECK_HOST="127.0.0.1",
        TAPEDECK_PORT="0",
        TAPEDECK_CASSETTES=str(tapes),
        TAPEDECK_TIMING="fixed=5",
        TAPEDECK_SEQUENCE_END="error",
    )

    with serving(env=env, cwd=tmp_path) as server:
        assert server.start.group("host", "count", "dir", "timing") == (
            "127.0.0.1",
            "2",
            str(tapes),
            "fixed=5",
        )
        assert health(server)["cassettes"] == 2
        first = httpx.post(f"{server.base_url}/v1/messages", json=HELLO_BODY, timeout=TIMEOUT)
        second = httpx.post(f"{server.base_url}/v1/messages", json=HELLO_BODY, timeout=TIMEOUT)

    assert first.status_code == 200
    assert second.status_code == 404  # TAPEDECK_SEQUENCE_END=error: the sequence is used up
    assert "sequence used up" in second.json()["error"]["message"]


def test_flag_beats_env(tmp_path: Path) -> None:
    env = clean_env(TAPEDECK_PORT="0", TAPEDECK_TIMING="fixed=5", TAPEDECK_CASSETTES="nowhere")

    with serving("--timing", "speed=2", "--cassettes", str(CASSETTES), env=env, cwd=tmp_path) as s:
        assert s.start.group("timing", "dir", "count") == ("speed=2", str(CASSETTES), "7")


def test_config_file_from_env_with_cassettes_beside_it(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    copy_cassettes(conf, "streaming/hello")
    cfg = conf / "tapedeck.yaml"
    cfg.write_text("port: 0\ncassettes: tapes\ntiming: instant\n")

    with serving(env=clean_env(TAPEDECK_CONFIG=str(cfg)), cwd=tmp_path) as server:
        assert server.start.group("count", "dir", "timing") == ("1", str(conf / "tapes"), "instant")
        assert health(server)["cassettes"] == 1


def test_ctrl_c_stops_without_a_traceback(tmp_path: Path) -> None:
    server = Server(["--cassettes", str(CASSETTES), "--port", "0"], clean_env(), tmp_path)
    try:
        health(server)  # serving: uvicorn's signal handlers are in place
        server.next_line()
    finally:
        rest = server.stop(signal.SIGINT)

    assert server.proc.returncode is not None
    assert "Traceback" not in "\n".join(rest), "\n".join(rest)
    assert "KeyboardInterrupt" not in "\n".join(rest)


def test_journal_and_metrics_flags(tmp_path: Path) -> None:
    args = ("--cassettes", str(CASSETTES), "--port", "0", "--timing", "instant")
    with serving(*args, "--no-metrics", "--journal-size", "2", cwd=tmp_path) as server:
        for _ in range(3):
            httpx.post(f"{server.base_url}/v1/messages", json=HELLO_BODY, timeout=TIMEOUT)
        journal = httpx.get(f"{server.base_url}/_tapedeck/journal", timeout=TIMEOUT).json()
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=TIMEOUT)
    assert [e["id"] for e in journal["entries"]] == [2, 3]
    assert metrics.status_code == 404
    assert "--no-metrics" in metrics.json()["error"]["message"]

    with serving(*args, cwd=tmp_path, env=clean_env(TAPEDECK_METRICS="false")) as server:
        assert httpx.get(f"{server.base_url}/metrics", timeout=TIMEOUT).status_code == 404
    env = clean_env(TAPEDECK_METRICS="false")
    with serving(*args, "--metrics", cwd=tmp_path, env=env) as server:  # the flag wins
        assert httpx.get(f"{server.base_url}/metrics", timeout=TIMEOUT).status_code == 200
