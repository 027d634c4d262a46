"""Recording THROUGH a platform: ``upstream_form=platform`` sends a platform client's request
as it came, with its credential (a SigV4 signature made again for the upstream), to stand-ins
that check that credential; the cassette is first-party and answers every client; no
credential reaches the cassette directory, its file names, the log or the journal."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import LogLines, MakeServer, sdk
from fake_upstream import answer_text, ask
from platform_clients import AWS_ACCESS_KEY, SECRETS, TABLE_CLIENTS
from platform_standins import BEDROCK_API_KEY, UPSTREAM_AWS, UPSTREAM_KEY, PlatformStandIn
from record_helpers import files, load, proxy
from tapedeck.platforms.forwarding import platform_host

ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5"
ALL_SECRETS = (*SECRETS, *UPSTREAM_AWS.values(), BEDROCK_API_KEY, UPSTREAM_KEY)
#: What a signature or credential header looks like on disk.
SHAPES = ("AWS4-HMAC-SHA256", "Signature=", "Bearer ")


@pytest.fixture(scope="module")
def standin() -> Iterator[PlatformStandIn]:
    with PlatformStandIn() as s:
        yield s


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """tapedeck's AWS credentials: the known keys, and nowhere else to look."""
    for name, value in UPSTREAM_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def _bedrock(base: str, **kw: Any) -> anthropic.AnthropicBedrock:
    kw.setdefault("max_retries", 0)
    return TABLE_CLIENTS["bedrock"].client(base, **kw)  # type: ignore[no-any-return]


def _leaks(root: Path, *texts: str) -> list[str]:
    """The credentials (and credential-shaped strings) found under ``root`` (contents and
    names) or in ``texts``."""
    where = [p.relative_to(root).as_posix() for p in files(root)]
    where += [p.read_text(encoding="utf-8", errors="replace") for p in files(root)]
    where += texts
    joined = "\n".join(where)
    return [s for s in (*ALL_SECRETS, *SHAPES) if s in joined]


def _interactions(root: Path) -> list[dict[str, Any]]:
    return [i for p in files(root) if p.suffix == ".yaml" for i in load(p)["interactions"]]


def test_bedrock_sigv4_is_signed_again_and_recorded_first_party(
    tmp_path: Path,
    standin: PlatformStandIn,
    make_server: MakeServer,
    tapedeck_log: LogLines,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="botocore")  # its signer logs what it signs
    standin.seen.clear()
    cassettes = tmp_path / "cassettes"
    with proxy(make_server, cassettes, "once", standin.base_url, upstream_form="platform") as s:
        tapedeck_log.only(s)
        with _bedrock(s.base_url) as client:
            with client.messages.stream(**ask("through bedrock streamed", model=ARN)) as st:
                streamed = st.get_final_text()
            made = client.messages.create(**ask("through bedrock whole"))
        journal = httpx.get(f"{s.base_url}/_tapedeck/journal").text
    assert streamed == answer_text("through bedrock streamed")
    assert made.content[0].text == answer_text("through bedrock whole")
    seen = standin.seen
    assert [x.accepted for x in seen] == [True, True]
    assert "%2F" in seen[0].raw_path  # the ARN's "/" kept encoded, as the client sent it
    assert seen[0].raw_path.endswith("/invoke-with-response-stream")
    assert AWS_ACCESS_KEY not in seen[0].headers["authorization"]  # signed again, as tapedeck
    recorded = _interactions(cassettes)
    assert [i["request"]["path"] for i in recorded] == ["/v1/messages"] * 2
    assert recorded[0]["request"]["body"]["model"] == ARN
    assert "anthropic_version" not in recorded[0]["request"]["body"]
    stream_text = json.dumps(recorded[0]["response"])
    assert "text/event-stream" in stream_text
    assert "invocationMetrics" not in stream_text
    assert "x-amzn" not in json.dumps(recorded)
    assert _leaks(cassettes, "\n".join(tapedeck_log.lines()), journal) == []
    # The SDK's own signing logs the client's keys; tapedeck's must log none of its own.
    assert [v for v in UPSTREAM_AWS.values() if v in caplog.text] == []
    with make_server(cassettes) as replaying:  # no upstream: the recording answers
        with sdk(replaying) as first_party:
            again = first_party.messages.create(**ask("through bedrock whole"))
            assert again.content[0].text == made.content[0].text
            with first_party.messages.stream(**ask("through bedrock streamed", model=ARN)) as st:
                assert st.get_final_text() == streamed
        foundry = TABLE_CLIENTS["foundry"]
        with foundry.client(replaying.base_url) as c:
            assert c.messages.create(**ask("through bedrock whole")).content[0].text == (
                made.content[0].text
            )
        with (  # and Bedrock again, as an event stream
            _bedrock(replaying.base_url) as c,
            c.messages.stream(**ask("through bedrock streamed", model=ARN)) as st,
        ):
            assert st.get_final_text() == streamed


