"""Sequences of interactions, explicit cassette selection, path safety and miss reports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import HELLO, MakeServer, sdk
from tapedeck import CassetteLibrary, LibraryError
from tapedeck.server.runner import ServerThread
from tapedeck.source.sequences import SequenceEnd


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    error: dict[str, Any] = body["error"]
    return error


# --- sequences ------------------------------------------------------------------------------

SEQ_REQUEST = {
    "model": "m",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "retry me"}],
}


def seq_interaction(status: int, request_id: str, text: str = "recovered") -> str:
    if status == 200:
        body = f"""\
      body:
        id: msg_{request_id}
        type: message
        role: assistant
        model: m
        content: [{{type: text, text: "{text}"}}]
        stop_reason: end_turn
        stop_sequence: null
        usage: {{input_tokens: 3, output_tokens: 2}}
"""
        headers = f"        request-id: {request_id}\n"
    else:
        body = """\
      body:
        type: error
        error: {type: overloaded_error, message: Overloaded}
"""
        headers = (
            f"        request-id: {request_id}\n"
            '        retry-after-ms: "1"\n'
            '        x-should-retry: "true"\n'
        )
    return f"""\
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 16
        messages: [{{role: user, content: retry me}}]
    response:
      status: {status}
      headers:
{headers}{body}"""


def seq_cassette(path: Path, *steps: tuple[int, str]) -> None:
    write(path, "version: 1\ninteractions:\n" + "".join(seq_interaction(*s) for s in steps))


@pytest.fixture
def seq_dir(tmp_path: Path) -> Path:
    seq_cassette(tmp_path / "seq.yaml", (529, "req_1"), (529, "req_2"), (200, "req_3"))
    return tmp_path


def post(h: httpx.Client, test_id: str | None = None) -> httpx.Response:
    headers = {"x-tapedeck-test-id": test_id} if test_id is not None else {}
    return h.post("/v1/messages", json=SEQ_REQUEST, headers=headers)


def served(h: httpx.Client, test_id: str | None = None) -> tuple[int, str]:
    r = post(h, test_id)
    return r.status_code, r.headers.get("request-id", "")


def test_sequence_in_order_then_last_repeats(seq_dir: Path, make_server: MakeServer) -> None:
    with make_server(seq_dir) as s, httpx.Client(base_url=s.base_url) as h:
        got = [served(h) for _ in range(5)]
        assert got == [
            (529, "req_1"),
            (529, "req_2"),
            (200, "req_3"),
            (200, "req_3"),
            (200, "req_3"),
        ]
        r = post(h)
        assert r.headers["x-tapedeck-cassette"] == "seq"
        assert r.json()["content"][0]["text"] == "recovered"


def test_sequence_end_error(seq_dir: Path, make_server: MakeServer) -> None:
    with (
        make_server(seq_dir, sequence_end=SequenceEnd.ERROR) as s,
        httpx.Client(base_url=s.base_url) as h,
    ):
        assert [served(h) for _ in range(3)] == [(529, "req_1"), (529, "req_2"), (200, "req_3")]
        for _ in range(2):
            r = post(h)
            assert r.status_code == 404
            error = error_of(r)
            assert error["type"] == "not_found_error"
            assert "sequence used up" in error["message"]
            assert "'seq'" in error["message"]
            assert "3 interactions" in error["message"]
        # Another test id still has its whole sequence.
        assert served(h, "other") == (529, "req_1")


def test_sequence_end_error_through_sdk(seq_dir: Path, make_server: MakeServer) -> None:
    with make_server(seq_dir, sequence_end=SequenceEnd.ERROR) as s, sdk(s, max_retries=2) as c:
        message = c.messages.create(**SEQ_REQUEST)
        assert message.content[0].type == "text"
        assert message.content[0].text == "recovered"
        with pytest.raises(anthropic.NotFoundError) as caught:
            c.messages.create(**SEQ_REQUEST)
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["error"]["type"] == "not_found_error"


def test_test_ids_have_independent_positions(seq_dir: Path, make_server: MakeServer) -> None:
    with make_server(seq_dir) as s, httpx.Client(base_url=s.base_url) as h:
        assert served(h, "A") == (529, "req_1")
        assert served(h, "B") == (529, "req_1")
        assert served(h, "A") == (529, "req_2")
        assert served(h, "A") == (200, "req_3")
        assert served(h, "B") == (529, "req_2")
        assert served(h) == (529, "req_1")  # no id: a position of its own
        assert served(h, "B") == (200, "req_3")
        assert served(h) == (529, "req_2")
        assert served(h, "A") == (200, "req_3")


def test_reset_rewinds_all_or_one_test_id(seq_dir: Path, make_server: MakeServer) -> None:
    with make_server(seq_dir) as s, httpx.Client(base_url=s.base_url) as h:
        r = h.post("/_tapedeck/reset")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "rewound": 0}
        assert served(h, "A") == (529, "req_1")
        assert served(h, "A") == (529, "req_2")
        assert served(h, "B") == (529, "req_1")
        assert served(h, "B") == (529, "req_2")
        assert served(h) == (529, "req_1")

        r = h.post("/_tapedeck/reset", headers={"x-tapedeck-test-id": "A"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"status": "ok", "rewound": 1}
        assert served(h, "A") == (529, "req_1")  # rewound
        assert served(h, "B") == (200, "req_3")  # untouched
        assert served(h) == (529, "req_2")  # untouched

        r = h.post("/_tapedeck/reset", headers={"x-tapedeck-test-id": "nobody"})
        assert r.json() == {"status": "ok", "rewound": 0}
        assert served(h, "B") == (200, "req_3")

        r = h.post("/_tapedeck/reset")
        assert r.json() == {"status": "ok", "rewound": 3}
        assert served(h, "A") == (529, "req_1")
        assert served(h, "B") == (529, "req_1")
        assert served(h) == (529, "req_1")


def test_sdk_retries_a_529_sequence(tmp_path: Path, make_server: MakeServer) -> None:
    seq_cassette(tmp_path / "retry.yaml", (529, "req_busy"), (200, "req_ok"))
    with make_server(tmp_path) as s:
        with sdk(s, max_retries=2, default_headers={"x-tapedeck-test-id": "retrying"}) as c:
            response = c.messages.with_raw_response.create(**SEQ_REQUEST)
            message = response.parse()
        assert response.retries_taken == 1
        assert response.headers["request-id"] == "req_ok"
        assert message.id == "msg_req_ok"
        assert message.content[0].type == "text"
        assert message.content[0].text == "recovered"
        assert message.stop_reason == "end_turn"
        # Without retries, a fresh test id sees the 529 first.
        with sdk(s, default_headers={"x-tapedeck-test-id": "no-retry"}) as c:
            with pytest.raises(anthropic.OverloadedError) as caught:
                c.messages.create(**SEQ_REQUEST)
            assert caught.value.request_id == "req_busy"
            retried = c.messages.create(**SEQ_REQUEST).content[0]
            assert retried.type == "text"
            assert retried.text == "recovered"


# --- explicit selection ---------------------------------------------------------------------


def hello_text(client: anthropic.Anthropic, **kwargs: Any) -> str:
    with client.messages.stream(**HELLO, **kwargs) as stream:
        return "".join(stream.text_stream)


@pytest.mark.parametrize("name", ["streaming/hello", "streaming/hello.yaml", "streaming/./hello"])
def test_select_by_name(client: anthropic.Anthropic, name: str) -> None:
    with client.messages.with_streaming_response.create(
        **HELLO, stream=True, extra_headers={"x-tapedeck-cassette": name}
    ) as response:
        assert response.headers["x-tapedeck-cassette"] == "streaming/hello"
        events = [e.type for e in response.parse()]
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert hello_text(client, extra_headers={"x-tapedeck-cassette": name}) == "Hello!"


def test_selected_cassette_must_still_match(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        hello_text(client, extra_headers={"x-tapedeck-cassette": "streaming/tool-use"})
    assert isinstance(caught.value.body, dict)
    message = caught.value.body["error"]["message"]
    assert message.startswith("tapedeck: no cassette matches POST /v1/messages")
    assert "streaming/tool-use" in message
    assert "streaming/hello" not in message


def test_unknown_cassette_name_is_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        hello_text(client, extra_headers={"x-tapedeck-cassette": "streaming/nope"})
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "not_found_error"
    message = caught.value.body["error"]["message"]
    assert "streaming/nope" in message
    assert "no such cassette" in message


def test_selection_picks_among_cassettes_with_the_same_request(
    tmp_path: Path, make_server: MakeServer
) -> None:
    seq_cassette(tmp_path / "a.yaml", (200, "req_a"))
    write(
        tmp_path / "b.yaml",
        "version: 1\ninteractions:\n" + seq_interaction(200, "req_b", text="from b"),
    )
    with make_server(tmp_path) as s, sdk(s) as c:
        plain = c.messages.with_raw_response.create(**SEQ_REQUEST)
        assert plain.headers["x-tapedeck-cassette"] == "a"
        assert plain.headers["request-id"] == "req_a"
        chosen = c.messages.with_raw_response.create(
            **SEQ_REQUEST, extra_headers={"x-tapedeck-cassette": "b"}
        )
        assert chosen.headers["x-tapedeck-cassette"] == "b"
        content = chosen.parse().content[0]
        assert content.type == "text"
        assert content.text == "from b"
    with make_server(tmp_path) as s, sdk(s, default_headers={"x-tapedeck-cassette": "b.yaml"}) as c:
        content = c.messages.create(**SEQ_REQUEST).content[0]
        assert content.type == "text"
        assert content.text == "from b"


UNSAFE_NAMES = [
    "../x",
    "a/../../x",
    "..",
    "streaming/../../etc/passwd",
    "/etc/passwd",
    "C:\\x",
    "C:/x",
    "streaming\\hello",
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_path_traversal_is_refused(client: anthropic.Anthropic, name: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        hello_text(client, extra_headers={"x-tapedeck-cassette": name})
    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "x-tapedeck-cassette" in caught.value.body["error"]["message"]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_path_traversal_is_refused_raw(server: ServerThread, name: str) -> None:
    r = httpx.post(
        server.base_url + "/v1/messages",
        json={**HELLO, "stream": True},
        headers={"x-tapedeck-cassette": name},
    )
    assert r.status_code == 400
    assert error_of(r)["type"] == "invalid_request_error"
    assert "root:" not in r.text


SECRET = "TOP-SECRET-OUTSIDE-CONTENT"


def secret_cassette(path: Path) -> None:
    write(
        path,
        "version: 1\ninteractions:\n" + seq_interaction(200, "req_secret", text=SECRET),
    )


@pytest.fixture
def link_layout(tmp_path: Path) -> tuple[Path, Path]:
    """``root`` (the cassette dir) and ``outside`` (a sibling dir with a secret cassette)."""
    root = tmp_path / "cassettes"
    outside = tmp_path / "outside"
    seq_cassette(root / "inside.yaml", (200, "req_inside"))
    secret_cassette(outside / "secret.yaml")
    write(outside / "plain.txt", SECRET)
    return root, outside


def refused(base_url: str, name: str) -> httpx.Response:
    return httpx.post(
        base_url + "/v1/messages", json=SEQ_REQUEST, headers={"x-tapedeck-cassette": name}
    )


def test_symlinks_to_outside_are_refused(
    link_layout: tuple[Path, Path], make_server: MakeServer
) -> None:
    root, outside = link_layout
    # Present at startup but not cassettes by name (no .yaml suffix), so loading succeeds.
    os.symlink(outside / "plain.txt", root / "leak")
    os.symlink(outside, root / "linked-dir")
    with make_server(root) as s:
        # Created after the library loaded.
        os.symlink(outside / "secret.yaml", root / "late.yaml")
        for name in ("leak", "late", "late.yaml", "linked-dir/secret", "linked-dir/secret.yaml"):
            r = refused(s.base_url, name)
            assert r.status_code == 400, name
            assert error_of(r)["type"] == "invalid_request_error"
            assert SECRET not in r.text
            assert "req_secret" not in r.text
        # The outside cassette was never loaded: without selection the request matches the
        # inside cassette, and the health count says one cassette.
        r = httpx.post(s.base_url + "/v1/messages", json=SEQ_REQUEST)
        assert r.status_code == 200
        assert r.headers["request-id"] == "req_inside"
        assert httpx.get(s.base_url + "/_tapedeck/health").json()["cassettes"] == 1
        # The SDK sees a BadRequestError and never the content.
        with sdk(s, default_headers={"x-tapedeck-cassette": "linked-dir/secret"}) as c:
            with pytest.raises(anthropic.BadRequestError) as caught:
                c.messages.create(**SEQ_REQUEST)
            assert SECRET not in str(caught.value.body)


def test_symlinked_directory_content_is_not_loaded(
    link_layout: tuple[Path, Path], make_server: MakeServer
) -> None:
    root, outside = link_layout
    (root / "inside.yaml").unlink()
    seq_cassette(root / "other.yaml", (200, "req_other"))
    os.symlink(outside, root / "ext")
    with make_server(root) as s:
        r = httpx.post(s.base_url + "/v1/messages", json=SEQ_REQUEST)
        assert r.status_code == 200
        assert r.headers["request-id"] == "req_other"
        assert SECRET not in r.text


def test_symlink_to_outside_file_at_startup_refuses_to_load(
    link_layout: tuple[Path, Path], make_server: MakeServer
) -> None:
    root, outside = link_layout
    os.symlink(outside / "secret.yaml", root / "sneaky.yaml")
    with pytest.raises(LibraryError) as caught:
        CassetteLibrary.load(root)
    assert len(caught.value.errors) == 1
    assert "sneaky.yaml" in str(caught.value)
    assert "outside the cassette directory" in str(caught.value)
    with pytest.raises(LibraryError), make_server(root):
        pass  # pragma: no cover - the server must not start


def test_symlink_inside_the_directory_is_fine(tmp_path: Path) -> None:
    seq_cassette(tmp_path / "real" / "one.yaml", (200, "req_one"))
    os.symlink(tmp_path / "real" / "one.yaml", tmp_path / "alias.yaml")
    library = CassetteLibrary.load(tmp_path)
    assert sorted(library.cassettes) == ["alias", "real/one"]


# --- misses and health ----------------------------------------------------------------------

GREET = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body:
        model: claude-sonnet-4-5
        max_tokens: 32
        messages:
          - {role: user, content: hello}
    response:
      status: 200
      body: {type: message, id: msg_greet, role: assistant, model: m, content: [],
             stop_reason: end_turn, stop_sequence: null,
             usage: {input_tokens: 1, output_tokens: 1}}
"""

