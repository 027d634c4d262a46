"""The listening socket: bound before uvicorn starts, so that the start line gives the real
address and a port already in use is a one-line error naming what holds it."""

from __future__ import annotations

import errno
import socket
from typing import Any

from ..errors import BindError, PortInUse


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host is an IPv6 address);
    raise :class:`PortInUse` if the port is taken, else :class:`BindError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def free_port_after(host: str, port: int, tries: int = 20) -> int | None:
    """The first of the ``tries`` ports after ``port`` that ``host`` can listen on now."""
    for candidate in range(port + 1, min(port + tries, 65535) + 1):
        try:
            bind(host, candidate).close()
        except BindError:
            continue
        return candidate
    return None


def tapedeck_on(host: str, port: int) -> dict[str, Any] | None:
    """What a tapedeck listening on ``host:port`` says of itself at ``/_tapedeck/health``
    (mode, cassettes), or ``None`` when nothing there answers as tapedeck does."""
    address = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    shown = f"[{address}]" if ":" in address else address
    import httpx  # only when the port is taken: serving never needs it

    try:
        # trust_env=False: a proxy from the environment must not answer for this machine.
        response = httpx.get(
            f"http://{shown}:{port}/_tapedeck/health", timeout=1.0, trust_env=False
        )
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if isinstance(body, dict) and body.get("status") == "ok" and "mode" in body:
        return body
    return None
