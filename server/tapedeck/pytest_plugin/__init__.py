"""The pytest plugin: a tapedeck server for the test session and SDK clients pointed at it.

Installing tapedeck registers it (entry point ``pytest11``); nothing to configure::

    # tests/test_chat.py  (cassettes in tests/cassettes)
    import pytest


    def test_hello(tapedeck):
        with tapedeck.client().messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "Hello"}],
        ) as stream:
            assert stream.get_final_text() == "Hello!"


    @pytest.mark.tapedeck(fault="overloaded:after=3")
    def test_overloaded(tapedeck): ...

- ``tapedeck_server`` (session): the running server (:class:`~tapedeck.server.runner.ServerThread`),
  started on a free port the first time a test asks for it, stopped at the end of the session.
- ``tapedeck`` (function): a :class:`~tapedeck.pytest_plugin.client.Tapedeck` for this test —
  ``base_url``, ``test_id``, ``cassette`` (the test's own), ``client()``, ``async_client()``,
  ``headers()``, ``reset()``, ``set_faults()``, ``advance_clock()``, ``requests`` (this
  test's journal entries). A failed test that used it gets a "tapedeck" report section: its
  requests, one a line.
- ``tapedeck_config`` (session): settings a ``conftest.py`` gives the server (a dict).
- ``@pytest.mark.tapedeck(cassette=..., fault=..., timing=...)``: defaults for the test's clients.
- After a run in a mode that records, a "tapedeck: recorded cassettes" section lists the
  cassettes written (new or changed) and those not written, and why.
- Options ``--tapedeck-cassettes``, ``--tapedeck-mode`` (``none``: never the network),
  ``--tapedeck-timing`` (``instant``), ``--tapedeck-unused``; every setting as an ini key
  ``tapedeck_<setting>`` (see :mod:`tapedeck.pytest_plugin.settings` for the order).

Each test records into, and replays first from, its own cassette,
``<module path>/<test name>`` under the cassette directory, unless it names one.
The ``anthropic`` SDK is imported only when a client is asked for. See docs/pytest.md.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..errors import BindError, ConfigError, LibraryError
from ..server.runner import ServerThread
from .client import HEADERS, Tapedeck, make_test_id, recorder_of
from .settings import add_ini_options, plugin_settings, test_cassette

__all__ = ["Tapedeck"]

_SERVER = pytest.StashKey[ServerThread]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tapedeck", "tapedeck: replay the Anthropic API from cassettes")
    group.addoption(
        "--tapedeck-cassettes",
        metavar="DIR",
        help="cassette directory for the tapedeck fixtures (default: the project's, "
        "tests/cassettes or cassettes)",
    )
    group.addoption(
        "--tapedeck-mode",
        metavar="MODE",
        help="none (default: cassettes only, never the network), once (record the cassettes "
        "that do not exist yet), new_episodes (record what no cassette answers), all "
        "(re-record everything) or passthrough",
    )
    group.addoption(
        "--tapedeck-timing",
        metavar="SPEC",
        help="pacing of replayed responses: instant (default for tests), recorded, speed=F, "
        "fixed=MS",
    )
    group.addoption(
        "--tapedeck-preset",
        metavar="NAME",
        action="append",
        help="a preset of matching rules for a client, e.g. claude-code (repeatable; "
        "docs/clients.md#presets); replaces the presets of ini options and tapedeck_config",
    )
    group.addoption(
        "--tapedeck-unused",
        action="store_true",
        help="at the end, list the cassettes and interactions no test used",
    )
    add_ini_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tapedeck(cassette=None, fault=None, timing=None): defaults for the clients of the "
        "tapedeck fixture (the x-tapedeck-cassette, -fault and -timing headers)",
    )
    try:  # a bad option, variable or file stops pytest before collection
        plugin_settings(config)
    except ConfigError as exc:
        raise pytest.UsageError(f"tapedeck: {exc}") from None


@pytest.fixture(scope="session")
def tapedeck_config() -> dict[str, Any]:
    """Settings for the session's server, as a dict: override it in a ``conftest.py``
    (session-scoped) to give any setting, functions included."""
    return {}


@pytest.fixture(scope="session")
def tapedeck_server(
    pytestconfig: pytest.Config, tapedeck_config: dict[str, Any]
) -> Iterator[ServerThread]:
    """The session's tapedeck server: started when first needed, stopped at session end."""
    try:
        server = ServerThread(plugin_settings(pytestconfig, tapedeck_config))
    except (LibraryError, BindError, ConfigError) as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:
        pytest.fail(f"tapedeck could not start: {problem}", pytrace=False)
    with server:
        pytestconfig.stash[_SERVER] = server
        yield server
        if pytestconfig.getoption("tapedeck_unused"):
            pytestconfig.stash[_UNUSED] = _unused(server)
        if server.settings.mode.records:
            pytestconfig.stash[_RECORDED] = recorded(server, pytestconfig.rootpath)


