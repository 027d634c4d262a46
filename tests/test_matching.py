"""Pure logic: request matching and its explanations, timing schedules, sequence positions."""

from __future__ import annotations

from typing import Any

import pytest

from tapedeck.cassette.differences import differences
from tapedeck.cassette.matching import MatchRules, RequestShape
from tapedeck.cassette.model import RecordedEvent, RecordedResponse, StreamEnd
from tapedeck.shaping.timing import SPEC_HELP, Timing, TimingKind
from tapedeck.source.sequences import SequenceEnd, Sequences

DEFAULT = MatchRules()
#: The streamed ``streaming/hello`` request: ``conftest.HELLO`` with ``"stream": True``.
HELLO_STREAM = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "stream": True,
    "messages": [{"role": "user", "content": "Hello"}],
}


def shape(
    body: Any = None,
    headers: list[tuple[str, str]] | None = None,
    *,
    method: str = "POST",
    path: str = "/v1/messages",
    query: list[tuple[str, str]] | None = None,
    rules: MatchRules = DEFAULT,
) -> RequestShape:
    return rules.shape(method, path, query or [], headers or [], body)


def diff(got: RequestShape, want: RequestShape) -> list[str]:
    return list(differences(got, want))


# --- MatchRules.shape -------------------------------------------------------------------


def test_key_order_is_irrelevant() -> None:
    reordered = {
        "messages": [{"content": "Hello", "role": "user"}],
        "stream": True,
        "max_tokens": 256,
        "model": "claude-sonnet-4-5",
    }

    assert shape(reordered).key == shape(HELLO_STREAM).key
    assert shape(reordered) == shape(HELLO_STREAM)
    assert diff(shape(reordered), shape(HELLO_STREAM)) == []


def test_query_order_is_irrelevant_but_values_count() -> None:
    a = shape(query=[("b", "2"), ("a", "1")], method="GET", path="/v1/models")
    b = shape(query=[("a", "1"), ("b", "2")], method="GET", path="/v1/models")
    c = shape(query=[("a", "1"), ("b", "3")], method="GET", path="/v1/models")

    assert a.key == b.key
    assert a.query == (("a", "1"), ("b", "2"))
    assert a.key != c.key


def test_method_is_upper_cased() -> None:
    assert shape(HELLO_STREAM, method="post").method == "POST"
    assert shape(HELLO_STREAM, method="post").key == shape(HELLO_STREAM).key


def test_metadata_user_id_is_ignored_by_default() -> None:
    with_user = shape({**HELLO_STREAM, "metadata": {"user_id": "user-1"}})
    other_user = shape({**HELLO_STREAM, "metadata": {"user_id": "user-2"}})

    assert with_user.key == other_user.key
    assert with_user.body == {k: v for k, v in HELLO_STREAM.items() if k != "stream"}


def test_metadata_holding_only_user_id_matches_no_metadata() -> None:
    assert shape({**HELLO_STREAM, "metadata": {"user_id": "x"}}).key == shape(HELLO_STREAM).key


def test_other_metadata_still_counts() -> None:
    kept = shape({**HELLO_STREAM, "metadata": {"user_id": "x", "team": "a"}})

    assert kept.body == {
        **{k: v for k, v in HELLO_STREAM.items() if k != "stream"},
        "metadata": {"team": "a"},
    }
    assert kept.key != shape(HELLO_STREAM).key
    # An empty metadata mapping sent by the client is not the same as none.
    assert shape({**HELLO_STREAM, "metadata": {}}).key != shape(HELLO_STREAM).key


def test_shape_does_not_modify_the_request_body() -> None:
    body = {**HELLO_STREAM, "metadata": {"user_id": "x"}}

    shape(body)

    assert body["metadata"] == {"user_id": "x"}


