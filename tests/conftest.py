"""Shared fixtures: a real tapedeck server on a real socket, and SDK clients pointed at it.

Also what several test files share: the repository's paths, the ``streaming/hello`` request,
the fault tests' own cassettes and the record tests' fake upstream.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from fake_upstream import FakeUpstream, ask
from tapedeck.config import Mode, Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing
from worker_server import RedisServer, WorkerServer

# tests/clients needs the agent runtimes and frameworks of .venv-clients: `make clients`
# runs it (with TAPEDECK_CLIENTS set), apart from the main suite.
collect_ignore = [] if os.environ.get("TAPEDECK_CLIENTS") else ["clients"]

# Helper modules the test files share: failed asserts in them are explained as in tests.
pytest.register_assert_rewrite("cassette_samples", "fault_helpers", "record_helpers")

#: The repository root, and its shipped cassettes.
ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"

# Bytecode caches on, for this process and every process the tests start: pytest rewrites
# the asserts of each module of a pytest11 plugin's distribution (tapedeck's, hypothesis's),
# and with PYTHONDONTWRITEBYTECODE set every nested pytest run (test_pytest_plugin.py,
# test_plugin_recording.py, ...) rewrote them again: 30% of its CPU time.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# Library index caches (and anything else under the user's cache directory) of the servers
# these tests start, and of the tapedeck processes they run, go to a directory of the run.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="tapedeck-tests-cache-")
#: The type of the ``make_server`` fixture.
MakeServer = Callable[..., AbstractContextManager[ServerThread]]
#: The request the shipped ``streaming/hello`` cassette answers (add ``"stream": True``).
HELLO: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Hello"}],
}


def pytest_report_header() -> str:
    """Which SDK release this run tests: the newest in .venv, the floor in .venv-floor."""
    return f"anthropic {anthropic.__version__}"


def sdk(server: ServerThread, fault: str | None = None, **kwargs: Any) -> anthropic.Anthropic:
    """An SDK client for ``server``, with API key ``test-key`` and no retries by default.

    ``kwargs`` go to ``anthropic.Anthropic`` and win over those defaults (``api_key``,
    ``max_retries``, ``timeout``, ``default_headers``, ...). ``fault``, when given, is sent
    as the ``x-tapedeck-fault`` header of every request.
    """
    kwargs.setdefault("api_key", "test-key")
    kwargs.setdefault("max_retries", 0)
    if fault is not None:
        kwargs["default_headers"] = {"x-tapedeck-fault": fault, **kwargs.get("default_headers", {})}
    kwargs.setdefault("base_url", server.base_url)
    return anthropic.Anthropic(**kwargs)


def api_error(response: httpx.Response, status: int, error_type: str) -> str:
    """Check the API error shape; return the message."""
    assert response.status_code == status, response.text
    assert b"Traceback" not in response.content
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"].startswith("tapedeck: ")
    assert body["request_id"].startswith("req_")
    assert response.headers["request-id"] == body["request_id"]
    message: str = body["error"]["message"]
    return message


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--server-workers",
        type=int,
        default=0,
        metavar="N",
        help="serve the tests' servers with tapedeck serve --workers N and Redis state "
        "(the sequence and fault tests run this way too: make test does)",
    )


#: ``--server-workers``: 0 for servers on a thread of the test process.
_WORKERS = 0
_REDIS: list[RedisServer] = []


def pytest_configure(config: pytest.Config) -> None:
    global _WORKERS
    _WORKERS = config.getoption("--server-workers")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _WORKERS:
        return
    skip = pytest.mark.skip(reason="records: tapedeck serve --workers refuses recording modes")
    for item in items:
        if item.get_closest_marker("one_process"):
            item.add_marker(skip)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _REDIS:
        _REDIS.pop().stop()


def workers() -> int:
    """How many worker processes the tests' servers have (0: one, on a thread)."""
    return _WORKERS


@contextmanager
def running(cassettes: Path = CASSETTES, **settings: Any) -> Iterator[ServerThread]:
    """Start tapedeck on a free port with ``settings`` (Settings fields); stop it after.

    With ``--server-workers N``, ``tapedeck serve --workers N`` with Redis state instead."""
    settings.setdefault("timing", Timing.parse("instant"))
    if _WORKERS:
        if not _REDIS:
            _REDIS.append(RedisServer())
        with WorkerServer(_REDIS[0], _WORKERS, cassettes=cassettes, **settings) as workers:
            yield workers  # type: ignore[misc]  # the parts of a ServerThread tests use
        return
    with ServerThread(Settings(cassettes=cassettes, port=0, **settings)) as server:
        yield server


@pytest.fixture(scope="session")
def server() -> Iterator[ServerThread]:
    """One server over the shipped cassettes, instant timing, shared by the session."""
    with running() as s:
        yield s


@pytest.fixture
def make_server() -> MakeServer:
    """``with make_server(tmp_path, sequence_end=...) as s:`` — a server of your own."""
    return running


@pytest.fixture
def client(server: ServerThread) -> Iterator[anthropic.Anthropic]:
    with sdk(server) as c:
        yield c


@pytest.fixture
async def async_client(server: ServerThread) -> Any:
    async with anthropic.AsyncAnthropic(
        base_url=server.base_url, api_key="test-key", max_retries=0
    ) as c:
        yield c


