"""``kill -9`` while many recordings are in flight.

A recording tapedeck (``--mode all`` against the fake upstream of the test suite) takes
concurrent requests — streamed and JSON, keys in both auth styles, in the body and in the
query — and is killed without warning once about half have been answered. Then every
cassette on disk must load (none half-written), every answer a client received complete
must be on disk (none lost), no key may be in any file or file name, and once tapedeck
starts again no temporary file may be left.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from fake_upstream import FakeUpstream, ask
from tapedeck.cassette.load import load_cassette
from tapedeck.errors import CassetteError

from . import rawhttp
from .outcome import Outcome
from .proc import Server

SHORT, FULL = (1, 20), (5, 100)  # rounds, concurrent recordings


def key_of(n: int, where: str) -> str:
    return f"sk-ant-api03-KILL{n:03d}{where}-Zq8v"


def _request(server: Server, n: int) -> tuple[bytes, list[str]]:
    keys = [key_of(n, "AUTH"), key_of(n, "BODY"), key_of(n, "QUERY")]
    auth = {"x-api-key": keys[0]} if n % 2 else {"authorization": f"Bearer {keys[0]}"}
    body: dict[str, Any] = ask(f"question {n} about the kill", stream=n % 3 != 0)
    body["system"] = f"the key is {keys[1]}"
    raw = rawhttp.request(
        server.host,
        server.port,
        "POST",
        f"/v1/messages?note={keys[2]}",
        body,
        {**auth, "anthropic-version": "2023-06-01"},
    )
    return raw, keys


async def _clients(server: Server, count: int, rng: random.Random) -> list[rawhttp.Response]:
    done: list[rawhttp.Response] = []
    half = asyncio.Event()

    async def one(n: int) -> rawhttp.Response:
        await asyncio.sleep(rng.random() * 0.4)
        raw, _ = _request(server, n)
        response = await rawhttp.exchange(server.host, server.port, raw, wait_s=20)
        done.append(response)
        if len(done) >= count // 2:
            half.set()
        return response

    async def killer() -> None:
        await half.wait()
        server.kill()

    results = await asyncio.gather(killer(), *(one(n) for n in range(count)))
    return list(results[1:])


def run(full: bool, src: Path | None = None) -> Outcome:
    rounds, count = FULL if full else SHORT
    outcome = Outcome("kill")
    started = time.perf_counter()
    totals = {"complete": 0, "files": 0, "temporary": 0, "broken": 0, "lost": 0, "leaked": 0}
    with FakeUpstream() as fake:
        fake.gap_s = 0.02
        for round_ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                args = ["--cassettes", str(root), "--mode", "all", "--upstream", fake.base_url]
                server = Server(args, src)
                responses = rawhttp.run(_clients(server, count, random.Random(round_)))
                files = [p for p in root.rglob("*") if p.is_file()]
                cassettes = [p for p in files if p.suffix == ".yaml" and not p.name.startswith(".")]
                temporary = [p for p in files if p not in cassettes]
                complete = [r for r in responses if r.complete and r.status == 200]
                names = {r.headers.get("x-tapedeck-cassette") for r in complete}
                broken = []
                for path in cassettes:
                    try:
                        load_cassette(path, path.stem)
                    except CassetteError as exc:
                        broken.append(str(exc))
                on_disk = {p.relative_to(root).with_suffix("").as_posix() for p in cassettes}
                lost = sorted(n for n in names if n not in on_disk)
                leaked = [
                    str(p)
                    for p in files
                    if "KILL" in p.name or "KILL" in p.read_text(encoding="utf-8", errors="replace")
                ]
                # Starting again in a recording mode sweeps what the killed process left.
                Server(args, src).stop()
                left = [p for p in root.rglob("*") if p.is_file() and p.name.startswith(".")]
                totals["complete"] += len(complete)
                totals["files"] += len(cassettes)
                totals["temporary"] += len(temporary)
                totals["broken"] += len(broken)
                totals["lost"] += len(lost)
                totals["leaked"] += len(leaked)
                outcome.check(not broken, f"round {round_}: half-written cassettes: {broken[:3]}")
                outcome.check(not lost, f"round {round_}: answered but not on disk: {lost[:3]}")
                outcome.check(not leaked, f"round {round_}: keys in {leaked[:3]}")
                outcome.check(not left, f"round {round_}: temporary files after a restart: {left}")
    outcome.figure("rounds x concurrent recordings", f"{rounds} x {count}")
    outcome.figure("answered complete before the kill", totals["complete"])
    outcome.figure(
        "cassettes on disk, all loading", f"{totals['files']} ({totals['broken']} broken)"
    )
    outcome.figure("answered but lost", totals["lost"])
    outcome.figure("temporary files right after the kill (swept at restart)", totals["temporary"])
    outcome.figure("files or names holding a key", totals["leaked"])
    outcome.seconds = time.perf_counter() - started
    return outcome
