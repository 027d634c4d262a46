"""``tapedeck show --settings``: the settings a server would run with, and where each came
from — every matching rule named with its preset, config file, variable or flag."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import OPTIONS, Settings
from ..config.presets import Preset, chosen_miss_status

#: The settings that decide whether a request matches, shown rule by rule.
MATCHING = ("match_headers", "ignore_body_fields", "normalize", "miss_status")
_SECRET = frozenset({"admin_token"})
#: Shown as a count: a redact pattern may be a secret written out.
_COUNTED = frozenset({"redact_patterns"})
DEFAULT = "default"


def render(settings: Settings, sources: Mapping[str, str]) -> str:
    """The text ``tapedeck show --settings`` prints: settings, then the matching rules."""
    lines = ["settings (a flag beats the environment, which beats the config file):"]
    shown = [o.key for o in OPTIONS if o.key not in MATCHING]
    width = max(len(k) for k in shown)
    for key in shown:
        value = _value(key, getattr(settings, key))
        lines.append(f"  {key.ljust(width)}  {value}  [{_where(sources, key)}]")
    for preset in settings.presets:
        lines.append(f"  preset {preset.name}: {preset.description} ({preset.file})")
    lines.append("")
    lines.append("matching rules (presets' normalize rules run first, in the order named):")
    lines += _matching(settings, sources)
    return "\n".join(lines)


def _where(sources: Mapping[str, str], key: str) -> str:
    return sources.get(key, DEFAULT)


def _matching(settings: Settings, sources: Mapping[str, str]) -> list[str]:
    presets = settings.presets
    lines = ["  match_headers:"]
    for header in settings.match_headers:
        where = _where(sources, "match_headers")
        left_out = [(p, r) for p in presets for r in p.ignore_headers if r.value == header]
        if left_out:
            preset, rule = left_out[0]
            lines.append(f"    ({header}: left out)  [{where}; {preset.where(rule)}]")
        else:
            lines.append(f"    {header}  [{where}]")
    if not settings.match_headers:
        lines.append("    (none)")
    lines.append("  ignore_body_fields:")
    seen: set[str] = set()
    for field in settings.ignore_body_fields:
        seen.add(field)
        lines.append(f"    {field}  [{_where(sources, 'ignore_body_fields')}]")
    for preset in presets:
        for rule in preset.ignore_body_fields:
            if rule.value not in seen:
                seen.add(rule.value)
                lines.append(f"    {rule.value}  [{preset.where(rule)}]")
    if not seen:
        lines.append("    (none)")
    lines.append("  normalize:")
    for preset in presets:
        lines += [f"    {rule.value}  [{preset.where(rule)}]" for rule in preset.normalize]
    lines += [f"    {rule}  [{_where(sources, 'normalize')}]" for rule in settings.normalize]
    if not settings.normalize and not any(p.normalize for p in presets):
        lines.append("    (none)")
    lines.append(f"  miss_status: {_miss(settings, sources, presets)}")
    return lines


def _miss(settings: Settings, sources: Mapping[str, str], presets: tuple[Preset, ...]) -> str:
    code = chosen_miss_status(presets, settings.miss_status)
    if settings.miss_status is not None:
        return f"{code}  [{_where(sources, 'miss_status')}]"
    setting = [p for p in presets if p.miss_status is not None]
    if setting and setting[-1].miss_status is not None:
        return f"{code}  [{setting[-1].where(setting[-1].miss_status)}]"
    return f"{code}  [{DEFAULT}]"


def _value(key: str, value: Any) -> str:
    if value is None:
        return "(none)"
    if key in _SECRET:
        return "(set, not shown)"
    if key in _COUNTED:
        return f"{len(value)} pattern(s), not shown" if value else "(none)"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return ", ".join(_item(v) for v in value) or "(none)"
    if callable(value):
        return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', '?')}"
    return str(value)


def _item(value: Any) -> str:
    if isinstance(value, Preset):
        return value.name
    text = getattr(value, "text", None)  # a fault, as its spec
    return text if isinstance(text, str) else str(value)
