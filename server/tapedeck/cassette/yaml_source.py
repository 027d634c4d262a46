"""Safe YAML loading that remembers line numbers, so errors can point into the file.

Mappings load as :class:`LineDict`, a ``dict`` that knows the line it starts on and the
line of each key. Duplicate keys are an error (PyYAML would silently keep the last).
Timestamps stay strings and only ``true``/``false`` are booleans, so that what a cassette
says is what goes on the wire as JSON (YAML 1.1 would turn ``no`` into ``False``).

A scalar YAML cannot turn into a value (``!!float x``, ``!!int 1.5``, an integer of more
digits than Python reads) loads as a :class:`BadValue` that knows its line, so the field
that holds it can be named in the error; a character YAML does not allow (a raw control
character) is reported with its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from ..errors import YAMLSourceError

try:
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

_MAP_TAG = "tag:yaml.org,2002:map"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_JSON_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class BadValue:
    """A scalar YAML could not construct: where it is and why, for the error message."""

    __slots__ = ("line", "problem", "tag", "text")

    def __init__(self, tag: str, text: str, problem: str, line: int) -> None:
        self.tag = tag
        self.text = text
        self.problem = problem
        self.line = line

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 40 else f"{self.text[:20]}…({len(self.text)} chars)"
        tag = self.tag.replace("tag:yaml.org,2002:", "!!")
        return f"{tag} {text!r} ({self.problem})"


class LineDict(dict[Any, Any]):
    """A mapping loaded from YAML, with 1-based line numbers for itself and its keys."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """The line of ``key`` if present, else the line of the mapping itself."""
        lines: dict[Any, int] = getattr(self, "key_lines", {})
        return lines.get(key, self.line)


def _without_tag(
    resolvers: dict[Any, list[tuple[str, Any]]], tag: str
) -> dict[Any, list[tuple[str, Any]]]:
    return {first: [r for r in rs if r[0] != tag] for first, rs in resolvers.items()}


def _problem(exc: Exception) -> str:
    text = str(exc)
    if "Exceeds the limit" in text and "digits" in text:
        return "an integer with more digits than can be read (4300 at most)"
    if isinstance(exc, KeyError | AttributeError):
        return "not a value of this type"
    return text.split("\n", 1)[0][:120]


class _LineLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    yaml_implicit_resolvers = _without_tag(
        _without_tag(_BaseLoader.yaml_implicit_resolvers, _TIMESTAMP_TAG), _BOOL_TAG
    )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except Exception as exc:
            # A scalar's own constructor failed (``!!float x``, a 5,000-digit integer,
            # ``!!timestamp x``): keep it as a BadValue so the field holding it is named.
            if not isinstance(node, yaml.ScalarNode) or isinstance(exc, yaml.YAMLError):
                raise
            return BadValue(node.tag, str(node.value), _problem(exc), node.start_mark.line + 1)


_LineLoader.add_implicit_resolver(_BOOL_TAG, _JSON_BOOL, list("tTfF"))


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found a list or mapping used as a key (keys must be plain text)",
                key_node.start_mark,
            )
        if key in data:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        data[key] = loader.construct_object(value_node, deep=False)
        data.key_lines[key] = key_node.start_mark.line + 1


_LineLoader.add_constructor(_MAP_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    """Parse one YAML document safely; raise :class:`YAMLSourceError` with the line on error.

    Scalars that cannot be constructed load as :class:`BadValue`: check values' types.
    """
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.reader.ReaderError as exc:
        # Not a MarkedYAMLError: it knows the character's position in the text only.
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else 0
        raise YAMLSourceError(
            f"invalid YAML: character U+{code:04X} is not allowed ({exc.reason}); inside "
            f'double quotes, write it as an escape such as "\\x{code:02x}"'
            if code < 0x100
            else f"invalid YAML: character U+{code:04X} is not allowed ({exc.reason})",
            line,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if exc.context and exc.context != problem:
            problem = f"{problem} ({exc.context})"
        line = mark.line + 1 if mark is not None else 0
        raise YAMLSourceError(f"invalid YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise YAMLSourceError(f"invalid YAML: {exc}", 0) from None
