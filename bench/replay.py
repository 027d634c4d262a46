"""Replay benchmark: tapedeck against a bare ASGI app sending the same bytes, same run.

Serves a 100-delta text stream from a generated cassette and measures

- ``instant`` timing: complete streams per second over C keep-alive connections;
- ``recorded`` timing: the error of each event's gap to the stream's first event, against
  the recorded gap, with N streams started at once (100 and 400 by default).

Each server runs alone in its own process (tapedeck through its real CLI, the bare app
through bench/bare_app.py on uvicorn with tapedeck's settings); the load comes from a
separate client process (bench/loadgen.py). Everything is on 127.0.0.1. It prints
numbers and whether the targets were met; it exits 0 whenever it ran.

    .venv/bin/python bench/replay.py [--quick] [--gap-ms 20] [--streams 100 400]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench_cassette import make_cassette
from bench_servers import OBSERVE, Server, loadgen, progress, versions
from replay_report import WARMUP_STREAMS, report
from stream_bytes import load

__all__ = ["OBSERVE", "Server", "load", "loadgen", "make_cassette", "progress", "versions"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark tapedeck replay against a bare ASGI app sending the same bytes.",
    )
    parser.add_argument("--duration", type=float, help="throughput window, s (default 5)")
    parser.add_argument("--warmup", type=float, help="throughput warm-up, s (default 1)")
    parser.add_argument(
        "--connections", type=int, default=32, help="throughput connections (default 32)"
    )
    parser.add_argument("--rounds", type=int, help="throughput rounds per server (default 2)")
    parser.add_argument(
        "--gap-ms", type=float, default=20.0, help="recorded gap between events (default 20)"
    )
    parser.add_argument(
        "--streams",
        type=int,
        nargs="+",
        default=[100, 400],
        help="concurrent streams for the timing runs (default 100 400)",
    )
    parser.add_argument("--quick", action="store_true", help="shorter run (about 25 s)")
    parser.add_argument(
        "--observe",
        action="store_true",
        help="also run tapedeck with the request journal and metrics off, and with only one "
        "of them on (instant timing), to show what each costs",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="SRC",
        help="also run tapedeck from this source directory (e.g. a worktree's server/), "
        "interleaved with the others, to compare two versions in one run",
    )
    args = parser.parse_args()
    duration = args.duration or (2.0 if args.quick else 5.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    rounds = args.rounds or (1 if args.quick else 2)
    if args.gap_ms <= 0 or args.connections <= 0 or min(args.streams) <= 0:
        parser.error("--gap-ms, --connections and --streams must be > 0")

    with tempfile.TemporaryDirectory(prefix="tapedeck-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cassettes = tmp / "cassettes"
        cassettes.mkdir()
        cassette = cassettes / "bench.yaml"
        make_cassette(cassette, args.gap_ms)
        stream = load(cassette)
        events = len(stream.events)
        span_s = (stream.at_ms[-1] - stream.at_ms[0]) / 1000
        kinds = ["tapedeck", "bare"] + (["before"] if args.before else [])
        instant_kinds = kinds + (list(OBSERVE) if args.observe else [])
        impls: dict[str, set[str]] = {k: set() for k in instant_kinds}
        logs: dict[str, int] = {}

        def server(kind: str, timing: str) -> Server:
            return Server(kind, timing, cassettes, tmp / f"{kind}-{timing}.log", args.before)

        def finished(srv: Server) -> None:
            if srv.kind == "tapedeck":
                lines = srv.log.read_text(errors="replace").count("\n")
                logs[srv.timing] = logs.get(srv.timing, 0) + lines

        # Throughput at instant timing, servers alternating to spread any drift.
        tput: dict[str, list[dict]] = {k: [] for k in instant_kinds}
        opts = ["--connections", str(args.connections)]
        opts += ["--duration", str(duration), "--warmup", str(warmup)]
        for r in range(rounds):
            for kind in instant_kinds:
                progress(f"instant, {kind}, round {r + 1}/{rounds}")
                with server(kind, "instant") as srv:
                    impls[kind].add(srv.impl())
                    tput[kind].append(loadgen("throughput", srv, cassette, duration + 60, *opts))
                finished(srv)

        # Event timing at recorded timing, after a warm-up of a few streams: the first
        # streamed response of a fresh server pays one-time costs (imports, allocations).
        timing: dict[tuple[str, int], dict] = {}
        limit = span_s * 3 + 60
        for kind in kinds:
            with server(kind, "recorded") as srv:
                impls[kind].add(srv.impl())
                progress(f"recorded, {kind}, warm-up ({WARMUP_STREAMS} streams)")
                loadgen("timing", srv, cassette, limit, "--streams", str(WARMUP_STREAMS))
                for n in args.streams:
                    progress(f"recorded, {kind}, {n} streams")
                    timing[(kind, n)] = loadgen("timing", srv, cassette, limit, "--streams", str(n))
            finished(srv)

    setup = {
        "events": events,
        "body_bytes": len(stream.payload),
        "span_s": span_s,
        "duration": duration,
        "warmup": warmup,
        "rounds": rounds,
    }
    report(args, setup, impls, logs, tput, timing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
