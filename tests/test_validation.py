"""Requests checked as the API checks them: each rule of docs/validation.md as a table of a
bad body (and what the API says) and a good one, first against ``check`` alone, then through
the real server with the official SDK; ``warn`` and ``off``; the proxy modes only warn;
every shipped cassette passes."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

import agent_loop
import agent_upstream
from agent_loop import MODEL, QUESTION, TOOLS, deck
from conftest import CASSETTES, LogLines, sdk
from tapedeck.config import Settings
from tapedeck.server.app import load_library
from tapedeck.source.conversations import Conversations, Thread
from tapedeck.validation import Validate, check

THINKING = {"type": "enabled", "budget_tokens": 2048}
ASKED = {
    "role": "assistant",
    "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
}
#: The stand-in agent's first thinking block (the recorded library knows it).
THOUGHT = {"type": "thinking", "thinking": "Step 1: what next?", "signature": "sig-1"}
ANSWERED = {
    "role": "user",
    "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"}],
}


#: The API version the newest SDKs send; the rules differ from 2023-06-01's.
NEW = "2026-10-21"
DOCUMENT = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
TEXT = {"type": "text", "text": "Paris is in France."}
CITED = {
    **TEXT,
    "citations": [{"type": "char_location", "cited_text": "Paris", "document_index": 0}],
}
SEARCH_RESULT = {"type": "search_result", "source": "https://x", "title": "x", "content": [CITED]}


def body(**fields: Any) -> dict[str, Any]:
    """A valid request with ``fields`` laid over it (``None`` removes a field)."""
    base: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": QUESTION}],
        "tools": TOOLS,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def loop(*messages: Any, **fields: Any) -> dict[str, Any]:
    return body(messages=[{"role": "user", "content": QUESTION}, *messages], **fields)


def thought(**change: Any) -> dict[str, Any]:
    return {**ASKED, "content": [{**THOUGHT, **change}, *ASKED["content"]]}


#: (rule, bad body, the API's message (a part), good body, anthropic-beta, anthropic-version)
RULES: list[tuple[Any, ...]] = [
    ("required", body(model=None), "model: Field required", body(), None),
    ("required", body(max_tokens=None), "max_tokens: Field required", body(), None),
    ("required", body(messages=None), "messages: Field required", body(), None),
    (
        "tool_result_follows",
        loop(ASKED, {"role": "user", "content": "and?"}),
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
        loop(ASKED, ANSWERED),
        None,
    ),
    (
        "tool_use_precedes",
        loop(
            ASKED,
            {
                "role": "user",
                "content": [
                    *ANSWERED["content"],
                    {"type": "tool_result", "tool_use_id": "toolu_9", "content": "?"},
                ],
            },
        ),
        "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9",
        loop(ASKED, ANSWERED),
        None,
    ),
    (
        "thinking_first",
        loop(ASKED, ANSWERED, thinking=THINKING),
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`",
        loop(thought(), ANSWERED, thinking=THINKING),
        None,
    ),
    (
        "thinking_first",
        loop(ASKED, ANSWERED, thinking=THINKING),
        "Expected `thinking` or `redacted_thinking`",
        loop(
            {**ASKED, "content": [{"type": "redacted_thinking", "data": "x"}, *ASKED["content"]]},
            ANSWERED,
            thinking=THINKING,
        ),
        None,
    ),
    (
        "thinking_unchanged",
        loop(thought(thinking="Step 1: anything goes."), ANSWERED, thinking=THINKING),
        "`thinking` or `redacted_thinking` blocks in the latest assistant message cannot be "
        "modified",
        loop(thought(), ANSWERED, thinking=THINKING),
        None,
    ),
    (
        "thinking_unchanged",
        loop(thought(signature="sig-forged"), ANSWERED, thinking=THINKING),
        "cannot be modified",
        loop(thought(), ANSWERED, thinking=THINKING),
        None,
    ),
    (
        "budget_tokens",
        body(thinking={"type": "enabled", "budget_tokens": 1000}),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        body(thinking={"type": "enabled", "budget_tokens": 1024}),
        None,
    ),
    (
        "budget_tokens",
        body(thinking={"type": "enabled", "budget_tokens": 4096}),
        "`max_tokens` must be greater than `thinking.budget_tokens`",
        body(thinking={"type": "enabled", "budget_tokens": 4095}),
        None,
    ),
    (
        "budget_tokens",
        body(thinking={"type": "enabled", "budget_tokens": 4096}),
        "`max_tokens` must be greater than `thinking.budget_tokens`",
        body(thinking={"type": "enabled", "budget_tokens": 8192}),
        "interleaved-thinking-2025-05-14",
    ),
    ("temperature", body(temperature=1.5), "temperature: range: 0..1", body(temperature=1), None),
    ("temperature", body(temperature=-0.1), "temperature: range: 0..1", body(temperature=0), None),
    (
        "sampling_removed",
        body(temperature=0.5),
        "temperature: not supported in API version 2026-10-21",
        body(),
        None,
        NEW,
    ),
    ("sampling_removed", body(top_k=5), "top_k: not supported", body(), None, NEW),
    ("sampling_removed", body(top_p=0.9), "top_p: not supported", body(), None, NEW),
    (
        "assistant_document",
        loop({"role": "assistant", "content": [DOCUMENT]}, {"role": "user", "content": "ok"}),
        "messages.1.content.0: `document` blocks are not allowed in `assistant` messages",
        loop({"role": "assistant", "content": "ok"}, {"role": "user", "content": [DOCUMENT]}),
        None,
        NEW,
    ),
    (
        "user_citations",
        body(messages=[{"role": "user", "content": [CITED]}]),
        "messages.0.content.0.citations: `text` blocks in `user` messages cannot carry",
        body(messages=[{"role": "user", "content": [{**CITED, "citations": []}]}]),
        None,
        NEW,
    ),
    (
        "user_citations",
        body(messages=[{"role": "user", "content": [SEARCH_RESULT]}]),
        "messages.0.content.0.content.0.citations",
        body(messages=[{"role": "user", "content": [{**SEARCH_RESULT, "content": [TEXT]}]}]),
        None,
        NEW,
    ),
    (
        "tool_choice",
        body(tool_choice={"type": "tool", "name": "get_stock"}),
        "tool_choice.name: tool 'get_stock' is not one of the tools",
        body(tool_choice={"type": "tool", "name": "get_time"}),
        None,
    ),
    (
        "thread_fields",
        body(thread={"type": "continue", "previous_message_id": "msg_1"}),
        "tools: not allowed when continuing a thread",
        body(thread={"type": "continue", "previous_message_id": "msg_1"}, tools=None),
        None,
    ),
]


class Knows:
    """A stand-in for the library's index: one served thinking block, one thread."""

    def thinking_served(self, signature: str, text: str) -> bool:
        return signature == THOUGHT["signature"] and text == THOUGHT["thinking"]

    def thread(self, message_id: str) -> Thread | None:
        if message_id != "msg_asked":
            return None
        return Thread(({"role": "user", "content": QUESTION}, ASKED), None, TOOLS)


