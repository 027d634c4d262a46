"""The built wheel, installed alone in a fresh venv, started the way docker/Dockerfile does.

Builds the wheel from what the Dockerfile copies, installs it without dev extras, runs the
Dockerfile's CMD with its ENV (only port, host and cassette directory overridden), runs its
HEALTHCHECK, and replays streaming/hello with the official SDK.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import anthropic
import httpx

from conftest import CASSETTES, ROOT
from tapedeck.cassette.load import load_cassette

DOCKERFILE = ROOT / "docker" / "Dockerfile"
SLOW = 600  # seconds allowed for building and installing
TIMEOUT = 30


def instructions(path: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def env_pairs(arguments: str) -> dict[str, str]:
    words = shlex.split(arguments)
    if words and "=" not in words[0]:  # the legacy form: ENV KEY value with spaces
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def clean_env() -> dict[str, str]:
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "__PYVENV_LAUNCHER__")
    return {k: v for k, v in os.environ.items() if not k.startswith("TAPEDECK_") and k not in drop}


def check(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=SLOW,
        check=False,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def build_context(src: Path, steps: list[tuple[str, str]]) -> None:
    """Copy what the Dockerfile COPYs before it installs the package into ``src``."""
    for keyword, arguments in steps:
        if keyword == "RUN" and "pip install" in arguments:
            return
        if keyword != "COPY":
            continue
        words = [w for w in shlex.split(arguments) if not w.startswith("--")]
        *sources, dest = words
        for source in sources:
            origin = ROOT / source
            target = src / dest / origin.name if dest.endswith("/") else src / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(
                    origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
                )
            else:
                shutil.copyfile(origin, target)
    raise AssertionError("the Dockerfile never runs pip install")


def test_wheel_in_a_fresh_venv_runs_like_the_docker_image(tmp_path: Path) -> None:
    steps = instructions(DOCKERFILE)
    keywords = [k for k, _ in steps]

    # --- what the Dockerfile declares ---------------------------------------------------
    docker_env: dict[str, str] = {}
    for keyword, arguments in steps:
        if keyword == "ENV":
            docker_env.update(env_pairs(arguments))
    tapedeck_env = {k: v for k, v in docker_env.items() if k.startswith("TAPEDECK_")}
    assert {"TAPEDECK_HOST", "TAPEDECK_PORT", "TAPEDECK_CASSETTES"} <= set(tapedeck_env)

    (cmd_args,) = [a for k, a in steps if k == "CMD"]
    cmd = json.loads(cmd_args)
    assert isinstance(cmd, list)
    assert cmd[0] == "tapedeck"

    (volume_args,) = [a for k, a in steps if k == "VOLUME"]
    volumes = json.loads(volume_args) if volume_args.startswith("[") else volume_args.split()
    assert tapedeck_env["TAPEDECK_CASSETTES"] in volumes

    users = [a for k, a in steps if k == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")

    (health_args,) = [a for k, a in steps if k == "HEALTHCHECK"]
    _, sep, health_cmd_args = health_args.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {health_args}"
    health_cmd = json.loads(health_cmd_args)
    assert health_cmd[0] == "python"

    (expose,) = [a for k, a in steps if k == "EXPOSE"]
    assert expose.split("/")[0] == tapedeck_env["TAPEDECK_PORT"]

    # --- build the wheel from what the Dockerfile copies, install it alone ---------------
    src, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    build_context(src, steps)
    check(sys.executable, "-m", "build", "--wheel", "--outdir", dist, src)
    (wheel,) = dist.glob("tapedeck_mock-*.whl")

    # The venv gets no pip of its own (ensurepip took half this test's time): the pip of the
    # running interpreter installs into it, resolving against nothing but the new venv.
    check(sys.executable, "-m", "venv", "--without-pip", venv)
    bin_dir = venv / "bin"
    python = bin_dir / "python"
    check(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", wheel)

    where = check(
        python,
        "-c",
        "import importlib.util, tapedeck; print(tapedeck.__file__); "
        "print(importlib.util.find_spec('anthropic'), importlib.util.find_spec('pytest'))",
        cwd=tmp_path,
    ).splitlines()
    assert Path(where[0]).is_relative_to(venv), where  # the wheel, not the work tree
    assert where[1] == "None None"  # no dev extras came along

    # --- run the image's CMD with its ENV ------------------------------------------------
    volume = tmp_path / "volume" / "cassettes"
    shutil.copytree(CASSETTES, volume)
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {
        **clean_env(),
        **tapedeck_env,
        "TAPEDECK_PORT": str(port),
        "TAPEDECK_HOST": "127.0.0.1",
        "TAPEDECK_CASSETTES": str(volume),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    program = shutil.which(cmd[0], path=str(bin_dir))
    assert program == str(bin_dir / "tapedeck")

    server = subprocess.Popen(
        [program, *cmd[1:]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=home,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def next_line() -> str:
        line = lines.get(timeout=TIMEOUT)
        assert line is not None, f"tapedeck exited with {server.wait(TIMEOUT)}"
        return line

    try:
        start = next_line()
        mode = tapedeck_env.get("TAPEDECK_MODE", "none")
        timing = tapedeck_env.get("TAPEDECK_TIMING", "recorded")
        assert start.endswith(
            f" tapedeck {mode} mode on http://127.0.0.1:{port}, 7 cassettes from {volume}, "
            f"timing {timing}"
        ), start

        health_check = subprocess.run(
            [str(python), *health_cmd[1:]],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert health_check.returncode == 0, health_check.stderr
        assert "/_tapedeck/health" in next_line()

        health = httpx.get(f"http://127.0.0.1:{port}/_tapedeck/health", timeout=TIMEOUT)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "mode": "none", "cassettes": 7}
        assert "/_tapedeck/health 200" in next_line()

        recorded = load_cassette(volume / "streaming" / "hello.yaml", "streaming/hello")
        body = dict(recorded.interactions[0].request.body)
        assert body.pop("stream") is True  # messages.stream() sends it itself
        with (
            anthropic.Anthropic(
                base_url=f"http://127.0.0.1:{port}", api_key="test-key", max_retries=0
            ) as client,
            client.messages.stream(**body) as stream,
        ):
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "Hello!"
        assert final.content[0].type == "text"
        assert final.content[0].text == "Hello!"
        assert final.stop_reason == "end_turn"
        assert " POST /v1/messages 200 streaming/hello " in next_line()

        # The web view's files ship inside the wheel.
        for asset in ("", "app.js", "timeline.js", "style.css"):
            ui = httpx.get(f"http://127.0.0.1:{port}/_tapedeck/ui/{asset}", timeout=TIMEOUT)
            assert ui.status_code == 200, asset
            assert f"/_tapedeck/ui/{asset} 200" in next_line()
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)  # what `docker stop` sends
        server.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
        assert server.stderr is not None
        server.stderr.close()

    rest = []
    while (line := lines.get(timeout=TIMEOUT)) is not None:
        rest.append(line)
    assert "Traceback" not in "\n".join(rest), rest

    # With the server gone the same HEALTHCHECK reports unhealthy.
    unhealthy = subprocess.run(
        [str(python), *health_cmd[1:]],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert unhealthy.returncode != 0
