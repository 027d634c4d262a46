"""The conformance table's pytest tests for one platform client, made once, used by each
``tests/test_conformance*.py`` module (one per platform, so pytest-xdist's ``--dist loadfile``
runs the platforms side by side, each module with its own servers).

``suite(platform)`` gives a module its fixtures and tests: every replay case that runs on the
platform against one shared replaying tapedeck, and every round-trip case recorded through a
tapedeck in front of the stand-in upstream, then replayed by a new one with it gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anthropic
import pytest

from conformance_sdk import RELEASE, run
from conformance_table import FIRST_PARTY, Case, in_releases, load, pretty, problems
from conftest import running
from fake_upstream import FakeUpstream
from platform_clients import CLASSES
from tapedeck.config import Mode
from tapedeck.server.runner import ServerThread

#: The releases the platform clients run on here: the newest (``.venv``, with the platform
#: extras). Older ones skip them: the floor (0.53, ``make sdk-range``) has only the Bedrock and
#: Vertex clients, and its environment none of their extras (botocore, google-auth).
PLATFORM_RELEASES = ">=2.17"


def params(cases: list[Case], platform: str) -> list[Any]:
    """The cases that run with the Python SDK on ``platform``, smoke ones marked."""
    return [
        pytest.param(c, id=c.id, marks=[pytest.mark.smoke] if c.smoke else [])
        for c in cases
        if "python" in c.sdks and platform in c.platforms
    ]


def check(case: Case, outcomes: list[dict[str, Any]], base_url: str) -> None:
    for n, (step, outcome) in enumerate(zip(case.steps, outcomes, strict=True)):
        found = problems(step.expect, outcome, base_url)
        where = f"{case.id} step {n + 1} ({step.call})" if len(case.steps) > 1 else case.id
        assert not found, f"{where}: " + "; ".join(found) + f"\n  the SDK showed: {pretty(outcome)}"


#: What differs between two servers giving the same answer: the headers (dates, and where the
#: answer came from; ``expect`` checks those that matter) and how long the call took.
NOT_COMPARED = {"headers", "took_ms"}


def same_across_servers(outcomes: list[Any], base_url: str) -> Any:
    """Outcomes with the server's address replaced by ``{base_url}`` (and its ``host:port``,
    which anthropic 2.17's connection errors name, by ``{host}``), without what two servers
    giving the same answer may differ in (:data:`NOT_COMPARED`)."""
    shown = [{k: v for k, v in o.items() if k not in NOT_COMPARED} for o in outcomes]
    text = json.dumps(shown, default=str).replace(base_url, "{base_url}")
    return json.loads(text.replace(urlsplit(base_url).netloc, "{host}"))


def skip_unless_installed(platform: str) -> None:
    """Skip a platform client on a release outside :data:`PLATFORM_RELEASES`; within it, a
    missing client fails."""
    if platform == FIRST_PARTY:
        return
    if not in_releases(RELEASE, PLATFORM_RELEASES):
        pytest.skip(f"platform clients run on anthropic {PLATFORM_RELEASES}, not {RELEASE}")
    assert hasattr(anthropic, CLASSES[platform]), f"anthropic {RELEASE} has no {CLASSES[platform]}"


def suite(platform: str) -> dict[str, Any]:
    """The fixtures and tests of ``platform``'s module: ``globals().update(suite(...))``."""
    replay_cases, round_trip_cases = load(RELEASE, platform=platform)

    @pytest.fixture(scope="module")
    def replay() -> Iterator[ServerThread]:
        skip_unless_installed(platform)
        with running() as server:
            yield server

    @pytest.mark.parametrize("case", params(replay_cases, platform))
    def test_replayed(replay: ServerThread, case: Case) -> None:
        check(case, run(replay.base_url, case, platform), replay.base_url)

    @pytest.fixture(scope="module")
    def round_trip(
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[dict[str, tuple[str, list[Any], str, list[Any]]]]:
        """Every round-trip case recorded through tapedeck from the stand-in upstream, then
        replayed by a new tapedeck from the recordings with the upstream gone."""
        skip_unless_installed(platform)
        root = tmp_path_factory.mktemp(f"conformance-recorded-{platform}")
        cases = [c for c in round_trip_cases if "python" in c.sdks and platform in c.platforms]
        with (
            FakeUpstream() as fake,
            running(root, mode=Mode.ALL, upstream=fake.base_url, record_errors=True) as rec,
        ):
            recorded = {c.id: (rec.base_url, run(rec.base_url, c, platform)) for c in cases}
        with running(root) as replayer:
            yield {
                c.id: (*recorded[c.id], replayer.base_url, run(replayer.base_url, c, platform))
                for c in cases
            }

    @pytest.mark.parametrize("case", params(round_trip_cases, platform))
    def test_recorded_then_replayed(round_trip: dict[str, Any], case: Case) -> None:
        recording_url, recorded, replay_url, replayed = round_trip[case.id]
        check(case, recorded, recording_url)
        check(case, replayed, replay_url)
        assert same_across_servers(replayed, replay_url) == same_across_servers(
            recorded, recording_url
        )

    return {
        "replay": replay,
        "test_replayed": test_replayed,
        "round_trip": round_trip,
        "test_recorded_then_replayed": test_recorded_then_replayed,
    }
