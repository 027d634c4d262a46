"""The serving process fixes glibc's large-block threshold (``server/allocator.py``): when
it does and when it leaves the allocator alone. What it saves is measured by the memory
scenario (``tests/reliability/memory.py``, docs/reliability.md)."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from tapedeck.server import allocator


class _Libc:
    def __init__(self, glibc: bool) -> None:
        self.calls: list[tuple[int, int]] = []
        if glibc:
            self.gnu_get_libc_version = lambda: b"2.36"

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return 1


@pytest.mark.parametrize(
    ("platform", "environment", "glibc", "done"),
    [
        ("linux", {}, True, True),
        ("linux", {"MALLOC_MMAP_THRESHOLD_": "131072"}, True, False),  # the user's wins
        ("linux", {}, False, False),  # musl: its own policy
        ("darwin", {}, True, False),
    ],
)
def test_when_the_threshold_is_fixed(
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    environment: dict[str, str],
    glibc: bool,
    done: bool,
) -> None:
    libc = _Libc(glibc)

    def load(name: Any) -> _Libc:
        return libc

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.delenv(allocator.ENVIRONMENT, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(ctypes, "CDLL", load)
    assert allocator.return_large_blocks() is done
    assert libc.calls == ([(allocator.M_MMAP_THRESHOLD, allocator.LARGE)] if done else [])


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator is Linux's")
def test_glibc_takes_the_setting() -> None:
    # In a process of its own: the setting lasts as long as the process.
    code = "from tapedeck.server import allocator; print(allocator.return_large_blocks())"
    env = {"PYTHONPATH": str(allocator.__file__).rsplit("/tapedeck/", 1)[0]}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "True"


def test_tapedeck_serve_fixes_it_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    from tapedeck.server import runner

    order: list[str] = []
    monkeypatch.setattr(runner, "return_large_blocks", lambda: order.append("allocator"))

    def load(settings: Any) -> Any:
        order.append("library")
        raise SystemExit(0)

    monkeypatch.setattr(runner, "load_library", load)
    monkeypatch.setattr(runner, "configure_logging", lambda: None)
    # Not this process's collector: run() freezes what start-up made.
    idle = SimpleNamespace(disable=lambda: None, enable=lambda: None, freeze=lambda: None)
    monkeypatch.setattr(runner, "gc", idle)
    with pytest.raises(SystemExit):
        runner.run(runner.Settings())
    assert order == ["allocator", "library"]
