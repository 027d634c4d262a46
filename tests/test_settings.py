"""settings.resolve: flag > env > config file > default, and errors that name their source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tapedeck.cassette.matching import MatchRules
from tapedeck.config import OPTIONS, Mode, Settings, from_env, from_file, from_flags
from tapedeck.config import resolve as resolve_layers
from tapedeck.errors import ConfigError
from tapedeck.shaping.timing import SPEC_HELP, Timing
from tapedeck.source.sequences import SequenceEnd


def resolve(flags: dict[str, Any], env: dict[str, str], file: Path | None = None) -> Settings:
    """Settings as the command line resolves them: flags, then env, then the file."""
    layers = [from_flags(flags), from_env(env)]
    if file is not None:
        layers.append(from_file(file))
    return resolve_layers(*layers)


KNOWN = ", ".join(
    [
        "mode",
        "cassettes",
        "host",
        "port",
        "timing",
        "max_body_size",
        "max_file_size",
        "max_client_buffer",
        "write_timeout",
        "max_header_size",
        "max_delay",
        "max_test_ids",
        "sequence_end",
        "match_headers",
        "ignore_body_fields",
        "faults",
        "upstream",
        "upstream_api_key_env",
        "upstream_form",
        "upstream_timeout",
        "upstream_connect_timeout",
        "record_drain_timeout",
        "record_shutdown_timeout",
        "allowed_hosts",
        "allowed_origins",
        "upload_paths",
        "admin_token",
        "redact_headers",
        "record_errors",
        "redact_patterns",
        "before_record_request",
        "before_record_response",
        "normalize",
        "presets",
        "miss_status",
        "validate",
        "index_cache",
        "load",
        "event_cache",
        "library_max_bytes",
        "library_request_max_bytes",
        "workers",
        "state",
        "state_ttl",
        "journal_size",
        "journal_body_limit",
        "journal_max_bytes",
        "request_cache_bytes",
        "plan_cache_bytes",
        "metrics",
        "metrics_max_rows",
    ]
)


def config(tmp_path: Path, text: str, name: str = "tapedeck.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(flags: dict[str, Any], env: dict[str, str], file: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        resolve(flags, env, file)
    return str(info.value)


def test_defaults() -> None:
    settings = resolve({}, {})

    assert settings == Settings()
    assert settings.mode is Mode.REPLAY
    assert settings.cassettes == Path("cassettes")
    assert settings.host == "127.0.0.1"
    assert settings.port == 8765
    assert settings.timing == Timing.parse("recorded")
    assert settings.max_body_size == 32 * 1024 * 1024
    assert settings.sequence_end is SequenceEnd.REPEAT
    assert settings.match_headers == ("anthropic-beta",)
    assert settings.ignore_body_fields == ("metadata.user_id",)
    assert settings.match_rules() == MatchRules()


def test_every_option_has_a_flag_and_an_env_var() -> None:
    assert [(o.key, o.flag, o.env) for o in OPTIONS] == [
        ("mode", "--mode", "TAPEDECK_MODE"),
        ("cassettes", "--cassettes", "TAPEDECK_CASSETTES"),
        ("host", "--host", "TAPEDECK_HOST"),
        ("port", "--port", "TAPEDECK_PORT"),
        ("timing", "--timing", "TAPEDECK_TIMING"),
        ("max_body_size", "--max-body-size", "TAPEDECK_MAX_BODY_SIZE"),
        ("max_file_size", "--max-file-size", "TAPEDECK_MAX_FILE_SIZE"),
        ("max_client_buffer", "--max-client-buffer", "TAPEDECK_MAX_CLIENT_BUFFER"),
        ("write_timeout", "--write-timeout", "TAPEDECK_WRITE_TIMEOUT"),
        ("max_header_size", "--max-header-size", "TAPEDECK_MAX_HEADER_SIZE"),
        ("max_delay", "--max-delay", "TAPEDECK_MAX_DELAY"),
        ("max_test_ids", "--max-test-ids", "TAPEDECK_MAX_TEST_IDS"),
        ("sequence_end", "--sequence-end", "TAPEDECK_SEQUENCE_END"),
        ("match_headers", "--match-headers", "TAPEDECK_MATCH_HEADERS"),
        ("ignore_body_fields", "--ignore-body-fields", "TAPEDECK_IGNORE_BODY_FIELDS"),
        ("faults", "--fault", "TAPEDECK_FAULTS"),
        ("upstream", "--upstream", "TAPEDECK_UPSTREAM"),
        ("upstream_api_key_env", "--upstream-api-key-env", "TAPEDECK_UPSTREAM_API_KEY_ENV"),
        ("upstream_form", "--upstream-form", "TAPEDECK_UPSTREAM_FORM"),
        ("upstream_timeout", "--upstream-timeout", "TAPEDECK_UPSTREAM_TIMEOUT"),
        (
            "upstream_connect_timeout",
            "--upstream-connect-timeout",
            "TAPEDECK_UPSTREAM_CONNECT_TIMEOUT",
        ),
        ("record_drain_timeout", "--record-drain-timeout", "TAPEDECK_RECORD_DRAIN_TIMEOUT"),
        (
            "record_shutdown_timeout",
            "--record-shutdown-timeout",
            "TAPEDECK_RECORD_SHUTDOWN_TIMEOUT",
        ),
        ("allowed_hosts", "--allowed-hosts", "TAPEDECK_ALLOWED_HOSTS"),
        ("allowed_origins", "--allowed-origins", "TAPEDECK_ALLOWED_ORIGINS"),
        ("upload_paths", "--upload-paths", "TAPEDECK_UPLOAD_PATHS"),
        ("admin_token", "--admin-token", "TAPEDECK_ADMIN_TOKEN"),
        ("redact_headers", "--redact-headers", "TAPEDECK_REDACT_HEADERS"),
        ("record_errors", "--record-errors", "TAPEDECK_RECORD_ERRORS"),
        ("redact_patterns", "--redact-pattern", "TAPEDECK_REDACT_PATTERNS"),
        ("before_record_request", "--before-record-request", "TAPEDECK_BEFORE_RECORD_REQUEST"),
        ("before_record_response", "--before-record-response", "TAPEDECK_BEFORE_RECORD_RESPONSE"),
        ("normalize", "--normalize", "TAPEDECK_NORMALIZE"),
        ("presets", "--preset", "TAPEDECK_PRESETS"),
        ("miss_status", "--miss-status", "TAPEDECK_MISS_STATUS"),
        ("validate", "--validate", "TAPEDECK_VALIDATE"),
        ("index_cache", "--index-cache", "TAPEDECK_INDEX_CACHE"),
        ("load", "--load", "TAPEDECK_LOAD"),
        ("event_cache", "--event-cache", "TAPEDECK_EVENT_CACHE"),
        ("library_max_bytes", "--library-max-bytes", "TAPEDECK_LIBRARY_MAX_BYTES"),
        (
            "library_request_max_bytes",
            "--library-request-max-bytes",
            "TAPEDECK_LIBRARY_REQUEST_MAX_BYTES",
        ),
        ("workers", "--workers", "TAPEDECK_WORKERS"),
        ("state", "--state", "TAPEDECK_STATE"),
        ("state_ttl", "--state-ttl", "TAPEDECK_STATE_TTL"),
        ("journal_size", "--journal-size", "TAPEDECK_JOURNAL_SIZE"),
        ("journal_body_limit", "--journal-body-limit", "TAPEDECK_JOURNAL_BODY_LIMIT"),
        ("journal_max_bytes", "--journal-max-bytes", "TAPEDECK_JOURNAL_MAX_BYTES"),
        ("request_cache_bytes", "--request-cache-bytes", "TAPEDECK_REQUEST_CACHE_BYTES"),
        ("plan_cache_bytes", "--plan-cache-bytes", "TAPEDECK_PLAN_CACHE_BYTES"),
        ("metrics", "--metrics", "TAPEDECK_METRICS"),
        ("metrics_max_rows", "--metrics-max-rows", "TAPEDECK_METRICS_MAX_ROWS"),
    ]


# key, flag text, env text, config-file YAML value, and what each one resolves to.
LAYERS = [
    pytest.param("host", "127.0.0.2", "127.0.0.3", "'::1'", "127.0.0.2", "127.0.0.3", "::1"),
    pytest.param("port", "9001", "9002", "9003", 9001, 9002, 9003),
    pytest.param(
        "timing",
        "instant",
        "speed=2",
        "fixed=10",
        Timing.parse("instant"),
        Timing.parse("speed=2"),
        Timing.parse("fixed=10"),
    ),
    pytest.param("max_body_size", "32MiB", "512KiB", "1048576", 32 << 20, 512 << 10, 1 << 20),
    pytest.param("journal_size", "5", "0", "7", 5, 0, 7),
    pytest.param("journal_body_limit", "1KiB", "2048", "1MiB", 1024, 2048, 1 << 20),
    pytest.param("metrics", False, "true", "false", False, True, False),
    pytest.param(
        "sequence_end",
        "error",
        "repeat",
        "error",
        SequenceEnd.ERROR,
        SequenceEnd.REPEAT,
        SequenceEnd.ERROR,
    ),
    pytest.param(
        "match_headers",
        "x-a,x-b",
        "x-c",
        "[anthropic-beta, x-d]",
        ("x-a", "x-b"),
        ("x-c",),
        ("anthropic-beta", "x-d"),
    ),
    pytest.param(
        "ignore_body_fields",
        "system",
        "metadata.user_id, messages.*.cache_control",
        "[tools.0]",
        ("system",),
        ("metadata.user_id", "messages.*.cache_control"),
        ("tools.0",),
    ),
]


@pytest.mark.parametrize(
    ("key", "flag", "env", "file", "flag_value", "env_value", "file_value"), LAYERS
)
def test_precedence_flag_env_file_default(
    tmp_path: Path,
    key: str,
    flag: str,
    env: str,
    file: str,
    flag_value: Any,
    env_value: Any,
    file_value: Any,
) -> None:
    option = next(o for o in OPTIONS if o.key == key)
    cfg = config(tmp_path, f"# settings\n{key}: {file}\n")
    default = getattr(Settings(), key)

    assert getattr(resolve({}, {}), key) == default
    assert getattr(resolve({key: None}, {}, cfg), key) == file_value
    assert getattr(resolve({}, {option.env: env}, cfg), key) == env_value
    assert getattr(resolve({key: flag}, {option.env: env}, cfg), key) == flag_value
    assert getattr(resolve({key: flag}, {}), key) == flag_value
    assert getattr(resolve({}, {option.env: env}), key) == env_value


def test_precedence_for_cassettes(tmp_path: Path) -> None:
    cfg = config(tmp_path / "conf", "cassettes: from-file\n")

    assert resolve({}, {}).cassettes == Path("cassettes")
    assert resolve({}, {}, cfg).cassettes == tmp_path / "conf" / "from-file"
    env = {"TAPEDECK_CASSETTES": "from-env"}
    assert resolve({}, env, cfg).cassettes == Path("from-env")  # env is not made relative
    assert resolve({"cassettes": "from-flag"}, env, cfg).cassettes == Path("from-flag")


def test_precedence_for_mode_only_the_winner_is_parsed(tmp_path: Path) -> None:
    """Precedence shows in which value gets checked: a bad loser is never parsed."""
    bad_file = config(tmp_path, "mode: rec\n")

    assert resolve({"mode": "replay"}, {"TAPEDECK_MODE": "rec"}, bad_file).mode is Mode.REPLAY
    assert resolve({}, {"TAPEDECK_MODE": "AUTO"}, bad_file).mode is Mode.AUTO
    assert resolve({}, {}, config(tmp_path, "mode: Record\n", "ok.yaml")).mode is Mode.RECORD
    assert config_error({}, {}, bad_file).startswith(f"{bad_file}:1: mode: ")
    assert config_error({}, {"TAPEDECK_MODE": "rec"}, bad_file).startswith("TAPEDECK_MODE: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32MiB", 32 * 1024 * 1024),
        ("512KiB", 512 * 1024),
        ("512kib", 512 * 1024),
        ("1GiB", 1024**3),
        ("10 kb", 10_000),
        ("2MB", 2_000_000),
        ("1048576", 1_048_576),
        ("100b", 100),
    ],
)
def test_max_body_size_units(text: str, expected: int) -> None:
    assert resolve({"max_body_size": text}, {}).max_body_size == expected


@pytest.mark.parametrize("text", ["0", "0MiB", "12XB", "-5", "1.5MiB", "big", ""])
def test_max_body_size_invalid(text: str) -> None:
    message = config_error({}, {"TAPEDECK_MAX_BODY_SIZE": text})

    assert message == (
        f"TAPEDECK_MAX_BODY_SIZE: expected a size such as 32MiB, 512KiB or 1048576, got {text!r}"
    )


def test_config_file_with_every_setting(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        "mode: replay\n"
        "cassettes: tapes\n"
        "host: 0.0.0.0\n"
        "port: 9001\n"
        "timing: speed=3\n"
        "max_body_size: 512KiB\n"
        "sequence_end: error\n"
        "match_headers: [anthropic-beta, x-custom]\n"
        "ignore_body_fields: metadata.user_id, system\n",
    )

    assert resolve({}, {}, cfg) == Settings(
        mode=Mode.REPLAY,
        cassettes=tmp_path / "tapes",
        host="0.0.0.0",
        port=9001,
        timing=Timing.parse("speed=3"),
        max_body_size=512 * 1024,
        sequence_end=SequenceEnd.ERROR,
        match_headers=("anthropic-beta", "x-custom"),
        ignore_body_fields=("metadata.user_id", "system"),
    )


def test_config_cassettes_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = config(tmp_path / "conf", "cassettes: ../tapes\n")
    absolute = config(tmp_path / "abs", f"cassettes: {tmp_path / 'elsewhere'}\n")
    monkeypatch.chdir(tmp_path)
    relative_cfg = config(Path("rel"), "cassettes: tapes\n")

    assert resolve({}, {}, nested).cassettes == tmp_path / "conf" / ".." / "tapes"
    assert resolve({}, {}, absolute).cassettes == tmp_path / "elsewhere"
    assert resolve({}, {}, relative_cfg).cassettes == Path("rel/tapes")


def test_empty_config_file_gives_defaults(tmp_path: Path) -> None:
    assert resolve({}, {}, config(tmp_path, "# nothing yet\n")) == Settings()
    assert from_file(config(tmp_path, "", "empty.yaml")).values == {}


def test_config_file_values_keep_their_lines(tmp_path: Path) -> None:
    cfg = config(tmp_path, "# c\nport: 1\n\ntiming: instant\n")

    assert from_file(cfg).values == {
        "port": (1, f"{cfg}:2: port"),
        "timing": ("instant", f"{cfg}:4: timing"),
    }


# --- errors name the source and what was expected -----------------------------------------


PORT_EXPECTED = "expected a port number from 0 to 65535"


def test_bad_port_from_each_source(tmp_path: Path) -> None:
    cfg = config(tmp_path, "# c\nport: 70000\n")

    assert config_error({"port": "70000"}, {}) == f"--port: {PORT_EXPECTED}, got '70000'"
    assert (
        config_error({}, {"TAPEDECK_PORT": "abc"}) == f"TAPEDECK_PORT: {PORT_EXPECTED}, got 'abc'"
    )
    assert config_error({}, {}, cfg) == f"{cfg}:2: port: {PORT_EXPECTED}, got 70000"


@pytest.mark.parametrize("value", ["true", "-1", "80.5", "[80]", "''"])
def test_bad_port_values_in_the_file(tmp_path: Path, value: str) -> None:
    cfg = config(tmp_path, f"port: {value}\n")

    assert config_error({}, {}, cfg).startswith(f"{cfg}:1: port: {PORT_EXPECTED}, got ")


def test_port_zero_and_the_top_port_are_valid() -> None:
    assert resolve({"port": "0"}, {}).port == 0
    assert resolve({"port": "65535"}, {}).port == 65535


def test_invalid_mode_from_each_source(tmp_path: Path) -> None:
    cfg = config(tmp_path, "\n\nmode: rec\n")
    expected = (
        "expected one of 'none', 'once', 'new_episodes', 'all', 'passthrough' (or the "
        "earlier names 'replay', 'auto', 'record'), got 'rec'"
    )

    assert config_error({"mode": "rec"}, {}) == f"--mode: {expected}"
    assert config_error({}, {"TAPEDECK_MODE": "rec"}) == f"TAPEDECK_MODE: {expected}"
    assert config_error({}, {}, cfg) == f"{cfg}:3: mode: {expected}"


def test_bad_timing_from_each_source(tmp_path: Path) -> None:
    cfg = config(tmp_path, "port: 1\ntiming: fixed=-5\n")

    assert config_error({"timing": "speed=0"}, {}) == (
        f"--timing: invalid timing 'speed=0': expected {SPEC_HELP}"
    )
    assert config_error({}, {"TAPEDECK_TIMING": "fast"}) == (
        f"TAPEDECK_TIMING: invalid timing 'fast': expected {SPEC_HELP}"
    )
    assert config_error({}, {}, cfg) == (
        f"{cfg}:2: timing: invalid timing 'fixed=-5': expected {SPEC_HELP}"
    )


def test_bad_sequence_end_and_host(tmp_path: Path) -> None:
    assert config_error({"sequence_end": "stop"}, {}) == (
        "--sequence-end: expected one of 'repeat', 'error', got 'stop'"
    )
    cfg = config(tmp_path, "host: ''\n")
    assert config_error({}, {}, cfg) == f"{cfg}:1: host: expected a host name or address, got ''"
    assert config_error({}, {}, config(tmp_path, "match_headers: 5\n", "m.yaml")) == (
        f"{tmp_path / 'm.yaml'}:1: match_headers: expected a list of names "
        "(or one comma-separated string), got 5"
    )


def test_unknown_config_key_names_the_nearest(tmp_path: Path) -> None:
    cfg = config(tmp_path, "port: 9000\nprot: 9001\n")

    assert config_error({}, {}, cfg) == f"{cfg}:2: prot: unknown setting; did you mean 'port'?"


def test_unknown_config_key_far_from_all_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = config(tmp_path, "port: 9000\nverbose: true\n")

    assert config_error({}, {}, cfg) == (
        f"{cfg}:2: verbose: unknown setting (known settings: {KNOWN})"
    )


def test_config_keys_are_not_flags(tmp_path: Path) -> None:
    cfg = config(tmp_path, "max-body-size: 1MiB\n")

    assert config_error({}, {}, cfg) == (
        f"{cfg}:1: max-body-size: unknown setting; did you mean 'max_body_size'?"
    )


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("port: 1\ntiming: [instant\n", 3, "did not find expected ',' or ']'"),
        ("port: 1\nport: 2\n", 2, "found duplicate key 'port'"),
        ("port: 1\n\thost: x\n", 2, "found a tab character"),
    ],
)
def test_bad_yaml_in_config(tmp_path: Path, text: str, line: int, problem: str) -> None:
    cfg = config(tmp_path, text)

    message = config_error({}, {}, cfg)

    assert message.startswith(f"{cfg}:{line}: invalid YAML: "), message
    assert problem in message


def test_a_list_as_a_config_key_is_a_config_error(tmp_path: Path) -> None:
    """Today the YAML loader raises a bare ``TypeError: unhashable type: 'list'``."""
    cfg = config(tmp_path, "port: 1\n? [a, b]\n: 2\n")

    message = config_error({}, {}, cfg)

    assert message.startswith(f"{cfg}:2: "), message


@pytest.mark.parametrize("text", ["- port: 1\n", "port 9000\n", "9000\n"])
def test_config_not_a_mapping(tmp_path: Path, text: str) -> None:
    cfg = config(tmp_path, text)

    assert config_error({}, {}, cfg) == f"{cfg}:1: expected a mapping of setting names to values"


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    assert config_error({}, {}, missing) == (
        f"{missing}: cannot read the config file: No such file or directory"
    )


def test_a_header_never_matched_names_its_source(tmp_path: Path) -> None:
    """A forbidden match header is refused, naming where it was set (like every other error)."""
    expected = "header 'authorization' cannot be matched on: it varies between runs"
    cfg = config(tmp_path, "port: 1\nmatch_headers: [anthropic-beta, authorization]\n")

    assert config_error({}, {"TAPEDECK_MATCH_HEADERS": "authorization"}) == (
        f"TAPEDECK_MATCH_HEADERS: {expected}"
    )
    assert config_error({"match_headers": "authorization"}, {}) == f"--match-headers: {expected}"
    assert config_error({}, {}, cfg) == f"{cfg}:2: match_headers: {expected}"


def test_a_bad_ignore_body_path_names_its_source() -> None:
    assert config_error({"ignore_body_fields": "a..b"}, {}) == (
        "--ignore-body-fields: invalid body field path 'a..b' (expected e.g. 'a.b.c')"
    )


def test_bad_journal_settings(tmp_path: Path) -> None:
    assert config_error({"journal_size": "-1"}, {}) == (
        "--journal-size: expected a whole number >= 0, got '-1'"
    )
    assert config_error({}, {"TAPEDECK_METRICS": "maybe"}) == (
        "TAPEDECK_METRICS: expected true or false, got 'maybe'"
    )
    cfg = config(tmp_path, "journal_body_limit: 0\n")
    assert config_error({}, {}, cfg) == (
        f"{cfg}:1: journal_body_limit: expected a size such as 32MiB, 512KiB or 1048576, got 0"
    )
