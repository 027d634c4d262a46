"""The options of replaying: which interaction answers a request, the rules that rewrite and
check it first, and how the cassette library is read (assembled in :mod:`.options`)."""

from __future__ import annotations

from ..cassette.on_demand import Loading
from ..source.sequences import SequenceEnd
from ..validation import Validate
from . import presets, values
from .option import Option

#: Sequences, and the headers and body fields that take part in matching.
REPLAY: tuple[Option, ...] = (
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
)

#: Rewriting and checking requests before they match, and what a miss gets.
RULES: tuple[Option, ...] = (
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
)

#: How the cassette library is read: its index cache, when files load, events kept.
LIBRARY: tuple[Option, ...] = (
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
        "library_max_bytes",
        values.size,
        16 * 1024 * 1024,
        "bytes of used cassettes the library holds whole (each counts three times its file's "
        "size and 1 kB per event: parsed, rendered, planned); past it, the least recently "
        "used keep only their requests and are read from their files again when next used",
        "SIZE",
        shown="16MiB",
    ),
    Option(
        "library_request_max_bytes",
        values.size,
        4 * 1024 * 1024,
        "bytes of requests the cassettes evicted past library_max_bytes keep (each counts "
        "twice its body's JSON size and 512 bytes); past it, those evicted first keep only "
        "digests of their requests: they still match, and are left out of a miss's "
        "explanation across the directory",
        "SIZE",
        shown="4MiB",
    ),
)
