"""The ``tapedeck`` command line.

``tapedeck serve`` runs the server; ``ls``, ``show``, ``lint`` and ``new`` work on cassette
files (:mod:`tapedeck.tools`, docs/tools.md). Every option is also an environment variable
(``TAPEDECK_<NAME>``) and a key of the ``--config`` YAML file; a flag beats the
environment, which beats the file, which beats the default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .config import OPTIONS, Settings, from_flags, resolve
from .config.discovery import cassette_dir, settings_layers
from .config.settings import resolve_sources
from .config.suggest import nearest_directory, unrecognized
from .errors import BindError, ConfigError, LibraryError, PortInUse
from .server.binding import free_port_after, tapedeck_on
from .server.runner import run
from .tools import effective, lint, listing, new_command
from .version import __version__

_SERVE_HELP = """\
Answer Anthropic Messages API requests (POST /v1/messages and any /v1/ path) from the
YAML cassettes in a directory, streaming Server-Sent Events with the recorded timing.

Point an SDK at it:  ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=test

Request headers: x-tapedeck-cassette NAME (use this cassette), x-tapedeck-test-id ID
(separate sequence positions), x-tapedeck-timing SPEC (pace this response).
Admin: GET /_tapedeck/health, POST /_tapedeck/reset, GET /_tapedeck/journal; GET /metrics;
the web view at /_tapedeck/ui/ (docs/observe.md).