def ids(case: tuple[Any, ...]) -> str:
    return case[0]


@pytest.mark.parametrize("case", RULES, ids=[ids(c) for c in RULES])
def test_each_rule_refuses_the_bad_and_passes_the_good(case: tuple[Any, ...]) -> None:
    rule, bad, message, good, betas, version = (*case, None)[:6]
    broken = check(bad, None, Knows(), version)
    assert [b.rule for b in broken][:1] == [rule]
    assert message in broken[0].message
    assert check(good, betas, Knows(), version) == ()


@pytest.mark.parametrize("version", [None, "2023-06-01"])
def test_the_2026_rules_apply_only_from_that_version(version: str | None) -> None:
    for case in RULES:
        if case[-1] == NEW and case[0] != "sampling_removed":
            assert check(case[1], None, Knows(), version) == (), case[0]
    assert check(body(temperature=0.5, top_k=5), None, Knows(), version) == ()


def continued(*messages: Any, previous: str = "msg_asked") -> dict[str, Any]:
    thread = {"type": "continue", "previous_message_id": previous}
    return body(messages=list(messages), tools=None, thread=thread)


@pytest.mark.parametrize(
    ("request_body", "rules"),
    [
        (continued(ANSWERED), []),
        (continued({"role": "user", "content": "and?"}), ["tool_result_follows"]),
        (
            continued(
                {"role": "user", "content": [{**ANSWERED["content"][0], "tool_use_id": "toolu_9"}]}
            ),
            ["tool_result_follows", "tool_use_precedes"],
        ),
        # A thread tapedeck does not know: the first message's results are taken on trust.
        (continued(ANSWERED, previous="msg_unknown"), []),
        (
            continued(ANSWERED, previous="msg_asked")
            | {"tool_choice": {"type": "tool", "name": "x"}},
            ["tool_choice"],
        ),
    ],
    ids=["answered", "unanswered", "wrong-id", "unknown-thread", "tool-choice-from-thread"],
)
def test_a_thread_continuation_is_checked_on_the_whole_conversation(
    request_body: dict[str, Any], rules: list[str]
) -> None:
    assert [b.rule for b in check(request_body, None, Knows())] == rules


