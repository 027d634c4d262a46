"""Server settings, resolved from layers: the first layer that gives an option wins.

A :class:`Layer` holds the values one place gives (command-line flags, the environment, a
config file, keyword arguments) and how to name that place for each option, so a bad value
is reported where it came from: ``--port: ...``, ``TAPEDECK_PORT: ...``,
``tapedeck.yaml:3: port: ...``, ``serve(port=...): ...``.

>>> resolve(from_flags({"port": "9000"}), from_env({"TAPEDECK_PORT": "9001"})).port
9000
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cassette.matching import MatchRules
from ..cassette.normalize import Normalize
from ..cassette.on_demand import Loading
from ..cassette.yaml_source import LineDict, load_yaml
from ..errors import ConfigError, YAMLSourceError
from ..shaping.faults import Fault, over_limit
from ..shaping.timing import Timing
from ..source.platform_form import UpstreamForm
from ..source.sequences import SequenceEnd
from ..validation import Validate
from .options import BY_KEY, DEFAULTS, OPTIONS, Mode
from .presets import Preset, chosen_miss_status, combined
from .presets import presets as load_presets
from .suggest import did_you_mean, unknown_setting

#: A ``before_record_request`` / ``before_record_response`` hook.
Hook = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to know, already parsed. Defaults: :data:`OPTIONS`."""

    mode: Mode = DEFAULTS["mode"]
    cassettes: Path = DEFAULTS["cassettes"]
    host: str = DEFAULTS["host"]
    port: int = DEFAULTS["port"]
    timing: Timing = DEFAULTS["timing"]
    max_body_size: int = DEFAULTS["max_body_size"]
    max_file_size: int = DEFAULTS["max_file_size"]
    max_client_buffer: int = DEFAULTS["max_client_buffer"]
    write_timeout: float = DEFAULTS["write_timeout"]
    max_header_size: int = DEFAULTS["max_header_size"]
    max_delay: float = DEFAULTS["max_delay"]
    max_test_ids: int = DEFAULTS["max_test_ids"]
    sequence_end: SequenceEnd = DEFAULTS["sequence_end"]
    match_headers: tuple[str, ...] = DEFAULTS["match_headers"]
    ignore_body_fields: tuple[str, ...] = DEFAULTS["ignore_body_fields"]
    faults: tuple[Fault, ...] = DEFAULTS["faults"]
    upstream: str = DEFAULTS["upstream"]
    upstream_api_key_env: str | None = DEFAULTS["upstream_api_key_env"]
    upstream_form: UpstreamForm = DEFAULTS["upstream_form"]
    upstream_timeout: float = DEFAULTS["upstream_timeout"]
    upstream_connect_timeout: float = DEFAULTS["upstream_connect_timeout"]
    record_drain_timeout: float = DEFAULTS["record_drain_timeout"]
    record_shutdown_timeout: float = DEFAULTS["record_shutdown_timeout"]
    allowed_hosts: tuple[str, ...] = DEFAULTS["allowed_hosts"]
    allowed_origins: tuple[str, ...] = DEFAULTS["allowed_origins"]
    upload_paths: tuple[str, ...] = DEFAULTS["upload_paths"]
    #: Never shown: not in ``repr()``, not in any message.
    admin_token: str | None = field(default=DEFAULTS["admin_token"], repr=False)
    redact_headers: tuple[str, ...] = DEFAULTS["redact_headers"]
    record_errors: bool = DEFAULTS["record_errors"]
    redact_patterns: tuple[str, ...] = DEFAULTS["redact_patterns"]
    before_record_request: Hook | None = DEFAULTS["before_record_request"]
    before_record_response: Hook | None = DEFAULTS["before_record_response"]
    normalize: tuple[Normalize, ...] = DEFAULTS["normalize"]
    #: Their matching rules add to the user's (:meth:`match_rules`, :attr:`miss_code`).
    presets: tuple[Preset, ...] = DEFAULTS["presets"]
    #: ``None``: 404, unless a preset says otherwise (:attr:`miss_code` is the one used).
    miss_status: int | None = DEFAULTS["miss_status"]
    validate: Validate = DEFAULTS["validate"]
    #: A directory, ``"auto"`` (the user's cache directory) or ``"off"``.
    index_cache: Path | str = DEFAULTS["index_cache"]
    event_cache: int = DEFAULTS["event_cache"]
    library_max_bytes: int = DEFAULTS["library_max_bytes"]
    library_request_max_bytes: int = DEFAULTS["library_request_max_bytes"]
    load: Loading = DEFAULTS["load"]
    workers: int = DEFAULTS["workers"]
    state: str = DEFAULTS["state"]
    state_ttl: float = DEFAULTS["state_ttl"]
    journal_size: int = DEFAULTS["journal_size"]
    journal_body_limit: int = DEFAULTS["journal_body_limit"]
    journal_max_bytes: int = DEFAULTS["journal_max_bytes"]
    request_cache_bytes: int = DEFAULTS["request_cache_bytes"]
    plan_cache_bytes: int = DEFAULTS["plan_cache_bytes"]
    metrics: bool = DEFAULTS["metrics"]
    metrics_max_rows: int = DEFAULTS["metrics_max_rows"]

    def __post_init__(self) -> None:
        if any(isinstance(p, str) for p in self.presets):  # Settings(presets=["claude-code"])
            object.__setattr__(self, "presets", load_presets(self.presets))

    def match_rules(self) -> MatchRules:
        """The rules requests are matched by: the presets' and the user's."""
        headers, ignored, normalize = combined(self.presets, self)
        return MatchRules(headers=headers, ignore_body=ignored, normalize=normalize)

    @property
    def miss_code(self) -> int:
        """The status a miss is answered with: ``miss_status``, else the presets', else 404."""
        return chosen_miss_status(self.presets, self.miss_status)


