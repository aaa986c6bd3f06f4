"""`podium lti ...`: register LMS platforms and rotate the tool's key, on the configured database."""
from __future__ import annotations

from podium.core.config import Settings


def _db(settings: Settings):
    from podium.cli.admin import require_database
    from podium.core.db import Database
    require_database(settings)
    return Database(settings.database_url)


def add_platform(settings: Settings, base_url: str, **registration) -> list[str]:
    """Register (or update) a platform; returns the lines to print, with the URLs to paste into the LMS."""
    from podium.core.lti.keys import current_key
    from podium.server.lti.registry import add_platform as register
    from podium.server.lti.registry import tool_urls
    db = _db(settings)
    try:
        with db.session() as s:
            p = register(s, **registration)
            s.commit()
            current_key(s)  # the tool's key exists before the LMS first asks for the JWKS
            lines = [f"platform {p.id}: {p.issuer} (client id {p.client_id}), deployments "
                     + ", ".join(d.deployment_id for d in p.deployments)
                     + (f", course {p.course.name}" if p.course else ""),
                     f"frame-ancestors: {p.frame_origins}"]
    finally:
        db.dispose()
    urls = tool_urls(base_url)
    return lines + ["Paste into the LMS:",
                    f"  OIDC login URL (initiate login):       {urls['login_url']}",
                    f"  Redirect URI and target link URI:      {urls['launch_url']}",
                    f"  Public JWKS URL (tool's public keys):  {urls['jwks_url']}",
                    "  Custom parameter:                      challenge=SLUG"]


def list_platforms(settings: Settings) -> list[str]:
    """One line per registered platform."""
    from podium.server.lti.registry import list_platforms as registered
    db = _db(settings)
    try:
        with db.session() as s:
            return [f"{p.id}\t{p.issuer}\t{p.client_id}\t" + ",".join(d.deployment_id for d in p.deployments)
                    + f"\t{p.course.name if p.course else '-'}\t{p.frame_origins}" for p in registered(s)]
    finally:
        db.dispose()


def remove_platform(settings: Settings, platform_id: int) -> bool:
    """Remove a registration; False when there is none with this id."""
    from podium.server.lti.registry import remove_platform as remove
    db = _db(settings)
    try:
        with db.session() as s:
            return remove(s, platform_id)
    finally:
        db.dispose()


def rotate_key(settings: Settings) -> str:
    """Start signing with a new tool key; returns its key id (the old one stays in the JWKS for two days)."""
    from podium.core.lti.keys import rotate_key as rotate
    db = _db(settings)
    try:
        with db.session() as s:
            return rotate(s).kid
    finally:
        db.dispose()
