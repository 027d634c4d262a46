"""What tapedeck forwards upstream, and the secrets it never writes to disk or the log.

Requests reach :mod:`fake_upstream` as the client sent them (the key replaced only by
``--upstream-api-key-env``); API keys, cookies and organization ids never reach a
cassette, a cassette name or a log line, and a redacted recording still replays.
"""

from __future__ import annotations

import gc
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import MakeServer, sdk
from fake_upstream import ORGANIZATION_ID, UPSTREAM_SECRET, FakeUpstream, ask, tokens
from record_helpers import files, load, names, only_cassette, proxy, raw_post
from tapedeck.config import Mode, Settings
from tapedeck.errors import ConfigError
from tapedeck.server.app import create_app
from tapedeck.server.runner import ServerThread

#: A recognisable fake API key: it must never be written to disk or to the log.
KEY = "sk-ant-api03-TESTKEY-XYZ123"
PLACEHOLDER = "sk-ant-REDACTED"


# --- requests are forwarded faithfully --------------------------------------------------------


def test_the_request_is_forwarded_as_the_client_sent_it(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s:
        with sdk(s, api_key="client-key") as c:
            raw = c.beta.messages.with_raw_response.create(
                **ask("beta question"),
                betas=["beta-two", "beta-one"],
                extra_headers={"x-tapedeck-test-id": "t1", "x-custom": "kept"},
                extra_query={"beta": "true"},
            )
        assert raw.headers["x-tapedeck-source"] == "upstream"
        name = raw.headers["x-tapedeck-cassette"]
    [seen] = fake.requests()
    assert seen.path == "/v1/messages"
    assert seen.query == {"beta": ["true"]}
    assert seen.body == ask("beta question")
    h = seen.headers
    assert h["authorization"] == "Bearer client-key"
    assert h["anthropic-beta"] == "beta-two,beta-one"
    assert "anthropic-version" in h
    assert h["x-custom"] == "kept"
    assert h["user-agent"].startswith("Anthropic/Python")
    assert h["x-stainless-lang"] == "python"
    assert h["host"] == f"127.0.0.1:{fake.port}"
    assert h["accept-encoding"] == "identity"
    assert not [k for k in h if k.startswith("x-tapedeck-")]
    request = load(tmp_path / f"{name}.yaml")["interactions"][0]["request"]
    assert request["query"] == {"beta": "true"}
    assert request["headers"]["anthropic-beta"] == "beta-two,beta-one"
    assert "authorization" not in request["headers"]


def test_upstream_api_key_env_replaces_the_clients_key(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = "sk-ant-api03-REALKEY-FROM-ENV-42"
    monkeypatch.setenv("TAPEDECK_TEST_REAL_KEY", real)
    with proxy(
        make_server, tmp_path, "record", fake, upstream_api_key_env="TAPEDECK_TEST_REAL_KEY"
    ) as s:
        with sdk(s, api_key="dummy") as c:
            c.messages.create(**ask("who am i"))
        raw_post(s, "/v1/messages", ask("who am i really"), **{"x-api-key": "dummy-too"})
    for seen in fake.requests():
        assert seen.headers.get("x-api-key") == real
        assert "authorization" not in seen.headers
        assert [k for k, _ in seen.header_list if k.lower() == "x-api-key"] == ["x-api-key"]
    assert fake.count == 2
    for path in files(tmp_path):
        assert "REALKEY" not in path.read_text(encoding="utf-8")


def unset_key_settings(root: Path, port: int = 0) -> Settings:
    return Settings(
        cassettes=root,
        port=port,
        mode=Mode.RECORD,
        upstream="http://127.0.0.1:9",
        upstream_api_key_env="TAPEDECK_TEST_UNSET_KEY",
    )


def test_upstream_api_key_env_must_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAPEDECK_TEST_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError, match="TAPEDECK_TEST_UNSET_KEY"):
        create_app(unset_key_settings(tmp_path))
    monkeypatch.setenv("TAPEDECK_TEST_UNSET_KEY", "")
    with pytest.raises(ConfigError, match="TAPEDECK_TEST_UNSET_KEY"):
        create_app(unset_key_settings(tmp_path))


def test_a_server_thread_that_cannot_start_closes_its_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ServerThread binds before building the app; a ConfigError must not leak the socket."""
    monkeypatch.delenv("TAPEDECK_TEST_UNSET_KEY", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError):
            ServerThread(unset_key_settings(tmp_path))
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == []


# --- secrets ----------------------------------------------------------------------------------


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.format_with = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format_with.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


LOGGERS = ["tapedeck", "uvicorn", "uvicorn.error", "uvicorn.access"]


@pytest.fixture
def server_log() -> Iterator[Captured]:
    """Everything tapedeck and uvicorn log, at every level."""
    handler = Captured()
    loggers = [logging.getLogger(n) for n in LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


SECRETS = [KEY, "TESTKEY-XYZ123", UPSTREAM_SECRET, "UPSTREAMLEAK", ORGANIZATION_ID, "COOKIE-SECRET"]


def test_secrets_never_reach_the_cassettes_or_the_log(
    tmp_path: Path,
    fake: FakeUpstream,
    make_server: MakeServer,
    server_log: Captured,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tapedeck")
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    content = f"secret test: please remember {KEY} for later"
    with proxy(make_server, tmp_path, "record", fake) as s:
        with sdk(s, api_key=KEY) as c:
            with c.messages.stream(**ask(content)) as stream:
                streamed = stream.get_final_text()
            created = c.messages.create(**ask(content), system=f"the key is {KEY}")
            c.messages.count_tokens(**tokens(content))
        by_header = raw_post(
            s,
            "/v1/messages",
            ask(content, metadata={"user_id": KEY}),
            **{"x-api-key": KEY, "cookie": "session=COOKIE-SECRET-req"},
        )
    # The client gets the upstream's answer untouched...
    assert UPSTREAM_SECRET in streamed
    assert created.content[0].type == "text"
    assert UPSTREAM_SECRET in created.content[0].text
    assert UPSTREAM_SECRET in by_header.json()["content"][0]["text"]
    # ...and the fake saw the real key both ways.
    assert [r.headers.get("authorization") for r in fake.requests()[:3]] == [f"Bearer {KEY}"] * 3
    assert fake.requests()[3].headers["x-api-key"] == KEY
    assert fake.count == 4

    recorded = files(tmp_path)
    # The raw request is the streamed one but for `stream` and metadata.user_id, which
    # matching ignores: it is recorded into the same cassette, as a second interaction.
    assert len(recorded) == 3
    for path in recorded:
        text = path.read_text(encoding="utf-8")
        for secret in SECRETS:
            assert secret not in text, (secret, path.name)
        for header in ("authorization", "x-api-key", "set-cookie", "cookie", "anthropic-organ"):
            assert f"{header}:" not in text.lower(), (header, path.name)
        assert PLACEHOLDER in text, path.name
    messages = [load(p) for p in recorded if "count" not in p.name]
    redacted = [i["response"] for d in messages for i in d["interactions"]]
    assert any(PLACEHOLDER in json.dumps(r) for r in redacted)

    assert "recorded" in server_log.text  # the capture works
    logged = server_log.text + "\n" + caplog.text
    for secret in SECRETS:
        assert secret not in logged, secret


def test_a_request_holding_a_key_replays_from_its_redacted_recording(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    """The cassette holds the placeholder; the same request, key and all, must still match."""
    content = f"secret test: please remember {KEY} for later"
    with (
        proxy(make_server, tmp_path, "record", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask(content)) as stream,
    ):
        streamed = stream.get_final_text()
    assert (
        KEY
        not in only_cassette(tmp_path)["interactions"][0]["request"]["body"]["messages"][0][
            "content"
        ]
    )
    # The fake upstream echoes the prompt, key included: the recording holds neither key.
    expected = streamed.replace(UPSTREAM_SECRET, PLACEHOLDER).replace(KEY, PLACEHOLDER)
    # In replay mode a miss is a 404; in auto mode it would go upstream (and be re-recorded).
    with make_server(tmp_path) as s, sdk(s) as c, c.messages.stream(**ask(content)) as stream:
        assert stream.get_final_text() == expected
    with (
        proxy(make_server, tmp_path, "auto", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask(content)) as stream,
    ):
        assert stream.response.headers["x-tapedeck-source"] == "cassette"
        assert stream.get_final_text() == expected
    assert fake.count == 1


def test_cassette_names_and_log_lines_carry_no_key_material(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, server_log: Captured
) -> None:
    """A message that starts with a key must not put the key into the file name."""
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s) as c:
        raw = c.messages.with_raw_response.create(**ask(f"{KEY} is my key"))
    [path] = names(tmp_path)
    assert "testkey" not in path.lower()
    assert "xyz123" not in path.lower()
    assert "testkey" not in raw.headers["x-tapedeck-cassette"].lower()
    assert "recorded" in server_log.text
    assert "testkey" not in server_log.text.lower()


def test_key_shaped_query_values_are_redacted(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s, httpx.Client() as h:
        response = h.get(f"{s.base_url}/v1/models", params={"limit": "1", "token": KEY})
    assert response.status_code == 200
    assert fake.requests()[0].query["token"] == [KEY]
    text = files(tmp_path)[0].read_text(encoding="utf-8")
    assert KEY not in text
    assert PLACEHOLDER in text
