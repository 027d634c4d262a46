"""The ``tapedeck new`` command line: its options, and the cassette they write
(one reply with :mod:`.new`, a whole loop with :mod:`.script`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..cassette.yaml_source import load_yaml
from ..errors import UsageError, YAMLSourceError
from .authoring import DEFAULT_MODEL
from .common import fail
from .new import Options, new, parse_tool

#: The reply options a script replaces.
_REPLY_FLAGS = ("text", "thinking", "tool", "tools", "error", "status", "prompt", "system")


def add_parser(commands: Any, project_dir: str) -> None:
    """Add ``new`` to the ``tapedeck`` subcommands."""
    parser = commands.add_parser(
        "new",
        help="write a hand-made cassette from a few options, or a tool loop from a script",
        description="Write DIR/NAME.yaml: a streamed reply (thinking, text, tool calls) or an "
        "error, or with --script a multi-step tool loop; each request matches on the "
        "conversation (messages, and system and tools when given) only.",
    )
    add = parser.add_argument
    add("name", metavar="NAME", help="cassette name, e.g. chat/greeting")
    add(
        "--cassettes",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the cassette directory to write into (default: {project_dir})",
    )
    add("--script", type=Path, metavar="FILE", help="write the tool loop this YAML file scripts")
    add("--text", help="the reply's text")
    add("--thinking", help="a thinking block before the text")
    add(
        "--tool",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='a tool call in the reply, e.g. get_weather=\'{"city": "Paris"}\' (repeatable)',
    )
    add(
        "--tools",
        type=Path,
        metavar="FILE",
        help="the tool definitions the request sends (a JSON or YAML list); matched on",
    )
    add("--error", metavar="TYPE", help="end the stream with this error")
    add("--status", type=int, metavar="CODE", help="answer this HTTP error")
    add("--model", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    add("--prompt", help="the user message (default Hello)")
    add("--system", help="a system prompt (matched on)")
    add(
        "--ttft-ms",
        type=float,
        default=300.0,
        metavar="MS",
        help="time to the first token: when the headers and first event come (default: 300)",
    )
    add(
        "--tokens-per-second",
        type=float,
        default=60.0,
        metavar="N",
        help="pace of the deltas after the first event (default: 60)",
    )
    add("--force", action="store_true", help="overwrite an existing cassette")


def definitions(path: Path) -> list[Any]:
    """The tool definitions in ``path``: a JSON or YAML list of ``{name, ...}`` mappings."""
    try:
        value = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--tools {path}: cannot read it: {exc.strerror}") from None
    except YAMLSourceError as exc:
        raise UsageError(f"{path}:{exc.line}: {exc.message}") from None
    if not isinstance(value, list) or not all(isinstance(t, dict) and "name" in t for t in value):
        raise UsageError(f"{path}: expected a list of tool definitions, each with a name")
    plain: list[Any] = json.loads(json.dumps(value))  # plain dicts, as they go on the wire
    return plain


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Write the cassette ``args`` ask for; 2 for bad options, 1 if it exists."""
    given = [f"--{f}" for f in _REPLY_FLAGS if getattr(args, f) not in (None, [])]
    if args.script is not None and given:
        return fail(f"--script writes the whole loop; leave out {', '.join(given)}")
    try:
        options = Options(
            name=args.name,
            text=args.text,
            thinking=args.thinking,
            tools=[parse_tool(spec) for spec in args.tool],
            definitions=None if args.tools is None else definitions(args.tools),
            error=args.error,
            status=args.status,
            model=args.model,
            prompt="Hello" if args.prompt is None else args.prompt,
            system=args.system,
            ttft_ms=args.ttft_ms,
            tokens_per_second=args.tokens_per_second,
            script=args.script,
        )
    except UsageError as exc:
        return fail(str(exc))
    shown = _content_args(argv[argv.index("new") + 1 :] if "new" in argv else argv)
    return new(options, args.cassettes, args.force, shown)


def _content_args(argv: list[str]) -> list[str]:
    """``new``'s arguments without ``--cassettes DIR`` and ``--force``, for the description."""
    shown: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--cassettes":
            skip = True
        elif arg != "--force" and not arg.startswith("--cassettes="):
            shown.append(arg)
    return shown
