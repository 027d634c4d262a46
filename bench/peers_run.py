"""The measurements of bench/peers.py, phase by phase; results are kept per round for the report.

Servers are started through bench/replay.py's ``Server`` (pinned with taskset) and loaded
through bench/loadgen.py (``replay.loadgen``) and wrk; the record-proxy phase is in
bench/peers_proxy.py.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from peers_memory import peak_rss
from peers_tools import (
    AIMOCK_CLI,
    faulted_stream,
    progress,
    rotate,
    same_stream,
    write_aimock_fixture,
    write_aimock_library,
)
from peers_wrk import run_wrk, wrk_script
from quota import QUOTA
from replay import Server, loadgen, make_cassette
from startup import rss_kb, write_library
from stream_bytes import load

#: The quota is bench/quota.py's, far from its limits: what a quota in force costs a response.
FAULTS = {"ping": "ping:every=5", "overloaded": "overloaded:after=50", "quota": QUOTA}
MAIN = ["tapedeck", "aimock", "raw"]
WARMUP_STREAMS = 10
STARTUP_BUDGET_S = 30.0  # a start slower than this is not repeated in later rounds


class Run:
    """One run: the workload's files, the servers, and every round's numbers.

    ``results[measure][kind]`` is a list with one entry per round; ``problems[kind]`` says why
    a server was not (or no longer) measured."""

    def __init__(
        self,
        args: argparse.Namespace,
        tmp: Path,
        cpu: int | None,
        node: str | None,
        wrk: str | None,
    ) -> None:
        self.args, self.tmp, self.cpu, self.node, self.wrk = args, tmp, cpu, node, wrk
        self.cassettes = tmp / "cassettes"
        self.cassettes.mkdir()
        self.cassette = self.cassettes / "bench.yaml"
        make_cassette(self.cassette, args.gap_ms)
        self.stream = load(self.cassette)
        self.fixtures = {t: tmp / f"aimock-{t}" for t in ("instant", "recorded")}
        self.content = write_aimock_fixture(self.cassette, self.fixtures["instant"], timed=False)
        write_aimock_fixture(self.cassette, self.fixtures["recorded"], timed=True)
        self.request = json.dumps(self.stream.request_body, separators=(",", ":")).encode()
        self.script = tmp / "post.lua"
        wrk_script(self.script, self.request)
        self.expect: dict[str, Path] = {}
        self.body_bytes: dict[str, int] = {}
        self.problems: dict[str, str] = {}
        self.results: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        self.library: dict[str, Any] = {}
        self.startup_rounds = 0
        self.notes: list[str] = []
        self._logs = itertools.count()

    # -- servers and bodies -----------------------------------------------------------------

    def server(
        self,
        kind: str,
        timing: str,
        *,
        cassettes: Path | None = None,
        fixtures: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> Server:
        """``kind`` (tapedeck, a fault name, aimock or raw) serving on the server CPU."""
        cassettes = cassettes or self.cassettes
        log = self.tmp / f"{kind}-{timing}-{next(self._logs)}.log"
        if kind == "aimock":
            assert self.node is not None
            srv = Server("aimock", timing, cassettes, log)
            srv.cmd = [self.node, str(AIMOCK_CLI), "--host", "127.0.0.1", "--port", "0"]
            srv.cmd += ["--fixtures", str(fixtures or self.fixtures[timing]), *extra]
            srv.health = "/health"
        elif kind == "raw":
            srv = Server("bare", timing, cassettes, log)
        else:
            srv = Server("tapedeck", timing, cassettes, log)
            if kind in FAULTS:
                srv.cmd += ["--fault", FAULTS[kind]]
            srv.cmd += extra
        if self.cpu is not None:
            srv.cmd = ["taskset", "-c", str(self.cpu), *srv.cmd]
        return srv

    @contextlib.contextmanager
    def guard(self, kind: str, what: str) -> Iterator[None]:
        """Record a failure of ``kind`` (and stop measuring it) rather than end the run."""
        try:
            yield
        except (SystemExit, Exception) as exc:  # Server and loadgen exit on failure
            text = " ".join(str(exc).split())[:400]
            self.problems[kind] = f"{what} failed: {text}"
            progress(f"{kind}: {self.problems[kind]}")

    def post(
        self, port: int, body: bytes, timeout: float = 30, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, float]:
        """One request: the status, the body, and the seconds until the response headers came
        (what a first answer costs; aimock's timed fixtures then take the stream's length)."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            sent = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
            began = time.perf_counter()
            conn.request("POST", "/v1/messages", body, {**sent, **(headers or {})})
            response = conn.getresponse()
            took = time.perf_counter() - began
            return response.status, response.read(), took
        finally:
            conn.close()

    def check_body(self, kind: str, srv: Server) -> bool:
        """Fetch one response and check it is this kind's rendering of the bench stream; the
        first good one becomes what bench/loadgen.py compares every later body with."""
        if kind in self.body_bytes:
            return True
        status, body, _ = self.post(srv.port, self.request)
        reference = self.stream.payload
        if status != 200:
            problem: str | None = f"status {status}: {body[:200]!r}"
        elif kind in FAULTS:
            problem = faulted_stream(body, reference, FAULTS[kind])
        elif kind == "aimock":
            problem = same_stream(body, reference, self.content)
        else:
            problem = None if body == reference else "the body differs from the cassette's"
        if problem:
            self.problems[kind] = f"does not serve the bench stream: {problem}"
            return False
        self.body_bytes[kind] = len(body)
        if body != reference:
            self.expect[kind] = self.tmp / f"expect-{kind}.bin"
            self.expect[kind].write_bytes(body)
        return True

    def loadgen(self, job: str, kind: str, srv: Server, *opts: str) -> dict[str, Any]:
        expect = ("--expect", str(self.expect[kind])) if kind in self.expect else ()
        span = self.stream.at_ms[-1] / 1000
        result = loadgen(
            job, srv, self.cassette, span * 3 + self.args.duration + 90, *opts, *expect
        )
        if result["errors"]:
            self.notes.append(
                f"{kind} {job}: {result['errors']} bad or incomplete responses, e.g. "
                f"{result['error_samples'][:1]}"
            )
        return result

    # -- the phases ---------------------------------------------------------------------------

    def instant(self) -> None:
        a = self.args
        kinds = [*MAIN, *FAULTS]
        opts = ["--connections", str(a.connections), "--duration", str(a.duration)]
        opts += ["--warmup", str(a.warmup)]
        for r in range(a.rounds):
            for kind in rotate(kinds, r):
                if kind in self.problems:
                    continue
                progress(f"instant, {kind}, round {r + 1}/{a.rounds}")
                with self.guard(kind, "instant"), self.server(kind, "instant") as srv:
                    if not self.check_body(kind, srv):
                        continue
                    if self.wrk:
                        run_wrk(self.wrk, srv.port, self.script, a.connections, a.warmup, srv.pid)
                        result = run_wrk(
                            self.wrk, srv.port, self.script, a.connections, a.duration, srv.pid
                        )
                        self.results["wrk"][kind].append(result)
                    if (kind in MAIN and not a.quick) or not self.wrk:
                        self.results["loadgen"][kind].append(
                            self.loadgen("throughput", kind, srv, *opts)
                        )

    def timing(self) -> None:
        a = self.args
        for r in range(a.rounds):
            for kind in rotate(MAIN, r):
                if kind in self.problems:
                    continue
                progress(f"recorded, {kind}, round {r + 1}/{a.rounds}: {a.streams} streams")
                with self.guard(kind, "recorded timing"), self.server(kind, "recorded") as srv:
                    if not self.check_body(kind, srv):
                        continue
                    self.loadgen("timing", kind, srv, "--streams", str(WARMUP_STREAMS))
                    for n in a.streams:
                        result = self.loadgen("timing", kind, srv, "--streams", str(n))
                        self.results[f"timing{n}"][kind].append(result)
                progress(f"recorded, {kind}, round {r + 1}: RSS with {a.open_streams} open streams")
                with self.guard(kind, "open streams"), self.server(kind, "recorded") as srv:
                    self.results["open"][kind].append(self._open_streams(kind, srv))

    def _open_streams(self, kind: str, srv: Server) -> dict[str, Any]:
        self.loadgen("timing", kind, srv, "--streams", str(WARMUP_STREAMS))
        with peak_rss(srv.pid) as measured:
            result = self.loadgen("timing", kind, srv, "--streams", str(self.args.open_streams))
        return {**measured(), "complete": result["complete_streams"]}

    def startup(self) -> None:
        a = self.args
        root = self.tmp / "library"
        progress(f"start-up: writing {a.library} cassettes and {a.library} aimock fixtures")
        cassettes, fixtures = root / "cassettes", root / "fixtures"
        self.library["yaml_bytes"] = write_library(cassettes, a.library)
        if self.node:
            self.library["json_bytes"] = write_aimock_library(cassettes, fixtures)
        probe = next(iter(sorted(cassettes.rglob("*.yaml"))[a.library // 2 : a.library // 2 + 1]))
        document = yaml.load(probe.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        body = json.dumps(document["interactions"][0]["request"]["body"]).encode()
        # load: lazy lists the files only; the request names its cassette, as a test's does.
        named = {"x-tapedeck-cassette": probe.relative_to(cassettes).with_suffix("").as_posix()}
        for r in range(a.rounds):
            kinds = ["tapedeck", "aimock"] if self.node else ["tapedeck"]
            for kind in rotate(kinds, r):
                if f"startup-{kind}" in self.problems:
                    continue
                starts = ("cold", "warm", "lazy") if kind == "tapedeck" else ("start",)
                for which in starts:
                    # A new cache each round (the first start is cold); load: lazy's its own.
                    cache = self.tmp / f"cache-{r}{'-lazy' if which == 'lazy' else ''}"
                    lazy = which == "lazy"
                    progress(f"start-up, {kind} {which}, round {r + 1}/{a.rounds}")
                    with self.guard(f"startup-{kind}", f"start-up ({which})"):
                        srv = self.server(
                            kind,
                            "instant",
                            cassettes=cassettes,
                            fixtures=fixtures,
                            extra=("--load", "lazy") if lazy else (),
                        )
                        srv.start_timeout = 900
                        srv.env = {
                            **os.environ,
                            "TAPEDECK_INDEX_CACHE": str(cache / "tapedeck"),
                            "XDG_CACHE_HOME": str(cache),
                        }
                        began = time.perf_counter()
                        with srv:
                            took = time.perf_counter() - began
                            status, _, first = self.post(
                                srv.port, body, timeout=120, headers=named if lazy else None
                            )
                            rss = rss_kb(srv.pid) / 1024
                        if status != 200:
                            raise RuntimeError(f"the probe request got status {status}")
                        self.results[f"startup-{which}"][kind].append(
                            {"s": took, "first_s": first, "rss_mb": rss}
                        )
            self.startup_rounds = r + 1
            slowest = max(
                (
                    e["s"]
                    for key, m in self.results.items()
                    if key.startswith("startup-")
                    for runs in m.values()
                    for e in runs
                ),
                default=0.0,
            )
            if slowest > STARTUP_BUDGET_S and r + 1 < a.rounds:
                self.notes.append(
                    f"start-up: one round only: a start took {slowest:.0f} s "
                    f"(> {STARTUP_BUDGET_S:.0f} s), so later rounds were left out"
                )
                break
