"""What the request journal and the metrics cost one replayed request, in the handler itself.

Runs tapedeck's ``/v1/`` handler in-process, with no sockets and a ``send`` that does
nothing, over the bench cassette (instant timing), and measures the CPU time per request
(``time.process_time``: other processes on the machine change it less than wall time).
Each variant runs in its own process, the variants alternate for R rounds, and the best
round of each is kept:

- ``off``: ``journal_size=0``, ``metrics=False``;
- ``journal``: the journal only; ``metrics``: the metrics only; ``both``: the defaults;
- ``quota``: the defaults and a server-wide quota whose limits are never reached;
- ``before`` (with ``--before SRC``): tapedeck from another source tree, e.g. the commit
  before the journal and the metrics; ``before-off`` and ``before-quota``: that tree as
  ``off`` and with the quota.

    .venv/bin/python bench/handler_cost.py [--before SRC] [--requests N] [--rounds R]

bench/replay.py --observe measures the same over real sockets, where the rest of a
request's cost (uvicorn, the kernel) is counted too.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from quota import QUOTA  # limits no run reaches: only the quota's bookkeeping is measured

BENCH = Path(__file__).resolve().parent
VARIANTS = {
    "off": {"journal_size": 0, "metrics": False},
    "journal": {"metrics": False},
    "metrics": {"journal_size": 0},
    "both": {},
    # A quota in force that no run reaches: admission, taking usage, the nine headers.
    "quota": {"faults": QUOTA},
}


def worker(settings: dict[str, object], requests: int, batches: int) -> float:
    """Microseconds of CPU per request, the best of ``batches`` batches (in this process)."""
    sys.path.insert(0, str(BENCH))
    from bench_cassette import BENCH_REQUEST
    from in_process import bench_app, bench_request
    from tapedeck.config import Settings

    known = {f.name for f in dataclasses.fields(Settings)}
    given = {k: v for k, v in settings.items() if k in known}
    if isinstance(given.get("faults"), str):
        from tapedeck.shaping.faults import parse_faults

        given["faults"] = parse_faults(str(given["faults"]))
    app = bench_app("tapedeck-handler-", **given)
    body = json.dumps(BENCH_REQUEST).encode()
    scope, receive = bench_request(body)

    async def send(message: dict[str, object]) -> None:
        return None

    async def run(n: int) -> None:
        for _ in range(n):
            await app.handler(dict(scope), receive, send)

    asyncio.run(run(2000))  # warm up: the request cache, the plan
    best = float("inf")
    for _ in range(batches):
        started = time.process_time()
        asyncio.run(run(requests))
        best = min(best, (time.process_time() - started) / requests * 1e6)
    return best


def measure(variant: str, src: Path | None, requests: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    settings = json.dumps(VARIANTS.get(variant.removeprefix("before-"), {}))
    cmd = [sys.executable, __file__, "--worker", settings, "--requests", str(requests)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if done.returncode != 0:
        sys.exit(f"bench: the {variant} worker failed:\n{done.stderr[-2000:]}")
    return float(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, metavar="SRC", help="also run this source tree")
    parser.add_argument("--requests", type=int, default=20000, help="per batch (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant (default 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(worker(json.loads(args.worker), args.requests, 3))
        return 0
    variants = [*VARIANTS, *(["before-off", "before", "before-quota"] if args.before else [])]
    best = dict.fromkeys(variants, float("inf"))
    for r in range(args.rounds):
        for variant in variants:
            print(f"... round {r + 1}/{args.rounds}: {variant}", file=sys.stderr, flush=True)
            src = args.before if variant.startswith("before") else None
            best[variant] = min(best[variant], measure(variant, src, args.requests))
    print("tapedeck handler cost per replayed request (bench/handler_cost.py)")
    print(f"  {args.requests} requests per batch, best of 3 batches x {args.rounds} rounds")
    off = best["off"]
    for variant in variants:
        line = f"  {variant:8} {best[variant]:6.2f} us CPU per request"
        if variant == "before":
            line += f"   off/before {off / best[variant]:.3f} ({off - best[variant]:+.2f} us)"
        elif variant == "quota":
            line += f"   quota - both {best[variant] - best['both']:+.2f} us"
        elif variant == "before-off":
            line += f"   before - before-off {best['before'] - best[variant]:+.2f} us"
        elif variant == "before-quota":
            line += f"   before-quota - before {best[variant] - best['before']:+.2f} us"
        elif variant != "off":
            line += f"   {variant}/off {best[variant] / off:.3f} ({best[variant] - off:+.2f} us)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
