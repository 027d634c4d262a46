"""Presets: named bundles of matching rules for one client, shipped as YAML files.

A client such as Claude Code puts its working directory, the date and its git state into
every request; a recording made on one machine would not match on another without rules
that rewrite those values. A preset is those rules, written once, in
``tapedeck/config/presets/<name>.yaml`` (docs/clients.md#presets describes the format)::

    description: what the preset is for (one line)
    normalize:          # rules as the normalize setting takes them; path may be a list
      - {path: [system, messages], pattern: "...", replace: "<cwd>"}
    ignore_body_fields: [metadata.user_id]    # added to the setting's fields
    ignore_headers: [anthropic-beta]          # left out of match_headers
    miss_status: 400                          # unless the user's settings say otherwise

Settings name presets with ``presets`` (``--preset``, ``TAPEDECK_PRESETS``). Their rules
combine with the user's own: normalize rules of the presets (in the order named) run before
the user's, what any of them ignores is ignored (fields and headers), and for
``miss_status`` the user's setting wins, else the last preset that sets it.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..cassette.matching import MatchRules
from ..cassette.normalize import Normalize
from ..cassette.yaml_source import LineDict, load_yaml
from ..errors import YAMLSourceError

#: The folder inside the package that holds the presets, one ``<name>.yaml`` each.
FOLDER = "presets"
_KEYS = ("description", "normalize", "ignore_body_fields", "ignore_headers", "miss_status")
#: What ``miss_status`` may be: the API's 404, or a 400 that every client shows as it is.
MISS_STATUSES = (404, 400)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a preset, with the line of the preset file it is written on."""

    value: Any
    line: int


@dataclass(frozen=True, slots=True)
class Preset:
    """A preset as loaded: its name, file (for messages) and rules."""

    name: str
    file: str
    description: str
    normalize: tuple[Rule, ...] = ()
    ignore_body_fields: tuple[Rule, ...] = ()
    #: Headers left out of matching, whatever ``match_headers`` says.
    ignore_headers: tuple[Rule, ...] = ()
    miss_status: Rule | None = None

    def where(self, rule: Rule) -> str:
        """Where a rule comes from, as ``tapedeck show --settings`` says it."""
        return f"preset {self.name} ({self.file}:{rule.line})"


def known() -> tuple[str, ...]:
    """The names of the shipped presets, sorted."""
    folder = resources.files(__package__ or "tapedeck.config") / FOLDER
    return tuple(
        sorted(
            entry.name.removesuffix(".yaml")
            for entry in folder.iterdir()
            if entry.name.endswith(".yaml")
        )
    )


@functools.cache
def load(name: str) -> Preset:
    """The shipped preset ``name``; ``ValueError`` naming the known ones if there is none,
    or saying what is wrong with its file (``claude-code.yaml:12: normalize: ...``)."""
    names = known()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        near = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown preset {name!r}; {near}(known presets: {', '.join(names)})")
    file = f"{name}.yaml"
    text = (resources.files(__package__ or "tapedeck.config") / FOLDER / file).read_text("utf-8")
    return parse(name, file, text)


def parse(name: str, file: str, text: str) -> Preset:
    """A preset from its YAML ``text``; ``ValueError`` as ``file:line: key: problem``."""
    try:
        document = load_yaml(text)
    except YAMLSourceError as exc:
        raise ValueError(f"{file}:{exc.line}: {exc.message}") from None
    if not isinstance(document, LineDict):
        raise ValueError(f"{file}:1: expected a mapping with {', '.join(_KEYS)}")
    for key in document:
        if key not in _KEYS:
            raise ValueError(
                f"{file}:{document.line_of(key)}: {key}: unknown key "
                f"(a preset has {', '.join(_KEYS)})"
            )
    description = document.get("description")
    if not isinstance(description, str) or not description.strip():
        line = document.line_of("description")
        raise ValueError(f"{file}:{line}: description: expected one line saying what it is for")
    return Preset(
        name,
        file,
        description.strip(),
        _normalize(document, file),
        _fields(document, file, text),
        _headers(document, file, text),
        _miss_status(document, file),
    )


