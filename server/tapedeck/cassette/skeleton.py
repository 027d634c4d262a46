"""A cassette's text without the middle of its event streams: what start-up parses.

A stream's events are most of a cassette's bytes and are not needed to answer "which
cassette matches". :func:`cut` finds each block-style ``events:`` list of three or more
items by indentation alone (no YAML is parsed) and keeps its first and last items; the
items between become one *marker* item (a plain scalar found nowhere else in what is
kept), on one line (the lines after it are renumbered: :meth:`Skeleton.line_in_file`), or
followed by as many empty lines as the items held, for the reference loader. The caller
parses the skeleton and accepts it only if every marker it put in is found as the second
item of an interaction's ``response.events`` and nowhere else (:func:`take_markers`); any
other outcome means the scan misread the layout, and the whole text is parsed instead.

What the cut-out items hold — their YAML, their fields, the time order and the event order
an SDK can assemble — is checked when they are first read (:mod:`.lazy_events`), and by
``tapedeck lint``, which always parses the whole text. The count is of item lines: a quoted
text continued on a line that looks like an item adds one, which the first read corrects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import CassetteError, YAMLSourceError
from . import fast_yaml
from .load import cassette_from
from .model import Cassette
from .yaml_source import load_yaml

#: The rest of a line after a key that a block collection follows.
_LINE_END = re.compile(r"[ \t]*(?:#[^\r\n]*)?\r?\n")
#: Streams shorter than this are left whole: cutting them saves nothing.
MIN_CUT = 3


@dataclass(frozen=True, slots=True)
class Skeleton:
    """The text with streams cut, the marker used and each cut stream's item count."""

    text: str
    marker: str
    counts: tuple[int, ...]
    #: For each cut that put the marker on one line: the marker's line in ``text``, and
    #: where the cut-out items were in ``source`` (their lines are counted only when a line
    #: after them is asked for).
    removed: tuple[tuple[int, int, int], ...] = ()
    source: str = ""

    def line_in_file(self, line: int) -> int:
        """The line in the whole text of ``line`` of the skeleton."""
        return line + sum(
            self.source.count("\n", start, end) - 1 for at, start, end in self.removed if at < line
        )


def _end_pattern(width: int) -> re.Pattern[str]:
    """The line break before the first line that ends a list whose items start at
    ``width``: any line but an item (``-`` then a space), a line indented deeper, a blank
    line or a comment. (A line with a tab in its indentation is not YAML: it ends the list
    here, and the parse of the rest says what is wrong.) The indentations are written out
    as literal spaces: the engine then tests each line start in a few steps."""
    found = _ENDS.get(width)
    if found is None:
        deeper, item = " " * (width + 1), " " * width + "-"
        found = _ENDS[width] = re.compile(rf"\n(?!{deeper}|{item}[ \t\r\n]|[ \t]*(?:#|\r?\n|$))")
    return found


_ENDS: dict[int, re.Pattern[str]] = {}


def cut(text: str, keep_lines: bool = False) -> Skeleton | None:
    """``text`` with the middle of each long block-style event list cut (see the module), or
    ``None`` when there is nothing to cut. The cut items become one line, or as many empty
    lines as they held with ``keep_lines`` (then every line keeps its number)."""
    cuts: list[tuple[int, int, int, int]] = []  # second item, last item, count, indentation
    at = text.find("events:")
    while at != -1:
        found = _list_after(text, at)
        if found is not None:
            cuts.append(found)
        # The next key is looked for after the list's last item: not through its middle.
        at = text.find("events:", at + 7 if found is None else found[1])
    if not cuts:
        return None
    n = 0
    while True:
        marker = f"tapedeck-cut-{n}"
        skeleton = _joined(text, cuts, marker, keep_lines)
        if skeleton.text.count(marker) == len(cuts):
            return skeleton
        n += 1


