"""Prometheus metrics at ``GET /metrics`` (off with ``--no-metrics``; docs/observe.md).

Finished requests are counted a batch at a time into a few plain dictionaries and lists
(:meth:`Metrics.observe`); ``prometheus_client`` turns them into metric families only when
``/metrics`` is scraped (:meth:`Metrics.collect`), which counts the rest first. Its own
``Counter.labels(...).inc()`` takes a lock and a label lookup per call, which would cost a
replayed response several percent of its time. ``prometheus_client`` itself is imported at
the first scrape, not at start-up.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ..cassette.library import CassetteLibrary
from ..errors import APIError
from ..shaping.faults import Fault, FaultKind
from .exchange import Exchange

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

#: Upper bounds, in seconds, of the buckets of ``tapedeck_response_duration_seconds``.
RESPONSE_BUCKETS = (
    *(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
    *(0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
#: The same for ``tapedeck_upstream_duration_seconds``.
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Path segments kept in the ``path`` label; any other segment (an id) becomes ``{id}``.
PATH_WORDS = frozenset(
    {"v1", "messages", "count_tokens", "batches", "results", "cancel", "models", "files"}
    | {"content", "complete", "skills", "versions"}
)
#: Finished exchanges counted together (see :meth:`Metrics.observe`).
BATCH = 256
#: What one finished exchange counts for: method, path, status, source, seconds, events
#: sent, the kinds of the faults that fired, seconds upstream.
Counted = tuple[str, str, int, str, float, int, tuple[FaultKind, ...], float | None]
#: Rows counted by their request's own path unless told otherwise (``metrics_max_rows``);
#: past them a new path is counted by its label, and past twice as many rows by ``{other}``.
MAX_ROWS = 1024
#: A longer path (or method) is kept by its label from the start: a row holds a few
#: hundred bytes whatever the request.
_PATH_CHARS = 256
#: Methods kept by name; any other is counted as ``OTHER``.
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class Histogram:
    """Observations counted per bucket (``le`` bounds, then +Inf) and summed."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count of observations <= le)`` per bucket, as Prometheus has them."""
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else f"{bound:g}", float(total)))
        return out


def path_label(path: str) -> str:
    """The ``path`` label of a request path: ids replaced, so the label set stays small
    (``/v1/messages/batches/msgbatch_01/results`` -> ``/v1/messages/batches/{id}/results``)."""
    parts = [p if p in PATH_WORDS else "{id}" for p in path.strip("/").split("/")[:6]]
    return "/" + "/".join(parts)


