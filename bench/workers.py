"""Instant replay from one process and from ``--workers N`` (state in a real redis-server),
in one run: streams/s and the ratio to one process with in-process state.

With the state in Redis, a request makes one round trip to it for its fault lists (and
one more for a sequence position or a fault's ``times``); this shows what that costs and
what more processes win back. On a machine with few cores the load generator competes with
the workers for them: read the ratios with ``nproc`` and the load in mind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replay import Server, loadgen, make_cassette, progress, versions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="default: 2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench: redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="tapedeck-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        redis_proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
        )
        try:
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.02)
            url = f"redis://127.0.0.1:{port}/0"
            cassettes = tmp / "cassettes"
            cassettes.mkdir()
            cassette = cassettes / "bench.yaml"
            make_cassette(cassette, 20.0)
            setups: dict[str, list[str]] = {
                "1 process, memory state": [],
                "1 process, Redis": ["--state", url],
            }
            for n in args.workers:
                setups[f"{n} workers, Redis"] = ["--workers", str(n), "--state", url]
            rates: dict[str, list[float]] = {k: [] for k in setups}
            opts = ["--connections", str(args.connections), "--duration", str(args.duration)]
            for r in range(args.rounds):
                for name, extra in setups.items():
                    progress(f"round {r + 1}/{args.rounds}: {name}")
                    srv = Server("tapedeck", "instant", cassettes, tmp / "server.log")
                    srv.cmd += extra
                    with srv:
                        result = loadgen("throughput", srv, cassette, args.duration + 60, *opts)
                    rates[name].append(result["streams_per_s"])
        finally:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
    load = os.getloadavg()
    print("tapedeck workers (bench/workers.py)")
    print(f"  {versions()}; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"  instant, {args.connections} connections, {args.duration:g} s windows, median of "
        f"{args.rounds} interleaved rounds\n"
    )
    base = statistics.median(rates["1 process, memory state"])
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:26} {rate:8.0f} streams/s  {rate / base:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
