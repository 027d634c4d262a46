"""What a client is told when the upstream cannot be reached or does not answer.

Each way of failing gets a status and a reason a person can act on, naming the upstream by
its scheme, host, port and path only (a user name, password or query in the configured URL
stays out of errors and logs):

====================================== ====== ============================================
the upstream                           status reason
====================================== ====== ============================================
refuses the connection                 502    ``connection refused``
has a name that does not resolve       502    ``its host name does not resolve (...)``
fails the TLS handshake (a certificate 502    ``TLS handshake failed: ...``
not trusted, no TLS at all)
resets the connection                  502    ``the connection was reset``
closes it before answering             502    ``it closed the connection without answering``
is not connected to in time            504    ``no connection within 10 s (...)``
sends nothing for ``upstream_timeout`` 504    ``no answer within N s (upstream_timeout)``
====================================== ====== ============================================

504 answers carry the API's ``timeout_error`` type, 502 ones ``api_error``; the SDKs retry
both.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import UpstreamError

if TYPE_CHECKING:
    import httpx

#: The status of an upstream that failed, and of one that did not answer in time.
UNREACHABLE, TIMED_OUT = 502, 504


def shown_url(url: str) -> str:
    """``url`` without its user name, password, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(the configured upstream)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path.rstrip('/')}"


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def reason(exc: httpx.HTTPError, connect_timeout: float, read_timeout: float) -> tuple[int, str]:
    """The status for the client and the reason, for ``exc`` raised by the HTTP client."""
    import httpx  # loaded by then: ``exc`` came from it

    if isinstance(exc, httpx.ConnectTimeout):
        return TIMED_OUT, f"no connection within {connect_timeout:g} s (upstream_connect_timeout)"
    if isinstance(exc, httpx.TimeoutException):
        return TIMED_OUT, f"no answer within {read_timeout:g} s (upstream_timeout)"
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            what = cause.verify_message or cause.reason
            return UNREACHABLE, f"TLS handshake failed: its certificate is not trusted ({what})"
        if isinstance(cause, ssl.SSLError):
            if cause.reason == "WRONG_VERSION_NUMBER":
                what = "it does not speak TLS (is the upstream URL http://, not https://?)"
            else:
                what = cause.reason or str(cause)
            return UNREACHABLE, f"TLS handshake failed: {what}"
        if isinstance(cause, socket.gaierror):
            return UNREACHABLE, f"its host name does not resolve ({cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return UNREACHABLE, "connection refused"
        if isinstance(cause, ConnectionResetError):
            return UNREACHABLE, "the connection was reset"
    if isinstance(exc, httpx.RemoteProtocolError) and "without sending" in str(exc):
        return UNREACHABLE, "it closed the connection without answering"
    return UNREACHABLE, str(exc) or type(exc).__name__


def unreachable(
    url: str, exc: httpx.HTTPError, connect_timeout: float, read_timeout: float
) -> UpstreamError:
    """The :class:`UpstreamError` for ``exc``: its message names the upstream and why."""
    status, why = reason(exc, connect_timeout, read_timeout)
    return UpstreamError(f"upstream {shown_url(url)} unreachable: {why}", status)