class Metrics:
    """tapedeck's counters, histograms and gauges, made into metric families when scraped."""

    def __init__(
        self, library: CassetteLibrary, recordings: Counter[str], max_rows: int = MAX_ROWS
    ) -> None:
        self.library = library
        #: Rows kept by their request's path (``metrics_max_rows``).
        self.max_rows = max_rows
        #: Recordings by result (the recorder counts them).
        self.recordings = recordings
        #: Per (method, path, status, source): ``[requests, seconds, bucket counts...]``,
        #: the buckets those of :data:`RESPONSE_BUCKETS` and +Inf. Paths become labels when
        #: scraped; past ``max_rows`` keys, new ones are kept by label, and past twice as
        #: many by ``{other}`` (so at most ``2 * max_rows`` plus one per status and source).
        self.rows: dict[tuple[str, str, int, str], list[float]] = {}
        self.faults: Counter[str] = Counter()
        #: Event-stream requests (``"stream": true``) being answered now.
        self.active = 0
        self.events = 0
        self.upstream = Histogram(UPSTREAM_BUCKETS)
        #: What the exchanges not counted yet count for (at most :data:`BATCH`).
        self.pending: list[Counted] = []
        self._last_kinds: tuple[tuple[Fault, ...], tuple[FaultKind, ...]] = ((), ())
        self._registry: CollectorRegistry | None = None

    @property
    def registry(self) -> CollectorRegistry:
        """These metrics and the process's own, made at the first scrape."""
        if self._registry is None:
            from prometheus_client import (
                CollectorRegistry,
                GCCollector,
                PlatformCollector,
                ProcessCollector,
            )

            self._registry = CollectorRegistry()
            self._registry.register(self)  # a Collector by shape: it has collect()
            for standard in (ProcessCollector, PlatformCollector, GCCollector):
                standard(registry=self._registry)
        return self._registry

    def observe(self, exchange: Exchange) -> None:
        """Count one finished exchange: what it counts for is kept, and counted with the
        next :data:`BATCH` (or when scraped). Counting them together, in one loop, keeps
        what it touches in the CPU's caches; counted one by one, between requests, it costs
        three times as much. Only the counted values are kept, never the exchange: its
        request body may be megabytes."""
        request = exchange.request
        path = request.path if request is not None else exchange.path
        if len(path) > _PATH_CHARS:
            path = path_label(path)
        faults = exchange.faults
        pending = self.pending
        pending.append(
            (
                exchange.method,
                path,
                exchange.status,
                exchange.source,
                exchange.duration,
                exchange.events,
                self._kinds(faults) if faults else (),
                exchange.upstream,
            )
        )
        if len(pending) >= BATCH:
            self.count()

    def _kinds(self, faults: tuple[Fault, ...]) -> tuple[FaultKind, ...]:
        """The kinds of ``faults``: the same tuple, request after request, while the
        faults in force stay the same."""
        last = self._last_kinds
        if last[0] is faults:
            return last[1]
        kinds = tuple(f.kind for f in faults)
        self._last_kinds = (faults, kinds)
        return kinds

    def count(self) -> None:
        """Count the exchanges kept since the last time."""
        get, events = self.rows.get, 0
        faulted: dict[tuple[FaultKind, ...], int] = {}  # added up at the end: same counts
        for method, path, status, source, duration, sent, faults, upstream in self.pending:
            key = (method, path, status, source)
            row = get(key)
            if row is None:
                row = self._row(key)
            row[0] += 1
            row[1] += duration
            row[2 + bisect_left(RESPONSE_BUCKETS, duration)] += 1
            events += sent
            if faults:
                faulted[faults] = faulted.get(faults, 0) + 1
            if upstream is not None:
                self.upstream.observe(upstream)
        for kinds, times in faulted.items():
            for kind in kinds:
                self.faults[str(kind)] += times
        self.events += events
        self.pending.clear()

    def _row(self, key: tuple[str, str, int, str]) -> list[float]:
        method, path, status, source = key
        if method not in _METHODS:
            method = "OTHER"
        rows = len(self.rows)
        if rows >= self.max_rows or key[0] is not method:
            # Ever new paths (ids) must not grow the server: by label, then all as one.
            label = path_label(path) if rows < 2 * self.max_rows else "{other}"
            key = (method, label, status, source)
            found = self.rows.get(key)
            if found is not None:
                return found
        row = self.rows[key] = [0.0] * (3 + len(RESPONSE_BUCKETS))
        return row

    def _labelled(self) -> dict[tuple[str, str, str, str], list[float]]:
        """The rows summed by their labels: (method, path label, status, source)."""
        out: dict[tuple[str, str, str, str], list[float]] = {}
        for (method, path, status, source), row in self.rows.items():
            key = (method, path_label(path), str(status or "none"), source)
            found = out.get(key)
            if found is None:
                out[key] = list(row)
            else:
                found[:] = [a + b for a, b in zip(found, row, strict=True)]
        return out

    def collect(self) -> Iterator[Metric]:
        """The metric families, counting what is pending first (called by the registry)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        self.count()
        rows = self._labelled()
        requests = CounterMetricFamily(
            "tapedeck_requests",
            "API requests answered, by method, path (ids as {id}), status and source",
            labels=("method", "path", "status", "source"),
        )
        by_source: dict[str, Histogram] = {}
        for labels, row in sorted(rows.items()):
            requests.add_metric(labels, row[0])
            histogram = by_source.setdefault(labels[3], Histogram(RESPONSE_BUCKETS))
            histogram.sum += row[1]
            histogram.counts = [int(a + b) for a, b in zip(histogram.counts, row[2:], strict=True)]
        yield requests
        misses = sum(row[0] for labels, row in rows.items() if labels[3] == "miss")
        yield CounterMetricFamily(
            "tapedeck_misses", "API requests that no cassette answered", value=misses
        )
        faults = CounterMetricFamily(
            "tapedeck_faults", "faults that fired, by kind", labels=("kind",)
        )
        for kind, count in sorted(self.faults.items()):
            faults.add_metric((kind,), count)
        yield faults
        yield GaugeMetricFamily(
            "tapedeck_active_streams",
            "event-stream requests being answered now",
            value=self.active,
        )
        durations = HistogramMetricFamily(
            "tapedeck_response_duration_seconds",
            "seconds from a request arriving to the end of its response, by source",
            labels=("source",),
        )
        for source, histogram in sorted(by_source.items()):
            durations.add_metric((source,), histogram.cumulative(), histogram.sum)
        yield durations
        yield CounterMetricFamily(
            "tapedeck_stream_events", "events sent in event-stream responses", value=self.events
        )
        upstream = HistogramMetricFamily(
            "tapedeck_upstream_duration_seconds",
            "seconds from sending a request upstream to the end of the upstream's answer",
        )
        upstream.add_metric((), self.upstream.cumulative(), self.upstream.sum)
        yield upstream
        recordings = CounterMetricFamily(
            "tapedeck_recordings",
            "upstream answers offered to the recorder, by result",
            labels=("result",),
        )
        for result, count in sorted(self.recordings.items()):
            recordings.add_metric((result,), count)
        yield recordings
        yield GaugeMetricFamily("tapedeck_cassettes", "cassettes loaded", value=len(self.library))


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the Prometheus text format (or OpenMetrics, if asked for)."""
    metrics: Metrics | None = request.app.state.handler.metrics
    if metrics is None:
        raise APIError(404, "tapedeck: metrics are off (the server was started with --no-metrics)")
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(metrics.registry), headers={"content-type": content_type})
