"""What ``library_max_bytes`` holds of typical cassettes, and what coming back costs.

Writes ``bench/startup.py``'s library (N cassettes of ~18 kB, each a stream of ~100 events),
starts ``tapedeck serve --timing instant`` with each bound given, sends each cassette's
request once and then once more, and prints the server's RSS growth after each round and
the second round's time (with a small bound, every cassette is read from its file again)::

    .venv/bin/python bench/library_bound.py --cassettes 1000 1GiB 16MiB
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from startup import rss_kb, write_library

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {"anthropic-version": "2023-06-01"}


def _round(client: httpx.Client, bodies: list[Any]) -> float:
    started = time.perf_counter()
    for body in bodies:
        answer = client.post("/v1/messages", json=body, headers=HEADERS)
        assert answer.status_code == 200, answer.text[:300]
    return time.perf_counter() - started


def measure(library: Path, bodies: list[Any], bound: str, port: int) -> str:
    command = [str(ROOT / ".venv/bin/tapedeck"), "serve", "--cassettes", str(library)]
    command += ["--port", str(port), "--index-cache", "off", "--timing", "instant"]
    command += ["--library-max-bytes", bound]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(300):
                try:
                    client.get("/_tapedeck/health")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            _round(client, bodies[:1])
            idle = rss_kb(server.pid)
            first = _round(client, bodies)
            once = rss_kb(server.pid) - idle
            second = _round(client, bodies)
            twice = rss_kb(server.pid) - idle
    finally:
        server.terminate()
        server.wait()
    rounds = f"{once / 1024:8.1f} MB ({first:.1f} s)  {twice / 1024:8.1f} MB ({second:.1f} s)"
    return f"{bound:>10}  {rounds}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bounds", nargs="+", help="library_max_bytes values, e.g. 1GiB 16MiB")
    parser.add_argument("--cassettes", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8890)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "library"
        size = write_library(library, args.cassettes)
        bodies = [
            yaml.safe_load(path.read_text())["interactions"][0]["request"]["body"]
            for path in sorted(library.rglob("*.yaml"))
        ]
        print(f"{args.cassettes:,} cassettes, {size / 1e6:.1f} MB of YAML")
        print("     bound  RSS growth: each used once     each used twice")
        for bound in args.bounds:
            print(measure(library, bodies, bound, args.port))


if __name__ == "__main__":
    main()