Timing SPEC: recorded | speed=F | fixed=MS | instant.
Every option can also be set as TAPEDECK_<OPTION> (e.g. TAPEDECK_PORT=9000) or as a
key of the --config file (e.g. "port: 9000"). Precedence: flag > env > file > default.
Exit status 2: bad option, config or cassette (the message names file and line).
"""


_PROJECT_DIR = (
    "the project's: the cassettes setting of its tapedeck.yaml or [tool.tapedeck], else "
    "tests/cassettes or ./cassettes, whichever exists"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tapedeck",
        description="Record, replay and break Anthropic Messages API traffic for tests.",
        epilog="Run 'tapedeck serve --help' for the server's options.",
    )
    parser.add_argument("--version", action="version", version=f"tapedeck {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="serve cassettes over HTTP",
        description=_SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # Whole flags only: an abbreviation would take a typo for another option
        # (--record for --record-errors); an unknown flag gets "did you mean" instead.
        allow_abbrev=False,
    )
    serve_parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of settings, keys as the options below without '--' (env: TAPEDECK_CONFIG)",
    )
    for option in OPTIONS:
        if option.switch:
            serve_parser.add_argument(
                option.flag,
                dest=option.key,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{option.full_help} [env: {option.env}]",
            )
            continue
        serve_parser.add_argument(
            option.flag,
            dest=option.key,
            metavar=option.metavar,
            action="append" if option.repeat else "store",
            help=f"{option.full_help} [env: {option.env}]",
        )
    _add_tools(commands)
    return parser


def _add_tools(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The cassette tools: ``ls``, ``show``, ``lint`` and ``new`` (docs/tools.md)."""
    ls_parser = commands.add_parser(
        "ls",
        help="list the interactions of the cassettes in a directory",
        description="One row per interaction: cassette, index, model, kind, status, events, "
        "ms to the first event, total ms, and how the response ended. Broken cassettes are "
        "reported on stderr (file:line: problem) and make the exit status 1.",
    )
    ls_parser.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the cassette directory (default: {_PROJECT_DIR})",
    )
    show_parser = commands.add_parser(
        "show",
        help="show one cassette: an agent loop as a conversation, else each interaction",
        description="NAME is a cassette name as in x-tapedeck-cassette (streaming/hello) or "
        "a path to a .yaml file.",
    )
    show_parser.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        help="a cassette name such as streaming/hello, or a .yaml file",
    )
    show_parser.add_argument(
        "--settings",
        action="store_true",
        help="instead of a cassette, the settings 'tapedeck serve' would run with, each "
        "matching rule with where it came from (a preset, the config file, a variable, a "
        "flag); serve's options may follow, e.g. --settings --preset claude-code",
    )
    show_parser.add_argument(
        "--cassettes",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the cassette directory NAME is in (default: {_PROJECT_DIR})",
    )
    show_parser.add_argument(
        "--interactions",
        action="store_true",
        help="each interaction in full, also for an agent loop (shown as a conversation)",
    )
    lint_parser = commands.add_parser(
        "lint",
        help="check cassettes: schema, event order, event data, secrets",
        description="Check cassette files (or every cassette under a directory). Prints "
        "file:line: problem for each problem and exits 1, or a summary and exits 0.",
    )
    lint_parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="cassette files or directories to check (default: the project's cassette directory); "
        "exit 1 on problems",
    )
    lint_parser.add_argument(
        "--max-age",
        type=lint.parse_age,
        metavar="AGE",
        help="also flag interactions recorded longer ago than AGE, e.g. 90d, 12w or 36h",
    )
    new_command.add_parser(commands, _PROJECT_DIR)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tapedeck`` console script; returns the exit status."""
    parser = _parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["show"] and "--settings" in words:
        return _show_settings(parser, [w for w in words[1:] if w != "--settings"])
    args, extras = parser.parse_known_args(argv)
    if args.command == "show" and args.name is None:
        parser.error("show: give a cassette NAME, or --settings")
    if extras:
        command = _command_parser(parser, args.command)
        parser.error(unrecognized(extras, command._option_string_actions, command.prog))
    if args.command == "serve":
        return _serve(vars(args))
    try:
        if args.command == "ls":
            return listing.ls(cassette_dir(args.dir, os.environ))
        if args.command == "show":
            return listing.show(
                args.name, cassette_dir(args.cassettes, os.environ), args.interactions
            )
        if args.command == "lint":
            return lint.lint(args.paths or [cassette_dir(None, os.environ)], args.max_age)
        if args.command == "new":
            args.cassettes = cassette_dir(args.cassettes, os.environ)
            return new_command.run(args, list(argv if argv is not None else sys.argv[1:]))
    except ConfigError as exc:
        return _fail(str(exc))
    return 2  # pragma: no cover - argparse rejects unknown commands


def _show_settings(parser: argparse.ArgumentParser, words: list[str]) -> int:
    """``tapedeck show --settings [serve's options]``: what ``serve`` would run with."""
    serve = _command_parser(parser, "serve")
    known, extras = serve.parse_known_args(words)
    if extras:
        serve.error(unrecognized(extras, serve._option_string_actions, "tapedeck serve"))
    flags = vars(known)
    config = flags.get("config") or os.environ.get("TAPEDECK_CONFIG")
    try:
        given = Path(str(config)) if config else None
        settings, sources = resolve_sources(from_flags(flags), *settings_layers(os.environ, given))
    except ConfigError as exc:
        return _fail(str(exc))
    print(effective.render(settings, sources))
    return 0


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    return parser  # pragma: no cover - the parser always has its commands


def _fail(message: str) -> int:
    print(f"tapedeck: error: {message}", file=sys.stderr)
    return 2


def _serve(flags: dict[str, object]) -> int:
    config = flags.get("config") or os.environ.get("TAPEDECK_CONFIG")
    try:
        given = Path(str(config)) if config else None
        settings = resolve(from_flags(flags), *settings_layers(os.environ, given))
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        run(settings)
    except LibraryError as exc:
        if not settings.cassettes.exists():
            return _fail(_no_directory(settings))
        for error in exc.errors:
            print(error, file=sys.stderr)
        return _fail(
            f"{len(exc.errors)} cassette problem(s) in {settings.cassettes}; "
            "fix them and start again (the format is described in docs/cassettes.md)"
        )
    except PortInUse as exc:
        return _fail(_port_in_use(exc, os.environ))
    except (BindError, ConfigError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C before uvicorn took over the signals, or re-raised by it
        pass
    return 0


def _no_directory(settings: Settings) -> str:
    """A replay-only mode was given a cassette directory that does not exist."""
    near = nearest_directory(settings.cassettes)
    return (
        f"{settings.cassettes}: no such cassette directory"
        + (f" (did you mean {near}?)" if near else "")
        + f"; mode {settings.mode} does not create one: give the right --cassettes DIR, or "
        "record into a new one with --mode once"
    )


def _port_in_use(exc: PortInUse, env: Mapping[str, str]) -> str:
    """Who holds the port, and how to choose another: as ``make run`` takes it when the
    Makefile's run target started tapedeck (it sets ``TAPEDECK_VIA_MAKE_RUN``; make's own
    ``MAKELEVEL`` would also be set under ``make test``), else as a flag or variable."""
    there = tapedeck_on(exc.host, exc.port)
    if there is not None:
        held = (
            f"another tapedeck is serving on it ({there.get('mode')} mode, "
            f"{there.get('cassettes')} cassettes); stop it, or choose another port"
        )
    else:
        held = "another program (or another tapedeck) holds it; choose another port"
    free = free_port_after(exc.host, exc.port)
    port = str(free) if free else "N"
    noted = f" ({free} is free)" if free else ""
    if env.get("TAPEDECK_VIA_MAKE_RUN"):
        how = f"make run PORT={port}{noted}, or PORT=0 for any free port"
    else:
        how = f"--port {port} or TAPEDECK_PORT={port}{noted}, or --port 0 for any free port"
    return f"cannot listen on {exc.host}:{exc.port}: {held}: {how}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
