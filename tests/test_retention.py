"""What is kept per request or per test id outside the journal and the metrics stays
within its bound whatever the input (docs/architecture.md, "What is kept")."""

from __future__ import annotations

from tapedeck.record.outcomes import PER_TEST_ID, Outcome, Outcomes


def test_recording_outcomes_are_bounded_in_all() -> None:
    outcomes = Outcomes(kept=10)
    for n in range(5_000):  # one test id with ever more outcomes, then many ids
        outcomes.add("one", Outcome(f"c{n}", 529, False, "transient"))
    assert len(outcomes.of("one")) == 10 * PER_TEST_ID
    assert outcomes.of("one")[-1].cassette == "c4999"  # the newest kept
    for n in range(5_000):
        outcomes.add(f"t{n}", Outcome(f"d{n}", 200, True, new=True, interactions=1))
    kept = [o for n in range(5_000) for o in outcomes.of(f"t{n}")]
    assert len(kept) == 10
    assert outcomes.of("t4999")
    assert outcomes.of("one") == []
    assert len(outcomes.not_written()) == 10 * PER_TEST_ID
    assert len(outcomes.written()) == 5_000  # one per cassette written: files on disk
