"""The connection to the Redis server that holds shared per-test state, and its key layout.

Keys (all under ``tapedeck:``, each expiring ``state_ttl`` seconds after its last change):

- ``tapedeck:faults:<test id>`` and ``tapedeck:faults-server`` — the fault specs set
  through ``PUT /_tapedeck/faults`` for a test id or server-wide (``none`` for an empty
  list); a change is announced on the channel ``tapedeck:faults-changed``;
- ``tapedeck:counts:<test id>`` — a hash: fault spec → requests counted against ``times``;
- ``tapedeck:draws:<test id>`` — a hash: fault spec → draws made by a seeded ``p``;
- ``tapedeck:seq:<test id>`` — a hash: cassette and request key → the next position.
"""

from __future__ import annotations

from typing import Any

import redis

from ..errors import ConfigError
from ..record.redact import redact_text, url_shown

PREFIX = "tapedeck:"
#: Where a change to a fault list is announced (the message is the test id, or
#: :data:`SERVER`): each worker keeps the lists it read until told they changed.
CHANGED = PREFIX + "faults-changed"
#: The "test id" of the server-wide list set through the admin API.
SERVER = "\x00server"


def faults_key(test_id: str) -> str:
    return f"{PREFIX}faults:{test_id}" if test_id != SERVER else PREFIX + "faults-server"


def counts_key(test_id: str) -> str:
    return f"{PREFIX}counts:{test_id}"


def draws_key(test_id: str) -> str:
    return f"{PREFIX}draws:{test_id}"


def sequence_key(test_id: str) -> str:
    return f"{PREFIX}seq:{test_id}"


def connect(url: str) -> redis.Redis:
    """A client of the Redis server at ``url``, checked to answer; :class:`ConfigError`
    (naming the server, never its password) if it does not."""
    try:
        client: redis.Redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
        )
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        reason = redact_text(str(exc)).replace(url, url_shown(url))
        raise ConfigError(
            f"state: cannot use the Redis server at {url_shown(url)}: {reason}; start it, or give "
            "--state memory (one process only)"
        ) from None
    return client


def script(client: redis.Redis, source: str) -> Any:
    """A Lua script registered with ``client`` (run atomically by Redis)."""
    return client.register_script(source)
