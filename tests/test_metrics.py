"""``GET /metrics`` over a real server: every documented metric counts what happened."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import CASSETTES, HELLO, MakeServer, sdk
from fake_upstream import FakeUpstream, ask
from record_helpers import proxy
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.matching import MatchRules
from tapedeck.observe.exchange import Exchange
from tapedeck.observe.metrics import Metrics, path_label
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: ServerThread, accept: str = "") -> Samples:
    response = httpx.get(f"{server.base_url}/metrics", headers={"accept": accept}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_misses_faults_events_and_durations(make_server: MakeServer) -> None:
    with make_server() as s:
        with sdk(s) as client:
            with client.messages.stream(**HELLO) as stream:
                stream.until_done()
            with pytest.raises(anthropic.NotFoundError):
                client.messages.create(**{**HELLO, "max_tokens": 1})
            with pytest.raises(anthropic.OverloadedError):
                client.messages.create(**HELLO, extra_headers={"x-tapedeck-fault": "status"})
            with client.messages.stream(
                **HELLO, extra_headers={"x-tapedeck-fault": "ping:every=1"}
            ) as stream:
                stream.until_done()
        httpx.get(f"{s.base_url}/v1/models/claude-nowhere-1", timeout=10)
        samples = scrape(s)

    requests = "tapedeck_requests_total"
    post = {"method": "POST", "path": "/v1/messages"}
    assert value(samples, requests, **post, status="200", source="cassette") == 2
    assert value(samples, requests, **post, status="404", source="miss") == 1
    assert value(samples, requests, **post, status="529", source="fault") == 1
    assert (
        value(samples, requests, method="GET", path="/v1/models/{id}", status="404", source="miss")
        == 1
    )
    assert value(samples, "tapedeck_misses_total") == 2
    assert value(samples, "tapedeck_faults_total", kind="status") == 1
    assert value(samples, "tapedeck_faults_total", kind="ping") == 1
    assert value(samples, "tapedeck_stream_events_total") == 8 + 16  # 8 pings added
    duration = "tapedeck_response_duration_seconds"
    assert value(samples, f"{duration}_count", source="cassette") == 2
    assert value(samples, f"{duration}_bucket", source="cassette", le="+Inf") == 2
    assert value(samples, f"{duration}_sum", source="cassette") > 0
    assert value(samples, "tapedeck_cassettes") == len(list(CASSETTES.rglob("*.yaml")))
    assert value(samples, "tapedeck_active_streams") == 0
    assert value(samples, "tapedeck_upstream_duration_seconds_count") == 0
    assert value(samples, "process_cpu_seconds_total") > 0  # the standard process metrics


def test_active_streams_while_one_is_sent(make_server: MakeServer, deck_dir: Path) -> None:
    started = threading.Event()

    def slow_stream(server: ServerThread) -> None:
        body = {"model": "m", "max_tokens": 16, "stream": True,
                "messages": [{"role": "user", "content": "gap"}]}  # fmt: skip
        with (
            httpx.Client(base_url=server.base_url, timeout=10) as http,
            http.stream("POST", "/v1/messages", json=body) as response,
        ):
            started.set()
            response.read()

    with make_server(deck_dir, timing=Timing.parse("recorded")) as s:
        sender = threading.Thread(target=slow_stream, args=(s,))
        sender.start()
        assert started.wait(5)
        during = value(scrape(s), "tapedeck_active_streams")
        sender.join(5)
        after = value(scrape(s), "tapedeck_active_streams")
    assert (during, after) == (1, 0)


def test_recordings_and_upstream_durations(
    make_server: MakeServer, tmp_path: Path, fake: FakeUpstream
) -> None:
    with proxy(make_server, tmp_path, "new_episodes", fake) as s, sdk(s) as client:
        client.messages.create(**ask("recorded once"))
        client.messages.create(**ask("recorded once"))  # replayed now
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(**ask("ratelimit now"))
        samples = scrape(s)
    assert value(samples, "tapedeck_recordings_total", result="written") == 1
    assert value(samples, "tapedeck_recordings_total", result="transient") == 1
    assert value(samples, "tapedeck_upstream_duration_seconds_count") == 2
    assert value(samples, "tapedeck_upstream_duration_seconds_sum") > 0
    post = {"method": "POST", "path": "/v1/messages", "status": "200"}
    assert value(samples, "tapedeck_requests_total", **post, source="upstream") == 1
    assert value(samples, "tapedeck_requests_total", **post, source="cassette") == 1
    assert value(samples, "tapedeck_cassettes") == 1


def test_openmetrics_when_asked_for(server: ServerThread) -> None:
    response = httpx.get(
        f"{server.base_url}/metrics", headers={"accept": "application/openmetrics-text"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_turned_off(make_server: MakeServer) -> None:
    with make_server(metrics=False) as s:
        response = httpx.get(f"{s.base_url}/metrics", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"] == {
        "type": "not_found_error",
        "message": "tapedeck: metrics are off (the server was started with --no-metrics)",
    }


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/v1/messages", "/v1/messages"),
        ("/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("/v1/messages/batches/msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d", "/v1/messages/batches/{id}"),
        ("/v1/messages/batches/msgbatch_01/results", "/v1/messages/batches/{id}/results"),
        ("/v1/models/claude-sonnet-4-5", "/v1/models/{id}"),
        ("/v1/files/file_011CNha8iCJcU1wXNR6q4V8w/content", "/v1/files/{id}/content"),
        ("/v1/a/b/c/d/e/f/g/h", "/v1/{id}/{id}/{id}/{id}/{id}"),
    ],
)
def test_path_labels_hide_ids(path: str, label: str) -> None:
    assert path_label(path) == label


class _Request:
    def __init__(self, path: str) -> None:
        self.path = path
        self.test_id = ""
        self.stream = False


class _Writer:
    status, bytes, events, client_left, pings, cut_at = 404, 10, 0, False, None, None


def test_ever_new_paths_do_not_grow_it() -> None:
    metrics = Metrics(CassetteLibrary(Path("."), [], MatchRules()), Counter())
    for i in range(5000):
        exchange = Exchange()
        exchange.method = "GET"
        exchange.request = _Request(f"/v1/models/model-{i}")  # type: ignore[assignment]
        exchange.source = "miss"
        exchange.close(_Writer(), False, 0.001)  # type: ignore[arg-type]
        metrics.observe(exchange)
    assert len(metrics.rows) <= 1025
    families: dict[str, Any] = {f.name: f for f in metrics.collect()}
    (sample,) = families["tapedeck_requests"].samples
    assert sample.labels["path"] == "/v1/models/{id}"
    assert sample.value == 5000


def test_an_exchange_waiting_to_be_counted_is_not_kept() -> None:
    """What waits for the next batch is the exchange's counts, never the exchange: its
    request (and body, megabytes perhaps) goes as soon as the journal lets it go."""
    import gc
    import weakref

    metrics = Metrics(CassetteLibrary(Path("."), [], MatchRules()), Counter())
    exchange = Exchange()
    exchange.method = "POST"
    exchange.request = _Request("/v1/messages")  # type: ignore[assignment]
    exchange.source = "cassette"
    exchange.close(_Writer(), False, 0.001)  # type: ignore[arg-type]
    request, gone = weakref.ref(exchange.request), weakref.ref(exchange)
    metrics.observe(exchange)
    del exchange
    gc.collect()
    assert gone() is None
    assert request() is None
    assert len(metrics.pending) == 1
    families: dict[str, Any] = {f.name: f for f in metrics.collect()}
    (sample,) = families["tapedeck_requests"].samples
    assert sample.labels["path"] == "/v1/messages"
    assert sample.value == 1


def _observe(metrics: Metrics, method: str, path: str, status: int = 404) -> None:
    exchange = Exchange()
    exchange.method = method
    exchange.request = _Request(path)  # type: ignore[assignment]
    exchange.source = "miss"
    writer = _Writer()
    writer.status = status
    exchange.close(writer, False, 0.001)  # type: ignore[arg-type]
    metrics.observe(exchange)


def test_rows_are_few_and_small_whatever_the_paths_and_methods() -> None:
    """Every label a path can make (each segment a known word or an id), long paths and
    made-up methods: the rows stay within twice ``max_rows`` plus one per method, status and
    source, and none holds a long path."""
    metrics = Metrics(CassetteLibrary(Path("."), [], MatchRules()), Counter(), max_rows=64)
    words = ["messages", "batches", "results", "models", "files", "content", "x"]
    for i in range(3000):
        segments = [words[(i // 7**k) % 7] for k in range(5)]
        _observe(metrics, f"M{i % 50}" if i % 3 else "GET", "/v1/" + "/".join(segments))
        _observe(metrics, "POST", "/v1/messages/" + "y" * 100_000 + str(i))
    metrics.count()
    assert len(metrics.rows) <= 2 * 64 + 8
    assert max(len(path) + len(method) for method, path, _, _ in metrics.rows) < 300
    families: dict[str, Any] = {f.name: f for f in metrics.collect()}
    counted = sum(s.value for s in families["tapedeck_requests"].samples)
    assert counted == 6000
    assert {s.labels["method"] for s in families["tapedeck_requests"].samples} <= {
        "GET",
        "POST",
        "OTHER",
    }
