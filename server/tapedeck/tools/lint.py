"""``tapedeck lint``: check cassette files beyond what loading them checks.

Every file is loaded with the same loader as the server (schema, version, time order),
then its event streams are checked against the streaming protocol, known events' data
against their names, and the whole file for secrets. Problems are reported as
``file:line: problem``, with the line of the event or field concerned.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cassette.load import parse_cassette
from ..cassette.model import Cassette
from ..cassette.yaml_source import LineDict, load_yaml
from ..errors import CassetteError, YAMLSourceError
from ..record.redact import KEY_PATTERN, PLACEHOLDER, SECRET_HEADERS
from .common import expand, fail, name_of

#: Event names with a documented data shape: data must be a mapping with this ``type``.
KNOWN_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)

#: Which block types each delta type may fill in.
DELTA_BLOCKS: dict[str, frozenset[str]] = {
    "text_delta": frozenset({"text"}),
    "citations_delta": frozenset({"text"}),
    "input_json_delta": frozenset({"tool_use", "server_tool_use", "mcp_tool_use"}),
    "thinking_delta": frozenset({"thinking"}),
    "signature_delta": frozenset({"thinking"}),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``str()`` is ``file:line: message``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else f"{self.file}: {self.message}"
        )


def _line(mapping: Any, key: str | None = None) -> int:
    if isinstance(mapping, LineDict):
        return mapping.line_of(key) if key is not None else mapping.line
    return 0


def secrets_in_text(text: str) -> Iterator[tuple[int, str]]:
    """``(line, problem)`` for every key-shaped string in ``text`` (the placeholder aside)."""
    for number, line in enumerate(text.splitlines(), 1):
        for match in KEY_PATTERN.finditer(line):
            if match.group() != PLACEHOLDER:
                shown = match.group()[:10] + "…"
                yield number, f"key-shaped string {shown!r}: remove it or use {PLACEHOLDER!r}"


@dataclass
class _Stream:
    """The protocol state of one event stream, as its events are read in order."""

    where: str
    started: bool = False
    kinds: dict[int, str] = field(default_factory=dict)
    stopped: set[int] = field(default_factory=set)
    message_delta: bool = False
    message_stop: bool = False
    error: bool = False
    problems: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, i: int, problem: str) -> None:
        self.problems.append((line, f"{self.where}.events[{i}]: {problem}"))

    def event(self, i: int, name: str, data: Any, line: int) -> None:
        """Check event ``i`` (already known to have data of the right type) against the order."""
        if name == "ping":
            return
        if self.error:
            self.add(line, i, f"{name} after the error event (an error event ends the stream)")
            return
        if self.message_stop:
            self.add(line, i, f"{name} after message_stop")
            return
        if name == "error":
            self.error = True
            return
        if name == "message_start":
            if self.started:
                self.add(line, i, "second message_start")
            self.started = True
            return
        if not self.started:
            self.add(line, i, f"{name} before message_start (message_start must come first)")
            self.started = True
        if name in ("content_block_start", "content_block_delta", "content_block_stop"):
            self._block_event(i, name, data, line)
        elif name == "message_delta":
            self._open_blocks(i, line, "message_delta")
            self.message_delta = True
        elif name == "message_stop":
            self._open_blocks(i, line, "message_stop")
            if not self.message_delta:
                self.add(line, i, "message_stop without a message_delta before it")
            self.message_stop = True

    def _open_blocks(self, i: int, line: int, name: str) -> None:
        for index in sorted(set(self.kinds) - self.stopped):
            self.add(line, i, f"{name} while block {index} is not stopped")
            self.stopped.add(index)

    def _block_event(self, i: int, name: str, data: dict[str, Any], line: int) -> None:
        index = data.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            self.add(line, i, f"{name} without an integer index")
            return
        if name == "content_block_start":
            if self.message_delta:
                self.add(line, i, f"content_block_start for block {index} after message_delta")
            if index in self.kinds:
                self.add(line, i, f"content_block_start for block {index}, which already started")
                return
            expected = len(self.kinds)
            if index != expected:
                self.add(line, i, f"content_block_start for block {index}, expected {expected}")
            block = data.get("content_block")
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                self.add(line, i, f"content_block_start for block {index} has no content_block")
                self.kinds[index] = "?"
            else:
                self.kinds[index] = block["type"]
            return
        if index not in self.kinds:
            self.add(line, i, f"{name} for block {index} before its content_block_start")
            return
        if index in self.stopped:
            what = "stopped twice" if name == "content_block_stop" else "after its stop"
            self.add(line, i, f"{name} for block {index} {what}")
            return
        if name == "content_block_stop":
            self.stopped.add(index)
            return
        delta = data.get("delta")
        dtype = delta.get("type") if isinstance(delta, dict) else None
        if not isinstance(dtype, str):
            self.add(line, i, f"content_block_delta for block {index} has no delta type")
            return
        allowed = DELTA_BLOCKS.get(dtype)
        kind = self.kinds[index]
        if allowed is not None and kind != "?" and kind not in allowed:
            self.add(line, i, f"{dtype} for block {index}, a {kind} block")

    def finish(self, end: str, line: int) -> None:
        """Check the end of the stream; ``line`` is its last event's (or the events') line."""
        if self.error or self.message_stop or end == "disconnect":
            return
        self.problems.append(
            (
                line,
                f"{self.where}.events: the stream ends without message_stop (expected "
                "message_stop last, an error event, or 'end: disconnect')",
            )
        )


def _data_problem(name: str, data: Any) -> str | None:
    if name not in KNOWN_EVENTS:
        return None
    if not isinstance(data, dict):
        return f"data of a {name} event must be a mapping, got {type(data).__name__}"
    expected = "error" if name == "error" else name
    if data.get("type") != expected:
        return f"data.type is {data.get('type')!r}, expected {expected!r} for a {name} event"
    return None


def check_events(where: str, response: LineDict) -> list[tuple[int, str]]:
    """Protocol and data problems of one response's ``events``, with their lines."""
    items = response.get("events")
    if not isinstance(items, list):
        return []
    stream = _Stream(where)
    last_line = _line(response, "events")
    for i, item in enumerate(items):
        name, data = item["event"], item["data"]
        last_line = _line(item, "event")
        problem = _data_problem(name, data)
        if problem:
            stream.add(_line(item, "data"), i, problem)
            continue
        stream.event(i, name, data, last_line)
    stream.finish(str(response.get("end", "complete")), last_line)
    return stream.problems


