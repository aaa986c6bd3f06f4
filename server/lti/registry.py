"""Platform registrations (`podium lti add-platform | list | remove`) and the tool URLs an LMS admin pastes."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.core.lti.models import LtiDeployment, LtiPlatform
from podium.core.models import Course


def tool_urls(base_url: str) -> dict:
    """The tool's URLs for the LMS: OIDC login, launch (redirect URI and target link URI), JWKS."""
    base = base_url.rstrip("/")
    return {"login_url": f"{base}/lti/login", "launch_url": f"{base}/lti/launch", "jwks_url": f"{base}/lti/jwks"}


def origin(url: str) -> str:
    """scheme://host[:port] of a URL; ValueError when it is not an absolute http(s) URL."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    return f"{parts.scheme}://{parts.netloc}"


def _course(session: Session, code: str) -> Course:
    """A course by join code, name or id (the CLI's --course CODE)."""
    wanted = re.sub(r"\s+", "", code).upper()
    course = session.scalar(select(Course).where(Course.join_code == wanted))
    course = course or session.scalar(select(Course).where(Course.name == code))
    if course is None and code.isdigit():
        course = session.get(Course, int(code))
    if course is None:
        raise ValueError(f"no course with join code, name or id {code!r}")
    return course


def add_platform(session: Session, *, issuer: str, client_id: str, deployment_id: str, login_url: str,
                 token_url: str, jwks_url: str, course: str | None = None,
                 frame_origins: list[str] | None = None) -> LtiPlatform:
    """Register a platform, or update it and add a deployment id when (issuer, client id) is known."""
    for url in (issuer, login_url, token_url, jwks_url, *(frame_origins or [])):
        origin(url)
    platform = session.scalar(select(LtiPlatform).where(LtiPlatform.issuer == issuer,
                                                        LtiPlatform.client_id == client_id))
    if platform is None:
        platform = LtiPlatform(issuer=issuer, client_id=client_id)
        session.add(platform)
    platform.login_url, platform.token_url, platform.jwks_url = login_url, token_url, jwks_url
    # Default: the issuer's and login page's origins. Canvas frames from the school's domain: --frame-origin.
    origins = [origin(o) for o in frame_origins] if frame_origins else sorted({origin(issuer), origin(login_url)})
    platform.frame_origins = " ".join(origins)
    if course:
        platform.course_id = _course(session, course).id
    if deployment_id not in {d.deployment_id for d in platform.deployments}:
        platform.deployments.append(LtiDeployment(deployment_id=deployment_id))
    session.flush()
    return platform


def list_platforms(session: Session) -> list[LtiPlatform]:
    """Every registered platform, oldest first."""
    return list(session.scalars(select(LtiPlatform).order_by(LtiPlatform.id)))


def remove_platform(session: Session, platform_id: int) -> bool:
    """Remove a registration (its placements, identities and pending passbacks go with it); True if it existed."""
    platform = session.get(LtiPlatform, platform_id)
    if platform is None:
        return False
    session.delete(platform)
    session.flush()
    return True


def frame_ancestors(session: Session) -> list[str]:
    """The origins allowed to frame Podium (CSP frame-ancestors): every registered platform's."""
    origins: set[str] = set()
    for (value,) in session.execute(select(LtiPlatform.frame_origins)):
        origins.update((value or "").split())
    return sorted(origins)
