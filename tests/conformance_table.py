"""The conformance table (tests/conformance/cases.json), read the same way by both SDK suites.

The TypeScript suite (tests/ts/conformance/table.mjs) reads the same file with the same rules:
a case is one step or a list of ``steps`` that inherit the case's fields; it runs through every
platform client (``anthropic``, ``bedrock``, ``vertex``, ...) that has its calls, or those its
``platforms`` names; what an SDK's client for a platform must show is ``expect`` with the SDK's
key (``python``), the platform's (``vertex``) and the SDK's on the platform
(``python:vertex``) laid over it in that order — each an object, or a list of objects of which
those whose ``releases`` range holds the installed release (or that have none) are laid over in
order; an outcome matches when every expected key matches, and a call that is not expected to
fail must not. tests/conformance/README.md describes every field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parent / "conformance" / "cases.json"
SDK = "python"
SDKS = ("python", "typescript")
#: The platform clients a case runs through (tests/conformance/README.md, "Platforms").
FIRST_PARTY = "anthropic"
PLATFORMS = (FIRST_PARTY, "bedrock", "vertex", "google_cloud", "foundry", "mantle", "aws")
_MESSAGES = {"stream", "raw", "create"}
#: The calls each platform's client has (both SDKs): a case with any other call skips it.
PLATFORM_CALLS: dict[str, set[str]] = {
    "anthropic": set(),  # filled in below: every call
    "bedrock": _MESSAGES,
    "vertex": _MESSAGES | {"count_tokens"},
    "google_cloud": set(),
    "foundry": _MESSAGES | {"count_tokens"},
    "mantle": _MESSAGES | {"count_tokens"},
    "aws": set(),
}
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
    "headers",
    "wire",
    "took_ms",
}
for _all in ("anthropic", "google_cloud", "aws"):
    PLATFORM_CALLS[_all] = set(CALLS)
#: An SDK's entry may also say which releases it is for.
RELEASES = "releases"
STEP_KEYS = {
    "call",
    "request",
    "fault",
    "fault_scope",
    "timing",
    "client",
    "signal_timeout_ms",
    "advance_clock_s",
    "expect",
}
#: The keys laid over ``expect``: per SDK, per platform, per SDK on a platform.
LAYER_KEYS = {*SDKS, *PLATFORMS, *(f"{sdk}:{platform}" for sdk in SDKS for platform in PLATFORMS)}
STEP_KEYS |= LAYER_KEYS
CASE_KEYS = {"id", "why", "smoke", "sdks", "platforms", "steps", *STEP_KEYS}


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
    advance_clock_s: float | None = None


@dataclass(frozen=True)
class Case:
    id: str
    steps: list[Step]
    smoke: bool
    sdks: list[str]
    #: The platforms the case runs on (its ``platforms``, or all whose client has its calls).
    platforms: list[str] = field(default_factory=lambda: list(PLATFORMS))

    @property
    def test_id(self) -> str:
        """The ``x-tapedeck-test-id`` of the case's requests: the same in both suites."""
        return f"conformance/{self.id}"


def load(
    release: str, sdk: str = SDK, platform: str = FIRST_PARTY
) -> tuple[list[Case], list[Case]]:
    """The replay cases and the record → replay cases, as release ``release`` of ``sdk``'s
    client for ``platform`` must see them (every case: :attr:`Case.platforms` says where
    each runs)."""
    assert platform in PLATFORMS, f"{platform!r} is not one of {PLATFORMS}"
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    requests = table["requests"]
    return (
        [_case(c, requests, sdk, release, platform) for c in table["cases"]],
        [_case(c, requests, sdk, release, platform) for c in table["round_trip"]],
    )


def expectation(
    case_id: str, release: str, sdk: str = SDK, step: int = 0, platform: str = FIRST_PARTY
) -> dict[str, Any]:
    """What the table says release ``release`` of ``sdk`` shows in step ``step`` of case
    ``case_id``: how other tests learn what the installed SDK raises (for a cut stream, a
    stall, ...) without naming a class that a new release may change."""
    replay, round_trip = load(release, sdk, platform)
    for case in (*replay, *round_trip):
        if case.id == case_id:
            return case.steps[step].expect
    raise KeyError(f"no case {case_id!r} in {TABLE}")


def _case(
    raw: dict[str, Any], requests: dict[str, Any], sdk: str, release: str, platform: str
) -> Case:
    name = raw.get("id", "?")
    unknown = set(raw) - CASE_KEYS
    assert not unknown, f"{name}: unknown keys {sorted(unknown)}"
    base = {k: v for k, v in raw.items() if k in STEP_KEYS}
    merged = [{**base, **s} for s in raw.get("steps") or [{}]]
    calls = {s.get("call") for s in merged}
    platforms = raw.get("platforms")
    if platforms is None:
        platforms = [p for p in PLATFORMS if calls <= PLATFORM_CALLS[p]]
    wrong = set(platforms) - set(PLATFORMS)
    assert not wrong, f"{name}: platforms {sorted(wrong)} are not among {PLATFORMS}"
    for s in merged:
        keyed = {k.rpartition(":")[2] for k in s if k in LAYER_KEYS and k not in SDKS}
        stray = keyed - set(platforms)
        assert not stray, f"{name}: expectations for {sorted(stray)}, where the case does not run"
    steps = [_step(name, s, requests, sdk, release, platform) for s in merged]
    return Case(name, steps, bool(raw.get("smoke")), raw.get("sdks", list(SDKS)), platforms)


