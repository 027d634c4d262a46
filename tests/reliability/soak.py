"""A mixed chaos soak: every fault kind, timings, misses, bad requests, admin calls and
clients that leave early, for minutes, while the server's memory and open fds are sampled.

Fails on growth (RSS over the last quarter of the run against the second, after warm-up;
fds once the load has stopped against before it), on any 5xx tapedeck did not mean (only
``status`` faults and recorded errors may be 5xx), on an error not in the API's shape, and
on a traceback in the server's log.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from . import cassettes, rawhttp
from .outcome import Outcome
from .proc import OtherLoad, Server, tracebacks

ROOT = Path(__file__).resolve().parent.parent.parent
SHORT_SECONDS, FULL_SECONDS = 10.0, 300.0
WORKERS = 16
HELLO = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Hello"}],
}
#: Every fault kind, and the gates.
FAULTS = (
    "ping:every=2",
    "ping:interval=5",
    "error:after=3,type=api_error,message=boom",
    "overloaded:after=2",
    "disconnect:after=4",
    "disconnect:after_bytes=300",
    "truncate:after=3",
    "status:code=529,retry_after_ms=1",
    "status:code=429,retry_after=1,should_retry=false",
    "latency:ms=20",
    "stall:after=2,ms=30",
    "garble:after=2",
    "overloaded:after=1,p=0.5,seed=7",
    "status:code=500,times=2",
    "none",
)
TIMINGS = ("instant", "recorded", "speed=20", "fixed=2")
#: Growth tolerated between the second and the last quarter of the run (noise, warm caches).
RSS_SLACK_KB = 8 * 1024


class Tally:
    def __init__(self) -> None:
        self.kinds: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.problems: list[str] = []

    def count(self, kind: str, response: rawhttp.Response) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
        source = response.headers.get("x-tapedeck-source", "")
        if response.status >= 500 and source not in ("fault", "cassette"):
            self.problems.append(
                f"{kind}: {response.status} of tapedeck's own: {response.body[:200]!r}"
            )
        if response.status >= 400 and response.complete:
            try:
                body = response.json()
                ok = body["type"] == "error" and isinstance(body["error"]["message"], str)
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                self.problems.append(f"{kind}: {response.status} not in the API's shape")


async def _one(host: str, port: int, rng: random.Random, tally: Tally) -> None:
    test_id = f"soak-{rng.randrange(50)}"
    roll = rng.random()
    headers = {"x-tapedeck-test-id": test_id}
    leave_after = None
    if roll < 0.45:
        kind = "fault"
        headers["x-tapedeck-fault"] = rng.choice(FAULTS)
        headers["x-tapedeck-timing"] = rng.choice(TIMINGS)
        body = {**HELLO, "stream": True}
    elif roll < 0.55:
        kind = "json"
        body = dict(HELLO)
        headers["x-tapedeck-fault"] = rng.choice(("status:code=503", "latency:ms=5", "none"))
    elif roll < 0.65:
        kind = "miss"
        body = {**HELLO, "messages": [{"role": "user", "content": f"miss {rng.random()}"}]}
    elif roll < 0.75:
        kind = "leaves early"
        body = cassettes.ask("go")
        leave_after = rng.randrange(1, 400)
    elif roll < 0.85:
        kind = "bad request"
        body = rng.choice([b"{not json", b"[1]", {"x": 1}])
        if rng.random() < 0.5:
            headers["x-tapedeck-fault"] = "bogus:x=1"
    elif roll < 0.93:
        kind = "admin faults"
        raw = rawhttp.request(
            host, port, "PUT", "/_tapedeck/faults", {"faults": rng.choice(FAULTS)}, headers
        )
        tally.count(kind, await rawhttp.exchange(host, port, raw))
        return
    else:
        kind = "admin reset"
        raw = rawhttp.request(host, port, "POST", "/_tapedeck/reset", None, headers)
        tally.count(kind, await rawhttp.exchange(host, port, raw))
        return
    raw = rawhttp.request(host, port, "POST", "/v1/messages", body, headers)
    response = await rawhttp.exchange(host, port, raw, leave_after=leave_after, wait_s=30)
    if (
        response.error
        and leave_after is None
        and "disconnect" not in headers.get("x-tapedeck-fault", "")
    ):
        tally.problems.append(f"{kind}: {response.error} with {headers}")
    tally.count(kind, response)


async def _load(server: Server, seconds: float, samples: list[tuple[float, int, int]]) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds

    async def worker(n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < deadline:
            await _one(server.host, server.port, rng, tally)

    async def sampler() -> None:
        start = time.monotonic()
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - start, server.rss_kb(), server.fds()))
            await asyncio.sleep(min(1.0, seconds / 20))

    await asyncio.gather(sampler(), *(worker(n) for n in range(WORKERS)))
    return tally


def slope_kb_per_min(samples: list[tuple[float, int, int]]) -> float:
    if len(samples) < 3:
        return 0.0
    xs = [s[0] for s in samples]
    ys = [s[1] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


#: Descriptors the server may hold beyond those it had before the load (its own wake-ups).
FD_SLACK = 2
#: How long the server has to close the connections its clients closed, on a loaded machine.
FD_SETTLE_S = 15.0


def _settled_fds(server: Server, bound: int) -> int:
    """The server's open descriptors once they are at most ``bound``, or, if they stay above
    it for :data:`FD_SETTLE_S` (a leak), what they are then: the closed connections are
    waited for, not guessed at with a sleep."""
    deadline = time.monotonic() + FD_SETTLE_S
    fds = server.fds()
    while fds > bound and time.monotonic() < deadline:
        time.sleep(0.1)
        fds = server.fds()
    return fds


def run(full: bool, src: Path | None = None) -> Outcome:
    seconds = FULL_SECONDS if full else SHORT_SECONDS
    outcome = Outcome("soak")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "cassettes", root, dirs_exist_ok=True)
        words = [f" w{i}" for i in range(20)]
        cassettes.write(
            root, "paced", [cassettes.streamed("go", cassettes.message_events(words, 5))]
        )
        with Server(["--cassettes", str(root), "--timing", "instant"], src) as server:
            load = OtherLoad(server.pid)
            fds_before = server.fds()
            samples: list[tuple[float, int, int]] = []
            tally = rawhttp.run(_load(server, seconds, samples))
            fds_after = _settled_fds(server, fds_before + FD_SLACK)
            other = load.cores()
            lines = server.stop()
    total = sum(tally.kinds.values())
    settled = samples[len(samples) // 5 :]
    quarter = max(1, len(samples) // 4)
    second = statistics.median(s[1] for s in samples[quarter : 2 * quarter] or samples)
    last = statistics.median(s[1] for s in samples[-quarter:])
    outcome.figure("requests", total)
    outcome.figure("by kind", ", ".join(f"{k} {v:,}" for k, v in sorted(tally.kinds.items())))
    outcome.figure("by status", ", ".join(f"{k}: {v:,}" for k, v in sorted(tally.statuses.items())))
    outcome.figure("RSS first/last kB", f"{samples[0][1]:,} / {samples[-1][1]:,}")
    outcome.figure("RSS slope after warm-up", f"{slope_kb_per_min(settled):+,.0f} kB/min")
    outcome.figure(
        "open fds before/peak/after", f"{fds_before} / {max(s[2] for s in samples)} / {fds_after}"
    )
    outcome.check(last - second <= RSS_SLACK_KB, f"RSS grew {last - second:,} kB over the run")
    outcome.check(fds_after <= fds_before + FD_SLACK, f"fds grew from {fds_before} to {fds_after}")
    for problem in tally.problems[:10]:
        outcome.fail(problem)
    outcome.check(not tracebacks(lines), f"tracebacks in the server log: {tracebacks(lines)[:3]}")
    if other is not None and other > 0.3:
        outcome.notes.append(f"other processes used {other:.1f} cores meanwhile")
    outcome.seconds = time.perf_counter() - started
    return outcome
