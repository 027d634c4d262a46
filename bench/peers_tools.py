"""What bench/peers.py needs besides tapedeck: the peers, installed when missing (aimock, pinned
in bench/peers/package-lock.json, and wrk from Debian's packages), aimock fixtures that serve
the bench stream, wrk runs, and checks that every server's body really is the bench stream.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers"
AIMOCK_PACKAGE = "@copilotkit/aimock"
AIMOCK_DIR = PEERS / "node_modules" / "@copilotkit" / "aimock"
AIMOCK_CLI = AIMOCK_DIR / "dist" / "cli.js"
NODE_MIN = (20, 15)  # aimock's engines field


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def rotate(items: list[Any], by: int) -> list[Any]:
    """``items`` started at index ``by`` (wrapping): each round's order of the servers."""
    by %= len(items) or 1
    return items[by:] + items[:by]


def aimock_pin() -> str:
    """The aimock version bench/peers/package.json pins."""
    document = json.loads((PEERS / "package.json").read_text())
    return str(document["dependencies"][AIMOCK_PACKAGE])


def _installed_aimock() -> str | None:
    try:
        return str(json.loads((AIMOCK_DIR / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def install_aimock() -> tuple[str | None, str]:
    """``(node, version)`` when the pinned aimock can run, else ``(None, why not)``.

    Installs it with ``npm ci`` (from the lock file) into bench/peers/ when it is missing or
    another version."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None, "Node.js and npm are not installed (aimock is a Node package)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    found = re.match(r"v(\d+)\.(\d+)", version)
    if not found or (int(found.group(1)), int(found.group(2))) < NODE_MIN:
        return None, f"aimock needs Node.js {NODE_MIN[0]}.{NODE_MIN[1]}+, this is {version}"
    pin = aimock_pin()
    if _installed_aimock() != pin:
        print(f"... installing {AIMOCK_PACKAGE} {pin} into {PEERS} (npm ci)", file=sys.stderr)
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=PEERS,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            return None, "npm ci did not finish in 10 minutes"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, "npm ci failed: " + " / ".join(tail)
    if _installed_aimock() != pin or not AIMOCK_CLI.exists():
        return None, f"npm ci did not install {AIMOCK_PACKAGE} {pin}"
    return node, f"{pin} on Node.js {version}"


# -- aimock fixtures ----------------------------------------------------------------------


def aimock_fixture(cassette: dict[str, Any], user_message: str, *, timed: bool) -> dict[str, Any]:
    """One aimock fixture answering ``user_message`` with the cassette's stream, as near as
    aimock can: the same event names and count, the same ids, model and usage.

    aimock keeps a text and cuts it into ``chunkSize``-character deltas, so the text is the
    cassette's deltas run together and cycled to exactly 100 (N) chunks: the body comes out
    within 1% of the cassette's bytes. ``timed`` adds ``recordedTimings`` (what aimock's own
    recorder writes) so events leave at the cassette's offsets."""
    response = cassette["interactions"][0]["response"]
    events = response["events"]
    deltas = [e["data"]["delta"]["text"] for e in events if e["event"] == "content_block_delta"]
    text = "".join(deltas)
    size = math.ceil(len(text) / len(deltas))
    content = (text * 2)[: size * len(deltas)]
    start = events[0]["data"]["message"]
    usage = {
        "input_tokens": start["usage"]["input_tokens"],
        "output_tokens": events[-2]["data"]["usage"]["output_tokens"],
    }
    fixture: dict[str, Any] = {
        "match": {"userMessage": user_message},
        "response": {
            "content": content,
            "id": start["id"],
            "model": start["model"],
            "usage": usage,
        },
        "chunkSize": size,
    }
    if timed:
        at = [float(e["at_ms"]) for e in events]
        fixture["recordedTimings"] = {
            "ttftMs": at[0],
            "interChunkDelaysMs": [round(b - a, 3) for a, b in itertools.pairwise(at)],
            "totalDurationMs": at[-1],
        }
    return fixture


def last_user_message(cassette: dict[str, Any]) -> str:
    return str(cassette["interactions"][0]["request"]["body"]["messages"][-1]["content"])


def write_aimock_fixture(cassette_path: Path, folder: Path, *, timed: bool) -> str:
    """The bench cassette as ``folder/bench.json``; returns the fixture's text content."""
    cassette = yaml.safe_load(cassette_path.read_text(encoding="utf-8"))
    fixture = aimock_fixture(cassette, last_user_message(cassette), timed=timed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps({"fixtures": [fixture]}), encoding="utf-8")
    return str(fixture["response"]["content"])


def write_aimock_library(cassettes: Path, root: Path) -> int:
    """One recorded-style fixture file per cassette of a library written by
    bench/startup.py (same folders, same requests, same ids); returns the bytes written."""
    total = 0
    for path in sorted(cassettes.rglob("*.yaml")):
        cassette = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        fixture = aimock_fixture(cassette, last_user_message(cassette), timed=True)
        target = root / path.parent.relative_to(cassettes) / f"{path.stem}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"fixtures": [fixture]}, indent=2)
        target.write_text(text, encoding="utf-8")
        total += len(text)
    return total


# -- checking a body ----------------------------------------------------------------------


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """``(event, data)`` of each SSE event in a body."""
    out = []
    for block in body.decode("utf-8", "replace").split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        out.append((fields.get("event", ""), fields.get("data", "")))
    return out


def same_stream(body: bytes, reference: bytes, content: str) -> str | None:
    """None when ``body`` carries the reference stream's events (names in order) with
    ``content`` as its text; else what differs."""
    got, want = sse_events(body), sse_events(reference)
    if [e for e, _ in got] != [e for e, _ in want]:
        return f"events differ: {len(got)} events, expected {len(want)} in the cassette's order"
    texts = []
    for event, data in got:
        if event == "content_block_delta":
            texts.append(json.loads(data)["delta"].get("text", ""))
    if "".join(texts) != content:
        return "the text deltas do not add up to the fixture's text"
    return None


def faulted_stream(body: bytes, reference: bytes, fault: str) -> str | None:
    """None when ``body`` is the reference stream with ``fault`` applied, as docs/faults.md
    says (a ping after every N source events; N source events then an overloaded error; a
    quota's headers, the body unchanged)."""
    kind, _, arg = fault.partition(":")
    if kind == "quota":  # headers added, the body unchanged
        return None if body == reference else "the body differs from the cassette's"
    got, want = sse_events(body), sse_events(reference)
    n = int(arg.split("=", 1)[1])
    if kind == "ping":
        pings = sum(1 for e, _ in got if e == "ping")
        if [x for x in got if x[0] != "ping"] != want or pings != len(want) // n:
            return f"{pings} pings in {len(got)} events; expected {len(want) // n} among the rest"
        return None
    if kind == "overloaded":
        if got[:n] != want[:n] or len(got) != n + 1 or got[n][0] != "error":
            return f"{len(got)} events; expected the first {n} then an error event"
        if json.loads(got[n][1])["error"]["type"] != "overloaded_error":
            return "the error event is not an overloaded_error"
        return None
    return f"no check for {fault}"
