"""Proxy overhead: the latency tapedeck adds to each event while recording.

An upstream (a tapedeck replay server with ``recorded`` timing, so its events leave at
known offsets) streams a 100-delta message. The client reads it twice per round: directly
from the upstream, and through a tapedeck in ``record`` mode pointed at that upstream.
For each event, added latency = (arrival through the proxy - request sent) -
(arrival direct - request sent). Both servers run as their own processes; rounds
alternate direct and proxied so drift hits both alike.

    .venv/bin/python bench/proxy.py [--rounds 30] [--gap-ms 10]

Target: median added latency per event under 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay import make_cassette  # the same 100-delta stream

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(BIN / "tapedeck"), "serve", "--port", str(port), "--index-cache", "off", *args],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_tapedeck/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"server on port {port} did not start; see {log}")


async def arrivals(client: httpx.AsyncClient, url: str, body: bytes) -> tuple[float, list[float]]:
    """Seconds from sending the request to the headers, and to each event's blank line."""
    sent = time.perf_counter()
    times: list[float] = []
    async with client.stream(
        "POST", url, content=body, headers={"content-type": "application/json", "x-api-key": "x"}
    ) as response:
        headers = time.perf_counter() - sent
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            now = time.perf_counter() - sent
            times.extend(now for _ in range(chunk.count(b"\n\n")))
    return headers, times


async def run(
    rounds: int, direct: str, proxied: str, body: bytes
) -> tuple[list[float], list[float], list[float]]:
    """Per round, the added time to headers; per event, the added forwarding latency."""
    added_headers: list[float] = []
    added_events: list[float] = []
    end_to_end: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for warm in (direct, proxied):
            await arrivals(client, warm, body)
        for _ in range(rounds):
            h1, a = await arrivals(client, direct, body)
            h2, b = await arrivals(client, proxied, body)
            if len(a) != len(b):
                raise SystemExit(f"event counts differ: direct {len(a)}, proxied {len(b)}")
            added_headers.append((h2 - h1) * 1000)
            # Events are timed from the headers: the upstream schedules them from the moment
            # its request arrived, which the proxy's request forwarding shifts as a whole.
            added_events.extend(((y - h2) - (x - h1)) * 1000 for x, y in zip(a, b, strict=True))
            end_to_end.extend((y - x) * 1000 for x, y in zip(a, b, strict=True))
    return added_headers, added_events, end_to_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="streams per side (default 30)")
    parser.add_argument("--gap-ms", type=float, default=10, help="gap between events (ms)")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tapedeck-proxy-bench-"))
    try:
        upstream_dir, record_dir = work / "upstream", work / "recorded"
        upstream_dir.mkdir()
        record_dir.mkdir()
        cassette = upstream_dir / "bench.yaml"
        make_cassette(cassette, options.gap_ms)
        body = _request_body(cassette)
        up_port, proxy_port = free_port(), free_port()
        upstream = start(
            ["--cassettes", str(upstream_dir), "--timing", "recorded"], up_port, work / "up.log"
        )
        proxy = start(
            [
                "--cassettes",
                str(record_dir),
                "--mode",
                "record",
                "--upstream",
                f"http://127.0.0.1:{up_port}",
            ],
            proxy_port,
            work / "proxy.log",
        )
        try:
            added_headers, added, end_to_end = asyncio.run(
                run(
                    options.rounds,
                    f"http://127.0.0.1:{up_port}/v1/messages",
                    f"http://127.0.0.1:{proxy_port}/v1/messages",
                    body,
                )
            )
        finally:
            for process in (proxy, upstream):
                process.terminate()
                process.wait(10)
        recorded = list(record_dir.rglob("*.yaml"))
        quantiles = statistics.quantiles(added, n=100)
        median = statistics.median(added)
        print(
            f"proxy overhead, record mode: {options.rounds} streams x 106 events, "
            f"gap {options.gap_ms:g} ms, python {sys.version.split()[0]}, {os.cpu_count()} cores"
        )
        print(
            f"added latency per event ms  p50 {median:.3f}  p90 {quantiles[89]:.3f}  "
            f"p99 {quantiles[98]:.3f}  max {max(added):.3f}"
        )
        print(
            f"added time to headers ms    p50 {statistics.median(added_headers):.3f}  "
            f"max {max(added_headers):.3f}  (request forwarding, once per request)"
        )
        e2e = statistics.quantiles(end_to_end, n=100)
        print(
            f"end to end per event ms     p50 {statistics.median(end_to_end):.3f}  "
            f"p99 {e2e[98]:.3f}  (the two above together: timed from the request)"
        )
        print(f"cassettes written: {len(recorded)}")
        verdict = "MET" if median < 1 else "MISSED"
        print(f"target: median added latency per event < 1 ms: {verdict} ({median:.3f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _request_body(cassette: Path) -> bytes:
    document = yaml.safe_load(cassette.read_text())
    return json.dumps(document["interactions"][0]["request"]["body"]).encode()


if __name__ == "__main__":
    main()
