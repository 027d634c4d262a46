"""The arithmetic and layout of bench/peers.py's table: medians over rounds, ratios, the
proxy's added latencies, and the table itself, from made-up rounds (nothing is run or timed)."""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from peers_proxy import overheads
from peers_report import Table, median, number, ratio, ratios, report, round_ratios
from peers_tools import rotate


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3.0, 1.0, 2.0], 2.0),
        ([4.0, 1.0], 2.5),
        ([None, 5.0, math.nan, 7.0], 6.0),
        ([None, math.nan], None),
        ([], None),
    ],
)
def test_the_median_keeps_only_measured_rounds(values: list, expected: float | None) -> None:
    assert median(values) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((6833.4,), "6,833"),
        ((1.554, 2), "1.55"),
        ((164.0, 0, " us"), "164 us"),
        ((-0.4761, 3), "-0.476"),
        ((None, 2, " us"), "-"),
    ],
)
def test_numbers_are_printed_with_separators_or_a_dash(args: tuple, expected: str) -> None:
    assert number(*args) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(6833, 1665, "4.10"), (1.0, 3.0, "0.33"), (None, 2.0, "-"), (2.0, None, "-"), (2.0, 0, "-")],
)
def test_a_ratio_needs_both_numbers(a: float | None, b: float | None, expected: str) -> None:
    assert ratio(a, b) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((10.0, 5.0, 20.0), "td/aimock 2.00, td/raw 0.50"),
        ((10.0, None, 20.0), "td/raw 0.50"),
        ((10.0, 5.0, None), "td/aimock 2.00"),
        ((None, 5.0, 20.0), "td/aimock -, td/raw -"),
        ((10.0, None, None), ""),
    ],
)
def test_ratios_name_only_the_peers_measured(values: tuple, expected: str) -> None:
    assert ratios(*values) == expected


def test_fault_ratios_are_taken_round_by_round() -> None:
    assert round_ratios([80.0, 40.0, 90.0], [100.0, 50.0, 100.0]) == [0.8, 0.8, 0.9]
    assert round_ratios([80.0, 40.0], [100.0, 0.0, 100.0]) == [0.8]  # round 3 not run, 2 failed
    assert round_ratios([], [100.0]) == []


def test_rotation_moves_the_first_server_each_round() -> None:
    kinds = ["tapedeck", "aimock", "raw"]
    assert [rotate(kinds, r)[0] for r in range(4)] == ["tapedeck", "aimock", "raw", "tapedeck"]
    assert sorted(rotate(kinds, 5)) == sorted(kinds)
    assert rotate([], 3) == []


def test_proxy_overheads_are_proxied_minus_direct() -> None:
    # direct: headers at 10 ms, events 20 and 30 ms; proxied: headers 13 ms, events 24, 35 ms.
    direct = [(0.010, [0.020, 0.030]), (0.010, [0.020, 0.030])]
    through = [(0.013, [0.024, 0.035]), (0.012, [0.021, 0.032])]
    got = overheads(direct, through)
    assert isinstance(got, dict)
    assert got["headers_ms"] == pytest.approx(2.5)  # median of 3 and 2
    # (arrival - headers) through minus direct: 1, 2, -1, 0 -> median 0.5
    assert got["event_ms"] == pytest.approx(0.5)
    # arrival from the request: 4, 5, 1, 2 -> median 3
    assert got["end_to_end_ms"] == pytest.approx(3.0)
    assert got["event_ms_p99"] >= got["event_ms"]


def test_a_proxied_stream_with_other_events_is_a_problem_not_a_number() -> None:
    got = overheads([(0.01, [0.02, 0.03])], [(0.01, [0.02])])
    assert got == "1 events through it, 2 direct"
    assert overheads([], []) == "no events"


def _fake_run(problems: dict[str, str] | None = None) -> SimpleNamespace:
    results: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    return SimpleNamespace(
        results=results,
        problems=problems or {},
        wrk="/usr/bin/wrk",
        body_bytes={"tapedeck": 12822},
        stream=SimpleNamespace(events=[None] * 105),
        library={},
        startup_rounds=0,
        notes=[],
    )