FAR_AWAY = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body:
        model: claude-opus-4
        max_tokens: 4096
        system: something else entirely
        messages:
          - {role: user, content: "a completely different prompt"}
    response:
      status: 200
      body: {}
"""


def test_miss_names_closest_cassette_and_first_difference(
    tmp_path: Path, make_server: MakeServer
) -> None:
    write(tmp_path / "greet.yaml", GREET)
    write(tmp_path / "far-away.yaml", FAR_AWAY)
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with make_server(tmp_path) as s, sdk(s) as c:
        with pytest.raises(anthropic.NotFoundError) as caught:
            c.messages.create(**request)
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["error"]["type"] == "not_found_error"
        message = caught.value.body["error"]["message"]
        assert message.startswith("tapedeck: no cassette matches POST /v1/messages")
        assert "greet" in message
        assert "far-away" not in message
        assert 'messages[0].content: "hi" != "hello"' in message
        assert message.endswith(
            'messages[0].content: "hi" != "hello"; to record it, run with --mode new_episodes '
            "(TAPEDECK_MODE=new_episodes, or pytest --tapedeck-mode new_episodes) and a key "
            "for the upstream (ANTHROPIC_API_KEY or --upstream-api-key-env); --mode once "
            "records cassettes that do not exist yet"
        )

        raw = httpx.post(s.base_url + "/v1/messages", json=request)
        assert raw.status_code == 404
        assert error_of(raw)["message"] == message


def test_health(tmp_path: Path, make_server: MakeServer) -> None:
    write(tmp_path / "greet.yaml", GREET)
    write(tmp_path / "deeper" / "far-away.yml", FAR_AWAY)
    with make_server(tmp_path) as s:
        r = httpx.get(s.base_url + "/_tapedeck/health")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"status": "ok", "mode": "none", "cassettes": 2}
        assert json.loads(r.content) == r.json()
