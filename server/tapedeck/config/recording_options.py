"""The options of going upstream and recording: the API proxied to, and what is written to
cassettes (assembled in :mod:`.options`)."""

from __future__ import annotations

from ..source.platform_form import UpstreamForm
from . import values
from .option import Option

#: The API proxied to: its URL, auth, form and timeouts, and how long a recording may finish.
UPSTREAM: tuple[Option, ...] = (
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
)

#: What is written to cassettes: redaction, failures, the hooks.
RECORDING: tuple[Option, ...] = (
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
)
