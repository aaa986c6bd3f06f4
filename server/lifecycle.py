"""A challenge's lifecycle: draft (instructors only) -> published (everyone) -> archived (kept, read-only, unlisted)."""
from __future__ import annotations

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from podium.core.models import Challenge, User
from podium.server.errors import ApiError

DRAFT, PUBLISHED, ARCHIVED = "draft", "published", "archived"
STATES = (DRAFT, PUBLISHED, ARCHIVED)
# The verbs of `podium challenge ...` and the dashboard's buttons, and the state each one leads to.
ACTIONS = {"publish": PUBLISHED, "unpublish": DRAFT, "archive": ARCHIVED}
EXPLAINED = {
    DRAFT: "a draft: only instructors see it (they may upload to try it)",
    PUBLISHED: "published: students see it and may upload",
    ARCHIVED: "archived: hidden from the lists, its leaderboard and submissions kept, no uploads",
}


class LifecycleError(ValueError):
    """An unknown state or action."""


def move(challenge: Challenge, action: str) -> bool:
    """Apply publish | unpublish | archive; False when the challenge was already in that state."""
    if action not in ACTIONS:
        raise LifecycleError(f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}")
    target = ACTIONS[action]
    if challenge.state == target:
        return False
    challenge.state = target
    return True


def visible_to(challenge: Challenge, viewer: User | None) -> bool:
    """Drafts exist only for instructors (a 404 for anyone else); published and archived ones for everyone."""
    return challenge.state != DRAFT or bool(viewer and viewer.is_instructor)


def listed_for(viewer: User | None):
    """SQL condition on Challenge for the lists (home page, GET /challenges): instructors see every state."""
    if viewer is not None and viewer.is_instructor:
        return true()
    return Challenge.state == PUBLISHED


def check_uploads_allowed(challenge: Challenge) -> None:
    """An archived challenge takes no uploads (403)."""
    if challenge.state == ARCHIVED:
        raise ApiError(403, "archived", f"challenge {challenge.slug} is archived: its leaderboard stays, "
                       "but it takes no more uploads")


def same_title(session: Session, challenge: Challenge) -> list[str]:
    """Slugs of the other challenges with this challenge's title (case-insensitive), for a warning."""
    query = select(Challenge.slug).where(func.lower(Challenge.title) == challenge.title.lower(),
                                         Challenge.id != challenge.id).order_by(Challenge.slug)
    return list(session.scalars(query))


def duplicate_title_warning(session: Session, challenge: Challenge) -> str | None:
    """The warning to show when another challenge already has this title, else None."""
    others = same_title(session, challenge)
    if not others:
        return None
    return (f"warning: challenge {', '.join(others)} has the same title {challenge.title!r}; "
            "students tell challenges apart by title, so consider another")