def _normalize(document: LineDict, file: str) -> tuple[Rule, ...]:
    items = document.get("normalize", [])
    where = f"{file}:{document.line_of('normalize')}: normalize"
    if not isinstance(items, list):
        raise ValueError(f"{where}: expected a list of {{path, pattern, replace}} rules")
    rules = []
    for i, item in enumerate(items):
        line = item.line if isinstance(item, LineDict) else document.line_of("normalize")
        # A preset's rule may name several paths: one rule each, in the order given.
        paths = item.get("path") if isinstance(item, LineDict) else None
        each = [{**item, "path": p} for p in paths] if isinstance(paths, list) else [item]
        try:
            rules += [Rule(Normalize.parse(one), line) for one in each]
        except ValueError as exc:
            raise ValueError(f"{file}:{line}: normalize: rule {i}: {exc}") from None
    return tuple(rules)


def _item_lines(text: str, start: int, items: list[str]) -> list[int]:
    """The line of each ``- item`` of a block list whose key is on line ``start`` (the key's
    line for a flow list, ``[a, b]``), so that ``show --settings`` points at the item."""
    lines = text.splitlines()
    found, at = [], start
    for item in items:
        for number in range(at + 1, len(lines) + 1):
            stripped = lines[number - 1].strip()
            if stripped.startswith("-") and stripped[1:].strip().strip("'\"") == item:
                at = number
                break
        else:
            at = start
        found.append(at)
    return found


def _fields(document: LineDict, file: str, text: str) -> tuple[Rule, ...]:
    items = document.get("ignore_body_fields", [])
    line = document.line_of("ignore_body_fields")
    where = f"{file}:{line}: ignore_body_fields"
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{where}: expected a list of dotted body paths")
    try:
        MatchRules(ignore_body=tuple(items))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return tuple(Rule(i, n) for i, n in zip(items, _item_lines(text, line, items), strict=True))


def _headers(document: LineDict, file: str, text: str) -> tuple[Rule, ...]:
    items = document.get("ignore_headers", [])
    line = document.line_of("ignore_headers")
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise ValueError(f"{file}:{line}: ignore_headers: expected a list of header names")
    lines = _item_lines(text, line, items)
    return tuple(Rule(i.lower(), n) for i, n in zip(items, lines, strict=True))


def _miss_status(document: LineDict, file: str) -> Rule | None:
    if "miss_status" not in document:
        return None
    line = document.line_of("miss_status")
    try:
        return Rule(miss_status(document["miss_status"]), line)
    except ValueError as exc:
        raise ValueError(f"{file}:{line}: miss_status: {exc}") from None


def miss_status(value: Any) -> int:
    """The status of a miss: 404 or 400."""
    text = str(value).strip() if not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) not in MISS_STATUSES:
        raise ValueError(
            f"expected 404 (not_found_error, as the API) or 400 (invalid_request_error, "
            f"which agent runtimes show as it is), got {value!r}"
        )
    return int(text)


def presets(value: Any) -> tuple[Preset, ...]:
    """Presets by name: a list, or one comma-separated string (``claude-code,litellm``)."""
    if isinstance(value, Preset):
        return (value,)
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"expected preset names, got {value!r}")
    found: list[Preset] = []
    for item in items:
        if isinstance(item, Preset):
            chosen = [item]
        elif isinstance(item, str):
            chosen = [load(n.strip()) for n in item.split(",") if n.strip()]
        else:
            raise ValueError(f"expected preset names, got {item!r}")
        found += [p for p in chosen if p not in found]
    return tuple(found)


def combined(
    presets: tuple[Preset, ...], settings: Any
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Normalize, ...]]:
    """The matched headers, ignored body fields and normalize rules of ``presets`` and the
    user's ``settings``: the headers the presets ignore left out, every field once, the
    presets' normalize rules first (in the order the presets are named), then the user's."""
    ignored = {r.value for p in presets for r in p.ignore_headers}
    headers = tuple(h for h in settings.match_headers if h.lower() not in ignored)
    fields = [*settings.ignore_body_fields]
    for preset in presets:
        fields += [r.value for r in preset.ignore_body_fields if r.value not in fields]
    rules = [r.value for p in presets for r in p.normalize]
    return headers, tuple(fields), (*rules, *settings.normalize)


def chosen_miss_status(presets: tuple[Preset, ...], given: int | None) -> int:
    """The miss status: the user's if given, else the last preset's that sets one, else 404."""
    if given is not None:
        return given
    statuses = [p.miss_status.value for p in presets if p.miss_status is not None]
    return statuses[-1] if statuses else 404
