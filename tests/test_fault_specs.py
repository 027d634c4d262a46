"""Fault specs: the parser, the fault book's gating, and bad specs in every place they come from.

The parser table checks each kind's keys become typed values and each mistake gets a message
naming the spec, the bad part and the valid choices. The ``FaultBook`` tests check ``times``,
seeded ``p``, scoping by test id and rewinding without a server. The last tests give a bad spec
to the real server: on the command line, in the config file, in a request header and through
the admin API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import HELLO, ROOT
from tapedeck.config import Settings, from_env, from_file, from_flags
from tapedeck.config import resolve as resolve_layers
from tapedeck.errors import FaultSpecError
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.fault_book import FaultBook
from tapedeck.shaping.faults import Fault, FaultKind, parse_fault, parse_faults
from tapedeck.shaping.rates import Rate


def resolve(flags: dict[str, Any], env: dict[str, str], file: Path | None = None) -> Settings:
    """Settings as the command line resolves them: flags, then env, then the file."""
    layers = [from_flags(flags), from_env(env)]
    if file is not None:
        layers.append(from_file(file))
    return resolve_layers(*layers)


BIN = Path(sys.executable).parent
TAPEDECK = shutil.which("tapedeck", path=str(BIN))
VALID_KINDS = "ping, error, overloaded, disconnect, truncate, status, latency, stall, garble, quota"


# --- parse_fault: valid specs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ping:every=5", {"kind": FaultKind.PING, "every": 5, "interval_ms": None}),
        ("ping:interval=250", {"kind": FaultKind.PING, "every": None, "interval_ms": 250.0}),
        ("ping:interval=0.5", {"interval_ms": 0.5}),
        (
            "error",
            {
                "kind": FaultKind.ERROR,
                "after": 0,
                "error_type": "overloaded_error",
                "message": None,
            },
        ),
        (
            "error:after=3,type=api_error,message=boom: it broke",
            {"after": 3, "error_type": "api_error", "message": "boom: it broke"},
        ),
        ("error:message=", {"message": ""}),
        (
            "overloaded",
            {"kind": FaultKind.OVERLOADED, "after": 0, "error_type": "overloaded_error"},
        ),
        ("overloaded:after=20", {"after": 20, "error_type": "overloaded_error"}),
        ("disconnect", {"kind": FaultKind.DISCONNECT, "after": 0, "after_bytes": None}),
        ("disconnect:after=4", {"after": 4, "after_bytes": None}),
        ("disconnect:after_bytes=512", {"after": 0, "after_bytes": 512}),
        ("truncate:after=5", {"kind": FaultKind.TRUNCATE, "after": 5}),
        (
            "status",
            {
                "kind": FaultKind.STATUS,
                "code": 529,
                "retry_after": None,
                "retry_after_ms": None,
                "should_retry": None,
                "message": None,
            },
        ),
        (
            "status:code=429,retry_after=2,retry_after_ms=1.5,should_retry=false,message=slow",
            {
                "code": 429,
                "retry_after": 2.0,
                "retry_after_ms": 1.5,
                "should_retry": False,
                "message": "slow",
            },
        ),
        ("status:code=400", {"code": 400}),
        ("status:code=599,should_retry=TRUE", {"code": 599, "should_retry": True}),
        ("latency:ms=300", {"kind": FaultKind.LATENCY, "ms": 300.0}),
        ("latency:ms=0", {"ms": 0.0}),
        ("stall:ms=600", {"kind": FaultKind.STALL, "after": 0, "ms": 600.0}),
        ("stall:after=3,ms=12.5", {"after": 3, "ms": 12.5}),
        ("garble", {"kind": FaultKind.GARBLE, "after": 0}),
        ("garble:after=2", {"after": 2}),
        (
            "quota:requests=50/60s,input_tokens=20000/60s,output_tokens=8000/60s",
            {
                "kind": FaultKind.QUOTA,
                "requests": Rate(50, 60.0),
                "input_tokens": Rate(20000, 60.0),
                "output_tokens": Rate(8000, 60.0),
                "tokens": None,
                "message": None,
            },
        ),
        ("quota:tokens=1000/1h,message=slow down", {"tokens": Rate(1000, 3600.0)}),
        ("quota:requests=5/m,times=2,p=0.5,seed=s", {"requests": Rate(5, 60.0), "times": 2}),
        ("quota:requests=1/1.5M", {"requests": Rate(1, 90.0)}),
        (
            "quota:requests=1/1s,retry_after=false",
            {"requests": Rate(1, 1.0), "sends_retry_after": False},
        ),
        # gate keys, on any kind
        ("truncate:after=1,p=0.25,times=3,seed=abc", {"p": 0.25, "times": 3, "seed": "abc"}),
        ("garble:p=0", {"p": 0.0, "times": None, "seed": None}),
        ("latency:ms=1,p=1,seed=7", {"p": 1.0, "seed": "7"}),
        # spelling: kind in any case, spaces around parts
        ("PING:every=2", {"kind": FaultKind.PING, "every": 2}),
        ("  overloaded : after = 2 , times = 1  ", {"after": 2, "times": 1}),
        ("truncate:after=2,", {"after": 2}),
    ],
)
def test_parse_fault_valid(spec: str, expected: dict[str, Any]) -> None:
    fault = parse_fault(spec)
    assert fault.text == spec.strip()
    for attr, value in expected.items():
        assert getattr(fault, attr) == value, attr
        assert type(getattr(fault, attr)) is type(value), attr


def test_parse_fault_defaults() -> None:
    fault = parse_fault("truncate")
    assert fault == Fault(kind=FaultKind.TRUNCATE, text="truncate")
    assert (fault.p, fault.times, fault.seed, fault.after) == (1.0, None, None, 0)


@pytest.mark.parametrize(
    ("spec", "streams_only"),
    [
        ("ping:every=1", True),
        ("error", True),
        ("overloaded", True),
        ("disconnect", True),
        ("truncate", True),
        ("stall:ms=1", True),
        ("garble", True),
        ("status", False),
        ("latency:ms=1", False),
        ("quota:requests=1/1s", False),
    ],
)
def test_streams_only(spec: str, streams_only: bool) -> None:
    assert parse_fault(spec).streams_only is streams_only


# --- parse_fault: invalid specs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        # unknown kind: lists the valid kinds
        ("bogus", ["'bogus'", "unknown kind 'bogus'", f"valid kinds: {VALID_KINDS}"]),
        ("", ["unknown kind ''", VALID_KINDS]),
        ("pings:every=1", ["unknown kind 'pings'", VALID_KINDS]),
        # unknown key: lists that kind's keys (its own, then p, times, seed)
        (
            "overloaded:every=3",
            ["unknown key 'every' for overloaded", "valid keys: after, p, times, seed"],
        ),
        ("ping:after=1", ["unknown key 'after' for ping", "valid keys: every, interval, p, times"]),
        (
            "status:after=1",
            [
                "unknown key 'after' for status",
                "valid keys: code, retry_after, retry_after_ms, should_retry, message, p, "
                "times, seed",
            ],
        ),
        (
            "disconnect:bytes=3",
            ["unknown key 'bytes'", "valid keys: after, after_bytes, p, times, seed"],
        ),
        ("latency:ms=1,after=2", ["unknown key 'after' for latency", "valid keys: ms, p"]),
        ("garble:AFTER=1", ["unknown key 'AFTER' for garble", "valid keys: after, p"]),
        (
            "error:code=500",
            ["unknown key 'code' for error", "valid keys: after, type, message, p, times, seed"],
        ),
        (
            "quota:rpm=50",
            [
                "unknown key 'rpm' for quota",
                "valid keys: requests, input_tokens, output_tokens, tokens, retry_after, message, "
                "p, times, seed",
            ],
        ),
        # quota limits
        ("quota", ["quota needs at least one of requests, input_tokens, output_tokens, tokens"]),
        ("quota:times=2", ["quota needs at least one of requests"]),
        ("quota:requests=50", ["requests must be LIMIT/WINDOW such as 50/60s", "'50'"]),
        ("quota:requests=50/60", ["requests must be LIMIT/WINDOW", "'50/60'"]),
        ("quota:tokens=1k/60s", ["tokens must be LIMIT/WINDOW", "'1k/60s'"]),
        ("quota:requests=0/60s", ["a limit >= 1 and a window > 0", "'0/60s'"]),
        ("quota:input_tokens=5/0s", ["a limit >= 1 and a window > 0", "'5/0s'"]),
        ("quota:output_tokens=-5/1m", ["output_tokens must be LIMIT/WINDOW", "'-5/1m'"]),
        ("quota:requests=5/1d", ["requests must be LIMIT/WINDOW", "'5/1d'"]),
        ("quota:requests=5/1s,requests=6/1s", ["'requests' is given twice"]),
        ("quota:requests=5/1s,retry_after=3", ["retry_after must be true or false, got '3'"]),
        # negative or malformed counts
        ("overloaded:after=-1", ["after must be a whole number >= 0", "'-1'"]),
        ("truncate:after=1.5", ["after must be a whole number >= 0", "'1.5'"]),
        ("disconnect:after_bytes=-5", ["after_bytes must be a whole number >= 0", "'-5'"]),
        ("stall:after=x,ms=1", ["after must be a whole number >= 0", "'x'"]),
        ("garble:times=0", ["times must be a whole number >= 1", "'0'"]),
        ("garble:times=-2", ["times must be a whole number >= 1"]),
        # ping's own values
        ("ping:every=0", ["every must be a whole number >= 1", "'0'"]),
        ("ping:interval=0", ["interval must be a number of milliseconds > 0", "'0'"]),
        ("ping:interval=-10", ["interval must be a number of milliseconds", "'-10'"]),
        ("ping:interval=inf", ["interval must be a number of milliseconds", "'inf'"]),
        ("ping", ["ping needs exactly one of every=N or interval=MS"]),
        ("ping:p=0.5", ["ping needs exactly one of every=N or interval=MS"]),
        ("ping:every=2,interval=100", ["ping needs exactly one of every=N or interval=MS"]),
        # probabilities
        ("overloaded:p=1.5", ["p must be a probability from 0 to 1", "'1.5'"]),
        ("overloaded:p=-0.1", ["p must be a probability from 0 to 1", "'-0.1'"]),
        ("overloaded:p=nan", ["p must be a probability from 0 to 1"]),
        ("overloaded:p=half", ["p must be a probability from 0 to 1", "'half'"]),
        # status codes
        ("status:code=399", ["code must be an HTTP error status from 400 to 599", "'399'"]),
        ("status:code=600", ["code must be an HTTP error status from 400 to 599", "'600'"]),
        ("status:code=abc", ["code must be an HTTP error status from 400 to 599", "'abc'"]),
        ("status:should_retry=yes", ["should_retry must be true or false", "'yes'"]),
        ("status:retry_after_ms=-1", ["retry_after_ms must be a number of milliseconds >= 0"]),
        ("error:type=not-a-type", ["type must be an error type such as overloaded_error"]),
        # latency and stall need ms
        ("latency", ["latency needs ms=...", "latency:ms=500"]),
        ("latency:p=0.5", ["latency needs ms=..."]),
        ("stall:after=3", ["stall needs ms=..."]),
        ("latency:ms=-1", ["ms must be a number of milliseconds >= 0", "'-1'"]),
        ("stall:ms=soon", ["ms must be a number of milliseconds >= 0", "'soon'"]),
        # disconnect takes one of after and after_bytes
        ("disconnect:after=1,after_bytes=10", ["give after=N or after_bytes=N, not both"]),
        # duplicate keys and keys without values
        ("overloaded:after=1,after=2", ["'after' is given twice"]),
        ("status:code=529,p=0.5,p=0.5", ["'p' is given twice"]),
        ("ping:every", ["'every' needs a value (every=...)"]),
        ("ping:every=", ["'every=' needs a value (every=...)"]),
        ("error:type=", ["'type=' needs a value (type=...)"]),
        ("overloaded:seed=", ["'seed=' needs a value (seed=...)"]),
    ],
)
def test_parse_fault_invalid(spec: str, fragments: list[str]) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(spec)
    message = str(caught.value)
    assert message.startswith(f"fault {spec.strip()!r}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_fault_spec_error_is_a_value_error() -> None:
    assert issubclass(FaultSpecError, ValueError)


def test_retry_after_error_names_seconds() -> None:
    """``retry_after`` is in seconds (the ``retry-after`` header's unit), so must its message be."""
    with pytest.raises(FaultSpecError) as caught:
        parse_fault("status:retry_after=-1")
    message = str(caught.value)
    assert "retry_after must be a number of seconds >= 0" in message, message
    assert "milliseconds" not in message, message


# --- parse_faults: lists ----------------------------------------------------------------------


def test_parse_faults_list() -> None:
    faults = parse_faults("ping:every=5; overloaded:after=20,p=0.5,seed=7")
    assert [f.kind for f in faults] == [FaultKind.PING, FaultKind.OVERLOADED]
    assert [f.text for f in faults] == ["ping:every=5", "overloaded:after=20,p=0.5,seed=7"]
    assert faults[1].p == 0.5
    assert faults[1].seed == "7"
    assert parse_faults("truncate:after=2;") == (parse_fault("truncate:after=2"),)


@pytest.mark.parametrize("spec", ["", "   ", "none", "NONE", " none ", "none;", ";"])
def test_parse_faults_none(spec: str) -> None:
    assert parse_faults(spec) == ()


@pytest.mark.parametrize(
    "spec",
    [
        "none;ping:every=1",
        "ping:every=1;none",
        "ping:every=1;;overloaded",
        ";ping:every=1",
        "ping:every=1; ;overloaded",
        "none;none",
    ],
)
def test_parse_faults_rejects_empty_parts_and_mixed_none(spec: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_faults(spec)
    assert str(caught.value) == (f"faults {spec!r}: empty spec or 'none' mixed with faults")


def test_parse_faults_names_the_bad_spec_in_a_list() -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_faults("ping:every=2;overloaded:every=3")
    assert str(caught.value).startswith("fault 'overloaded:every=3': unknown key 'every'")


# --- settings: where server-wide faults come from ---------------------------------------------


def test_settings_take_faults_from_flags_env_and_file(tmp_path: Path) -> None:
    flags = {"faults": ["ping:every=3", "overloaded:after=2"]}
    assert resolve(flags, {}).faults == parse_faults("ping:every=3;overloaded:after=2")
    env = {"TAPEDECK_FAULTS": "truncate:after=4; latency:ms=5"}
    assert resolve({}, env).faults == parse_faults("truncate:after=4;latency:ms=5")
    config = tmp_path / "tapedeck.yaml"
    config.write_text("faults:\n  - garble:after=1\n  - stall:ms=10\n", encoding="utf-8")
    assert resolve({}, {}, config).faults == parse_faults("garble:after=1;stall:ms=10")
    config.write_text("faults: 'status:code=429'\n", encoding="utf-8")
    assert resolve({}, {}, config).faults == parse_faults("status:code=429")
    # a flag beats the environment, which beats the file
    assert resolve(flags, env, config).faults == parse_faults("ping:every=3;overloaded:after=2")
    assert resolve({}, env, config).faults == parse_faults("truncate:after=4;latency:ms=5")
    assert resolve({}, {}).faults == ()


# --- FaultBook --------------------------------------------------------------------------------


def test_book_times_counts_requests_per_test_id() -> None:
    fault = parse_fault("status:code=529,times=2")
    book = FaultBook([fault])
    assert [book.fire([fault], "a", streaming=True) for _ in range(3)] == [(fault,), (fault,), ()]
    # another test id has counters of its own
    assert book.fire([fault], "b", streaming=False) == (fault,)
    assert book.fire([fault], "", streaming=True) == (fault,)
    assert book.fire([fault], "a", streaming=True) == ()


def test_book_fires_every_listed_fault_in_order() -> None:
    faults = parse_faults("ping:every=2;truncate:after=3;latency:ms=1")
    assert FaultBook().fire(faults, "", streaming=True) == tuple(faults)


def test_book_p_zero_and_one() -> None:
    never, always = parse_fault("truncate:p=0"), parse_fault("truncate:after=1,p=1")
    book = FaultBook()
    for _ in range(50):
        assert book.fire([never, always], "", streaming=True) == (always,)


def test_book_times_counts_requests_that_p_passed_over() -> None:
    """``times=N`` covers the first N requests the fault could apply to, fired or not."""
    fault = parse_fault("truncate:p=0,times=1")
    book = FaultBook()
    assert book.fire([fault], "", streaming=True) == ()
    assert book.count("", fault) == 1


def decisions(book: FaultBook, fault: Fault, test_id: str, n: int) -> list[bool]:
    return [bool(book.fire([fault], test_id, streaming=True)) for _ in range(n)]


def test_book_seeded_p_is_reproducible_per_test_id() -> None:
    fault = parse_fault("overloaded:p=0.5,seed=7")
    alone = decisions(FaultBook(), fault, "a", 40)
    assert 5 < sum(alone) < 35  # both outcomes occur
    # the same again in a new book, and after a rewind
    assert decisions(FaultBook(), fault, "a", 40) == alone
    book = FaultBook()
    assert decisions(book, fault, "a", 40) == alone
    book.rewind("a")
    assert decisions(book, fault, "a", 40) == alone
    # interleaved requests from another test id do not move test a's stream
    book = FaultBook()
    mixed = []
    for _ in range(40):
        mixed.append(bool(book.fire([fault], "a", streaming=True)))
        book.fire([fault], "b", streaming=True)
        book.fire([fault], "", streaming=True)
    assert mixed == alone
    # another seed gives another sequence
    other = parse_fault("overloaded:p=0.5,seed=8")
    assert decisions(FaultBook(), other, "a", 40) != alone


def test_book_rewind_one_test_id_or_all() -> None:
    fault = parse_fault("truncate:times=1")
    book = FaultBook()
    for test_id in ("a", "b"):
        assert book.fire([fault], test_id, streaming=True) == (fault,)
        assert book.fire([fault], test_id, streaming=True) == ()
    book.rewind("a")
    assert book.fire([fault], "a", streaming=True) == (fault,)
    assert book.fire([fault], "b", streaming=True) == ()
    book.rewind(None)
    assert book.fire([fault], "a", streaming=True) == (fault,)
    assert book.fire([fault], "b", streaming=True) == (fault,)


def test_book_scoping_put_and_clear() -> None:
    startup = parse_faults("ping:every=2")
    book = FaultBook(startup)
    assert book.active("") == startup
    assert book.active("a") == startup
    mine = parse_faults("overloaded:after=1")
    book.put(mine, "a")
    assert book.active("a") == mine
    assert book.active("b") == startup
    assert book.active("") == startup
    book.put((), "b")  # `none` for one test: no faults, not the server-wide ones
    assert book.active("b") == ()
    wide = parse_faults("truncate:after=3")
    book.put(wide, None)
    assert book.active("") == wide
    assert book.active("c") == wide
    assert book.active("a") == mine
    book.clear("a")
    assert book.active("a") == wide
    book.clear(None)
    assert book.active("") == startup
    assert book.active("b") == ()


def test_book_put_restarts_that_scopes_counters() -> None:
    fault = parse_fault("truncate:times=1")
    book = FaultBook()
    book.put([fault], "a")
    assert book.fire(book.active("a"), "a", streaming=True) == (fault,)
    assert book.fire(book.active("a"), "a", streaming=True) == ()
    book.put([fault], "a")
    assert book.fire(book.active("a"), "a", streaming=True) == (fault,)


def test_book_stream_faults_skip_non_streaming_requests_without_counting() -> None:
    ping, status = parse_fault("ping:every=1,times=1"), parse_fault("status:times=1")
    latency = parse_fault("latency:ms=5")
    book = FaultBook()
    assert book.fire([ping, status, latency], "", streaming=False) == (status, latency)
    assert book.fire([ping, status, latency], "", streaming=False) == (latency,)
    # the non-streaming requests did not use up the ping's single time
    assert book.fire([ping, status, latency], "", streaming=True) == (ping, latency)
    assert book.fire([ping], "", streaming=True) == ()


# --- bad specs through the real server --------------------------------------------------------


def run_tapedeck(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert TAPEDECK is not None, f"no tapedeck console script in {BIN}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TAPEDECK_")}
    return subprocess.run(
        [TAPEDECK, *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--fault", "bogus"],
            "tapedeck: error: --fault: fault 'bogus': unknown kind 'bogus' "
            f"(valid kinds: {VALID_KINDS})",
        ),
        (
            ["--fault", "ping:every=2", "--fault", "overloaded:every=3"],
            "tapedeck: error: --fault: fault 'overloaded:every=3': unknown key 'every' for "
            "overloaded (valid keys: after, p, times, seed)",
        ),
        (
            ["--fault", "status:code=600"],
            "tapedeck: error: --fault: fault 'status:code=600': code must be an HTTP error "
            "status from 400 to 599, got '600'",
        ),
    ],
)
def test_cli_rejects_bad_fault(args: list[str], message: str) -> None:
    result = run_tapedeck("serve", "--port", "0", "--cassettes", str(ROOT / "cassettes"), *args)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_env_rejects_bad_fault() -> None:
    result = run_tapedeck("serve", "--port", "0", TAPEDECK_FAULTS="latency")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tapedeck: error: TAPEDECK_FAULTS: fault 'latency': latency needs ms=... "
        "(e.g. latency:ms=500)"
    )


