"""The fake API (:mod:`fake_upstream`) with one more answer: a stream whose ``message_stop``
comes late, as a client that hangs up on the stop reason would miss it.

A ``POST /v1/messages`` with ``stream: true`` whose last user message starts with ``late``
gets the fake's normal stream, but ``message_stop`` is held back until :attr:`release` is
set (or :attr:`LateStopUpstream.late_s` has passed, whichever comes first). Everything else
is answered, and recorded in :attr:`FakeUpstream.seen`, as :mod:`fake_upstream` does.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from fake_upstream import (
    _METHODS,
    HEADERS_DELAY_S,
    FakeUpstream,
    Seen,
    _Endpoint,
    _Out,
    answer_text,
    stream_events,
)


class LateStopUpstream(FakeUpstream):
    """The fake API, holding ``message_stop`` of a ``late ...`` stream back."""

    def __init__(self, late_s: float = 5.0) -> None:
        super().__init__()
        #: The longest ``message_stop`` is held back.
        self.late_s = late_s
        #: Set to send ``message_stop`` now.
        self.release = threading.Event()
        #: Set once ``message_delta`` of a ``late`` stream is out.
        self.delta_sent = threading.Event()
        app = Starlette(routes=[Route("/{path:path}", _LateEndpoint(self), methods=_METHODS)])
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        super().__exit__(*exc_info)


class _LateEndpoint(_Endpoint):
    fake: LateStopUpstream

    async def messages(self, seen: Seen, out: _Out) -> None:
        body: Any = seen.body if isinstance(seen.body, dict) else {}
        words = seen.text.split()
        if not (words and words[0] == "late" and body.get("stream") is True):
            await super().messages(seen, out)
            return
        fake = self.fake
        events = stream_events(seen.serial, answer_text(seen.text), str(body.get("model")))
        await anyio.sleep(HEADERS_DELAY_S)
        await out.stream_start()
        for name, data in events:
            if name == "message_stop":
                fake.delta_sent.set()
                await anyio.to_thread.run_sync(
                    fake.release.wait, fake.late_s, abandon_on_cancel=True
                )
            await out.event(name, data)
        await out.end()
