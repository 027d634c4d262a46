"""The checks bench/peers.py relies on to trust its numbers: wrk's output read right, aimock
fixtures that make the bench stream's shape, and bodies told apart from the stream they should
be. (The benchmark itself is not run here: speed is measured, never asserted.)"""

from __future__ import annotations

import argparse
import http.server
import json
import math
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from peers_memory import CONNECTIONS, MB, big_body, peak_rss, send_big
from peers_report import report
from peers_tools import aimock_fixture, faulted_stream, same_stream, sse_events
from peers_wrk import parse_wrk
from replay import make_cassette
from stream_bytes import encode_event, load

WRK = """\
Running 5s test @ http://127.0.0.1:40123/v1/messages
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.64ms    1.16ms  21.17ms   90.28%
    Req/Sec     6.95k   421.83     7.55k    86.00%
  Latency Distribution
     50%  {p50}
     75%    4.80ms
     90%    5.30ms
     99%  {p99}
  {requests} requests in {seconds}, {read} read
{extra}Requests/sec:   6918.83
Transfer/sec:     88.72MB
"""


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"p50": "805.00us", "p99": "2.94ms", "requests": "34595", "seconds": "5.00s",
             "read": "443.85MB", "extra": ""},
            {"requests": 34595, "seconds": 5.0, "bytes": 443.85 * 1024**2, "errors": 0,
             "latency_ms_p50": 0.805, "latency_ms_p99": 2.94},
        ),
        (
            {"p50": "1.20s", "p99": "1.50m", "requests": "12", "seconds": "1.00m",
             "read": "1.50GB",
             "extra": "  Socket errors: connect 0, read 2, write 0, timeout 3\n"
             "  Non-2xx or 3xx responses: 4\n"},
            {"requests": 12, "seconds": 60.0, "bytes": 1.5 * 1024**3, "errors": 9,
             "latency_ms_p50": 1200.0, "latency_ms_p99": 90000.0},
        ),
    ],
)  # fmt: skip
def test_wrk_output_is_read_with_its_units(fields: dict[str, str], expected: dict) -> None:
    result = parse_wrk(WRK.format(**fields))
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key
    assert result["streams_per_s"] == pytest.approx(expected["requests"] / expected["seconds"])


def test_wrk_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="no summary line"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(("gap_ms", "deltas"), [(20.0, 100), (10.0, 100), (7.5, 37), (20.0, 1)])
def test_the_aimock_fixture_has_the_cassettes_shape(
    tmp_path: Path, gap_ms: float, deltas: int
) -> None:
    path = tmp_path / "bench.yaml"
    make_cassette(path, gap_ms, deltas)
    cassette = yaml.safe_load(path.read_text())
    events = cassette["interactions"][0]["response"]["events"]
    fixture = aimock_fixture(cassette, "Tell me a short story.", timed=True)
    content, size = fixture["response"]["content"], fixture["chunkSize"]
    # aimock cuts the text every chunkSize characters: exactly one delta per cassette delta.
    assert math.ceil(len(content) / size) == deltas
    assert len(content) == size * deltas
    timings = fixture["recordedTimings"]
    assert len(timings["interChunkDelaysMs"]) == len(events) - 1
    assert timings["ttftMs"] + sum(timings["interChunkDelaysMs"]) == pytest.approx(
        events[-1]["at_ms"]
    )
    assert fixture["response"]["id"] == events[0]["data"]["message"]["id"]
    assert "recordedTimings" not in aimock_fixture(cassette, "x", timed=False)


def _stream(tmp_path: Path) -> tuple[bytes, list[tuple[str, dict]]]:
    path = tmp_path / "bench.yaml"
    make_cassette(path, 20.0, deltas=12)
    cassette = yaml.safe_load(path.read_text())
    events = [(e["event"], e["data"]) for e in cassette["interactions"][0]["response"]["events"]]
    return load(path).payload, events


def _wire(events: list[tuple[str, dict]]) -> bytes:
    return b"".join(encode_event(name, data) for name, data in events)


def test_another_servers_rendering_of_the_stream_is_recognised(tmp_path: Path) -> None:
    reference, events = _stream(tmp_path)
    recut = [(n, json.loads(json.dumps(d))) for n, d in events]
    deltas = [d for n, d in recut if n == "content_block_delta"]
    text = "".join(d["delta"]["text"] for d in deltas)
    for d in deltas:  # the same text cut elsewhere, ids dropped, as aimock renders it
        d["delta"]["text"] = ""
    deltas[0]["delta"]["text"] = text
    recut[0][1]["message"].pop("id")
    assert len(sse_events(_wire(recut))) == len(events)
    assert same_stream(_wire(recut), reference, text) is None
    assert "do not add up" in str(same_stream(_wire(recut), reference, text + "!"))
    assert "events differ" in str(same_stream(_wire(recut[:-1]), reference, text))


