"""The Redis server that holds shared per-test state: its key layout, the check made before
serving, and :class:`Store` — each worker's asynchronous client, and what a request gets
while the server is unreachable.

Keys (all under ``tapedeck:``, each expiring ``state_ttl`` seconds after its last change):

- ``tapedeck:faults:<test id>`` and ``tapedeck:faults-server`` — the fault specs set
  through ``PUT /_tapedeck/faults`` for a test id or server-wide (``none`` for an empty
  list); a change is announced on the channel ``tapedeck:faults-changed``;
- ``tapedeck:counts:<test id>`` — a hash: fault spec → requests counted against ``times``;
- ``tapedeck:draws:<test id>`` — a hash: fault spec → draws made by a seeded ``p``;
- ``tapedeck:seq:<test id>`` — a hash: cassette and request key → the next position;
- ``tapedeck:kept`` — set when tapedeck first uses the database, never expiring: a
  connection that finds it gone knows the server lost what it kept (restarted without
  persistence, or flushed).

Redis is an optional dependency (the ``workers`` extra): it is imported only when the
``state`` setting names a Redis server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import APIError, ConfigError
from ..record.redact import redact_text, url_shown

if TYPE_CHECKING:
    import redis.asyncio
    from redis.asyncio.connection import Connection
    from redis.commands.core import AsyncScript

PREFIX = "tapedeck:"
#: Where a change to a fault list is announced (the message is the test id, or
#: :data:`SERVER`): each worker keeps the lists it read until told they changed.
CHANGED = PREFIX + "faults-changed"
#: The "test id" of the server-wide list set through the admin API.
SERVER = "\x00server"
#: Present while the server keeps what tapedeck wrote (see the module's docstring).
KEPT = PREFIX + "kept"
#: What installs the Redis client.
EXTRA = "pip install 'tapedeck-mock[workers]'"
#: While the server is unreachable, a worker tries it again at most this often (seconds);
#: requests in between are answered 503 at once.
RETRY_S = 0.5
#: What a restart without persistence loses (the log line says so when it is detected).
LOST = (
    "sequence positions, fault times counters and seeded draws, fault lists set through "
    "/_tapedeck/faults and the shared journal start afresh"
)

log = logging.getLogger("tapedeck")
T = TypeVar("T")


def faults_key(test_id: str) -> str:
    return f"{PREFIX}faults:{test_id}" if test_id != SERVER else PREFIX + "faults-server"


def counts_key(test_id: str) -> str:
    return f"{PREFIX}counts:{test_id}"


def draws_key(test_id: str) -> str:
    return f"{PREFIX}draws:{test_id}"


def sequence_key(test_id: str) -> str:
    return f"{PREFIX}seq:{test_id}"


def require_redis(url: str) -> None:
    """:class:`ConfigError` naming the extra to install unless the Redis client imports."""
    try:
        import redis
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"state: --state {url_shown(url)} needs the Redis client, which is not installed: "
            f"{EXTRA} (or --state memory, one process only)"
        ) from None


def _reason(exc: BaseException, url: str) -> str:
    """Why a call to the server failed, on one line and without a secret."""
    text = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    return redact_text(text).replace(url, url_shown(url))


def check(url: str) -> None:
    """Check, before serving, that the Redis server at ``url`` answers (and mark its
    database as kept); :class:`ConfigError` (naming the server, never its password) if not.
    Synchronous: nothing is served yet."""
    require_redis(url)
    import redis

    try:
        client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
        )
        with client:
            client.set(KEPT, "1", nx=True)
    except (redis.RedisError, OSError, ValueError) as exc:
        raise ConfigError(
            f"state: cannot use the Redis server at {url_shown(url)}: {_reason(exc, url)}; "
            "start it, or give --state memory (one process only)"
        ) from None


class Store:
    """The Redis server at ``url`` as this process reaches it: one asynchronous client per
    event loop (made on first use, so a forked worker makes its own), and its health.

    Every call goes through :meth:`run`: a call that fails raises the API-shaped 503 that
    names the server and the reason, and the first failure (across every forked worker)
    logs one line, as does the first success after it. While it is down, a worker tries
    the server at most every :data:`RETRY_S` seconds and answers 503 at once in between.
    """

    def __init__(self, url: str) -> None:
        import redis

        #: What a failing call raises (the client's errors, and the socket's).
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.url = url
        self.shown = url_shown(url)
        #: Why the last call of this process failed; ``None`` once one succeeded.
        self.reason: str | None = None
        self._failed_at = 0.0
        self._client: redis.asyncio.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: list[AsyncScript] = []
        # Shared by the forked workers, so that the outage is logged once, not per worker.
        self._down = multiprocessing.RawValue("b", 0)
        self._flip = multiprocessing.Lock()

    def client(self) -> redis.asyncio.Redis:
        """This event loop's client (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # One retry at once: a pooled connection the server closed (a restart) is
            # replaced; a server that is gone fails fast.
            self._client = redis.asyncio.Redis.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=5,
                retry=Retry(NoBackoff(), 1),
                redis_connect_func=self._connected,
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close this event loop's client and its connections (the server is stopping)."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            with contextlib.suppress(*self.errors):
                await client.aclose()

    def script(self, source: str) -> Callable[[list[str], list[Any]], Awaitable[Any]]:
        """A Lua script run atomically by the server: ``await run(keys, args)``."""
        import redis.asyncio
        from redis.commands.core import AsyncScript

        # Registered against a client never connected; each call passes the loop's client.
        registered = AsyncScript(redis.asyncio.Redis(), source)

        async def call(keys: list[str], args: list[Any]) -> Any:
            return await self.run(lambda client: registered(keys, args, client))

        return call

    def batched_script(
        self, source: str
    ) -> Callable[[list[tuple[list[str], list[Any]]]], Awaitable[list[Any]]]:
        """A Lua script run once per ``(keys, args)`` of a list, in that order, in one round
        trip (a pipeline): ``await run([(keys, args), ...])`` returns each call's result."""
        import redis.asyncio
        from redis.commands.core import AsyncScript

        registered = AsyncScript(redis.asyncio.Redis(), source)

        async def calls(
            client: redis.asyncio.Redis, batch: list[tuple[list[str], list[Any]]]
        ) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                for keys, args in batch:
                    await registered(keys, args, pipe)
                return list(await pipe.execute())

        async def call(batch: list[tuple[list[str], list[Any]]]) -> list[Any]:
            return await self.run(lambda client: calls(client, batch))

        return call

    async def run(self, call: Callable[[redis.asyncio.Redis], Awaitable[T]]) -> T:
        """``call`` with this loop's client; the 503 (:class:`APIError`) if it fails."""
        if self.reason is not None and time.monotonic() - self._failed_at < RETRY_S:
            raise self.unavailable()
        try:
            result = await call(self.client())
        except self.errors as exc:
            raise self.failed(exc) from None
        if self.reason is not None or self._down.value:
            self.recovered()
        return result

    async def check(self) -> str | None:
        """Ask the server now (for health): ``None`` if it answers, else why not."""
        self.reason = None  # health always asks, whatever the last request found
        try:
            await self.run(lambda client: client.ping())
        except APIError:
            return self.reason
        return None

    def unavailable(self) -> APIError:
        """The 503 a request that needs the server gets while it is unreachable."""
        return APIError(503, f"tapedeck: state store {self.shown} {self.reason}", "api_error")

    def failed(self, exc: BaseException) -> APIError:
        """Note that a call failed with ``exc`` (logged once for all workers); the 503."""
        import redis

        gone = isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError)
        self.reason = f"{'unreachable' if gone else 'failed'}: {_reason(exc, self.url)}"
        self._failed_at = time.monotonic()
        if self._set_down(1):
            log.warning(
                "tapedeck: state store %s %s; requests that need it are answered 503 until "
                "it is back",
                self.shown,
                self.reason,
            )
        return self.unavailable()

    def recovered(self) -> None:
        """Note that a call succeeded (logged once for all workers if it was down)."""
        self.reason = None
        if self._set_down(0):
            log.warning("tapedeck: state store %s is back", self.shown)

    def _set_down(self, down: int) -> bool:
        """Set the shared flag; whether this process changed it (and is to say so)."""
        if self._down.value == down:
            return False
        # Held for a moment only; a worker killed while holding it must not stop the rest.
        locked = self._flip.acquire(timeout=1.0)
        try:
            if self._down.value == down:
                return False
            self._down.value = down
            return True
        finally:
            if locked:
                self._flip.release()

    async def _connected(self, connection: Connection) -> None:
        """Each new connection: the usual hand-shake, then whether the server still keeps
        what tapedeck wrote (:data:`KEPT`; ``SET NX``: exactly one connection, of every
        worker, sees it gone and says so)."""
        await connection.on_connect()
        await connection.send_command("SET", KEPT, "1", "NX")
        if await connection.read_response() is not None:
            log.warning(
                "tapedeck: state store %s lost what it kept (restarted without persistence, "
                "or flushed): %s",
                self.shown,
                LOST,
            )
