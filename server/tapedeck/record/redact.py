"""Keeping secrets off disk: headers that carry them are dropped, keys in text replaced.

Redaction works on decoded text — parsed JSON strings, percent-decoded query values and
paths — so a key escaped in JSON (``sk\\u002dant-...``) or percent-encoded in a query is
found like any other. A key split across the deltas of a stream is found in the block's
text put back together, and the placeholder is put where the key began.

Applied to everything a recording writes and everything that names it (file names, log
lines), and to incoming requests before matching, so that a request carrying a key still
matches its recording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..cassette.model import RecordedEvent
from ..wire.sse_decode import json_or_text

#: Headers never written to a cassette, whatever the configuration adds.
SECRET_HEADERS = frozenset(
    {
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "anthropic-organization-id",
        # The platforms' credentials (docs/platforms.md): Foundry's key, AWS's session
        # token (SigV4's signature is ``authorization``; Google's bearer token too).
        "api-key",
        "x-amz-security-token",
    }
)

#: Anything shaped like an Anthropic API key.
KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_\-]{4,}")
PLACEHOLDER = "sk-ant-REDACTED"
#: What a match of one of the user's own ``redact_patterns`` becomes.
USER_PLACEHOLDER = "[REDACTED]"
#: Delta types whose text field is one piece of a block's text, and that field.
_DELTA_TEXT = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
}


class Redactor:
    """Redaction with the built-in key pattern and the user's ``patterns`` (regexes), and
    the built-in secret headers plus ``headers``."""

    def __init__(self, patterns: Sequence[str] = (), headers: Iterable[str] = ()) -> None:
        self.patterns = tuple(re.compile(p) for p in patterns)
        self.secret_headers = SECRET_HEADERS | {h.lower() for h in headers}

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Where secrets are in ``text``: ``(start, end, placeholder)``, in order."""
        found = [(m.start(), m.end(), PLACEHOLDER) for m in KEY_PATTERN.finditer(text)]
        for pattern in self.patterns:
            found += [(m.start(), m.end(), USER_PLACEHOLDER) for m in pattern.finditer(text)]
        found.sort()
        merged: list[tuple[int, int, str]] = []
        for start, end, placeholder in found:
            if merged and start < merged[-1][1]:  # overlapping matches: keep the first
                last = merged[-1]
                merged[-1] = (last[0], max(last[1], end), last[2])
            elif end > start:
                merged.append((start, end, placeholder))
        return merged

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by its placeholder."""
        if not self.patterns and "sk-ant-" not in text:
            return text
        spans = self.spans(text)
        if not spans:
            return text
        out, at = [], 0
        for start, end, placeholder in spans:
            out += [text[at:start], placeholder]
            at = end
        out.append(text[at:])
        return "".join(out)

    def value(self, value: Any) -> Any:
        """A JSON value with every secret in it (in keys and values) replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def headers(self, pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """``pairs`` without secret headers, and with secrets in values replaced."""
        secret = self.secret_headers
        return tuple((n, self.text(v)) for n, v in pairs if n.lower() not in secret)

    def events(self, events: Sequence[RecordedEvent]) -> tuple[RecordedEvent, ...]:
        """A recorded stream with every secret replaced, also one split across deltas."""
        out = [RecordedEvent(e.event, self.value(e.data), e.at_ms) for e in events]
        pieces: dict[tuple[object, str], list[int]] = {}
        for i, event in enumerate(events):
            field = _delta_field(event.data)
            if field is not None:
                pieces.setdefault((event.data.get("index"), field), []).append(i)
        for (_, field), at in pieces.items():
            texts = [events[i].data["delta"][field] for i in at]
            for i, text in zip(at, self._resplit(texts, field), strict=True):
                if text != events[i].data["delta"][field]:
                    data = dict(out[i].data)
                    data["delta"] = {**data["delta"], field: text}
                    out[i] = RecordedEvent(out[i].event, data, out[i].at_ms)
        return tuple(out)

    def _resplit(self, texts: list[str], field: str) -> list[str]:
        """The pieces of one block's text with its secrets replaced: each placeholder goes
        where its secret began, and the pieces keep their number."""
        joined = "".join(texts)
        spans = self.spans(joined)
        if not spans and field == "partial_json":
            return self._resplit_json(texts, joined)
        if not spans:
            return [self.text(t) for t in texts]
        out, start = [], 0
        for text in texts:
            end = start + len(text)
            piece, at = [], start
            for s, e, placeholder in spans:
                if e <= start or s >= end:
                    continue
                if s >= at:
                    piece.append(joined[at:s])
                if start <= s < end:
                    piece.append(placeholder)
                at = max(at, min(e, end))
            piece.append(joined[at:end])
            out.append("".join(piece))
            start = end
        return out

    def _resplit_json(self, texts: list[str], joined: str) -> list[str]:
        """Tool input whose secret is escaped in its JSON text: redact the decoded value and
        split its JSON text back into as many pieces."""
        decoded = json_or_text(joined)
        if isinstance(decoded, str) or self.value(decoded) == decoded:
            return texts
        redone = json.dumps(self.value(decoded), ensure_ascii=False, separators=(",", ":"))
        size = -(-len(redone) // max(len(texts), 1))
        return [redone[i * size : (i + 1) * size] for i in range(len(texts))]


def _delta_field(data: Any) -> str | None:
    if not isinstance(data, dict) or data.get("type") != "content_block_delta":
        return None
    delta = data.get("delta")
    if not isinstance(delta, dict):
        return None
    field = _DELTA_TEXT.get(str(delta.get("type")))
    return field if field is not None and isinstance(delta.get(field), str) else None


#: Redaction with the built-in pattern and headers only.
DEFAULT = Redactor()


def redact_text(text: str) -> str:
    """``text`` with every key-shaped string replaced by a placeholder."""
    return DEFAULT.text(text)


def redact_value(value: Any) -> Any:
    """A JSON value with every key-shaped string in it (keys and values) replaced."""
    return DEFAULT.value(value)


def redact_headers(
    pairs: Iterable[tuple[str, str]], extra: frozenset[str] = frozenset()
) -> tuple[tuple[str, str], ...]:
    """``pairs`` without secret headers, and with key-shaped strings in values replaced."""
    return Redactor(headers=extra).headers(pairs)


def url_shown(url: str) -> str:
    """``url`` as messages and logs may show it: a password in its user part (all of it,
    ``@`` included) and every query value become ``***``, and keys are redacted."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return redact_text(url)
    rest, hashed, _ = rest.partition("#")
    rest, asked, query = rest.partition("?")
    # The last "@" ends the user part, even one whose password holds "/" or "@".
    user, at, located = rest.rpartition("@")
    if at:
        name, colon, _ = user.partition(":")
        located = f"{name.split('/')[0]}{':***' if colon else ''}@{located}"
    shown = f"{scheme}://{located}"
    if asked:
        pairs = [p.partition("=") for p in query.split("&") if p]
        shown += "?" + "&".join(f"{k}={'***' if eq else ''}".rstrip("=") for k, eq, _ in pairs)
    return redact_text(shown + ("#***" if hashed else ""))