def test_non_message_bodies_are_not_checked() -> None:
    assert check([1, 2], None, Knows()) == ()
    assert check({"model": MODEL, "max_tokens": 5, "messages": "hi"}, None, Knows()) == ()


def test_every_shipped_cassette_passes_validation() -> None:
    library = load_library(Settings(cassettes=CASSETTES))
    known = Conversations(library)
    checked = 0
    for cassette in library.cassettes.values():
        for interaction in cassette.interactions:
            if interaction.request.path.split("?")[0] != "/v1/messages":
                continue
            assert check(interaction.request.body, None, known) == (), interaction.line
            checked += 1
    assert checked >= 8  # the shipped message cassettes, the two-step loop among them


# Through the real server: a tapedeck over cassettes recorded from the stand-in agent.


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The thinking loop, recorded once."""
    root = tmp_path_factory.mktemp("validation")
    with deck(root, "new_episodes") as server, agent_loop.client_for(server) as client:
        agent_loop.hand_loop(client, thinking=THINKING)
    return root


@pytest.fixture(scope="module")
def threaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK's tool runner (over a message thread, its default), recorded once."""
    root = tmp_path_factory.mktemp("validation-threaded")
    with deck(root, "new_episodes") as server, agent_loop.client_for(server) as client:
        agent_loop.sdk_runner(client)
    return root


def served_thinking_step(root: Path) -> dict[str, Any]:
    """The recorded second step of the thinking loop (its request, as sent)."""
    import yaml

    doc = yaml.safe_load((root / "agents/loop.yaml").read_text(encoding="utf-8"))
    for interaction in doc["interactions"]:
        sent = interaction["request"]["body"]
        if sent.get("thinking") and len(sent["messages"]) == 3:
            return copy.deepcopy(sent)
    raise AssertionError("no second thinking step recorded")


def post(server: Any, request_body: dict[str, Any], **headers: str) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=10) as h:
        return h.post(
            "/v1/messages",
            json=request_body,
            headers={"anthropic-version": "2023-06-01", "x-api-key": "k", **headers},
        )


