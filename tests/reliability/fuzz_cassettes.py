"""Mutated cassettes through everything that reads them: the loader (``serve``), ``lint``,
the library index and the plans for every timing and both shapes.

Every problem must be a :class:`~tapedeck.errors.CassetteError` (or lint problem) with a
line number; anything else that escapes is a traceback a user would see.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import parse_cassette
from tapedeck.cassette.matching import MatchRules
from tapedeck.errors import APIError, CassetteError
from tapedeck.shaping.timing import Timing
from tapedeck.source.cassette import CassetteSource
from tapedeck.tools.lint import lint_text

from .mutations import cassette_texts
from .outcome import Outcome

FILE = "tapes/fuzzed.yaml"
TIMINGS = tuple(Timing.parse(t) for t in ("recorded", "instant", "speed=3", "fixed=1"))
SHORT_EXAMPLES = 1_000
FULL_EXAMPLES = 5_000


class _Client:
    base_url = "http://127.0.0.1:8765"


def problems_of(text: str) -> list[str]:
    """What is wrong with how tapedeck treats ``text``: tracebacks and line-less errors."""
    found: list[str] = []
    try:
        cassette = parse_cassette(text, FILE, "fuzzed")
    except CassetteError as exc:
        cassette = None
        if exc.line < 1 or not str(exc).startswith(f"{FILE}:{exc.line}: "):
            found.append(f"loader error without a line: {exc}")
    except Exception:
        return [f"loader traceback: {traceback.format_exc(limit=-3)}"]
    try:
        lint_problems = lint_text(text, FILE)
    except Exception:
        return [*found, f"lint traceback: {traceback.format_exc(limit=-3)}"]
    found += [f"lint problem without a line: {p}" for p in lint_problems if p.line < 1]
    if cassette is None:
        return found
    try:
        library = CassetteLibrary(Path("tapes"), [cassette], MatchRules())
        served = CassetteSource()
        for entry in library.entries("fuzzed"):
            for stream in (False, True):
                for timing in TIMINGS:
                    # An APIError is answered in the API's shape, naming the cassette.
                    with contextlib.suppress(APIError):
                        served.served(entry).plan(stream, timing, (), _Client())
    except Exception:
        found.append(f"replay traceback: {traceback.format_exc(limit=-3)}")
    return found


def run(full: bool) -> Outcome:
    outcome = Outcome("fuzz_cassettes")
    examples = FULL_EXAMPLES if full else SHORT_EXAMPLES
    seen = {"texts": 0, "rejected": 0, "bad": 0}
    started = time.perf_counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not full,
        suppress_health_check=list(HealthCheck),
    )
    @given(cassette_texts())
    def check(text: str) -> None:
        seen["texts"] += 1
        try:
            parse_cassette(text, FILE, "fuzzed")
        except CassetteError:
            seen["rejected"] += 1
        except Exception:  # reported by problems_of
            pass
        problems = problems_of(text)
        seen["bad"] += bool(problems)
        if problems and len(outcome.failures) < 20:
            outcome.fail(f"{problems[0]} in {text[:200]!r}")

    check()
    outcome.figure("mutated cassettes", seen["texts"])
    outcome.figure("refused with file:line", seen["rejected"])
    outcome.figure("tracebacks or errors without a line", seen["bad"])
    outcome.seconds = time.perf_counter() - started
    return outcome
