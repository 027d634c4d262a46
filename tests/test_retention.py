"""What is kept per request or per test id outside the journal and the metrics stays
within its bound whatever the input (docs/architecture.md, "What is kept")."""

from __future__ import annotations

import httpx

from conftest import HELLO, MakeServer
from tapedeck.record.outcomes import PER_TEST_ID, Outcome, Outcomes
from tapedeck.server.app import Tapedeck


def test_recording_outcomes_are_bounded_in_all() -> None:
    outcomes = Outcomes(kept=10)
    for n in range(5_000):  # one test id with ever more outcomes, then many ids
        outcomes.add("one", Outcome(f"c{n}", 529, False, "transient"))
    assert len(outcomes.of("one")) == 10 * PER_TEST_ID
    assert outcomes.of("one")[-1].cassette == "c4999"  # the newest kept
    for n in range(5_000):
        outcomes.add(f"t{n}", Outcome(f"d{n}", 200, True, new=True, interactions=1))
    kept = [o for n in range(5_000) for o in outcomes.of(f"t{n}")]
    assert len(kept) == 10
    assert outcomes.of("t4999")
    assert outcomes.of("one") == []
    assert len(outcomes.not_written()) == 10 * PER_TEST_ID
    assert len(outcomes.written()) == 5_000  # one per cassette written: files on disk


def test_fault_counters_quota_buckets_and_clocks_are_bounded() -> None:
    """A test id whose requests each send a new fault spec, and ever new test ids under a
    quota or with their own clocks: each keeps at most its bound."""
    from tapedeck.shaping.fault_book import COUNTERS_KEPT, FaultBook
    from tapedeck.shaping.faults import parse_faults

    book = FaultBook(limit=50)
    for n in range(2_000):
        (fault,) = parse_faults(f"error:after={n},times=3,p=0.5,seed=7")
        book.fire((fault,), "one", streaming=True)
    state = book._tests.get("one")
    assert state is not None
    assert len(state.counts) == COUNTERS_KEPT
    assert state.seeded is not None
    assert len(state.seeded) <= COUNTERS_KEPT

    (quota,) = parse_faults("quota:requests=2/60s")
    for n in range(2_000):
        book.quotas.buckets(quota, f"t{n}", 0.0)
        book.clocks.advance(f"t{n}", 1.0)
    assert len(book.quotas._buckets) == 50
    assert len(book.clocks.scoped) == 50
    # The most recently used stay: a bucket used again is not the next to go.
    first = book.quotas.buckets(quota, "t1950", 0.0)
    book.quotas.buckets(quota, "new", 0.0)
    assert book.quotas.buckets(quota, "t1950", 0.0) is first


def test_the_request_cache_holds_at_most_request_cache_bytes(make_server: MakeServer) -> None:
    with make_server(request_cache_bytes=64 * 1024) as s:
        app = s.server.config.app
        assert isinstance(app, Tapedeck)
        reader = app.handler.reader
        for n in range(40):
            body = {**HELLO, "system": f"{n} " + "x" * 4000}
            httpx.post(f"{s.base_url}/v1/messages", json=body, timeout=10)
        assert reader.budget == 64 * 1024
        assert 0 < reader.size <= 64 * 1024
        assert len(reader._seen) < 40


def test_a_fault_list_kept_per_test_id_is_bounded_as_the_header_is(
    make_server: MakeServer,
) -> None:
    with make_server(max_header_size=4096) as s:
        admin = f"{s.base_url}/_tapedeck/faults"
        scoped = {"x-tapedeck-test-id": "long"}
        long = ";".join(["latency:ms=1"] * 400)
        refused = httpx.put(admin, json={"faults": long}, headers=scoped, timeout=10)
        assert refused.status_code == 400
        assert refused.json()["error"]["message"] == (
            "tapedeck: a fault list is at most max_header_size (4,096 characters), got 5,199"
        )
        fine = httpx.put(admin, json={"faults": long[:2599]}, headers=scoped, timeout=10)
        assert fine.status_code == 200, fine.text


def test_kept_plans_hold_at_most_plan_cache_bytes(make_server: MakeServer) -> None:
    """Every request with faults of its own gets a plan of its own, due at once with a copy
    of the response: those kept stay within ``plan_cache_bytes``, and answers stay right."""
    from tapedeck.source.cassette import plan_bytes

    with make_server(plan_cache_bytes=8 * 1024) as s:
        app = s.server.config.app
        assert isinstance(app, Tapedeck)
        source = app.handler.cassettes
        for n in range(60):
            faults = {"x-tapedeck-fault": f"truncate:after={n + 3}"}
            answer = httpx.post(
                f"{s.base_url}/v1/messages",
                json={**HELLO, "stream": True},
                headers=faults,
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            held = sum(
                plan_bytes(p) for each in source._served.values() for p in each.plans.values()
            )
            assert held <= 8 * 1024
        assert source.kept.used <= 8 * 1024
        assert held > 0
