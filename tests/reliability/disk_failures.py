"""The disk refusing recordings: full, or read-only.

A ``tapedeck serve --mode all`` subprocess records answers of the fake upstream, JSON and
streamed, into good cassettes already there and into new ones, while its disk refuses:

- **read-only**: the cassette directory is mode 0555. Root ignores that, so a server
  started as root runs without ``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH`` and
  ``CAP_FOWNER`` (dropped from its bounding set before it starts): then it cannot write
  there either, ``EACCES``.
- **disk full**: its folder ``full/`` is writable, but the server runs under a file size
  limit (``RLIMIT_FSIZE``, 64 KiB; Python ignores ``SIGXFSZ``, so a write past it fails with
  ``EFBIG`` part way through, as one on a full disk fails with ``ENOSPC``). Each request
  carries a 100 kB system prompt, so every cassette would pass the limit. It works the same
  for root.

Then every client must have its whole answer (JSON too: the answer is good, only the disk
failed), the log one line per request naming the cassette and the reason (the errno's name)
and no traceback, the metrics ``failed`` recordings, and the directory exactly what it was:
the good cassettes byte for byte, no new file, no temporary one.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import tempfile
import time
import urllib.request
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


def _limits() -> None:
    """In the server's process: the file size limit, and (as root) no writing anywhere."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    if os.geteuid() != 0:
        return  # the directory's mode is enough
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in DAC_CAPS:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


#: The cassettes recorded into, and the errno each write must fail with: the read-only
#: directory's, and those of ``full/``, under the file size limit.
NAMES = {KEPT: "EACCES", "new/one": "EACCES", "full/kept": "EFBIG", "full/new": "EFBIG"}
MORE = {"other": "EACCES", "full/other": "EFBIG"}


def _requests(server: Server, names: list[str]) -> list[tuple[str, bool, bytes]]:
    out = []
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


def run(full: bool) -> Outcome:
    outcome = Outcome("disk_failures")
    started = time.perf_counter()
    names = {**NAMES, **MORE} if full else NAMES
    with FakeUpstream() as fake, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        kept = [root / f"{KEPT}.yaml", root / "full" / f"{KEPT}.yaml"]
        kept[1].parent.mkdir()
        for path in kept:
            path.write_text(good_cassette(), encoding="utf-8")
        before = [path.read_bytes() for path in kept]
        root.chmod(0o555)
        args = ["--cassettes", tmp, "--mode", "all", "--upstream", fake.base_url]
        server = Server([*args, "--timing", "instant"], preexec=_limits)
        answered = failed = 0
        try:
            requests = _requests(server, list(names))
            for name, stream, raw in requests:
                r = rawhttp.run(rawhttp.exchange(server.host, server.port, raw, wait_s=20))
                answered += _answered(outcome, f"{name}, stream={stream}", stream, r)
            failed = _failed_recordings(server)
        finally:
            lines = server.stop()
            root.chmod(0o755)
        found = tracebacks(lines)
        outcome.check(not found, f"a traceback in the log: {found[:2]}")
        for name, code in names.items():
            pattern = re.compile(
                rf"not recorded into {re.escape(name)}: the file could not be written: "
                rf".*\({code}\)"
            )
            said = [line for line in lines if pattern.search(line)]
            outcome.check(len(said) == 2, f"{len(said)} log lines for {name} ({code}), not 2")
        outcome.check(failed == len(requests), f"metrics say {failed} failed")
        leaked = [line for line in lines if "DISKFAIL" in line]
        outcome.check(not leaked, f"a key in the log: {leaked[:1]}")
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        expected = sorted(p.relative_to(root).as_posix() for p in kept)
        outcome.check(files == expected, f"files left: {files}")
        after = [path.read_bytes() for path in kept]
        outcome.check(after == before, "a good cassette was changed")
    outcome.figure("recordings refused: read-only (EACCES), full (EFBIG)", len(requests))
    outcome.figure("clients answered whole", answered)
    outcome.figure("files written or left (temporary included)", len(files) - len(expected))
    outcome.seconds = time.perf_counter() - started
    return outcome
