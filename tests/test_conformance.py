"""The conformance table (tests/conformance/cases.json) through the official Python SDK.

The TypeScript suite (tests/ts/conformance/) runs the same table through ``@anthropic-ai/sdk``,
so what each SDK must show for every shipped cassette, every fault kind, a record → replay
round trip and the other endpoints is written once. This module runs them through the
first-party client; tests/test_conformance_<platform>.py through each platform client
(tests/conformance_suite.py makes their tests). Cases marked ``smoke`` also run against
the oldest supported ``anthropic`` release (``make sdk-range``). Where the outcome depends on
the SDK release, the table's entries for the installed one apply.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import yaml

from conformance_sdk import RELEASE
from conformance_suite import suite
from conformance_table import PLATFORMS, _case, load
from conftest import CASSETTES
from tapedeck.shaping.faults import FaultKind, parse_faults

REPLAY, ROUND_TRIP = load(RELEASE)
globals().update(suite("anthropic"))


# --- the table covers what it must -----------------------------------------------------------


@functools.cache
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


# --- the table's rules -----------------------------------------------------------------------


def test_expectations_are_laid_over_sdk_then_platform_then_both() -> None:
    raw = {
        "id": "x",
        "call": "create",
        "expect": {"error": "A", "status": 1},
        "python": {"status": 2},
        "vertex": {"status": 3, "retries": 3},
        "python:vertex": {"retries": 4},
        "typescript:vertex": {"status": 9},
    }
    expect = {
        (sdk, platform): _case(raw, {}, sdk, "2.17.0", platform).steps[0].expect
        for sdk in ("python", "typescript")
        for platform in ("anthropic", "vertex")
    }
    assert expect == {
        ("python", "anthropic"): {"error": "A", "status": 2},
        ("python", "vertex"): {"error": "A", "status": 3, "retries": 4},
        ("typescript", "anthropic"): {"error": "A", "status": 1},
        ("typescript", "vertex"): {"error": "A", "status": 9, "retries": 3},
    }


def test_a_case_runs_on_the_platforms_whose_clients_have_its_calls() -> None:
    def platforms(**raw: object) -> list[str]:
        return _case({"id": "x", **raw}, {}, "python", "2.17.0", "anthropic").platforms

    assert platforms(call="stream") == list(PLATFORMS)
    assert platforms(call="count_tokens") == [p for p in PLATFORMS if p != "bedrock"]
    assert platforms(call="models.list") == ["anthropic", "google_cloud", "aws"]
    assert platforms(steps=[{"call": "create"}, {"call": "batches.list"}]) == [
        "anthropic",
        "google_cloud",
        "aws",
    ]
    assert platforms(call="create", platforms=["vertex"]) == ["vertex"]
    with pytest.raises(AssertionError, match="where the case does not run"):
        platforms(call="create", platforms=["anthropic"], bedrock={"status": 503})
    with pytest.raises(AssertionError, match="not among"):
        platforms(call="create", platforms=["azure"])
    with pytest.raises(AssertionError, match="unknown keys"):
        platforms(call="create", **{"python:azure": {}})