@pytest.mark.parametrize("case", RULES, ids=[ids(c) for c in RULES])
def test_each_rule_through_the_server(recorded: Path, case: tuple[Any, ...]) -> None:
    """The bad request gets the API's 400 before matching (none of these is recorded); the
    good one passes validation and gets the miss that says nothing matches."""
    _, bad, message, good, betas, version = (*case, None)[:6]
    extra = {"anthropic-beta": betas} if betas else {}
    sent = {"anthropic-version": version} if version else {}
    with deck(recorded, "none") as server:
        refused = post(server, bad, **sent)
        passed = post(server, good, **extra, **sent)
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    assert refused.headers["request-id"].startswith("req_")
    assert passed.status_code == 404, passed.text
    assert "no cassette matches" in passed.json()["error"]["message"]


def test_the_sdk_raises_bad_request_with_the_api_message(recorded: Path) -> None:
    step = served_thinking_step(recorded)
    with deck(recorded, "none") as server, sdk(server) as client:
        # The recorded step, as the loop sent it, replays.
        answer = client.messages.create(**step)
        assert answer.stop_reason == "tool_use"
        # Its thinking block dropped: refused before matching, as the API refuses it.
        dropped = copy.deepcopy(step)
        dropped["messages"][1]["content"] = dropped["messages"][1]["content"][1:]
        with pytest.raises(anthropic.BadRequestError) as refused:
            client.messages.create(**dropped)
        assert refused.value.status_code == 400
        assert "Expected `thinking` or `redacted_thinking`" in refused.value.message
        # Its thinking text edited: the signature no longer fits what was served.
        edited = copy.deepcopy(step)
        edited["messages"][1]["content"][0]["thinking"] += " (edited)"
        with pytest.raises(anthropic.BadRequestError, match="cannot be modified"):
            client.messages.create(**edited)


def test_a_threaded_continuation_is_checked_on_the_recorded_thread(threaded: Path) -> None:
    import yaml

    doc = yaml.safe_load((threaded / "agents/loop.yaml").read_text(encoding="utf-8"))
    steps = [i["request"]["body"] for i in doc["interactions"] if "thread" in i["request"]["body"]]
    # The tool runner of every anthropic release the suite runs with (2.17.0 or later, the
    # dev group of pyproject.toml) sends its turns over a thread by default.
    assert [s["thread"]["type"] for s in steps] == ["create", "continue", "continue"], steps
    second = copy.deepcopy(next(s for s in steps if s["thread"]["type"] == "continue"))
    betas = ["message-threads-2026-08-12"]
    with deck(threaded, "none") as server, sdk(server) as client:
        assert client.beta.messages.create(**second, betas=betas).stop_reason == "tool_use"
        wrong = copy.deepcopy(second)
        wrong["messages"][-1]["content"][0]["tool_use_id"] = "toolu_nobody"
        with pytest.raises(anthropic.BadRequestError, match="ids were found without `tool_result`"):
            client.beta.messages.create(**wrong, betas=betas)
        with pytest.raises(anthropic.BadRequestError, match="tools: not allowed"):
            client.beta.messages.create(**second, tools=TOOLS, betas=betas)


@pytest.mark.parametrize("validate", ["warn", "off"])
def test_warn_answers_and_logs_off_does_neither(
    recorded: Path, validate: str, tapedeck_log: LogLines
) -> None:
    step = served_thinking_step(recorded)
    step["temperature"] = 3
    with deck(recorded, "none", validate=Validate(validate)) as server:
        tapedeck_log.only(server)
        answered = post(server, step)
    assert answered.status_code == 404  # a miss: temperature is part of the match
    warned = tapedeck_log.matching("breaks the API's rules")
    if validate == "warn":
        assert len(warned) == 1
        assert "(temperature)" in warned[0]
    else:
        assert warned == []


def test_proxy_modes_let_the_upstream_judge(recorded: Path, tapedeck_log: LogLines) -> None:
    bad = body(temperature=3)
    with deck(recorded, "passthrough") as server:
        tapedeck_log.only(server)
        answered = post(server, bad)
    assert answered.status_code == 200, answered.text
    assert agent_upstream.CALLS[-1]["temperature"] == 3
    assert len(tapedeck_log.matching(r"breaks the API's rules \(temperature\)")) == 1


