"""The web view: ``GET /_tapedeck/ui/`` serves the static page in ``tapedeck/observe/static/``.

The page (plain HTML, CSS and JavaScript modules, no build step) reads everything through
the JSON admin endpoints — ``/_tapedeck/health``, ``/_tapedeck/cassettes``,
``/_tapedeck/journal/stream`` — and draws its charts as SVG itself. Only the files shipped
in the package are served, looked up by name, with a content security policy that lets
the page load nothing from anywhere else.
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import APIError

#: Content types of the files the page is made of.
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: The page may load its own files and talk to this server; nothing else.
HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


@functools.cache
def files() -> dict[str, tuple[bytes, str]]:
    """The page's files by name: their bytes and content type (read once)."""
    folder = resources.files("tapedeck.observe").joinpath("static")
    found = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in TYPES:
            found[item.name] = (item.read_bytes(), TYPES[suffix])
    return found


async def page(request: Request) -> Response:
    """``GET /_tapedeck/ui/`` and the files it loads (``/_tapedeck/ui/app.js``, ...)."""
    name = request.path_params.get("file") or "index.html"
    found = files().get(name)
    if found is None:
        raise APIError(404, f"tapedeck: no such file in the web view: {name!r}")
    content, content_type = found
    return Response(content, headers={**HEADERS, "content-type": content_type})


async def to_page(request: Request) -> Response:
    """``GET /_tapedeck/ui``: on to ``/_tapedeck/ui/``, where the page's links resolve."""
    return RedirectResponse("/_tapedeck/ui/", status_code=308)
