"""``--workers 2 --state redis://...`` with a slow Redis: requests/s and latency, two source
trees side by side in one run (interleaved rounds).

A TCP proxy in front of a real ``redis-server`` delays every chunk by ``--delay-ms`` each
way, as a Redis across a network would. A server that calls Redis on its event loop
waits that long per call with nothing else served meanwhile; one that awaits the calls
serves other requests in the wait. The load: ``--connections`` clients, each a keep-alive
connection sending the same small replayed request (journal on, the default) in a loop.

    .venv/bin/python bench/state_latency.py --before /tmp/old/server [--delay-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HELLO = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Hello"}],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(65536):
            loop.call_later(delay, writer.write, data)  # same delay for all: order kept
    except OSError:
        pass
    finally:
        await asyncio.sleep(delay)
        writer.close()


def delay_proxy(listen: int, target: int, delay: float) -> None:
    """Forward 127.0.0.1:``listen`` to 127.0.0.1:``target``, each chunk ``delay`` s late."""

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(_pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay))

    async def main() -> None:
        server = await asyncio.start_server(one, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def load(base: str, connections: int, duration: float) -> tuple[int, list[float]]:
    """Requests answered 200 in ``duration`` s, and each one's latency (s)."""
    latencies: list[float] = []
    answered = 0
    stop = time.perf_counter() + duration

    async def client() -> None:
        nonlocal answered
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while time.perf_counter() < stop:
                began = time.perf_counter()
                response = await http.post("/v1/messages", json=HELLO)
                if response.status_code == 200:
                    answered += 1
                    latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(client() for _ in range(connections)))
    return answered, latencies


def serve(src: Path, url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    env = {k: v for k, v in env.items() if not k.startswith("TAPEDECK_")}
    cmd = [sys.executable, "-m", "tapedeck", "serve", "--port", str(port), "--timing", "instant"]
    cmd += ["--cassettes", str(ROOT / "cassettes"), "--workers", "2", "--state", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("ab"), env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/_tapedeck/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"tapedeck from {src} did not start; see {log}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other server/ tree")
    parser.add_argument("--after", type=Path, default=ROOT / "server")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="each way (default 2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench: redis-server is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="tapedeck-bench-"))
    redis_port, proxy_port = free_port(), free_port()
    redis = subprocess.Popen(
        [binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        cwd=tmp,
    )
    import multiprocessing

    proxy = multiprocessing.Process(
        target=delay_proxy, args=(proxy_port, redis_port, args.delay_ms / 1000), daemon=True
    )
    proxy.start()
    time.sleep(0.5)
    url = f"redis://127.0.0.1:{proxy_port}/0"
    trees = {"before": args.before, "after": args.after}
    rates: dict[str, list[float]] = {k: [] for k in trees}
    p50s: dict[str, list[float]] = {k: [] for k in trees}
    try:
        for r in range(args.rounds):
            for name, src in trees.items():
                proc, base = serve(src, url, tmp / f"{name}.log")
                try:
                    asyncio.run(load(base, args.connections, 0.5))  # warm up
                    answered, latencies = asyncio.run(load(base, args.connections, args.duration))
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=20)
                rates[name].append(answered / args.duration)
                p50s[name].append(statistics.median(latencies) * 1000 if latencies else 0.0)
                print(
                    f"round {r + 1} {name}: {rates[name][-1]:.0f} requests/s, "
                    f"p50 {p50s[name][-1]:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        proxy.kill()
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    load_avg = os.getloadavg()
    print(
        f"--workers 2 --state redis:// through a {args.delay_ms:g} ms-each-way proxy, "
        f"{args.connections} connections, {args.rounds} rounds of {args.duration:g} s; "
        f"{os.cpu_count()} cores, load {load_avg[0]:.1f}"
    )
    for name in trees:
        print(
            f"  {name:6}: {statistics.median(rates[name]):7.0f} requests/s (median), "
            f"p50 latency {statistics.median(p50s[name]):6.1f} ms"
        )
    ratio = statistics.median(rates["after"]) / max(statistics.median(rates["before"]), 1e-9)
    print(f"  after/before requests/s: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