def test_ignore_body_with_star_and_index_paths() -> None:
    rules = MatchRules(ignore_body=("messages.*.cache_control", "tools.0", "system"))
    body = {
        "model": "m",
        "system": "you are terse",
        "messages": [
            {"role": "user", "content": "a", "cache_control": {"type": "ephemeral"}},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [{"name": "first"}, {"name": "second"}],
    }

    result = shape(body, rules=rules).body

    assert result == {
        "model": "m",
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
        "tools": [{"name": "second"}],
    }
    assert "metadata.user_id" not in rules.ignore_body  # configuring replaces the default


def test_ignore_body_star_over_mapping_keys_and_out_of_range_index() -> None:
    rules = MatchRules(ignore_body=("a.*.secret", "items.5", "missing.deep.path"))
    body = {"a": {"x": {"secret": 1, "k": 2}, "y": {"secret": 3}}, "items": [1, 2]}

    assert shape(body, rules=rules).body == {"a": {"x": {"k": 2}}, "items": [1, 2]}


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a."])
def test_invalid_ignore_body_paths_are_rejected(path: str) -> None:
    with pytest.raises(ValueError, match=r"invalid body field path") as info:
        MatchRules(ignore_body=(path,))
    assert repr(path) in str(info.value)


def test_anthropic_beta_is_compared_as_a_set() -> None:
    a = shape(HELLO_STREAM, [("anthropic-beta", "tools-2024-04-04,prompt-caching-2024-07-31")])
    b = shape(HELLO_STREAM, [("Anthropic-Beta", " prompt-caching-2024-07-31 , tools-2024-04-04,")])
    c = shape(HELLO_STREAM, [("anthropic-beta", "tools-2024-04-04")])

    assert a.headers == (("anthropic-beta", "prompt-caching-2024-07-31,tools-2024-04-04"),)
    assert a.key == b.key
    assert a.key != c.key
    assert a.key != shape(HELLO_STREAM).key


def test_unlisted_headers_do_not_take_part() -> None:
    noisy = shape(
        HELLO_STREAM,
        [
            ("authorization", "Bearer sk-1"),
            ("x-api-key", "sk-2"),
            ("anthropic-version", "2023-06-01"),
            ("user-agent", "Anthropic/Python 1.0"),
            ("x-stainless-retry-count", "2"),
            ("x-custom", "a"),
        ],
    )

    assert noisy.headers == ()
    assert noisy.key == shape(HELLO_STREAM).key


def test_configured_header_is_matched_and_names_are_lower_cased() -> None:
    rules = MatchRules(headers=("X-Custom", "anthropic-beta"))

    assert rules.headers == ("anthropic-beta", "x-custom")
    a = shape(HELLO_STREAM, [("X-CUSTOM", " one ")], rules=rules)
    assert a.headers == (("x-custom", "one"),)
    assert a.key != shape(HELLO_STREAM, [("x-custom", "two")], rules=rules).key


@pytest.mark.parametrize(
    "name",
    [
        "authorization",
        "Authorization",
        "x-api-key",
        "anthropic-version",
        "user-agent",
        "content-length",
        "x-stainless-retry-count",
        "X-Stainless-Lang",
        "x-tapedeck-test-id",
    ],
)
def test_headers_never_matched_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be matched on") as info:
        MatchRules(headers=(name,))
    assert str(info.value) == f"header {name!r} cannot be matched on: it varies between runs"


def test_numbers_and_booleans_are_not_confused() -> None:
    assert shape({"n": 1}).key != shape({"n": 1.0}).key
    assert shape({"n": True}).key != shape({"n": 1}).key
    assert shape({"n": "1"}).key != shape({"n": 1}).key


# --- differences ------------------------------------------------------------------------


def test_differences_format_for_a_changed_message() -> None:
    got = shape({**HELLO_STREAM, "messages": [{"role": "user", "content": "hi"}]})
    want = shape({**HELLO_STREAM, "messages": [{"role": "user", "content": "hello"}]})

    assert diff(got, want) == ['messages[0].content: "hi" != "hello"']


def test_differences_mark_absent_fields() -> None:
    assert diff(shape({"model": "m"}), shape({"model": "m", "system": "x"})) == [
        'system: (absent) != "x"'
    ]
    assert diff(shape({"model": "m", "top_k": 5}), shape({"model": "m"})) == [
        "top_k: 5 != (absent)"
    ]
    assert diff(shape({"l": [1, 2]}), shape({"l": [1]})) == ["l[1]: 2 != (absent)"]


def test_differences_nested_and_typed_values() -> None:
    got = shape({"a": {"b": [1, {"c": True}]}, "n": 1})
    want = shape({"a": {"b": [1, {"c": False}]}, "n": 1.0})

    assert diff(got, want) == ["a.b[1].c: true != false", "n: 1 != 1.0"]


def test_differences_whole_body() -> None:
    assert diff(shape(None), shape({"model": "m"})) == ['body: null != {"model": "m"}']


def test_differences_method_path_query() -> None:
    got = shape(method="GET", path="/v1/models", query=[("limit", "5")])
    want = shape(method="POST", path="/v1/messages", query=[("limit", "10")])

    assert diff(got, want) == [
        "method: GET != POST",
        'path: "/v1/models" != "/v1/messages"',
        'query: {"limit": "5"} != {"limit": "10"}',
    ]


def test_differences_headers() -> None:
    beta = "anthropic-beta"

    assert diff(shape(HELLO_STREAM, [(beta, "a,b")]), shape(HELLO_STREAM)) == [
        'header anthropic-beta: "a,b" != (absent)'
    ]
    assert diff(shape(HELLO_STREAM), shape(HELLO_STREAM, [(beta, "a")])) == [
        'header anthropic-beta: (absent) != "a"'
    ]
    assert diff(shape(HELLO_STREAM, [(beta, "a,c")]), shape(HELLO_STREAM, [(beta, "b,a")])) == [
        'header anthropic-beta: "a,c" != "a,b"'
    ]


def test_long_values_are_cut_short_or_shown_around_the_difference() -> None:
    # A long text against another text: around their first difference (tests/test_miss_window.py).
    assert diff(shape({"system": "x" * 100}), shape({"system": "short"})) == [
        'system at char 0: "' + "x" * 40 + '…" != "short"'
    ]
    # Anything else long is cut short.
    got = shape({"system": ["x" * 100]})
    want = shape({"system": "short"})

    (line,) = diff(got, want)

    shown = '["' + "x" * 55 + "..."
    assert line == f'system: {shown} != "short"'
    assert len(shown) == 60


def test_equal_shapes_have_no_differences() -> None:
    assert diff(shape(HELLO_STREAM), shape(dict(HELLO_STREAM))) == []


# --- timing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "value", "text"),
    [
        ("recorded", TimingKind.RECORDED, 1.0, "recorded"),
        ("instant", TimingKind.INSTANT, 1.0, "instant"),
        ("speed=2", TimingKind.SPEED, 2.0, "speed=2"),
        ("speed=0.5", TimingKind.SPEED, 0.5, "speed=0.5"),
        ("fixed=0", TimingKind.FIXED, 0.0, "fixed=0"),
        ("fixed=25", TimingKind.FIXED, 25.0, "fixed=25"),
        ("  Speed=3 ", TimingKind.SPEED, 3.0, "speed=3"),
        ("RECORDED", TimingKind.RECORDED, 1.0, "recorded"),
    ],
)
def test_timing_parse_valid(spec: str, kind: TimingKind, value: float, text: str) -> None:
    timing = Timing.parse(spec)

    assert timing == Timing(kind, value)
    assert str(timing) == text
    assert Timing.parse(str(timing)) == timing


