"""Start-up and memory with a large cassette library: how long ``tapedeck serve`` takes to be
healthy, and its RSS once it is, with N cassettes of about 100 events each.

Four starts are timed per tapedeck: **cold** (the first start on these files: no index
cache), **warm** (the files unchanged since the last start), **touched** (one file changed
since) and **checkout** (every file's modification time changed but not its bytes: a fresh
clone with the index cache directory restored, as a CI cache step does). Each is shown as
wall time until ``/_tapedeck/health`` answers and as the CPU time the server process (and
any worker it started) used until then: on a busy machine the CPU time is the steadier
number. With ``--before SRC`` an older tapedeck (its ``server/`` directory) is measured in
the same run, on the same files, its starts interleaved with this tree's. ``--lazy`` adds a
row for this tree with ``--load lazy`` (the files only listed at start-up), whose first
request names its cassette as a per-test suite's do. For every tree it prints what the
first request naming no cassette then takes (an eager start with a warm cache makes the
cassettes it vouched for then). ``--cpu N`` runs every server on CPU N only (``taskset -c
N``). Prints a table; exits 0 whenever it ran (it is not a test)::

    .venv/bin/python bench/startup.py                 # 5,000 cassettes
    .venv/bin/python bench/startup.py --cpu 0 --rounds 2 --before /tmp/before/server --lazy
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


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of ``pid`` and its waited-for children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def start(
    python: str,
    src: str,
    cassettes: Path,
    port: int,
    cache: Path,
    cpu: int | None,
    lazy: bool = False,
    whole: list[float] | None = None,
) -> tuple[float, float, int]:
    """Seconds until /_tapedeck/health answers, CPU seconds used by then, and RSS (KiB).

    With ``lazy`` the server lists its files only and the first request names its cassette;
    the seconds the first request naming none takes are appended to ``whole`` (the second
    request with ``lazy``, the first without: an eager start with a warm index cache makes
    the cassettes it vouched for then)."""
    env = {
        **os.environ,
        "PYTHONPATH": src,
        "TAPEDECK_CACHE_DIR": str(cache),
        "XDG_CACHE_HOME": str(cache),
    }
    command = [] if cpu is None else ["taskset", "-c", str(cpu)]
    command += [python, "-m", "tapedeck", "serve", "--cassettes", str(cassettes)]
    command += ["--port", str(port), "--timing", "instant"]
    command += ["--load", "lazy"] if lazy else []
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
        cpu_used = cpu_seconds(proc.pid)
        # One replayed request, so lazily loaded events are counted where they are used.
        file = next(cassettes.rglob("*.yaml"))
        request = yaml.safe_load(file.read_text())["interactions"][0]["request"]["body"]
        headers = {"anthropic-version": "2023-06-01"}
        if lazy:
            headers["x-tapedeck-cassette"] = file.relative_to(cassettes).with_suffix("").as_posix()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            began = time.perf_counter()
            client.post("/v1/messages", json=request, headers=headers)
            if not lazy and whole is not None:
                whole.append(time.perf_counter() - began)
            kb = rss_kb(proc.pid)
            if lazy and whole is not None:
                began = time.perf_counter()
                del headers["x-tapedeck-cassette"]
                client.post("/v1/messages", json=request, headers=headers)
                whole.append(time.perf_counter() - began)
        return took, cpu_used, kb
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cassettes", type=int, default=5000)
    parser.add_argument("--before", metavar="SRC", help="an older tapedeck's server/ directory")
    parser.add_argument("--cpu", type=int, help="run the servers on this CPU only")
    parser.add_argument("--lazy", action="store_true", help="also this tree with --load lazy")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (the best is shown)")
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tapedeck-startup-"))
    try:
        size = write_library(work / "cassettes", args.cassettes)
        load = os.getloadavg()[0]
        pinned = "" if args.cpu is None else f"; servers on CPU {args.cpu}"
        print(f"{args.cassettes} cassettes, {size / 1e6:.0f} MB of YAML; load {load:.2f}{pinned}")
        trees = [("tapedeck", str(ROOT / "server"))]
        if args.lazy:
            trees.append(("lazy", str(ROOT / "server")))
        if args.before:
            trees.append(("before", args.before))
        whole: dict[str, list[float]] = {}
        best: dict[tuple[str, str], tuple[float, float]] = {}
        rss: dict[str, int] = {}
        one = next((work / "cassettes").rglob("*.yaml"))

        def run(label: str, src: str, kind: str | None) -> None:
            """One start; ``kind`` None: not counted (it re-indexes a restored file)."""
            cache = work / f"cache-{label}"
            if kind == "cold":
                shutil.rmtree(cache, ignore_errors=True)
            lazy = label == "lazy"
            times = whole.setdefault(f"{label} {kind}", [])
            took, cpu, kb = start(
                sys.executable, src, work / "cassettes", args.port, cache, args.cpu, lazy, times
            )
            if kind is None:
                return
            old = best.get((label, kind))
            best[(label, kind)] = (
                (took, cpu) if old is None else (min(old[0], took), min(old[1], cpu))
            )
            rss[label] = max(rss.get(label, 0), kb)

        for _ in range(args.rounds):
            for kind in ("cold", "warm"):
                for label, src in trees:
                    run(label, src, kind)
            for label, src in trees:
                one.write_text(one.read_text().replace("short story", "short tale"))
                run(label, src, "touched")
                one.write_text(one.read_text().replace("short tale", "short story"))
            for label, src in trees:
                for path in (work / "cassettes").rglob("*.yaml"):  # as a fresh clone has them
                    stat = path.stat()
                    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
                run(label, src, "checkout")
            for label, src in trees:
                run(label, src, None)
        kinds = ("cold", "warm", "touched", "checkout")
        print(f"{'':10} " + " ".join(f"{k + ' s':>12}" for k in kinds) + f" {'RSS MB':>8}")
        print(f"{'':10} " + " ".join(f"{'wall / CPU':>12}" for _ in kinds))
        for label, _ in trees:
            cells = [f"{best[(label, k)][0]:5.2f} / {best[(label, k)][1]:4.2f}" for k in kinds]
            print(
                f"{label:10} " + " ".join(f"{c:>12}" for c in cells) + f" {rss[label] / 1024:8.0f}"
            )
        print("then the first request naming no cassette took (s, best):")
        for label, _ in trees:
            took = ", ".join(f"{k} {min(whole[f'{label} {k}']):.3f}" for k in kinds)
            print(f"  {label:10} {took}")
        if args.before:
            ratios = [
                f"{k} {best[('before', k)][1] / max(best[('tapedeck', k)][1], 1e-3):.1f}x"
                for k in kinds
            ]
            print("CPU before / tapedeck: " + ", ".join(ratios))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
