"""What a recording costs the library: adding one cassette to libraries of 10 to 5,000.

Each recording adds (or replaces) one cassette in the loaded library, which must then find
it. The cost should not grow with the library. For each size, the median of 50 adds of a
new one-interaction cassette (each then found by its request) is printed, in ms.

    .venv/bin/python bench/library_add.py [--before SRC]

``--before SRC`` runs the same measurement with tapedeck imported from another source
tree (e.g. a worktree's ``server/``) in a subprocess, and prints both side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = (10, 100, 1000, 5000)
ADDS = 50

CASSETTE = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body: {{model: m, max_tokens: 8, messages: [{{role: user, content: "question {n}"}}]}}
    response:
      status: 200
      body: {{type: message, content: [{{type: text, text: "answer {n}"}}]}}
"""


def measure() -> dict[int, float]:
    from tapedeck import CassetteLibrary, MatchRules

    try:
        from tapedeck.cassette.load import parse_cassette
    except ImportError:  # tapedeck before the pipeline layout
        from tapedeck.cassette_load import parse_cassette  # type: ignore[import-not-found,no-redef]

    def cassette(n: int) -> object:
        return parse_cassette(CASSETTE.format(n=n), f"c{n}.yaml", f"c{n}")

    rules = MatchRules()
    result: dict[int, float] = {}
    for size in SIZES:
        library = CassetteLibrary(Path("."), [cassette(n) for n in range(size)], rules)
        times = []
        for i in range(ADDS):
            n = size + i
            new = cassette(n)
            body = {
                "model": "m",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": f"question {n}"}],
            }
            probe = rules.shape("POST", "/v1/messages", (), (), body)
            started = time.perf_counter()
            library.add(new)
            found = library.find(probe)
            times.append((time.perf_counter() - started) * 1000)
            assert found.cassette is new, "the new cassette was not found"  # type: ignore[union-attr]
        result[size] = statistics.median(times)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, metavar="SRC", help="also measure this tree")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure()))
        return 0
    now = measure()
    before: dict[str, float] = {}
    if args.before:
        env = {**os.environ, "PYTHONPATH": str(args.before)}
        done = subprocess.run(
            [sys.executable, __file__, "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        before = json.loads(done.stdout)
    print("library add + find, median of 50, ms")
    print(f"{'cassettes':>10} {'tapedeck':>10}" + (f" {'before':>10}" if before else ""))
    for size in SIZES:
        line = f"{size:>10} {now[size]:>10.3f}"
        if before:
            line += f" {before[str(size)]:>10.3f}"
        print(line)
    print(f"growth 10 -> 5000: tapedeck x{now[5000] / now[10]:.1f}", end="")
    print(f", before x{before['5000'] / before['10']:.1f}" if before else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
