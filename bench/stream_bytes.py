"""The bench cassette read without tapedeck: its request body, each event's wire bytes and
offsets, and the headers tapedeck sends with it.

The baselines and the load generator use this rather than tapedeck's own loader, so the
benchmark measures any tapedeck version (``--tapedeck-src``) against the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class BenchStream:
    """The one interaction of a bench cassette, rendered for the wire."""

    request_body: dict[str, Any]
    status: int
    headers: list[tuple[bytes, bytes]]
    #: Each event's bytes and its offset in ms after the headers.
    events: list[tuple[bytes, float]]

    @property
    def payload(self) -> bytes:
        return b"".join(e for e, _ in self.events)

    @property
    def at_ms(self) -> list[float]:
        return [at for _, at in self.events]


def encode_event(event: str, data: Any) -> bytes:
    """``event: NAME\\ndata: JSON\\n\\n``, compact JSON, as the API frames events."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {text}\n\n".encode()


def load(path: Path) -> BenchStream:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    interaction = document["interactions"][0]
    response = interaction["response"]
    recorded = [(k.lower(), str(v)) for k, v in (response.get("headers") or {}).items()]
    headers = [
        *recorded,
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("x-tapedeck-cassette", "bench"),
        ("x-tapedeck-source", "cassette"),
    ]
    return BenchStream(
        interaction["request"]["body"],
        response["status"],
        [(k.encode(), v.encode()) for k, v in headers],
        [(encode_event(e["event"], e["data"]), float(e["at_ms"])) for e in response["events"]],
    )
