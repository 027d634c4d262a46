"""Hypothesis-made requests against a real server: methods, paths (escapes included),
bodies, the steering headers (cassette names that try to leave the directory, timing and
fault specs), content types, and raw bytes that are not HTTP at all.

No 5xx of tapedeck's own (only ``status`` faults and recorded errors may be 5xx), every
error in the API's shape, no traceback in the log, and nothing read outside the cassette
directory: the server runs with an audit hook (:data:`WATCHED`) that reports every file it
opens or lists once it is serving.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import soak
from .outcome import Outcome
from .proc import Server, tracebacks

ROOT = Path(__file__).resolve().parent.parent.parent
SHORT_EXAMPLES, FULL_EXAMPLES = 300, 12_000
#: Run as the server: tapedeck's CLI, with an audit hook armed once the cassettes are
#: loaded (when the socket is bound) that prints every file opened or listed.
WATCHED = """
import os, sys
armed = False
# Python's own modules, imported lazily (uvicorn picks its loop once serving), are not files
# a request makes tapedeck read.
code = tuple(os.path.realpath(p) for p in {*sys.path, sys.prefix, sys.base_prefix} if p)
def hook(event, args):
    if armed and event in ("open", "os.listdir", "os.scandir") and args and args[0] is not None:
        path = args[0] if isinstance(args[0], str) else os.fsdecode(args[0]) if isinstance(
            args[0], bytes) else str(args[0])
        if not os.path.realpath(path).startswith(code):
            sys.stderr.write(f"tapedeck-fuzz: {event} {path!r}\\n")
sys.addaudithook(hook)
from tapedeck.server import runner
bound = runner.bind
def bind(*a):
    global armed
    sock = bound(*a)
    armed = True
    return sock
