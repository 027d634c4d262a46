"""bench/replay.py's report: the numbers of every round, the ratios and whether the targets
were met."""

from __future__ import annotations

import argparse
from typing import Any

from bench_servers import versions

TARGET_RATIO = 0.6
TARGET_CPU = 1.6  # tapedeck's server CPU per instant response, at most this many times bare's
TARGET_P99_MS = 1.5
TARGET_STREAMS = 400
SATURATED = 0.9  # CPU share (of one core) above which a process counts as saturated
WARMUP_STREAMS = 10
OTHER_LOAD = 0.3  # CPU (in cores) used by other processes above which a window is disturbed


def report(
    args: argparse.Namespace,
    setup: dict[str, Any],
    impls: dict[str, set[str]],
    logs: dict[str, int],
    tput: dict[str, list[dict]],
    timing: dict[tuple[str, int], dict],
) -> None:
    out: list[str] = []
    notes: list[str] = []
    impl_text = ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in impls.items())
    out += [
        "tapedeck replay benchmark (bench/replay.py)",
        f"  {versions()}",
        f"  servers, one at a time, uvicorn with tapedeck's settings: {impl_text}",
        f"  cassette: {setup['events']} events ({setup['events'] - 5} text deltas), "
        f"{setup['body_bytes']} body bytes, gap {args.gap_ms:g} ms, stream {setup['span_s']:.2f} s",
        f"  instant: {args.connections} keep-alive connections, {setup['warmup']:g} s warm-up + "
        f"{setup['duration']:g} s, best of {setup['rounds']} round(s) per server",
        f"  recorded: {', '.join(map(str, args.streams))} streams started at once ("
        f"{', '.join(f'{n * 1000 / args.gap_ms:.0f}' for n in args.streams)} events/s), after "
        f"a {WARMUP_STREAMS}-stream warm-up",
        "  gap error = |(arrival_i - arrival_0) - (at_i - at_0)| over events 1..n of every stream",
        "",
    ]

    best = {k: max(r["streams_per_s"] for r in v) for k, v in tput.items()}
    ratio = best["tapedeck"] / best["bare"] if best["bare"] else float("nan")
    out.append(
        f"instant             streams/s                  tapedeck {best['tapedeck']:6.0f}"
        f"          bare {best['bare']:6.0f}          ratio {ratio:.2f} (target >= {TARGET_RATIO})"
    )
    # The same comparison from server CPU time per response: less sensitive to other load.
    cost = {
        k: min((r["server_cpu"] / r["streams_per_s"] for r in v if r["server_cpu"]), default=0)
        for k, v in tput.items()
    }
    if cost["tapedeck"] and cost["bare"]:
        out.append(
            "instant             server CPU per response    "
            f"tapedeck {cost['tapedeck'] * 1e6:4.0f} us         bare {cost['bare'] * 1e6:4.0f} us"
            "         ratio "
            f"{cost['tapedeck'] / cost['bare']:.2f} (tapedeck / bare, target <= {TARGET_CPU})"
        )
    if "before" in best:
        before = best["before"] / best["bare"] if best["bare"] else float("nan")
        out.append(
            f"instant  (before)   streams/s                  before   {best['before']:6.0f}"
            f"          bare {best['bare']:6.0f}          ratio {before:.2f}; after/before "
            f"{best['tapedeck'] / best['before']:.2f}"
        )
        if cost["before"] and cost["bare"]:
            out.append(
                "instant  (before)   server CPU per response    "
                f"before   {cost['before'] * 1e6:4.0f} us         bare {cost['bare'] * 1e6:4.0f} us"
                f"         ratio {cost['before'] / cost['bare']:.2f} (before / bare)"
            )
    if "off" in best:
        out += _observed(best, cost)
    kernel = all(r["kernel_stamps"] for r in timing.values())
    for n in args.streams:
        t, b = timing[("tapedeck", n)]["gap_ms"], timing[("bare", n)]["gap_ms"]
        out.append(
            f"recorded {n:>4} streams gap error p50/p99/max ms  tapedeck {_errors(t)}  "
            f"bare {_errors(b)}  p99 ratio {_ratio(t['p99'], b['p99'])}"
        )
        if ("before", n) in timing:
            out.append(
                f"recorded {n:>4} streams (before)              before   "
                f"{_errors(timing[('before', n)]['gap_ms'])}"
            )
    out.append(
        "  (arrival = the kernel's receive time of the read, SO_TIMESTAMPNS)"
        if kernel
        else "  (arrival = time.perf_counter() at the read; no kernel timestamps here)"
    )

    out += ["", "details"]
    for kind in tput:
        for i, r in enumerate(tput[kind]):
            out.append(
                f"  instant  {kind:8} round {i + 1}: {r['streams_per_s']:6.0f}/s, "
                f"{_per(r['server_cpu'], r['streams_per_s'])} server CPU per response, latency "
                f"p50/p99 {r['latency_ms_p50']:.1f}/{r['latency_ms_p99']:.1f} ms, {_cpu(r)}, "
                f"errors {r['errors']}"
            )
            _check_cpu(r, f"instant {kind} round {i + 1}", notes)
    for (kind, n), r in timing.items():
        g, c = r["gap_ms"], r["gap_ms_client_clock"]
        where = f"recorded {kind} {n} streams"
        events_per_s = r["complete_streams"] * r["events_per_stream"] / r["duration_s"]
        out.append(
            f"  recorded {kind:8} {n:>4} streams: {r['complete_streams']}/{n} complete, "
            f"{g['samples']} gaps, {_per(r['server_cpu'], events_per_s)} server CPU per "
            f"event, {_cpu(r)}, errors {r['errors']}"
        )
        out.append(
            f"      first events spread over {r['first_event_spread_ms']:.1f} ms; after that "
            f"burst ({g['steady_samples']} gaps) p50/p99/max {_errors(g, 'steady_')} ms"
        )
        if kernel:
            out.append(
                f"      client clock (perf_counter at the read): {_errors(c)} ms, after the "
                f"burst {_errors(c, 'steady_')} ms; client lag p99-p50 "
                f"{r['client_lag_spread_ms_p99']:.2f} ms"
            )
        _check_cpu(r, where, notes)
        if r["server_cpu"] is not None and r["server_cpu"] >= SATURATED:
            notes.append(
                f"{where}: the server used {r['server_cpu']:.0%} of a core: it is saturated at "
                f"{n} x {args.gap_ms:g} ms ({n * 1000 / args.gap_ms:.0f} events/s); try a "
                "larger --gap-ms"
            )
    out.append(
        "  tapedeck request log lines written: "
        + ", ".join(f"{v} at {k} timing" for k, v in sorted(logs.items()))
    )
    if any(len(v) > 1 for v in impls.values()) or len({frozenset(v) for v in impls.values()}) > 1:
        notes.append(f"the servers did not run on the same loop/http implementation: {impls}")
    errors = sum(r["errors"] for v in tput.values() for r in v)
    errors += sum(r["errors"] for r in timing.values())
    if errors:
        notes.append(f"{errors} bad or incomplete responses (see above): numbers are suspect")

    out += ["", "targets"]
    met = "MET" if ratio >= TARGET_RATIO else "MISSED"
    out.append(f"  instant ratio tapedeck/bare >= {TARGET_RATIO}: {met} ({ratio:.2f})")
    if cost["tapedeck"] and cost["bare"]:
        cpu = cost["tapedeck"] / cost["bare"]
        met = "MET" if cpu <= TARGET_CPU else "MISSED"
        out.append(f"  server CPU per response tapedeck/bare <= {TARGET_CPU}: {met} ({cpu:.2f})")
    big = [n for n in args.streams if n >= TARGET_STREAMS]
    for n in big:
        t, b = timing[("tapedeck", n)]["gap_ms"], timing[("bare", n)]["gap_ms"]
        met = "MET" if t["p99"] <= TARGET_P99_MS else "MISSED"
        out.append(
            f"  tapedeck gap error p99 <= {TARGET_P99_MS} ms at {n} streams: {met} "
            f"({t['p99']:.2f} ms; the bare app: {b['p99']:.2f} ms)"
        )
    if not big:
        out.append(f"  gap error p99 <= {TARGET_P99_MS} ms at {TARGET_STREAMS} streams: not run")
    out += [f"note: {note}" for note in notes]
    print("\n".join(out), flush=True)


