"""What stream faults cost instant replay: streams/s and server CPU per response with each
deterministic stream fault, as a ratio of the same server without faults, in one run.

Each fault runs server-wide (``tapedeck serve --timing instant --fault SPEC``) on the
106-event cassette of ``bench/replay.py``; the load generator checks every body byte for
byte against the faulted stream (fetched once first). A ``disconnect`` response ends with
the connection cut, as it should: the load generator counts it when the bytes before the
cut are right and carries on over a new connection, so that run also pays for a TCP
connection per response (shown, not hidden: a client pays it too).

Target (issue "Performance"): every fault at >= 0.8x the unfaulted streams/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
from pathlib import Path

from replay import Server, load, loadgen, make_cassette, progress, versions

FAULTS = (
    "ping:every=5",
    "error:after=50",
    "overloaded:after=50",
    "truncate:after=50",
    "garble:after=50",
    "disconnect:after=50",
)
TARGET = 0.8


def faulted_body(port: int, request_body: object) -> bytes:
    """The body a client gets with the server's fault: up to the cut, if it cuts."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    conn.request("POST", "/v1/messages", json.dumps(request_body), headers)
    response = conn.getresponse()
    try:
        return response.read()
    except http.client.IncompleteRead as cut:
        return cut.partial
    finally:
        conn.close()


def table(
    kind: str,
    specs: list[str],
    rates: dict[str, list[float]],
    costs: dict[str, list[float]],
    fresh: str,
) -> None:
    """One server's rows: each fault's streams/s and CPU per response, and their ratios."""
    base_rate = statistics.median(rates[""])
    base_cost = min(costs[""], default=0.0)
    print(f"{kind:24} {'streams/s':>10} {'ratio':>6} {'CPU/resp':>9} {'ratio':>6}")
    for spec in specs:
        rate = statistics.median(rates[spec])
        cost = min(costs[spec], default=0.0)
        cpu_ratio = f"{cost / base_cost:6.2f}" if cost and base_cost else "     -"
        below = spec and spec != fresh and rate / base_rate < TARGET
        mark = f"  (below {TARGET}x)" if below else ""
        print(
            f"{spec or 'none':24} {rate:10.0f} {rate / base_rate:6.2f} "
            f"{cost * 1e6:7.0f}us {cpu_ratio}{mark}"
        )
    cut, new = statistics.median(rates[FAULTS[-1]]), statistics.median(rates[fresh])
    if new:
        print(f"{FAULTS[-1]} / {fresh}: {cut / new:.2f}x (both open a connection per response)")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--duration", type=float, default=3.0, help="window per run, s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="one round of 1 s windows")
    parser.add_argument(
        "--before", type=Path, metavar="SRC", help="also run tapedeck from this server/ tree"
    )
    parser.add_argument("faults", nargs="*", default=list(FAULTS), help="fault specs")
    args = parser.parse_args()
    rounds, duration = (1, 1.0) if args.quick else (args.rounds, args.duration)
    # The disconnect run pays a new connection per response; so does this baseline.
    fresh = "none, new connection each"
    specs = ["", *args.faults, fresh]
    kinds = ["tapedeck", "before"] if args.before else ["tapedeck"]
    rates = {k: {s: [] for s in specs} for k in kinds}
    costs = {k: {s: [] for s in specs} for k in kinds}
    with tempfile.TemporaryDirectory(prefix="tapedeck-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cassettes = tmp / "cassettes"
        cassettes.mkdir()
        cassette = cassettes / "bench.yaml"
        make_cassette(cassette, 20.0)
        stream = load(cassette)
        for r in range(rounds):
            for kind, spec in ((k, s) for s in specs for k in kinds):  # interleaved
                progress(f"round {r + 1}/{rounds}: {kind}, {spec or 'no fault'}")
                srv = Server(kind, "instant", cassettes, tmp / "server.log", args.before)
                if spec and spec != fresh:
                    srv.cmd += ["--fault", spec]
                expected = tmp / "expected"
                opts = ["--connections", str(args.connections), "--duration", str(duration)]
                opts += ["--warmup", "0.5", "--expect", str(expected)]
                if spec.startswith("disconnect"):
                    opts.append("--cut")
                elif spec == fresh:
                    opts.append("--fresh")
                with srv:
                    expected.write_bytes(faulted_body(srv.port, stream.request_body))
                    result = loadgen("throughput", srv, cassette, duration + 60, *opts)
                rates[kind][spec].append(result["streams_per_s"])
                if result.get("server_cpu") and result["streams_per_s"]:
                    costs[kind][spec].append(result["server_cpu"] / result["streams_per_s"])
    print("tapedeck fault cost at instant timing (bench/faults.py)")
    print(f"  {versions()}")
    print(
        f"  {args.connections} keep-alive connections, {duration:g} s windows, median of "
        f"{rounds} interleaved round(s); CPU per response is the best round's"
    )
    print()
    for kind in kinds:
        table(kind, specs, rates[kind], costs[kind], fresh)
    print(f"target: every fault >= {TARGET}x the unfaulted streams/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
