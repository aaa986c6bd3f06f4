"""Turn a validated launch (or an NRPS roster) into Podium accounts, course membership and placements."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from podium.core.lti.models import LtiLaunchLink, LtiPlatform, LtiResourceLink, LtiUser
from podium.core.models import Challenge, User, utcnow
from podium.server import fields
from podium.server.lti.launch import LTI, Launch, LaunchError

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
STAFF = {"Instructor", "TeachingAssistant", "Administrator"}  # context roles that make an instructor
INSTRUCTOR, STUDENT = "instructor", "student"


def map_role(roles: list[str]) -> str:
    """LTI context roles -> 'instructor' or 'student'; institution and system roles do not count."""
    for role in roles:
        if "/institution/" in role or "/system/" in role:
            continue
        # A full URI (membership#Instructor, membership/Instructor#TeachingAssistant) or a short name.
        if set(re.split(r"[#/]", role)) & STAFF:
            return INSTRUCTOR
    return STUDENT


def challenge_slug(claims: dict) -> str | None:
    """The challenge the custom parameter `challenge` names, else the target link URI's /challenges/<slug>."""
    slug = (claims.get(LTI + "custom") or {}).get("challenge")
    if slug:
        return str(slug)
    path = urlsplit(claims.get(LTI + "target_link_uri") or "").path
    match = re.match(r"^/challenges/([\w.-]+)/?$", path)
    return match.group(1) if match else None


def _username(session: Session, platform: LtiPlatform, sub: str, email: str | None) -> str:
    """A free username from the email's local part (else lti<platform>-<sub>), in Podium's username alphabet."""
    base = (email or "").split("@")[0] or f"lti{platform.id}-{sub}"
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._")[:56] or f"lti{platform.id}"
    if not base[0].isalnum():
        base = "u" + base
    name, n = base, 1
    while session.scalar(select(User.id).where(func.lower(User.username) == name.lower())) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def user_for(session: Session, platform: LtiPlatform, sub: str, name: str | None, email: str | None,
             role: str) -> User:
    """The passwordless account of (platform, sub), created on first sight; name and email follow the LMS."""
    user = session.scalar(select(User).join(LtiUser, LtiUser.user_id == User.id)
                          .where(LtiUser.platform_id == platform.id, LtiUser.sub == sub))
    if user is None:
        user = User(username=_username(session, platform, sub, email), role=role, password_hash=None,
                    display_name=fields.clip(name, fields.DISPLAY_NAME))
        session.add(user)
        session.flush()
        session.add(LtiUser(platform_id=platform.id, sub=sub, user_id=user.id))
    user.display_name = fields.clip(name, fields.DISPLAY_NAME) or user.display_name or ""
    user.email = fields.clip(email, fields.EMAIL) or user.email
    if role == INSTRUCTOR:
        user.role = INSTRUCTOR  # Podium's role is global: a student launch elsewhere never lowers it
    return user


def enrol(platform: LtiPlatform, user: User) -> None:
    """Put a student in the platform's Podium course (instructors are not course members in Podium)."""
    if platform.course_id is not None and not user.is_instructor:
        user.course_id = platform.course_id


def _resource_link(session: Session, launch: Launch, challenge: Challenge) -> LtiResourceLink:
    claims = launch.claims
    link_claim = claims[LTI + "resource_link"]
    row = session.scalar(select(LtiResourceLink).where(LtiResourceLink.platform_id == launch.platform.id,
                                                       LtiResourceLink.resource_link_id == link_claim["id"]))
    if row is None:
        row = LtiResourceLink(platform_id=launch.platform.id, resource_link_id=link_claim["id"])
        session.add(row)
    context = claims.get(LTI + "context") or {}
    row.deployment_id, row.challenge_id = launch.deployment_id, challenge.id
    row.title = (link_claim.get("title") or row.title or "")[:500]
    row.context_id = context.get("id") or row.context_id
    row.context_title = context.get("title") or row.context_title
    ags = claims.get(AGS) or {}
    row.lineitem_url = ags.get("lineitem") or row.lineitem_url
    row.lineitems_url = ags.get("lineitems") or row.lineitems_url
    row.ags_scopes = list(ags.get("scope") or row.ags_scopes or [])
    row.nrps_url = (claims.get(NRPS) or {}).get("context_memberships_url") or row.nrps_url
    session.flush()
    return row


def provision(session: Session, launch: Launch) -> tuple[User, Challenge]:
    """The sign-in side of a validated launch; refuses (LaunchError) before writing anything."""
    claims = launch.claims
    slug = challenge_slug(claims)
    challenge = session.scalar(select(Challenge).where(Challenge.slug == slug)) if slug else None
    if challenge is None:
        raise LaunchError(400, f"the launch names no known challenge (custom parameter challenge={slug!r})")
    role = map_role(claims[LTI + "roles"])
    user = user_for(session, launch.platform, claims["sub"], claims.get("name"), claims.get("email"), role)
    enrol(launch.platform, user)
    rlink = _resource_link(session, launch, challenge)
    link = session.scalar(select(LtiLaunchLink).where(LtiLaunchLink.user_id == user.id,
                                                      LtiLaunchLink.resource_link_pk == rlink.id))
    if link is None:
        link = LtiLaunchLink(user_id=user.id, resource_link_pk=rlink.id, sub=claims["sub"], role=role)
        session.add(link)
    link.role, link.last_launch_at = role, utcnow()
    return user, challenge


def import_roster(session: Session, rlink: LtiResourceLink, members: list[dict]) -> tuple[int, int]:
    """Accounts and course membership for the active NRPS members; returns (students, instructors)."""
    counts = {STUDENT: 0, INSTRUCTOR: 0}
    for member in members:
        if member.get("status", "Active") != "Active" or not member.get("user_id"):
            continue
        role = map_role(member.get("roles", []))
        user = user_for(session, rlink.platform, str(member["user_id"]), member.get("name"), member.get("email"),
                        role)
        enrol(rlink.platform, user)
        if role == STUDENT:
            # A launch link ahead of the first launch, so the student's scores go back even before they launch.
            link = session.scalar(select(LtiLaunchLink).where(LtiLaunchLink.user_id == user.id,
                                                              LtiLaunchLink.resource_link_pk == rlink.id))
            if link is None:
                session.add(LtiLaunchLink(user_id=user.id, resource_link_pk=rlink.id, sub=str(member["user_id"]),
                                          role=role))
        counts[role] += 1
    session.flush()
    return counts[STUDENT], counts[INSTRUCTOR]