def test_config_file_rejects_bad_fault(tmp_path: Path) -> None:
    config = tmp_path / "tapedeck.yaml"
    config.write_text("timing: instant\nfaults:\n  - ping:every=2\n  - ping:every=0\n")
    result = run_tapedeck("serve", "--port", "0", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"tapedeck: error: {config}:2: faults: fault 'ping:every=0': "
        "every must be a whole number >= 1, got '0'"
    )


def test_header_rejects_bad_fault(server: ServerThread, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            **HELLO, stream=True, extra_headers={"x-tapedeck-fault": "overloaded:every=3"}
        )
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "tapedeck: x-tapedeck-fault: fault 'overloaded:every=3': unknown key "
            "'every' for overloaded (valid keys: after, p, times, seed)",
        },
        "request_id": caught.value.request_id,
    }
    raw = httpx.post(
        f"{server.base_url}/v1/messages",
        json={**HELLO, "stream": True},
        headers={"x-tapedeck-fault": "none;truncate"},
    )
    assert raw.status_code == 400
    assert raw.json()["error"]["message"] == (
        "tapedeck: x-tapedeck-fault: faults 'none;truncate': empty spec or 'none' mixed with faults"
    )


def test_admin_put_rejects_bad_fault(server: ServerThread) -> None:
    url = f"{server.base_url}/_tapedeck/faults"
    scope = {"x-tapedeck-test-id": "specs-admin-put"}
    try:
        good = httpx.put(url, json={"faults": "ping:every=4"}, headers=scope)
        assert good.status_code == 200
        for body, message in [
            (
                {"faults": "status:code=399"},
                "tapedeck: fault 'status:code=399': code must be an HTTP error status "
                "from 400 to 599, got '399'",
            ),
            (
                {"faults": ["ping:every=1", "stall:after=2"]},
                "tapedeck: fault 'stall:after=2': stall needs ms=... (e.g. stall:ms=500)",
            ),
            ({"faults": 3}, 'tapedeck: expected a body like {"faults": "ping:every=5"}'),
            (
                {"fault": "ping:every=1"},
                'tapedeck: expected a body like {"faults": "ping:every=5"}',
            ),
        ]:
            bad = httpx.put(url, json=body, headers=scope)
            assert bad.status_code == 400, body
            error = bad.json()["error"]
            assert error == {"type": "invalid_request_error", "message": message}
        # a rejected PUT changes nothing
        assert httpx.get(url, headers=scope).json() == {
            "status": "ok",
            "scope": "specs-admin-put",
            "faults": "ping:every=4",
        }
        # nor does a rejected server-wide PUT
        before = httpx.get(url).json()
        assert httpx.put(url, json={"faults": "bogus"}).status_code == 400
        assert httpx.get(url).json() == before
    finally:
        httpx.delete(url, headers=scope)
