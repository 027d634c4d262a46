"""The table bench/peers.py prints: medians over rounds, ratios, and every round in details."""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from typing import Any

from peers_details import details, footnotes, other_cpu
from peers_run import FAULTS, MAIN, WARMUP_STREAMS, Run
from replay import versions


def median(values: list[float | None]) -> float | None:
    """The median of the values measured (None and NaN are rounds without a number)."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(kept) if kept else None


def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    """``value`` with thousands separators, or ``-`` when there is none."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` to two places, or ``-`` when either is missing (or ``b`` is 0)."""
    return f"{a / b:.2f}" if a is not None and b else "-"


def round_ratios(a: list[float], b: list[float]) -> list[float]:
    """``a[i] / b[i]`` for each round both were measured in (a 0 in ``b`` is left out): the
    ratio is taken within a round, so a slower round for both does not move it."""
    return [x / y for x, y in zip(a, b, strict=False) if y]


def ratios(td: float | None, am: float | None, raw: float | None) -> str:
    """tapedeck's number over aimock's and over the raw baseline's, for those measured."""
    parts = []
    if am is not None:
        parts.append(f"td/aimock {ratio(td, am)}")
    if raw is not None:
        parts.append(f"td/raw {ratio(td, raw)}")
    return ", ".join(parts)


