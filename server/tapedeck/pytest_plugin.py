"""The pytest plugin: a tapedeck server for the test session and SDK clients pointed at it.

Installing tapedeck registers it (entry point ``pytest11``); nothing to configure::

    # tests/test_chat.py  (cassettes in tests/cassettes)
    import pytest


    def test_hello(tapedeck):
        client = tapedeck.client(cassette="streaming/hello")
        with client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "Hello"}],
        ) as stream:
            assert stream.get_final_text() == "Hello!"


    @pytest.mark.tapedeck(fault="overloaded:after=3")
    def test_overloaded(tapedeck): ...

- ``tapedeck_server`` (session): the running server (:class:`~tapedeck.server.runner.ServerThread`),
  started on a free port the first time a test asks for it, stopped at the end of the session.
- ``tapedeck`` (function): a :class:`Tapedeck` for this test — ``base_url``, ``test_id``,
  ``client()``, ``async_client()``, ``headers()``, ``reset()``, ``set_faults()``.
- ``@pytest.mark.tapedeck(cassette=..., fault=..., timing=...)``: defaults for the test's clients.
- Options ``--tapedeck-cassettes``, ``--tapedeck-mode`` (``replay``: never the network),
  ``--tapedeck-timing`` (``instant``), also as ini keys ``tapedeck_cassettes``, ``tapedeck_mode``
  and ``tapedeck_timing``.

The ``anthropic`` SDK is imported only when a client is asked for. See docs/pytest.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from .config import Settings, from_names, resolve
from .errors import BindError, ConfigError, LibraryError
from .server.runner import ServerThread

if TYPE_CHECKING:
    import anthropic

__all__ = ["Tapedeck"]

#: The fixture's defaults, each a header the server reads for one request.
_HEADERS = {
    "cassette": "x-tapedeck-cassette",
    "fault": "x-tapedeck-fault",
    "timing": "x-tapedeck-timing",
}
TEST_ID_HEADER = "x-tapedeck-test-id"
DEFAULT_API_KEY = "tapedeck-test"
_SETTINGS = pytest.StashKey[Settings]()
_UNSAFE = re.compile(r"[^\x21-\x7e]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tapedeck", "tapedeck: replay the Anthropic API from cassettes")
    group.addoption(
        "--tapedeck-cassettes",
        metavar="DIR",
        help="cassette directory for the tapedeck fixtures (default: tests/cassettes if it "
        "exists under the rootdir, else cassettes)",
    )
    group.addoption(
        "--tapedeck-mode",
        metavar="MODE",
        help="replay (default: cassettes only, never the network), record, auto or passthrough",
    )
    group.addoption(
        "--tapedeck-timing",
        metavar="SPEC",
        help="pacing of replayed responses: instant (default for tests), recorded, speed=F, "
        "fixed=MS",
    )
    parser.addini("tapedeck_cassettes", "tapedeck cassette directory, relative to the ini file")
    parser.addini("tapedeck_mode", "tapedeck mode (default: replay)")
    parser.addini("tapedeck_timing", "tapedeck timing spec (default: instant)")


def _cassettes(config: pytest.Config) -> Path:
    given: str | None = config.getoption("tapedeck_cassettes")
    if given:
        return Path(given).absolute()  # relative to the working directory, like any path flag
    ini = str(config.getini("tapedeck_cassettes") or "")
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return base / ini
    in_tests = config.rootpath / "tests" / "cassettes"
    return in_tests if in_tests.is_dir() else config.rootpath / "cassettes"


def plugin_settings(config: pytest.Config) -> Settings:
    """The server settings the options and ini keys give; raise :class:`ConfigError`."""
    given: dict[str, tuple[Any, str]] = {}
    for key in ("mode", "timing"):
        flag = config.getoption(f"tapedeck_{key}")
        if flag:
            given[key] = (flag, f"--tapedeck-{key}")
        elif config.getini(f"tapedeck_{key}"):
            given[key] = (config.getini(f"tapedeck_{key}"), f"ini tapedeck_{key}")
    # The plugin's own defaults: replay, no delays, a free port.
    defaults = {
        "mode": ("replay", "tapedeck default"),
        "timing": ("instant", "tapedeck default"),
        "port": (0, "tapedeck default"),
        "cassettes": (_cassettes(config), "--tapedeck-cassettes"),
    }
    settings = resolve(from_names(given), from_names(defaults))
    if settings.mode.proxies and os.environ.get("ANTHROPIC_API_KEY"):
        # Record with the real key from the environment; clients keep their dummy key.
        env_key = {"upstream_api_key_env": ("ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY")}
        settings = resolve(from_names(given), from_names(env_key), from_names(defaults))
    return settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tapedeck(cassette=None, fault=None, timing=None): defaults for the clients of the "
        "tapedeck fixture (the x-tapedeck-cassette, -fault and -timing headers)",
    )
    try:
        config.stash[_SETTINGS] = plugin_settings(config)
    except ConfigError as exc:
        raise pytest.UsageError(f"tapedeck: {exc}") from None


def make_test_id(nodeid: str) -> str:
    """A header-safe test id from a pytest node id: the node id itself when it is plain ASCII
    without spaces and not too long, else a cleaned form with a hash of the original."""
    cleaned = _UNSAFE.sub("_", nodeid)
    if cleaned == nodeid and len(nodeid) <= 200:
        return nodeid
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:12]
    return f"{cleaned[:180]}#{digest}"


class Tapedeck:
    """One test's view of the session's tapedeck server (the ``tapedeck`` fixture).

    >>> def test_hello(tapedeck):
    ...     client = tapedeck.client(cassette="streaming/hello", max_retries=0)
    ...     tapedeck.set_faults("status:code=529,times=1")   # this test only
    ...     tapedeck.reset()                                  # rewind this test's sequences
    """

    def __init__(
        self,
        server: ServerThread,
        test_id: str,
        cassette: str | None = None,
        fault: str | None = None,
        timing: str | None = None,
    ) -> None:
        self.server = server
        #: ``http://127.0.0.1:PORT``: the ``base_url`` for any client.
        self.base_url = server.base_url
        #: Sent as ``x-tapedeck-test-id``: keeps sequences and fault counters per test.
        self.test_id = test_id
        self.cassette = cassette
        self.fault = fault
        self.timing = timing
        self._clients: list[anthropic.Anthropic] = []
        self._async_clients: list[anthropic.AsyncAnthropic] = []
        self._set_faults = False

    def headers(
        self, *, cassette: str | None = None, fault: str | None = None, timing: str | None = None
    ) -> dict[str, str]:
        """The tapedeck headers for this test: the test id, then the cassette, fault and timing
        given here or by the marker (for clients of your own or ``extra_headers=``)."""
        headers = {TEST_ID_HEADER: self.test_id}
        chosen = {
            "cassette": cassette if cassette is not None else self.cassette,
            "fault": fault if fault is not None else self.fault,
            "timing": timing if timing is not None else self.timing,
        }
        for key, value in chosen.items():
            if value is not None:
                headers[_HEADERS[key]] = str(value)
        return headers

    def _client_kwargs(
        self, cassette: str | None, fault: str | None, timing: str | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        kwargs.setdefault("base_url", self.base_url)
        kwargs.setdefault("api_key", DEFAULT_API_KEY)
        own = kwargs.pop("default_headers", None) or {}
        kwargs["default_headers"] = {
            **self.headers(cassette=cassette, fault=fault, timing=timing),
            **own,
        }
        return kwargs

    def client(
        self,
        *,
        cassette: str | None = None,
        fault: str | None = None,
        timing: str | None = None,
        **kwargs: Any,
    ) -> anthropic.Anthropic:
        """An ``anthropic.Anthropic`` client on this server, closed when the test ends.

        ``cassette``, ``fault`` and ``timing`` override the marker's; other keywords go to the
        client (``max_retries=0``, ``timeout=...``, ``default_headers={...}``).
        """
        import anthropic

        client = anthropic.Anthropic(**self._client_kwargs(cassette, fault, timing, kwargs))
        self._clients.append(client)
        return client

    def async_client(
        self,
        *,
        cassette: str | None = None,
        fault: str | None = None,
        timing: str | None = None,
        **kwargs: Any,
    ) -> anthropic.AsyncAnthropic:
        """An ``anthropic.AsyncAnthropic`` client on this server; see :meth:`client`.

        Its connections are not kept alive between requests (each is closed in the event loop
        that used it), so a client left open, e.g. in ``asyncio.run()``, leaves no socket
        behind; it is closed when the test ends. Pass ``http_client=`` to choose otherwise.
        """
        import anthropic
        import httpx2

        if "http_client" not in kwargs:
            kwargs["http_client"] = anthropic.DefaultAsyncHttpxClient(
                limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=0)
            )
        client = anthropic.AsyncAnthropic(**self._client_kwargs(cassette, fault, timing, kwargs))
        self._async_clients.append(client)
        return client

    def _admin(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        content = None if body is None else json.dumps(body)
        headers = {TEST_ID_HEADER: self.test_id, "content-type": "application/json"}
        token = self.server.settings.admin_token
        if token:
            headers["authorization"] = f"Bearer {token}"
        response = httpx.request(
            method,
            self.base_url + path,
            headers=headers,
            content=content,
            timeout=10,
        )
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise ValueError(message)
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> int:
        """Rewind this test's sequence positions and fault counters; return how many
        sequences were rewound (``POST /_tapedeck/reset`` with this test id)."""
        rewound: int = self._admin("POST", "/_tapedeck/reset").get("rewound", 0)
        return rewound

    def set_faults(self, spec: str | list[str] | None) -> str:
        """Give this test's requests the faults ``spec`` (``None`` or ``"none"``: no faults),
        through the admin API; a fault given to a client (header) still wins. Returns the
        active spec. Raises ``ValueError`` with the server's message for an invalid spec."""
        self._set_faults = True
        if spec is None:
            spec = "none"
        active: str = self._admin("PUT", "/_tapedeck/faults", {"faults": spec})["faults"]
        return active

    def close(self) -> None:
        """Close the clients, drop this test's faults and rewind its sequences (teardown)."""
        for client in self._clients:
            client.close()
        for async_client in self._async_clients:
            _close_async(async_client)
        self._clients.clear()
        self._async_clients.clear()
        if self._set_faults:
            self._admin("DELETE", "/_tapedeck/faults")
        self.reset()


def _close_async(client: anthropic.AsyncAnthropic) -> None:
    """Close an async client after its event loop has ended (best effort, quietly)."""
    if client.is_closed():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with contextlib.suppress(RuntimeError, OSError):
            asyncio.run(client.close())


@pytest.fixture(scope="session")
def tapedeck_server(pytestconfig: pytest.Config) -> Iterator[ServerThread]:
    """The session's tapedeck server: started when first needed, stopped at session end."""
    settings = pytestconfig.stash[_SETTINGS]
    try:
        server = ServerThread(settings)
    except (LibraryError, BindError, ConfigError) as exc:
        pytest.fail(f"tapedeck could not start: {exc}", pytrace=False)
    with server:
        yield server


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
        unknown = sorted(set(marker.kwargs) - set(_HEADERS))
        if unknown:
            pytest.fail(
                f"@pytest.mark.tapedeck: unknown argument(s) {', '.join(unknown)} "
                f"(known: {', '.join(_HEADERS)})",
                pytrace=False,
            )
        defaults.update(marker.kwargs)
        if marker.args:
            defaults["cassette"] = marker.args[0]
    deck = Tapedeck(tapedeck_server, make_test_id(request.node.nodeid), **defaults)
    yield deck
    deck.close()
