"""Presets: named bundles of matching rules, chosen from every place a setting comes from,
combined with the user's own rules, shown by ``tapedeck show --settings``; ``miss_status``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import HELLO, ROOT, MakeServer, api_error
from tapedeck.config import ConfigError, from_file, from_flags, from_keywords, resolve
from tapedeck.config.discovery import from_pyproject
from tapedeck.config.presets import known, load, parse, presets
from tapedeck.config.settings import from_env

pytest_plugins = ["pytester"]

PRESETS = ROOT / "server/tapedeck/config/presets"

#: A request no shipped cassette answers.
UNRECORDED: dict[str, Any] = {**HELLO, "messages": [{"role": "user", "content": "unrecorded"}]}


def test_every_shipped_preset_loads_and_explains_each_rule() -> None:
    assert "claude-code" in known()
    for name in known():
        preset = load(name)
        assert preset.description, name
        lines = (PRESETS / f"{name}.yaml").read_text().splitlines()
        for rule in (*preset.normalize, *preset.ignore_body_fields, *preset.ignore_headers):
            # The comment saying what a rule neutralises is on the lines just above it.
            above = [line.strip() for line in lines[max(0, rule.line - 4) : rule.line - 1]]
            assert any(line.startswith("#") for line in above), f"{name}.yaml:{rule.line}"


@pytest.mark.parametrize(
    ("layer", "where"),
    [
        (lambda: from_flags({"presets": ["claude-cod"]}), "--preset: "),
        (lambda: from_env({"TAPEDECK_PRESETS": "claude-code,claudecode"}), "TAPEDECK_PRESETS: "),
        (lambda: from_keywords({"presets": ["claude_code"]}), "serve(presets=...): "),
    ],
)
def test_an_unknown_preset_names_the_known_ones_and_the_nearest(layer: Any, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(layer())
    message = str(caught.value)
    assert message.startswith(where)
    assert "did you mean 'claude-code'?" in message
    assert "(known presets: " + ", ".join(known()) + ")" in message


def test_presets_from_a_config_file_and_pyproject(tmp_path: Path) -> None:
    (tmp_path / "tapedeck.yaml").write_text("mode: none\npresets: [claude-code]\n")
    assert [p.name for p in resolve(from_file(tmp_path / "tapedeck.yaml")).presets] == [
        "claude-code"
    ]
    (tmp_path / "tapedeck.yaml").write_text("mode: none\npresets: [nope]\n")
    with pytest.raises(ConfigError, match=r"tapedeck.yaml:2: presets: unknown preset 'nope'"):
        resolve(from_file(tmp_path / "tapedeck.yaml"))
    (tmp_path / "pyproject.toml").write_text('[tool.tapedeck]\npresets = ["claude-code"]\n')
    layer = from_pyproject(tmp_path / "pyproject.toml")
    assert layer is not None
    assert resolve(layer).miss_code == 400


def test_a_presets_rules_add_to_the_users_and_the_users_miss_status_wins() -> None:
    user_rule = {"path": "messages.*.content", "pattern": "\\d+", "replace": "<n>"}
    settings = resolve(
        from_flags({"presets": ["claude-code"], "ignore_body_fields": "system"}),
        from_env({"TAPEDECK_NORMALIZE": json.dumps([user_rule])}),
    )
    rules = settings.match_rules()
    preset = load("claude-code")
    assert rules.normalize[: len(preset.normalize)] == tuple(r.value for r in preset.normalize)
    assert str(rules.normalize[-1]) == "messages.*.content: \\d+ -> <n>"
    assert "system" in rules.ignore_body
    assert {r.value for r in preset.ignore_body_fields} <= set(rules.ignore_body)
    assert settings.miss_code == 400
    assert resolve(from_flags({"presets": ["claude-code"], "miss_status": "404"})).miss_code == 404
    assert resolve().miss_code == 404
    with pytest.raises(ConfigError, match=r"--miss-status: expected 404 .* or 400"):
        resolve(from_flags({"miss_status": "500"}))


def test_a_presets_ignored_headers_leave_matching_whatever_match_headers_says() -> None:
    given = resolve(from_flags({"presets": ["claude-code"], "match_headers": "anthropic-beta,x-a"}))
    assert given.match_rules().headers == ("x-a",)
    assert resolve().match_rules().headers == ("anthropic-beta",)


def test_the_claude_code_preset_neutralises_where_and_when_claude_code_ran() -> None:
    """Two main requests of Claude Code 2.1.337 as it sends them, from two folders, HOMEs,
    days, git states and with two sessions (cut down to the parts that vary): equal under
    the preset, different without it."""

    def request(where: str, day: str, commit: str, session: str) -> dict[str, Any]:
        git = (
            "<system-reminder>\nAs you answer the user's questions, you can use the following "
            "context:\n# gitStatus\nThis is the git status at the start of the conversation."
            f"\n\nCurrent branch: main\n\nStatus:\n(clean)\n\nRecent commits:\n{commit}"
            "\n\nClaude Code attached this context automatically; it isn't part of the user's "
            "message.\n</system-reminder>"
        )
        environment = (
            "# Environment\nYou have been invoked in the following environment: \n"
            f" - Primary working directory: {where}/project\n - Is a git repository: true\n"
            f" - Platform: linux\n - Shell: bash\n - OS Version: Linux 6.{day[-1]}.0\n\n"
            f"Today's date is {day}."
        )
        memory = f"memory at `{where}/home/.claude/projects/-x-project/memory/`. This"
        result = f"File does not exist. Note: your current working directory is {where}/project."
        return {
            "model": "claude-opus-5-5",
            "max_tokens": 128000 if session.endswith("1") else 64000,
            "system": [
                {
                    "type": "text",
                    "text": f"x-anthropic-billing-header: cc_version=2.1.337.e{day[-1]}; "
                    f"cc_entrypoint=sdk-{day[-1]};",
                },
                {"type": "text", "text": f"You have a persistent file-based {memory} directory"},
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": git}, {"type": "text", "text": "say hi"}],
                },
                {"role": "system", "content": environment},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": result}],
                },
            ],
            "metadata": {"user_id": json.dumps({"session_id": session})},
        }

    one = request("/home/ann/work", "2026-12-07", "be1df54 first", "s-1")
    two = request("/srv/ci/run 2", "2031-03-04", "9f00e1a second\nbe1df54 first", "s-2")
    betas = [("anthropic-beta", "a,b"), ("anthropic-beta", "a")]

    def key(settings: Any, body: dict[str, Any], beta: tuple[str, str]) -> str:
        return settings.match_rules().shape("POST", "/v1/messages", [], [beta], body).key

    preset = resolve(from_flags({"presets": ["claude-code"]}))
    assert key(preset, one, betas[0]) == key(preset, two, betas[1])
    assert key(resolve(), one, betas[0]) != key(resolve(), two, betas[0])
    # What the preset leaves alone still counts: the user's words.
    other = json.loads(json.dumps(two).replace("say hi", "say bye"))
    assert key(preset, one, betas[0]) != key(preset, other, betas[0])


def test_a_broken_preset_file_says_file_line_and_field() -> None:
    with pytest.raises(ValueError, match=r"^x.yaml:3: normalize: rule 0: pattern: "):
        parse("x", "x.yaml", "description: d\nnormalize:\n  - {path: a, pattern: '('}\n")
    with pytest.raises(ValueError, match=r"^x.yaml:2: ignore: unknown key"):
        parse("x", "x.yaml", "description: d\nignore: [a]\n")
    with pytest.raises(ValueError, match=r"^x.yaml:2: miss_status: expected 404"):
        parse("x", "x.yaml", "description: d\nmiss_status: 418\n")
    with pytest.raises(ValueError, match=r"^x.yaml:2: ignore_headers: expected a list"):
        parse("x", "x.yaml", "description: d\nignore_headers: anthropic-beta\n")
    with pytest.raises(ValueError, match=r"^x.yaml:1: description: expected one line"):
        parse("x", "x.yaml", "miss_status: 400\n")
    listed = parse("x", "x.yaml", "description: d\nnormalize:\n  - {path: [a, b.c], pattern: x}\n")
    assert [str(r.value) for r in listed.normalize] == ["a: x -> ", "b.c: x -> "]


@pytest.mark.parametrize(("options", "status"), [({}, 404), ({"presets": ("claude-code",)}, 400)])
def test_a_miss_is_answered_with_the_miss_status(
    make_server: MakeServer, options: dict[str, Any], status: int
) -> None:
    settings = {k: presets(v) if k == "presets" else v for k, v in options.items()}
    with make_server(**settings) as server:
        response = httpx.post(
            f"{server.base_url}/v1/messages",
            json=UNRECORDED,
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        )
    error_type = "invalid_request_error" if status == 400 else "not_found_error"
    message = api_error(response, status, error_type)
    assert message.startswith("tapedeck: no cassette matches POST /v1/messages")


def _tapedeck(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "tapedeck", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )


def test_show_settings_names_where_each_rule_came_from(tmp_path: Path) -> None:
    rule = '{path: "system.*.text", pattern: "alpha", replace: "beta"}'
    (tmp_path / "tapedeck.yaml").write_text(
        f"presets: [claude-code]\nnormalize:\n  - {rule}\nadmin_token: hush-secret\n"
    )
    shown = _tapedeck(
        "show",
        "--settings",
        "--ignore-body-fields",
        "system",
        cwd=tmp_path,
        env={"TAPEDECK_MODE": "once"},
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "hush-secret" not in out
    # The names column is as wide as the longest setting's name.
    assert re.search(r"^  mode +once  \[TAPEDECK_MODE\]$", out, re.M), out
    presets = re.escape(f"claude-code  [{tmp_path / 'tapedeck.yaml'}:1: presets]")
    assert re.search(rf"^  presets +{presets}$", out, re.M), out
    assert f"system.*.text: alpha -> beta  [{tmp_path / 'tapedeck.yaml'}:2: normalize]" in out
    assert "    system  [--ignore-body-fields]" in out
    assert "miss_status: 400  [preset claude-code (claude-code.yaml:" in out
    assert f"  preset claude-code: {load('claude-code').description} (claude-code.yaml)" in out
    assert "    (anthropic-beta: left out)  [default; preset claude-code (claude-code.yaml:" in out
    for rule in load("claude-code").normalize:
        assert f"    {rule.value}  [preset claude-code (claude-code.yaml:{rule.line})]" in out
    # The example in docs/clients.md#presets is this output.
    documented = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
    shown_there = [line for line in documented.splitlines() if "[preset claude-code (" in line]
    assert shown_there
    for line in shown_there:
        assert line in out.splitlines(), line
    flagged = _tapedeck("show", "--settings", "--miss-status", "404", cwd=tmp_path)
    assert "miss_status: 404  [--miss-status]" in flagged.stdout
    wrong = _tapedeck("show", "--settings", "--preset", "claude", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "--preset: unknown preset 'claude'; did you mean 'claude-code'?" in wrong.stderr


def test_the_pytest_plugin_takes_presets_from_its_option_ini_and_fixture(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "cassettes").mkdir()
    pytester.makefile(".ini", pytest="[pytest]\ntapedeck_presets = claude-code\n")
    pytester.makepyfile(
        """
        def test_presets(tapedeck_server):
            assert [p.name for p in tapedeck_server.settings.presets] == ["claude-code"]
            assert tapedeck_server.settings.miss_code == 400
        """
    )
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    run.assert_outcomes(passed=1)
    wrong = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--tapedeck-preset", "claude-cod", timeout=60
    )
    assert "--tapedeck-preset: unknown preset 'claude-cod'" in wrong.stderr.str()
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def tapedeck_config():
            return {"presets": ["nope"]}
        """
    )
    pytester.makefile(".ini", pytest="[pytest]\n")
    fixture = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    assert "tapedeck_config['presets']: unknown preset 'nope'" in fixture.stdout.str()


def test_settings_made_in_python_take_preset_names() -> None:
    from tapedeck import Settings

    assert Settings(presets=("claude-code",)).presets == (load("claude-code"),)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        Settings(presets=("nope",))  # type: ignore[arg-type]