def test_bedrock_errors_are_recorded_as_first_party_errors(
    tmp_path: Path, standin: PlatformStandIn, make_server: MakeServer
) -> None:
    with (
        proxy(
            make_server,
            tmp_path,
            "once",
            standin.base_url,
            upstream_form="platform",
            record_errors=True,
        ) as s,
        _bedrock(s.base_url) as client,
    ):
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(**ask("throttle me"))
        with (
            pytest.raises(anthropic.APIStatusError, match="Overloaded"),
            client.messages.stream(**ask("streamfail now")) as st,
        ):
            st.get_final_text()
    by_text = {i["request"]["body"]["messages"][0]["content"]: i for i in _interactions(tmp_path)}
    throttled = by_text["throttle me"]["response"]
    assert throttled["status"] == 429
    assert throttled["body"]["error"] == {
        "type": "rate_limit_error",
        "message": "Too many requests, please wait.",
    }
    failed = json.dumps(by_text["streamfail now"]["response"])
    assert '"overloaded_error"' in failed
    assert "modelStreamErrorException" not in failed
    with make_server(tmp_path) as replaying, sdk(replaying) as first_party:
        with pytest.raises(anthropic.RateLimitError):
            first_party.messages.create(**ask("throttle me"))
        with (
            pytest.raises(anthropic.APIStatusError, match="Overloaded") as raised,
            first_party.messages.stream(**ask("streamfail now")) as st,
        ):
            st.get_final_text()
        assert "overloaded_error" in str(raised.value.body)


