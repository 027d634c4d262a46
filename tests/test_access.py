"""No web page may drive the server: Host and Origin checks, JSON-only API bodies, the admin
token — table tests of the rules, then each over a real socket (the SDKs unchanged)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import CASSETTES, HELLO, ROOT, MakeServer, api_error, sdk
from fake_upstream import FakeUpstream, ask
from tapedeck.config import Mode
from tapedeck.errors import APIError
from tapedeck.server.access import Access, host_name
from tapedeck.server.runner import ServerThread

TOKEN = "s3cret-admin-token"
PAGE = "http://localhost:3000"


def check(
    access: Access,
    headers: dict[str, str],
    path: str = "/v1/messages",
    method: str = "POST",
    server: tuple[str, int] = ("127.0.0.1", 8765),
) -> int | bytes | None:
    """The status ``access`` refuses with, or what it returns (the Origin to answer)."""
    scope: dict[str, Any] = {"path": path, "method": method, "server": server}
    raw = {k.encode(): v.encode() for k, v in headers.items()}
    try:
        return access.check(scope, raw)
    except APIError as exc:
        return exc.status


SDK = {"host": "127.0.0.1:8765", "content-type": "application/json", "content-length": "90"}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(SDK, None, id="the-sdk"),
        pytest.param({**SDK, "host": "localhost:8765"}, None, id="localhost"),
        pytest.param({**SDK, "host": "[::1]:8765"}, None, id="ipv6-loopback"),
        pytest.param({**SDK, "host": "LOCALHOST"}, None, id="case-insensitive"),
        pytest.param({"content-length": "0"}, None, id="no-host-no-body"),
        pytest.param({**SDK, "host": "evil.example:8765"}, 403, id="rebinding-name"),
        pytest.param({**SDK, "host": "127.0.0.2:8765"}, 403, id="another-address"),
        pytest.param({**SDK, "origin": "https://evil.example"}, 403, id="cross-origin"),
        pytest.param({**SDK, "origin": "null"}, 403, id="sandboxed-page"),
        pytest.param({**SDK, "origin": "http://127.0.0.1:8765"}, None, id="same-origin"),
        pytest.param({**SDK, "sec-fetch-site": "cross-site"}, 403, id="no-cors-subrequest"),
        pytest.param({**SDK, "sec-fetch-site": "same-site"}, 403, id="other-port-page"),
        pytest.param({**SDK, "sec-fetch-site": "none"}, None, id="typed-in-address-bar"),
        pytest.param({**SDK, "content-type": "text/plain"}, 400, id="text-plain"),
        pytest.param({**SDK, "content-type": "application/x-www-form-urlencoded"}, 400, id="form"),
        pytest.param({**SDK, "content-type": "multipart/form-data; b=x"}, 400, id="multipart"),
        pytest.param({"host": SDK["host"], "content-length": "90"}, 400, id="no-content-type"),
        pytest.param(
            {"host": SDK["host"], "transfer-encoding": "chunked"}, 400, id="chunked-no-type"
        ),
        pytest.param(
            {**SDK, "content-type": "Application/JSON; charset=utf-8"}, None, id="json-charset"
        ),
        pytest.param({"host": SDK["host"], "content-length": "0"}, None, id="post-without-body"),
    ],
)
def test_what_the_api_takes(headers: dict[str, str], expected: int | None) -> None:
    assert check(Access("127.0.0.1"), headers) == expected


def test_the_admin_api_takes_any_body_type_and_the_token_when_set() -> None:
    open_, guarded = Access("127.0.0.1"), Access("127.0.0.1", admin_token=TOKEN)
    form = {"host": "localhost", "content-type": "application/x-www-form-urlencoded"}
    bearer = {**form, "authorization": f"Bearer {TOKEN}"}
    assert check(open_, form, "/_tapedeck/faults", "PUT") is None  # curl -d
    assert check(guarded, form, "/_tapedeck/faults", "PUT") == 401
    assert check(guarded, {**form, "authorization": "Bearer wrong"}, "/_tapedeck/reset") == 401
    assert check(guarded, {**form, "authorization": TOKEN}, "/_tapedeck/reset") == 401
    assert check(guarded, bearer, "/_tapedeck/reset") is None
    assert check(guarded, {**bearer, "authorization": f"bearer {TOKEN}"}, "/_tapedeck/x") is None
    assert check(guarded, form, "/_tapedeck/health", "GET") is None
    assert check(guarded, {**SDK}, "/v1/messages") is None  # the API needs no admin token


def test_listening_beyond_this_machine_without_a_token_turns_the_admin_api_off() -> None:
    access = Access("0.0.0.0")
    lan = ("192.168.1.20", 8765)
    assert access.admin_off
    assert check(access, {"host": "localhost"}, "/_tapedeck/reset", server=lan) == 403
    assert check(access, {"host": "localhost"}, "/_tapedeck/health", "GET", lan) is None
    # the address the connection came in on is this server's name
    assert check(access, {**SDK, "host": "192.168.1.20:8765"}, server=lan) is None
    assert check(access, {**SDK, "host": "192.168.1.21:8765"}, server=lan) == 403
    assert not Access("0.0.0.0", admin_token=TOKEN).admin_off
    assert not Access("::1").admin_off


def test_allowed_hosts_and_origins() -> None:
    access = Access("127.0.0.1", allowed_hosts=["tapedeck"], allowed_origins=[PAGE])
    assert check(access, {**SDK, "host": "tapedeck:8765"}) is None
    assert check(access, {**SDK, "host": "other:8765"}) == 403
    assert check(access, {**SDK, "origin": PAGE}) == PAGE.encode()
    assert check(access, {**SDK, "origin": "http://localhost:3001"}) == 403
    assert check(Access("127.0.0.1", allowed_hosts=["*"]), {**SDK, "host": "x"}) is None


def test_a_preflight_from_an_allowed_origin_needs_no_token() -> None:
    access = Access("127.0.0.1", allowed_origins=[PAGE], admin_token=TOKEN)
    preflight = {"host": "localhost", "origin": PAGE, "access-control-request-method": "PUT"}
    assert check(access, preflight, "/_tapedeck/faults", "OPTIONS") == PAGE.encode()
    assert check(access, {**preflight, "origin": "https://evil.example"}, "/x", "OPTIONS") == 403


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (b"127.0.0.1:8765", "127.0.0.1"),
        (b"LocalHost", "localhost"),
        (b"[::1]:8765", "::1"),
        (b"[::1]", "::1"),
        (b"::1", "::1"),
        (b" example.com:80 ", "example.com"),
    ],
)
def test_host_names(value: bytes, name: str) -> None:
    assert host_name(value) == name


# --- over a real socket ---------------------------------------------------------------------


@pytest.fixture
def guarded(make_server: MakeServer) -> Iterator[ServerThread]:
    with make_server(CASSETTES, admin_token=TOKEN, allowed_origins=(PAGE,)) as server:
        yield server


def test_the_official_sdk_works_unchanged_with_a_token_and_under_localhost(
    guarded: ServerThread,
) -> None:
    with sdk(guarded) as client, client.messages.stream(**HELLO) as stream:
        assert stream.get_final_text() == "Hello!"
    port = guarded.base_url.rsplit(":", 1)[1]
    with (
        sdk(guarded, base_url=f"http://localhost:{port}") as client,
        client.messages.stream(**HELLO) as stream,
    ):
        assert stream.get_final_text() == "Hello!"


def test_a_page_cannot_reset_or_set_faults_and_nothing_changes(guarded: ServerThread) -> None:
    evil = {"origin": "https://evil.example", "authorization": f"Bearer {TOKEN}"}
    rebound = {"host": "evil.example", "authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=guarded.base_url, timeout=10) as http:
        before = http.get("/_tapedeck/faults", headers={"authorization": f"Bearer {TOKEN}"})
        for headers in (evil, rebound):
            refused = http.put(
                "/_tapedeck/faults", json={"faults": "status:code=529"}, headers=headers
            )
            assert "tapedeck: " in api_error(refused, 403, "permission_error")
            api_error(http.post("/_tapedeck/reset", headers=headers), 403, "permission_error")
        after = http.get("/_tapedeck/faults", headers={"authorization": f"Bearer {TOKEN}"})
    assert before.json() == after.json() == {"status": "ok", "scope": "server", "faults": "none"}


def test_the_admin_token_is_required_but_health_stays_open(guarded: ServerThread) -> None:
    with httpx.Client(base_url=guarded.base_url, timeout=10) as http:
        refused = http.post("/_tapedeck/reset")
        message = api_error(refused, 401, "authentication_error")
        assert refused.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in message
        ok = http.post("/_tapedeck/reset", headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.json() == {"status": "ok", "rewound": 0}
        assert http.get("/_tapedeck/health").json()["status"] == "ok"


def test_an_allowed_origin_gets_cors_headers_and_its_preflight_answered(
    guarded: ServerThread,
) -> None:
    with httpx.Client(base_url=guarded.base_url, timeout=10) as http:
        preflight = http.options(
            "/v1/messages",
            headers={
                "origin": PAGE,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, x-api-key",
            },
        )
        answer = http.post("/v1/messages", json={**HELLO, "stream": True}, headers={"origin": PAGE})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == PAGE
    assert preflight.headers["access-control-allow-headers"] == "content-type, x-api-key"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert answer.text.count("event: ") == 8


def test_a_text_plain_post_never_reaches_the_upstream(
    tmp_path: Path, make_server: MakeServer
) -> None:
    """A page can send ``text/plain`` without a preflight: under --upstream-api-key-env that
    would be a billed call. It is refused before anything is forwarded."""
    with (
        FakeUpstream() as fake,
        make_server(tmp_path, mode=Mode.PASSTHROUGH, upstream=fake.base_url) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        refused = http.post(
            "/v1/messages",
            content=httpx.Request("POST", "/", json=ask("hi")).content,
            headers={"content-type": "text/plain"},
        )
        message = api_error(refused, 400, "invalid_request_error")
        assert fake.count == 0
    assert message == (
        "tapedeck: a request body must be JSON sent with content-type: application/json "
        "(got 'text/plain')"
    )


def test_bound_to_all_interfaces_without_a_token_the_admin_api_is_off(
    make_server: MakeServer,
) -> None:
    with make_server(CASSETTES, host="0.0.0.0") as server:
        port = server.base_url.rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            off = http.post("/_tapedeck/reset")
            health = http.get("/_tapedeck/health")
            replayed = http.post("/v1/messages", json={**HELLO, "stream": True})
    assert "TAPEDECK_ADMIN_TOKEN" in api_error(off, 403, "permission_error")
    assert health.status_code == 200
    assert replayed.status_code == 200


def test_the_token_never_shows_in_settings_or_errors() -> None:
    from tapedeck.config import Settings, from_env, resolve
    from tapedeck.errors import ConfigError

    settings = resolve(from_env({"TAPEDECK_ADMIN_TOKEN": TOKEN}))
    assert settings.admin_token == TOKEN
    assert TOKEN not in repr(settings)
    assert TOKEN not in repr(Settings(admin_token=TOKEN))
    with pytest.raises(ConfigError) as caught:
        resolve(from_env({"TAPEDECK_ADMIN_TOKEN": "two words"}))
    assert "two" not in str(caught.value)


def test_the_compose_file_passes_the_admin_token_on() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    assert set(compose["services"]) == {"tapedeck", "recorder"}
    for name, service in compose["services"].items():  # each listens on 0.0.0.0
        environment = service["environment"]
        assert environment["TAPEDECK_ADMIN_TOKEN"] == "${TAPEDECK_ADMIN_TOKEN:-}", name
        assert environment["TAPEDECK_ALLOWED_HOSTS"] == name
    assert "TAPEDECK_ADMIN_TOKEN" in (ROOT / "docker" / "Dockerfile").read_text()
