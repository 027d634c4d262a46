"""The fast YAML path: taken only where it reads a text as the reference loader does.

A property test throws random YAML at both loaders: whenever the guard trusts a text, the
two must agree exactly (types included). Table tests pin the forms the two read differently
and the interaction lines the fast path finds without the reference loader."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CASSETTES
from tapedeck.cassette import fast_yaml
from tapedeck.cassette.index import LibraryIndex
from tapedeck.cassette.index_entry import entry_of
from tapedeck.cassette.lazy_events import EventStore
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import load_cassette, parse_cassette
from tapedeck.cassette.yaml_source import load_yaml
from tapedeck.errors import YAMLSourceError

CONTEXTS = [
    "a: TOK\n", "- TOK\n", "a: [TOK, 1]\n", "a: {k: TOK}\n", "TOK: 1\n", "a: TOK # c\n",
    "a:\n  - TOK\n", "a: x TOK\n", 'a: "xTOK"\n', "a: 'qTOK'\n", '- "TOK" TOK\n',
    'a: ["TOK", TOK]\n', "a: 'it''s TOK'\n", 'a: "TOK\nb: TOK"\nc: TOK\n', "a: b'TOK c: TOK\n",
    "a: TOK\nb: 'TOK'\n", "a:\n  b: TOK\n  c: [TOK]\n",
]  # fmt: skip
ALPHABET = "0123456789+-._:eExXoObBfFaAnNdDtThs ~<=!&*#'\"[]{},\\\n"


def plain(value: Any) -> Any:
    """A value with its types spelled out (a LineDict is a dict, 1 is not 1.0 or True)."""
    if isinstance(value, dict):
        return {(type(k).__name__, repr(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return (type(value).__name__, repr(value))


def reference(text: str) -> Any:
    try:
        return plain(load_yaml(text))
    except YAMLSourceError:
        return "refused"


#: Contexts where the guard refuses nearly every text (a quote it cannot pair, a quoted
#: line break): they hold the guard to its refusals more than the loaders to agreement.
RARELY_TRUSTED = {'- "TOK" TOK\n', 'a: "TOK\nb: TOK"\nc: TOK\n', "a: b'TOK c: TOK\n"}
EXAMPLES = 3000


def test_what_the_fast_path_reads_the_reference_reads_alike() -> None:
    """Whenever the guard trusts a random text, both loaders read it alike. The property
    holds trivially for texts the fast path never reads, so the texts it did read are
    counted: a third of them at least (about half are, in practice), and a tenth at least
    of each context's but those in :data:`RARELY_TRUSTED`."""
    tried: Counter[str] = Counter()
    taken: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(
        st.sampled_from(CONTEXTS),
        st.lists(st.text(ALPHABET, min_size=1, max_size=7), min_size=1, max_size=3),
    )
    def alike(context: str, tokens: list[str]) -> None:
        text = context
        for token in tokens:
            text = text.replace("TOK", token, 1)
        text = text.replace("TOK", tokens[0])
        fast = fast_yaml.load(text)
        tried[context] += 1
        if fast is not None:
            taken[context] += 1
            assert plain(fast) == reference(text), text

    alike()
    assert sum(tried.values()) >= EXAMPLES
    assert sum(taken.values()) >= sum(tried.values()) / 3, (taken, tried)
    for context in CONTEXTS:
        if context not in RARELY_TRUSTED:
            assert taken[context] >= tried[context] / 10, (context, taken, tried)


@pytest.mark.parametrize(
    "text",
    [
        "a: 012\n", "a: 0o17\n", "a: 0X1F\n", "a: 12:30\n", "a: 1e3\n", "a: 1.98E2\n",
        "a: -.5\n", "a: _5\n", "a: .NAn\n", "a: =\n", "a: [=, 1]\n", "a: &x 1\nb: *x\n",
        "a: !!str 1\n", "<<: {b: 1}\n", "a: 1\n---\nb: 2\n", "a: [:, 1]\n", "[a]: 1\n",
        "a: {k: t,[t]}\n", 'a: ["x":y]\n', "? a\n: 1\n",
    ],
)  # fmt: skip
def test_forms_the_loaders_read_differently_go_the_reference_way(text: str) -> None:
    assert fast_yaml.load(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "a: 12\nb: -0.5\nc: 1.5e-05\ne: true\nf: null\ng: a text\n",
        "a: 'x: *y &z !w = 12:30'\n",  # all of it inside quotes
        'a: "{\\"location\\": \\"Paris\\"}"\n',  # a JSON fragment, as tool input streams
    ],
)
def test_ordinary_cassette_text_goes_the_fast_way(text: str) -> None:
    assert fast_yaml.load(text) == load_yaml(text)


