"""The Docker files, read as Docker would (no engine runs here): the recording profile
writes to a volume it can write, takes the key from the environment, and never leaves
the loopback address; the build context leaves out what the image does not need."""

from __future__ import annotations

from typing import Any

import yaml

from conftest import ROOT
from tapedeck.config import Mode, Settings
from tapedeck.config.settings import from_env, resolve


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    return data


def test_the_record_profile_records_with_the_key_from_the_environment() -> None:
    recorder = compose()["services"]["recorder"]

    assert recorder["profiles"] == ["record"]
    assert all(p.startswith("127.0.0.1:") for p in recorder["ports"])
    (volume,) = recorder["volumes"]
    assert volume.endswith(":/cassettes")  # no ":ro": it writes there
    env = {k: str(v) for k, v in recorder["environment"].items()}
    settings: Settings = resolve(from_env(env))
    assert settings.mode is Mode.ONCE
    assert settings.upstream_api_key_env == "ANTHROPIC_API_KEY"
    assert env["ANTHROPIC_API_KEY"].startswith("${ANTHROPIC_API_KEY:?")  # never a literal key


def test_the_replay_service_cannot_write() -> None:
    tapedeck = compose()["services"]["tapedeck"]

    assert all(v.endswith(":ro") for v in tapedeck["volumes"])
    assert "profiles" not in tapedeck


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()

    for name in (".git", ".venv*", "tests", "**/node_modules"):
        assert name in ignored
    for needed in ("server", "cassettes", "pyproject.toml", "README.md"):
        assert needed not in ignored


def test_the_replicas_share_one_redis_behind_one_loopback_address() -> None:
    data = yaml.safe_load((ROOT / "docker" / "compose.replicas.yaml").read_text())
    services = data["services"]
    tapedeck = services["tapedeck"]
    assert tapedeck["environment"]["TAPEDECK_STATE"] == "redis://redis:6379/0"
    assert int(tapedeck["environment"]["TAPEDECK_WORKERS"]) > 1
    assert tapedeck["environment"]["TAPEDECK_ADMIN_TOKEN"] == "${TAPEDECK_ADMIN_TOKEN:-}"
    assert all(volume.endswith(":ro") for volume in tapedeck["volumes"])
    assert "ports" not in tapedeck
    assert "ports" not in services["redis"]
    assert services["front"]["ports"] == ["127.0.0.1:8765:8765"]
    nginx = (ROOT / "docker" / "replicas-nginx.conf").read_text()
    assert "proxy_buffering off;" in nginx
    assert "server tapedeck:8765;" in nginx
    # The settings the replicas are given are real ones.
    from tapedeck.config.options import OPTIONS

    known = {option.env for option in OPTIONS}
    assert set(tapedeck["environment"]) <= known
