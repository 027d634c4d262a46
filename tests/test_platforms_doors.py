"""The front doors' edges, over raw HTTP: what each path maps to, the version a Vertex body
names, count-tokens and models through a platform, and the access rules — a platform path
is an API path: JSON only, never from a web page, bounded by max_body_size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import HELLO, MakeServer, api_error, sdk
from fake_upstream import FakeUpstream, tokens
from platform_clients import PLATFORMS
from record_helpers import proxy
from tapedeck.platforms import find
from tapedeck.server.runner import ServerThread

VERTEX = "/v1/projects/p/locations/us-east5/publishers/anthropic/models"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", f"{VERTEX}/claude-sonnet-4-5:rawPredict", ("/v1/messages", "claude-sonnet-4-5")),
        (
            "POST",
            f"{VERTEX}/claude-sonnet-4-5@20250929:streamRawPredict",
            ("/v1/messages", "claude-sonnet-4-5-20250929"),
        ),
        ("POST", VERTEX.removeprefix("/v1") + "/m;x:rawPredict", ("/v1/messages", "m;x")),
        ("POST", f"{VERTEX}/claude-x@latest:rawPredict", ("/v1/messages", "claude-x@latest")),
        ("POST", f"{VERTEX}/count-tokens:rawPredict", ("/v1/messages/count_tokens", None)),
        ("GET", "/anthropic/v1/models", ("/v1/models", None)),
        ("POST", "/anthropic/v1/messages/count_tokens", ("/v1/messages/count_tokens", None)),
        (
            "GET",
            "/v1/projects/p/locations/global/workspaces/w/invoke/v1/models",
            ("/v1/models", None),
        ),
        (
            "POST",
            "/v1/projects/p/locations/global/claudeOrganization/invoke/v1/user_profiles",
            ("/v1/user_profiles", None),
        ),
    ],
)
def test_what_each_path_maps_to(method: str, path: str, expected: tuple[str, str | None]) -> None:
    route = find(method, path)
    assert route is not None
    assert (route.path, route.model) == expected


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/messages"),
        ("GET", "/v1/models"),
        ("GET", f"{VERTEX}/claude-sonnet-4-5:rawPredict"),  # Vertex's methods are POSTs
        ("POST", f"{VERTEX}/claude-sonnet-4-5:predict"),
        ("POST", f"{VERTEX}/:rawPredict"),
        ("POST", "/v1/projects/p/locations/l/publishers/google/models/gemini:rawPredict"),
        ("POST", "/anthropic/messages"),
        ("POST", "/v1/projects/p/invoke/v1/messages"),
    ],
)
def test_other_paths_are_not_a_platforms(method: str, path: str) -> None:
    assert find(method, path) is None


def post(server: ServerThread, path: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(base_url=server.base_url, timeout=10) as h:
        return h.post(
            path, content=content, headers={"content-type": "application/json", **headers}
        )


def journal(server: ServerThread) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(f"{server.base_url}/_tapedeck/journal").json()[
        "entries"
    ]
    return entries


def vertex_body(version: str) -> dict[str, Any]:
    return {k: v for k, v in HELLO.items() if k != "model"} | {"anthropic_version": version}


@pytest.mark.parametrize(
    ("version", "header", "expected"),
    [
        ("vertex-2023-10-16", None, "2023-06-01"),
        ("2026-10-21", None, "2026-10-21"),
        ("vertex-2023-10-16", "2023-06-01", "2023-06-01"),
    ],
)
def test_vertex_anthropic_version_becomes_the_header(
    server: ServerThread, version: str, header: str | None, expected: str
) -> None:
    headers = {"anthropic-version": header} if header else {}
    response = post(
        server, f"{VERTEX}/claude-sonnet-4-5:rawPredict", vertex_body(version), **headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == "Hello!"
    entry = journal(server)[-1]
    assert entry["request"]["headers"]["anthropic-version"] == expected
    assert entry["request"]["body"] == HELLO  # the model from the path, the version gone


def test_stream_raw_predict_streams_when_the_body_does_not_say(server: ServerThread) -> None:
    path = f"{VERTEX}/claude-sonnet-4-5:streamRawPredict"
    response = post(server, path, vertex_body("vertex-2023-10-16"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: message_stop" in response.text


def test_a_body_that_is_not_json_is_answered_as_the_api_would(server: ServerThread) -> None:
    response = post(server, f"{VERTEX}/claude-sonnet-4-5:rawPredict", b"{not json")
    assert api_error(response, 400, "invalid_request_error")


def test_a_platform_path_takes_only_json(server: ServerThread) -> None:
    for path in (f"{VERTEX}/claude-sonnet-4-5:rawPredict", "/anthropic/v1/messages"):
        response = post(
            server, path, b"a=b", **{"content-type": "application/x-www-form-urlencoded"}
        )
        assert "must be JSON" in api_error(response, 400, "invalid_request_error")


def test_a_platform_path_is_refused_to_web_pages(server: ServerThread) -> None:
    path = "/anthropic/v1/messages"
    response = post(server, path, HELLO, origin="https://evil.example")
    assert "refused" in api_error(response, 403, "permission_error")
    response = post(server, path, HELLO, **{"sec-fetch-site": "cross-site"})
    api_error(response, 403, "permission_error")
    # Vertex: a 403 is Google's to give (docs/platforms.md, "Faults on Vertex").
    path = f"{VERTEX}/claude-sonnet-4-5:rawPredict"
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        response = post(server, path, vertex_body("vertex-2023-10-16"), **headers)
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert (error["code"], error["status"]) == (403, "PERMISSION_DENIED")
        assert error["message"].startswith("tapedeck: ")


def test_a_body_over_max_body_size_is_refused(tmp_path: Path, make_server: MakeServer) -> None:
    with make_server(tmp_path, max_body_size=1000) as s:
        body = vertex_body("vertex-2023-10-16") | {"system": "x" * 2000}
        response = post(s, f"{VERTEX}/claude-sonnet-4-5:rawPredict", body)
        assert "max_body_size" in api_error(response, 413, "request_too_large")


def test_count_tokens_and_models_record_and_replay_through_platforms(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    vertex, google_cloud = (p for p in PLATFORMS if p.name in ("vertex", "google-cloud"))
    with proxy(make_server, tmp_path, "once", fake) as s:
        with vertex.client(s.base_url) as c:
            counted = c.messages.count_tokens(**tokens("count these words"))
        with google_cloud.client(s.base_url) as c:
            listed = [m.id for m in c.models.list()]
    assert [r.path for r in fake.requests()] == ["/v1/messages/count_tokens", "/v1/models"]
    assert "anthropic_version" not in fake.requests()[0].body
    with make_server(tmp_path) as replaying, sdk(replaying) as first_party:
        assert first_party.messages.count_tokens(**tokens("count these words")) == counted
        assert [m.id for m in first_party.models.list()] == listed


def test_beta_flags_through_vertex_match_the_first_party_beta_request(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    vertex = next(p for p in PLATFORMS if p.name == "vertex")
    betas = ["beta-one", "beta-two"]
    with proxy(make_server, tmp_path, "once", fake) as s, vertex.client(s.base_url) as c:
        made = c.beta.messages.create(**tokens("beta words"), max_tokens=64, betas=betas)
    [seen] = fake.requests()
    assert seen.headers["anthropic-beta"] == "beta-one,beta-two"
    with make_server(tmp_path) as replaying, sdk(replaying) as first_party:
        again = first_party.beta.messages.create(**tokens("beta words"), max_tokens=64, betas=betas)
        assert again.content[0].text == made.content[0].text  # type: ignore[union-attr]
        with pytest.raises(anthropic.NotFoundError, match="anthropic-beta"):
            first_party.beta.messages.create(**tokens("beta words"), max_tokens=64)


def test_a_dated_vertex_model_id_is_the_first_party_one(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    vertex = next(p for p in PLATFORMS if p.name == "vertex")
    first_party_id = {"model": "claude-sonnet-4-5-20250929"}
    with proxy(make_server, tmp_path, "once", fake) as s, sdk(s) as c:
        made = c.messages.create(**(tokens("dated words") | first_party_id), max_tokens=64)
    with make_server(tmp_path) as replaying, vertex.client(replaying.base_url) as c:
        vertex_id = {"model": "claude-sonnet-4-5@20250929"}
        again = c.messages.create(**(tokens("dated words") | vertex_id), max_tokens=64)
    assert again.content == made.content