def _step(
    name: str,
    raw: dict[str, Any],
    requests: dict[str, Any],
    sdk: str,
    release: str,
    platform: str,
) -> Step:
    unknown = set(raw) - STEP_KEYS
    assert not unknown, f"{name}: unknown step keys {sorted(unknown)}"
    assert raw.get("call") in CALLS, f"{name}: call {raw.get('call')!r} is not one of {CALLS}"
    for key in LAYER_KEYS:  # every layer, not only this SDK's and platform's
        _layers(name, raw.get(key))
    expect = dict(raw.get("expect", {}))
    for layer in (sdk, platform, f"{sdk}:{platform}"):
        expect.update(for_release(name, raw.get(layer), release))
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
        advance_clock_s=raw.get("advance_clock_s"),
    )


# --- release ranges -----------------------------------------------------------------------

_CLAUSE = re.compile(r"\s*(>=|<=|==|>|<)\s*(\d+(?:\.\d+)*)\s*")
_COMPARE = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


def release_key(version: str) -> tuple[int, ...]:
    """A release's numbers, for comparing: ``"2.17.0"`` → ``(2, 17)`` (trailing zeros dropped,
    so ``2.17`` and ``2.17.0`` are one release; a suffix such as ``-beta.1`` is ignored)."""
    found = re.match(r"\d+(?:\.\d+)*", version)
    assert found, f"not a release number: {version!r}"
    parts = [int(p) for p in found.group().split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def in_releases(release: str, releases: str) -> bool:
    """Whether ``release`` is in ``releases``: comparisons joined by ``,``, all of which must
    hold (``">=2.17"``, ``"<2.17"``, ``">=1.0, <1.17"``)."""
    key = release_key(release)
    holds = True
    for clause in releases.split(","):
        found = _CLAUSE.fullmatch(clause)
        assert found, f"{releases!r}: {clause.strip()!r} is not a comparison such as >=2.17"
        op, bound = found.groups()
        holds = holds and _COMPARE[op](key, release_key(bound))
    return holds


def _layers(name: str, spec: Any) -> list[dict[str, Any]]:
    """An SDK's entries of a step, checked: an object, or a list of objects, each with an
    optional ``releases`` range."""
    layers = [] if spec is None else spec if isinstance(spec, list) else [spec]
    for layer in layers:
        assert isinstance(layer, dict), f"{name}: an SDK entry must be an object, got {layer!r}"
        unknown = set(layer) - EXPECT_KEYS - {RELEASES}
        assert not unknown, f"{name}: unknown expectations {sorted(unknown)}"
        if RELEASES in layer:
            in_releases("0", layer[RELEASES])  # its syntax, whichever release is installed
    return layers


def for_release(name: str, spec: Any, release: str) -> dict[str, Any]:
    """An SDK's entries for ``release``, laid over one another in order: those whose
    ``releases`` holds it, and those without a range."""
    found: dict[str, Any] = {}
    for layer in _layers(name, spec):
        if RELEASES not in layer or in_releases(release, layer[RELEASES]):
            found.update({k: v for k, v in layer.items() if k != RELEASES})
    return found


# --- matching ------------------------------------------------------------------------------


def events_match(want: list[str], got: list[str] | None) -> bool:
    """Whether the event names ``got`` are ``want``: ``"name*N"`` stands for N in a row,
    ``"name*N+"`` for N or more."""
    if got is None:
        return False
    pattern = ""
    for name in want:
        base, _, count = name.partition("*")
        times = f"{{{count[:-1]},}}" if count.endswith("+") else f"{{{count or 1}}}"
        pattern += f"(?:{re.escape(base)}\n){times}"
    return re.fullmatch(pattern, "".join(f"{g}\n" for g in got)) is not None


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
        if key in ("events", "wire"):
            if not events_match(want, got):
                found.append(f"{key}: expected {want!r}, got {got!r}")
        elif key == "took_ms":
            if got < want:
                found.append(f"took_ms: expected the call to take at least {want} ms, got {got}")
        elif key == "error_message":
            if want not in (got or ""):
                found.append(f"error_message: {want!r} not in {got!r}")
        elif key in ("message", "result", "headers"):
            found += [f"{key}{p}" for p in subset_problems(want, got)]
        elif got != want:
            found.append(f"{key}: expected {want!r}, got {got!r}")
    return found


def pretty(outcome: dict[str, Any]) -> str:
    """An outcome as short readable text, for failure messages."""
    shown = {
        k: v for k, v in outcome.items() if v not in (None, []) and k not in ("headers", "wire")
    }
    return re.sub(r"\s+", " ", json.dumps(shown, ensure_ascii=False, default=str))[:1500]
