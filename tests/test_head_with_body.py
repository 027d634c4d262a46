"""A response due at once leaves in one write: its head together with its body (or, for a
timed stream, with the events due at once), over a real socket, read by the real SDK.

The writes are counted where tapedeck's HTTP protocol hands bytes to the transport."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import message_events, plain, plain_interaction, stream_cassette
from tapedeck.config import Settings
from tapedeck.server import http_protocol
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing


class _Counting:
    """A transport that notes each write (a list of the byte strings written at once)."""

    def __init__(self, transport: Any, writes: list[list[bytes]]) -> None:
        self._transport, self._writes = transport, writes

    def write(self, data: bytes) -> None:
        self._writes.append([bytes(data)])
        self._transport.write(data)

    def writelines(self, parts: Any) -> None:
        parts = [bytes(p) for p in parts]
        self._writes.append(parts)
        self._transport.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[list[bytes]]:
    seen: list[list[bytes]] = []
    lock = threading.Lock()
    real = http_protocol._HeadHolder.__init__

    def counting(self: Any, transport: Any) -> None:
        with lock:
            real(self, _Counting(transport, seen))

    monkeypatch.setattr(http_protocol._HeadHolder, "__init__", counting)
    return seen


def _serve(tmp_path: Path, timing: str) -> ServerThread:
    (tmp_path / "stream.yaml").write_text(
        stream_cassette("streamed", message_events("hi", [0, 0, 0, 0, 0, 300]))
    )
    (tmp_path / "plain.yaml").write_text(
        "version: 1\ninteractions:\n" + plain_interaction("plain", "hello")
    )
    settings = Settings(cassettes=tmp_path, port=0, timing=Timing.parse(timing))
    return ServerThread(settings)


def _responses(writes: list[list[bytes]]) -> list[list[bytes]]:
    """The writes that start a response (a status line)."""
    return [w for w in writes if w[0].startswith(b"HTTP/1.1 ")]


def test_an_instant_answer_is_one_write(tmp_path: Path, writes: list[list[bytes]]) -> None:
    with _serve(tmp_path, "instant") as server:
        sdk = anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0)
        with sdk:
            message = sdk.messages.create(**plain("plain"))
            with sdk.messages.stream(
                model="m", max_tokens=16, messages=[{"role": "user", "content": "streamed"}]
            ) as stream:
                text = stream.get_final_text()
    assert message.content[0].text == "hello"  # type: ignore[union-attr]
    assert text == "hi"
    assert len(writes) == 2, writes  # one per response, nothing else
    for write in writes:
        joined = b"".join(write)
        head, _, body = joined.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert body  # the body went with its head
    assert b"event: message_stop" in b"".join(writes[1])


def test_a_timed_stream_sends_its_head_with_the_events_due_at_once(
    tmp_path: Path, writes: list[list[bytes]]
) -> None:
    with _serve(tmp_path, "recorded") as server, httpx.Client(base_url=server.base_url) as c:
        body = {**plain("streamed"), "stream": True}
        response = c.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    first, *rest = _responses(writes)
    joined = b"".join(first)
    assert joined.count(b"event: ") == 5, joined  # the five due at 0 ms, with the head
    later = [w for w in writes if w is not first]
    assert any(b"event: message_stop" in b"".join(w) for w in later)  # 300 ms later, apart
    assert not rest


def test_a_head_request_is_answered_though_it_has_no_body(
    tmp_path: Path, writes: list[list[bytes]]
) -> None:
    with _serve(tmp_path, "instant") as server, httpx.Client(base_url=server.base_url) as c:
        head = c.head("/v1/models", timeout=5)
        after = c.get("/v1/models", timeout=5)  # the same connection is still usable
    assert head.status_code == after.status_code
    assert head.content == b""
    assert len(_responses(writes)) == 2
