"""SIGTERM while answers are being recorded.

A ``tapedeck serve --mode all`` subprocess records answers of the fake upstream that take a
while — streams whose events come 0.2 s apart, JSON answers whose headers come after 1.2 s —
and is sent SIGTERM once the upstream has every request in hand:

- **within the bound** (``--record-shutdown-timeout 4``): every client gets its whole
  answer, every answer is written whole (each cassette loads and holds what its client
  got), the log says ``recorded into`` for each, and the process exits by itself. The
  streams last longer than uvicorn's own graceful shutdown (2 s), which alone would cancel
  them. A stream that would take 30 s more, recorded by the same server, is abandoned at
  the bound: its client sees the cut, one log line says so, nothing is written for it.
- **past the bound** (the full run; ``--record-shutdown-timeout 0.3``, the upstream slower
  than that): each answer is abandoned with one log line (``not recorded into NAME: the
  upstream had not finished its answer ...``), a stream's client sees the cut, a JSON
  client that had nothing yet gets a 503 ``api_error`` saying why, nothing is written, and
  the process exits.

Neither may leave a traceback in the log or a temporary file on disk.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from pathlib import Path

from fake_upstream import FakeUpstream, ask
from tapedeck.cassette.load import load_cassette
from tapedeck.errors import CassetteError

from . import rawhttp
from .outcome import Outcome
from .proc import Server, tracebacks

#: Seconds between two streamed events: a 12-word answer takes about 2.5 s.
GAP_S = 0.18
#: The bound of the first server: past those 2.5 s, short of the 30 s of a ``hang`` stream.
BOUND_S = "4"
#: How the server may exit: uvicorn ends by raising the signal it was stopped with again.
EXITS = (0, -signal.SIGTERM)
WORDS = "one two three four five six seven eight nine ten eleven twelve"


def _raw(server: Server, n: int, text: str, stream: bool) -> bytes:
    headers = {
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-ant-api03-SIGTERM-Zq8v",
        "x-tapedeck-cassette": f"c{n}",
    }
    body = ask(text, stream=stream)
    return rawhttp.request(server.host, server.port, "POST", "/v1/messages", body, headers)


async def _terminate_in_flight(
    server: Server, fake: FakeUpstream, asks: list[tuple[str, bool]]
) -> list[rawhttp.Response]:
    """Send ``asks``; once the upstream has them all, SIGTERM the server; the answers."""
    clients = [
        asyncio.ensure_future(
            rawhttp.exchange(server.host, server.port, _raw(server, n, text, stream), wait_s=30)
        )
        for n, (text, stream) in enumerate(asks)
    ]
    await asyncio.to_thread(fake.wait_for, lambda: fake.count >= len(asks), 10)
    await asyncio.sleep(0.1)  # past the headers of the streams
    server.proc.send_signal(signal.SIGTERM)
    return list(await asyncio.gather(*clients))


def _events(body: bytes) -> list[str]:
    return [line[7:] for line in body.decode().splitlines() if line.startswith("event: ")]


def _within(outcome: Outcome, fake: FakeUpstream, full: bool) -> dict[str, int]:
    asks = [(f"{WORDS} {n}", True) for n in range(3 if full else 1)]
    asks += [(f"slowheaders {n}", False) for n in range(2 if full else 1)]
    hang = len(asks)  # the last: abandoned at the bound
    asks.append(("hang past the bound", True))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fake.reset()
        fake.gap_s = GAP_S
        args = ["--cassettes", tmp, "--mode", "all", "--upstream", fake.base_url]
        server = Server([*args, "--record-shutdown-timeout", BOUND_S])
        try:
            responses = rawhttp.run(_terminate_in_flight(server, fake, asks))
            exited = server.proc.wait(timeout=30)
        finally:
            lines = server.stop()
        written = 0
        for n, ((_, stream), r) in enumerate(zip(asks, responses, strict=True)):
            what = f"within the bound, request {n} ({'stream' if stream else 'JSON'})"
            if n == hang:
                outcome.check(r.status == 200 and not r.complete, f"{what}: not cut: {r.status}")
                abandoned = [line for line in lines if f"not recorded into c{n}: " in line]
                outcome.check(len(abandoned) == 1, f"{what}: {abandoned} for the abandoned one")
                outcome.check(not (root / f"c{n}.yaml").exists(), f"{what}: written")
                continue
            outcome.check(r.status == 200 and r.complete, f"{what}: {r.status} {r.error}")
            path = root / f"c{n}.yaml"
            try:
                cassette = load_cassette(path, f"c{n}")
            except (CassetteError, OSError) as exc:
                outcome.fail(f"{what}: not written whole: {exc}")
                continue
            written += 1
            response = cassette.interactions[0].response
            if stream:
                got = [e for e in _events(r.body) if e != "ping"]
                kept = [e.event for e in response.events or () if e.event != "ping"]
                outcome.check(kept == got, f"{what}: the cassette has {kept}, the client {got}")
        said = [line for line in lines if " recorded into c" in line and "not recorded" not in line]
        outcome.check(len(said) == hang, f"within the bound: {len(said)} 'recorded' lines")
        outcome.check(exited in EXITS, f"within the bound: exit status {exited}")
        _clean(outcome, "within the bound", root, lines)
    return {"in flight": hang, "written": written}


def _past(outcome: Outcome, fake: FakeUpstream, full: bool) -> dict[str, int]:
    asks = [(f"hang on {n}", True) for n in range(2 if full else 1)]
    asks += [(f"slowheaders {n}", False) for n in range(2 if full else 1)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fake.reset()
        args = ["--cassettes", tmp, "--mode", "all", "--upstream", fake.base_url]
        server = Server([*args, "--record-shutdown-timeout", "0.3"])
        try:
            responses = rawhttp.run(_terminate_in_flight(server, fake, asks))
            exited = server.proc.wait(timeout=30)
        finally:
            lines = server.stop()
        for n, ((_, stream), r) in enumerate(zip(asks, responses, strict=True)):
            what = f"past the bound, request {n} ({'stream' if stream else 'JSON'})"
            if stream:
                outcome.check(r.status == 200 and not r.complete, f"{what}: not cut: {r.status}")
                continue
            message = ""
            if r.status == 503 and r.complete:
                message = r.json()["error"]["message"]
            outcome.check("record_shutdown_timeout" in message, f"{what}: {r.status} {r.body!r}")
        abandoned = [line for line in lines if "not recorded into c" in line]
        outcome.check(
            len(abandoned) == len(asks)
            and all("record_shutdown_timeout" in line for line in abandoned),
            f"past the bound: {len(abandoned)} lines for {len(asks)} abandoned: {abandoned}",
        )
        outcome.check(exited in EXITS, f"past the bound: exit status {exited}")
        _clean(outcome, "past the bound", root, lines)
        files = [p for p in root.rglob("*") if p.is_file()]
        outcome.check(not files, f"past the bound: files written: {files}")
    return {"abandoned": len(abandoned)}


def _clean(outcome: Outcome, what: str, root: Path, lines: list[str]) -> None:
    found = tracebacks(lines)
    outcome.check(not found, f"{what}: a traceback in the log: {found[:2]}")
    left = [p.name for p in root.rglob(".*") if p.is_file()]
    outcome.check(not left, f"{what}: temporary files left: {left}")
    leaked = [line for line in lines if "SIGTERM-Zq8v" in line]
    outcome.check(not leaked, f"{what}: a key in the log: {leaked[:1]}")


def run(full: bool) -> Outcome:
    outcome = Outcome("sigterm")
    started = time.perf_counter()
    with FakeUpstream() as fake:
        within = _within(outcome, fake, full)
        past = _past(outcome, fake, full) if full else {"abandoned": 0}
    outcome.figure(f"recordings finishing within a {BOUND_S} s bound", within["in flight"])
    outcome.figure("of them written whole before the exit", within["written"])
    outcome.figure("abandoned at the bound, one log line each", past["abandoned"] + 1)
    outcome.seconds = time.perf_counter() - started
    return outcome
