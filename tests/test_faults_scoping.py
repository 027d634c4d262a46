"""Which requests a fault fires on: ``p`` and ``seed``, and where faults come from.

Faults come from the request header, from the admin API (scoped by test id) and from the
server-wide settings; each one overrides the next. Then the pytest example of
docs/faults.md, which must stay a copy of the one in this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from conftest import HELLO, ROOT, LogLines, MakeServer, sdk
from fault_helpers import delivered, drain, fault, raw_events
from tapedeck.config import Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.faults import parse_faults
from tapedeck.shaping.timing import Timing

# --- p and seed ---------------------------------------------------------------------------------


def outcomes(client: anthropic.Anthropic, test_id: str, n: int) -> list[bool]:
    """For n streamed hellos with this test id: True where the stream broke with an error."""
    results, bodies = [], []
    for _ in range(n):
        received: list[str] = []
        try:
            drain(
                client.messages.create(
                    **HELLO, stream=True, extra_headers={"x-tapedeck-test-id": test_id}
                ),
                received,
            )
        except anthropic.APIStatusError as exc:
            bodies.append(exc.body)
            results.append(True)
        else:
            results.append(False)
        assert received == (delivered(3) if results[-1] else delivered(8))
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert bodies == [overloaded] * sum(results)
    return results


def test_seeded_p_is_reproducible_per_test_id(
    server: ServerThread, client: anthropic.Anthropic
) -> None:
    admin = f"{server.base_url}/_tapedeck/faults"
    a, b = {"x-tapedeck-test-id": "seed-a"}, {"x-tapedeck-test-id": "seed-b"}
    spec = {"faults": "overloaded:after=3,p=0.5,seed=7"}
    try:
        assert httpx2.put(admin, json=spec, headers=a).status_code == 200
        assert httpx2.put(admin, json=spec, headers=b).status_code == 200
        first = outcomes(client, "seed-a", 20)
        assert 2 < sum(first) < 18
        assert httpx2.post(f"{server.base_url}/_tapedeck/reset", headers=a).status_code == 200
        again = []
        for _ in range(20):
            again += outcomes(client, "seed-a", 1)
            outcomes(client, "seed-b", 1)  # interleaved: never moves seed-a's decisions
        assert again == first
        # the same fault given in the header draws from the same per-test-id stream
        httpx2.post(f"{server.base_url}/_tapedeck/reset", headers=a)
        httpx2.delete(admin, headers=a)
        with sdk(server, default_headers=fault(spec["faults"])) as c:
            assert outcomes(c, "seed-a", 20) == first
    finally:
        httpx2.delete(admin, headers=a)
        httpx2.delete(admin, headers=b)


def test_p_zero_never_fires_and_is_not_listed(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**HELLO, extra_headers=fault("overloaded:p=0")) as stream:
        assert stream.get_final_text() == "Hello!"
        assert "x-tapedeck-faults" not in stream.response.headers


# --- where faults come from: admin API, header, server-wide -----------------------------------


def test_admin_faults_are_scoped_by_test_id(
    server: ServerThread, client: anthropic.Anthropic
) -> None:
    admin = f"{server.base_url}/_tapedeck/faults"
    a, b = {"x-tapedeck-test-id": "scope-a"}, {"x-tapedeck-test-id": "scope-b"}
    try:
        put = httpx2.put(admin, json={"faults": "overloaded:after=2,times=2"}, headers=a)
        assert put.json() == {
            "status": "ok",
            "scope": "scope-a",
            "faults": "overloaded:after=2,times=2",
        }
        put = httpx2.put(admin, json={"faults": ["ping:every=1", "truncate:after=4"]}, headers=b)
        assert put.json() == {
            "status": "ok",
            "scope": "scope-b",
            "faults": "ping:every=1; truncate:after=4",
        }
        assert httpx2.get(admin, headers=a).json()["faults"] == "overloaded:after=2,times=2"
        assert httpx2.get(admin).json() == {"status": "ok", "scope": "server", "faults": "none"}
        other = {"x-tapedeck-test-id": "scope-c"}
        assert httpx2.get(admin, headers=other).json() == {
            "status": "ok",
            "scope": "scope-c",
            "faults": "none",
        }
        # test a's fault never fires on test b's requests, nor on requests without a test id
        raw: list[Any] = []
        raw_events(client, b, raw)
        assert [n for n, _ in raw] == [
            "message_start",
            "ping",
            "content_block_start",
            "ping",
            "ping",
            "ping",
            "content_block_delta",
            "ping",
        ]
        received: list[str] = []
        drain(client.messages.create(**HELLO, stream=True), received)
        assert received == delivered(8)
        # test a: two overloaded streams (times=2), then the plain one
        for _ in range(2):
            received = []
            with pytest.raises(anthropic.APIStatusError):
                drain(client.messages.create(**HELLO, stream=True, extra_headers=a), received)
            assert received == delivered(2)
        received = []
        drain(client.messages.create(**HELLO, stream=True, extra_headers=a), received)
        assert received == delivered(8)
        # a reset for test a rewinds its `times`
        httpx2.post(f"{server.base_url}/_tapedeck/reset", headers=a)
        with pytest.raises(anthropic.APIStatusError):
            drain(client.messages.create(**HELLO, stream=True, extra_headers=a), [])
        # DELETE with a test id drops that test's faults only
        deleted = httpx2.delete(admin, headers=a)
        assert deleted.json() == {"status": "ok", "scope": "scope-a", "faults": "none"}
        received = []
        drain(client.messages.create(**HELLO, stream=True, extra_headers=a), received)
        assert received == delivered(8)
        assert httpx2.get(admin, headers=b).json()["faults"] == "ping:every=1; truncate:after=4"
    finally:
        httpx2.delete(admin, headers=a)
        httpx2.delete(admin, headers=b)


def test_server_wide_faults_and_their_overrides(make_server: MakeServer) -> None:
    startup = "overloaded:after=2"
    with make_server(faults=parse_faults(startup)) as s, sdk(s) as c:
        admin = f"{s.base_url}/_tapedeck/faults"
        assert httpx2.get(admin).json() == {"status": "ok", "scope": "server", "faults": startup}

        def outcome(**headers: str) -> tuple[list[str], str | None]:
            received: list[str] = []
            try:
                drain(c.messages.create(**HELLO, stream=True, extra_headers=headers), received)
            except anthropic.APIStatusError as exc:
                return received, exc.type
            return received, None

        assert outcome() == (delivered(2), "overloaded_error")
        assert outcome(**{"x-tapedeck-test-id": "t1"}) == (delivered(2), "overloaded_error")
        # the request's own header replaces the server-wide faults; `none` disables them
        assert outcome(**fault("truncate:after=3")) == (delivered(3), None)
        assert outcome(**fault("none")) == (delivered(8), None)
        assert outcome(**fault("NONE", **{"x-tapedeck-test-id": "t1"})) == (delivered(8), None)
        # a test id's own `none` disables them for that test
        httpx2.put(admin, json={"faults": "none"}, headers={"x-tapedeck-test-id": "quiet"})
        assert outcome(**{"x-tapedeck-test-id": "quiet"}) == (delivered(8), None)
        assert outcome() == (delivered(2), "overloaded_error")
        # the admin API replaces the server-wide list; DELETE restores the startup faults
        put = httpx2.put(admin, json={"faults": "error:after=1,type=api_error"})
        assert put.json() == {
            "status": "ok",
            "scope": "server",
            "faults": "error:after=1,type=api_error",
        }
        assert outcome() == (delivered(1), "api_error")
        assert outcome(**{"x-tapedeck-test-id": "quiet"}) == (delivered(8), None)
        assert httpx2.delete(admin).json()["faults"] == startup
        assert outcome() == (delivered(2), "overloaded_error")


def test_header_replaces_admin_faults_for_one_request(
    server: ServerThread, client: anthropic.Anthropic
) -> None:
    admin = f"{server.base_url}/_tapedeck/faults"
    scope = {"x-tapedeck-test-id": "header-wins"}
    try:
        httpx2.put(admin, json={"faults": "overloaded"}, headers=scope)
        received: list[str] = []
        drain(
            client.messages.create(
                **HELLO, stream=True, extra_headers={**scope, **fault("truncate:after=4")}
            ),
            received,
        )
        assert received == delivered(4)
        with pytest.raises(anthropic.APIStatusError):
            drain(client.messages.create(**HELLO, stream=True, extra_headers=scope), [])
    finally:
        httpx2.delete(admin, headers=scope)


def test_faults_header_and_log_say_what_fired(
    client: anthropic.Anthropic, tapedeck_log: LogLines
) -> None:
    spec = "ping:every=3;truncate:after=6,p=0;  garble:after=99"
    response = client.messages.with_raw_response.create(
        **HELLO, stream=True, extra_headers=fault(spec)
    )
    response.parse().close()
    assert response.headers["x-tapedeck-faults"] == "ping:every=3; garble:after=99"
    assert response.headers["x-tapedeck-cassette"] == "streaming/hello"
    assert response.headers["request-id"] == "req_011Cgz2rBkkGvAfDyQ7P5MzY"
    line = "POST /v1/messages 200 streaming/hello faults: ping:every=3; garble:after=99 "
    assert len(tapedeck_log.wait_for("^" + re.escape(line) + r"[\d.]+ms$")) == 1
    plain_response = client.messages.with_raw_response.create(**HELLO, stream=True)
    plain_response.parse().close()
    assert "x-tapedeck-faults" not in plain_response.headers


def test_request_log_line_of_a_fully_read_fault_stream(
    server: ServerThread, client: anthropic.Anthropic, tapedeck_log: LogLines
) -> None:
    """A stream the client read to its end is not logged as abandoned."""
    tapedeck_log.only(server)
    spec = "ping:every=3,seed=log-line"
    with client.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
        assert stream.get_final_text() == "Hello!"
    lines = tapedeck_log.wait_for(rf"^POST /v1/messages 200 .*{spec}", 1)
    assert len(lines) == 1
    assert re.fullmatch(
        rf"POST /v1/messages 200 streaming/hello faults: {spec} \d+\.\dms", lines[0]
    ), lines[0]


def test_fault_message_outside_latin_1(server: ServerThread, client: anthropic.Anthropic) -> None:
    """A fault set through the admin API may carry any text (the body is JSON)."""
    admin = f"{server.base_url}/_tapedeck/faults"
    scope = {"x-tapedeck-test-id": "unicode-message"}
    message = "Überlastet — 过载"
    try:
        put = httpx2.put(admin, json={"faults": f"error:after=1,message={message}"}, headers=scope)
        assert put.status_code == 200
        with pytest.raises(anthropic.APIStatusError) as caught:
            drain(client.messages.create(**HELLO, stream=True, extra_headers=scope), [])
        assert caught.value.status_code == 200
        assert caught.value.body == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": message},
        }
    finally:
        httpx2.delete(admin, headers=scope)


# --- the pytest example of docs/faults.md -------------------------------------------------------
# Copied verbatim from docs/faults.md, from CASSETTES to the end (its imports are at the top).

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"  # your cassette directory


@pytest.fixture
def tapedeck_url() -> Iterator[str]:
    settings = Settings(cassettes=CASSETTES, port=0, timing=Timing.parse("instant"))
    with ServerThread(settings) as server:
        yield server.base_url


def test_retries_until_the_api_answers(tapedeck_url: str) -> None:
    fault = "status:code=529,times=2,retry_after_ms=1"
    with anthropic.Anthropic(
        base_url=tapedeck_url,
        api_key="test",
        max_retries=2,
        default_headers={"x-tapedeck-fault": fault},
    ) as client:
        response = client.messages.with_raw_response.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            stream=True,
            messages=[{"role": "user", "content": "Hello"}],
        )
        assert response.retries_taken == 2  # two 529s, then the recorded stream
        with response.parse() as stream:
            text = "".join(
                event.delta.text
                for event in stream
                if event.type == "content_block_delta" and event.delta.type == "text_delta"
            )
    assert text == "Hello!"


# (end of the example)


def test_docs_example_is_this_one() -> None:
    doc = (ROOT / "docs" / "faults.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(# test_retry\.py\n.*?)```", doc, re.DOTALL)
    assert example is not None, "docs/faults.md lost its pytest example"
    code = example.group(1)
    body = code[code.index("CASSETTES = ") :]
    this = Path(__file__).read_text(encoding="utf-8")
    assert body in this
