"""The cassette source: recorded responses as plans the writer can send.

For each interaction served, everything that can be computed ahead is computed on first
use and kept with it: the response in the shape asked for (stream or JSON, see
:mod:`tapedeck.source.synthesized`), its wire headers and bytes, and one plan per timing
and set of faults that fired. Replaying the same interaction again costs a dictionary
lookup. Kept data belongs to the library's entry: when a recording replaces a cassette,
its old entries, and all that was kept for them, go. Rendering a response and planning it
are in :mod:`.rendered` (imported from here as before).
"""

from __future__ import annotations

import math
import weakref
from typing import Protocol

from ..cassette.blobs import read_blob
from ..cassette.indexed import Entry
from ..cassette.model import RecordedResponse
from ..errors import APIError
from ..pipeline import Plan, at_once, wait_over
from ..shaping.faults import Fault, listed
from ..shaping.quota import Cost
from ..shaping.shaper import shape_plan
from ..shaping.timing import Timing
from .batches import has_results_url, with_results_url
from .rendered import Rendered, cassette_headers, plan, render
from .synthesized import convertible, in_shape
from .usage import usage_of

__all__ = [
    "CONVERTED_PATHS",
    "PLANS_PER_INTERACTION",
    "PLAN_CACHE_BYTES",
    "CassetteSource",
    "PlanBytes",
    "Rendered",
    "Served",
    "cassette_headers",
    "plan",
    "plan_bytes",
    "render",
]

#: Plans kept per interaction; past this, they are computed afresh (clients that send
#: ever new timing specs or fault sets must not grow the server).
PLANS_PER_INTERACTION = 32
#: Bytes the kept plans of all interactions may hold unless told otherwise
#: (``plan_cache_bytes``): a plan due at once holds its whole body, a copy of the response.
PLAN_CACHE_BYTES = 256 * 1024 * 1024
#: What a plan's step costs besides the bytes it shares with the rendered response.
_STEP_BYTES = 64


def plan_bytes(plan: Plan) -> int:
    """About the bytes a kept plan holds of its own (its joined body, its steps)."""
    return len(plan.body or b"") + _STEP_BYTES * len(plan.steps)


#: Endpoints whose answers can be converted between a stream and JSON.
CONVERTED_PATHS = frozenset({"/v1/messages"})


class HasBaseURL(Protocol):
    @property
    def base_url(self) -> str: ...