def check_headers(where: str, mapping: LineDict) -> list[tuple[int, str]]:
    """Secret headers (``authorization``, ``x-api-key``, cookies, ...) in ``mapping.headers``."""
    headers = mapping.get("headers")
    if not isinstance(headers, LineDict):
        return []
    return [
        (headers.line_of(name), f"{where}.headers: secret header {name!r}; remove it")
        for name in headers
        if isinstance(name, str) and name.lower() in SECRET_HEADERS
    ]


def lint_text(text: str, file: str, max_age: datetime.timedelta | None = None) -> list[Problem]:
    """Every problem in one cassette file's text, sorted by line; with ``max_age``,
    interactions recorded longer ago than that are problems too."""
    found: list[tuple[int, str]] = list(secrets_in_text(text))
    try:
        cassette = parse_cassette(text, file, name_of(Path(file), None))
        if max_age is not None:
            found += stale(cassette, max_age)
    except CassetteError as exc:
        found.append((exc.line, exc.message))
        return [Problem(file, line, msg) for line, msg in sorted(found, key=lambda p: p[0])]
    try:
        document = load_yaml(text)
    except YAMLSourceError as exc:  # read by the fast parser, refused by the exact one
        found.append((exc.line, exc.message))
        return [Problem(file, line, msg) for line, msg in sorted(found, key=lambda p: p[0])]
    for i, item in enumerate(document["interactions"]):
        where = f"interactions[{i}]"
        request, response = item["request"], item["response"]
        found += check_headers(f"{where}.request", request)
        found += check_headers(f"{where}.response", response)
        found += check_events(f"{where}.response", response)
    return [Problem(file, line, msg) for line, msg in sorted(found, key=lambda p: p[0])]


def stale(cassette: Cassette, max_age: datetime.timedelta) -> list[tuple[int, str]]:
    """The interactions of ``cassette`` recorded longer ago than ``max_age``."""
    now = datetime.datetime.now(datetime.UTC)
    found = []
    for i, interaction in enumerate(cassette.interactions):
        if interaction.recorded_at is None:
            continue
        age = now - datetime.datetime.fromisoformat(interaction.recorded_at)
        if age > max_age:
            found.append(
                (
                    interaction.line,
                    f"interactions[{i}]: recorded {age.days} days ago ({interaction.recorded_at}), "
                    f"longer ago than --max-age {_age_text(max_age)}; record it again",
                )
            )
    return found


_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> datetime.timedelta:
    """``90d``, ``12w``, ``36h``, ``30m`` or ``45s`` as a duration (for ``--max-age``)."""
    match = _AGE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected an age such as 90d, 12w or 36h, got {text!r}")
    return datetime.timedelta(seconds=int(match.group(1)) * _AGE_UNITS[match.group(2)])


def _age_text(age: datetime.timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _AGE_UNITS[unit] == 0:
            return f"{seconds // _AGE_UNITS[unit]}{unit}"
    return f"{seconds}s"


def lint_file(path: Path, max_age: datetime.timedelta | None = None) -> list[Problem]:
    """Every problem in the cassette file at ``path``."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [Problem(file, 0, f"cannot read: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [Problem(file, line, f"not UTF-8 text ({exc.reason}); save it as UTF-8")]
    return lint_text(text, file, max_age)


def lint(paths: Sequence[Path], max_age: datetime.timedelta | None = None) -> int:
    """Lint the cassette files and directories ``paths``; 0 when clean, 1 on problems."""
    try:
        files = expand(paths)
    except FileNotFoundError as exc:
        return fail(f"{exc}: no such file or directory")
    problems: list[Problem] = []
    bad = 0
    for path, _root in files:
        found = lint_file(path, max_age)
        bad += bool(found)
        problems += found
    for problem in problems:
        print(problem)
    if problems:
        print(
            f"tapedeck lint: {len(problems)} problem(s) in {bad} of {len(files)} file(s)",
            file=sys.stderr,
        )
        return 1
    print(f"tapedeck lint: {len(files)} cassette file(s), no problems")
    return 0
