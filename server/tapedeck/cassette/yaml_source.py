"""Safe YAML loading that remembers line numbers, so errors can point into the file.

Mappings load as :class:`LineDict`, a ``dict`` that knows the line it starts on and the
line of each key. Duplicate keys are an error (PyYAML would silently keep the last).
Timestamps stay strings and only ``true``/``false`` are booleans, so that what a cassette
says is what goes on the wire as JSON (YAML 1.1 would turn ``no`` into ``False``).
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


class _LineLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    yaml_implicit_resolvers = _without_tag(
        _without_tag(_BaseLoader.yaml_implicit_resolvers, _TIMESTAMP_TAG), _BOOL_TAG
    )


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
    """Parse one YAML document safely; raise :class:`YAMLSourceError` with the line on error."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if exc.context and exc.context != problem:
            problem = f"{problem} ({exc.context})"
        line = mark.line + 1 if mark is not None else 0
        raise YAMLSourceError(f"invalid YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise YAMLSourceError(f"invalid YAML: {exc}", 0) from None
