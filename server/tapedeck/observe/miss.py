"""Why no interaction answered a request, as the journal keeps it: the closest interaction
and each difference from it, values redacted and long ones only described or windowed."""

from __future__ import annotations

import json
from typing import Any

from ..cassette import json_text
from ..cassette.closest import Closest
from ..cassette.model import Client
from ..record.redact import USER_PLACEHOLDER, Redactor


class Miss:
    """Why no interaction answered: ``reason``, the closest interaction (if there is one)
    and how the request differs from it, values redacted; the client that sent the request
    and the one that recorded the closest interaction, when known."""

    __slots__ = (
        "cassette",
        "client",
        "differences",
        "interaction",
        "reason",
        "recorded_client",
        "size",
        "where",
    )

    def __init__(
        self,
        reason: str,
        cassette: str | None = None,
        interaction: int | None = None,
        where: str | None = None,
        differences: tuple[dict[str, Any], ...] = (),
        client: Client | None = None,
        recorded_client: Client | None = None,
    ) -> None:
        self.reason = reason
        self.cassette = cassette
        self.interaction = interaction
        self.where = where
        self.differences = differences
        self.client = client
        self.recorded_client = recorded_client
        #: About the bytes it holds (the journal counts them, ``journal_max_bytes``).
        self.size = _MISS_BYTES + sum(_size(d) for d in differences)

    @classmethod
    def closest(cls, closest: Closest, redactor: Redactor) -> Miss:
        """A miss explained by :meth:`CassetteLibrary.closest`."""
        entry = closest.entry
        if entry is None:
            return cls(closest.where, client=closest.client)
        differences = []
        # Windows are cut from the redacted values: a cut secret would not look like one.
        for difference in closest.redacted(redactor.value).differences:
            sides = {k: _small(v) for k, v in difference.sides().items()}
            window = difference.window()
            name = difference.field.removeprefix("header ")
            if difference.field.startswith("header ") and name in redactor.secret_headers:
                sides = dict.fromkeys(sides, USER_PLACEHOLDER)
                window = None
            shown = redactor.text(difference.shown())
            differences.append(
                {
                    "field": difference.field,
                    **sides,
                    "shown": shown,
                    "window": None if window is None else redactor.value(window.as_json()),
                }
            )
        where = f"{entry.cassette.path}:{entry.interaction.line}"
        return cls(
            "no match",
            entry.cassette.name,
            entry.index,
            where,
            tuple(differences),
            closest.client,
            closest.recorded_client,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "cassette": self.cassette,
            "interaction": self.interaction,
            "where": self.where,
            "differences": list(self.differences),
            "client": _client(self.client),
            "recorded_client": _client(self.recorded_client),
        }


#: What a miss holds besides its differences' texts: names, the client, the object.
_MISS_BYTES = 512


def _size(difference: dict[str, Any]) -> int:
    """About the bytes a difference holds: its texts, and its values as JSON (each at most
    :data:`DIFFERENCE_VALUE_LIMIT` characters)."""
    size = 256 + len(difference["field"]) + len(difference["shown"])
    for side in ("incoming", "recorded"):
        if side in difference:
            size += len(json.dumps(difference[side], ensure_ascii=False, default=str))
    window = difference.get("window")
    if window is not None:
        size += sum(len(v) for v in window.values() if isinstance(v, str))
    return size


def _client(client: Client | None) -> dict[str, str | None] | None:
    return None if client is None else {"name": client.name, "release": client.release}


#: A value in a miss's differences larger than this (as JSON) is not kept, only described.
DIFFERENCE_VALUE_LIMIT = 1024


def _small(value: Any) -> Any:
    size = json_text.length(value)  # counted: a 1 MB value is not written out to measure it
    return value if size <= DIFFERENCE_VALUE_LIMIT else f"({size} chars of JSON)"
