"""``tapedeck lint``: check cassette files beyond what loading them checks.

Every file is loaded with the same loader as the server (schema, version, time order),
then its event streams are checked against the streaming protocol and known events' data
against their names, by the check the loader refuses broken streams with
(:mod:`tapedeck.cassette.event_order`; lint reports every finding, not only those), and the
whole file for secrets. Problems are reported as ``file:line: problem``, with the line of
the event or field concerned.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cassette.blobs import missing
from ..cassette.event_order import check_stream
from ..cassette.load import parse_cassette
from ..cassette.model import Cassette
from ..cassette.yaml_source import LineDict, load_yaml
from ..errors import CassetteError, YAMLSourceError
from ..record.redact import KEY_PATTERN, PLACEHOLDER, SECRET_HEADERS
from .common import expand, fail, name_of


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


def check_events(where: str, response: LineDict) -> list[tuple[int, str]]:
    """Protocol and data problems of one response's ``events``, with their lines: every
    finding of :func:`~tapedeck.cassette.event_order.check_stream`, those that make the
    loader refuse the file included."""
    items = response.get("events")
    if not isinstance(items, list):
        return []
    end = str(response.get("end", "complete"))
    found = []
    for finding in check_stream(((item["event"], item["data"]) for item in items), end):
        if finding.index is None:  # about the stream's end: shown at its last event
            line = _line(items[-1], "event") if items else _line(response, "events")
        else:
            line = _line(items[finding.index], finding.line_of)
        found.append((line, f"{finding.where(f'{where}.events')}: {finding.message}"))
    return found


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
        if Path(file).is_file():  # the bytes of binary bodies, beside it
            found += missing(file, cassette.interactions)
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
