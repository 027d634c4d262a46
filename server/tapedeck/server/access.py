"""Who may drive the server: nobody's web page, and nobody else on the network.

A page the user visits can send requests to ``127.0.0.1``, and a DNS-rebinding name can
make the browser treat the server as the page's own origin. So, before anything else:

- the ``Host`` header must name this server: ``localhost``, ``127.0.0.1``, ``::1``, the
  address the connection arrived at, the ``host`` setting, or an ``allowed_hosts`` entry
  (403 ``permission_error`` otherwise);
- a request from a browser page (an ``Origin`` header, or ``Sec-Fetch-Site: cross-site`` /
  ``same-site``) must come from an ``allowed_origins`` entry or from the server's own
  origin (403 otherwise); allowed origins get CORS headers and answered preflights;
- a ``/v1/`` POST with a body must say ``content-type: application/json`` (400
  ``invalid_request_error`` otherwise), so no page can send one without a preflight; but
  for ``multipart/form-data`` on the endpoints that take uploads (:data:`MULTIPART_PATHS`),
  which a page could send as a form: those pass the ``Origin`` / ``Sec-Fetch-Site`` rules
  above like every request, and nothing else may be multipart;
- the admin endpoints (``/_tapedeck/*`` but ``/_tapedeck/health``) need
  ``authorization: Bearer ADMIN_TOKEN`` when ``admin_token`` is set (401 otherwise), and
  are off when the server listens beyond this machine without one (403).

A cloud platform's request (Vertex, Foundry, ...) reaches these checks already mapped onto
its first-party ``/v1/`` path by its front door (:mod:`tapedeck.platforms`), so it passes the
same ones.

The official SDKs send ``host: 127.0.0.1:PORT`` (or the name in their base URL) and
``content-type: application/json`` with every body, and no ``Origin``: they pass.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

from starlette.types import Message, Scope, Send

from ..errors import APIError

#: Host names that always mean this machine.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: The admin endpoint that stays open for health checks.
HEALTH = "/_tapedeck/health"
_ADMIN = "/_tapedeck/"
_CROSS_SITE = frozenset({b"cross-site", b"same-site"})
_CORS_METHODS = b"GET, POST, PUT, DELETE, OPTIONS"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(value: bytes) -> str:
    """The host of a ``Host`` header value, without the port, lower case."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):  # [::1]:8765
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def is_preflight(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """Whether the request is a browser's CORS preflight."""
    return scope["method"] == "OPTIONS" and b"access-control-request-method" in headers


#: The paths that take ``multipart/form-data`` uploads, as the SDKs send them (``*`` is one
#: path segment): files, skills and their versions, organization plugins.
MULTIPART_PATHS = (
    ("v1", "files"),
    ("v1", "skills"),
    ("v1", "skills", "*", "versions"),
    ("v1", "organizations", "plugins"),
    ("v1", "organizations", "plugins", "*", "versions"),
    ("v1", "organizations", "plugin_marketplaces", "validate_archive"),
)


def _json_content(value: bytes | None) -> bool:
    return value is not None and value.split(b";", 1)[0].strip().lower() == b"application/json"


def takes_multipart(path: str, more: Sequence[tuple[str, ...]] = ()) -> bool:
    """Whether ``path`` is one of the endpoints that take ``multipart/form-data``: one of
    :data:`MULTIPART_PATHS` or of ``more`` (the setting ``upload_paths``, split)."""
    parts = tuple(path.strip("/").split("/"))
    return any(
        len(parts) == len(known) and all(k in ("*", p) for k, p in zip(known, parts, strict=True))
        for known in (*MULTIPART_PATHS, *more)
    )


def _multipart_content(value: bytes | None) -> bool:
    kind = b"" if value is None else value.split(b";", 1)[0].strip().lower()
    return kind == b"multipart/form-data"


class Access:
    """The checks every request passes before it is served (see the module docs)."""

    def __init__(
        self,
        host: str,
        allowed_hosts: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
        admin_token: str | None = None,
        upload_paths: Sequence[str] = (),
    ) -> None:
        #: ``upload_paths``: more endpoints that take multipart uploads, split into segments.
        self.uploads = tuple(tuple(p.strip("/").split("/")) for p in upload_paths)
        self.any_host = "*" in allowed_hosts
        self.hosts = (
            LOOPBACK_NAMES | {host.lower().strip("[]")} | {h.lower() for h in allowed_hosts}
        )
        self.origins = frozenset(o.rstrip("/") for o in allowed_origins)
        self._token = admin_token.encode() if admin_token else None
        #: The admin API is off: the server listens beyond this machine without a token.
        self.admin_off = self._token is None and not is_loopback(host)
        #: ``Host`` values already found to name this server, as sent (a client sends the
        #: same one every time); a few, to stay small whatever clients send.
        self._known_hosts: set[bytes] = set()

    def check(self, scope: Scope, headers: dict[bytes, bytes]) -> bytes | None:
        """Raise :class:`APIError` for a request that may not be served; return the
        ``Origin`` to answer with CORS headers, if the request is from an allowed one."""
        # Every request passes here: what the SDKs send is checked first, and cheaply.
        host = headers.get(b"host")
        if host is not None and host not in self._known_hosts and not self.any_host:
            self._check_host(scope, host)
        origin = None
        if b"origin" in headers or b"sec-fetch-site" in headers:
            origin = self._origin(headers, host)
            if origin is not None and is_preflight(scope, headers):
                return origin  # answered with the CORS headers; it carries no token or body
        path: str = scope["path"]
        if path.startswith("/v1/"):
            if scope["method"] == "POST" and headers.get(b"content-type") != b"application/json":
                self._json_body(headers, path, self.uploads)
        elif path.startswith(_ADMIN) and path != HEALTH:
            self._admin(headers)
        return origin

    @staticmethod
    def _json_body(
        headers: dict[bytes, bytes], path: str, uploads: Sequence[tuple[str, ...]]
    ) -> None:
        kind = headers.get(b"content-type")
        length = headers.get(b"content-length", b"0").strip()
        has_body = length not in (b"0", b"") or b"transfer-encoding" in headers
        if has_body and _multipart_content(kind) and takes_multipart(path, uploads):
            return
        if has_body and not _json_content(kind):
            got = "none" if kind is None else repr(kind.decode("latin-1"))
            raise APIError(
                400,
                "tapedeck: a request body must be JSON sent with content-type: "
                f"application/json (got {got})",
            )

    def _check_host(self, scope: Scope, host: bytes) -> None:
        name = host_name(host)
        server = scope.get("server")
        if name not in self.hosts and not (server and name == str(server[0]).lower()):
            raise APIError(
                403,
                f"tapedeck: Host {host.decode('latin-1')!r} is not this server's name; "
                "add it to the setting allowed_hosts if it is",
            )
        if len(self._known_hosts) < 64 and name in self.hosts:
            self._known_hosts.add(host)  # (the connection's own address may differ next time)

    def _origin(self, headers: dict[bytes, bytes], host: bytes | None) -> bytes | None:
        origin = headers.get(b"origin")
        if origin is None:
            if headers.get(b"sec-fetch-site") in _CROSS_SITE:
                raise APIError(
                    403,
                    "tapedeck: requests from other sites' web pages are refused (no Origin was "
                    "sent; see the setting allowed_origins)",
                )
            return None
        text = origin.decode("latin-1").rstrip("/")
        if text in self.origins:
            return origin
        if host is not None and text.partition("://")[2] == host.decode("latin-1").lower():
            return None  # the server's own origin: same-origin, no CORS needed
        raise APIError(
            403,
            f"tapedeck: requests from the web page at {text!r} are refused; add the origin "
            "to the setting allowed_origins to allow it",
        )

    def _admin(self, headers: dict[bytes, bytes]) -> None:
        if self.admin_off:
            raise APIError(
                403,
                "tapedeck: the admin API is off: tapedeck listens beyond this machine and no "
                "admin token is set (setting admin_token, env TAPEDECK_ADMIN_TOKEN)",
            )
        if self._token is None:
            return
        given = headers.get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._token):
            raise APIError(
                401,
                "tapedeck: the admin API needs authorization: Bearer <the admin token> "
                "(setting admin_token)",
                headers={"www-authenticate": "Bearer"},
            )

    @staticmethod
    def preflight(origin: bytes, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        """The headers answering a CORS preflight from an allowed origin."""
        asked = headers.get(b"access-control-request-headers", b"")
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", _CORS_METHODS),
            (b"access-control-allow-headers", asked),
            (b"access-control-max-age", b"600"),
            (b"vary", b"origin"),
        ]


def with_cors(send: Send, origin: bytes) -> Send:
    """``send``, adding the CORS headers an allowed origin needs to read the response."""

    async def cors_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [
                *message.get("headers", ()),
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", b"*"),
                (b"vary", b"origin"),
            ]
        await send(message)

    return cors_send