def test_bedrock_api_key_is_forwarded_and_a_bad_signature_is_refused(
    tmp_path: Path,
    standin: PlatformStandIn,
    make_server: MakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standin.seen.clear()
    with proxy(make_server, tmp_path, "once", standin.base_url, upstream_form="platform") as s:
        keyed = anthropic.AnthropicBedrock(
            base_url=s.base_url, api_key=BEDROCK_API_KEY, aws_region="us-east-1", max_retries=0
        )
        with keyed:
            assert keyed.messages.create(**ask("by api key")).content[0].text == "by api key"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-known-secret")
    with (
        proxy(make_server, tmp_path, "once", standin.base_url, upstream_form="platform") as s,
        _bedrock(s.base_url) as client,
        pytest.raises(anthropic.PermissionDeniedError),  # recorded 401, Bedrock says 403
    ):
        client.messages.create(**ask("wrongly signed"))
    assert [x.accepted for x in standin.seen] == [True, False]


def test_without_botocore_a_signed_request_gets_502_naming_the_extra(
    tmp_path: Path,
    standin: PlatformStandIn,
    make_server: MakeServer,
    monkeypatch: pytest.MonkeyPatch,
    tapedeck_log: LogLines,
) -> None:
    # The Bedrock SDK signs with botocore itself, so the request is signed by hand here.
    monkeypatch.setitem(sys.modules, "botocore.auth", None)
    standin.seen.clear()
    signature = (
        f"AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY}/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []}
    headers = {"authorization": signature, "x-amz-date": "20260101T000000Z"}
    with proxy(make_server, tmp_path, "once", standin.base_url, upstream_form="platform") as s:
        tapedeck_log.only(s)
        answer = httpx.post(f"{s.base_url}/model/m/invoke", json=body, headers=headers)
    assert answer.status_code == 502
    assert answer.headers["x-amzn-errortype"] == "InternalServerException"
    assert "pip install 'tapedeck-mock[aws]'" in answer.json()["message"]
    assert standin.seen == []
    assert files(tmp_path) == []
    logged = "\n".join(tapedeck_log.lines())
    assert "Traceback" not in logged
    assert _leaks(tmp_path, logged) == []


def test_vertex_bearer_is_forwarded_and_google_errors_become_first_party(
    tmp_path: Path, standin: PlatformStandIn, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    standin.seen.clear()
    vertex = TABLE_CLIENTS["vertex"]
    settings = {"upstream_form": "platform", "record_errors": True}
    with proxy(make_server, tmp_path, "once", standin.base_url, **settings) as s:
        tapedeck_log.only(s)
        with vertex.client(s.base_url) as client:
            with client.messages.stream(**ask("through vertex")) as st:
                streamed = st.get_final_text()
            with pytest.raises(anthropic.RateLimitError, match="Quota exceeded"):
                client.messages.create(**ask("quota gone"))
        journal = httpx.get(f"{s.base_url}/_tapedeck/journal").text
    assert streamed == answer_text("through vertex")
    assert [x.accepted for x in standin.seen] == [True, True]
    assert ":streamRawPredict" in standin.seen[0].raw_path
    assert "anthropic_version" in standin.seen[0].body  # Vertex's body, as sent
    by_text = {i["request"]["body"]["messages"][0]["content"]: i for i in _interactions(tmp_path)}
    assert by_text["through vertex"]["request"]["path"] == "/v1/messages"
    quota = by_text["quota gone"]["response"]
    assert quota["status"] == 429
    assert quota["body"]["error"]["type"] == "rate_limit_error"
    assert _leaks(tmp_path, "\n".join(tapedeck_log.lines()), journal) == []
    with make_server(tmp_path) as replaying:
        with (
            sdk(replaying) as first_party,
            first_party.messages.stream(**ask("through vertex")) as st,
        ):
            assert st.get_final_text() == streamed
        with _bedrock(replaying.base_url) as c, c.messages.stream(**ask("through vertex")) as st:
            assert st.get_final_text() == streamed


def test_google_cloud_bearer_is_forwarded_under_its_workspace_path(
    tmp_path: Path, standin: PlatformStandIn, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    standin.seen.clear()
    settings = {"upstream_form": "platform"}
    with proxy(make_server, tmp_path, "once", standin.base_url, **settings) as s:
        tapedeck_log.only(s)
        with (
            TABLE_CLIENTS["google_cloud"].client(s.base_url) as client,
            client.messages.stream(**ask("through google cloud")) as st,
        ):
            streamed = st.get_final_text()
        journal = httpx.get(f"{s.base_url}/_tapedeck/journal").text
    assert streamed == answer_text("through google cloud")
    (seen,) = standin.seen
    assert (seen.platform, seen.accepted) == ("google-cloud", True)
    assert seen.raw_path.endswith("/workspaces/wrk/invoke/v1/messages")
    (recorded,) = _interactions(tmp_path)
    assert recorded["request"]["path"] == "/v1/messages"
    assert _leaks(tmp_path, "\n".join(tapedeck_log.lines()), journal) == []
    with (
        make_server(tmp_path) as replaying,
        sdk(replaying) as first_party,
        first_party.messages.stream(**ask("through google cloud")) as st,
    ):
        assert st.get_final_text() == streamed


def test_foundry_key_from_the_environment_replaces_the_clients(
    tmp_path: Path,
    standin: PlatformStandIn,
    make_server: MakeServer,
    monkeypatch: pytest.MonkeyPatch,
    tapedeck_log: LogLines,
) -> None:
    monkeypatch.setenv("TAPEDECK_TEST_FOUNDRY_KEY", UPSTREAM_KEY)
    standin.seen.clear()
    settings = {"upstream_form": "platform", "upstream_api_key_env": "TAPEDECK_TEST_FOUNDRY_KEY"}
    with proxy(make_server, tmp_path, "once", standin.base_url, **settings) as s:
        tapedeck_log.only(s)
        foundry = anthropic.AnthropicFoundry(
            base_url=s.base_url + "/anthropic/", api_key="dummy", max_retries=0
        )
        with foundry:
            assert (
                foundry.messages.create(**ask("foundry words")).content[0].text == "foundry words"
            )
    (seen,) = standin.seen
    assert seen.accepted
    assert seen.raw_path == "/anthropic/v1/messages"
    assert seen.headers["api-key"] == UPSTREAM_KEY == seen.headers["x-api-key"]
    assert _leaks(tmp_path, "\n".join(tapedeck_log.lines())) == []
    with make_server(tmp_path) as replaying, sdk(replaying) as first_party:
        assert (
            first_party.messages.create(**ask("foundry words")).content[0].text == "foundry words"
        )


@pytest.mark.parametrize("name", ["mantle", "aws"])
def test_mantle_and_aws_sigv4_are_signed_again_for_their_service(
    tmp_path: Path, standin: PlatformStandIn, make_server: MakeServer, name: str
) -> None:
    standin.seen.clear()
    platform = TABLE_CLIENTS[name]
    with (
        proxy(make_server, tmp_path, "once", standin.base_url, upstream_form="platform") as s,
        platform.client(s.base_url) as client,
    ):
        made = platform.messages(client).create(**ask(f"signed for {name}"))
    assert made.content[0].text == f"signed for {name}"
    (seen,) = standin.seen
    assert (seen.platform, seen.accepted) == (name, True)
    (recorded,) = _interactions(tmp_path)
    assert recorded["request"]["path"] == "/v1/messages"
    assert _leaks(tmp_path) == []


@pytest.mark.parametrize(
    ("url", "known"),
    [
        ("https://bedrock-runtime.us-east-1.amazonaws.com", True),
        ("https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com", True),
        ("https://bedrock-mantle.eu-west-1.api.aws/anthropic", True),
        ("https://aws-external-anthropic.us-west-2.api.aws", True),
        ("https://us-east5-aiplatform.googleapis.com/v1", True),
        ("https://aiplatform.googleapis.com/v1", True),
        ("https://aiplatform.eu.rep.googleapis.com/v1", True),
        ("https://claude.googleapis.com/v1/projects/p/locations/global/workspaces/w/invoke", True),
        ("https://my-resource.services.ai.azure.com/anthropic/", True),
        ("https://api.anthropic.com", False),
        ("http://127.0.0.1:9999", False),
        ("https://bedrock-runtime.us-east-1.amazonaws.com.evil.example", False),
    ],
)
def test_auto_knows_the_platforms_hosts(url: str, known: bool) -> None:
    assert platform_host(url) is known
