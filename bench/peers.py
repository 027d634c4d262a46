"""tapedeck against its peers: aimock (Node) and the raw ASGI baselines, same machine, same run.

Serves the bench stream (bench/replay.py's cassette: 100 text deltas, 105 events) from each
server and measures, in interleaved rounds (three by default; the order rotates each round):

- instant replay: streams/s with wrk -c32 and with bench/loadgen.py (every body checked), and
  the server's CPU per response; the baseline is bench/bare_app.py sending the body in one send;
- faults: tapedeck's instant streams/s with ``ping:every=5`` and ``overloaded:after=50``
  against unfaulted tapedeck in the same round;
- recorded timing: gap error at 100 and 400 streams started at once, how long starting them
  all took, and the RSS that 1,000 open streams add; the baseline is bench/bare_app.py
  sleeping to each event's deadline;
- memory under distinct large requests: the RSS that 1,000 distinct 1 MB requests add
  (tapedeck: misses, journal and metrics on), in the first round only by default;
- start-up with 5,000 cassettes (aimock: 5,000 fixtures): time until healthy and RSS then,
  tapedeck cold (empty index cache) and warm (files unchanged since the last start), and
  with ``--load lazy`` from cold (time to healthy plus the first answer, naming its cassette);
- the record proxy: the latency recording adds to each event and to the headers, tapedeck
  (``--mode all``) against aimock ``--record``, with bench/bare_app.py as the upstream.

Servers run on one CPU and every client on another (taskset). aimock (pinned in
bench/peers/package.json) and wrk (Debian) are installed when missing; what cannot run is
said in the table. Exits 0 whenever it ran; it is not a test.

    .venv/bin/python bench/peers.py [--quick]
    make bench-peers
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from peers_memory import big_requests
from peers_proxy import proxy
from peers_report import report
from peers_run import MAIN, Run
from peers_tools import aimock_pin, install_aimock
from peers_wrk import install_wrk


def cores() -> tuple[int | None, int | None, str]:
    """(server CPU, client CPU, how they were assigned); this process moves to the client's
    CPU, so every client it starts runs there."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or not shutil.which("taskset"):
        return (
            None,
            None,
            f"not pinned: {len(cpus)} CPU(s) usable"
            + ("" if shutil.which("taskset") else ", no taskset"),
        )
    server, client = cpus[0], cpus[1]
    os.sched_setaffinity(0, {client})
    return (
        server,
        client,
        f"servers on CPU {server} (taskset -c {server}: every thread, Node's too); this script "
        f"and its clients (wrk -t1, bench/loadgen.py, httpx; the proxy's upstream) on CPU "
        f"{client}; {os.cpu_count()} CPUs in the machine",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 minutes)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    parser.add_argument("--duration", type=int, help="instant window, s (default 5; quick 2)")
    parser.add_argument("--connections", type=int, default=32, help="instant connections (32)")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="gap between events (20)")
    parser.add_argument("--streams", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--open-streams", type=int, help="streams for RSS (1000; quick 400)")
    parser.add_argument("--library", type=int, help="cassettes for start-up (5000; quick 200)")
    parser.add_argument("--big-requests", type=int, help="1 MB requests for RSS (1000; quick 200)")
    parser.add_argument("--big-rounds", type=int, default=1, help="rounds of big requests (1)")
    parser.add_argument("--proxy-streams", type=int, help="streams per path per round (8; quick 3)")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (2 if args.quick else 5)
    args.warmup = 1.0
    args.open_streams = args.open_streams or (400 if args.quick else 1000)
    args.library = args.library or (200 if args.quick else 5000)
    args.proxy_streams = args.proxy_streams or (3 if args.quick else 8)
    args.big_requests = args.big_requests or (200 if args.quick else 1000)
    counts = (args.rounds, args.connections, args.library, args.proxy_streams, args.big_requests)
    if min(*counts, args.big_rounds, *args.streams) <= 0:
        parser.error("counts must be > 0")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    load_start = os.getloadavg()
    server_cpu, _, assignment = cores()
    node, aimock = install_aimock()
    wrk, wrk_version = install_wrk()
    with tempfile.TemporaryDirectory(prefix="tapedeck-peers-") as tmp:
        run = Run(args, Path(tmp), server_cpu, node, wrk)
        if not node:
            run.problems["aimock"] = aimock
        run.instant()
        run.timing()
        big_requests(run, MAIN)
        run.startup()
        proxy(run)
    setup = {
        "assignment": assignment,
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "aimock": aimock if node else None,
        "aimock_why": None if node else aimock,
        "aimock_pin": aimock_pin(),
        "wrk": wrk_version if wrk else None,
        "wrk_why": None if wrk else wrk_version,
    }
    report(args, setup, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
