"""Quotas: the ``quota`` fault's limits, kept as the API keeps its rate limits.

``quota:requests=50/60s,input_tokens=20000/60s,output_tokens=8000/60s,tokens=...`` sets a
token bucket (:mod:`tapedeck.shaping.rates`) per limit. Each answered request takes its
share: ``requests`` one, ``input_tokens`` the response's ``input_tokens`` plus
``cache_creation_input_tokens`` (what the API counts against its input-token limit),
``output_tokens`` its ``output_tokens``, ``tokens`` both. Whether a request may go
through is judged as the API judges it: on its input tokens and, for output tokens, on the
estimate its ``max_tokens`` gives (:meth:`Cost.estimated`), adjusted to what the answer
reports once that is known. A request that one of the limits cannot take now is refused (a
429, with when to retry); one that is more than a limit holds when full is refused for good.

Buckets are kept per quota and per test id, like ``times`` counters, and start full; their
time is the request's clock (:mod:`tapedeck.shaping.clock`). ``times`` and ``p`` decide
whether a request that goes over is refused: ``times=N`` refuses the first N such requests,
``p`` each with that probability; one let through is not taken from the limit it went over.

What a request costs and what admitting it found are in :mod:`.quota_admission` (imported
from here as before); the buckets' levels as the headers show them in :mod:`.quota_shown`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..per_test import MAX_TEST_IDS
from ..wire.ratelimit import Shown, Standing
from .faults import Fault
from .quota_admission import (
    COUNTED,
    Admission,
    Amounts,
    Buckets,
    Cost,
    Gate,
    Refusal,
    limits,
)
from .quota_shown import FAMILY as FAMILY
from .quota_shown import Rows, rows_of, shown_of
from .rates import EPSILON, Bucket, retry_after

__all__ = ["COUNTED", "FAMILY", "Admission", "Cost", "Gate", "Quotas", "Refusal", "limits"]


class Quotas:
    """The buckets of every quota in use, per test id: those of the ``limit`` pairs of test
    id and quota used most recently (``max_test_ids``; the least recently used go, to start
    full if used again). Use from one event loop."""

    def __init__(self, limit: int = MAX_TEST_IDS) -> None:
        self.limit = limit
        self._buckets: dict[tuple[str, Fault], Buckets] = {}
        #: Lookups and rewinds so far: what may have changed which buckets a key has.
        self._moves = 0
        #: The key looked up last, and its buckets: already the most recently used.
        self._last: tuple[str, Fault, Buckets] | None = None
        self._last_amounts: tuple[object, Amounts, object, Amounts] = (None, {}, None, {})
        self._rows = Rows()

    def buckets(self, fault: Fault, test_id: str, now: float) -> Buckets:
        """The test id's buckets for ``fault``, by limit, made full on first use."""
        self._moves += 1
        last = self._last
        if last is not None and last[1] is fault and last[0] == test_id:
            return last[2]
        key = (test_id, fault)
        kept = self._buckets
        found = kept.pop(key, None)  # back in last: the most recently used
        if found is None:
            found = tuple((name, Bucket(rate, now)) for name, rate in limits(fault))
            if len(kept) >= self.limit:
                del kept[next(iter(kept))]
        kept[key] = found
        self._last = (test_id, fault, found)
        return found

    def admit(
        self, faults: Sequence[Fault], test_id: str, now: float, cost: Cost, gate: Gate
    ) -> Admission:
        """Whether a request that costs ``cost`` may go through now. Nothing is taken yet:
        :meth:`take` does that once what the request really costs is known."""
        amounts = self._amounts(cost)
        if len(faults) == 1:  # the usual case: the buckets are kept for take and the headers
            kept = tuple(faults)
            fault = kept[0]
            held = self.buckets(fault, test_id, now)
            levels: list[float] = []
            for name, bucket in held:
                # Bucket.level_at, inline: each request reads every bucket once, here
                elapsed = now - bucket.at  # a clock that went back refills nothing
                level = bucket.level + (elapsed * bucket.speed if elapsed > 0.0 else 0.0)
                levels.append(bucket.capacity if level > bucket.capacity else level)
                if amounts[name] - levels[-1] > EPSILON:  # Bucket.wait is not 0.0
                    return self._over(kept, test_id, now, amounts, gate, held)
            return Admission(kept, test_id, now, None, (), held, self._moves, levels)
        waived: list[Fault] = []
        for fault in faults:
            for name, bucket in self.buckets(fault, test_id, now):
                wait = bucket.wait(amounts[name], now)
                if wait == 0.0:
                    continue
                if not gate(test_id, fault):
                    waived.append(fault)
                    break
                after = None if wait is None else retry_after(wait)
                refusal = Refusal(fault, name, bucket.rate, after)
                return Admission(tuple(faults), test_id, now, refusal)
        return Admission(tuple(faults), test_id, now, None, tuple(waived))

    def _over(
        self,
        kept: tuple[Fault, ...],
        test_id: str,
        now: float,
        amounts: Amounts,
        gate: Gate,
        held: Buckets,
    ) -> Admission:
        """:meth:`admit` for one quota whose limits a request goes over."""
        fault = kept[0]
        for name, bucket in held:
            wait = bucket.wait(amounts[name], now)
            if wait == 0.0:
                continue
            if not gate(test_id, fault):
                return Admission(kept, test_id, now, None, kept, held, self._moves)
            after = None if wait is None else retry_after(wait)
            refusal = Refusal(fault, name, bucket.rate, after)
            return Admission(kept, test_id, now, refusal, (), held, self._moves)
        raise AssertionError("a limit was over")  # pragma: no cover

    def _amounts(self, cost: Cost) -> Amounts:
        """``cost.amounts()``, kept for the next request's same cost (not to be changed)."""
        last = self._last_amounts  # two: a request's estimate, then its usage
        if last[0] is cost:
            return last[1]
        if last[2] is cost:
            return last[3]
        amounts = cost.amounts()
        self._last_amounts = (cost, amounts, last[0], last[1])
        return amounts

    def take(self, admission: Admission, cost: Cost, now: float | None = None) -> None:
        """Take ``cost`` from the limits of an admitted request (at ``now``, by default the
        time it was admitted: tokens learned from a live answer are taken when it ends)."""
        at = admission.now if now is None else now
        amounts = cost.amounts()
        held = self._held(admission)
        if held is not None:
            levels, admission.levels = admission.levels, None
            if admission.waived:
                return
            if levels is not None and at == admission.now:  # Bucket.take on known levels
                for (name, bucket), level in zip(held, levels, strict=True):
                    amount = amounts[name]
                    if amount:
                        bucket.level = min(bucket.capacity, level - amount)
                        bucket.at = at
                return
            for name, bucket in held:
                amount = amounts[name]
                if amount:
                    bucket.take(amount, at)
            return
        for fault in admission.faults:
            if admission.waived and fault in admission.waived:
                continue
            for name, bucket in self.buckets(fault, admission.test_id, at):
                amount = amounts[name]
                if amount:
                    bucket.take(amount, at)

    def _held(self, admission: Admission) -> Buckets | None:
        """The buckets :meth:`admit` kept for ``admission``, if no lookup or rewind since
        may have changed them (each lookup would also move them to the most recent)."""
        return admission.held if admission.moves == self._moves else None

    def rewind(self, test_id: str | None) -> None:
        """Refill the buckets (one test id's, or all): they start full on next use."""
        self._moves += 1
        self._last = None
        for key in [k for k in self._buckets if test_id is None or k[0] == test_id]:
            del self._buckets[key]

    def standings(self, admission: Admission) -> dict[str, Standing]:
        """What the ``anthropic-ratelimit-*`` headers show, by header family, after the
        request: for each limit the most restrictive bucket (the least left) of the quotas
        that set it. Without a ``tokens`` limit, the ``tokens`` family shows the input and
        output limits together (their sum), as the API does when no combined limit applies."""
        now, test_id, faults = admission.now, admission.test_id, admission.faults
        if len(faults) == 1:  # the usual case: nothing to choose from
            chosen = self.buckets(faults[0], test_id, now)
        else:
            best: dict[str, Bucket] = {}
            for fault in faults:
                for name, bucket in self.buckets(fault, test_id, now):
                    held = best.get(name)
                    if held is None or bucket.level_at(now) < held.level_at(now):
                        best[name] = bucket
            chosen = tuple(best.items())
        shown = {FAMILY[name]: bucket.standing(now) for name, bucket in chosen}
        if "tokens" not in shown:
            parts = [shown[f] for f in ("input-tokens", "output-tokens") if f in shown]
            if len(parts) == 2:
                first, second = parts
                shown["tokens"] = Standing(
                    first.limit + second.limit,
                    first.remaining + second.remaining,
                    max(first.reset_at, second.reset_at),
                )
            elif parts:
                shown["tokens"] = parts[0]
        return shown

    def shown(self, admission: Admission) -> Shown:
        """:meth:`standings` as the headers give them (:data:`~tapedeck.wire.ratelimit.Shown`),
        for one quota's kept buckets without choosing among quotas."""
        held = self._held(admission)
        if held is None:
            return shown_of(self.standings(admission))
        now = admission.now
        levels = [b.level if b.at == now else b.level_at(now) for _, b in held]
        return rows_of(held, levels, now)

    def charge(self, admission: Admission, cost: Cost) -> Shown:
        """:meth:`take` ``cost`` at the admission's time, then :meth:`shown`: for one
        quota's kept buckets, from the levels :meth:`admit` read (nothing has changed them
        since) less what is taken."""
        held = self._held(admission)
        levels = admission.levels
        if held is None or levels is None or admission.waived:
            self.take(admission, cost)
            return self.shown(admission)
        admission.levels = None
        now = admission.now
        amounts = self._amounts(cost)
        for i, (name, bucket) in enumerate(held):
            amount = amounts[name]
            if amount:  # Bucket.take, on the level known at now
                bucket.level = levels[i] = min(bucket.capacity, levels[i] - amount)
                bucket.at = now
        return self._rows.of(held, levels, now)
