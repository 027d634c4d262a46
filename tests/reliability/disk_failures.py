"""The disk refusing recordings: full, or read-only.

A ``tapedeck serve --mode all`` subprocess records answers of the fake upstream, JSON and
streamed, into a good cassette already there and into new ones, while its disk refuses:

- **disk full**: the server runs under a file size limit (``RLIMIT_FSIZE``, 64 KiB; Python
  ignores ``SIGXFSZ``, so a write past it fails with ``EFBIG`` part way through, as one on a
  full disk fails with ``ENOSPC``). Each request carries a 100 kB system prompt, so every
  cassette would pass the limit. It works the same for root.
- **read-only**: the cassette directory is mode 0555. Root ignores that, so a server
  started as root runs without ``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH`` and
  ``CAP_FOWNER`` (dropped from its bounding set before it starts): then it cannot write
  there either, ``EACCES``.

Then every client must have its whole answer (JSON too: the answer is good, only the disk
failed), the log one line per request naming the cassette and the reason (the errno's name)
and no traceback, the metrics ``failed`` recordings, and the directory exactly what it was:
the good cassette byte for byte, no new file, no temporary one.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from fake_upstream import FakeUpstream, ask

from . import rawhttp
from .outcome import Outcome
from .proc import Server, tracebacks
from .upstream_failures import KEPT, good_cassette

#: The file size limit of the "disk full" server; every cassette recorded is larger.
FILE_LIMIT = 64 * 1024
PR_CAPBSET_DROP = 24
#: CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root write anywhere.
DAC_CAPS = (1, 2, 3)


def _file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


def _no_dac_override() -> None:
    if os.geteuid() != 0:
        return  # the directory's mode is enough
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in DAC_CAPS:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


#: (name, what runs in the server's process before it starts, the mode of the directory,
#: the errno the log must name)
CASES: list[tuple[str, Callable[[], None], int, str]] = [
    ("disk full", _file_limit, 0o755, "EFBIG"),
    ("read-only", _no_dac_override, 0o555, "EACCES"),
]


def _requests(server: Server, short: bool) -> list[tuple[str, bool, bytes]]:
    out = []
    names = [KEPT, "new/one"] if short else [KEPT, "new/one", "new/two", "other"]
    for name in names:
        for stream in (False, True):
            body = ask(f"answer {name.replace('/', ' ')} {'streamed' if stream else 'whole'}")
            body["stream"] = stream
            body["system"] = "padding " * 12_500  # 100 kB: past the file size limit
            headers = {
                "anthropic-version": "2023-06-01",
                "x-api-key": "sk-ant-api03-DISKFAIL-Zq8v",
                "x-tapedeck-cassette": name,
            }
            raw = rawhttp.request(server.host, server.port, "POST", "/v1/messages", body, headers)
            out.append((name, stream, raw))
    return out


def _answered(outcome: Outcome, what: str, stream: bool, r: rawhttp.Response) -> bool:
    ok = r.status == 200 and r.complete
    if ok and stream:
        ok = b"event: message_stop" in r.body
    elif ok:
        ok = r.json().get("type") == "message"
    outcome.check(ok, f"{what}: not answered whole: {r.status}, {r.error} {r.body[:120]!r}")
    return ok


def _failed_recordings(server: Server) -> int:
    url = f"http://{server.host}:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = re.search(r'^tapedeck_recordings_total\{result="failed"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


def _one(
    outcome: Outcome,
    fake: FakeUpstream,
    case: tuple[str, Callable[[], None], int, str],
    short: bool,
) -> dict[str, int]:
    label, preexec, mode, code = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        kept = root / f"{KEPT}.yaml"
        kept.write_text(good_cassette(), encoding="utf-8")
        before = kept.read_bytes()
        root.chmod(mode)
        args = ["--cassettes", tmp, "--mode", "all", "--upstream", fake.base_url]
        server = Server([*args, "--timing", "instant"], preexec=preexec)
        answered = failed = 0
        try:
            requests = _requests(server, short)
            for name, stream, raw in requests:
                r = rawhttp.run(rawhttp.exchange(server.host, server.port, raw, wait_s=20))
                answered += _answered(outcome, f"{label}, {name}, stream={stream}", stream, r)
            failed = _failed_recordings(server)
        finally:
            lines = server.stop()
            root.chmod(0o755)
        found = tracebacks(lines)
        outcome.check(not found, f"{label}: a traceback in the log: {found[:2]}")
        for name in {n for n, _, _ in requests}:
            pattern = re.compile(
                rf"not recorded into {re.escape(name)}: the file could not be written: "
                rf".*\({code}\)"
            )
            said = [line for line in lines if pattern.search(line)]
            outcome.check(len(said) == 2, f"{label}: {len(said)} log lines for {name}, not 2")
        outcome.check(failed == len(requests), f"{label}: metrics say {failed} failed")
        leaked = [line for line in lines if "DISKFAIL" in line]
        outcome.check(not leaked, f"{label}: a key in the log: {leaked[:1]}")
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        outcome.check(files == [f"{KEPT}.yaml"], f"{label}: files left: {files}")
        outcome.check(kept.read_bytes() == before, f"{label}: the good cassette was changed")
    return {"requests": len(requests), "answered": answered, "files": len(files) - 1}


def run(full: bool) -> Outcome:
    outcome = Outcome("disk_failures")
    started = time.perf_counter()
    totals = {"requests": 0, "answered": 0, "files": 0}
    with FakeUpstream() as fake:
        for case in CASES:
            for what, count in _one(outcome, fake, case, short=not full).items():
                totals[what] += count
    outcome.figure("disk failures (file size limit, read-only directory)", len(CASES))
    outcome.figure("recordings refused by the disk", totals["requests"])
    outcome.figure("clients answered whole", totals["answered"])
    outcome.figure("files written or left (temporary included)", totals["files"])
    outcome.seconds = time.perf_counter() - started
    return outcome
