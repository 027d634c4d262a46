"""The upstream failing while tapedeck records or passes requests through.

A ``tapedeck serve`` subprocess in ``all`` (and, in the full run, ``passthrough``) mode is
pointed at upstreams that fail the ways networks do (:mod:`.bad_upstreams`): nothing
listening, a name that does not resolve, no TLS or a certificate not trusted, a connection
never completed, headers that never come, a connection closed or reset before the headers,
a stream reset mid-way. Each request, JSON and streamed, names an existing good cassette.
Then:

- a failure before the headers is an API-shaped error — 502 ``api_error``, or 504
  ``timeout_error`` for the connection or the headers that never came — naming the upstream
  (never the password in its URL) and the reason;
- a reset mid-stream reaches the client as a cut after the events already passed on;
- the log has one line per failed request and no traceback;
- nothing is written, and the good cassette is byte for byte what it was.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fake_upstream import ask
from tapedeck.cassette.model import Interaction, RecordedRequest, RecordedResponse
from tapedeck.cassette.save import dump_cassette
from tapedeck.errors import error_type_for

from . import rawhttp
from .bad_upstreams import AFTER_REQUEST, NO_SUCH_HOST, BadUpstream, closed_port
from .outcome import Outcome
from .proc import Server, tracebacks

#: A password in the upstream URL: it must reach no answer and no log line.
PASSWORD = "hunter2-URLPASS"
KEPT = "kept"


@dataclass(frozen=True)
class Case:
    name: str
    #: Which upstream: ``mixed`` (the word picks), ``refused``, ``dns``, ``plain``, ...
    upstream: str
    status: int
    #: In the error message, after the upstream's URL.
    reason: str


CASES = [
    Case("refused", "refused", 502, "connection refused"),
    Case("dns", "dns", 502, "its host name does not resolve"),
    Case("no TLS", "plain", 502, "TLS handshake failed: it does not speak TLS"),
    Case("self-signed", "self_signed", 502, "its certificate is not trusted"),
    Case(
        "never connected", "backlog", 504, "no connection within 0.5 s (upstream_connect_timeout)"
    ),
    Case("headers never sent", "silent", 504, "no answer within 0.5 s (upstream_timeout)"),
    Case("closed before headers", "close", 502, "closed the connection without answering"),
    Case("reset before headers", "reset", 502, "the connection was reset"),
    Case("reset mid-stream", "reset_mid", 200, ""),
]
#: The upstreams the short run (make test) uses (the others: test_record_upstream_errors.py).
SHORT = ("mixed",)


def good_cassette() -> str:
    request = RecordedRequest("POST", "/v1/messages", body=ask("already recorded"))
    body = {"id": "msg_kept", "type": "message", "role": "assistant", "content": []}
    response = RecordedResponse(200, (("content-type", "application/json"),), 1.0, body=body)
    return dump_cassette([Interaction(request, response)], description="a good recording")


def _request(server: Server, case: Case, stream: bool) -> bytes:
    body = ask(f"fail:{case.upstream} please", stream=stream)
    headers = {
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-ant-api03-UPSTREAMFAIL-Zq8v",
        "x-tapedeck-cassette": KEPT,
    }
    return rawhttp.request(server.host, server.port, "POST", "/v1/messages", body, headers)


def _check(outcome: Outcome, case: Case, mode: str, stream: bool, r: rawhttp.Response) -> str:
    """Check one answer; return the upstream's URL as the answer named it (or "")."""
    what = f"{mode}, {case.name}, {'stream' if stream else 'JSON'}"
    if case.upstream == "reset_mid":
        outcome.check(r.status == 200, f"{what}: status {r.status}, not the stream's 200")
        outcome.check(not r.complete, f"{what}: the client did not see the cut")
        seen = b"message_start" in r.body and b"content_block_start" in r.body
        outcome.check(seen, f"{what}: the events before the reset were not passed on")
        return ""
    outcome.check(r.status == case.status, f"{what}: status {r.status}, not {case.status}")
    try:
        error = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        outcome.fail(f"{what}: not an API error: {r.body[:200]!r}")
        return ""
    kind = error_type_for(case.status)
    outcome.check(error.get("type") == kind, f"{what}: error type {error.get('type')}, not {kind}")
    message = str(error.get("message", ""))
    outcome.check(case.reason in message, f"{what}: {case.reason!r} not in {message!r}")
    outcome.check(PASSWORD not in message, f"{what}: the URL's password in {message!r}")
    return message


