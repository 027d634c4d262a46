"""The short version of every reliability scenario (the full ones: ``make reliability``)."""

from __future__ import annotations

import pytest

from reliability import (
    disk_failures,
    findings,
    fuzz_cassettes,
    fuzz_requests,
    kill,
    many_ids,
    memory,
    secrets_scan,
    sigterm,
    slow_readers,
    soak,
    state_store,
    streams,
    upstream_failures,
)
from reliability.outcome import Outcome, table


def passed(outcome: Outcome) -> bool:
    print(table([outcome]))
    return outcome.ok


def test_what_the_first_reliability_run_found_is_answered_in_the_api_shape() -> None:
    outcome = findings.run(full=False)
    assert passed(outcome), outcome.failures


def test_concurrent_streams_at_recorded_timing_are_byte_exact() -> None:
    outcome = streams.run(full=False)
    assert passed(outcome), outcome.failures
    assert outcome.figures["streams wrong, short or unfinished"] == "0"


def test_a_chaos_soak_leaves_memory_and_fds_flat() -> None:
    outcome = soak.run(full=False)
    assert passed(outcome), outcome.failures


def test_clients_that_never_read_are_bounded_and_cut() -> None:
    outcome = slow_readers.run(full=False)
    assert passed(outcome), outcome.failures


def test_ever_new_test_ids_keep_bounded_state() -> None:
    outcome = many_ids.run(full=False)
    assert passed(outcome), outcome.failures


def test_fuzzed_requests_get_api_errors_and_read_nothing_outside() -> None:
    outcome = fuzz_requests.run(full=False)
    assert passed(outcome), outcome.failures
    assert outcome.figures["outside the cassette directory"] == "0"


def test_mutated_cassettes_give_file_line_errors_never_a_traceback() -> None:
    outcome = fuzz_cassettes.run(full=False)
    assert passed(outcome), outcome.failures
    assert int(outcome.figures["refused with file:line"].replace(",", "")) > 0


def test_kill_9_during_recordings_leaves_whole_cassettes_only() -> None:
    outcome = kill.run(full=False)
    assert passed(outcome), outcome.failures


def test_an_upstream_failing_is_an_api_error_a_log_line_and_nothing_written() -> None:
    outcome = upstream_failures.run(full=False)
    assert passed(outcome), outcome.failures


def test_a_full_or_read_only_disk_costs_the_recording_never_the_answer() -> None:
    outcome = disk_failures.run(full=False)
    assert passed(outcome), outcome.failures


def test_sigterm_lets_recordings_in_flight_finish_within_the_bound() -> None:
    outcome = sigterm.run(full=False)
    assert passed(outcome), outcome.failures


def test_the_state_store_going_and_coming_back_is_a_503_and_two_log_lines() -> None:
    outcome = state_store.run(full=False)
    assert passed(outcome), outcome.failures


def test_distinct_megabyte_requests_keep_memory_within_the_byte_bounds() -> None:
    outcome = memory.run(full=False)
    assert passed(outcome), outcome.failures


@pytest.mark.parametrize(
    "n", range(len(secrets_scan.ROWS)), ids=[r.name for r in secrets_scan.ROWS]
)
def test_no_key_reaches_a_file_a_file_name_or_the_log(n: int) -> None:
    status, leaks = secrets_scan.check_row(n, secrets_scan.ROWS[n])
    assert status < 500
    assert not leaks, leaks