def _observed(best: dict[str, float], cost: dict[str, float]) -> list[str]:
    """What the request journal and the metrics cost: each against both off, same run."""
    out = []
    for kind, what in (
        ("tapedeck", "both on"),
        ("journal", "journal only"),
        ("metrics", "metrics only"),
    ):
        line = (
            f"instant  (observe)  {what:<13} streams/s {best[kind]:6.0f}  off {best['off']:6.0f}"
            f"  ratio {best[kind] / best['off']:.3f}"
        )
        if cost[kind] and cost["off"]:
            line += (
                f";  CPU per response {cost[kind] * 1e6:4.1f} us  off {cost['off'] * 1e6:4.1f} us"
                f"  ratio {cost[kind] / cost['off']:.3f}"
            )
        out.append(line)
    out.append("  (target: each ratio of streams/s >= 0.95, of CPU per response <= 1.05)")
    return out


def _errors(r: dict, prefix: str = "") -> str:
    p50, p99, top = (r[f"{prefix}{q}"] for q in ("p50", "p99", "max"))
    return f"{p50:.2f}/{p99:.2f}/{top:.1f}"


def _per(cpu: float | None, rate: float) -> str:
    return f"{cpu / rate * 1e6:.0f} us" if cpu is not None and rate else "? us"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _cpu(r: dict) -> str:
    def pct(value: float | None) -> str:
        return "?" if value is None else f"{value:.0%}"

    return (
        f"CPU server {pct(r['server_cpu'])} client {pct(r['client_cpu'])} "
        f"other {pct(r['other_cores'])}"
    )


def _check_cpu(r: dict, where: str, notes: list[str]) -> None:
    if r["client_cpu"] >= SATURATED:
        notes.append(
            f"{where}: the client used {r['client_cpu']:.0%} of a core; the server may be "
            "faster than measured"
        )
    if r["other_cores"] is not None and r["other_cores"] >= OTHER_LOAD:
        notes.append(
            f"{where}: other processes used {r['other_cores']:.0%} of a core: the numbers are "
            "disturbed; run again on a quiet machine"
        )