def _urls(short: bool) -> tuple[dict[str, str], list[BadUpstream]]:
    refused = f"http://user:{PASSWORD}@127.0.0.1:{closed_port()}"
    urls = {"refused": refused, "dns": f"https://{NO_SUCH_HOST}"}
    servers = [BadUpstream(b) for b in ("plain", "self_signed", "mixed", "backlog")]
    urls.update({s.behaviour: s.base_url for s in servers})
    if short:
        urls = {k: v for k, v in urls.items() if k in SHORT}
    return urls, servers


def _one_server(
    outcome: Outcome, mode: str, upstream: str, url: str, cases: list[Case], totals: dict[str, int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        kept = root / f"{KEPT}.yaml"
        kept.write_text(good_cassette(), encoding="utf-8")
        before = kept.read_bytes()
        args = ["--cassettes", tmp, "--mode", mode, "--upstream", url]
        timeouts = ["--upstream-timeout", "0.5", "--upstream-connect-timeout", "0.5"]
        server = Server([*args, *timeouts, "--timing", "instant"])
        failed = 0
        try:
            for case in cases:
                for stream in (False, True):
                    raw = _request(server, case, stream)
                    response = rawhttp.run(rawhttp.exchange(server.host, server.port, raw))
                    _check(outcome, case, mode, stream, response)
                    totals["requests"] += 1
                    failed += case.status != 200
        finally:
            lines = server.stop()
        where = f"{mode}, upstream {upstream}"
        found = tracebacks(lines)
        totals["tracebacks"] += len(found)
        outcome.check(not found, f"{where}: a traceback in the log: {found[:2]}")
        said = [line for line in lines if " unreachable: " in line]
        if upstream == "mixed":  # and one line for each reset mid-stream
            cut = [line for line in lines if "; the upstream broke off its answer " in line]
            outcome.check(len(cut) == 2, f"{where}: {len(cut)} lines for 2 streams cut")
        outcome.check(
            len(said) == failed, f"{where}: {len(said)} log lines for {failed} failures: {said}"
        )
        leaked = [line for line in lines if PASSWORD in line or "UPSTREAMFAIL" in line]
        outcome.check(not leaked, f"{where}: a secret in the log: {leaked[:1]}")
        written = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        totals["written"] += len(written) - 1
        outcome.check(written == [f"{KEPT}.yaml"], f"{where}: files written: {written}")
        outcome.check(kept.read_bytes() == before, f"{where}: the good cassette was changed")


def run(full: bool) -> Outcome:
    outcome = Outcome("upstream_failures")
    started = time.perf_counter()
    urls, servers = _urls(short=not full)
    totals = {"requests": 0, "tracebacks": 0, "written": 0}
    modes = ("all", "passthrough") if full else ("all",)
    try:
        for mode in modes:
            for upstream, url in urls.items():
                cases = [
                    c
                    for c in CASES
                    if c.upstream == upstream
                    or (upstream == "mixed" and c.upstream in AFTER_REQUEST)
                ]
                _one_server(outcome, mode, upstream, url, cases, totals)
    finally:
        for server in servers:
            server.close()
    outcome.figure("modes x failure kinds", f"{len(modes)} x {len({c.name for c in CASES})}")
    outcome.figure("requests answered (JSON and streamed)", totals["requests"])
    outcome.figure("tracebacks in the log", totals["tracebacks"])
    outcome.figure("files written, good cassette changed", totals["written"])
    outcome.seconds = time.perf_counter() - started
    return outcome
