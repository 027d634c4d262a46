"""What the first reliability run found, case by case: each must now be answered as the
API would (or refused where it is given), in the API's error shape, at once.

With ``--before SRC`` every case is also tried on another tapedeck version in the same
run, to show what it did.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import rawhttp
from .outcome import Outcome
from .proc import Server

ROOT = Path(__file__).resolve().parent.parent.parent
HELLO = {"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
         "messages": [{"role": "user", "content": "Hello"}]}  # fmt: skip
#: How long a case may take before it counts as never answered.
PATIENCE_S = 3.0


def _post(
    headers: dict[str, str], body: Any = HELLO, path: str = "/v1/messages", method: str = "POST"
) -> Any:
    def build(server: Server) -> bytes:
        return rawhttp.request(server.host, server.port, method, path, body, headers)

    return build


def _raw(data: bytes) -> Any:
    return lambda server: data


#: (case, what to send, what the answer must be: a status and an error shape).
HTTP_CASES: list[tuple[str, Callable[[Server], bytes], int]] = [
    ("x-tapedeck-timing: speed=5e-324", _post({"x-tapedeck-timing": "speed=5e-324"}), 400),
    ("x-tapedeck-timing: fixed=1e300", _post({"x-tapedeck-timing": "fixed=1e300"}), 400),
    ("x-tapedeck-fault: latency:ms=1e300", _post({"x-tapedeck-fault": "latency:ms=1e300"}), 400),
    ("a NUL in a header",
     _raw(b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\nx: a\x00b\r\n\r\n"), 400),
    ("raw non-ASCII in the path",
     _raw(b"GET /v1/mod\xc3\xa9ls HTTP/1.1\r\nhost: localhost\r\n\r\n"), 400),
    ("POST /v1/messages as text/plain", _post({"content-type": "text/plain"}), 400),
    ("Host: evil.example (DNS rebinding)", _post({"host": "evil.example"}), 403),
    ("PUT /_tapedeck/faults from a web page",
     _post({"origin": "https://evil.example"}, {"faults": "status:code=529"}, "/_tapedeck/faults",
           "PUT"),
     403),
    ("POST /_tapedeck/reset from a web page",
     _post({"origin": "https://evil.example"}, None, "/_tapedeck/reset"), 403),
]  # fmt: skip
CASSETTE_VALUES = ["!!float x", "!!int 1.5", "9" * 4301, "1.0e+400"]


def _answer(server: Server, build: Callable[[Server], bytes]) -> tuple[str, bool]:
    """What ``server`` answered: ``"400 JSON"``, ``"400 text"``, ``"200"``, ``"no answer
    in 3 s"``; and whether it was the API's error shape."""
    data = build(server)
    response = rawhttp.run(rawhttp.exchange(server.host, server.port, data, wait_s=PATIENCE_S))
    if response.error == "TimeoutError" and not response.status:
        return f"no answer in {PATIENCE_S:g} s", False
    if not response.status:
        return f"connection {response.error or 'closed'}", False
    if response.error == "TimeoutError":
        return f"{response.status}, then nothing for {PATIENCE_S:g} s", False
    try:
        body = json.loads(response.body)
        shaped = body.get("type") == "error" and isinstance(body["error"]["message"], str)
    except (ValueError, KeyError, TypeError, AttributeError):
        shaped = False
    kind = "JSON error" if shaped else response.headers.get("content-type", "no body")
    return f"{response.status} {kind}", shaped


def _cassette_case(value: str, src: Path | None) -> tuple[str, str]:
    """What ``serve`` and ``lint`` do with a cassette holding ``value``."""
    with tempfile.TemporaryDirectory() as tmp:
        tapes = Path(tmp)
        (tapes / "a.yaml").write_text(
            "version: 1\ninteractions:\n  - request: {method: POST, path: /v1/messages}\n"
            f"    response:\n      status: 200\n      time_to_headers_ms: {value}\n"
        )
        env = {"PYTHONPATH": str(src)} if src else {}
        outcomes = []
        for command in (["serve", "--port", "0"], ["lint"]):
            args = [sys.executable, "-m", "tapedeck", *command, "--cassettes", str(tapes)]
            if command == ["lint"]:
                args = [sys.executable, "-m", "tapedeck", "lint", str(tapes)]
            try:
                done = subprocess.run(
                    args, capture_output=True, text=True, timeout=10, env={**_env(), **env}
                )
            except subprocess.TimeoutExpired:
                outcomes.append("accepted it and served")
                continue
            out = done.stdout + done.stderr
            traceback = "Traceback" in out
            line = "a.yaml:6:" in out
            outcomes.append(
                f"exit {done.returncode}, "
                + ("traceback" if traceback else "file:line" if line else "message")
            )
        return outcomes[0], outcomes[1]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TAPEDECK_", "PYTHONPATH"))}


def run(full: bool, src: Path | None = None, before: Path | None = None) -> Outcome:
    outcome = Outcome("findings")
    started = time.perf_counter()
    versions = [("after", src)] + ([("before", before)] if before else [])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "cassettes", root, dirs_exist_ok=True)
        for label, tree in versions:
            with Server(["--cassettes", str(root), "--timing", "instant"], tree) as server:
                for case, build, status in HTTP_CASES:
                    said, shaped = _answer(server, build)
                    outcome.figure(f"{case}: {label}", said)
                    if label == "after":
                        outcome.check(
                            said.startswith(str(status)) and shaped,
                            f"{case}: {said}, expected {status} in the API's shape",
                        )
        # (make test has these as CLI tests: tests/test_cli.py)
        for value in CASSETTE_VALUES if full or before else ():
            shown = value if len(value) < 20 else f"a {len(value)}-digit integer"
            for label, tree in versions:
                serve, lint = _cassette_case(value, tree)
                outcome.figure(f"cassette with {shown}: {label}", f"serve {serve}; lint {lint}")
                if label == "after":
                    outcome.check(
                        serve == "exit 2, file:line" and lint == "exit 1, file:line",
                        f"cassette with {shown}: serve {serve}, lint {lint}",
                    )
    outcome.seconds = time.perf_counter() - started
    return outcome
