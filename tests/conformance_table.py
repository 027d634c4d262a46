"""The conformance table (tests/conformance/cases.json), read the same way by both SDK suites.

The TypeScript suite (tests/ts/conformance/table.mjs) reads the same file with the same rules:
a case is one step or a list of ``steps`` that inherit the case's fields; what an SDK must show
is ``expect`` with that SDK's own keys (``python``, ``typescript``) laid over it; an outcome
matches when every expected key matches, and a call that is not expected to fail must not.
tests/conformance/README.md describes every field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parent / "conformance" / "cases.json"
SDK = "python"
#: The calls a step can make, and the keys an expectation can hold.
CALLS = {
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
EXPECT_KEYS = {
    "error",
    "status",
    "error_type",
    "error_message",
    "cause",
    "events",
    "message",
    "text",
    "result",
    "retries",
}
STEP_KEYS = {
    "call",
    "request",
    "fault",
    "fault_scope",
    "timing",
    "client",
    "signal_timeout_ms",
    "expect",
    "python",
    "typescript",
}
CASE_KEYS = {"id", "why", "smoke", "sdks", "steps", *STEP_KEYS}


@dataclass(frozen=True)
class Step:
    """One call of a case, with everything it needs and what this SDK must show."""

    call: str
    body: dict[str, Any]
    expect: dict[str, Any]
    fault: str | None = None
    fault_scope: str = "request"
    timing: str | None = None
    client: dict[str, Any] = field(default_factory=dict)
    signal_timeout_ms: int | None = None


@dataclass(frozen=True)
class Case:
    id: str
    steps: list[Step]
    smoke: bool
    sdks: list[str]

    @property
    def test_id(self) -> str:
        """The ``x-tapedeck-test-id`` of the case's requests: the same in both suites."""
        return f"conformance/{self.id}"


def load(sdk: str = SDK) -> tuple[list[Case], list[Case]]:
    """The replay cases and the record → replay cases, as ``sdk`` must see them."""
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    requests = table["requests"]
    return (
        [_case(c, requests, sdk) for c in table["cases"]],
        [_case(c, requests, sdk) for c in table["round_trip"]],
    )


def _case(raw: dict[str, Any], requests: dict[str, Any], sdk: str) -> Case:
    name = raw.get("id", "?")
    unknown = set(raw) - CASE_KEYS
    assert not unknown, f"{name}: unknown keys {sorted(unknown)}"
    base = {k: v for k, v in raw.items() if k in STEP_KEYS}
    steps = [_step(name, {**base, **s}, requests, sdk) for s in raw.get("steps") or [{}]]
    return Case(name, steps, bool(raw.get("smoke")), raw.get("sdks", ["python", "typescript"]))


def _step(name: str, raw: dict[str, Any], requests: dict[str, Any], sdk: str) -> Step:
    unknown = set(raw) - STEP_KEYS
    assert not unknown, f"{name}: unknown step keys {sorted(unknown)}"
    assert raw.get("call") in CALLS, f"{name}: call {raw.get('call')!r} is not one of {CALLS}"
    expect = {**raw.get("expect", {}), **raw.get(sdk, {})}
    unknown = set(expect) - EXPECT_KEYS
    assert not unknown, f"{name}: unknown expectations {sorted(unknown)}"
    request = raw.get("request", {})
    body = requests[request] if isinstance(request, str) else request
    return Step(
        call=raw["call"],
        body=body,
        expect=expect,
        fault=raw.get("fault"),
        fault_scope=raw.get("fault_scope", "request"),
        timing=raw.get("timing"),
        client=raw.get("client", {}),
        signal_timeout_ms=raw.get("signal_timeout_ms"),
    )


def expand_events(names: list[str]) -> list[str]:
    """``["a", "b*3"]`` → ``["a", "b", "b", "b"]``."""
    out: list[str] = []
    for name in names:
        base, _, count = name.partition("*")
        out += [base] * (int(count) if count else 1)
    return out


def subset_problems(want: Any, got: Any, path: str = "") -> list[str]:
    """Where ``got`` differs from ``want``: objects need only ``want``'s keys (``null`` also
    matches a missing key), lists must have the same length, everything else be equal."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path or '.'}: expected an object, got {got!r}"]
        problems = []
        for key, value in want.items():
            if value is None and got.get(key) is None:
                continue
            if key not in got:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += subset_problems(value, got[key], f"{path}.{key}")
        return problems
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path or '.'}: expected {len(want)} items, got {got!r}"]
        return [p for i, w in enumerate(want) for p in subset_problems(w, got[i], f"{path}[{i}]")]
    return [] if want == got else [f"{path or '.'}: expected {want!r}, got {got!r}"]


def with_base_url(value: Any, base_url: str) -> Any:
    """``value`` with ``{base_url}`` in its strings replaced by the server's address."""
    if isinstance(value, str):
        return value.replace("{base_url}", base_url)
    if isinstance(value, dict):
        return {k: with_base_url(v, base_url) for k, v in value.items()}
    if isinstance(value, list):
        return [with_base_url(v, base_url) for v in value]
    return value


def problems(expect: dict[str, Any], outcome: dict[str, Any], base_url: str) -> list[str]:
    """Every way ``outcome`` (what the SDK showed) falls short of ``expect``."""
    found: list[str] = []
    if "error" not in expect and outcome["error"] is not None:
        found.append(f"error: none expected, got {outcome['error']}: {outcome['error_message']}")
    for key, want in with_base_url(expect, base_url).items():
        got = outcome[key]
        if key == "events":
            want = expand_events(want)
        if key == "error_message":
            if want not in (got or ""):
                found.append(f"error_message: {want!r} not in {got!r}")
        elif key in ("message", "result"):
            found += [f"{key}{p}" for p in subset_problems(want, got)]
        elif got != want:
            found.append(f"{key}: expected {want!r}, got {got!r}")
    return found


def pretty(outcome: dict[str, Any]) -> str:
    """An outcome as short readable text, for failure messages."""
    shown = {k: v for k, v in outcome.items() if v not in (None, [])}
    return re.sub(r"\s+", " ", json.dumps(shown, ensure_ascii=False, default=str))[:1500]
