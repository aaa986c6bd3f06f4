"""Courses and accounts: join codes, roster import, registering or claiming a roster entry, aliases."""
from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from server.auth import create_user, hash_password, verify_password
from server.models import Course, User

# No 0/O or 1/I/L, so a code read off a projector is typed right.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
MIN_PASSWORD = 8
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{2,31}$")


class AccountError(ValueError):
    """A registration, claim or profile change that cannot be accepted; the message says why."""


def new_join_code() -> str:
    """A random join code such as 'K7QX2MPA'."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def create_course(session: Session, name: str) -> Course:
    """A new course with a fresh join code."""
    name = (name or "").strip()
    if not name:
        raise AccountError("the course needs a name")
    course = Course(name=name[:200], join_code=new_join_code())
    session.add(course)
    session.flush()
    return course


def course_for_code(session: Session, code: str) -> Course | None:
    """The course a join code opens, ignoring case and spaces."""
    code = re.sub(r"\s+", "", code or "").upper()
    return session.scalar(select(Course).where(Course.join_code == code)) if code else None


@dataclass
class RosterResult:
    """What a roster import did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _column(header: list[str], *names: str) -> int | None:
    keys = [h.strip().lower().replace(" ", "_") for h in header]
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def import_roster(session: Session, course: Course, text: str) -> RosterResult:
    """Add the students of a CSV (username, display name, email; header row required) to a course, unclaimed."""
    result = RosterResult()
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise AccountError("the roster is empty")
    header = rows[0]
    col_user = _column(header, "username", "user", "login")
    col_name = _column(header, "display_name", "name", "full_name")
    col_mail = _column(header, "email", "e-mail", "mail")
    if col_user is None:
        raise AccountError("the roster's first row must name the columns: username, display name, email")
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        get = lambda i: row[i].strip() if i is not None and i < len(row) else ""  # noqa: E731
        username, name, email = get(col_user), get(col_name), get(col_mail)
        if not USERNAME_RE.match(username):
            result.errors.append(f"line {line}: {username!r} is not a valid username (2-64 letters, digits, . _ -)")
            continue
        existing = session.scalar(select(User).where(User.username == username))
        if existing is None:
            session.add(User(username=username, display_name=name or username, email=email or None, role="student",
                             course_id=course.id))
            result.added.append(username)
        elif existing.is_instructor:
            result.errors.append(f"line {line}: {username} is an instructor account; left unchanged")
        else:
            existing.display_name = name or existing.display_name
            existing.email = email or existing.email
            existing.course_id = course.id
            result.updated.append(username)
    session.flush()
    return result


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


def register(session: Session, code: str, username: str, password: str, display_name: str = "",
             email: str | None = None) -> User:
    """A student joins a course with its join code; a username on the roster is claimed instead (email must match)."""
    course = course_for_code(session, code)
    if course is None:
        raise AccountError("unknown join code; ask your instructor for the course's code")
    username = (username or "").strip()
    _check_password(password)
    existing = session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if existing is not None:
        return claim(session, course, existing, email or "", password)
    if not USERNAME_RE.match(username):
        raise AccountError("the username must be 2-64 letters, digits, '.', '_' or '-'")
    user = create_user(session, username, "student", password=password, display_name=display_name.strip(),
                       email=(email or "").strip() or None)
    user.course_id = course.id
    return user


def claim(session: Session, course: Course, user: User, email: str, password: str) -> User:
    """Set the password of an unclaimed roster entry, proven by the email address the roster holds."""
    unclaimed = user.password_hash is None and user.course_id == course.id and not user.is_instructor
    if not unclaimed:
        raise AccountError("this username is taken; pick another one")
    if not user.email or user.email.strip().lower() != (email or "").strip().lower():
        raise AccountError("this username is on the course roster: enter the email address your instructor has")
    _check_password(password)
    user.password_hash = hash_password(password)
    session.flush()
    return user


def set_alias(session: Session, user: User, alias: str) -> None:
    """Choose the name shown to other students on leaderboards (empty: your username)."""
    alias = (alias or "").strip()
    if not alias:
        user.alias = None
        return
    if not ALIAS_RE.match(alias):
        raise AccountError("an alias has 3-32 letters, digits, spaces, '.', '_' or '-'")
    clash = session.scalar(select(User).where(User.id != user.id, or_(func.lower(User.alias) == alias.lower(),
                                                                      func.lower(User.username) == alias.lower())))
    if clash is not None:
        raise AccountError("that alias is taken")
    user.alias = alias
    session.flush()


def roster(session: Session, course: Course) -> list[User]:
    """The course's students, by username."""
    return list(session.scalars(select(User).where(User.course_id == course.id).order_by(User.username)))


def change_password(user: User, current: str, new: str) -> None:
    """Replace the user's password after checking the current one."""
    if not verify_password(user, current or ""):
        raise AccountError("the current password is wrong")
    _check_password(new)
    user.password_hash = hash_password(new)


def join(session: Session, user: User, code: str) -> Course:
    """Move a logged-in student into the course a join code opens."""
    course = course_for_code(session, code)
    if course is None:
        raise AccountError("unknown join code; ask your instructor for the course's code")
    user.course_id = course.id
    session.flush()
    return course
