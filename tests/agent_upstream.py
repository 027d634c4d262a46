"""A stand-in API that plays an agent, for the agent-loop tests (an httpx transport).

It answers by where the conversation is:

1. the user asked (the last message is the user's text): some text and two parallel
   ``get_weather`` calls (Paris, London), ``stop_reason: tool_use``;
2. both weathers came back: one ``get_time`` call;
3. the time came back: the final text, ``stop_reason: end_turn``.

With ``thinking`` enabled in the request every answer starts with a thinking block and its
signature. With the ``web_search`` server tool in ``tools``, the first answer is a paused
turn (``server_tool_use``, ``stop_reason: pause_turn``); the continuation (the conversation
ending with that assistant turn) gets the final text. ``system``, ``model`` and the tool
names show in the first and the final text, so calls that differ only there get different
answers.

Message threads are kept as the API keeps them: a request with ``thread: {type: create}``
stores its conversation under the reply's id; ``{type: continue, previous_message_id}``
sends only the new messages and the answer is for the rebuilt conversation. Reply ids are
unique across a run, as the API's are.
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from typing import Any

import httpx

from tapedeck.cassette.message_stream import synthesize
from tapedeck.wire.sse import encode_event

#: Every request body the stand-in answered, in order (tests clear it).
CALLS: list[dict[str, Any]] = []
#: Message threads: reply id -> the conversation (with ``system`` and ``tools``) it ends.
THREADS: dict[str, dict[str, Any]] = {}
_ids = itertools.count(1)

FINAL = "Paris is 18°C and sunny, London 12°C and raining; it is 14:05 in Paris."


def _message(n: int, content: list[dict[str, Any]], stop: str, body: dict[str, Any]) -> Any:
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        content = [
            {"type": "thinking", "thinking": f"Step {n}: what next?", "signature": f"sig-{n}"},
            *content,
        ]
    return {
        "id": f"msg_agent_{n}_{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "m"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 10 * n, "output_tokens": 5 * n},
    }


def _tool(id_: str, name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": value}


def label(body: dict[str, Any]) -> str:
    """What the answers say about the request's ``system``, ``model`` and ``tools``."""
    names = ",".join(sorted(str(t.get("name")) for t in body.get("tools", [])))
    return f"[{body.get('system', 'no system')}; {body.get('model')}; {names or 'no tools'}]"


def answer(body: dict[str, Any]) -> Any:
    """The assistant message this request gets."""
    messages = body["messages"]
    last = messages[-1]
    tools = {t.get("name") for t in body.get("tools", [])}
    content = last.get("content")
    results = (
        [b["tool_use_id"] for b in content if b.get("type") == "tool_result"]
        if isinstance(content, list)
        else []
    )
    if last["role"] == "assistant":  # continuing a paused turn
        return _message(2, [{"type": "text", "text": f"{FINAL} {label(body)}"}], "end_turn", body)
    if "web_search" in tools and not results:
        search = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}
        return _message(1, [{**search, "input": {"query": "weather"}}], "pause_turn", body)
    if "toolu_time" in results:
        text = f"{FINAL} {label(body)}"
        return _message(3, [{"type": "text", "text": text}], "end_turn", body)
    if {"toolu_paris", "toolu_london"} <= set(results):
        return _message(2, [_tool("toolu_time", "get_time", {"city": "Paris"})], "tool_use", body)
    first = [
        {"type": "text", "text": f"Let me check both cities. {label(body)}"},
        _tool("toolu_paris", "get_weather", {"city": "Paris"}),
        _tool("toolu_london", "get_weather", {"city": "London"}),
    ]
    return _message(1, first, "tool_use", body)


def _rebuilt(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request as the model sees it: a thread's conversation rebuilt; ``None`` when the
    thread it continues is not held."""
    thread = body.get("thread") or {}
    if thread.get("type") != "continue":
        return body
    held = THREADS.get(thread.get("previous_message_id"))
    if held is None:
        return None
    return {**held, **body, "messages": [*held["messages"], *body["messages"]]}


def handler(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    CALLS.append(body)
    whole = _rebuilt(body)
    if whole is None:
        error = {
            "type": "not_found_error",
            "message": "thread not found",
            "details": {"error_code": "thread_not_found"},
        }
        return httpx.Response(404, json={"type": "error", "error": error})
    message = answer(whole)
    if body.get("thread"):
        said = {"role": "assistant", "content": message["content"]}
        kept = {k: whole[k] for k in ("system", "tools") if k in whole}
        THREADS[message["id"]] = {**kept, "messages": [*whole["messages"], said]}
    if not body.get("stream"):
        return httpx.Response(200, json=message, headers={"request-id": "req_agent"})
    events = b"".join(encode_event(name, data) for name, data in synthesize(message))
    headers = {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_agent"}
    return httpx.Response(200, content=events, headers=headers)


def transport() -> httpx.MockTransport:
    return httpx.MockTransport(handler)


class AgentServer:
    """The stand-in agent on a real socket (``base_url``), for a tapedeck in another process
    (the pytest plugin's examples). ``with AgentServer() as agent: ...``."""

    def __init__(self) -> None:
        outer = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = httpx.Request("POST", self.path, content=self.rfile.read(length))
                response = handler(request)
                outer.count += 1
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.count = 0
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> AgentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
