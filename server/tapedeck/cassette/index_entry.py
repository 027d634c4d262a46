"""An index entry: what the library index keeps of one cassette (requests, response heads,
and for each stream its event count, first and last events and thinking signatures), and
the cassette a serving library uses, made from an entry or straight from a parse, its
streams' events read from the file on first use (:mod:`.lazy_events`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .blobs import uploads_in
from .lazy_events import EventStore, LazyEvents, Stamp
from .model import (
    Blob,
    Cassette,
    Client,
    Interaction,
    RecordedEvent,
    RecordedRequest,
    RecordedResponse,
    StreamEnd,
)
from .normalize import Normalize


def _signatures(events: Iterable[RecordedEvent]) -> list[list[str]]:
    """The reply's thinking blocks as ``[signature, text]`` (what validation compares)."""
    texts: dict[Any, list[str]] = {}
    found: list[list[str]] = []
    for event in events:
        data = event.data
        delta = data.get("delta") if isinstance(data, dict) else None
        if not isinstance(delta, dict) or event.event != "content_block_delta":
            continue
        if delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
            texts.setdefault(data.get("index"), []).append(delta["thinking"])
        elif delta.get("type") == "signature_delta" and isinstance(delta.get("signature"), str):
            found.append([delta["signature"], "".join(texts.get(data.get("index"), []))])
    return found


def thinks(request: RecordedRequest) -> bool:
    """Whether the request turned thinking on (only then can its reply think)."""
    body = request.body
    thinking = body.get("thinking") if isinstance(body, dict) else None
    return isinstance(thinking, dict) and thinking.get("type") != "disabled"


def entry_of(
    cassette: Cassette,
    stamp: Stamp,
    counts: Mapping[int, int] | None = None,
    digest: str | None = None,
) -> dict[str, Any]:
    """The index entry of ``cassette``; ``counts``: the event count of each interaction
    whose stream start-up read only the first and last events of (:mod:`.skeleton`);
    ``digest``: the SHA-256 of the file it was read from."""
    interactions = []
    for i, interaction in enumerate(cassette.interactions):
        request, response = interaction.request, interaction.response
        head: dict[str, Any] = {
            "status": response.status,
            "headers": [list(h) for h in response.headers],
            "ttfh": response.time_to_headers_ms,
        }
        if response.events is not None:
            events = response.events
            first, last = (events[0], events[-1]) if events else (None, None)
            head.update(
                count=len(events) if counts is None else counts.get(i, len(events)),
                first=None if first is None else [first.event, first.data, first.at_ms],
                last=None if last is None else [last.event, last.data, last.at_ms],
                end=response.end.value,
                end_at=response.end_at_ms,
                thinking=_signatures(events) if thinks(request) else [],
            )
        else:
            head.update(body=response.body, text=response.text)
            if response.binary is not None:
                head["binary"] = [response.binary.sha256, response.binary.size]
        interactions.append(
            {
                "line": interaction.line,
                "at": interaction.recorded_at,
                "request": [
                    request.method,
                    request.path,
                    [list(q) for q in request.query],
                    [list(h) for h in request.headers],
                    request.body,
                    None if request.match is None else list(request.match),
                ],
                "client": None
                if request.client is None
                else [request.client.name, request.client.release],
                "response": head,
            }
        )
    return {
        "stamp": list(stamp),
        "sha256": digest,
        "name": cassette.name,
        "description": cassette.description,
        "normalize": [[".".join(r.path), r.pattern.pattern, r.replace] for r in cassette.normalize],
        "interactions": interactions,
    }


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in value)


def from_entry(entry: Mapping[str, Any], display: str, file: str, store: EventStore) -> Cassette:
    """The cassette a serving library keeps, from its index ``entry`` (a cached one)."""
    stamp: Stamp = (int(entry["stamp"][0]), int(entry["stamp"][1]))
    interactions = []
    for i, item in enumerate(entry["interactions"]):
        method, path, query, headers, body, match = item["request"]
        match = None if match is None else tuple(match)
        known = item.get("client")  # an older entry has none: its file could not have one
        client = None if known is None else Client(known[0], known[1])
        request = RecordedRequest(
            method, path, _pairs(query), _pairs(headers), body, match, client, uploads_in(body)
        )
        head = item["response"]
        events = None
        if "count" in head:
            first = None if head["first"] is None else RecordedEvent(*head["first"])
            last = None if head["last"] is None else RecordedEvent(*head["last"])
            thinking = tuple((s, t) for s, t in head["thinking"])
            events = LazyEvents(
                store, file, stamp, i, head["count"], (first, last), thinking, item["line"]
            )
        response = RecordedResponse(
            status=head["status"],
            headers=_pairs(head["headers"]),
            time_to_headers_ms=head["ttfh"],
            body=head.get("body"),
            text=head.get("text"),
            events=events,
            end=StreamEnd(head.get("end", "complete")),
            end_at_ms=head.get("end_at"),
            binary=None if "binary" not in head else Blob(*head["binary"]),
        )
        interactions.append(Interaction(request, response, item["line"], item["at"]))
    return Cassette(
        name=entry["name"],
        path=display,
        interactions=tuple(interactions),
        description=entry["description"],
        normalize=tuple(
            Normalize.parse({"path": p, "pattern": pattern, "replace": replace})
            for p, pattern, replace in entry["normalize"]
        ),
        size=stamp[0],  # the file's size: the bytes it was loaded from
    )


def served(
    cassette: Cassette,
    entry: Mapping[str, Any],
    display: str,
    file: str,
    store: EventStore,
) -> Cassette:
    """What :func:`from_entry` makes of ``entry``, made from the ``cassette`` just parsed
    that ``entry`` was made of (its values are taken as they are, not rebuilt)."""
    stamp: Stamp = (int(entry["stamp"][0]), int(entry["stamp"][1]))
    interactions = []
    for i, (interaction, item) in enumerate(
        zip(cassette.interactions, entry["interactions"], strict=True)
    ):
        response = interaction.response
        events = response.events
        if events is not None:
            head = item["response"]
            ends = (events[0], events[-1]) if events else (None, None)
            thinking = tuple((s, t) for s, t in head["thinking"])
            lazy = LazyEvents(store, file, stamp, i, head["count"], ends, thinking, item["line"])
            response = RecordedResponse(
                status=response.status,
                headers=response.headers,
                time_to_headers_ms=response.time_to_headers_ms,
                events=lazy,
                end=response.end,
                end_at_ms=response.end_at_ms,
            )
            interaction = Interaction(
                interaction.request, response, interaction.line, interaction.recorded_at
            )
        interactions.append(interaction)
    return Cassette(
        name=cassette.name,
        path=display,
        interactions=tuple(interactions),
        description=cassette.description,
        normalize=cassette.normalize,
        size=stamp[0],
    )
