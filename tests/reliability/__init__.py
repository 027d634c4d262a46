"""The reliability suite: tapedeck under load, chaos, fuzzed input, crashes and secrets.

Each scenario is a module with a ``run(full: bool) -> Outcome``: the figures it measured and
the failures it found. ``make test`` runs the short version of each
(``tests/reliability/test_reliability.py``); ``make reliability`` runs the full versions
and prints the table (``python -m reliability``, with ``tests`` on ``sys.path``). The
figures of a full run are in docs/reliability.md.

================== ==========================================================================
scenario (module)  what it does
================== ==========================================================================
findings           what the first reliability run found (endless delays, malformed HTTP, pages
                   driving the API, cassette crashers), case by case
streams            concurrent streams at recorded timing, every byte of every stream checked
soak               every fault kind, misses and clients that leave early, for minutes: the
                   server's RSS and open fds sampled, failing on growth
slow_readers       clients that never read a large stream: memory stays bounded, they are cut
test_ids           ever new test ids (``many_ids.py``): per-test state stays bounded
fuzz_requests      hypothesis-made requests, headers, fault and timing specs, raw bytes
fuzz_cassettes     hypothesis-mutated cassettes through the loader, lint and the plans
kill               kill -9 during concurrent recordings: no half-written or lost cassette
secrets            every record path, keys in headers, bodies and the query
                   (``secrets_scan.py``): no key in a file, a file name or the log
upstream_failures  the upstream refusing, unresolvable, without TLS or trust, silent, closing or
                   resetting (``bad_upstreams.py``): an API error naming it, one log line,
                   no traceback, nothing written
disk_failures      recording onto a full disk (a file size limit) and a read-only directory, as
                   root too: every client answered whole, one log line each, no file left
sigterm            SIGTERM with recordings in flight: finished and written whole within
                   record_shutdown_timeout, abandoned past it with one log line each
================== ==========================================================================
"""