class LogLines(logging.Handler):
    """Collects the ``tapedeck`` logger's records; lets a test wait for lines to arrive."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.arrived = threading.Condition()
        self.thread: int | None = None

    def only(self, server: ServerThread) -> None:
        """Keep only ``server``'s lines: another server's may arrive late."""
        self.thread = server._thread.ident

    def emit(self, record: logging.LogRecord) -> None:
        with self.arrived:
            self.records.append(record)
            self.arrived.notify_all()

    def lines(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    def _found(self, pattern: str) -> list[str]:
        return [
            r.getMessage()
            for r in self.records
            if (self.thread is None or r.thread == self.thread)
            and re.search(pattern, r.getMessage())
        ]

    def matching(self, pattern: str) -> list[str]:
        with self.arrived:
            return self._found(pattern)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 5) -> list[str]:
        """The lines matching ``pattern`` once ``count`` have arrived (or on timeout)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(found := self._found(pattern)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.arrived.wait(left)
        return found


@pytest.fixture
def tapedeck_log() -> Iterator[LogLines]:
    """The ``tapedeck`` logger's lines during the test, whatever its propagation."""
    logger = logging.getLogger("tapedeck")
    handler = LogLines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the fault tests' own cassettes (test_faults_*.py) -----------------------------------------


def stream_cassette(content: str, events: list[tuple[str, int, str]], ttfb: int = 0) -> str:
    """A one-interaction streaming cassette; ``events`` are (name, at_ms, YAML flow data)."""
    lines = "".join(
        f"        - event: {name}\n          at_ms: {at}\n          data: {data}\n"
        for name, at, data in events
    )
    return f"""\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 16
        stream: true
        messages: [{{role: user, content: {content}}}]
    response:
      status: 200
      time_to_headers_ms: {ttfb}
      events:
{lines}"""


def message_events(text: str, at: list[int]) -> list[tuple[str, int, str]]:
    """A complete text message as six events at the offsets ``at``."""
    start = (
        "{type: message_start, message: {id: msg_t, type: message, role: assistant, "
        "content: [], model: m, stop_reason: null, stop_sequence: null, "
        "usage: {input_tokens: 1, output_tokens: 1}}}"
    )
    return list(
        zip(
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ],
            at,
            [
                start,
                '{type: content_block_start, index: 0, content_block: {type: text, text: ""}}',
                "{type: content_block_delta, index: 0, delta: {type: text_delta, "
                f'text: "{text}"}}}}',
                "{type: content_block_stop, index: 0}",
                "{type: message_delta, delta: {stop_reason: end_turn, stop_sequence: null}, "
                "usage: {output_tokens: 2}}",
                "{type: message_stop}",
            ],
            strict=True,
        )
    )


def plain_interaction(content: str, text: str) -> str:
    return f"""\
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 16
        messages: [{{role: user, content: {content}}}]
    response:
      status: 200
      headers: {{request-id: req_{text}}}
      body:
        id: msg_{text}
        type: message
        role: assistant
        model: m
        content: [{{type: text, text: {text}}}]
        stop_reason: end_turn
        stop_sequence: null
        usage: {{input_tokens: 1, output_tokens: 1}}
"""


def plain(content: str) -> dict[str, Any]:
    """The non-streaming request a ``deck_dir`` cassette answers (``plain``, ``twice``)."""
    return {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": content}]}


def streamed(content: str) -> dict[str, Any]:
    """The streaming request a ``deck_dir`` cassette answers (``gap``, ``paced``)."""
    return {**plain(content), "stream": True}


@pytest.fixture(scope="module")
def deck_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped hello, plain and twice (non-streaming), gap and paced (recorded gaps)."""
    root = tmp_path_factory.mktemp("fault-cassettes")
    (root / "hello.yaml").write_bytes((CASSETTES / "streaming" / "hello.yaml").read_bytes())
    (root / "plain.yaml").write_text(
        "version: 1\ninteractions:\n" + plain_interaction("plain", "plain-answer")
    )
    (root / "twice.yaml").write_text(
        "version: 1\ninteractions:\n"
        + plain_interaction("twice", "first")
        + plain_interaction("twice", "second")
    )
    # 300 ms of silence between the block start and the text
    (root / "gap.yaml").write_text(
        stream_cassette("gap", message_events("after the gap", [0, 0, 300, 300, 300, 300]))
    )
    (root / "paced.yaml").write_text(
        stream_cassette("paced", message_events("paced", [0, 50, 100, 150, 200, 200]))
    )
    return root


@pytest.fixture(scope="module")
def deck(deck_dir: Path) -> Iterator[ServerThread]:
    """A server over ``deck_dir`` with instant timing, one per test module."""
    with running(deck_dir) as server:
        yield server


# --- the record tests' fake upstream (test_record_*.py) ----------------------------------------


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        # Client, proxy and fake share one process (and its GIL): the SDK's first stream
        # builds its models for ~100 ms, which would show up as gaps in the first recording.
        root = tmp_path_factory.mktemp("warm-up")
        with running(root, mode=Mode.PASSTHROUGH, upstream=upstream.base_url) as s, sdk(s) as c:
            with c.messages.stream(**ask("warm up")) as stream:
                stream.until_done()
            c.messages.create(**ask("warm up"))
        yield upstream


@pytest.fixture
def fake(fake_server: FakeUpstream) -> FakeUpstream:
    """The module's fake upstream, with no requests seen yet."""
    fake_server.reset()
    return fake_server
