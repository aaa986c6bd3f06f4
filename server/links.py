"""Absolute links (shown to be copied, or given to API clients): built from PODIUM_PUBLIC_URL, not the Host header."""
from __future__ import annotations

from flask import url_for

from podium.server.services import services


def absolute_url(endpoint: str, **values) -> str:
    """PODIUM_PUBLIC_URL plus the endpoint's path; without that setting (development), the request's own host."""
    base = services().settings.public_url
    if not base:
        return url_for(endpoint, _external=True, **values)
    return base.rstrip("/") + url_for(endpoint, **values)
