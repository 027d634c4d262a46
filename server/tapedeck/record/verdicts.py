"""What an answer is worth as a fixture: good, a transient failure, or a refused key — and
what a failed write of one says (the disk's fault, or the name's).

Only good answers become fixtures by default (:mod:`.recorder`): transient failures (408,
409, 429, 5xx, an in-stream ``error`` event, a stream the upstream cut) are kept only with
``record_errors``, refused keys (401, 403) never.
"""

from __future__ import annotations

import enum
import errno

from ..cassette.model import RecordedResponse, StreamEnd

#: Statuses of failures that may not happen again: kept only with ``record_errors``.
TRANSIENT = frozenset({408, 409, 429})
#: Statuses that say the upstream refused the key: never kept.
REFUSED = frozenset({401, 403})
#: Failures of the disk rather than of the cassette's name — full, over a quota or the
#: file size limit, read-only, not writable by tapedeck, failing: the upstream's answer is
#: good, so the client is given it (JSON too), and the log and outcomes say what was lost.
#: Any other failure (a name too long, a file where a folder should be, a link swapped in)
#: answers a JSON request with a 500 naming the cassette: its name can never be written.
DISK_ERRORS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
)


class Verdict(enum.StrEnum):
    """What an answer is worth as a fixture."""

    GOOD = "good"
    TRANSIENT = "transient"
    REFUSED = "refused"


def good(response: RecordedResponse) -> bool:
    """Whether ``response`` is one a recording keeps over an error: a good answer, below 400."""
    return response.status < 400 and verdict(response) is Verdict.GOOD


def verdict(response: RecordedResponse) -> Verdict:
    """Whether ``response`` is a good answer, a transient failure or a refused key."""
    if response.status in REFUSED:
        return Verdict.REFUSED
    if response.status in TRANSIENT or response.status >= 500:
        return Verdict.TRANSIENT
    events = response.events
    if events is not None:
        if response.end is StreamEnd.DISCONNECT:
            return Verdict.TRANSIENT
        last = next((e for e in reversed(events) if e.event != "ping"), None)
        if last is not None and last.event == "error":
            return Verdict.TRANSIENT
    return Verdict.GOOD


def what(response: RecordedResponse) -> str:
    """What the upstream answered, for a line saying why it was not kept: ``529``, ``a
    stream it cut``."""
    if response.status >= 400:
        return str(response.status)
    if response.end is StreamEnd.DISCONNECT:
        return "a stream it cut"
    return "a stream that ended in an error event"


def reason(exc: OSError | ValueError) -> str:
    """``No space left on device (ENOSPC)``: what the system said, and its errno's name."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return str(exc)
    name = errno.errorcode.get(exc.errno, "")
    said = exc.strerror or str(exc)
    return f"{said} ({name})" if name else said