@pytest.mark.parametrize(
    "spec",
    [
        "speed=0",
        "speed=-1",
        "speed=abc",
        "speed=",
        "speed",
        "speed=inf",
        "speed=nan",
        "fixed=-5",
        "fixed=",
        "fixed=nan",
        "nonsense",
        "",
        "recorded=1",
    ],
)
def test_timing_parse_invalid(spec: str) -> None:
    with pytest.raises(ValueError, match="invalid timing") as info:
        Timing.parse(spec)

    assert str(info.value) == f"invalid timing {spec!r}: expected {SPEC_HELP}"
    assert SPEC_HELP == "'recorded', 'speed=F' (F > 0), 'fixed=MS' (MS >= 0) or 'instant'"


def test_default_timing_is_recorded() -> None:
    assert Timing() == Timing.parse("recorded")
    assert Timing().waits
    assert not Timing.parse("instant").waits
    assert Timing.parse("fixed=0").waits


def stream(
    at_ms: list[float], time_to_headers_ms: float = 400.0, end_at_ms: float | None = None
) -> RecordedResponse:
    events = tuple(RecordedEvent("e", {}, t) for t in at_ms)
    return RecordedResponse(
        status=200,
        headers=(),
        time_to_headers_ms=time_to_headers_ms,
        events=events,
        end=StreamEnd.COMPLETE,
        end_at_ms=end_at_ms,
    )


def test_recorded_schedule() -> None:
    timing = Timing.parse("recorded")
    response = stream([0, 100, 250], end_at_ms=300)

    assert timing.headers_at(response) == pytest.approx(0.4)
    assert timing.event_times(response) == pytest.approx([0.4, 0.5, 0.65])
    assert timing.end_at(response, 0.65) == pytest.approx(0.7)


