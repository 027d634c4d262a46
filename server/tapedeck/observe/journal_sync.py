"""Reading the shared journal after every worker's waiting entries are written.

A worker writes a request's journal entry to Redis after the response has been sent
(:class:`~tapedeck.observe.shared_journal.SharedJournal`), so a client that reads the journal
from another worker right after its last answer could ask before that entry is there. So a
read first publishes a token on ``tapedeck:journal-sync``; every worker listens there
(:func:`answer`, from start-up) and, once the entries waiting in it when the token came are
written, publishes the token back on ``tapedeck:journal-synced``; the read goes on when as
many workers as received the token have answered, or after :data:`WAIT_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..errors import APIError
from ..state.shared import PREFIX, RETRY_S, Store

if TYPE_CHECKING:
    from redis.asyncio import Redis

SYNC = PREFIX + "journal-sync"
SYNCED = PREFIX + "journal-synced"
#: The longest a read waits for the workers' answers (a worker stopped or stalled must not
#: hold the journal up for good: the read then shows what is there).
WAIT_S = 1.0


async def settled(store: Store) -> None:
    """Return once every worker listening has written the entries waiting in it now (or
    after :data:`WAIT_S`)."""

    async def ask(client: Redis) -> None:
        token = secrets.token_hex(8)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(SYNCED)
            await pubsub.get_message(timeout=1.0)  # subscribed: no answer is missed
            waiting = int(await client.publish(SYNC, token))
            async with asyncio.timeout(WAIT_S):
                while waiting > 0:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if message is not None and message["data"] == token:
                        waiting -= 1
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    await store.run(ask)


async def answer(
    store: Store, written: Callable[[], Awaitable[None]], open_: Callable[[], bool]
) -> None:
    """This worker's side, for as long as ``open_()``: for each token, wait until
    ``written()`` returns (the entries waiting then are in Redis), then send it back; while
    the store is unreachable, try again every :data:`RETRY_S` seconds."""
    loop = asyncio.get_running_loop()
    replies: set[asyncio.Task[None]] = set()

    async def reply(token: str) -> None:
        await written()
        with contextlib.suppress(APIError):
            await store.run(lambda client: client.publish(SYNCED, token))

    async def listen(client: Redis) -> None:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(SYNC)
            while open_():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None:
                    task = loop.create_task(reply(str(message["data"])))
                    replies.add(task)
                    task.add_done_callback(replies.discard)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    while open_():
        try:
            await store.run(listen)
        except APIError:
            await asyncio.sleep(RETRY_S)
