"""A client socket whose reads carry the kernel's receive time (``SO_TIMESTAMPNS``), for
bench/loadgen.py's timing job: the arrival of each event without the client's own lag."""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from http_conn import Conn

# Kernel receive timestamps: SO_TIMESTAMPNS (SCM_TIMESTAMPNS) is 35 on Linux x86 and arm;
# Python 3.11 has no constant for it. The payload is a struct timespec (CLOCK_REALTIME).
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_KERNEL_STAMPS = sys.platform.startswith("linux") and struct.calcsize("q") == 8
_CMSG_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0


class StampedSocket:
    """Timing: a plain non-blocking socket read with ``recvmsg`` to get kernel timestamps."""

    def __init__(self, conn: Conn, host: str, port: int) -> None:
        self.conn = conn
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.kernel = _KERNEL_STAMPS and _CMSG_SPACE > 0
        if self.kernel:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            except OSError:
                self.kernel = False
        self.sock.setblocking(False)
        self.stamped = 0
        conn.write = self.sock.send  # type: ignore[assignment]  # a request fits the buffer
        conn.close = self.shut
        asyncio.get_running_loop().add_reader(self.sock, self.readable)

    def readable(self) -> None:
        conn = self.conn
        for _ in range(64):  # bounded: yield to the loop now and then
            try:
                if self.kernel:
                    data, ancillary, _, _ = self.sock.recvmsg(65536, _CMSG_SPACE)
                else:
                    data, ancillary = self.sock.recv(65536), []
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.shut()
                conn.lost(repr(exc))
                return
            now = time.perf_counter()
            if not data:
                self.shut()
                conn.lost("EOF")
                return
            kernel = now
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", payload[:16])
                    kernel = seconds + nanoseconds / 1e9
                    self.stamped += 1
            conn.feed(data, now, kernel)

    def shut(self) -> None:
        if self.sock.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(self.sock)
            self.sock.close()
