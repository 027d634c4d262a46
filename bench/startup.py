"""Start-up and memory with a large cassette library: how long ``tapedeck serve`` takes to be
healthy, and its RSS once it is, with N cassettes of about 100 events each.

Three starts are timed per tapedeck: **cold** (the first start on these files), **warm** (the
files unchanged since the last start) and **touched** (one file changed since). With
``--before SRC`` an older tapedeck (its ``server/`` directory) is measured in the same run,
on the same files. Prints a table; exits 0 whenever it ran (it is not a test)::

    .venv/bin/python bench/startup.py                 # 5,000 cassettes
    .venv/bin/python bench/startup.py --cassettes 500 --before /tmp/before/server
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from replay import make_cassette

ROOT = Path(__file__).resolve().parent.parent


def write_library(root: Path, count: int) -> int:
    """``count`` cassettes under ``root`` (100 per folder), each a distinct request; returns
    the bytes written."""
    root.mkdir(parents=True, exist_ok=True)
    template = root.parent / "template.yaml"
    make_cassette(template, 20.0)
    text = template.read_text(encoding="utf-8")
    template.unlink()
    total = 0
    for i in range(count):
        folder = root / f"suite{i // 100:03d}"
        folder.mkdir(exist_ok=True)
        body = text.replace("Tell me a short story.", f"Tell me short story number {i}.")
        body = body.replace("msg_bench0000000000000000000", f"msg_bench{i:019d}")
        (folder / f"case{i:05d}.yaml").write_text(body, encoding="utf-8")
        total += len(body)
    return total


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start(python: str, src: str, cassettes: Path, port: int, cache: Path) -> tuple[float, int]:
    """Seconds until /_tapedeck/health answers, and RSS (KiB) then."""
    env = {
        **os.environ,
        "PYTHONPATH": src,
        "TAPEDECK_CACHE_DIR": str(cache),
        "XDG_CACHE_HOME": str(cache),
    }
    command = [python, "-m", "tapedeck", "serve", "--cassettes", str(cassettes)]
    command += ["--port", str(port), "--timing", "instant"]
    began = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tapedeck exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_tapedeck/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.02)
        took = time.perf_counter() - began
        # One replayed request, so lazily loaded events are counted where they are used.
        body = yaml.safe_load(next(cassettes.rglob("*.yaml")).read_text())
        request = body["interactions"][0]["request"]["body"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            client.post("/v1/messages", json=request, headers={"anthropic-version": "2023-06-01"})
        return took, rss_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cassettes", type=int, default=5000)
    parser.add_argument("--before", metavar="SRC", help="an older tapedeck's server/ directory")
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tapedeck-startup-"))
    try:
        size = write_library(work / "cassettes", args.cassettes)
        print(
            f"{args.cassettes} cassettes, {size / 1e6:.0f} MB of YAML; "
            f"load {os.getloadavg()[0]:.2f}"
        )
        trees = [("tapedeck", str(ROOT / "server"))]
        if args.before:
            trees.append(("before", args.before))
        print(f"{'':10} {'cold s':>8} {'warm s':>8} {'touched s':>10} {'RSS MB':>8}")
        for label, src in trees:
            cache = work / f"cache-{label}"
            cold, rss = start(sys.executable, src, work / "cassettes", args.port, cache)
            warm, rss_warm = start(sys.executable, src, work / "cassettes", args.port, cache)
            one = next((work / "cassettes").rglob("*.yaml"))
            one.write_text(one.read_text().replace("short story", "short tale"))
            touched, _ = start(sys.executable, src, work / "cassettes", args.port, cache)
            one.write_text(one.read_text().replace("short tale", "short story"))
            print(
                f"{label:10} {cold:8.2f} {warm:8.2f} {touched:10.2f} "
                f"{max(rss, rss_warm) / 1024:8.0f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
