"""Instructions per instant response, counted by valgrind's callgrind: a measure of the
server's own CPU work that other processes on the machine do not change.

Wall-clock CPU per response moves by 20% or more between runs on a shared 2-core machine;
the instruction count of the same work is the same to a fraction of a percent. So this
script runs each server under ``valgrind --tool=callgrind``, sends ``--warmup`` requests,
zeroes the counters, sends ``--requests`` more over one keep-alive connection (each read to
the end of its body and checked), dumps the counters and divides. Servers: the raw
one-send app (``bench/bare_app.py``), tapedeck (request log, journal and metrics on, as
``tapedeck serve`` runs), tapedeck with ``--journal-size 0 --no-metrics`` (``--observe``),
tapedeck with a server-wide quota far from its limits (``--quota``: every response admitted,
its usage taken and the nine rate-limit headers made; with ``--before``, that tree with the
quota too) and another source tree (``--before SRC``). The write system calls per response
are counted too (``strace -c``, when installed), since callgrind sees user space only.

    .venv/bin/python bench/instructions.py [--before SRC] [--observe] [--quota] [--requests N]

Needs valgrind (``apt-get install valgrind``); about 40 s per server. It measures user
space only: the kernel's share of a response (one write per response for tapedeck, two for
the raw app) is not in the count. Exits 0 whenever it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_cassette import BENCH_REQUEST, make_cassette  # noqa: E402
from quota import QUOTA  # noqa: E402


def request_bytes(port: int) -> bytes:
    body = json.dumps(BENCH_REQUEST, separators=(",", ":")).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "content-type: application/json\r\naccept: text/event-stream\r\n"
        f"anthropic-version: 2023-06-01\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def send(port: int, count: int) -> None:
    """``count`` requests, one after the other, each read to its last chunk."""
    request = request_bytes(port)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(count):
            sock.sendall(request)
            got = b""
            while not got.endswith(b"0\r\n\r\n"):
                data = sock.recv(65536)
                if not data:
                    raise SystemExit("the server closed the connection")
                got += data
            if not got.startswith(b"HTTP/1.1 200 ") or b"event: message_stop" not in got:
                raise SystemExit(f"unexpected response: {got[:200]!r}")


def command(kind: str, folder: Path, src: str | None) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if kind == "raw":
        cassette = str(folder / "bench.yaml")
        args = [str(BENCH / "bare_app.py"), "--mode", "instant", "--cassette", cassette]
        return [sys.executable, *args, "--port", "0"], env
    if src is not None:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "tapedeck", "serve", "--cassettes", str(folder)]
    cmd += ["--host", "127.0.0.1", "--port", "0", "--timing", "instant"]
    cmd += ["--index-cache", "off"]  # a temporary directory: no cache file left behind
    if kind == "observe off":
        cmd += ["--journal-size", "0", "--no-metrics"]
    if kind.endswith("quota"):
        cmd += ["--fault", QUOTA]
    return cmd, env


def started(cmd: list[str], env: dict[str, str], log: Path, what: str) -> tuple[Any, int]:
    """``cmd`` started with its output in ``log``, and the port it says it listens on
    (a server under valgrind takes seconds to get there: three minutes at most)."""
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=err, env=env)
    deadline = time.monotonic() + 180
    while True:
        found = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{what} did not start: {log.read_text()[-500:]}")
        time.sleep(0.1)


def measure(kind: str, folder: Path, src: str | None, warmup: int, requests: int) -> int:
    """Instructions per response of one server."""
    out = folder / f"callgrind.{kind.replace(' ', '-')}"
    log = folder / f"{kind.replace(' ', '-')}.log"
    cmd, env = command(kind, folder, src)
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    proc, port = started([*valgrind, *cmd], env, log, kind)
    try:
        send(port, warmup)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True)
        send(port, requests)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    dumps = sorted(folder.glob(f"{out.name}.*"))
    if not dumps:
        raise SystemExit(f"no callgrind dump for {kind}")
    text = dumps[0].read_text(errors="replace")
    total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if total is None:
        raise SystemExit(f"no total in {dumps[0]}")
    return int(total.group(1)) // requests


def writes_per_response(kind: str, folder: Path, src: str | None, requests: int) -> str:
    """The write system calls per response (strace), or why they were not counted."""
    if shutil.which("strace") is None:
        return "-"
    cmd, env = command(kind, folder, src)
    log = folder / f"strace-{kind.replace(' ', '-')}.log"
    proc, port = started(cmd, env, log, kind)
    try:
        send(port, 20)
        counts = folder / f"strace-{kind.replace(' ', '-')}.txt"
        tracer = subprocess.Popen(
            ["strace", "-f", "-c", "-o", str(counts), "-p", str(proc.pid)],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        send(port, requests)
        time.sleep(0.2)
        tracer.terminate()
        tracer.wait(timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    calls = 0
    for line in counts.read_text().splitlines():
        parts = line.split()
        if parts and parts[-1] in ("write", "writev", "sendto", "sendmsg"):
            calls += int(parts[3])  # % time, seconds, usecs/call, calls, [errors,] syscall
    return f"{calls / requests:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="SRC", help="also another tree's server/")
    parser.add_argument("--observe", action="store_true", help="also journal and metrics off")
    parser.add_argument("--quota", action="store_true", help="also with a quota in force")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): nothing measured")
        return 0
    kinds = ["raw", "tapedeck", *(["observe off"] if args.observe else [])]
    kinds += ["quota"] if args.quota else []
    kinds += ["before"] if args.before else []
    kinds += ["before quota"] if args.before and args.quota else []
    with tempfile.TemporaryDirectory(prefix="tapedeck-instr-") as tmp:
        folder = Path(tmp)
        make_cassette(folder / "bench.yaml", 20)
        results: dict[str, tuple[int, str]] = {}
        for kind in kinds:
            src = args.before if kind.startswith("before") else None
            count = measure(kind, folder, src, args.warmup, args.requests)
            results[kind] = (count, writes_per_response(kind, folder, src, 200))
            print(f"  {kind}: {count:,} instructions per response", file=sys.stderr)
    raw = results["raw"][0]
    print(f"instant responses, {args.requests} after {args.warmup} warm-up, user space")
    print(f"{'':14}{'instructions':>14}{'/ raw':>8}{'writes':>8}")
    for kind, (count, writes) in results.items():
        print(f"{kind:14}{count:>14,}{count / raw:>8.2f}{writes:>8}")
    if "before" in results:
        print(f"tapedeck / before: {results['tapedeck'][0] / results['before'][0]:.3f}")
    for plain, with_quota in (("tapedeck", "quota"), ("before", "before quota")):
        if plain in results and with_quota in results:
            added = results[with_quota][0] - results[plain][0]
            print(f"a quota adds to {plain}: {added:,} instructions per response")
    return 0


if __name__ == "__main__":
    sys.exit(main())
