"""The client's name and release, recorded with each interaction (``client:`` in a cassette's
request), and said in a miss whose closest interaction another client or release recorded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from conftest import CASSETTES, LogLines, MakeServer, sdk
from fake_upstream import FakeUpstream, ask
from record_helpers import proxy
from tapedeck.cassette.clients import identify
from tapedeck.cassette.index import LibraryIndex
from tapedeck.cassette.lazy_events import EventStore
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import parse_cassette
from tapedeck.cassette.model import Client
from tapedeck.cassette.save import dump_cassette
from tapedeck.config import Mode
from tapedeck.errors import CassetteError
from tapedeck.observe.entries import JournalEntry

#: The first block of Claude Code 2.1.337's system prompt (``claude -p hi``, captured).
BILLING = "x-anthropic-billing-header: cc_version=2.1.337.089; cc_entrypoint=sdk-cli;"
CLAUDE_BODY = {"system": [{"type": "text", "text": BILLING}, {"type": "text", "text": "You..."}]}
STAINLESS_JS = [("X-Stainless-Lang", "js"), ("X-Stainless-Package-Version", "0.128.0")]
STAINLESS_PY = [("x-stainless-lang", "python"), ("x-stainless-package-version", "0.86.0")]


@pytest.mark.parametrize(
    ("headers", "body", "client"),
    [
        pytest.param(  # what `claude -p hi` sends (captured from the CLI 2.1.337)
            [("User-Agent", "claude-cli/2.1.337 (external, sdk-cli)"), *STAINLESS_JS],
            CLAUDE_BODY,
            Client("claude-cli", "2.1.337"),
            id="claude-code",
        ),
        pytest.param(
            [("user-agent", "claude-cli/2.1.300 (external, cli)")],
            None,
            Client("claude-cli", "2.1.300"),
            id="claude-code-interactive",
        ),
        pytest.param(  # no user-agent (a proxy dropped it): the billing block says
            STAINLESS_JS, CLAUDE_BODY, Client("claude-cli", "2.1.337"), id="billing-over-sdk"
        ),
        pytest.param(
            [("user-agent", "node-fetch/1.0"), *STAINLESS_JS],
            {"system": "plain"},
            Client("anthropic-js", "0.128.0"),
            id="sdk-over-http-library",
        ),
        pytest.param([], CLAUDE_BODY, Client("claude-cli", "2.1.337"), id="billing-block"),
        pytest.param(
            [("user-agent", "Anthropic/Python 0.86.0"), *STAINLESS_PY],
            None,
            Client("anthropic-python", "0.86.0"),
            id="anthropic-python",
        ),
        pytest.param(
            [("user-agent", "python-httpx/0.28.1"), *STAINLESS_PY],
            None,
            Client("anthropic-python", "0.86.0"),
            id="http-library-with-the-sdk",
        ),
        pytest.param(
            [("user-agent", "python-httpx/0.28.1")],
            None,
            Client("python-httpx", "0.28.1"),
            id="http-library-alone",
        ),
        pytest.param(  # the Vercel AI SDK's generateText (captured from ai 7.0.185)
            [("user-agent", "ai/7.0.185 ai-sdk-provider-utils/5.0.86 node.js/22")],
            None,
            Client("ai-sdk", "5.0.86"),
            id="vercel-ai-sdk-generate",
        ),
        pytest.param(  # and its streamText: one install, one client
            [("user-agent", "ai-sdk-anthropic/4.0.112 ai-sdk-provider-utils/5.0.86 node.js/22")],
            None,
            Client("ai-sdk", "5.0.86"),
            id="vercel-ai-sdk-stream",
        ),
        pytest.param(
            [("user-agent", "ai-sdk/anthropic/4.0.112 runtime/node.js/22")],
            None,
            Client("ai-sdk/anthropic", "4.0.112"),
            id="slashes-in-the-name",
        ),
        pytest.param(  # captured from litellm 1.110.2
            [("User-Agent", "litellm/1.110.2")], None, Client("litellm", "1.110.2"), id="litellm"
        ),
        pytest.param(
            [("user-agent", "langchain-anthropic/1.3.0"), *STAINLESS_PY],
            None,
            Client("langchain-anthropic", "1.3.0"),
            id="langchain",
        ),
        pytest.param(
            [("user-agent", "pydantic-ai/1.9.0"), *STAINLESS_PY],
            None,
            Client("pydantic-ai", "1.9.0"),
            id="pydantic-ai",
        ),
        pytest.param([("user-agent", "my-tool")], None, Client("my-tool"), id="no-release"),
        pytest.param([("user-agent", "<script>/1")], None, None, id="not-a-product"),
        pytest.param([], {"system": "plain"}, None, id="nothing-says"),
    ],
)
def test_identify(headers: list[tuple[str, str]], body: Any, client: Client | None) -> None:
    assert identify(headers, body) == client


CASSETTE = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      client: {client}
      body: {{model: m, max_tokens: 8, messages: [{{role: user, content: hi}}]}}
    response:
      status: 200
      body: {{type: message}}
"""