@dataclass(frozen=True, slots=True)
class Layer:
    """Values for some options from one place: ``{key: (value, where)}``.

    ``where`` names the place in error messages, e.g. ``--port`` or ``tapedeck.yaml:3: port``.
    """

    values: Mapping[str, tuple[Any, str]] = field(default_factory=dict)


def from_flags(flags: Mapping[str, Any]) -> Layer:
    """Command-line values by option key (``None``: not given)."""
    return Layer(
        {k: (v, BY_KEY[k].flag) for k, v in flags.items() if k in BY_KEY and v is not None}
    )


def from_env(env: Mapping[str, str]) -> Layer:
    """``TAPEDECK_*`` variables."""
    return Layer({o.key: (env[o.env], o.env) for o in OPTIONS if o.env in env})


def from_keywords(options: Mapping[str, Any], call: str = "serve") -> Layer:
    """Keyword arguments of a Python call (``None``: not given); unknown names are an error."""
    unknown = sorted(set(options) - set(BY_KEY))
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ConfigError(
            f"{call}(): unknown setting(s) {names} (known settings: {known()})"
            + did_you_mean(unknown)
        )
    return Layer({k: (v, f"{call}({k}=...)") for k, v in options.items() if v is not None})


def from_names(options: Mapping[str, tuple[Any, str]]) -> Layer:
    """Values already named by the caller: ``{key: (value, where)}``."""
    return Layer({k: v for k, v in options.items() if v[0] is not None})


def known() -> str:
    return ", ".join(o.key for o in OPTIONS)


def from_file(path: Path) -> Layer:
    """A YAML config file of ``key: value`` lines; raise :class:`ConfigError`.

    A relative ``cassettes`` directory is relative to the file, not the working directory.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        document = load_yaml(text)
    except YAMLSourceError as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.message}") from None
    if document is None:
        return Layer()
    if not isinstance(document, LineDict):
        raise ConfigError(f"{path}:1: expected a mapping of setting names to values")
    found: dict[str, tuple[Any, str]] = {}
    for key, value in document.items():
        line = document.line_of(key)
        if key not in BY_KEY:
            shown = key if isinstance(key, str) else repr(key)
            raise ConfigError(f"{path}:{line}: {shown}: {unknown_setting(key)}")
        if key == "cassettes" and isinstance(value, str):
            value = str(path.parent / value)
        found[key] = (value, f"{path}:{line}: {key}")
    return Layer(found)


def resolve(*layers: Layer) -> Settings:
    """:class:`Settings` from ``layers``, the first that gives an option winning; options
    no layer gives keep their default. Raise :class:`ConfigError` naming the layer a bad
    value came from. (A caller with defaults of its own, e.g. port 0 for a server inside a
    test, passes them as the last layer.)"""
    return resolve_sources(*layers)[0]


def resolve_sources(*layers: Layer) -> tuple[Settings, dict[str, str]]:
    """As :func:`resolve`, with where each option given came from (``{key: where}``)."""
    chosen: dict[str, Any] = {}
    given: dict[str, str] = {}
    for option in OPTIONS:
        for layer in layers:
            if option.key in layer.values:
                raw, where = layer.values[option.key]
                try:
                    chosen[option.key] = option.parse(raw)
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"{where}: {exc}") from None
                given[option.key] = where
                break
    settings = Settings(**chosen)
    for key, problem in (
        ("timing", settings.timing.over_limit(settings.max_delay)),
        ("faults", over_limit(settings.faults, settings.max_delay)),
    ):
        if problem:
            raise ConfigError(f"{given.get(key, key)}: {problem}")
    return settings, given
