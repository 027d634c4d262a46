"""Re-signing a SigV4 request for the upstream's host, with the user's AWS credentials.

A Bedrock, Mantle or AWS client pointed at tapedeck signs its request for tapedeck's
address (``host`` is part of the signature), so sent on as it is the platform refuses it.
tapedeck drops the client's signature (``authorization``, ``x-amz-date``,
``x-amz-security-token``, ``x-amz-content-sha256``) and signs the request again, as it will
be sent, with botocore's ``SigV4Auth`` — the signer the SDKs use — and the credentials of
botocore's default chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``~/.aws``, SSO, container and instance roles).
The service is the client's (its signature's credential scope: ``bedrock``,
``bedrock-mantle``, ``aws-external-anthropic``), ``bedrock`` if it names none; the region
the upstream host's, else the client's.

botocore's signer logs the canonical request (the session token in it) and the signature
at ``DEBUG``; those lines are dropped while tapedeck signs, whatever the logging set-up.

botocore is the optional extra ``tapedeck-mock[aws]``: without it a signed request is
answered 502 naming the extra, and nothing is recorded.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import UpstreamError

#: How to get botocore.
EXTRA = "pip install 'tapedeck-mock[aws]'"
#: The headers of the client's own signature, dropped before signing again.
SIGNATURE_HEADERS = frozenset(
    {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
#: ``bedrock-runtime.us-east-1.amazonaws.com``, ``bedrock-mantle.eu-west-1.api.aws``, ...
_REGION = re.compile(r"^[a-z0-9-]+\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.(?:amazonaws\.com|api\.aws)$")
DEFAULT_SERVICE = "bedrock"
_SIGNING = contextvars.ContextVar("tapedeck_sigv4_signing", default=False)


class _WhileSigning(logging.Filter):
    """Drops botocore's signer's log records while tapedeck signs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _SIGNING.get()


_QUIET = _WhileSigning()


def is_signed(authorization: str | None) -> bool:
    """Whether an ``authorization`` value is a SigV4 signature."""
    return authorization is not None and authorization.startswith("AWS4-HMAC-SHA256 ")


def client_scope(authorization: str) -> tuple[str | None, str]:
    """The region and service the client signed for (``None``, ``bedrock`` if unsaid)."""
    found = _SCOPE.search(authorization)
    return (found[1], found[2]) if found else (None, DEFAULT_SERVICE)


def host_region(host: str) -> str | None:
    """The AWS region an AWS endpoint's host name names, or ``None``."""
    found = _REGION.match(host.lower())
    return found[1] if found else None


class Resigner:
    """Signs requests again with the default chain's credentials (found once, when first
    needed, off the event loop: the chain may ask an instance's metadata service)."""

    def __init__(self) -> None:
        self._credentials: Any = None
        self._lock = asyncio.Lock()

    async def sign(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        authorization: str,
    ) -> list[tuple[str, str]]:
        """``headers`` without the client's signature, signed for ``url``."""
        host = urlsplit(url).hostname or ""
        try:
            from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
            from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
        except ImportError:
            raise UpstreamError(
                f"re-signing the client's SigV4 request for {host} needs botocore: {EXTRA}"
            ) from None
        frozen = await self._frozen(host)
        client_region, service = client_scope(authorization)
        region = host_region(host) or client_region
        if region is None:
            raise UpstreamError(
                f"re-signing the client's SigV4 request for {host}: neither the host nor the "
                "client's signature names an AWS region"
            )
        kept = {k: v for k, v in headers if k.lower() not in SIGNATURE_HEADERS}
        request = AWSRequest(method=method, url=url, headers=kept, data=body)
        signer_log = logging.getLogger("botocore.auth")
        if _QUIET not in signer_log.filters:
            signer_log.addFilter(_QUIET)
        signing = _SIGNING.set(True)
        try:
            SigV4Auth(frozen, service, region).add_auth(request)
        finally:
            _SIGNING.reset(signing)
        return [(k.lower(), v) for k, v in request.headers.items()]

    async def _frozen(self, host: str) -> Any:
        async with self._lock:
            if self._credentials is None:
                self._credentials = await asyncio.to_thread(_default_chain)
        if self._credentials is None:
            raise UpstreamError(
                f"re-signing the client's SigV4 request for {host}: botocore's default "
                "credential chain found no AWS credentials (AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws, an instance role)"
            )
        # Refreshable credentials (SSO, roles) renew themselves here, so off the loop too.
        return await asyncio.to_thread(self._credentials.get_frozen_credentials)


def _default_chain() -> Any:
    import botocore.session  # type: ignore[import-untyped]

    return botocore.session.get_session().get_credentials()
