"""What a journal entry counts for against ``journal_max_bytes``: about the bytes it holds.

The counts are estimates made without walking the objects (that would cost more than the
request): a fixed part measured once, and each part that grows with the request — its body,
test id, path, query and headers, its miss and its error — by its length.
"""

from __future__ import annotations

from .exchange import Exchange

#: What an entry costs besides its body, its miss and its error: the exchange, the request
#: without its body, its shape and key (measured with tracemalloc: about 2 kB).
ENTRY_BYTES = 2048
#: A kept body counts this many times its size: the parsed body, the shape's normalized
#: copy and its key as text (as the request cache counts it, ``server/request.py``).
BODY_FACTOR = 4


def body_cost(exchange: Exchange) -> int:
    """The bytes an entry's request body counts for (0 when it is not kept)."""
    request = exchange.request
    if request is not None:
        return BODY_FACTOR * request.size if exchange.omitted is None and request.body else 0
    if exchange.unparsed is not None and exchange.unparsed[1].body is not None:
        return BODY_FACTOR * exchange.unparsed[2]
    return 0


def entry_cost(exchange: Exchange, body: int | None = None) -> int:
    """The bytes an entry counts for: :data:`ENTRY_BYTES`, its body (``body``, else its
    :func:`body_cost`), its test id, path, query and kept headers (each at most
    ``max_header_size``), its miss, its error."""
    cost = ENTRY_BYTES + (body_cost(exchange) if body is None else body)
    request = exchange.request
    if request is not None:
        cost += len(request.test_id) + len(request.path)
        for name, value in request.headers:
            cost += len(name) + len(value)
        for name, value in request.query:
            cost += len(name) + len(value)
    else:
        cost += len(exchange.test_id) + len(exchange.path)
    if exchange.miss is not None:
        cost += exchange.miss.size
    if exchange.error is not None:
        cost += len(exchange.error[1])
    return cost