def test_the_cassette_keeps_it_and_old_cassettes_load() -> None:
    cassette = parse_cassette(
        CASSETTE.format(client="{name: claude-cli, release: 2.1.337}"), "c.yaml", "c"
    )
    request = cassette.interactions[0].request
    assert request.client == Client("claude-cli", "2.1.337")
    text = dump_cassette(cassette.interactions)
    assert "    client: {name: claude-cli, release: 2.1.337}\n" in text
    assert parse_cassette(text, "d.yaml", "d").interactions[0].request == request
    # A release that YAML would read as a number is written quoted.
    odd = parse_cassette(CASSETTE.format(client="{name: x, release: '1.10'}"), "e.yaml", "e")
    assert "client: {name: x, release: '1.10'}" in dump_cassette(odd.interactions)
    # No release: just the name.
    bare = parse_cassette(CASSETTE.format(client="{name: my-tool}"), "f.yaml", "f")
    assert bare.interactions[0].request.client == Client("my-tool", None)
    assert "client: {name: my-tool}\n" in dump_cassette(bare.interactions)
    # Cassettes from before (the shipped ones) have none, and load.
    shipped = CassetteLibrary.load(CASSETTES)
    assert all(i.request.client is None for c in shipped.cassettes.values() for i in c.interactions)


@pytest.mark.parametrize(
    ("client", "problem"),
    [
        (
            "{name: x, release: 1.10}",
            "c.yaml:6: interactions[0].request.client.release: expected text",
        ),
        ("{release: '1'}", "c.yaml:6: interactions[0].request.client: missing field 'name'"),
        (
            "{name: x, version: '1'}",
            "c.yaml:6: interactions[0].request.client: unknown field 'version'",
        ),
        ("claude-cli", "c.yaml:6: interactions[0].request.client: expected a mapping"),
        ("{name: ''}", "interactions[0].request.client.name: expected the client's name"),
    ],
)
def test_a_bad_client_is_refused(client: str, problem: str) -> None:
    with pytest.raises(CassetteError) as caught:
        parse_cassette(CASSETTE.format(client=client), "c.yaml", "c")
    assert str(caught.value).startswith(problem) or problem in str(caught.value), caught.value


def test_the_index_cache_keeps_it(tmp_path: Path) -> None:
    root, cache = tmp_path / "deck", tmp_path / "cache"
    root.mkdir()
    (root / "c.yaml").write_text(CASSETTE.format(client="{name: claude-cli, release: 2.1.337}"))
    for parsed in (1, 0):  # a cold start, then one from the cache
        index = LibraryIndex(root, cache, EventStore())
        library = CassetteLibrary.load(root, index=index)
        index.save()
        assert index.parsed == parsed
        client = library.cassettes["c"].interactions[0].request.client
        assert client == Client("claude-cli", "2.1.337")


def claude(release: str) -> dict[str, str]:
    return {"User-Agent": f"claude-cli/{release} (external, cli)"}


def test_recorded_then_named_in_a_miss(
    make_server: MakeServer, tmp_path: Path, fake: FakeUpstream, tapedeck_log: LogLines
) -> None:
    with proxy(make_server, tmp_path, "once", fake) as server:
        with sdk(server, default_headers={"x-tapedeck-cassette": "old"}) as client:
            client.messages.create(**ask("hello there"))
        with sdk(server, default_headers={"x-tapedeck-cassette": "cli", **claude("2.1.300")}) as c:
            c.messages.create(**ask("hello again"))
    recorded = {p.stem: yaml.safe_load(p.read_text()) for p in tmp_path.glob("*.yaml")}
    sdk_client = {"name": "anthropic-python", "release": anthropic.__version__}
    assert recorded["old"]["interactions"][0]["request"]["client"] == sdk_client
    assert recorded["cli"]["interactions"][0]["request"]["client"] == {
        "name": "claude-cli",
        "release": "2.1.300",
    }

    test_id = "tests/test_client_identity.py::named in a miss"
    headers = {"x-tapedeck-test-id": test_id, "x-tapedeck-cassette": "cli"}
    with make_server(tmp_path, mode=Mode.NONE) as server:
        tapedeck_log.only(server)
        with sdk(server, default_headers={**headers, **claude("2.1.300")}) as same:
            assert same.messages.create(**ask("hello again")).content  # a hit: nothing to say
            with pytest.raises(anthropic.NotFoundError) as same_release:
                same.messages.create(**ask("hello once more"))
        with (
            sdk(server, default_headers={**headers, **claude("2.1.337")}) as newer,
            pytest.raises(anthropic.NotFoundError) as other_release,
        ):
            newer.messages.create(**ask("hello once more"))
        with (
            sdk(server, default_headers={**headers}) as plain,
            pytest.raises(anthropic.NotFoundError) as other_client,
        ):
            plain.messages.create(**ask("hello once more"))
        journal = httpx.get(
            f"{server.base_url}/_tapedeck/journal", params={"test_id": test_id}, timeout=10
        ).json()["entries"]
        lines = tapedeck_log.wait_for(r"POST /v1/messages 404", count=3)

    assert "recorded with" not in same_release.value.message
    note = "(recorded with claude-cli 2.1.300; this request is from claude-cli 2.1.337)"
    assert other_release.value.message.count(note) == 1
    assert re.search(
        r'messages\[0\]\.content: "hello once more" != "hello again" \(recorded',
        other_release.value.message,
    )
    assert (
        f"(recorded with claude-cli 2.1.300; this request is from anthropic-python "
        f"{anthropic.__version__})" in other_client.value.message
    )
    # The log says it too (names and releases are not the request's content).
    assert [note in line for line in lines] == [False, True, False]

    _, same_entry, other_entry, _ = journal
    assert other_entry["miss"]["client"] == {"name": "claude-cli", "release": "2.1.337"}
    assert other_entry["miss"]["recorded_client"] == {"name": "claude-cli", "release": "2.1.300"}
    assert same_entry["miss"]["client"] == same_entry["miss"]["recorded_client"]
    typed = JournalEntry.from_json(other_entry)
    assert typed.miss is not None
    assert str(typed.miss.recorded_client) == "claude-cli 2.1.300"
    assert typed.line().count(note) == 1