def _list_after(text: str, at: int) -> tuple[int, int, int, int] | None:
    """For ``events:`` at ``at``, when it is a key alone on its line (only spaces before it)
    followed by a block list of three or more items: where its second and last items start,
    its item count and the items' indentation."""
    line = text.rfind("\n", 0, at) + 1
    if line == 0 or text.count(" ", line, at) != at - line:
        return None
    after = _LINE_END.match(text, at + 7)
    if after is None:
        return None
    # The items' indentation: the first non-blank line's, which must be an item.
    first = _FIRST_LINE.match(text, after.end())
    if first is None:
        return None
    width = len(first.group(1))
    if width < at - line or text[first.end(1)] != "-":
        return None
    begin = first.start(1)
    end_match = _end_pattern(width).search(text, begin)
    end = len(text) if end_match is None else end_match.start() + 1
    item = "\n" + " " * width + "-"
    # Inside the list every line as indented as an item is one (any other ends it).
    second = text.find(item, begin, end) + 1
    last = text.rfind(item, begin, end) + 1
    if second == 0 or last <= second:
        return None
    return second, last, 2 + text.count(item, second - 1, last - 1), width


def _joined(text: str, cuts: list[tuple[int, int, int, int]], marker: str, keep: bool) -> Skeleton:
    pieces: list[str] = []
    removed: list[tuple[int, int, int]] = []
    done = 0
    line = 1
    for second, last, _, width in cuts:
        kept = text[done:second]
        pieces.append(kept)
        line += kept.count("\n")
        pieces.append(f"{' ' * width}- {marker}")
        if keep:
            lines = text.count("\n", second, last)
            pieces.append("\n" * lines)
            line += lines
        else:
            pieces.append("\n")
            removed.append((line, second, last))
            line += 1
        done = last
    pieces.append(text[done:])
    counts = tuple(count for _, _, count, _ in cuts)
    return Skeleton("".join(pieces), marker, counts, tuple(removed), text if removed else "")


_FIRST_LINE = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\r?\n)*( *)\S")


def take_markers(document: Any, skeleton: Skeleton) -> dict[int, int] | None:
    """Remove the markers from the parsed skeleton ``document``, in place; the number of
    events of each cut interaction (by position), or ``None`` when the markers are not
    exactly where the cut meant them (then the skeleton must not be used)."""
    if not isinstance(document, dict):
        return None
    interactions = document.get("interactions")
    if not isinstance(interactions, list):
        return None
    counts: dict[int, int] = {}
    left = list(skeleton.counts)
    for i, item in enumerate(interactions):
        response = item.get("response") if isinstance(item, dict) else None
        events = response.get("events") if isinstance(response, dict) else None
        if isinstance(events, list) and len(events) > 1 and events[1] == skeleton.marker:
            if len(events) != 3 or not left:
                return None
            del events[1]
            counts[i] = left.pop(0)
    return counts if not left else None


def parse_start(text: str, file: str, name: str) -> tuple[Cassette, dict[int, int]] | None:
    """What start-up reads of a cassette: its text without the middle of its streams
    (:mod:`.skeleton`), checked as :func:`parse_cassette` checks a whole text except for
    the cut-out events; with, for each cut interaction (by position), its event count.
    ``None`` when nothing was cut or the skeleton cannot be trusted or has a problem: the
    caller then parses the whole text, which reports any problem with its line."""
    skeleton = cut(text)
    if skeleton is None:
        return None
    document = fast_yaml.load(skeleton.text)
    lines = None
    if isinstance(document, dict) and isinstance(document.get("interactions"), list):
        lines = fast_yaml.interaction_lines(skeleton.text, len(document["interactions"]))
    if lines is not None:
        lines = [skeleton.line_in_file(line) for line in lines]
    else:  # the reference loader, which takes lines from the text: keep them all
        skeleton = cut(text, keep_lines=True)
        try:
            document = load_yaml(skeleton.text) if skeleton is not None else None
        except YAMLSourceError:
            return None
        if skeleton is None:
            return None
    counts = take_markers(document, skeleton)
    if counts is None:
        return None
    try:
        cassette = cassette_from(document, file, name, lines, len(text.encode()), False)
    except CassetteError:
        return None
    return cassette, counts