class Served:
    """What was computed for one interaction: its response in each shape asked for, and
    a plan per timing and set of faults (bounded)."""

    __slots__ = (
        "_last",
        "_streams",
        "_usage",
        "converted",
        "interaction",
        "kept",
        "max_delay",
        "name",
        "plans",
        "rendered",
        "rewrites",
        "where",
    )

    def __init__(
        self, entry: Entry, max_delay: float = math.inf, kept: PlanBytes | None = None
    ) -> None:
        self.interaction = entry.interaction
        #: What the kept plans of every interaction hold (``plan_cache_bytes``).
        self.kept = kept
        #: The longest wait a plan may hold (the setting max_delay), in seconds.
        self.max_delay = max_delay
        self.name = entry.cassette.name
        self.where = f"{entry.cassette.path}:{entry.interaction.line}"
        self.rendered: dict[bool, Rendered] = {}
        self.plans: dict[tuple[bool, Timing, tuple[Fault, ...]], Plan] = {}
        #: The last plan handed out, and for which shape, timing and faults objects: a test
        #: suite asks for the same one again and again (the fault book hands out the same
        #: tuple for the same faults).
        self._last: tuple[bool, Timing, tuple[Fault, ...], Plan] | None = None
        self._usage: dict[bool, Cost] = {}
        response = entry.interaction.response
        #: Whether the response names a URL on the server that must be the client's.
        self.rewrites = has_results_url(entry.interaction.request.path, response.body)
        converts = entry.interaction.request.path in CONVERTED_PATHS
        #: Whether the answer is a stream, for a request that asks for a stream or not.
        self._streams = tuple(
            wanted if converts and convertible(response, wanted) else response.is_stream
            for wanted in (False, True)
        )
        #: Whether a request that asks for a stream (or not) gets the response converted.
        self.converted = tuple(shape is not response.is_stream for shape in self._streams)

    def is_stream(self, stream: bool) -> bool:
        """Whether a request that asks for ``stream`` (or not) is answered with a stream."""
        return self._streams[stream]

    def response(self, stream: bool) -> RecordedResponse:
        """The recorded response in the shape a request that asks for ``stream`` gets."""
        response = self.interaction.response
        if response.is_stream == self._streams[stream]:
            return response
        try:
            return in_shape(response, stream)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # A cassette that loads but whose events do not make a message (lint says so).
            shape = "an event stream" if stream else "JSON"
            raise APIError(
                500,
                f"tapedeck: cassette {self.name!r} ({self.where}) cannot be answered as "
                f"{shape}: {exc}; run 'tapedeck lint' on it",
                "api_error",
            ) from None

    def usage(self, stream: bool) -> Cost:
        """What answering a request that asks for ``stream`` (or not) takes from a quota."""
        shape = self._streams[stream]
        found = self._usage.get(shape)
        if found is None:
            found = self._usage[shape] = usage_of(self.response(stream))
        return found

    def plan(
        self, stream: bool, timing: Timing, faults: tuple[Fault, ...], client: HasBaseURL
    ) -> Plan:
        """The plan answering a request that asks for ``stream`` (or not), paced by
        ``timing`` and shaped by ``faults``; ``client`` says the URL the client used."""
        if self.rewrites:  # depends on the client's address: not kept
            response = with_results_url(self.response(stream), client.base_url)
            fresh = render(response, cassette_headers(self.name), self._binary())
            return self._checked(_shaped(fresh, timing, faults), timing, faults)
        shape = self._streams[stream]
        last = self._last
        if last is not None and last[2] is faults and last[1] is timing and last[0] is shape:
            return last[3]
        key = (shape, timing, faults)
        found = self.plans.get(key)
        if found is None:
            rendered = self.rendered.get(shape)
            if rendered is None:
                response = self.response(stream)
                rendered = render(response, cassette_headers(self.name), self._binary())
                self.rendered[shape] = rendered
            found = self._checked(_shaped(rendered, timing, faults), timing, faults)
            if len(self.plans) >= PLANS_PER_INTERACTION:
                self.plans.clear()
            if self.kept is not None:
                self.kept.add(plan_bytes(found))  # past the bound, every plan goes
            self.plans[key] = found
        self._last = (shape, timing, faults, found)
        return found

    def _binary(self) -> bytes:
        """The bytes of a ``binary`` response, read from beside its cassette (a
        :class:`~tapedeck.errors.CassetteError` if they are missing or changed)."""
        interaction = self.interaction
        blob = interaction.response.binary
        if blob is None:
            return b""
        return read_blob(self.where.rsplit(":", 1)[0], self.name, blob, interaction.line)

    def _checked(self, plan: Plan, timing: Timing, faults: tuple[Fault, ...]) -> Plan:
        """``plan``, or a 400 if it would wait longer than ``max_delay`` anywhere."""
        over = wait_over(plan, self.max_delay)
        if over is None:
            return plan
        wait, where = over
        cause = f"timing {timing}" + (f" and faults {listed(faults)}" if faults else "")
        raise APIError(
            400,
            f"tapedeck: cassette {self.name!r} with {cause} would wait {wait:.3g} s {where}; "
            f"the longest wait allowed is {self.max_delay:g} s (setting max_delay)",
        )


def _shaped(rendered: Rendered, timing: Timing, faults: tuple[Fault, ...]) -> Plan:
    planned = plan(rendered, timing)
    return at_once(shape_plan(planned, faults)) if faults else planned


class PlanBytes:
    """The bytes the kept plans of a :class:`CassetteSource` hold (counted as they are
    made; those a full interaction drops are counted until all go). Past ``limit`` every
    kept plan is dropped: each is made again on its next use."""

    def __init__(self, served: dict[int, Served], limit: int) -> None:
        self._served = served
        self.limit = limit
        self.used = 0

    def add(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            for each in self._served.values():
                each.plans.clear()
                each._last = None
            self.used = size


class CassetteSource:
    """What is served from the interactions of a library, computed once each and kept
    while the library holds the interaction; the plans of all of them within
    ``plan_cache_bytes``."""

    def __init__(self, max_delay: float = math.inf, plan_cache: int = PLAN_CACHE_BYTES) -> None:
        self.max_delay = max_delay
        self._served: dict[int, Served] = {}
        self.kept = PlanBytes(self._served, plan_cache)
        #: The interactions that answered, by cassette, position, line and recording time:
        #: an evicted cassette's entries go (library_max_bytes), what they did does not.
        self._answered: set[tuple[str, int, int, str | None]] = set()

    def served(self, entry: Entry) -> Served:
        """The :class:`Served` data of ``entry``, made on first use."""
        found = self._served.get(id(entry))
        if found is None:
            found = self._served[id(entry)] = Served(entry, self.max_delay, self.kept)
            # Entries are dropped when a recording replaces their cassette; what was kept
            # for them goes with them (before their id can be reused).
            weakref.finalize(entry, self._served.pop, id(entry), None)
            self._answered.add(_which(entry))
        return found

    def __len__(self) -> int:
        return len(self._served)

    def was_served(self, entry: Entry) -> bool:
        """Whether ``entry`` has answered a request since the server started."""
        return _which(entry) in self._answered


def _which(entry: Entry) -> tuple[str, int, int, str | None]:
    interaction = entry.interaction
    return entry.cassette.name, entry.index, interaction.line, interaction.recorded_at
