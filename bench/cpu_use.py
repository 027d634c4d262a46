"""CPU use over a benchmark's window: a process's (``/proc/PID/stat``), the machine's
(``/proc/stat``), and both with this process's own over one window (:class:`Usage`)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int] | None:
    """Busy and total CPU time of the whole machine so far (``/proc/stat`` ticks), or None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(fields[:8])  # guest time is already part of user time
    return total - fields[3] - fields[4], total


class Usage:
    """CPU use over a window: this process, the server, and the machine as a whole."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start = (time.perf_counter(), time.process_time(), cpu_seconds(server_pid))
        self.machine = machine_busy()

    def result(self) -> dict[str, float | None]:
        wall, cpu, server = time.perf_counter(), time.process_time(), cpu_seconds(self.server_pid)
        machine = machine_busy()
        elapsed = wall - self.start[0]
        out: dict[str, float | None] = {
            "client_cpu": (cpu - self.start[1]) / elapsed,
            "server_cpu": None,
            "machine_busy_cores": None,
            "other_cores": None,
        }
        if server is not None and self.start[2] is not None:
            out["server_cpu"] = (server - self.start[2]) / elapsed
        if machine and self.machine and machine[1] > self.machine[1]:
            busy = (machine[0] - self.machine[0]) / (machine[1] - self.machine[1])
            out["machine_busy_cores"] = busy * (os.cpu_count() or 1)
            if out["server_cpu"] is not None:
                # What neither the server nor this client used: other processes, mostly.
                # (Interrupt time for loopback traffic may land here too, so it is rarely 0.)
                out["other_cores"] = max(
                    0.0, out["machine_busy_cores"] - out["server_cpu"] - out["client_cpu"]
                )
        return out
