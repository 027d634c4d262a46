"""Who sent a request: the client's name and release, from its headers and body.

A recording keeps it with each interaction (``client:`` in a cassette's request), and a miss
says when the closest interaction was recorded by another client or release. The first of
these that names a client wins:

1. a product of ``user-agent`` that names its client wherever it stands: the Vercel AI
   SDK's ``ai-sdk-provider-utils/5.0.86`` is ``ai-sdk 5.0.86`` (``generateText`` puts
   ``ai/7.0.185`` first, ``streamText`` ``ai-sdk-anthropic/4.0.112``: one install, one
   client);
2. the first product of ``user-agent``: ``claude-cli/2.1.337 (external, cli)`` is
   ``claude-cli 2.1.337``, ``Anthropic/Python 0.86.0`` is ``anthropic-python 0.86.0`` —
   unless it names only an HTTP library (``python-httpx``, ``node-fetch``, ...);
3. Claude Code's billing block, the first block of its ``system``
   (``x-anthropic-billing-header: cc_version=2.1.337.089; cc_entrypoint=cli;``):
   ``claude-cli 2.1.337`` (the fourth part of ``cc_version`` changes with the prompt);
4. the Anthropic SDK's ``x-stainless-lang`` and ``x-stainless-package-version``:
   ``anthropic-python 0.86.0``, ``anthropic-js 0.128.0``;
5. the HTTP library ``user-agent`` names.

Names and releases are taken only when they are short and plain (letters, digits and
``.-_+/``), since they come from the client and reach the log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .model import Client

#: A product in ``user-agent``: a name, and a release after the last ``/``.
_PRODUCT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+\-/]{0,63}")
_RELEASE = re.compile(r"v?[0-9][A-Za-z0-9._+\-]{0,39}")
_LANG = re.compile(r"[a-z][a-z0-9\-]{0,19}")
_BILLING = re.compile(r"x-anthropic-billing-header:[^\n]*?\bcc_version=(\d+(?:\.\d+)*)")
#: ``user-agent`` names that say only which HTTP library sent the request.
HTTP_LIBRARIES = frozenset(
    {
        "aiohttp",
        "axios",
        "bun",
        "curl",
        "deno",
        "go-http-client",
        "got",
        "java",
        "mozilla",
        "node",
        "node-fetch",
        "okhttp",
        "python-httpx",
        "python-requests",
        "python-urllib",
        "undici",
        "wget",
    }
)
_WANTED = ("user-agent", "x-stainless-lang", "x-stainless-package-version")
#: ``user-agent`` products that name their client wherever they stand, and its name.
FAMILIES = {"ai-sdk-provider-utils": "ai-sdk"}


def identify(headers: Iterable[tuple[str, str]], body: Any = None) -> Client | None:
    """The client that sent a request with ``headers`` and (parsed JSON) ``body``, or
    ``None`` if neither says."""
    found: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        if name in _WANTED:
            found[name] = value.strip()
    family = _family(found.get("user-agent", ""))
    if family is not None:
        return family
    agent = from_user_agent(found.get("user-agent", ""))
    if agent is not None and agent.name.lower() not in HTTP_LIBRARIES:
        return agent
    sdk = _from_stainless(found.get("x-stainless-lang"), found.get("x-stainless-package-version"))
    return _from_billing(body) or sdk or agent


def from_user_agent(text: str) -> Client | None:
    """The client a ``user-agent`` value names (its first product), or ``None``."""
    words = text.split()
    if not words or not _PRODUCT.fullmatch(words[0]):
        return None
    first = words[0]
    name, _, release = first.rpartition("/")
    if name and _RELEASE.fullmatch(release):
        return Client(name, release)
    following = words[1] if len(words) > 1 else ""
    if "/" in first and _RELEASE.fullmatch(following):  # Anthropic/Python 0.86.0
        return Client(first.replace("/", "-").lower(), following)
    return Client(first.rstrip("/"), None)


def _family(text: str) -> Client | None:
    for word in text.split():
        name, _, release = word.partition("/")
        client = FAMILIES.get(name.lower())
        if client is not None and _RELEASE.fullmatch(release):
            return Client(client, release)
    return None


def _from_stainless(lang: str | None, release: str | None) -> Client | None:
    if lang is None or not _LANG.fullmatch(lang.lower()):
        return None
    good = release is not None and _RELEASE.fullmatch(release)
    return Client(f"anthropic-{lang.lower()}", release if good else None)


def _from_billing(body: Any) -> Client | None:
    system = body.get("system") if isinstance(body, dict) else None
    if isinstance(system, list) and system and isinstance(system[0], dict):
        system = system[0].get("text")
    if not isinstance(system, str):
        return None
    found = _BILLING.search(system[:400])
    if found is None:
        return None
    parts = found.group(1).split(".")
    release = ".".join(parts[:3]) if len(parts) > 3 else found.group(1)
    return Client("claude-cli", release[:40])


def mismatch(recorded: Client | None, incoming: Client | None) -> str | None:
    """``recorded with A; this request is from B`` when both are known and differ."""
    if recorded is None or incoming is None or recorded == incoming:
        return None
    return f"recorded with {recorded}; this request is from {incoming}"
