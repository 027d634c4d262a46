"""What a miss costs: the CPU tapedeck spends on a request no cassette matches.

Runs tapedeck's ``/v1/`` handler in-process, with no sockets and a ``send`` that does
nothing, over the bench cassette (bench/replay.py's), and sends requests that miss it: the
bench request with its user message replaced (bench/peers_memory.py's ``big_body``), either
``small`` (a 12-character message) or ``big`` (1 MiB of JSON in all), distinct each time
(the request cache does not answer them; they are made before the clock starts). The CPU
time per request (``time.process_time``) is the best of 3 batches; each variant runs in its
own process and the variants alternate for R rounds. With ``--before SRC`` the same runs
against tapedeck from another source tree (e.g. a ``git worktree`` of an earlier commit) in
the same rounds.

    .venv/bin/python bench/miss_cost.py [--before SRC] [--requests N] [--rounds R]
    .venv/bin/python bench/miss_cost.py --profile big   # cProfile of N misses, to stdout
    .venv/bin/python bench/miss_cost.py --socket [--before SRC]   # tapedeck serve, 1 MiB

``--socket`` runs ``tapedeck serve`` instead (each tree in turn, each round) and reads the
server's CPU per 1 MiB miss from /proc: uvicorn and the kernel counted too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_cassette import BENCH_REQUEST

BENCH = Path(__file__).resolve().parent
SIZES = {"small": 0, "big": 1024 * 1024}  # 0: no filling, the message is the counter


def _handler(size: int) -> tuple[Any, Any]:
    """The app's handler over the bench cassette, and ``run(first, n)``: n misses of
    ``size`` bytes numbered from ``first``, each answered (the answer thrown away); the
    bodies are made first, and the CPU seconds of the requests alone left in ``spent[0]``."""
    sys.path.insert(0, str(BENCH))
    from in_process import bench_app, bench_request
    from peers_memory import big_body

    app = bench_app("tapedeck-miss-")
    statuses: set[int] = set()
    spent = [0.0]  # CPU seconds of the last run's requests (the bodies made before)

    async def one(body: bytes) -> None:
        scope, receive = bench_request(body)

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.add(int(message["status"]))  # type: ignore[call-overload]

        await app.handler(scope, receive, send)

    async def run(first: int, n: int) -> None:
        bodies = [big_body(BENCH_REQUEST, i, size) for i in range(first, first + n)]
        started = time.process_time()
        for body in bodies:
            await one(body)
        spent[0] = time.process_time() - started
        if statuses != {404}:
            raise SystemExit(f"expected only 404s (misses), got {sorted(statuses)}")

    return spent, run


def worker(size: int, requests: int, batches: int) -> float:
    """Milliseconds of CPU per miss, the best of ``batches`` batches (in this process)."""
    spent, run = _handler(size)
    asyncio.run(run(0, 20))  # warm up
    best = float("inf")
    first = 1000
    for _ in range(batches):
        asyncio.run(run(first, requests))
        best = min(best, spent[0] / requests * 1e3)
        first += requests
    return best


def profile(size: int, requests: int) -> None:
    import cProfile
    import pstats

    _, run = _handler(size)
    asyncio.run(run(0, 5))
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, run(1000, requests))
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def over_socket(src: Path, requests: int, first: int) -> float:
    """Milliseconds of server CPU per 1 MiB miss: ``tapedeck serve`` from ``src`` over the
    bench cassette, ``requests`` distinct big misses over bench/peers_memory.py's keep-alive
    connections (after 8 to warm up), its CPU read from /proc."""
    sys.path.insert(0, str(BENCH))
    from peers_memory import send_big
    from replay import make_cassette

    root = Path(tempfile.mkdtemp(prefix="tapedeck-miss-"))
    make_cassette(root / "bench.yaml", 20.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = [sys.executable, "-m", "tapedeck", "serve", "--cassettes", str(root)]
    serve += ["--timing", "instant", "--port", str(port), "--index-cache", "off"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        send_big(port, BENCH_REQUEST, -8, 8)
        sent = send_big(port, BENCH_REQUEST, first, requests, server.pid)
        if sent["statuses"] != {"404": requests}:
            sys.exit(f"bench: expected only 404s (misses), got {sent['statuses']}")
        return float(sent["server_cpu_per_request"]) * 1e3
    finally:
        server.terminate()
        server.wait(10)


def sockets(trees: dict[str, Path], requests: int, rounds: int) -> None:
    best = dict.fromkeys(trees, float("inf"))
    for r in range(rounds):
        for name in trees if r % 2 == 0 else reversed(trees):
            print(f"... round {r + 1}/{rounds}: {name}", file=sys.stderr, flush=True)
            spent = over_socket(trees[name], requests, 1000 * (r + 1))
            best[name] = min(best[name], spent)
    print("tapedeck server CPU per 1 MiB miss over a socket (bench/miss_cost.py --socket)")
    print(f"  {requests} misses a round, best of {rounds} rounds")
    for name, spent in best.items():
        ratio = f"   now/before {best['now'] / spent:.3f}" if name == "before" else ""
        print(f"  {name:6} {spent:7.2f} ms{ratio}")


def _bytes(size: str) -> int:
    sys.path.insert(0, str(BENCH))
    from peers_memory import big_body

    return len(big_body(BENCH_REQUEST, 0, SIZES[size]))


def measure(size: str, src: Path | None, requests: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    cmd = [sys.executable, __file__, "--worker", size, "--requests", str(requests)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    if done.returncode != 0:
        sys.exit(f"bench: the {size} worker failed:\n{done.stderr[-2000:]}")
    return float(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, metavar="SRC", help="also run this source tree")
    parser.add_argument("--requests", type=int, default=100, help="per batch (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant (default 3)")
    parser.add_argument("--worker", choices=SIZES, help=argparse.SUPPRESS)
    parser.add_argument("--profile", choices=SIZES, help="cProfile --requests misses")
    parser.add_argument("--socket", action="store_true", help="big misses to tapedeck serve")
    args = parser.parse_args()
    if args.worker is not None:
        print(worker(SIZES[args.worker], args.requests, 3))
        return 0
    if args.profile is not None:
        profile(SIZES[args.profile], args.requests)
        return 0
    if args.socket:
        here = {"now": BENCH.parent / "server"}
        sockets(
            {**here, **({"before": args.before} if args.before else {})}, args.requests, args.rounds
        )
        return 0
    trees: dict[str, Path | None] = {"now": None}
    if args.before:
        trees["before"] = args.before
    variants = [(size, tree) for size in SIZES for tree in trees]
    best = dict.fromkeys(variants, float("inf"))
    for r in range(args.rounds):
        for size, tree in variants:
            print(f"... round {r + 1}/{args.rounds}: {size} {tree}", file=sys.stderr, flush=True)
            requests = args.requests if size == "big" else args.requests * 20
            best[size, tree] = min(best[size, tree], measure(size, trees[tree], requests))
    print("tapedeck CPU per miss (bench/miss_cost.py), in-process handler, best of 3 batches")
    print(f"  x {args.rounds} rounds; {args.requests} big or {args.requests * 20} small a batch")
    for size in SIZES:
        line = f"  {size:5} ({_bytes(size):>7} B)  now {best[size, 'now']:7.3f} ms"
        if args.before:
            before = best[size, "before"]
            line += f"   before {before:7.3f} ms   now/before {best[size, 'now'] / before:.3f}"
        print(line)
    print(json.dumps({f"{s}/{t}": round(v, 4) for (s, t), v in best.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