def test_the_table_aligns_columns_and_marks_what_was_not_measured() -> None:
    t = Table(_fake_run({"aimock": "npm ci failed"}))  # type: ignore[arg-type]
    t.add("instant streams/s", "6,833", t.cell("aimock", "-"), "13,177", "td/raw 0.52")
    t.add("start-up s", "1.0", t.cell("aimock", "0.40"), t.cell("raw", "-"))
    lines = t.text(("", "tapedeck", "aimock", "raw ASGI", "ratios"))
    assert lines[1].split("  ")[0] == "instant streams/s"
    assert "not measured*" in lines[1]
    assert lines[2].split()[-2:] == ["0.40", "-"]  # raw had no problem: a plain dash
    # every number column ends at the same place on every line
    heads = lines[0]
    for name in ("tapedeck", "aimock", "raw ASGI"):
        end = heads.index(name) + len(name)
        for line in lines[1:]:
            assert line[end - 1] != " ", (name, line)
            assert line[end : end + 2] == "  ", (name, line)


def _wrk(rate: float, cpu_us: float) -> dict[str, Any]:
    return {
        "streams_per_s": rate,
        "server_cpu_per_response": cpu_us / 1e6,
        "requests": 1000,
        "bytes": 13_090_000,
        "latency_ms_p50": 1.0,
        "latency_ms_p99": 2.0,
        "errors": 0,
        "server_cpu": 0.5,
        "client_cpu": 0.2,
        "other_cores": 0.0,
    }


def test_the_report_shows_medians_of_the_rounds_and_their_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = _fake_run({"startup-aimock": "start-up (start) failed: no port"})
    wrk = run.results["wrk"]
    wrk["tapedeck"] = [_wrk(r, c) for r, c in ((6000, 170), (7000, 160), (9000, 150))]
    wrk["aimock"] = [_wrk(r, c) for r, c in ((1500, 640), (1750, 630), (1600, 650))]
    wrk["raw"] = [_wrk(r, c) for r, c in ((14000, 65), (12000, 70), (13000, 60))]
    wrk["ping"] = [_wrk(r, 170) for r in (4800, 6300, 7200)]  # 0.8, 0.9, 0.8 of tapedeck
    run.results["startup-cold"]["tapedeck"] = [{"s": 2.0, "first_s": 0.01, "rss_mb": 150.0}]
    run.results["startup-warm"]["tapedeck"] = [{"s": 0.5, "first_s": 0.01, "rss_mb": 140.0}]
    args = argparse.Namespace(
        rounds=3, quick=False, connections=32, streams=[], library=5000, open_streams=1000,
        proxy_streams=8, warmup=1.0, duration=5, gap_ms=20.0, big_requests=1000, big_rounds=1,
    )  # fmt: skip
    setup = {
        "assignment": "servers on CPU 0",
        "load_start": (0.1, 0.2, 0.3),
        "load_end": (0.4, 0.5, 0.6),
        "aimock": "1.43.0",
        "aimock_pin": "1.43.0",
        "wrk": "4.1.0",
    }
    report(args, setup, run)  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()

    def row(start: str) -> list[str]:
        found = [line for line in lines if line.startswith(start)]
        assert len(found) == 1, (start, found)
        return found[0][len(start) :].split()

    assert row("instant streams/s (wrk -t1 -c32)") == [
        "7,000", "1,600", "13,000", "td/aimock", "4.38,", "td/raw", "0.54",
    ]  # fmt: skip
    assert row("server CPU per instant response (wrk)")[:6] == [
        "160", "us", "640", "us", "65", "us",
    ]  # fmt: skip
    assert row("instant streams/s with ping:every=5 (wrk)") == [
        "6,300", "no", "such", "fault*", "0.80x", "of", "unfaulted", "tapedeck",
    ]  # fmt: skip
    assert row("start-up s, 5,000 cassettes / fixtures (td cold / warm)") == [
        "2.0", "/", "0.5", "not", "measured*",
    ]  # fmt: skip
    assert "* startup-aimock not measured: start-up (start) failed: no port" in lines
    assert not any(line.startswith("instant streams/s (loadgen") for line in lines)
    assert "load average (1/5/15 min): 0.10 0.20 0.30 at the start" in "\n".join(lines)