runner.bind = bind
from tapedeck.cli import main
sys.exit(main(sys.argv[1:]))
"""

HELLO: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Hello"}],
}
_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
_NUMBERS = st.sampled_from(
    ["0", "1", "2", "-1", "0.5", "1e300", "5e-324", "nan", "inf", "-inf", "9" * 40, "", "x"]
)
_KEYS = st.sampled_from(
    [
        "after",
        "after_bytes",
        "every",
        "interval",
        "type",
        "message",
        "code",
        "retry_after",
        "retry_after_ms",
        "should_retry",
        "ms",
        "p",
        "times",
        "seed",
        "bogus",
    ]
)
_KINDS = st.sampled_from(
    [
        "ping",
        "error",
        "overloaded",
        "disconnect",
        "truncate",
        "status",
        "latency",
        "stall",
        "garble",
        "none",
        "NONE",
        "bogus",
        "",
    ]
)
_FAULT = st.builds(
    lambda kind, pairs: kind + (":" + ",".join(f"{k}={v}" for k, v in pairs) if pairs else ""),
    _KINDS,
    st.lists(st.tuples(_KEYS, _NUMBERS), max_size=3),
)
FAULTS = st.one_of(
    st.sampled_from(soak.FAULTS),  # valid: every kind at work
    st.lists(_FAULT, min_size=1, max_size=3).map("; ".join),
    _HEADER_TEXT,
)
TIMINGS = st.one_of(
    st.sampled_from(["recorded", "instant", "INSTANT"]),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["speed", "fixed", "slow"]), _NUMBERS),
    _HEADER_TEXT,
)
CASSETTES = st.one_of(
    st.sampled_from(
        [
            "streaming/hello",
            "streaming/hello.yaml",
            "../outside/secret",
            "/etc/passwd",
            "streaming/../../outside/secret",
            "link-out",
            "..",
            ".",
            "",
            "a\\b",
            "C:/x",
            "errors/overloaded-529",
            "nope",
            "%2e%2e/outside/secret",
        ]
    ),
    _HEADER_TEXT,
)
PATHS = st.one_of(
    st.sampled_from(
        [
            "/v1/messages",
            "/v1/messages/count_tokens",
            "/v1/models",
            "/v1/models/claude-x",
            "/v1/messages/batches",
            "/v1/messages/batches/msgbatch_1/results",
            "/_tapedeck/health",
            "/_tapedeck/reset",
            "/_tapedeck/faults",
            "/",
            "/v1",
            "/v1/../../outside/secret",
            "/v1/%2e%2e/%2e%2e/outside/secret",
            "/v1/messages?beta=true",
            "/v1/messages?a=%ff",
        ]
    ),
    st.text(max_size=30).map(lambda t: "/v1/" + quote(t, safe="/?=&")),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    st.builds(lambda s: {**HELLO, "stream": s}, st.booleans()),
    st.builds(
        lambda extra: {**HELLO, **extra}, st.dictionaries(st.text(max_size=8), JSON, max_size=3)
    ),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.sampled_from([b"", b"[" * 5000, b'{"a": ' + b"9" * 5000 + b"}", b"\xff\xfe{}", b"{}"]),
)
#: Requests that replay unless a steering header breaks them: faults and timings at work.
NEAR_VALID = st.fixed_dictionaries(
    {
        "method": st.just("POST"),
        "path": st.just("/v1/messages"),
        "body": st.builds(lambda s: {**HELLO, "stream": s}, st.booleans()),
        "headers": st.fixed_dictionaries(
            {},
            optional={
                "x-tapedeck-timing": TIMINGS,
                "x-tapedeck-fault": FAULTS,
                "x-tapedeck-test-id": _HEADER_TEXT,
            },
        ),
    }
)
ANY = st.fixed_dictionaries(
    {
        "method": st.sampled_from(
            ["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
        ),
        "path": PATHS,
        "body": BODIES,
        "headers": st.fixed_dictionaries(
            {},
            optional={
                "x-tapedeck-cassette": CASSETTES,
                "x-tapedeck-timing": TIMINGS,
                "x-tapedeck-fault": FAULTS,
                "x-tapedeck-test-id": _HEADER_TEXT,
                "anthropic-beta": _HEADER_TEXT,
                "content-type": st.sampled_from(
                    ["application/json", "text/plain", "application/json; charset=utf-8", ""]
                ),
                "origin": st.sampled_from(["https://evil.example", "null"]),
                "host": st.sampled_from(["evil.example", "localhost", "127.0.0.1"]),
            },
        ),
    }
)
REQUESTS = st.one_of(NEAR_VALID, ANY)
RAW = st.builds(
    lambda line, headers: line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n",
    st.one_of(
        st.binary(max_size=40),
        st.builds(lambda p: b"GET " + p + b" HTTP/1.1", st.binary(max_size=30)),
    ),
    st.lists(st.binary(max_size=30), max_size=4),
)


class Findings:
    def __init__(self) -> None:
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


def _api_shaped(content: bytes) -> bool:
    try:
        body = json.loads(content)
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and body.get("type") == "error"
        and isinstance(body.get("error"), dict)
        and isinstance(body["error"].get("type"), str)
        and isinstance(body["error"].get("message"), str)
    )


def _check(
    findings: Findings, what: str, status: int, headers: Any, content: bytes, head: bool
) -> None:
    findings.sent += 1
    findings.statuses[status] = findings.statuses.get(status, 0) + 1
    source = headers.get("x-tapedeck-source", "")
    if status >= 500 and source not in ("fault", "cassette"):
        findings.add(f"{status} of tapedeck's own for {what}: {content[:200]!r}")
    if status >= 400 and not head and source != "cassette" and not _api_shaped(content):
        findings.add(f"{status} not in the API's shape for {what}: {content[:200]!r}")


def _raw(host: str, port: int, data: bytes) -> tuple[int, dict[str, str], bytes] | None:
    with socket.create_connection((host, port), timeout=1) as sock:
        sock.sendall(data)
        received = b""
        try:
            while part := sock.recv(65536):
                received += part
                head, sep, body = received.partition(b"\r\n\r\n")
                if sep and b"content-length" in head.lower():
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    if len(body) >= length:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return None  # nothing (the bytes did not end a request) or a cut
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


def run(full: bool, src: Path | None = None) -> Outcome:
    examples = FULL_EXAMPLES if full else SHORT_EXAMPLES
    outcome = Outcome("fuzz_requests")
    started = time.perf_counter()
    findings = Findings()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = base / "cassettes"
        shutil.copytree(ROOT / "cassettes", root)
        outside = base / "outside"
        outside.mkdir()
        (outside / "secret.yaml").write_text((root / "streaming" / "hello.yaml").read_text())
        script = base / "watched.py"
        script.write_text(WATCHED)
        env_src = src or Path(__file__).resolve().parent.parent.parent / "server"
        server = Server.command(
            [
                sys.executable,
                str(script),
                "serve",
                "--port",
                "0",
                "--cassettes",
                str(root),
                "--timing",
                "instant",
                "--max-delay",
                "0.5",
            ],
            env_src,
        )
        with server:
            # A link that leads out, made after loading (loading refuses one).
            os.symlink(outside / "secret.yaml", root / "link-out.yaml")
            http = httpx.Client(base_url=f"http://{server.host}:{server.port}", timeout=10)

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=not full,
                suppress_health_check=list(HealthCheck),
            )
            @given(REQUESTS, RAW)
            def send(request: dict[str, Any], raw: bytes) -> None:
                body = request["body"]
                content = json.dumps(body).encode() if isinstance(body, dict) else body
                headers = dict(request["headers"])
                headers.setdefault("content-type", "application/json")
                what = f"{request['method']} {request['path']} {headers}"
                try:
                    response = http.request(
                        request["method"],
                        request["path"],
                        content=content,
                        headers=[(k.encode(), v.encode("latin-1")) for k, v in headers.items()],
                    )
                except httpx.LocalProtocolError:
                    return  # the client would not send it (e.g. a header ending in a space)
                except httpx.HTTPError as exc:  # a fault's cut, or a garbled stream
                    if "disconnect" not in headers.get("x-tapedeck-fault", ""):
                        findings.add(f"{type(exc).__name__} for {what}")
                    return
                _check(
                    findings,
                    what,
                    response.status_code,
                    response.headers,
                    response.content,
                    request["method"] == "HEAD",
                )
                if not raw.strip():
                    return  # blank lines before a request are allowed: the server waits on
                answer = _raw(server.host, server.port, raw)
                if answer is not None:
                    _check(findings, f"raw {raw[:60]!r}", *answer, head=False)

            send()
            http.close()
            time.sleep(0.2)
            lines = server.stop()
    opened = [line for line in lines if line.startswith("tapedeck-fuzz: ")]
    outside_reads = [line for line in opened if str(root) not in line]
    outcome.figure("requests sent (valid HTTP and raw bytes)", findings.sent)
    outcome.figure(
        "by status", ", ".join(f"{k}: {v:,}" for k, v in sorted(findings.statuses.items()))
    )
    outcome.figure("files opened or listed while serving", len(opened))
    outcome.figure("outside the cassette directory", len(outside_reads))
    for problem in findings.problems:
        outcome.fail(problem)
    outcome.check(not outside_reads, f"read outside the cassette directory: {outside_reads[:5]}")
    outcome.check(not tracebacks(lines), f"tracebacks in the server log: {tracebacks(lines)[:3]}")
    outcome.seconds = time.perf_counter() - started
    return outcome