@pytest.mark.parametrize("path", sorted(CASSETTES.rglob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_cassette_reads_the_same_either_way(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert fast_yaml.trusted(text)
    fast = load_cassette(path, "x")
    slow = parse_cassette_slowly(text, str(path))
    assert fast == slow


def parse_cassette_slowly(text: str, file: str) -> Any:
    saved = fast_yaml.AVAILABLE
    fast_yaml.AVAILABLE = False
    try:
        return parse_cassette(text, file, "x")
    finally:
        fast_yaml.AVAILABLE = saved


@pytest.mark.parametrize(
    ("text", "count", "lines"),
    [
        ("version: 1\ninteractions:\n- request: {}\n  response: {}\n- request: {}\n", 2, [3, 5]),
        (
            "version: 1\ninteractions:\n  - request:\n      body:\n      - 1\n  - request: {}\n",
            2,
            [3, 6],
        ),
        ("version: 1\ninteractions: [{request: {}}]\n", 1, None),  # flow style: slow way
        ("version: 1\ninteractions:\n- a: 1\nnormalize:\n- b\n", 1, None),  # count is off
        ("version: 1\r\ninteractions:\r\n- request: {}\r\n- request: {}", 2, [3, 4]),  # CRLF
        ("d: 'interactions:'\ninteractions: # x\n- a: 1\n  b: |\n    - c\n- a: 2", 2, [3, 6]),
        ("d: x\n interactions:\n- a: 1\n", 1, None),  # not at a line's start
    ],
)  # fmt: skip
def test_interaction_lines(text: str, count: int, lines: list[int] | None) -> None:
    assert fast_yaml.interaction_lines(text, count) == lines


def test_lines_and_errors_are_the_reference_loaders(tmp_path: Path) -> None:
    good = (CASSETTES / "agents/weather-loop.yaml").read_text(encoding="utf-8")
    cassette = parse_cassette(good, "f", "n")
    assert [i.line for i in cassette.interactions] == [
        i.line for i in parse_cassette_slowly(good, "f").interactions
    ]
    broken = good.replace("status: 200", "status: ok", 1)
    with pytest.raises(Exception, match=r"^f:\d+: interactions\[0\]\.response\.status"):
        parse_cassette(broken, "f", "n")
    assert dataclasses.is_dataclass(cassette)


def test_a_colon_inside_a_flow_mapping_goes_the_reference_way() -> None:
    # PyYAML: "found unexpected ':'"; YAML 1.2 parsers read "index:?" as a key.
    text = "data: {type: x, index:? 0}\n"
    assert not fast_yaml.trusted(text)
    assert fast_yaml.trusted("data: {type: x, index: 0}\n")
    assert fast_yaml.trusted("data: {type: x, text: 'a:b'}\n")  # quoted: the same either way


def test_a_tab_outside_quotes_goes_the_reference_way() -> None:
    assert not fast_yaml.trusted("\t# a comment\nversion: 1\n")
    assert fast_yaml.trusted('text: "a\\tb"\n')


@pytest.mark.parametrize("brk", ["\x85", "\u2028", "\u2029", "\x1b"])
def test_yaml_1_1_line_breaks_and_control_characters_go_the_reference_way(brk: str) -> None:
    assert not fast_yaml.trusted(f'description: "a{brk}b"\nversion: 1\n')


_WITHOUT_YAML_RS = """
import json, sys
sys.modules["yaml_rs"] = None  # import yaml_rs now raises ImportError, as when not installed
from pathlib import Path
from tapedeck.cassette import fast_yaml
from tapedeck.cassette.index import LibraryIndex
from tapedeck.cassette.index_entry import entry_of
from tapedeck.cassette.lazy_events import EventStore
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.index import LibraryIndex
from tapedeck.cassette.index_entry import entry_of
from tapedeck.cassette.lazy_events import EventStore
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import load_cassette
assert not fast_yaml.AVAILABLE
root = Path(sys.argv[1])
out = {}
for path in sorted(root.rglob("*.yaml")):
    out[str(path)] = entry_of(load_cassette(path, "x"), (0, 0))
library = CassetteLibrary.load(root, index=LibraryIndex(root, None, EventStore()))
out["served"] = sorted(library.cassettes)
print(json.dumps(out, sort_keys=True))
"""


def test_without_yaml_rs_every_cassette_reads_the_same(tmp_path: Path) -> None:
    """``yaml-rs`` is an optional extra (``tapedeck-mock[fast-yaml]``): without it every
    cassette is read by the reference loader, and reads the same — whole, and as start-up
    reads it (in a process where ``import yaml_rs`` fails)."""
    assert fast_yaml.AVAILABLE  # this side is the fast one
    src = Path(fast_yaml.__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_YAML_RS, str(CASSETTES)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    slow = json.loads(done.stdout)
    for path in sorted(CASSETTES.rglob("*.yaml")):
        fast = json.loads(json.dumps(entry_of(load_cassette(path, "x"), (0, 0)), sort_keys=True))
        assert slow[str(path)] == fast, path
    library = CassetteLibrary.load(CASSETTES, index=LibraryIndex(CASSETTES, None, EventStore()))
    assert slow["served"] == sorted(library.cassettes)


@pytest.mark.parametrize(
    "risky",
    [" :", "\t:", "\n:", "[:", "{:", ",:", ":,", ":]", ":}", "\n---", "\n...", "<<", "\n[", "\n {"],
)
def test_each_risky_sequence_outside_quotes_goes_the_reference_way(risky: str) -> None:
    """The guard's searches find each sequence the loaders may read differently, wherever it
    is (checked on the guard itself: most of these texts are not even YAML)."""
    assert fast_yaml.trusted("a: xy\nb: z\n")
    assert not fast_yaml.trusted(f"a: x{risky}y\nb: z\n")
    assert not fast_yaml.trusted(f"{risky.lstrip()}a: xy\n")


_LINE = st.text(alphabet=st.sampled_from(list("ab -:#'\"=!&*<[]{},.012_eE+\t\r")), max_size=12)


@given(st.lists(st.lists(_LINE, max_size=6), min_size=1, max_size=4))
@settings(max_examples=500, deadline=None)
def test_the_guard_remembering_clean_lines_says_what_a_whole_look_says(
    texts: list[list[str]],
) -> None:
    """The first look goes line by line, so remembering the lines it found clean changes no
    answer: texts that share lines, looked at one after the other."""
    fast_yaml._CLEAN_LINES.clear()
    for lines in texts:
        data = ("\n" + "\n".join(lines)).encode()
        assert fast_yaml._clean_lines(data) == fast_yaml._clean(data), lines
        # Each line alone, then the text again from what is remembered.
        for line in lines:
            fast_yaml._clean_lines(f"\n{line}\n".encode())
        assert fast_yaml._clean_lines(data) == fast_yaml._clean(data), lines
