"""One quota's fast path (the buckets admit kept, charged and shown from the levels it read)
gives the values the general path gives: two Quotas driven alike, one through
``charge``/``shown``, the other through ``take``/``standings`` only."""

from __future__ import annotations

import random

import pytest

from tapedeck.shaping.faults import parse_fault
from tapedeck.shaping.quota import Admission, Cost, Quotas
from tapedeck.shaping.quota_shown import shown_of

SPECS = [
    "quota:requests=5/10s,input_tokens=300/1m,output_tokens=500/1m",
    "quota:requests=3/1s",
    "quota:tokens=400/30s,requests=10/1m",
    "quota:input_tokens=100/5s",
    "quota:output_tokens=200/2s,times=2",
    "quota:input_tokens=50/1s,output_tokens=60/1s",
]


def outcome(a: Admission) -> tuple[object, ...]:
    r = a.refusal
    return (r and (r.limit, r.retry_after, r.fault.text), a.waived)


@pytest.mark.parametrize("seed", range(4))
def test_charge_and_shown_match_take_and_standings(seed: int) -> None:
    rng = random.Random(seed)
    faults = [parse_fault(s) for s in SPECS]
    fast, slow = Quotas(limit=3), Quotas(limit=3)
    now = 1_700_000_000.0
    pending: list[tuple[Admission, Admission, Cost]] = []
    for _ in range(1500):
        now += rng.choice([0.0, 0.0, 0.001, 0.3, 1.7, 12.0, -0.5])
        if rng.random() < 0.05:
            test_id = rng.choice([None, "a", "b"])
            fast.rewind(test_id)
            slow.rewind(test_id)
            continue
        chosen = tuple(rng.sample(faults, rng.choice([1, 1, 1, 2])))
        test_id = rng.choice(["a", "b", "c", "d", ""])
        cost = Cost(1, rng.randint(0, 120), rng.randint(0, 150))
        gate = (lambda *_: True) if rng.random() < 0.5 else (lambda *_: False)
        a = fast.admit(chosen, test_id, now, cost, gate)
        b = slow.admit(chosen, test_id, now, cost, gate)
        b.held, b.levels = None, None  # the general path: buckets looked up, levels read
        assert outcome(a) == outcome(b)
        if a.refusal is None:
            taken = Cost(1, cost.input_tokens, 0) if rng.random() < 0.3 else cost
            if taken is not cost:
                pending.append((a, b, cost))
            slow.take(b, taken)
            assert fast.charge(a, taken) == shown_of(slow.standings(b))
        assert fast.shown(a) == shown_of(slow.standings(b))
        if pending and rng.random() < 0.3:  # a live answer settles later
            a, b, cost = pending.pop(0)
            at = now + rng.choice([0.0, 0.5])
            fast.take(a, Cost(0, 0, cost.output_tokens), at)
            slow.take(b, Cost(0, 0, cost.output_tokens), at)
