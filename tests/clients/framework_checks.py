"""What the framework suites (LangChain, LiteLLM, pydantic-ai) share: recording through
tapedeck from the stand-in API, replaying with the stand-in gone, and each fault kind
compared with the same failure from the stand-in itself.

A framework is given to these helpers as a :class:`Framework`: two calls in the
framework's own terms (a question, streamed or not; a tool loop) that return what the
framework made of the answers, as plain data to compare.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from standin import StandIn

from tapedeck.config import Mode, Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing


def question(stream: bool) -> str:
    """What every framework is asked: streamed and not differ, so that each is recorded from
    the stand-in (``once`` would otherwise answer the second from the first's recording)."""
    return "Hello there, streamed" if stream else "Hello there"


def answer(stream: bool) -> str:
    """The stand-in's answer to :func:`question` (standin.content_for)."""
    return "Stand-in answer to: " + question(stream)


def weather(stream: bool) -> str:
    """The question each tool loop starts with."""
    return "What is the weather in Paris" + (", streamed?" if stream else "?")


#: How long the stand-in waits between a recorded stream's ``message_delta`` and its
#: ``message_stop`` (a client that hangs up in between must not cost the recording).
STOP_DELAY_S = 0.2
#: The read timeout the framework gets for the ``latency`` and ``stall`` cases (their waits
#: exceed it); every other call gets :data:`ROOMY_TIMEOUT_S`, so that a loaded machine does not
#: time out a replay.
TIMEOUT_S = 0.5
ROOMY_TIMEOUT_S = 20.0


def test_id_for(fault: str) -> str:
    """The test id a call with ``fault`` is sent with (the spec, in letters and digits)."""
    return "fault-" + hashlib.sha1(fault.encode()).hexdigest()[:12]


def fault_headers(fault: str | None) -> dict[str, str]:
    """The headers a framework sends for ``fault``: the spec, and a test id of its own."""
    if not fault:
        return {}
    return {"x-tapedeck-fault": fault, "x-tapedeck-test-id": test_id_for(fault)}


def timeout_for(fault: str | None) -> float:
    """The read timeout a framework is given for a call with ``fault``."""
    kind = (fault or "").partition(":")[0].strip()
    return TIMEOUT_S if kind in ("latency", "stall") else ROOMY_TIMEOUT_S


class Framework(Protocol):
    """One framework, driven the way its users drive it."""

    def ask(
        self, base_url: str, *, stream: bool, fault: str | None, retries: int, seen: list[str]
    ) -> Any:
        """Ask :func:`question`; text pieces go to ``seen`` as they arrive; return what the
        framework made of the answer."""

    def tool_loop(self, base_url: str, *, stream: bool) -> Any:
        """Run the framework's own tool calling to its end; return the whole conversation."""


@dataclass(frozen=True)
class FaultCase:
    """A fault spec, and how the framework is called with it."""

    name: str
    spec: str
    stream: bool
    #: Retries the framework may make (status and quota show them).
    retries: int = 0
    #: Calls made in a row (``quota`` refuses the second).
    calls: int = 1


#: Every fault kind of docs/faults.md; ``status`` as a 529 retried away, a 429 and a 529 (on a
#: stream) that stay.
FAULTS = [
    FaultCase("ping", "ping:every=2", stream=True),
    FaultCase("error", "error:after=4,type=api_error,message=boom", stream=True),
    FaultCase("overloaded", "overloaded:after=4", stream=True),
    FaultCase("disconnect", "disconnect:after=4", stream=True),
    FaultCase("truncate", "truncate:after=5", stream=True),
    FaultCase("status-529", "status:code=529,retry_after_ms=1,times=1", stream=False, retries=2),
    FaultCase("status-429", "status:code=429,retry_after_ms=1", stream=False, retries=1),
    FaultCase("status-529-stream", "status:code=529,retry_after_ms=1", stream=True, retries=1),
    FaultCase("latency", "latency:ms=1500", stream=False),
    FaultCase("stall", "stall:after=4,ms=1500", stream=True),
    FaultCase("garble", "garble:after=4", stream=True),
    FaultCase("quota", "quota:requests=1/60s", stream=False, calls=2),
]


@dataclass(frozen=True)
class Outcome:
    """What a framework showed for one fault case: its answer, or the exception it raised
    (class, message with ids and ports taken out), the text it had delivered before, and how
    many requests it sent."""

    answer: str | None
    error: str | None
    message: str | None
    partial: str
    requests: int

    def shown(self) -> str:
        """One line for a failure message or the docs table."""
        if self.error is None:
            return f"answer {self.answer} after {self.requests} request(s)"
        return f"{self.error}: {self.message} (after {self.partial!r}, {self.requests} request(s))"


_VOLATILE = [
    (re.compile(r"req_[A-Za-z0-9_]+"), "req_…"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"msg_[A-Za-z0-9_]+"), "msg_…"),
    (re.compile(r"time taken=[\d.]+"), "time taken=…"),
    # what a quota's 429 says after the limit: tapedeck names the model and the docs
    (re.compile(r"(rate limit of 1 requests per minute)[^'\"]*"), r"\1…"),
]


