"""Recording through a platform front door: the cassette is the first-party request and
answer, so the first-party client replays it (and another platform's client), and no
platform credential reaches the upstream's cassette, the log or the journal."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conftest import LogLines, MakeServer, sdk
from fake_upstream import MODEL, FakeUpstream, answer_text, ask
from platform_clients import PLATFORMS, SECRETS
from record_helpers import files, load, proxy

BY_NAME = {p.name: p for p in PLATFORMS}


@pytest.mark.parametrize("name", ["vertex", "google-cloud", "foundry", "mantle-sigv4", "aws-sigv4"])
def test_a_recording_through_a_platform_answers_the_first_party_client(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, name: str
) -> None:
    platform = BY_NAME[name]
    question = f"recorded through {name}"
    with proxy(make_server, tmp_path, "once", fake) as s, platform.client(s.base_url) as c:
        with platform.messages(c).stream(**ask(question)) as stream:
            recorded = stream.get_final_text()
        made = platform.messages(c).create(**ask(question + " as json"))
    assert recorded == answer_text(question)
    assert made.content[0].text == answer_text(question + " as json")
    seen = fake.requests()
    assert [(r.path, r.body["model"]) for r in seen] == [("/v1/messages", MODEL)] * 2
    assert "anthropic_version" not in seen[0].body
    for path in files(tmp_path):
        for interaction in load(path)["interactions"]:
            request = interaction["request"]
            assert request["path"] == "/v1/messages"
            assert request["body"]["model"] == MODEL
            assert "anthropic_version" not in request["body"]
    with make_server(tmp_path) as replaying:  # mode none: no upstream
        with sdk(replaying) as first_party:
            with first_party.messages.stream(**ask(question)) as st:
                assert st.get_final_text() == recorded
            again = first_party.messages.create(**ask(question + " as json"))
            assert again.content[0].text == made.content[0].text
        other = BY_NAME["foundry" if name != "foundry" else "vertex"]
        with other.client(replaying.base_url) as c, other.messages(c).stream(**ask(question)) as st:
            assert st.get_final_text() == recorded


def test_a_first_party_recording_answers_every_platform(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with (
        proxy(make_server, tmp_path, "once", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask("first party words")) as stream,
    ):
        recorded = stream.get_final_text()
    with make_server(tmp_path) as replaying:
        for platform in PLATFORMS:
            with platform.client(replaying.base_url) as client:
                messages = platform.messages(client)
                with messages.stream(**ask("first party words")) as stream:
                    assert stream.get_final_text() == recorded, platform.name


def test_platform_credentials_never_reach_disk_the_log_or_the_journal(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    # Headers matched (so kept by a recording) unless they are secrets: api-key is Foundry's
    # key, x-amz-security-token AWS's session token; authorization holds the Google token
    # and the SigV4 signature.
    kept = ("anthropic-beta", "api-key", "x-amz-security-token")
    with proxy(make_server, tmp_path, "once", fake, match_headers=kept) as s:
        for platform in PLATFORMS:
            with platform.client(s.base_url) as c:
                platform.messages(c).create(**ask(f"secret of {platform.name}"))
        journal = httpx.get(f"{s.base_url}/_tapedeck/journal").text
    sent = [r.headers for r in fake.requests()]
    assert len(sent) == len(PLATFORMS)
    # They did reach the upstream: the credential is forwarded for the upstream to check.
    assert any(h.get("api-key") for h in sent)
    assert any(h.get("x-amz-security-token") for h in sent)
    assert any(h.get("authorization", "").startswith("AWS4-HMAC-SHA256") for h in sent)
    written = "\n".join(p.read_text(encoding="utf-8") for p in files(tmp_path))
    logged = "\n".join(tapedeck_log.lines())
    assert "/v1/messages" in logged  # one line per request
    for secret in SECRETS:
        assert secret not in written
        assert secret not in logged
        assert secret not in journal
    for path in files(tmp_path):
        for interaction in load(path)["interactions"]:
            headers = interaction["request"].get("headers", {})
            assert not set(headers) & {"api-key", "x-amz-security-token", "authorization"}
    assert json.loads(journal)["entries"]
