"""make floors: the suite's floors run — tapedeck with the OLDEST release of each dependency.

pyproject.toml's floors (``starlette>=0.40``, ``uvicorn>=0.30``, ...) are promises to users
who pin older packages. This resolves every dependency and every extra to the lowest
release its range allows (``uv pip compile --resolution lowest-direct``), installs that set
in a throwaway environment with the test tools (resolved with the floors as
constraints, so that no tool moves a floor), and runs the tests that reach each dependency: the HTTP server and
its protocol subclass (uvicorn, httptools), streaming (starlette, sse-starlette), the
upstream client (httpx), recording (anyio), cassettes (pyyaml, yaml-rs), workers (redis)
and SigV4 re-signing (botocore). ``make drift`` runs it after the newest-release run, so
both ends of every range are tested.

Usage: python3 .ci/floors.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The tests run on the floors: each reaches one or more dependencies' code paths.
TESTS = [
    "tests/test_replay_sdk.py",
    "tests/test_framing.py",
    "tests/test_malformed_http.py",
    "tests/test_slow_clients.py",
    "tests/test_stream_end.py",
    "tests/test_access.py",
    "tests/test_record_replay.py",
    "tests/test_record_upstream_errors.py",
    "tests/test_faults_stream.py",
    "tests/test_cassette_load.py",
    "tests/test_fast_yaml.py",
    "tests/test_workers.py",
    "tests/test_platforms_upstream.py",
]
#: The test tools, at the versions the lock has (what the suite needs beyond tapedeck).
TOOLS = ["anthropic[bedrock,vertex,aws,google-cloud]", "pytest", "pytest-xdist", "hypothesis"]


def locked(name: str) -> str:
    """``name==version`` as the development environment has it."""
    out = subprocess.run(
        [
            str(ROOT / ".venv/bin/python"),
            "-c",
            f"import importlib.metadata as m; print(m.version({name.split('[')[0]!r}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{name}=={out}"


def run(cmd: list[str], **kw: object) -> int:
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=False, **kw).returncode  # type: ignore[call-overload, no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the throwaway environment")
    args = parser.parse_args()
    uv = str(ROOT / ".venv/bin/uv")
    work = Path(tempfile.mkdtemp(prefix="tapedeck-floors-"))
    venv, floors = work / "venv", work / "floors.txt"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    try:
        compile_ = [
            uv,
            "pip",
            "compile",
            str(ROOT / "pyproject.toml"),
            "--all-extras",
            "--resolution",
            "lowest-direct",
            "--quiet",
            "-o",
            str(floors),
        ]
        if run(compile_, env=env) != 0:
            print("floors: the lowest releases the ranges allow cannot be installed together")
            return 2
        print(floors.read_text())
        python = sys.executable
        pip = [uv, "pip", "install", "--quiet", "--python", str(venv / "bin/python")]
        steps = [
            [uv, "venv", "--quiet", "--python", python, str(venv)],
            # The test tools, resolved with the floors as constraints: a tool that cannot
            # live with a floor fails here, saying which.
            [*pip, "-c", str(floors), "-r", str(floors), *(locked(tool) for tool in TOOLS)],
            [*pip, "--no-deps", "-e", str(ROOT)],
        ]
        for step in steps:
            if run(step, env=env) != 0:
                print("floors: the environment could not be made (see above)")
                return 2
        run([uv, "pip", "list", "--python", str(venv / "bin/python")], env=env)
        tests = [t for t in TESTS if (ROOT / t).exists()]
        return run(
            [
                str(venv / "bin/pytest"),
                "-q",
                "-p",
                "no:cacheprovider",
                "-n",
                "auto",
                "--dist",
                "loadfile",
                *tests,
            ],
            cwd=ROOT,
            env=env,
        )
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
