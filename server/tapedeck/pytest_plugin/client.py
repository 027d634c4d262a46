"""One test's view of the session's tapedeck server: the ``tapedeck`` fixture's value."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import warnings
from typing import TYPE_CHECKING, Any

import httpx

from ..observe.entries import JournalEntry, entries_from_json
from ..record.outcomes import Outcome
from ..record.recorder import Recorder
from ..server.app import Tapedeck as App
from ..server.runner import ServerThread

if TYPE_CHECKING:
    import anthropic

__all__ = ["Tapedeck", "make_test_id", "recorder_of"]

#: The fixture's defaults, each a header the server reads for one request.
HEADERS = {
    "cassette": "x-tapedeck-cassette",
    "fault": "x-tapedeck-fault",
    "timing": "x-tapedeck-timing",
}
TEST_ID_HEADER = "x-tapedeck-test-id"
TEST_CASSETTE_HEADER = "x-tapedeck-test-cassette"
DEFAULT_API_KEY = "tapedeck-test"
_UNSAFE = re.compile(r"[^\x21-\x7e]+")


def recorder_of(server: ServerThread) -> Recorder | None:
    """The recorder of a server running in this process (``None`` for any other kind)."""
    config = getattr(getattr(server, "server", None), "config", None)
    app = getattr(config, "app", None)
    return app.handler.recorder if isinstance(app, App) else None


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
    ...     tapedeck.advance_clock(30)                        # this test's quota windows
    ...     tapedeck.reset()                                  # rewind this test's sequences
    """

    def __init__(
        self,
        server: ServerThread,
        test_id: str,
        own_cassette: str | None = None,
        cassette: str | None = None,
        fault: str | None = None,
        timing: str | None = None,
    ) -> None:
        self.server = server
        #: ``http://127.0.0.1:PORT``: the ``base_url`` for any client.
        self.base_url = server.base_url
        #: Sent as ``x-tapedeck-test-id``: keeps sequences and fault counters per test.
        self.test_id = test_id
        #: This test's own cassette (``<module path>/<test name>``): recorded into, and
        #: searched first (then the whole library), unless a client names a cassette.
        self.own_cassette = own_cassette
        #: The cassette the marker names (searched alone, recorded into), if any.
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
        if self.own_cassette is not None:
            headers[TEST_CASSETTE_HEADER] = self.own_cassette
        chosen = {
            "cassette": cassette if cassette is not None else self.cassette,
            "fault": fault if fault is not None else self.fault,
            "timing": timing if timing is not None else self.timing,
        }
        for key, value in chosen.items():
            if value is not None:
                headers[HEADERS[key]] = str(value)
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

        if "http_client" not in kwargs:
            # The SDK's own HTTP library's Limits (httpx2 from anthropic 2.x, httpx before).
            limits = type(anthropic.DEFAULT_CONNECTION_LIMITS)
            kwargs["http_client"] = anthropic.DefaultAsyncHttpxClient(
                limits=limits(max_connections=1000, max_keepalive_connections=0)
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

    @property
    def requests(self) -> list[JournalEntry]:
        """This test's requests, oldest first, as the server's request journal has them
        (``GET /_tapedeck/journal`` with this test id): what each sent (the parsed body
        too), what answered, the faults that fired, how it ended. Raises
        ``RuntimeError`` if the journal is off (``journal_size`` 0)."""
        try:
            found = self._admin("GET", "/_tapedeck/journal")
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        return entries_from_json(found["entries"])

    def forget_requests(self) -> int:
        """Drop this test's entries from the journal (and what the recorder did with its
        answers); return how many entries there were."""
        cleared: int = self._admin("DELETE", "/_tapedeck/journal")["cleared"]
        recorder = recorder_of(self.server)
        if recorder is not None:
            recorder.outcomes.forget(self.test_id)
        return cleared

    def summary(self) -> str:
        """This test's requests, one line each (the failure report's "tapedeck" section);
        an answer from the upstream says whether it was recorded, and if not, why."""
        try:
            entries = self.requests
        except (RuntimeError, httpx.HTTPError) as exc:
            return f"could not read the request journal: {exc}"
        if not entries:
            return f"no request reached tapedeck with test id {self.test_id}"
        recorder = recorder_of(self.server)
        if recorder is None:
            return "\n".join(entry.line() for entry in entries)
        return "\n".join(with_outcomes(entries, recorder.outcomes.of(self.test_id)))

    def reset(self) -> int:
        """Rewind this test's sequence positions, fault counters and quotas and put it back
        on the server's clock; return how many sequences were rewound (``POST
        /_tapedeck/reset`` with this test id)."""
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

    def advance_clock(self, seconds: float = 0) -> float:
        """Stop this test's clock (the one its ``quota`` windows run on) and move it
        ``seconds`` ahead (``POST /_tapedeck/clock`` with this test id); ``0`` only stops it.
        Returns the clock's reading, in seconds since the epoch. :meth:`reset` (and the end
        of the test) puts the test back on the server's clock."""
        now: float = self._admin("POST", "/_tapedeck/clock", {"advance_s": seconds})["epoch_s"]
        return now

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


def with_outcomes(entries: list[JournalEntry], outcomes: list[Outcome]) -> list[str]:
    """The entries' lines, each upstream answer's saying what the recorder did with it
    (``outcomes``, oldest first: each goes to the first answer of its cassette and status,
    or of its cassette for an answer the client left before it had a status).
    An answer it was never handed (the exchange broke off) was not recorded."""
    left = list(outcomes)
    lines = []
    for entry in entries:
        line = entry.line()
        if entry.source == "upstream" and entry.cassette:
            said = f"upstream, recorded into {entry.cassette}"
            # No status: the client left before the headers, and the answer was read on.
            status = entry.status
            match = (
                o
                for o in left
                if o.cassette == entry.cassette and (o.status == status or status is None)
            )
            outcome = next(match, None)
            if outcome is not None:
                left.remove(outcome)
                text = outcome.text
            else:
                text = f"not recorded into {entry.cassette}: the answer did not reach its end"
            line = line.replace(said, f"upstream, {text}", 1)
        lines.append(line)
    return lines


def _close_async(client: anthropic.AsyncAnthropic) -> None:
    """Close an async client after its event loop has ended (best effort, quietly)."""
    if client.is_closed():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with contextlib.suppress(RuntimeError, OSError):
            asyncio.run(client.close())
