"""What a replaying server does not import: start-up pays for what every request needs, and
the HTTP client to the upstream, the Prometheus client and the journal's typed entries (for
tests) only when something uses them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Runs a real server on a thread, replays one stream over a socket (urllib: the test's own
#: client must not be the import it looks for), then prints the heavy modules loaded.
SCRIPT = textwrap.dedent(
    """
    import json, sys, urllib.request
    import tapedeck
    from pathlib import Path

    def post(url, body):
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), method="POST",
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
        )
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()

    body = {"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
            "messages": [{"role": "user", "content": "Hello"}]}
    with tapedeck.serve(sys.argv[1], mode=sys.argv[2], timing="instant") as server:
        status, data = post(server.base_url + "/v1/messages", body)
        assert status == 200 and b"message_stop" in data, (status, data[:200])
        loaded = [m for m in ("httpx", "prometheus_client", "tapedeck.observe.entries")
                  if m in sys.modules]
        if sys.argv[3] == "scrape":
            with urllib.request.urlopen(server.base_url + "/metrics") as response:
                assert b"tapedeck_requests_total" in response.read()
    print(json.dumps(loaded))
    """
)


def _loaded(mode: str, then: str = "") -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "cassettes"), mode, then],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    out: list[str] = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    return out


def test_a_replaying_server_loads_no_http_client_and_no_prometheus() -> None:
    assert _loaded("none", "scrape") == []


def test_a_server_that_may_go_upstream_makes_its_client_at_start() -> None:
    assert _loaded("new_episodes") == ["httpx"]
