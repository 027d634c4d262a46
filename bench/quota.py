"""What a quota costs a replayed response: tapedeck with a quota in force against without one.

Serves the 100-delta stream of bench/replay.py at ``instant`` timing, three ways per round:

- ``plain``: no quota;
- ``quota``: a server-wide quota whose limits are never reached (every request is admitted,
  its usage taken, and the nine ``anthropic-ratelimit-*`` headers made);
- ``recorded``: no quota, but the cassette has the same nine headers recorded, which shows
  what sending the headers costs apart from the quota's bookkeeping.

With ``--before SRC`` (tapedeck from another source tree, e.g. a worktree of an earlier
commit), that tree runs ``plain`` and ``quota`` too, as ``before-plain`` and ``before-quota``.

Rounds alternate the setups to spread any drift; the best round of each is compared. It
prints streams/s and server CPU per response, and the ratios to ``plain`` (``before-quota``
to ``before-plain``); it exits 0 whenever it ran.

    .venv/bin/python bench/quota.py [--rounds 3] [--duration 5] [--connections 32] [--before SRC]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from replay import Server, loadgen, make_cassette, progress

#: Limits no run reaches: the quota admits everything, so only its bookkeeping is measured.
QUOTA = "quota:requests=1000000000/1s,input_tokens=1000000000/1s,output_tokens=1000000000/1s"
#: The headers that quota sends, as a recording would have them.
RECORDED = {
    f"anthropic-ratelimit-{family}-{part}": value
    for family in ("requests", "input-tokens", "output-tokens")
    for part, value in (
        ("limit", "1000000000"),
        ("remaining", "999999999"),
        ("reset", "2026-01-31T12:00:01Z"),
    )
}


def with_recorded_headers(source: Path, target: Path) -> None:
    """``source``'s cassette with :data:`RECORDED` among its response headers."""
    cassette = yaml.safe_load(source.read_text(encoding="utf-8"))
    cassette["interactions"][0]["response"]["headers"].update(RECORDED)
    target.write_text(yaml.safe_dump(cassette, sort_keys=False), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setup (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="window, s (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up, s (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="connections (default 32)")
    parser.add_argument("--before", type=Path, metavar="SRC", help="also run this source tree")
    args = parser.parse_args()
    opts = ["--connections", str(args.connections)]
    opts += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    results: dict[str, list[dict]] = {"plain": [], "quota": [], "recorded": []}
    if args.before:
        results.update({"before-plain": [], "before-quota": []})
    with tempfile.TemporaryDirectory(prefix="tapedeck-bench-quota-") as tmp_name:
        tmp = Path(tmp_name)
        cassettes = tmp / "cassettes"
        cassettes.mkdir()
        cassette = cassettes / "bench.yaml"
        make_cassette(cassette, 20.0)
        with_headers = tmp / "recorded"
        with_headers.mkdir()
        with_recorded_headers(cassette, with_headers / "bench.yaml")
        for r in range(args.rounds):
            for setup in results:
                progress(f"{setup}, round {r + 1}/{args.rounds}")
                root = with_headers if setup == "recorded" else cassettes
                kind = "before" if setup.startswith("before") else "tapedeck"
                server = Server(kind, "instant", root, tmp / f"{setup}.log", args.before)
                if setup.endswith("quota"):
                    server.cmd += ["--fault", QUOTA]
                with server as srv:
                    timeout = args.duration + args.warmup + 60
                    results[setup].append(loadgen("throughput", srv, cassette, timeout, *opts))
    best = {k: max(v, key=lambda r: r["streams_per_s"]) for k, v in results.items()}
    per: dict[str, float | None] = {}
    for setup, result in best.items():
        cpu, rate = result["server_cpu"], result["streams_per_s"]
        per[setup] = cpu / rate if cpu is not None and rate else None
        shown = f"{per[setup] * 1e6:6.1f} us" if per[setup] is not None else "     ? us"
        errors = sum(r["errors"] for r in results[setup])
        print(
            f"{setup:12} streams/s {rate:8.0f}   server CPU per response {shown}   "
            f"other load {result['other_cores'] or 0:.2f} cores   bad responses {errors}"
        )
    pairs = [("quota", "plain"), ("recorded", "plain")]
    if args.before:
        pairs.append(("before-quota", "before-plain"))
    for setup, base in pairs:
        plain_rate, plain_cpu = best[base]["streams_per_s"], per[base]
        line = f"{setup} / {base}: streams/s {best[setup]['streams_per_s'] / plain_rate:.3f}"
        cpu = per[setup]
        if plain_cpu and cpu:
            line += f"   CPU per response {cpu / plain_cpu:.3f} ({(cpu - plain_cpu) * 1e6:+.1f} us)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
