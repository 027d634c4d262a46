"""Replay a framework's recording in a process of its own, as another machine would:
``python replay_elsewhere.py MODULE CASSETTES OUT`` imports the test module ``MODULE`` (its
``FRAMEWORK``), serves ``CASSETTES`` with tapedeck in ``none`` mode, makes the recorded calls and
writes what the framework made of them to ``OUT`` as JSON.

:func:`replay_elsewhere` runs it with another ``HOME``, working directory, time zone and locale,
under ``faketime`` a year and a half later, so that a request that carries any of them misses.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def as_json(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples as lists, anything else as its text)."""
    return json.loads(json.dumps(value, default=str))


def replay_elsewhere(module: str, cassettes: Path) -> Any:
    """What ``module``'s framework makes of ``cassettes`` replayed in another process, HOME,
    directory, time zone, locale and day."""
    with tempfile.TemporaryDirectory(prefix="elsewhere-") as tmp:
        place = Path(tmp)
        (place / "home").mkdir()
        later = datetime.now(UTC) + timedelta(days=550)
        env = {
            **os.environ,
            "HOME": str(place / "home"),
            "TZ": "Pacific/Kiritimati",
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
            "XDG_CACHE_HOME": str(place / "cache"),
        }
        out = place / "out.json"
        command = [
            sys.executable,
            str(HERE / "replay_elsewhere.py"),
            module,
            str(cassettes),
            str(out),
        ]
        when = later.strftime("%Y-%m-%d %H:%M:%S")
        subprocess.run(["faketime", when, *command], cwd=place, env=env, check=True, timeout=60)
        return json.loads(out.read_text())


def main() -> None:
    module, cassettes, out = sys.argv[1:]
    import framework_checks as checks

    framework = importlib.import_module(module).FRAMEWORK
    got = checks.replay(framework, checks.Recording(Path(cassettes), {}, [], {}))
    Path(out).write_text(json.dumps({"year": datetime.now().year, "replayed": as_json(got)}))


if __name__ == "__main__":
    main()