class Table:
    """Rows of: what, tapedeck, aimock, raw baseline, ratios."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, what: str, td: str, am: str, raw: str, ratios: str = "") -> None:
        self.rows.append((what, td, am, raw, ratios))

    def cell(self, kind: str, value: str, problem_key: str | None = None) -> str:
        """``value``, or a mark that this server was not measured (the footnote says why)."""
        if value == "-" and (kind in self.run.problems or problem_key in self.run.problems):
            return "not measured*"
        return value

    def text(self, heads: tuple[str, str, str, str, str]) -> list[str]:
        """The rows under ``heads``: the first column left-aligned, the numbers right-aligned,
        the ratios last."""
        widths = [max(len(r[i]) for r in [heads, *self.rows]) for i in range(5)]
        out = []
        for row in [heads, *self.rows]:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:4], widths[1:4], strict=True)
            ]
            out.append("  ".join(cells) + "  " + row[4])
        return out


def report(args: argparse.Namespace, setup: dict[str, Any], run: Run) -> None:
    res = run.results
    aimock_head = f"aimock {setup['aimock_pin']}"
    t = Table(run)

    def med(measure: str, kind: str, get: Callable[[dict[str, Any]], float | None]) -> float | None:
        return median([get(r) for r in res.get(measure, {}).get(kind, [])])

    def triple(measure: str, get: Callable[[dict[str, Any]], float | None]) -> list[float | None]:
        return [med(measure, k, get) for k in MAIN]

    def row(what: str, values: list[float | None], fmt: Callable[[float | None], str]) -> None:
        td, am, raw = values
        t.add(
            what,
            t.cell("tapedeck", fmt(td)),
            t.cell("aimock", fmt(am)),
            t.cell("raw", fmt(raw)),
            ratios(td, am, raw),
        )

    rate = lambda r: r["streams_per_s"]  # noqa: E731
    tool = "wrk" if run.wrk else "loadgen"
    wrk_row = f"instant streams/s (wrk -t1 -c{args.connections})"
    if run.wrk:
        row(wrk_row, triple("wrk", rate), number)
    else:
        t.add(wrk_row, "-", "-", "-", setup["wrk_why"])
    if res.get("loadgen"):
        row(
            f"instant streams/s (loadgen -c{args.connections}, bodies checked)",
            triple("loadgen", rate),
            number,
        )

    def cpu(r: dict[str, Any]) -> float | None:
        if "server_cpu_per_response" in r:
            return r["server_cpu_per_response"]
        return (
            r["server_cpu"] / r["streams_per_s"] if r["server_cpu"] and r["streams_per_s"] else None
        )

    row(
        f"server CPU per instant response ({tool})",
        triple(tool, cpu),
        lambda v: number(None if v is None else v * 1e6, 0, " us"),
    )

    for n in args.streams:
        p50 = triple(f"timing{n}", lambda r: r["gap_ms"]["p50"])
        p99 = triple(f"timing{n}", lambda r: r["gap_ms"]["p99"])
        cells = [
            t.cell(k, f"{number(a, 2)}/{number(b, 2)}" if b is not None else "-")
            for k, a, b in zip(MAIN, p50, p99, strict=True)
        ]
        t.add(
            f"gap error p50/p99 ms, {n} streams at {args.gap_ms:g} ms",
            *cells,
            "p99 " + ratios(*p99),
        )
        steady = triple(f"timing{n}", lambda r: r["gap_ms"]["steady_p99"])
        row(f"  p99 after the burst, {n} streams", steady, lambda v: number(v, 2))
        spread = triple(f"timing{n}", lambda r: r["first_event_spread_ms"])
        within = []
        for k, v in zip(MAIN[:2], spread[:2], strict=True):
            if v is not None and spread[2] is not None:
                within.append(
                    f"{'td' if k == 'tapedeck' else k} {'yes' if v <= spread[2] else 'no'}"
                )
        row(f"  first events of all {n} spread over, ms", spread, lambda v: number(v, 1))
        if within:
            t.rows[-1] = (*t.rows[-1][:4], "within raw's: " + ", ".join(within))

    lib = f"{args.library:,}"
    cold = med("startup-cold", "tapedeck", lambda r: r["s"])
    warm = med("startup-warm", "tapedeck", lambda r: r["s"])
    am_start = med("startup-start", "aimock", lambda r: r["s"])
    td_start = f"{number(cold, 1)} / {number(warm, 1)}" if cold is not None else "-"
    t.add(
        f"start-up s, {lib} cassettes / fixtures (td cold / warm)",
        t.cell("tapedeck", td_start, "startup-tapedeck"),
        t.cell("aimock", number(am_start, 2), "startup-aimock"),
        "",
        f"td cold/aimock {ratio(cold, am_start)}" if am_start else "",
    )
    rss_cold = med("startup-cold", "tapedeck", lambda r: r["rss_mb"])
    rss_warm = med("startup-warm", "tapedeck", lambda r: r["rss_mb"])
    rss_am = med("startup-start", "aimock", lambda r: r["rss_mb"])
    td_rss = f"{number(rss_cold)} / {number(rss_warm)}" if rss_cold is not None else "-"
    t.add(
        f"RSS MB after start-up, {lib} (td cold / warm)",
        t.cell("tapedeck", td_rss, "startup-tapedeck"),
        t.cell("aimock", number(rss_am), "startup-aimock"),
        "",
        f"td cold/aimock {ratio(rss_cold, rss_am)}" if rss_am else "",
    )
    # load: lazy against aimock on the same measure: healthy, then a first answer's headers.
    total = lambda r: r["s"] + r["first_s"]  # noqa: E731
    lazy = med("startup-lazy", "tapedeck", total)
    am_total = med("startup-start", "aimock", total)
    t.add(
        f"start-up s + 1st answer, {lib} (td load: lazy, cold)",
        t.cell("tapedeck", number(lazy, 2), "startup-tapedeck"),
        t.cell("aimock", number(am_total, 2), "startup-aimock"),
        "",
        f"td lazy/aimock {ratio(lazy, am_total)}" if am_total else "",
    )
    rss_lazy = med("startup-lazy", "tapedeck", lambda r: r["rss_mb"])
    t.add(
        f"RSS MB after start-up, {lib} (td load: lazy)",
        t.cell("tapedeck", number(rss_lazy), "startup-tapedeck"),
        t.cell("aimock", number(rss_am), "startup-aimock"),
        "",
        f"td lazy/aimock {ratio(rss_lazy, rss_am)}" if rss_am else "",
    )
    row(
        f"RSS MB added by {args.open_streams:,} open streams",
        triple("open", lambda r: r["added_mb"]),
        lambda v: number(v, 1),
    )
    row(
        f"RSS MB added by {args.big_requests:,} distinct 1 MB requests",
        triple("big", lambda r: r["added_mb"]),
        lambda v: number(v, 1),
    )

    for kind, spec in FAULTS.items():
        per_round = round_ratios(
            [rate(r) for r in res.get(tool, {}).get(kind, [])],
            [rate(r) for r in res.get(tool, {}).get("tapedeck", [])],
        )
        value = med(tool, kind, rate)
        t.add(
            f"instant streams/s with {'a quota**' if kind == 'quota' else spec} ({tool})",
            t.cell(kind, number(value)),
            "no such fault*",
            "",
            f"{number(median(per_round), 2)}x of unfaulted tapedeck" if per_round else "",
        )
    # What a quota in force adds to a response's server CPU, round by round.
    added = [
        (q - p) * 1e6
        for q, p in zip(
            [cpu(r) for r in res.get(tool, {}).get("quota", [])],
            [cpu(r) for r in res.get(tool, {}).get("tapedeck", [])],
            strict=False,
        )
        if q is not None and p is not None
    ]
    plain_cpu = med(tool, "tapedeck", cpu)
    t.add(
        f"server CPU added by a quota** per response ({tool})",
        t.cell("quota", f"+{number(median(added), 1)} us" if added else "-"),
        "no such fault*",
        "",
        f"+{median(added) / (plain_cpu * 1e6):.0%} of unfaulted tapedeck's"
        if added and plain_cpu
        else "",
    )

    for what, key in (
        ("added to headers", "headers_ms"),
        ("added per event, from the headers", "event_ms"),
        ("added per event, end to end", "end_to_end_ms"),
    ):
        td = med("proxy", "tapedeck", lambda r, key=key: r[key])
        am = med("proxy", "aimock", lambda r, key=key: r[key])
        t.add(
            f"record proxy: {what}, p50 ms",
            t.cell("tapedeck", number(td, 3), "proxy-tapedeck"),
            t.cell("aimock", number(am, 3), "proxy-aimock"),
            "",
            f"td/aimock {ratio(td, am)}" if am is not None else "",
        )

    out = _header(args, setup, run)
    out += t.text(("", "tapedeck", aimock_head, "raw ASGI", "ratios"))
    out += footnotes(args, setup, run)
    out += details(args, run, tool)
    print("\n".join(out), flush=True)


def _header(args: argparse.Namespace, setup: dict[str, Any], run: Run) -> list[str]:
    load0, load1 = setup["load_start"], setup["load_end"]
    sizes = ", ".join(f"{k} {v:,}" for k, v in sorted(run.body_bytes.items()))
    return [
        f"tapedeck and its peers (bench/peers.py), medians of {args.rounds} round(s)"
        + (" [--quick]" if args.quick else ""),
        f"  {versions()}",
        f"  aimock {setup['aimock'] or 'not run: ' + str(setup['aimock_why'])}; "
        f"wrk {setup['wrk'] or 'not run: ' + str(setup['wrk_why'])}",
        f"  cores: {setup['assignment']}",
        f"  load average (1/5/15 min): {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the start, "
        f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end; CPU used by other processes "
        f"in the measured windows: {other_cpu(run)}",
        f"  workload: bench/replay.py's stream, {len(run.stream.events)} events (100 text deltas), "
        f"one POST /v1/messages; body bytes: {sizes}",
        f"  instant: {args.warmup:g} s warm-up + {args.duration:g} s per server per round; raw = "
        "bench/bare_app.py (one send)",
        f"  timing: streams started at once after a {WARMUP_STREAMS}-stream warm-up, "
        f"{args.gap_ms:g} ms apart; raw = bench/bare_app.py (sleeps to each deadline); error = "
        "|(arrival_i - arrival_0) - (at_i - at_0)|",
        "",
    ]
