"""The ``tapedeck`` command line.

``tapedeck serve`` runs the server. Every option is also an environment variable
(``TAPEDECK_<NAME>``) and a key of the ``--config`` YAML file; a flag beats the
environment, which beats the file, which beats the default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .library import LibraryError
from .serve import BindError, serve
from .settings import OPTIONS, ConfigError, resolve

_SERVE_HELP = """\
Answer Anthropic Messages API requests (POST /v1/messages and any /v1/ path) from the
YAML cassettes in a directory, streaming Server-Sent Events with the recorded timing.

Point an SDK at it:  ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=test

Request headers: x-tapedeck-cassette NAME (use this cassette), x-tapedeck-test-id ID
(separate sequence positions), x-tapedeck-timing SPEC (pace this response).
Admin: GET /_tapedeck/health, POST /_tapedeck/reset.

Timing SPEC: recorded | speed=F | fixed=MS | instant.
Every option can also be set as TAPEDECK_<OPTION> (e.g. TAPEDECK_PORT=9000) or as a
key of the --config file (e.g. "port: 9000"). Precedence: flag > env > file > default.
Exit status 2: bad option, config or cassette (the message names file and line).
"""


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
    )
    serve_parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of settings, keys as the options below without '--' (env: TAPEDECK_CONFIG)",
    )
    for option in OPTIONS:
        serve_parser.add_argument(
            option.flag,
            dest=option.key,
            metavar=option.metavar,
            action="append" if option.repeat else "store",
            help=f"{option.help} [env: {option.env}]",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tapedeck`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(vars(args))
    return 2  # pragma: no cover - argparse rejects unknown commands


def _fail(message: str) -> int:
    print(f"tapedeck: error: {message}", file=sys.stderr)
    return 2


def _serve(flags: dict[str, object]) -> int:
    config = flags.get("config") or os.environ.get("TAPEDECK_CONFIG")
    try:
        settings = resolve(flags, os.environ, Path(str(config)) if config else None)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        serve(settings)
    except LibraryError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return _fail(
            f"{len(exc.errors)} cassette problem(s) in {settings.cassettes}; "
            "fix them and start again (the format is described in docs/cassettes.md)"
        )
    except (BindError, ConfigError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C before uvicorn took over the signals, or re-raised by it
        pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
