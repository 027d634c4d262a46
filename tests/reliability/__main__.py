"""``python -m reliability`` (with ``tests`` on ``sys.path``; ``make reliability``): run the
full scenarios and print the table; exit status 1 if any failed.

    python -m reliability [--short] [--only NAME ...] [--before SRC]

``--before SRC`` also measures the scenarios that compare versions (``findings``,
``slow_readers``, ``test_ids``, ``memory``) with tapedeck imported from SRC (e.g. the
``server/`` of an older checkout).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from . import (
    disk_failures,
    findings,
    fuzz_cassettes,
    fuzz_requests,
    kill,
    many_ids,
    memory,
    secrets_scan,
    sigterm,
    slow_readers,
    soak,
    state_store,
    streams,
    upstream_failures,
)
from .outcome import Outcome, table

SCENARIOS = {
    "findings": findings.run,
    "streams": streams.run,
    "soak": soak.run,
    "slow_readers": slow_readers.run,
    "test_ids": many_ids.run,
    "fuzz_requests": fuzz_requests.run,
    "fuzz_cassettes": fuzz_cassettes.run,
    "kill": kill.run,
    "secrets": secrets_scan.run,
    "state_store": state_store.run,
    "upstream_failures": upstream_failures.run,
    "disk_failures": disk_failures.run,
    "sigterm": sigterm.run,
    "memory": memory.run,
}
COMPARED = ("findings", "slow_readers", "test_ids", "memory")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the short versions (make test)")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), metavar="NAME")
    parser.add_argument("--before", type=Path, metavar="SRC", help="also measure this tree")
    args = parser.parse_args()
    names = args.only or list(SCENARIOS)
    print(
        f"tapedeck reliability ({'short' if args.short else 'full'}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    outcomes: list[Outcome] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        run = SCENARIOS[name]
        if name in COMPARED and args.before is not None:
            outcome = run(not args.short, before=args.before)  # type: ignore[call-arg]
        else:
            outcome = run(not args.short)
        outcomes.append(outcome)
        print(table([outcome]), flush=True)
    failed = [o.name for o in outcomes if not o.ok]
    print(
        f"\n{len(outcomes) - len(failed)} of {len(outcomes)} scenarios ok"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
