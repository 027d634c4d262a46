"""The short version of every reliability scenario (the full ones: ``make reliability``)."""

from __future__ import annotations

from reliability import fuzz_cassettes
from reliability.outcome import Outcome, table


def passed(outcome: Outcome) -> bool:
    print(table([outcome]))
    return outcome.ok


def test_mutated_cassettes_give_file_line_errors_never_a_traceback() -> None:
    outcome = fuzz_cassettes.run(full=False)
    assert passed(outcome), outcome.failures
    assert int(outcome.figures["refused with file:line"].replace(",", "")) > 0
