"""Requests kept by their bytes: the same bytes give the same parsed request, and the cache
is bounded by the bytes it holds, not by how many requests it has seen."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import CASSETTES
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.errors import APIError
from tapedeck.server.incoming import Incoming
from tapedeck.server.request import RequestReader


def incoming(body: bytes, **headers: str) -> Incoming:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "query_string": b"",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }
    return Incoming(scope, body)


def body(text: str, pad: int = 0) -> bytes:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": text + " " * pad}],
    }
    return json.dumps(request).encode()


@pytest.fixture(scope="module")
def library() -> CassetteLibrary:
    return CassetteLibrary.load(CASSETTES)


def test_the_same_bytes_give_the_same_request(library: CassetteLibrary) -> None:
    reader = RequestReader(library, cassettes_must_exist=True)

    first = reader.read(incoming(body("Hello"), x_tapedeck_test_id="a"))

    assert reader.read(incoming(body("Hello"), x_tapedeck_test_id="a")) is first
    other = reader.read(incoming(body("Hello"), x_tapedeck_test_id="b"))
    assert other is not first
    assert other.test_id == "b"
    assert other.shape == first.shape


def test_steering_headers_are_part_of_what_is_kept(library: CassetteLibrary) -> None:
    reader = RequestReader(library, cassettes_must_exist=True)

    plain = reader.read(incoming(body("Hello")))
    paced = reader.read(incoming(body("Hello"), x_tapedeck_timing="speed=2"))
    named = reader.read(incoming(body("Hello"), x_tapedeck_cassette="streaming/hello"))

    assert plain.timing is None
    assert str(paced.timing) == "speed=2"
    assert named.cassette == "streaming/hello"
    assert plain.cassette is None


def test_the_cache_is_bounded_by_bytes(library: CassetteLibrary) -> None:
    reader = RequestReader(library, cassettes_must_exist=True, budget=100_000, largest=20_000)

    for i in range(400):
        reader.read(incoming(body(f"question {i}", pad=10_000)))
        assert reader.size <= reader.budget

    assert 0 < len(reader._seen) < 10  # each counts four times its ~10 kB


def test_bodies_over_the_largest_are_never_kept(library: CassetteLibrary) -> None:
    reader = RequestReader(library, cassettes_must_exist=True, budget=10**9, largest=1000)

    small = reader.read(incoming(body("small")))
    large = reader.read(incoming(body("large", pad=5000)))

    assert reader.read(incoming(body("small"))) is small
    assert reader.read(incoming(body("large", pad=5000))) is not large
    assert len(reader._seen) == 1


def test_a_request_that_fails_to_parse_is_not_kept(library: CassetteLibrary) -> None:
    reader = RequestReader(library, cassettes_must_exist=True)

    for _ in range(2):
        with pytest.raises(APIError) as caught:
            reader.read(incoming(b"{not json"))
        assert caught.value.status == 400

    assert reader.size == 0