def test_recorded_end_never_before_the_last_event() -> None:
    timing = Timing.parse("recorded")

    assert timing.end_at(stream([0, 100], end_at_ms=50), 0.5) == pytest.approx(0.5)
    assert timing.end_at(stream([0, 100]), 0.5) == pytest.approx(0.5)  # no end_at_ms


def test_speed_schedule() -> None:
    timing = Timing.parse("speed=2")
    response = stream([0, 100, 250], end_at_ms=300)

    assert timing.headers_at(response) == pytest.approx(0.2)
    assert timing.event_times(response) == pytest.approx([0.2, 0.25, 0.325])
    assert timing.end_at(response, 0.325) == pytest.approx(0.35)


def test_slow_speed_schedule() -> None:
    timing = Timing.parse("speed=0.5")
    response = stream([0, 100], time_to_headers_ms=100)

    assert timing.headers_at(response) == pytest.approx(0.2)
    assert timing.event_times(response) == pytest.approx([0.2, 0.4])


def test_fixed_schedule() -> None:
    timing = Timing.parse("fixed=25")
    response = stream([0, 100, 250, 900], end_at_ms=5000)

    assert timing.headers_at(response) == 0.0
    assert timing.event_times(response) == pytest.approx([0.0, 0.025, 0.05, 0.075])
    assert timing.end_at(response, 0.075) == pytest.approx(0.075)


def test_instant_schedule() -> None:
    timing = Timing.parse("instant")
    response = stream([0, 100, 250], end_at_ms=5000)

    assert timing.headers_at(response) == 0.0
    assert timing.event_times(response) == [0.0, 0.0, 0.0]
    assert timing.end_at(response, 0.0) == 0.0


def test_schedule_of_a_json_response() -> None:
    response = RecordedResponse(status=529, headers=(), time_to_headers_ms=236, body={})

    assert Timing.parse("recorded").headers_at(response) == pytest.approx(0.236)
    assert Timing.parse("speed=4").headers_at(response) == pytest.approx(0.059)
    assert Timing.parse("fixed=10").headers_at(response) == 0.0
    assert Timing.parse("instant").headers_at(response) == 0.0
    assert Timing.parse("recorded").event_times(response) == []


# --- sequences --------------------------------------------------------------------------


def take(sequences: Sequences, test_id: str, cassette: str, key: str, length: int) -> int | None:
    """What the handler does per request: the index to serve, then move past it."""
    index = sequences.peek(test_id, cassette, key, length)
    sequences.advance(test_id, cassette, key, length)
    return index


def test_sequence_repeats_the_last_by_default() -> None:
    sequences = Sequences()

    assert sequences.end is SequenceEnd.REPEAT
    assert [take(sequences, "", "c", "k", 3) for _ in range(5)] == [0, 1, 2, 2, 2]


def test_sequence_end_error_gives_none_when_used_up() -> None:
    sequences = Sequences(SequenceEnd.ERROR)

    assert [take(sequences, "", "c", "k", 2) for _ in range(4)] == [0, 1, None, None]


def test_sequence_positions_are_per_test_id_cassette_and_request() -> None:
    sequences = Sequences()

    assert take(sequences, "t1", "c", "k", 3) == 0
    assert take(sequences, "t1", "c", "k", 3) == 1
    assert take(sequences, "t2", "c", "k", 3) == 0
    assert take(sequences, "t1", "other", "k", 3) == 0
    assert take(sequences, "t1", "c", "k2", 3) == 0
    assert take(sequences, "t1", "c", "k", 3) == 2


def test_sequence_reset_all() -> None:
    sequences = Sequences()
    take(sequences, "t1", "c", "k", 2)
    take(sequences, "t2", "c", "k", 2)
    take(sequences, "t2", "c", "k2", 2)

    assert sequences.reset() == 3
    assert take(sequences, "t1", "c", "k", 2) == 0
    assert take(sequences, "t2", "c", "k", 2) == 0
    assert sequences.reset() == 2
    assert sequences.reset() == 0


def test_sequence_reset_one_test_id() -> None:
    sequences = Sequences(SequenceEnd.ERROR)
    for _ in range(2):
        take(sequences, "t1", "c", "k", 2)
        take(sequences, "t2", "c", "k", 2)
    take(sequences, "t2", "c", "k2", 2)

    assert sequences.reset("t2") == 2
    assert take(sequences, "t2", "c", "k", 2) == 0
    assert take(sequences, "t1", "c", "k", 2) is None  # t1 was not rewound
    assert sequences.reset("nobody") == 0
