"""The cassette library as JSON, for the web view (and anything else that would rather not
read YAML):

- ``GET /_tapedeck/cassettes``: every loaded cassette in a line — interactions, kinds,
  events, recorded duration, ``recorded_at``, size;
- ``GET /_tapedeck/cassettes/{name}``: that line, and the interactions — the request in short,
  the response with each event's offset, kind and block type, how it ended, and the
  message its events assemble into.

Both read what the library loaded at start-up (or recorded since): a name is looked up
among the loaded cassettes, never opened as a file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..cassette.message_stream import assemble
from ..cassette.model import Cassette, Interaction, RecordedEvent, RecordedResponse
from ..cassette.summary import ending, first_event_ms, last_user_message, model_of, total_ms
from ..errors import APIError

_SUMMARY_CHARS = 120


def response_kind(response: RecordedResponse) -> str:
    """``error`` (an HTTP error or a stream that ends in one), ``stream`` or ``json``."""
    if response.status >= 400 or ending(response).startswith("error"):
        return "error"
    return "stream" if response.events is not None else "json"


def end_kind(response: RecordedResponse) -> str:
    """How a response ended, as the chart marks it: ``complete``, ``error``, ``cut`` (the
    connection dropped) or ``incomplete`` (a stream that stops without ``message_stop``)."""
    end = ending(response)
    if end.startswith("error"):
        return "error"
    return {"disconnect": "cut"}.get(end, end)


def cassette_line(cassette: Cassette) -> dict[str, Any]:
    """One row of ``GET /_tapedeck/cassettes``."""
    interactions = cassette.interactions
    kinds: list[str] = []
    for interaction in interactions:
        found = response_kind(interaction.response)
        if found not in kinds:
            kinds.append(found)
    stamps = [i.recorded_at for i in interactions if i.recorded_at]
    return {
        "name": cassette.name,
        "path": cassette.path,
        "description": cassette.description,
        "interactions": len(interactions),
        "kinds": kinds,
        "models": sorted({model_of(i) for i in interactions}),
        "events": sum(len(i.response.events or ()) for i in interactions),
        "duration_ms": max(total_ms(i.response) for i in interactions),
        "recorded_at": max(stamps) if stamps else None,
        "size": cassette.size,
    }


def _summary(data: Any) -> str:
    """A few words on what an event carries: the text of a delta, a block's name, ..."""
    if not isinstance(data, Mapping):
        return str(data)[:_SUMMARY_CHARS]
    delta = data.get("delta")
    if isinstance(delta, Mapping):
        for field in ("text", "thinking", "partial_json", "stop_reason"):
            if isinstance(delta.get(field), str):
                return str(delta[field])[:_SUMMARY_CHARS]
        if "signature" in delta:
            return "(signature)"
    block = data.get("content_block")
    if isinstance(block, Mapping):
        name = block.get("name")
        return f"{block.get('type')} {name}" if name else str(block.get("type"))
    error = data.get("error")
    if isinstance(error, Mapping):
        return f"{error.get('type')}: {error.get('message')}"[:_SUMMARY_CHARS]
    return ""


def event_rows(events: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    """Each event: index, name, offset, the type of the content block it belongs to (for
    ``content_block_*`` events), its delta type, a short summary and its size."""
    blocks: dict[Any, str] = {}
    rows = []
    for i, event in enumerate(events):
        data = event.data if isinstance(event.data, Mapping) else {}
        block_type = None
        if event.event.startswith("content_block"):
            index = data.get("index")
            started = data.get("content_block")
            if isinstance(started, Mapping):
                blocks[index] = str(started.get("type"))
            block_type = blocks.get(index)
        delta = data.get("delta")
        rows.append(
            {
                "index": i,
                "event": event.event,
                "at_ms": event.at_ms,
                "block": block_type,
                "delta": delta.get("type") if isinstance(delta, Mapping) else None,
                "summary": _summary(event.data),
                "bytes": len(json.dumps(event.data, ensure_ascii=False)),
            }
        )
    return rows


def _message(response: RecordedResponse) -> tuple[Any, str | None]:
    """The message the response's events assemble into (or its JSON body), and why not."""
    if response.events is None:
        return (response.body if response.body is not None else response.text), None
    pairs = [(e.event, e.data) for e in response.events if e.event != "error"]
    try:
        return assemble(pairs), None
    except ValueError as exc:
        return None, str(exc)


def interaction_view(index: int, interaction: Interaction) -> dict[str, Any]:
    """One interaction of ``GET /_tapedeck/cassettes/{name}``."""
    request, response = interaction.request, interaction.response
    body = request.body if isinstance(request.body, Mapping) else {}
    tools = body.get("tools")
    message, problem = _message(response)
    return {
        "index": index,
        "line": interaction.line,
        "recorded_at": interaction.recorded_at,
        "request": {
            "method": request.method,
            "path": request.path,
            "model": model_of(interaction),
            "stream": body.get("stream") is True,
            "last_user": last_user_message(request.body),
            "tools": [str(t.get("name")) for t in tools if isinstance(t, Mapping)]
            if isinstance(tools, list)
            else [],
            "match": list(request.match) if request.match is not None else None,
            "body": request.body,
        },
        "response": {
            "status": response.status,
            "kind": response_kind(response),
            "end": end_kind(response),
            "ending": ending(response),
            "time_to_headers_ms": response.time_to_headers_ms,
            "first_event_ms": first_event_ms(response),
            "total_ms": total_ms(response),
            "end_at_ms": response.end_at_ms,
            "events": event_rows(response.events) if response.events is not None else None,
            "message": message,
            "assemble_error": problem,
        },
    }


async def cassettes(request: Request) -> Response:
    """``GET /_tapedeck/cassettes``: every loaded cassette, by name."""
    library = request.app.state.handler.library
    lines = [cassette_line(c) for _, c in sorted(library.cassettes.items())]
    return JSONResponse({"cassettes": lines})


async def cassette(request: Request) -> Response:
    """``GET /_tapedeck/cassettes/{name}``: one loaded cassette's interactions."""
    library = request.app.state.handler.library
    name = request.path_params["name"].removesuffix(".yaml")
    found = library.cassettes.get(name)
    if found is None:
        raise APIError(404, f"tapedeck: no cassette {name!r} is loaded")
    interactions = [interaction_view(i, it) for i, it in enumerate(found.interactions)]
    return JSONResponse({"cassette": cassette_line(found), "interactions": interactions})
