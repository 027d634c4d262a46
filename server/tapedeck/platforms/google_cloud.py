"""Claude on Google Cloud (``AnthropicGoogleCloud``).

The client's base URL is ``https://claude.googleapis.com/v1/projects/{project}/locations/
{location}/workspaces/{workspace}/invoke`` (organization routes — ``/v1/organizations/…``,
``/v1/user_profiles`` — under ``…/locations/{location}/claudeOrganization/invoke``), and
the first-party path follows it (``…/invoke/v1/messages``), with first-party headers and
bodies and a Google bearer token as ``Authorization``. Pointed at tapedeck with a bare
``base_url`` it sends the first-party paths and needs no door; this one serves the full form.
"""

from __future__ import annotations

from .door import Door, Route

_INVOKE = "/invoke/v1/"
_WORKSPACE = "/workspaces/"
_ORGANIZATION = "/claudeOrganization"


class GoogleCloud(Door):
    """``/v1/projects/{p}/locations/{l}/{workspaces/{w}|claudeOrganization}/invoke/v1/…``."""

    name = "google-cloud"
    prefixes = ("/v1/projects/",)

    def route(self, method: str, path: str) -> Route | None:
        at = path.find(_INVOKE)
        if at < 0:
            return None
        base = path[:at]
        if "/locations/" not in base:
            return None
        if _WORKSPACE not in base and not base.endswith(_ORGANIZATION):
            return None
        return Route(self.name, path[at + len("/invoke") :])