def test_faulted_bodies_are_checked_against_the_fault(tmp_path: Path) -> None:
    reference, events = _stream(tmp_path)  # 17 events
    ping = ("ping", {"type": "ping"})
    pinged = [x for i, e in enumerate(events, 1) for x in ([e, ping] if i % 5 == 0 else [e])]
    assert faulted_stream(_wire(pinged), reference, "ping:every=5") is None
    assert faulted_stream(_wire(pinged[:-1]), reference, "ping:every=5") is not None
    assert faulted_stream(_wire(pinged), reference, "ping:every=4") is not None

    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    cut = [*events[:10], ("error", error)]
    assert faulted_stream(_wire(cut), reference, "overloaded:after=10") is None
    assert faulted_stream(_wire(cut), reference, "overloaded:after=9") is not None
    other = [*events[:10], ("error", {**error, "error": {"type": "api_error", "message": "x"}})]
    assert "not an overloaded_error" in str(
        faulted_stream(_wire(other), reference, "overloaded:after=10")
    )
    assert faulted_stream(_wire(events), reference, "overloaded:after=10") is not None


# -- the memory rows and the load: lazy start-up row ------------------------------------------

REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "Tell me a short story."}],
}


def test_big_requests_are_distinct_megabytes_of_json() -> None:
    bodies = [big_body(REQUEST, i) for i in (-3, 0, 1, 999)]
    assert {len(b) for b in bodies} == {MB}
    assert len(set(bodies)) == len(bodies)
    decoded = json.loads(bodies[2])
    assert decoded["model"] == REQUEST["model"]
    assert decoded["stream"] is True
    assert decoded["messages"][0]["content"].startswith("00000000001 x")


def test_the_rss_peak_is_caught_though_gone_by_the_end() -> None:
    with peak_rss(os.getpid()) as measured:
        block = b"x" * (64 * MB)  # written, so resident; freed before the block ends
        time.sleep(0.2)
        del block
    assert measured()["added_mb"] >= 48
    assert measured()["idle_mb"] > 0


class _Answers(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the servers measured
    seen: ClassVar[list[tuple[int, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.seen.append((self.client_address[1], body))
        answer = b'{"type":"error"}'
        self.send_response(404)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def test_big_requests_go_over_a_few_kept_connections_and_are_counted() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = send_big(server.server_address[1], REQUEST, 0, 10)
    finally:
        server.shutdown()
        server.server_close()
    assert result["statuses"] == {"404": 10}
    bodies = [b for _, b in _Answers.seen]
    assert sorted(bodies) == sorted(big_body(REQUEST, i) for i in range(10))
    assert len({port for port, _ in _Answers.seen}) == CONNECTIONS


def test_the_table_has_the_big_requests_and_lazy_start_up_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace(
        rounds=1, quick=True, duration=2, warmup=1.0, connections=32, gap_ms=20.0,
        streams=[100], open_streams=400, library=200, proxy_streams=3, big_requests=200,
        big_rounds=1,
    )  # fmt: skip

    def big(mb: float) -> dict:
        return {"idle_mb": 40.0, "added_mb": mb, "statuses": {"404": 200}, "seconds": 3.0,
                "server_cpu_per_request": 0.004}  # fmt: skip

    def start(s: float, first: float, rss: float) -> dict:
        return {"s": s, "first_s": first, "rss_mb": rss}

    results: dict = defaultdict(lambda: defaultdict(list))
    results["big"].update(tapedeck=[big(12.5)], aimock=[big(85.0)], raw=[big(1.0)])
    results["startup-lazy"]["tapedeck"].append(start(0.25, 0.05, 45.0))
    results["startup-start"]["aimock"].append(start(0.1, 0.05, 90.0))
    results["startup-cold"]["tapedeck"].append(start(1.0, 0.01, 97.0))
    results["startup-warm"]["tapedeck"].append(start(0.5, 0.01, 89.0))
    run = SimpleNamespace(
        results=results, problems={}, wrk="wrk", body_bytes={}, library={}, startup_rounds=1,
        notes=[], stream=SimpleNamespace(events=[0] * 105),
    )  # fmt: skip
    setup = {
        "assignment": "-", "load_start": (0, 0, 0), "load_end": (0, 0, 0), "aimock": "1",
        "aimock_why": None, "aimock_pin": "1", "wrk": "4", "wrk_why": None,
    }  # fmt: skip
    report(args, setup, run)  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    row = {line.split("  ")[0]: line.split() for line in lines}
    big_row = row["RSS MB added by 200 distinct 1 MB requests"]
    assert big_row[-7:] == ["12.5", "85.0", "1.0", "td/aimock", "0.15,", "td/raw", "12.50"]
    lazy = row["start-up s + 1st answer, 200 (td load: lazy, cold)"]
    assert "0.30 0.15 td lazy/aimock 2.00" in " ".join(lazy)
    assert "td lazy/aimock 0.50" in " ".join(row["RSS MB after start-up, 200 (td load: lazy)"])
    assert any("big requests tapedeck round 1: idle 40 MB, +12.5 MB" in line for line in lines)
    lazy_details = [line for line in lines if "startup-lazy" in line]
    assert "0.05 s to a first answer's headers" in " ".join(lazy_details)
