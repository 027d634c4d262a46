"""Did you mean: the known setting or flag nearest to a name that is neither.

Spelling alone does not find everything: a vcrpy or pytest-recording user types
``--record-mode`` (tapedeck's ``--mode``), ``cassette_library_dir`` (``cassettes``) or
``filter_headers`` (``redact_headers``). So the nearest is, in order: the same name
written another way (``max-body-size`` for ``max_body_size``, ``--port`` or ``TAPEDECK_PORT``
for ``port``); a name other tools give the setting (:data:`ALIASES`); a close spelling; a
known name all of whose words the name has (``server_port`` → ``port``); a looser spelling.

>>> nearest_setting("timming")
'timing'
>>> nearest_setting("record_mode")
'mode'
>>> nearest_flag("--record-mode", ["--mode", "--port", "--record-errors"])
'--mode'
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..record.redact import redact_text
from .options import BY_KEY

#: Names other tools (or habit) give a setting, normalized as :func:`normalize` does.
ALIASES: Mapping[str, str] = {
    # vcrpy's record_mode, pytest-recording's --record-mode (--vcr-record before it), and
    # tapedeck's own earlier mode name "record".
    "record_mode": "mode",
    "vcr_record": "mode",
    "record": "mode",
    "replay": "mode",
    # vcrpy's cassette_library_dir, pytest-recording's vcr_cassette_dir.
    "cassette_library_dir": "cassettes",
    "vcr_cassette_dir": "cassettes",
    "dir": "cassettes",
    "directory": "cassettes",
    # vcrpy: filter_headers drops headers from recordings; before_record is
    # before_record_request; allow_playback_repeats lets the last answer repeat.
    "filter_headers": "redact_headers",
    "before_record": "before_record_request",
    "allow_playback_repeats": "sequence_end",
    # What an SDK user calls the upstream and its key.
    "base_url": "upstream",
    "anthropic_base_url": "upstream",
    "api_url": "upstream",
    "upstream_url": "upstream",
    "api_key": "upstream_api_key_env",
    "api_key_env": "upstream_api_key_env",
    "upstream_key": "upstream_api_key_env",
    "upstream_api_key": "upstream_api_key_env",
    "speed": "timing",
    "bind": "host",
    "address": "host",
    "token": "admin_token",
}

#: Settings whose value a suggestion does not repeat: a secret, and the name of the variable
#: holding one (where a key itself is often typed, e.g. after ``--api-key``).
_NOT_REPEATED = frozenset({"admin_token", "upstream_api_key_env"})

#: How close a spelling must be: first a strict pass, then (after the word match) a loose one.
_CLOSE, _LOOSE = 0.8, 0.6


def normalize(name: str) -> str:
    """``--Record-Mode`` → ``record_mode``; ``TAPEDECK_PORT`` → ``port``."""
    text = name.strip().lstrip("-").lower().replace("-", "_")
    return text.removeprefix("tapedeck_") or text


def nearest_setting(name: object) -> str | None:
    """The settings key nearest to ``name`` (a key of a config file, a keyword, ...), or
    ``None`` when none is near."""
    if not isinstance(name, str):
        return None
    return _nearest(name, {key: key for key in BY_KEY})


def unknown_setting(name: object) -> str:
    """What is wrong with a config key that is no setting, and the fix: ``unknown setting;
    did you mean 'timing'?``, else the known settings."""
    near = nearest_setting(name)
    if near is not None:
        return f"unknown setting; did you mean {near!r}?"
    return f"unknown setting (known settings: {', '.join(BY_KEY)})"


def did_you_mean(names: Iterable[object]) -> str:
    """``"; did you mean 'mode'?"`` for unknown setting names (each one's nearest setting),
    or ``""`` when none is near: the end of a message that already lists the names."""
    pairs = [(name, nearest_setting(name)) for name in names]
    near = [(name, key) for name, key in pairs if key is not None]
    if not near:
        return ""
    if len(pairs) == 1:
        return f"; did you mean {near[0][1]!r}?"
    return "; did you mean " + ", ".join(f"{key!r} for {name!r}" for name, key in near) + "?"


def nearest_flag(flag: str, flags: Iterable[str]) -> str | None:
    """The flag among ``flags`` (a command's ``--`` options) nearest to ``flag``, or
    ``None``. A setting's key and aliases lead to its flag (``--faults`` → ``--fault``)."""
    known = [f for f in flags if f.startswith("--")]
    candidates = {normalize(f): f for f in known}
    for key, option in BY_KEY.items():
        if option.flag in known:
            candidates.setdefault(key, option.flag)
    return _nearest(flag.partition("=")[0], candidates)


def unrecognized(extras: list[str], actions: Mapping[str, argparse.Action], prog: str) -> str:
    """argparse's "unrecognized arguments" for a command whose options are ``actions``, with
    the nearest flag after each unknown one: ``--record-mode all (did you mean --mode all?)``.
    A value meant for a secret is not shown, and nothing key-shaped is."""
    said: list[str] = []
    suggested = False
    at = 0
    while at < len(extras):
        word = extras[at]
        at += 1
        near = nearest_flag(word, actions) if word.startswith("-") else None
        if near is None:
            said.append(word)
            continue
        suggested = True
        action = actions[near]
        name, equals, value = word.partition("=")
        if not equals and action.nargs != 0 and at < len(extras) and extras[at][:1] != "-":
            value = extras[at]
            at += 1
        if not value:
            said.append(f"{word} (did you mean {near}?)")
        elif action.dest in _NOT_REPEATED:
            said.append(f"{name}{equals or ' '}[REDACTED] (did you mean {near}?)")
        else:
            sep = equals or " "
            said.append(f"{name}{sep}{value} (did you mean {near}{sep}{value}?)")
    hint = "" if suggested else f"; '{prog} --help' lists them"
    return redact_text(f"unrecognized arguments: {' '.join(said)}{hint}")


def nearest_directory(path: Path) -> Path | None:
    """An existing directory whose path differs from the missing ``path`` by a typo in
    one or more of its parts (``tests/casettes`` → ``tests/cassettes``), or ``None``."""
    if path.exists():
        return None
    parent = path.parent
    if parent != path and not parent.is_dir():
        parent = nearest_directory(parent) or parent
        if (parent / path.name).is_dir():
            return parent / path.name
    try:
        names = [p.name for p in parent.iterdir() if p.is_dir()]
    except OSError:
        return None
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=_CLOSE)
    return parent / close[0] if close else None


def _nearest(name: str, candidates: Mapping[str, str]) -> str | None:
    """The value of the candidate (by normalized name) nearest to ``name``."""
    wanted = normalize(name)
    if not wanted:
        return None
    if wanted in candidates:
        return candidates[wanted]
    alias = ALIASES.get(wanted, "")
    if alias in candidates:
        return candidates[alias]
    close = difflib.get_close_matches(wanted, candidates, n=1, cutoff=_CLOSE)
    if close:
        return candidates[close[0]]
    words = set(wanted.split("_"))
    inside = [c for c in candidates if set(c.split("_")) <= words]
    if inside:
        return candidates[max(inside, key=len)]
    close = difflib.get_close_matches(wanted, candidates, n=1, cutoff=_LOOSE)
    return candidates[close[0]] if close else None
