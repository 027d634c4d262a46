"""The options of serving itself: where and how, its limits, who may drive it, the faults
every response gets, and the memory kept to answer faster (assembled in :mod:`.options`)."""

from __future__ import annotations

from pathlib import Path

from ..per_test import MAX_TEST_IDS
from ..shaping.timing import Timing
from . import values
from .mode import Mode
from .option import Option

#: The mode, the cassettes, the address and the pacing.
SERVING: tuple[Option, ...] = (
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
)

#: How large a request or a client's backlog and how long a wait may be; test ids kept.
LIMITS: tuple[Option, ...] = (
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
)

#: Faults injected into every response.
FAULTS: tuple[Option, ...] = (
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
)

#: Who may drive the server: Host names, web pages, upload paths, the admin token.
ACCESS: tuple[Option, ...] = (
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
)

#: Memory kept to answer faster: parsed requests, plans.
CACHES: tuple[Option, ...] = (
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
)
