"""A stand-in for the Files API (and a Messages endpoint that reads a file), on 127.0.0.1.

- ``POST /v1/files`` takes a ``multipart/form-data`` upload (parsed here with the standard
  library's ``email`` parser, not tapedeck's) and answers its metadata; each upload gets a
  new id (``file_up_0001``, ...), so a replay that answered with a fresh recording's ids
  would be noticed;
- ``GET /v1/files`` lists them, ``GET /v1/files/{id}`` is one's metadata,
  ``GET /v1/files/{id}/content`` its bytes with its content type, ``DELETE /v1/files/{id}``
  deletes it;
- ``POST /v1/skills`` takes a multipart skill (``display_name``, several ``files``) and
  answers a skill naming each file and its size;
- ``POST /v1/messages`` answers a message naming the file ids its ``document`` blocks cite,
  and their sizes (404 ``not_found_error`` for an unknown one);
- ``GET /v1/echo/text`` answers ``text/plain``, ``GET /v1/echo/binary`` bytes that are not
  UTF-8, ``GET /v1/echo/stream`` an event stream — endpoints tapedeck has no code for.

Every request is kept in :attr:`FilesUpstream.seen` (method, path, headers, body). Every
answer that needs the beta header checks ``anthropic-beta`` names the files beta.

``python tests/files_upstream.py`` serves it on its own (for the TypeScript suite): it prints
``files upstream on http://127.0.0.1:PORT`` and stops when its standard input closes.
"""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import json
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

BETA = "files-api-2025-04-14"
#: Bytes that are not UTF-8 (and hold a NUL, a CR LF and every byte value).
BINARY = bytes(range(256)) + b"\r\n\x00\xff\xfe"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Stored:
    id: str
    filename: str
    mime_type: str
    data: bytes

    def metadata(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": len(self.data),
            "created_at": "2026-12-07T12:00:00Z",
            "downloadable": True,
        }


@dataclass
class FilesUpstream:
    """The stand-in on a real socket: ``with FilesUpstream() as up: up.base_url``."""

    files: dict[str, Stored] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    serial: int = 0

    def __post_init__(self) -> None:
        outer = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.seen.append(Seen(self.command, self.path, headers, body))
                status, kind, payload = outer.answer(self.command, self.path, headers, body)
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(payload)))
                self.send_header("request-id", f"req_files_{len(outer.seen):04d}")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FilesUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        """The status, content type and body for one request."""
        path = target.split("?", 1)[0]
        if path == "/v1/echo/text":
            return 200, "text/plain; charset=utf-8", b"plain text\r\nwith a line ending\n"
        if path == "/v1/echo/binary":
            return 200, "application/octet-stream", BINARY
        if path == "/v1/echo/stream":
            events = b'event: tick\ndata: {"n": 1}\n\nevent: tick\ndata: {"n": 2}\n\n'
            return 200, "text/event-stream", events
        if path.startswith("/v1/echo/") and path.endswith("/uploads") and method == "POST":
            sizes = [
                len(part.get_payload(decode=True))
                for part in _parts(headers.get("content-type", ""), body)
            ]
            return 200, "application/json", json.dumps({"sizes": sizes}).encode()
        if path == "/v1/messages" and method == "POST":
            return self._message(json.loads(body))
        if path == "/v1/skills" and method == "POST":
            return self._skill(headers.get("content-type", ""), body)
        if BETA not in headers.get("anthropic-beta", ""):
            return _error(400, "invalid_request_error", f"the files beta {BETA} is needed")
        parts = path.strip("/").split("/")  # v1 files [id [content]]
        if path == "/v1/files" and method == "POST":
            return self._upload(headers.get("content-type", ""), body)
        if path == "/v1/files" and method == "GET":
            data = [f.metadata() for f in reversed(self.files.values())]
            first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
            listed = {"data": data, "has_more": False, "first_id": first, "last_id": last}
            return 200, "application/json", json.dumps(listed).encode()
        found = self.files.get(parts[2]) if len(parts) >= 3 else None
        if found is None:
            return _error(404, "not_found_error", f"no file at {path}")
        if len(parts) == 4 and parts[3] == "content" and method == "GET":
            return 200, found.mime_type, found.data
        if len(parts) == 3 and method == "GET":
            return 200, "application/json", json.dumps(found.metadata()).encode()
        if len(parts) == 3 and method == "DELETE":
            del self.files[found.id]
            return (
                200,
                "application/json",
                json.dumps({"id": found.id, "type": "file_deleted"}).encode(),
            )
        return _error(404, "not_found_error", f"no route {method} {path}")

    def _skill(self, content_type: str, body: bytes) -> tuple[int, str, bytes]:
        fields: dict[str, str] = {}
        files: list[list[Any]] = []
        for part in _parts(content_type, body):
            data = part.get_payload(decode=True)
            data = data if isinstance(data, bytes) else b""
            if part.get_filename() is None:
                fields[str(part.get_param("name", header="content-disposition"))] = data.decode()
            else:
                files.append([part.get_filename(), len(data)])
        self.serial += 1
        skill = {
            "id": f"skill_up_{self.serial:04d}",
            "type": "skill",
            "display_name": fields.get("display_name"),
            "files": files,
        }
        return 200, "application/json", json.dumps(skill).encode()

    def _upload(self, content_type: str, body: bytes) -> tuple[int, str, bytes]:
        for part in _parts(content_type, body):
            if part.get_param("name", header="content-disposition") == "file":
                self.serial += 1
                data = part.get_payload(decode=True)
                stored = Stored(
                    f"file_up_{self.serial:04d}",
                    part.get_filename() or "unnamed",
                    part.get_content_type(),
                    data if isinstance(data, bytes) else b"",
                )
                self.files[stored.id] = stored
                return 200, "application/json", json.dumps(stored.metadata()).encode()
        return _error(400, "invalid_request_error", "no part named file")

    def _message(self, body: dict[str, Any]) -> tuple[int, str, bytes]:
        cited = [
            block["source"]["file_id"]
            for message in body.get("messages", [])
            if isinstance(message.get("content"), list)
            for block in message["content"]
            if block.get("type") == "document" and block.get("source", {}).get("type") == "file"
        ]
        missing = [c for c in cited if c not in self.files]
        if missing:
            return _error(404, "not_found_error", f"File not found: {missing[0]}")
        said = "; ".join(f"{c} holds {len(self.files[c].data)} bytes" for c in cited)
        message = {
            "id": f"msg_files_{len(self.seen):04d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-fake"),
            "content": [{"type": "text", "text": said or "no file cited"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        }
        return 200, "application/json", json.dumps(message).encode()


def _parts(content_type: str, body: bytes) -> list[Any]:
    """The parts of a multipart body, read by the standard library's email parser."""
    head = f"content-type: {content_type}\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    return list(parsed.iter_parts())  # type: ignore[attr-defined]


def _error(status: int, kind: str, message: str) -> tuple[int, str, bytes]:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return status, "application/json", json.dumps(body).encode()


def main() -> None:
    """Serve the stand-in on a free port until standard input closes."""
    with FilesUpstream() as upstream:
        print(f"files upstream on {upstream.base_url}", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
