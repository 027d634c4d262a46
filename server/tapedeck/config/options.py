"""Every server setting, declared once: config key, parser, default, help, flag, env var.

The ``--flag`` and ``TAPEDECK_*`` variable are derived from the key; the help text says
the default. :mod:`tapedeck.config.settings` builds :class:`Settings` from them, and the
CLI, ``tapedeck.serve(...)`` and the pytest plugin all go through its ``resolve``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cassette.on_demand import Loading
from ..per_test import MAX_TEST_IDS
from ..shaping.timing import Timing
from ..source.platform_form import UpstreamForm
from ..source.sequences import SequenceEnd
from ..validation import Validate
from . import presets, values


class Mode(enum.StrEnum):
    """What the server does with a request: record modes as vcrpy and pytest-recording
    name them (docs/recording.md)."""

    #: Answer from cassettes only; never call the network.
    NONE = "none"
    #: Record a cassette that does not exist yet; an existing one replays, and a request
    #: it does not answer is an error.
    ONCE = "once"
    #: Replay what matches; record what does not, adding it to its cassette.
    NEW_EPISODES = "new_episodes"
    #: Send every request upstream and re-record what the run touches.
    ALL = "all"
    #: Proxy every request upstream without writing anything.
    PASSTHROUGH = "passthrough"
    # The earlier names, kept as aliases.
    REPLAY = "none"
    AUTO = "new_episodes"
    RECORD = "all"

    @classmethod
    def _missing_(cls, value: object) -> Mode | None:
        text = str(value).strip().lower().replace("-", "_")
        return _ALIASES.get(text) or next((m for m in cls if m.value == text), None)

    @property
    def proxies(self) -> bool:
        """Whether any request may go upstream."""
        return self is not Mode.NONE

    @property
    def records(self) -> bool:
        """Whether answers from upstream are written to cassettes."""
        return self in (Mode.ONCE, Mode.NEW_EPISODES, Mode.ALL)


_ALIASES = {"replay": Mode.NONE, "auto": Mode.NEW_EPISODES, "record": Mode.ALL}


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its key (also the ``Settings`` field), parser, default and help."""

    key: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    metavar: str
    #: How the default reads in the help ("" for none: the help says what happens).
    shown: str = ""
    #: The flag may be given several times (its values arrive as a list).
    repeat: bool = False
    flag_name: str = ""
    #: An on/off setting: ``--key`` and ``--no-key`` on the command line, no value.
    switch: bool = False

    @property
    def env(self) -> str:
        return "TAPEDECK_" + self.key.upper()

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.key.replace("_", "-"))

    @property
    def flags(self) -> str:
        """How the help lists the flag: ``--flag METAVAR``, or ``--key, --no-key``."""
        if self.switch:
            return f"{self.flag}, --no-{self.flag.removeprefix('--')}"
        return f"{self.flag} {self.metavar}"

    @property
    def full_help(self) -> str:
        """The help text, with the default, as ``--help`` shows it."""
        return f"{self.help} (default: {self.shown})" if self.shown else self.help


