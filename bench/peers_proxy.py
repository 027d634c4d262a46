"""The record-proxy phase of bench/peers.py: tapedeck (``--mode all``) and aimock (``--record``)
proxying to the same local upstream (bench/bare_app.py), timed against the direct path with
bench/proxy.py's ``arrivals``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
from typing import TYPE_CHECKING, Any

import httpx

from peers_tools import progress, rotate
from proxy import arrivals
from replay import Server, make_cassette

if TYPE_CHECKING:
    from peers_run import Run

PROXY_GAP_MS = 10.0

# (time to the headers, arrival of each event), both from the request, in seconds
Arrivals = tuple[float, list[float]]


def overheads(direct: list[Arrivals], through: list[Arrivals]) -> dict[str, float] | str:
    """What a proxy adds, in ms, from paired streams (the i-th direct one with the i-th through
    the proxy); a text saying what is wrong when a pair does not have the same events.

    ``headers_ms``: time to the headers, proxied minus direct; ``event_ms``: each event's
    (arrival - headers), proxied minus direct; ``end_to_end_ms``: each event's arrival from the
    request, proxied minus direct."""
    events, headers, end_to_end = [], [], []
    for (h1, a), (h2, b) in zip(direct, through, strict=True):
        if len(a) != len(b):
            return f"{len(b)} events through it, {len(a)} direct"
        headers.append((h2 - h1) * 1000)
        events.extend(((y - h2) - (x - h1)) * 1000 for x, y in zip(a, b, strict=True))
        end_to_end.extend((y - x) * 1000 for x, y in zip(a, b, strict=True))
    if not events:
        return "no events"
    return {
        "event_ms": statistics.median(events),
        "event_ms_p99": statistics.quantiles(events, n=100)[98] if len(events) > 1 else events[0],
        "headers_ms": statistics.median(headers),
        "end_to_end_ms": statistics.median(end_to_end),
    }


def proxy(run: Run) -> None:
    """Every round: a fresh upstream, fresh recording proxies into empty directories, then
    ``--proxy-streams`` new requests along each path in turn."""
    a = run.args
    upstream_dir = run.tmp / "upstream"
    upstream_dir.mkdir()
    make_cassette(upstream_dir / "bench.yaml", PROXY_GAP_MS)
    for r in range(a.rounds):
        progress(f"record proxy, round {r + 1}/{a.rounds}: {a.proxy_streams} streams a path")
        with contextlib.ExitStack() as stack:
            up = stack.enter_context(
                Server("bare", "recorded", upstream_dir, run.tmp / f"upstream-{r}.log")
            )
            url = f"http://127.0.0.1:{up.port}"
            paths = {"direct": f"{url}/v1/messages"}
            for kind in ("tapedeck", "aimock"):
                if f"proxy-{kind}" in run.problems or (kind == "aimock" and not run.node):
                    continue
                with run.guard(f"proxy-{kind}", "record proxy start"):
                    paths[kind] = _start(run, stack, kind, url, r)
            if len(paths) > 1:
                _round(run, paths, r)


def _start(run: Run, stack: contextlib.ExitStack, kind: str, upstream: str, r: int) -> str:
    folder = run.tmp / f"recorded-{kind}-{r}"
    folder.mkdir()
    if kind == "tapedeck":
        extra = ("--mode", "all", "--upstream", upstream)
        srv = run.server("tapedeck", "instant", cassettes=folder, extra=extra)
    else:
        extra = ("--record", "--provider-anthropic", upstream)
        srv = run.server("aimock", "instant", fixtures=folder, extra=extra)
    stack.enter_context(srv)
    return f"http://127.0.0.1:{srv.port}/v1/messages"


def _round(run: Run, paths: dict[str, str], r: int) -> None:
    def body(i: int, name: str) -> bytes:
        message = f"Tell me a short story. (round {r}, stream {i}, {name})"
        request = {**run.stream.request_body, "messages": [{"role": "user", "content": message}]}
        return json.dumps(request).encode()

    async def go() -> dict[str, list[Arrivals]]:
        got: dict[str, list[Arrivals]] = {name: [] for name in paths}
        async with httpx.AsyncClient(timeout=60) as client:
            for name, url in paths.items():  # first connections, first upstream request
                await arrivals(client, url, body(-1, name))
            for i in range(run.args.proxy_streams):
                for name in rotate(list(paths), i):
                    got[name].append(await arrivals(client, paths[name], body(i, name)))
        return got

    try:
        got = asyncio.run(go())
    except (httpx.HTTPError, OSError) as exc:
        run.problems["proxy-run"] = f"record proxy round failed: {exc!r}"
        return
    for name in paths:
        if name == "direct" or f"proxy-{name}" in run.problems:
            continue
        result: dict[str, Any] | str = overheads(got["direct"], got[name])
        if isinstance(result, str):
            run.problems[f"proxy-{name}"] = result
            continue
        folder = run.tmp / f"recorded-{name}-{r}"
        result["recorded"] = sum(1 for _ in folder.rglob("*.*"))
        run.results["proxy"][name].append(result)
