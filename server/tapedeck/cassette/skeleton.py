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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import CassetteError, YAMLSourceError
from . import fast_yaml
from .load import cassette_from
from .model import Cassette
from .yaml_source import load_yaml

#: The rest of a line after a key that a block collection follows.
_LINE_END = re.compile(r"[ \t]*(?:#[^\n]*)?\n")
#: Streams shorter than this are left whole: cutting them saves nothing.
MIN_CUT = 3


@dataclass(frozen=True, slots=True)
class Skeleton:
    """The text with streams cut, the marker used and each cut stream's item count."""

    text: str
    marker: str
    counts: tuple[int, ...]
    #: For each cut: the marker's line in ``text``, and the lines the cut removed (none when
    #: the cut kept every line).
    removed: tuple[tuple[int, int], ...] = ()

    def line_in_file(self, line: int) -> int:
        """The line in the whole text of ``line`` of the skeleton."""
        return line + sum(n for at, n in self.removed if at < line)


def _end_pattern(width: int) -> re.Pattern[str]:
    """The line break before the first line that ends a list whose items start at
    ``width``: any line but an item (``-`` then a space), a line indented deeper, a blank
    line or a comment. (A line with a tab in its indentation is not YAML: it ends the list
    here, and the parse of the rest says what is wrong.)"""
    found = _ENDS.get(width)
    if found is None:
        found = _ENDS[width] = re.compile(rf"\n(?! {{{width}}}(?:-[ \t\n]| )|[ \t]*(?:#|\n|$))")
    return found


_ENDS: dict[int, re.Pattern[str]] = {}


def cut(text: str, keep_lines: bool = False) -> Skeleton | None:
    """``text`` with the middle of each long block-style event list cut (see the module), or
    ``None`` when there is nothing to cut. The cut items become one line, or as many empty
    lines as they held with ``keep_lines`` (then every line keeps its number)."""
    cuts: list[tuple[int, int, int, int]] = []  # second item, last item, count, indentation
    done = 0
    for key, start in _events_keys(text):
        if start < done:
            continue
        # The items' indentation: the first non-blank line's, which must be an item.
        first = _FIRST_LINE.match(text, start)
        if first is None:
            continue
        width = len(first.group(1))
        if width < key or text[first.end(1)] != "-":
            continue
        begin = first.start(1)
        end_match = _end_pattern(width).search(text, begin)
        end = len(text) if end_match is None else end_match.start() + 1
        item = "\n" + " " * width + "-"
        # Inside the list every line as indented as an item is one (any other ends it).
        second = text.find(item, begin, end) + 1
        last = text.rfind(item, begin, end) + 1
        if second == 0 or last <= second:
            continue
        cuts.append((second, last, 2 + text.count(item, second - 1, last - 1), width))
        done = last
    if not cuts:
        return None
    n = 0
    while True:
        marker = f"tapedeck-cut-{n}"
        skeleton = _joined(text, cuts, marker, keep_lines)
        if skeleton.text.count(marker) == len(cuts):
            return skeleton
        n += 1


def _joined(text: str, cuts: list[tuple[int, int, int, int]], marker: str, keep: bool) -> Skeleton:
    pieces: list[str] = []
    removed: list[tuple[int, int]] = []
    done = 0
    line = 1
    for second, last, _, width in cuts:
        kept = text[done:second]
        pieces.append(kept)
        line += kept.count("\n")
        pieces.append(f"{' ' * width}- {marker}")
        lines = text.count("\n", second, last)
        if keep:
            pieces.append("\n" * lines)
        else:
            pieces.append("\n")
            removed.append((line, lines - 1))
        line += 1 if not keep else lines
        done = last
    pieces.append(text[done:])
    counts = tuple(count for _, _, count, _ in cuts)
    return Skeleton("".join(pieces), marker, counts, tuple(removed))


def _events_keys(text: str) -> Iterator[tuple[int, int]]:
    """Each line ``events:`` alone (a block list follows): its indentation, and where the
    next line starts. (``str.find`` skips through the text much faster than a pattern.)"""
    at = text.find("events:")
    while at != -1:
        line = text.rfind("\n", 0, at) + 1
        after = _LINE_END.match(text, at + 7)
        if after is not None and line > 0 and text.count(" ", line, at) == at - line:
            yield at - line, after.end()
        at = text.find("events:", at + 7)


_FIRST_LINE = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)*( *)\S")


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