_UNUSED = pytest.StashKey[dict[str, Any]]()
_RECORDED = pytest.StashKey[list[str]]()


def recorded(server: ServerThread, root: Path) -> list[str]:
    """What a recording run did to the cassettes, one line each: those written (``new`` or
    ``changed``, with their paths), those that had answers offered but were not written
    (and why), and a count; paths relative to ``root`` when inside it."""
    recorder = recorder_of(server)
    if recorder is None:
        return []
    library, outcomes = recorder.library, recorder.outcomes

    def path(name: str) -> str:
        cassette = library.cassettes.get(name)
        file = Path(cassette.path if cassette else library.root / f"{name}.yaml").absolute()
        return str(file.relative_to(root) if file.is_relative_to(root) else file)

    lines = []
    written = outcomes.written()
    for last, created in written:
        count = f"{last.interactions} interaction{'' if last.interactions == 1 else 's'}"
        lines.append(f"{'new' if created else 'changed'}: {path(last.cassette)} ({count})")
    refused = outcomes.not_written()
    lines += [f"not written: {path(o.cassette)}: {o.why}" for o in refused]
    if not lines:
        return ["no cassette written: no answer from the upstream to record"]
    new = sum(created for _, created in written)
    lines.append(
        f"{len(written)} cassette(s) written ({new} new, {len(written) - new} changed), "
        f"{len(refused)} not written"
    )
    return lines


def _unused(server: ServerThread) -> dict[str, Any]:
    token = server.settings.admin_token
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{server.base_url}/_tapedeck/unused", headers=headers, timeout=10)
    found: dict[str, Any] = response.json()
    return found


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """After a recording run, the cassettes it wrote; with ``--tapedeck-unused``, the
    cassettes and interactions no test of the run used."""
    lines = config.stash.get(_RECORDED, None)
    if lines is not None:
        terminalreporter.section("tapedeck: recorded cassettes")
        for line in lines:
            terminalreporter.line(line)
    if not config.getoption("tapedeck_unused", default=False):
        return
    found = config.stash.get(_UNUSED, None)
    reporter = terminalreporter
    reporter.section("tapedeck: unused cassettes")
    if found is None:
        reporter.line("no test used the tapedeck fixture")
        return
    if not found["cassettes"] and not found["interactions"]:
        reporter.line("every cassette and interaction was used")
        return
    for name in found["cassettes"]:
        reporter.line(f"{name}: no interaction used")
    for item in found["interactions"]:
        reporter.line(
            f"{item['cassette']} (interaction {item['index']}, {item['where']}): not used"
        )


_DECK = pytest.StashKey[Tapedeck]()
#: The test ids that had a fixture in this session: a rerun's journal starts empty.
_SEEN = pytest.StashKey[set[str]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used the ``tapedeck`` fixture gets a "tapedeck" report section:
    each of its requests in one line (status, cassette or miss, faults, ending)."""
    report = yield
    deck = item.stash.get(_DECK, None)
    if deck is not None and report.when == "call" and report.failed:
        report.sections.append(("tapedeck", deck.summary()))
    return report


@pytest.fixture
def tapedeck(request: pytest.FixtureRequest, tapedeck_server: ServerThread) -> Iterator[Tapedeck]:
    """This test's :class:`Tapedeck`: clients, headers and admin helpers, cleaned up after."""
    defaults: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("tapedeck"))):
        if len(marker.args) > 1 or (marker.args and "cassette" in marker.kwargs):
            pytest.fail(
                "@pytest.mark.tapedeck takes at most one positional argument (the cassette)",
                pytrace=False,
            )
        unknown = sorted(set(marker.kwargs) - set(HEADERS))
        if unknown:
            pytest.fail(
                f"@pytest.mark.tapedeck: unknown argument(s) {', '.join(unknown)} "
                f"(known: {', '.join(HEADERS)})",
                pytrace=False,
            )
        defaults.update(marker.kwargs)
        if marker.args:
            defaults["cassette"] = marker.args[0]
    own = test_cassette(
        request.node.nodeid, request.config.rootpath, tapedeck_server.settings.cassettes
    )
    deck = Tapedeck(tapedeck_server, make_test_id(request.node.nodeid), own, **defaults)
    seen = request.config.stash.setdefault(_SEEN, set())
    if deck.test_id in seen:  # run again (--count, rerunfailures): not the last run's requests
        deck.forget_requests()
    seen.add(deck.test_id)
    request.node.stash[_DECK] = deck
    yield deck
    deck.close()
