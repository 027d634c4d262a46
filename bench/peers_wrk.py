"""wrk for bench/peers.py: installing it, its request script, and one run's numbers with
the server's and the machine's CPU use over it."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cpu_use import cpu_seconds, machine_busy


def install_wrk() -> tuple[str | None, str]:
    """``(wrk, version)``, installing Debian's wrk when missing and allowed, else
    ``(None, why not)``."""
    wrk = shutil.which("wrk")
    if not wrk and os.geteuid() == 0 and shutil.which("apt-get"):
        print("... installing wrk (apt-get install wrk)", file=sys.stderr)
        command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "wrk"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        ok = subprocess.run(command, capture_output=True, env=env, timeout=600).returncode == 0
        if not ok:  # an empty or old package list
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
            subprocess.run(command, capture_output=True, env=env, timeout=600)
        wrk = shutil.which("wrk")
    if not wrk:
        why = "apt-get install wrk failed" if os.geteuid() == 0 else "not root: apt-get install wrk"
        return None, f"wrk is not installed ({why})"
    banner = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    found = re.search(r"wrk (\S+)", banner)
    return wrk, found.group(1) if found else "?"


# -- wrk ----------------------------------------------------------------------------------


def wrk_script(path: Path, body: bytes) -> None:
    """A wrk script sending the bench request: POST /v1/messages with this JSON body."""
    text = body.decode()
    assert "]==]" not in text
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{text}]==]\n"
        'wrk.headers["content-type"] = "application/json"\n'
        'wrk.headers["accept"] = "text/event-stream"\n'
        'wrk.headers["anthropic-version"] = "2023-06-01"\n',
        encoding="utf-8",
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
_SIZES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_wrk(text: str) -> dict[str, Any]:
    """The numbers of one ``wrk --latency`` run's output."""
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", text)
    if not done:
        raise ValueError(f"no summary line in wrk's output: {text[-500:]!r}")
    seconds = float(done.group(2)) * _UNITS[done.group(3)] / 1000
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    latency = {
        q: float(v) * _UNITS[u]
        for q, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    }
    return {
        "requests": int(done.group(1)),
        "seconds": seconds,
        "bytes": float(done.group(4)) * _SIZES[done.group(5)],
        "streams_per_s": int(done.group(1)) / seconds,
        "errors": (sum(int(x) for x in errors.groups()) if errors else 0)
        + (int(non2xx.group(1)) if non2xx else 0),
        "latency_ms_p50": latency.get("50", float("nan")),
        "latency_ms_p99": latency.get("99", float("nan")),
    }


def run_wrk(
    wrk: str, port: int, script: Path, connections: int, duration: float, server_pid: int
) -> dict[str, Any]:
    """One wrk run (one thread, on this process's CPU) with the server's and the machine's
    CPU use over it, in cores, as bench/loadgen.py reports them."""
    seconds = max(1, round(duration))  # wrk takes whole seconds
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    command.append(f"http://127.0.0.1:{port}/v1/messages")
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0, machine0, wall0 = cpu_seconds(server_pid), machine_busy(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    wall = time.perf_counter() - wall0
    server1, machine1 = cpu_seconds(server_pid), machine_busy()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {(done.stderr + done.stdout).strip()[-300:]}")
    result = parse_wrk(done.stdout)
    client = (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime) / wall
    result["client_cpu"] = client
    result["server_cpu"] = None
    result["other_cores"] = None
    if server0 is not None and server1 is not None:
        result["server_cpu"] = (server1 - server0) / wall
        if machine0 and machine1 and machine1[1] > machine0[1]:
            busy = (machine1[0] - machine0[0]) / (machine1[1] - machine0[1]) * (os.cpu_count() or 1)
            result["other_cores"] = max(0.0, busy - result["server_cpu"] - client)
    # CPU per response over the whole wrk process's life, not just its reported window.
    result["server_cpu_per_response"] = (
        (server1 - server0) / result["requests"]
        if server0 is not None and server1 is not None and result["requests"]
        else None
    )
    return result
