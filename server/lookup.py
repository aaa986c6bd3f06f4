"""Finding a row by its public name for a page or an API view: one lookup, one 404 for both."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from podium.core.models import Challenge, User
from podium.server.lifecycle import visible_to


def viewer() -> User | None:
    """Who is asking (the app factory installs the resolver: API caller under /api, else the logged-in user)."""
    return current_app.extensions["podium_viewer"]()


def challenge_or_404(session: Session, slug: str) -> Challenge:
    """The challenge with this slug; NotFound (a 404 page, or code "not_found" under /api) when there is none.

    A draft is not found for anyone but instructors (podium.server.lifecycle).
    """
    challenge = session.scalar(select(Challenge).where(Challenge.slug == slug))
    if challenge is None or not visible_to(challenge, viewer()):
        raise NotFound(description=f"no challenge named {slug!r}")
    return challenge
