"""``tapedeck ls`` (a table of interactions) and ``tapedeck show`` (one cassette in detail)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..cassette.files import SUFFIXES, cassette_files
from ..cassette.library import CassetteLibrary
from ..cassette.load import load_cassette
from ..cassette.matching import MatchRules
from ..cassette.message_stream import assemble
from ..cassette.model import Cassette, Interaction, RecordedResponse
from ..cassette.summary import (
    ending,
    first_event_ms,
    kind,
    last_user_message,
    model_of,
    total_ms,
)
from ..errors import CassetteError, StreamError, UnsafeNameError
from . import conversation
from .common import fail, name_of

#: The columns of ``tapedeck ls``, in order; numbers are right-aligned.
COLUMNS = ("CASSETTE", "#", "MODEL", "KIND", "STATUS", "EVENTS", "FIRST_MS", "TOTAL_MS", "END")
_NUMERIC = frozenset({"#", "STATUS", "EVENTS", "FIRST_MS", "TOTAL_MS"})


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def row(cassette: Cassette, index: int, interaction: Interaction) -> tuple[str, ...]:
    """One ``ls`` row for an interaction, in :data:`COLUMNS` order."""
    response = interaction.response
    return (
        cassette.name,
        str(index),
        model_of(interaction),
        kind(response),
        str(response.status),
        str(len(response.events)) if response.events is not None else "-",
        _ms(first_event_ms(response)),
        _ms(total_ms(response)),
        ending(response),
    )


def table(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` under the :data:`COLUMNS` header, aligned, two spaces between columns."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = []
    for cells in (COLUMNS, *rows):
        parts = [
            cell.rjust(w) if COLUMNS[i] in _NUMERIC else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def ls(root: Path) -> int:
    """Print one row per interaction of every cassette under ``root``.

    Broken cassettes are reported as ``file:line: problem`` on stderr after the table,
    and make the exit status 1.
    """
    if not root.is_dir():
        return fail(f"{root}: not a directory (expected the cassette directory)")
    rows: list[tuple[str, ...]] = []
    errors: list[CassetteError] = []
    for path in cassette_files(root):
        try:
            cassette = load_cassette(path, name_of(path, root), str(path))
        except CassetteError as exc:
            errors.append(exc)
            continue
        rows.extend(row(cassette, i, it) for i, it in enumerate(cassette.interactions))
    print(table(rows))
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


# --- show -------------------------------------------------------------------------------


def find_cassette(name: str, root: Path) -> tuple[Path, str]:
    """The file and cassette name that ``name`` refers to.

    ``name`` is a path to an existing ``.yaml``/``.yml`` file, or a cassette name as in the
    ``x-tapedeck-cassette`` header, looked up under ``root``. Raises ``UnsafeNameError`` for a
    name that leaves ``root`` and ``FileNotFoundError`` when there is no such cassette.
    """
    direct = Path(name)
    if name.endswith(SUFFIXES) and direct.is_file():
        return direct, name_of(direct, root if direct.is_relative_to(root) else None)
    clean = CassetteLibrary(root, [], MatchRules()).safe_name(name)
    for suffix in SUFFIXES:
        path = root / (clean + suffix)
        if path.is_file():
            return path, clean
    raise FileNotFoundError(f"no cassette {clean!r} in {root} (looked for {clean}.yaml)")


def _short(text: str, limit: int = 100) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def describe_message(message: Mapping[str, Any]) -> list[str]:
    """Lines describing a Message: its blocks, stop reason and usage."""
    lines = [f"message:  {message.get('id', '-')}  model {message.get('model', '-')}"]
    content = message.get("content")
    for i, block in enumerate(content if isinstance(content, list) else []):
        if not isinstance(block, Mapping):
            lines.append(f"  [{i}] {block!r}")
            continue
        btype = block.get("type")
        if btype == "text":
            lines.append(f"  [{i}] text: {_short(str(block.get('text', '')), 400)}")
        elif btype == "thinking":
            signature = str(block.get("signature") or "")
            lines.append(f"  [{i}] thinking: {_short(str(block.get('thinking', '')), 400)}")
            lines.append(f"      signature: {len(signature)} chars")
        elif btype in ("tool_use", "server_tool_use", "mcp_tool_use"):
            lines.append(
                f"  [{i}] {btype} {block.get('name')} ({block.get('id')}): "
                f"{_json_text(block.get('input'))}"
            )
        else:
            lines.append(f"  [{i}] {btype}")
    lines.append(f"stop:     {message.get('stop_reason')}")
    usage = message.get("usage")
    if isinstance(usage, Mapping):
        shown = " ".join(f"{k}={v}" for k, v in usage.items() if isinstance(v, int | float))
        lines.append(f"usage:    {shown}")
    return lines


def _output_tokens(message: Mapping[str, Any] | None) -> float | None:
    usage = message.get("usage") if message else None
    tokens = usage.get("output_tokens") if isinstance(usage, Mapping) else None
    return float(tokens) if isinstance(tokens, int | float) else None


def timing_line(response: RecordedResponse, message: Mapping[str, Any] | None) -> str:
    """The timing summary: headers, first event, total, and output tokens per second."""
    parts = [f"headers at {_ms(response.time_to_headers_ms)} ms"]
    first = first_event_ms(response)
    if first is not None:
        parts.append(f"first event at {_ms(first)} ms")
    total = total_ms(response)
    parts.append(f"total {_ms(total)} ms")
    tokens = _output_tokens(message)
    if first is not None and tokens is not None:
        seconds = (total - first) / 1000
        parts.append(f"{tokens / seconds:.1f} output tokens/s" if seconds > 0 else "- tokens/s")
    return "timing:   " + ", ".join(parts)


def describe_interaction(index: int, interaction: Interaction) -> list[str]:
    """The ``show`` lines for one interaction."""
    request, response = interaction.request, interaction.response
    lines = [f"interaction {index} (line {interaction.line})"]
    lines.append(f"request:  {request.method} {request.path}  model {model_of(interaction)}")
    user = last_user_message(request.body)
    if user is not None:
        lines.append(f"user:     {_short(user)}")
    if request.match is not None:
        lines.append(f"match:    {', '.join(request.match)}")
    events = response.events
    message: dict[str, Any] | None = None
    if events is not None:
        lines.append(
            f"response: {response.status} stream, {len(events)} events, {ending(response)}"
        )
        pairs = [(e.event, e.data) for e in events]
        cut = next((i for i, (name, _) in enumerate(pairs) if name == "error"), len(pairs))
        try:
            message = assemble(pairs[:cut])
        except ValueError as exc:
            lines.append(f"broken stream: {exc}")
        if message is not None:
            lines.extend(describe_message(message))
        if cut < len(pairs):
            error = StreamError(pairs[cut][1])
            at = _ms(events[cut].at_ms)
            lines.append(f"error:    in-stream error event at {at} ms: {error}")
    else:
        lines.append(f"response: {response.status} {kind(response)}")
        body = response.body
        if isinstance(body, Mapping) and body.get("type") == "error":
            error = StreamError(body)
            lines.append(f"error:    {error}")
        elif isinstance(body, Mapping) and body.get("type") == "message":
            message = dict(body)
            lines.extend(describe_message(message))
        elif response.text is not None:
            lines.append(f"text:     {_short(response.text, 400)}")
        elif body is not None:
            lines.append(f"body:     {_short(_json_text(body), 400)}")
    lines.append(timing_line(response, message))
    return lines


def show(name: str, root: Path, interactions: bool = False) -> int:
    """Print a cassette: an agent loop as a conversation (:mod:`.conversation`), else (or
    with ``interactions``) each interaction's request, assembled reply and timing."""
    try:
        path, clean = find_cassette(name, root)
    except UnsafeNameError as exc:
        return fail(f"bad cassette name {name!r}: {exc}")
    except FileNotFoundError as exc:
        return fail(str(exc), 1)
    try:
        cassette = load_cassette(path, clean, str(path))
    except CassetteError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{cassette.name} ({path})")
    if cassette.description:
        print(f"  {_short(cassette.description, 200)}")
    if not interactions and conversation.is_agent(cassette):
        print("\n".join(conversation.describe(cassette)))
        print("\n(tapedeck show --interactions prints each interaction in full)")
        return 0
    for i, interaction in enumerate(cassette.interactions):
        print()
        print("\n".join(describe_interaction(i, interaction)))
    return 0