OPTIONS: tuple[Option, ...] = (
    Option(
        "mode",
        values.mode(Mode),
        Mode.NONE,
        "none (cassettes only, never the network), once (record cassettes that do not exist "
        "yet), new_episodes (replay what matches, record and add what does not), all (send "
        "everything upstream and re-record it) or passthrough (proxy, write nothing); "
        "replay, auto and record are the earlier names of none, new_episodes and all",
        "MODE",
        shown="none",
    ),
    Option(
        "cassettes",
        values.directory,
        Path("cassettes"),
        "the cassette directory",
        "DIR",
        shown="./cassettes",
    ),
    Option(
        "host",
        values.host,
        "127.0.0.1",
        "address to bind",
        "HOST",
        shown="127.0.0.1, this machine only",
    ),
    Option(
        "port", values.port, 8765, "port to listen on; 0 picks a free one", "PORT", shown="8765"
    ),
    Option(
        "timing",
        values.timing,
        Timing(),
        "how replayed responses are paced: recorded (default), speed=F, fixed=MS or instant",
        "SPEC",
    ),
    Option(
        "max_body_size",
        values.size,
        32 * 1024 * 1024,
        "largest request body accepted; larger ones get 413 request_too_large",
        "SIZE",
        shown="32MiB",
    ),
    Option(
        "max_file_size",
        values.size,
        32 * 1024 * 1024,
        "largest file in a multipart upload (larger: 413 request_too_large), and largest "
        "binary response recorded beside a cassette",
        "SIZE",
        shown="32MiB",
    ),
    Option(
        "max_client_buffer",
        values.size,
        256 * 1024,
        "bytes a response may have waiting for a client that has not read them; past it "
        "tapedeck waits for the client to read",
        "SIZE",
        shown="256KiB",
    ),
    Option(
        "write_timeout",
        values.seconds,
        60.0,
        "seconds a client may read nothing while max_client_buffer bytes wait for it; then "
        "it is cut, and the log says so",
        "SECONDS",
        shown="60",
    ),
    Option(
        "max_header_size",
        values.size,
        64 * 1024,
        "largest request line and headers accepted; larger ones get 431",
        "SIZE",
        shown="64KiB",
    ),
    Option(
        "max_delay",
        values.seconds,
        600.0,
        "the longest single wait a response may hold: time to headers, a gap between events, "
        "a latency or stall fault; a request whose timing or faults ask for more gets 400",
        "SECONDS",
        shown="600",
    ),
    Option(
        "max_test_ids",
        values.positive,
        MAX_TEST_IDS,
        "test ids whose sequence positions, faults and fault counters are kept; the least "
        "recently used go first (the log says so if one comes back)",
        "N",
        shown="1000",
    ),
    Option(
        "sequence_end",
        values.choice(SequenceEnd),
        SequenceEnd.REPEAT,
        "after the last interaction of a sequence: repeat the last (default) or answer an error",
        "repeat|error",
    ),
    Option(
        "match_headers",
        values.match_headers,
        ("anthropic-beta",),
        "request headers that take part in matching",
        "NAMES",
        shown="anthropic-beta",
    ),
    Option(
        "ignore_body_fields",
        values.ignore_body_fields,
        ("metadata.user_id",),
        "request body fields left out of matching, as dotted paths",
        "PATHS",
        shown="metadata.user_id",
    ),
    Option(
        "faults",
        values.faults,
        (),
        "inject faults into every response, e.g. 'ping:every=5' or "
        "'status:code=529,times=2' (repeatable; see docs/faults.md)",
        "SPEC",
        repeat=True,
        flag_name="fault",
    ),
    Option(
        "upstream",
        values.url,
        "https://api.anthropic.com",
        "the API to proxy to in record, auto and passthrough modes",
        "URL",
        shown="https://api.anthropic.com",
    ),
    Option(
        "upstream_api_key_env",
        values.env_name,
        None,
        "send upstream the API key from this environment variable instead of the "
        "client's own auth headers (so clients can use a dummy key)",
        "NAME",
    ),
    Option(
        "upstream_form",
        values.choice(UpstreamForm),
        UpstreamForm.AUTO,
        "how a platform client's request (Bedrock, Vertex, Foundry, ...) goes upstream: auto "
        "(as the client sent it when the upstream is a platform's host, else first-party), "
        "first-party, or platform (always as sent; see docs/platforms.md)",
        "auto|first-party|platform",
    ),
    Option(
        "upstream_timeout",
        values.seconds,
        600.0,
        "seconds to wait for upstream data before giving up",
        "SECONDS",
        shown="600",
    ),
    Option(
        "upstream_connect_timeout",
        values.seconds,
        10.0,
        "seconds to wait for a connection to the upstream (TLS handshake included) before "
        "answering 504",
        "SECONDS",
        shown="10",
    ),
    Option(
        "record_drain_timeout",
        values.seconds,
        60.0,
        "in the modes that record: seconds tapedeck keeps reading the upstream's answer after "
        "the client left, to record it if the upstream finishes it; past it the upstream "
        "request is closed and nothing is written (passthrough closes it at once)",
        "SECONDS",
        shown="60",
    ),
    Option(
        "record_shutdown_timeout",
        values.seconds,
        10.0,
        "in the modes that record: once the server is told to stop (SIGTERM, Ctrl-C), how long "
        "answers being recorded may take to finish and be written; past it they are abandoned, "
        "one log line each, and nothing is written",
        "SECONDS",
        shown="10",
    ),
    Option(
        "allowed_hosts",
        values.lower_names,
        (),
        "more names the Host header may give besides localhost, 127.0.0.1, ::1 and the "
        "address listened on ('*': any); other requests get 403",
        "NAMES",
    ),
    Option(
        "allowed_origins",
        values.origins,
        (),
        "web page origins (e.g. http://localhost:3000) whose requests are served, with CORS "
        "headers; requests from other pages get 403",
        "ORIGINS",
    ),
    Option(
        "upload_paths",
        values.upload_paths,
        (),
        "more API paths that take multipart/form-data uploads (an upload endpoint newer than "
        "this release), besides files, skills and plugins; '*' is one path segment",
        "PATHS",
    ),
    Option(
        "admin_token",
        values.secret,
        None,
        "a token the admin API (/_tapedeck/*, health aside) then requires as "
        "'authorization: Bearer TOKEN'; without one, the admin API is off when listening "
        "beyond this machine (prefer the environment variable to the flag)",
        "TOKEN",
    ),
    Option(
        "redact_headers",
        values.lower_names,
        (),
        "more headers never written to cassettes, besides x-api-key, authorization, "
        "cookie, set-cookie and anthropic-organization-id",
        "NAMES",
    ),
    Option(
        "record_errors",
        values.boolean,
        False,
        "also record transient failures (408, 409, 429, 5xx, an in-stream error, a stream the "
        "upstream cut); by default they reach the client but only the next success is kept",
        "true|false",
        shown="false",
    ),
    Option(
        "redact_patterns",
        values.patterns,
        (),
        "regular expressions for more secrets (or personal data) to replace with [REDACTED] "
        "wherever a recording, a file name or a log line would hold them",
        "REGEXES",
        repeat=True,
        flag_name="redact-pattern",
    ),
    Option(
        "before_record_request",
        values.hook,
        None,
        "a function (module:name) given each RecordedRequest before it is written; it returns "
        "the request to write, changed or not, or None to record nothing",
        "MODULE:NAME",
    ),
    Option(
        "before_record_response",
        values.hook,
        None,
        "a function (module:name) given each RecordedResponse before it is written; it returns "
        "the response to write, or None to record nothing",
        "MODULE:NAME",
    ),
    Option(
        "normalize",
        values.normalizers,
        (),
        "rewrite volatile values before matching, as {path, pattern, replace} rules (a YAML "
        "list in the config file; JSON on the command line); see docs/agents.md",
        "RULES",
    ),
    Option(
        "presets",
        presets.presets,
        (),
        "named bundles of matching rules for a client, e.g. claude-code (repeatable, or "
        "comma-separated); their rules add to your own (docs/clients.md#presets)",
        "NAME",
        repeat=True,
        flag_name="preset",
    ),
    Option(
        "miss_status",
        presets.miss_status,
        None,
        "the status of the error a request no cassette answers gets: 404 not_found_error, "
        "or 400 invalid_request_error, which agent runtimes show word for word",
        "404|400",
        shown="404, or the presets' (claude-code: 400)",
    ),
    Option(
        "validate",
        values.choice(Validate),
        Validate.ERROR,
        "check requests as the API does: error (400 invalid_request_error before a cassette "
        "answers), warn (log it) or off; requests that go upstream are at most logged",
        "error|warn|off",
        shown="error",
    ),
    Option(
        "index_cache",
        values.cache_directory,
        "auto",
        "where the library index is cached between starts, so unchanged cassettes are not "
        "parsed again: a directory outside the cassette directory, auto, or off",
        "DIR|auto|off",
        shown="auto: $XDG_CACHE_HOME/tapedeck or ~/.cache/tapedeck",
    ),
    Option(
        "load",
        values.choice(Loading),
        Loading.EAGER,
        "when serve reads the cassette files: eager (all before it answers; a broken one stops "
        "it) or lazy (each when a request first names it, all at the first request naming none)",
        "eager|lazy",
    ),
    Option(
        "event_cache",
        values.positive,
        200_000,
        "how many events of served cassettes are kept in memory; the least recently used "
        "cassettes' events are read from their files again when needed",
        "N",
        shown="200000",
    ),
    Option(
        "workers",
        values.positive,
        1,
        "serve from N processes on one port (replay and passthrough modes); more than one "
        "needs --state redis://...",
        "N",
        shown="1",
    ),
    Option(
        "state",
        values.state,
        "memory",
        "where per-test state lives (sequence positions, fault counters and seeded draws, "
        "faults set through the admin API): memory, or a Redis URL shared by workers and "
        "replicas",
        "memory|redis://HOST:PORT/DB",
        shown="memory",
    ),
    Option(
        "state_ttl",
        values.seconds,
        86_400.0,
        "with Redis state: seconds a test id's state is kept after its last change",
        "S",
        shown="86400",
    ),
    Option(
        "journal_size",
        values.count,
        1000,
        "API requests kept in the request journal (GET /_tapedeck/journal); the oldest drop "
        "out; 0 turns the journal off",
        "N",
        shown="1000",
    ),
    Option(
        "journal_body_limit",
        values.size,
        256 * 1024,
        "largest request body a journal entry keeps; a larger one is left out (its size is noted)",
        "SIZE",
        shown="256KiB",
    ),
    Option(
        "journal_max_bytes",
        values.size,
        32 * 1024 * 1024,
        "bytes the request journal may hold in all (a kept body counts four times its size); "
        "past it, request bodies are left out oldest first, then the oldest entries drop out",
        "SIZE",
        shown="32MiB",
    ),
    Option(
        "request_cache_bytes",
        values.size,
        4 * 1024 * 1024,
        "bytes of requests kept parsed by their bytes, so a request sent again is not parsed "
        "again (each counts four times its body and 2 kB; a body over 256 KiB is never kept); "
        "the oldest go first",
        "SIZE",
        shown="4MiB",
    ),
    Option(
        "plan_cache_bytes",
        values.size,
        256 * 1024 * 1024,
        "bytes the plans kept for served interactions may hold (a plan due at once holds a copy "
        "of its response); past it, every kept plan is dropped and made again on its next use",
        "SIZE",
        shown="256MiB",
    ),
    Option(
        "metrics",
        values.boolean,
        True,
        "serve Prometheus metrics at GET /metrics; --no-metrics turns them off",
        "",
        shown="on",
        switch=True,
    ),
    Option(
        "metrics_max_rows",
        values.count,
        1024,
        "request counters kept by their request's own path (a few hundred bytes each); past "
        "them a new path is counted by its label, and past twice as many under {other}",
        "N",
        shown="1024",
    ),
)
#: Each option by its key.
BY_KEY = {o.key: o for o in OPTIONS}
#: Each option's default by its key.
DEFAULTS: dict[str, Any] = {o.key: o.default for o in OPTIONS}