def test_recording_modes_refuse_a_broken_request_a_cassette_answers(
    recorded: Path, tmp_path: Path
) -> None:
    """In new_episodes what a cassette answers is judged by tapedeck (a field left out of
    matching can still break a rule); what goes upstream is judged there."""
    shutil.copytree(recorded, tmp_path, dirs_exist_ok=True)
    step = served_thinking_step(tmp_path)
    step["temperature"] = 3
    with deck(tmp_path, "new_episodes", ignore_body_fields=("temperature",)) as server:
        refused = post(server, step)
        assert agent_upstream.CALLS == []
        forwarded = post(server, body(temperature=3))
    assert refused.status_code == 400
    assert "temperature: range" in refused.text
    assert forwarded.status_code == 200
    assert len(agent_upstream.CALLS) == 1


def test_the_newest_sdk_is_held_to_its_api_version(recorded: Path) -> None:
    """The SDK sends its own anthropic-version; from 2026-10-21 a sampling parameter (sent
    with extra_body, the SDK no longer takes it) is refused as the API refuses it."""
    with deck(recorded, "none") as server, sdk(server) as client:
        version = client.default_headers.get("anthropic-version")
        request = body(messages=[{"role": "user", "content": QUESTION}])
        if str(version) >= "2026-10-21":
            with pytest.raises(anthropic.BadRequestError, match="temperature: not supported"):
                client.messages.create(**request, extra_body={"temperature": 0.2})
        else:
            with pytest.raises(anthropic.BadRequestError, match=r"temperature: range: 0\.\.1"):
                client.messages.create(**request, extra_body={"temperature": 1.5})


ADAPTIVE = {"type": "adaptive"}


def test_adaptive_thinking_may_continue_a_tool_loop_without_thinking() -> None:
    """Under adaptive thinking the model may skip thinking on a turn: the API accepts the
    tool loop's continuation without a thinking block (with ``enabled`` it refuses it), and
    a block it did think must still come back unchanged."""
    assert check(loop(ASKED, ANSWERED, thinking=ADAPTIVE), None, Knows()) == ()
    assert [b.rule for b in check(loop(ASKED, ANSWERED, thinking=THINKING), None, Knows())] == [
        "thinking_first"
    ]
    forged = loop(thought(signature="sig-forged"), ANSWERED, thinking=ADAPTIVE)
    assert [b.rule for b in check(forged, None, Knows())] == ["thinking_unchanged"]


def test_a_request_the_api_answered_in_a_recording_is_never_refused(
    tmp_path: Path, tapedeck_log: LogLines
) -> None:
    """The stand-in (the API) answers a request that breaks a rule (temperature 3); once
    recorded, a replay answers it too, saying why, though ``validate`` is ``error``. The same
    request in a hand-written cassette (no ``recorded_at``: the API never saw it) is still
    refused, and so is one that breaks a rule the recorded request kept."""
    import yaml

    bad = body(temperature=3)
    with deck(tmp_path, "once") as server:
        recorded = post(server, bad)
    assert recorded.status_code == 200, recorded.text
    (written,) = tmp_path.rglob("*.yaml")
    doc = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert doc["interactions"][0].get("recorded_at"), doc["interactions"][0].keys()

    with deck(tmp_path, "none") as server:
        tapedeck_log.only(server)
        replayed = post(server, bad)
        also_broken = post(server, body(temperature=3, max_tokens=None))
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == recorded.json()
    said = tapedeck_log.matching(r"breaks the API's rules \(temperature\); a recording shows")
    assert len(said) == 1, tapedeck_log.lines()
    assert also_broken.status_code == 400  # `required` the recorded request did not break

    for interaction in doc["interactions"]:
        interaction.pop("recorded_at")
    written.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with deck(tmp_path, "none") as server:
        by_hand = post(server, bad)
    assert by_hand.status_code == 400, by_hand.text
    assert "temperature" in by_hand.json()["error"]["message"]
