"""Passwords and API tokens: hashed at rest, plain tokens shown once."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import lru_cache

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from podium.core.models import ApiToken, User, utcnow

ROLES = ("student", "instructor")
TOKEN_TOUCH = timedelta(minutes=1)  # how stale a token's last_used_at may get


def hash_token(token: str) -> str:
    """Tokens are 256 random bits, so a plain sha256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """scrypt via werkzeug."""
    return generate_password_hash(password, method="scrypt")


def verify_password(user: User, password: str) -> bool:
    """True when the password matches the stored hash."""
    return bool(user.password_hash) and check_password_hash(user.password_hash, password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user these credentials sign in, or None; an unknown name costs one hash too, so timing tells nothing."""
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None or not user.password_hash:
        check_password_hash(_dummy_hash(), password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def create_user(session: Session, username: str, role: str = "student", *, password: str | None = None,
                display_name: str = "", email: str | None = None) -> User:
    """Add a user; refuses an unknown role or a taken name."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64:
        raise ValueError("username must be 1-64 characters")
    if session.scalar(select(User).where(User.username == username)):
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, role=role, display_name=display_name or username, email=email,
                password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def end_every_session(user: User) -> None:
    """Raise the user's session version: every browser signed in as user is signed out once this commits."""
    user.session_version = (user.session_version or 0) + 1


def issue_token(session: Session, user: User, label: str = "") -> str:
    """Create a new API token for user and return it in plain text (only now)."""
    token = "pod_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), label=label))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The user a bearer token belongs to, or None when unknown or revoked."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token),
                                                ApiToken.revoked_at.is_(None)))
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH:  # one write a minute, not one a call
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
                        .execution_options(synchronize_session=False))
        session.commit()
    return row.user


def revoke_token(session: Session, user: User, token_id: int) -> bool:
    """Revoke one of user's tokens."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