def normalized(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _error_name(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


@contextmanager
def serving(cassettes: Path, **settings: Any) -> Iterator[ServerThread]:
    """tapedeck on a free port over ``cassettes``, instant timing, with ``settings``."""
    with ServerThread(
        Settings(cassettes=cassettes, port=0, timing=Timing.parse("instant"), **settings)
    ) as server:
        yield server


def run_case(
    framework: Framework, base_url: str, case: FaultCase, count: Callable[[], int]
) -> Outcome:
    """Call ``framework`` as ``case`` says at ``base_url``; ``count`` tells how many requests
    the server has seen."""
    seen: list[str] = []
    answer: Any = None
    try:
        for _ in range(case.calls):
            seen.clear()
            answer = framework.ask(
                base_url, stream=case.stream, fault=case.spec, retries=case.retries, seen=seen
            )
    except Exception as exc:  # what the framework raises is what the test looks at
        return Outcome(None, _error_name(exc), normalized(str(exc)), "".join(seen), count())
    return Outcome(normalized(repr(answer)), None, None, "".join(seen), count())


@dataclass
class Recording:
    """Cassettes recorded through tapedeck from the stand-in, and what the framework made
    of the live answers."""

    cassettes: Path
    live: dict[str, Any]
    files: list[str]
    #: The stand-in's requests whose client (tapedeck) left before the response ended, with
    #: the events sent by then.
    left_early: dict[int, list[str]]


def record(framework: Framework, cassettes: Path) -> Recording:
    """Ask and run the tool loop, streamed and not, through tapedeck in ``once`` mode with the
    stand-in as its upstream; the stand-in is gone when this returns."""
    live: dict[str, Any] = {}
    with (
        StandIn(stop_delay_s=STOP_DELAY_S) as api,
        serving(cassettes, mode=Mode.ONCE, upstream=api.base_url) as s,
    ):
        for stream in (False, True):
            kind = "stream" if stream else "json"
            live[f"ask-{kind}"] = framework.ask(
                s.base_url, stream=stream, fault=None, retries=0, seen=[]
            )
            live[f"tools-{kind}"] = framework.tool_loop(s.base_url, stream=stream)
    files = sorted(str(p.relative_to(cassettes)) for p in cassettes.rglob("*.yaml"))
    return Recording(cassettes, live, files, api.left)


def replay(framework: Framework, recording: Recording) -> dict[str, Any]:
    """The same calls answered by tapedeck in ``none`` mode from ``recording``."""
    got: dict[str, Any] = {}
    with serving(recording.cassettes, mode=Mode.NONE) as s:
        for stream in (False, True):
            kind = "stream" if stream else "json"
            got[f"ask-{kind}"] = framework.ask(
                s.base_url, stream=stream, fault=None, retries=0, seen=[]
            )
            got[f"tools-{kind}"] = framework.tool_loop(s.base_url, stream=stream)
    return got


#: The repository's docs/clients.md, whose fault table says what each client shows.
CLIENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "clients.md"


def documented(column: str, kind: str) -> str:
    """The cell of docs/clients.md's fault table for fault ``kind`` and client ``column``."""
    rows = [line for line in CLIENTS_DOC.read_text().splitlines() if line.startswith("| ")]
    table = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    header = next(cells for cells in table if cells[0] == "fault")
    row = next(cells for cells in table if cells[0] == f"`{kind}`")
    return row[header.index(column)]


def check_shown(column: str, case: FaultCase, shown: Outcome, error: str | None) -> None:
    """``shown`` raised ``error`` (``None``: it answered), and the docs' cell for the case's
    kind names that class (``status-429`` is the ``status`` row)."""
    assert shown.error == error, shown.shown()
    if error is not None:
        cell = documented(column, case.name.split("-")[0])
        assert error.rsplit(".", 1)[1] in cell, f"docs/clients.md, {column}: {cell}"


def miss(framework: Framework, recording: Recording, where: Path) -> Outcome:
    """What ``framework`` shows for a miss: the question's recording, copied to ``where`` with
    its question changed ("Hello there" to "Hello thar"), is the closest and does not match."""
    for name in recording.files:
        text = (recording.cassettes / name).read_text()
        if "Hello there\n" in text:  # the question as a string or in a text block
            (where / Path(name).name).write_text(text.replace("Hello there", "Hello thar"))
    with serving(where, mode=Mode.NONE) as s:
        case = FaultCase("miss", "", stream=False)
        return run_case(framework, s.base_url, case, lambda: journal_count(s.base_url))


def journal_count(base_url: str) -> int:
    return len(httpx.get(f"{base_url}/_tapedeck/journal").json()["entries"])


@dataclass
class Sides:
    """tapedeck replaying a recording, and the stand-in, both up for a whole test module."""

    deck: str
    api: StandIn


@contextmanager
def both_sides(cassettes: Path) -> Iterator[Sides]:
    """tapedeck replaying ``cassettes`` and a stand-in, until the block ends."""
    with serving(cassettes, mode=Mode.NONE) as s, StandIn() as api:
        yield Sides(s.base_url, api)


def compare_fault(framework: Framework, sides: Sides, case: FaultCase) -> tuple[Outcome, Outcome]:
    """What ``framework`` shows for ``case`` from tapedeck, and from the stand-in failing the
    same way. Each case's spec is its own (:func:`fault_headers` makes it the test id), so that
    the servers count its requests, ``times`` and quota apart from the other cases'."""
    test_id = test_id_for(case.spec)

    def deck_count() -> int:
        journal = httpx.get(f"{sides.deck}/_tapedeck/journal", params={"test_id": test_id})
        return len(journal.json()["entries"])

    replayed = run_case(framework, sides.deck, case, deck_count)
    api = sides.api
    direct = run_case(framework, api.base_url, case, lambda: api.fault_requests[case.spec])
    return replayed, direct


# The checks every framework's test file runs the same way (each file names its framework).


def check_replayed_elsewhere(module: str, recording: Recording) -> None:
    """Another process, HOME, directory, time zone and locale, 550 days later: no preset."""
    from datetime import datetime

    from replay_elsewhere import as_json, replay_elsewhere

    elsewhere = replay_elsewhere(module, recording.cassettes)
    assert elsewhere["year"] > datetime.now().year  # faketime took
    assert elsewhere["replayed"] == as_json(recording.live)


def check_miss(framework: Framework, recording: Recording, where: Path, error: str) -> None:
    """A miss reaches the program as ``error``, with tapedeck's explanation and the
    difference quoted."""
    shown = miss(framework, recording, where)
    assert shown.error == error
    assert shown.message is not None
    assert "tapedeck: " in shown.message, shown.message
    assert "Hello thar" in shown.message, shown.message  # the difference, quoted


def check_fault(
    framework: Framework, sides: Sides, case: FaultCase, column: str, error: str | None
) -> None:
    """The framework reads the fault from tapedeck as from the stand-in failing the same
    way, and as docs/clients.md's ``column`` says."""
    replayed, direct = compare_fault(framework, sides, case)
    print(f"\n{case.name}: tapedeck {replayed.shown()}\n{case.name}: stand-in {direct.shown()}")
    assert replayed == direct
    check_shown(column, case, replayed, error)
