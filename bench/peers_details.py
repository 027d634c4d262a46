"""The lines under bench/peers.py's table: every round's numbers, and the notes on what may
have disturbed them."""

from __future__ import annotations

import argparse
import statistics
from typing import TYPE_CHECKING, Any

from peers_memory import CONNECTIONS, WARMUP_BIG
from peers_proxy import PROXY_GAP_MS

if TYPE_CHECKING:
    from peers_run import Run

OTHER_LOAD = 0.3  # cores used by other processes above which a window counts as disturbed
SATURATED = 0.9  # a client using this much of its core may be what limits the server


def other_cpu(run: Run) -> str:
    others = sorted(
        r["other_cores"]
        for kinds in run.results.values()
        for rounds in kinds.values()
        for r in rounds
        if r.get("other_cores") is not None
    )
    if not others:
        return "not known"
    return f"median {statistics.median(others):.0%}, max {others[-1]:.0%} of a core"


def details(args: argparse.Namespace, run: Run, tool: str) -> list[str]:
    res = run.results
    out = ["", "details (every round)"]
    notes = list(run.notes)

    def cpu(r: dict[str, Any]) -> str:
        def pct(v: float | None) -> str:
            return "?" if v is None else f"{v:.0%}"

        server, client, other = (r.get(k) for k in ("server_cpu", "client_cpu", "other_cores"))
        return f"CPU server {pct(server)} client {pct(client)} other {pct(other)}"

    others: list[float] = []

    def disturbed(r: dict[str, Any], where: str) -> None:
        if r.get("other_cores") is not None:
            others.append(r["other_cores"])
        if (r.get("client_cpu") or 0) >= SATURATED:
            notes.append(f"{where}: the client used {r['client_cpu']:.0%} of a core (saturated)")

    for measure in ("wrk", "loadgen"):
        for kind, rounds in res.get(measure, {}).items():
            for i, r in enumerate(rounds):
                extra = ""
                if measure == "wrk" and r["requests"]:
                    extra = f", {r['bytes'] / r['requests']:,.0f} bytes read per response"
                out.append(
                    f"  instant {measure:7} {kind:10} round {i + 1}: {r['streams_per_s']:7,.0f}/s, "
                    f"latency p50/p99 {r['latency_ms_p50']:.1f}/{r['latency_ms_p99']:.1f} ms, "
                    f"{cpu(r)}, errors {r['errors']}{extra}"
                )
                disturbed(r, f"instant {measure} {kind} round {i + 1}")
    for n in args.streams:
        for kind, rounds in res.get(f"timing{n}", {}).items():
            for i, r in enumerate(rounds):
                g = r["gap_ms"]
                out.append(
                    f"  timing {n:>4} {kind:8} round {i + 1}: "
                    f"{r['complete_streams']}/{n} complete, "
                    f"p50/p99/max {g['p50']:.2f}/{g['p99']:.2f}/{g['max']:.1f} ms, after the burst "
                    f"p99 {g['steady_p99']:.2f}, first events spread "
                    f"{r['first_event_spread_ms']:.1f} ms, {cpu(r)}"
                )
                disturbed(r, f"timing {n} {kind} round {i + 1}")
    for kind, rounds in res.get("open", {}).items():
        for i, r in enumerate(rounds):
            out.append(
                f"  open streams {kind:8} round {i + 1}: idle {r['idle_mb']:.0f} MB, "
                f"+{r['added_mb']:.1f} MB at the peak of {args.open_streams} streams "
                f"({r['complete']} complete)"
            )
    for kind, rounds in res.get("big", {}).items():
        for i, r in enumerate(rounds):
            statuses = ", ".join(f"{n} x {s}" for s, n in sorted(r["statuses"].items()))
            cpu_ms = r.get("server_cpu_per_request")
            out.append(
                f"  big requests {kind:8} round {i + 1}: idle {r['idle_mb']:.0f} MB, "
                f"+{r['added_mb']:.1f} MB at the peak of {args.big_requests} x 1 MB "
                f"({statuses}) in {r['seconds']:.1f} s, server CPU "
                f"{'?' if cpu_ms is None else f'{cpu_ms * 1000:.1f}'} ms per request"
            )
    for measure in ("startup-cold", "startup-warm", "startup-lazy", "startup-start"):
        for kind, rounds in res.get(measure, {}).items():
            for i, r in enumerate(rounds):
                out.append(
                    f"  {measure:14} {kind:8} round {i + 1}: {r['s']:.2f} s to healthy, then "
                    f"{r['first_s']:.2f} s to a first answer's headers, "
                    f"RSS {r['rss_mb']:.0f} MB after it"
                )
    for kind, rounds in res.get("proxy", {}).items():
        for i, r in enumerate(rounds):
            out.append(
                f"  proxy {kind:8} round {i + 1}: headers p50 {r['headers_ms']:.3f} ms; per event "
                f"from the headers p50 {r['event_ms']:.3f} ms, p99 {r['event_ms_p99']:.3f} ms; "
                f"end to end p50 {r['end_to_end_ms']:.3f} ms; "
                f"{r['recorded']} file(s) recorded"
            )
    busy = [o for o in others if o >= OTHER_LOAD]
    if busy:
        notes.append(
            f"other processes used {OTHER_LOAD:.0%} of a core or more in {len(busy)} of "
            f"{len(others)} measured windows (up to {max(busy):.0%}): the numbers are disturbed; "
            "the ratios and the CPU per response less than the rest. Run again on a quiet machine"
        )
    out += [f"note: {n}" for n in notes]
    return out


def footnotes(args: argparse.Namespace, setup: dict[str, Any], run: Run) -> list[str]:
    """The notes right under the table: why a cell says not measured, and what each phase ran."""
    out = [""]
    for key, why in sorted(run.problems.items()):
        out.append(f"* {key} not measured: {why}")
    if not run.results.get("loadgen"):
        out.append("  loadgen row: left out by --quick (every body is still checked once)")
    out.append(
        "* aimock faults: aimock has no ping or mid-stream error fault (its chaos options fail "
        "whole requests at random; fixtures can truncate or disconnect)"
    )
    out.append(
        "** a quota: tapedeck --fault quota:requests=1000000000/1s,input_tokens=...,"
        "output_tokens=... (never reached: every request admitted, its usage taken, twelve "
        "anthropic-ratelimit-* headers made); added CPU = quota - unfaulted, per round"
    )
    lib = run.library
    if lib:
        out.append(
            f"  start-up library: {args.library:,} cassettes, {lib['yaml_bytes'] / 1e6:.0f} MB of "
            f"YAML (bench/startup.py); aimock: the same requests as fixtures its recorder would "
            f"write (text + recordedTimings), {lib.get('json_bytes', 0) / 1e6:.0f} MB of JSON; "
            f"{run.startup_rounds} round(s); files in the page cache"
        )
    if run.results.get("big"):
        out.append(
            f"  big requests: {args.big_requests:,} distinct requests of 1 MB (one user message, a "
            f"counter first) over {CONNECTIONS} keep-alive connections after {WARMUP_BIG} as a "
            f"warm-up, {min(args.rounds, args.big_rounds)} round(s); tapedeck: misses (404), "
            "journal and metrics on; aimock: its no-match error; raw: reads the body, sends the "
            "stream; peak RSS during and 0.5 s after, minus before"
        )
    out.append(
        f"  record proxy: upstream bench/bare_app.py at {PROXY_GAP_MS:g} ms a gap; tapedeck "
        f"--mode all, aimock --record; {args.proxy_streams} new requests per path per round, "
        "alternating with the direct path; per event = (arrival - headers) through it minus the "
        "same direct"
    )
    return out
