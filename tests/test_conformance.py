"""The conformance table (tests/conformance/cases.json) through the official Python SDK.

The TypeScript suite (tests/ts/conformance/) runs the same table through ``@anthropic-ai/sdk``,
so what each SDK must show for every shipped cassette, every fault kind, a record → replay
round trip and the other endpoints is written once. Cases marked ``smoke`` also run against
the oldest supported ``anthropic`` release (``make sdk-range``). Where the outcome depends on
the SDK release, the table's entries for the installed one apply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from conformance_sdk import RELEASE, run
from conformance_table import Case, load, pretty, problems
from conftest import CASSETTES, running
from fake_upstream import FakeUpstream
from tapedeck.config import Mode
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.faults import FaultKind, parse_faults

REPLAY, ROUND_TRIP = load(RELEASE)


def params(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(c, id=c.id, marks=[pytest.mark.smoke] if c.smoke else [])
        for c in cases
        if "python" in c.sdks
    ]


def check(case: Case, outcomes: list[dict[str, Any]], base_url: str) -> None:
    for n, (step, outcome) in enumerate(zip(case.steps, outcomes, strict=True)):
        found = problems(step.expect, outcome, base_url)
        where = f"{case.id} step {n + 1} ({step.call})" if len(case.steps) > 1 else case.id
        assert not found, f"{where}: " + "; ".join(found) + f"\n  the SDK showed: {pretty(outcome)}"


@pytest.fixture(scope="module")
def replay() -> Iterator[ServerThread]:
    with running() as server:
        yield server


@pytest.mark.parametrize("case", params(REPLAY))
def test_replayed(replay: ServerThread, case: Case) -> None:
    check(case, run(replay.base_url, case), replay.base_url)


@pytest.fixture(scope="module")
def round_trip(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[str, list[Any], str, list[Any]]]]:
    """Every round-trip case recorded through tapedeck from the stand-in upstream, then
    replayed by a new tapedeck from the recordings with the upstream gone."""
    root = tmp_path_factory.mktemp("conformance-recorded")
    cases = [c for c in ROUND_TRIP if "python" in c.sdks]
    with (
        FakeUpstream() as fake,
        running(root, mode=Mode.ALL, upstream=fake.base_url, record_errors=True) as rec,
    ):
        recorded = {c.id: (rec.base_url, run(rec.base_url, c)) for c in cases}
    with running(root) as replayer:
        yield {c.id: (*recorded[c.id], replayer.base_url, run(replayer.base_url, c)) for c in cases}


#: What differs between two servers giving the same answer: the headers (dates, and where the
#: answer came from; ``expect`` checks those that matter) and how long the call took.
NOT_COMPARED = {"headers", "took_ms"}


def same_across_servers(outcomes: list[Any], base_url: str) -> Any:
    """Outcomes with the server's address replaced by ``{base_url}`` (and its ``host:port``,
    which anthropic 2.17's connection errors name, by ``{host}``), without what two servers
    giving the same answer may differ in (:data:`NOT_COMPARED`)."""
    shown = [{k: v for k, v in o.items() if k not in NOT_COMPARED} for o in outcomes]
    text = json.dumps(shown, default=str).replace(base_url, "{base_url}")
    return json.loads(text.replace(urlsplit(base_url).netloc, "{host}"))


@pytest.mark.parametrize("case", params(ROUND_TRIP))
def test_recorded_then_replayed(round_trip: dict[str, Any], case: Case) -> None:
    recording_url, recorded, replay_url, replayed = round_trip[case.id]
    check(case, recorded, recording_url)
    check(case, replayed, replay_url)
    assert same_across_servers(replayed, replay_url) == same_across_servers(recorded, recording_url)


# --- the table covers what it must -----------------------------------------------------------


def shipped_requests() -> dict[str, dict[str, Any]]:
    """Each shipped interaction's request body (without ``stream``), by ``cassette#index``."""
    found = {}
    for path in sorted(CASSETTES.rglob("*.yaml")):
        name = path.relative_to(CASSETTES).with_suffix("").as_posix()
        interactions = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
        for i, interaction in enumerate(interactions):
            body = {k: v for k, v in interaction["request"]["body"].items() if k != "stream"}
            found[f"{name}#{i}"] = body
    return found


def test_every_shipped_cassette_goes_through_all_three_calls() -> None:
    calls = {name: set[str]() for name in shipped_requests()}
    for case in REPLAY:
        for step in case.steps:
            for name, body in shipped_requests().items():
                if step.body == body and not step.fault:
                    calls[name].add(step.call)
    assert calls == {name: {"stream", "raw", "create"} for name in calls}
    assert len({name.partition("#")[0] for name in calls}) == len(list(CASSETTES.rglob("*.yaml")))


def test_every_fault_kind_and_option_has_a_case() -> None:
    faults = [f for c in REPLAY for s in c.steps if s.fault for f in parse_faults(s.fault)]
    assert {f.kind for f in faults} == set(FaultKind)
    assert any(f.after_bytes is not None for f in faults)
    assert any(f.every is not None for f in faults)
    assert any(f.interval_ms for f in faults)
    assert any(f.retry_after is not None for f in faults)
    assert any(f.retry_after_ms is not None for f in faults)
    assert {f.should_retry for f in faults} >= {True, False}
    assert any(f.times is not None for f in faults)
    assert any(f.p < 1 and f.seed is not None for f in faults)
    scopes = {s.fault_scope for c in REPLAY for s in c.steps if s.fault}
    assert scopes == {"request", "test"}


def test_the_round_trip_covers_every_endpoint_call() -> None:
    calls = {s.call for c in ROUND_TRIP for s in c.steps}
    assert calls == {
        "stream",
        "raw",
        "create",
        "count_tokens",
        "models.list",
        "models.retrieve",
        "batches.create",
        "batches.retrieve",
        "batches.list",
        "batches.results",
    }
