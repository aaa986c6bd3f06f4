"""Courses and accounts: join codes, roster import, registering or claiming a roster entry, aliases."""
from __future__ import annotations

import csv
import hmac
import io
import re
import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from podium.core import board
from podium.core.lti.models import LtiUser
from podium.core.models import Course, Team, User
from podium.server import fields
from podium.server.auth import create_user, end_every_session, hash_password, verify_password
from podium.server.passwords import WeakPassword, check_password

# No 0/O or 1/I/L, so a code read off a projector is typed right.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{2,31}$")


class AccountError(ValueError):
    """A registration, claim or profile change that cannot be accepted; the message says why."""


def _field(check, *args):
    try:
        return check(*args)
    except fields.FieldError as exc:
        raise AccountError(str(exc))


def new_join_code() -> str:
    """A random join code such as 'K7QX2MPA'."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def create_course(session: Session, name: str) -> Course:
    """A new course with a fresh join code."""
    name = _field(fields.text, name, "course name", fields.COURSE_NAME)
    if not name:
        raise AccountError("the course needs a name")
    course = Course(name=name, join_code=new_join_code())
    session.add(course)
    session.flush()
    return course


def course_for_code(session: Session, code: str) -> Course | None:
    """The course a join code opens, ignoring case and spaces."""
    code = re.sub(r"\s+", "", code or "").upper()
    if not code or len(code) > fields.JOIN_CODE:
        return None
    return session.scalar(select(Course).where(Course.join_code == code))


@dataclass
class RosterResult:
    """What a roster import did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    claim_codes: dict[str, str] = field(default_factory=dict)  # username -> code, for every unclaimed entry


def _column(header: list[str], *names: str) -> int | None:
    keys = [h.strip().lower().replace(" ", "_") for h in header]
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def import_roster(session: Session, course: Course, text: str) -> RosterResult:
    """Add the students of a CSV (username, display name, email; header row required) to a course, unclaimed,
    each with a claim code to hand to its student."""
    result = RosterResult()
    try:  # newline="": csv itself splits records, so a bare CR or LF inside a field is data, not an error
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    except csv.Error as exc:
        raise AccountError(f"the roster is not valid CSV: {exc}")
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
        get = lambda i: row[i].strip() if i is not None and i < len(row) else ""  # noqa: E731, B023 (used within this iteration)
        username, name, email = get(col_user), get(col_name), get(col_mail)
        if not USERNAME_RE.match(username):
            result.errors.append(f"line {line}: {username[:70]!r} is not a valid username (2-64 letters, digits, . _ -)")
            continue
        try:
            name = fields.text(name, "display name", fields.DISPLAY_NAME)
            email = fields.email(email)
        except fields.FieldError as exc:
            result.errors.append(f"line {line}: {exc}")
            continue
        existing = session.scalar(select(User).where(User.username == username))
        if existing is None:
            existing = User(username=username, display_name=name or username, email=email or None, role="student",
                            course_id=course.id, claim_code=new_join_code())
            session.add(existing)
            result.added.append(username)
        elif existing.is_instructor:
            result.errors.append(f"line {line}: {username} is an instructor account; left unchanged")
        else:
            existing.display_name = name or existing.display_name
            existing.email = email or existing.email
            existing.course_id = course.id
            if existing.password_hash is None and existing.claim_code is None and not _has_lms_identity(session, existing):
                existing.claim_code = new_join_code()
            result.updated.append(username)
        if existing.claim_code:
            result.claim_codes[existing.username] = existing.claim_code
    session.flush()
    return result


def _has_lms_identity(session: Session, user: User) -> bool:
    return session.scalar(select(LtiUser.id).where(LtiUser.user_id == user.id).limit(1)) is not None


def _check_password(password: str, username: str) -> None:
    try:
        check_password(password, username)
    except WeakPassword as exc:
        raise AccountError(str(exc))


TAKEN = ("this username is taken: pick another one, or, to claim the account your instructor made for you, "
         "enter the claim code they gave you")


def register(session: Session, code: str, username: str, password: str, display_name: str = "",
             email: str | None = None, claim_code: str = "") -> User:
    """A student joins a course with its join code; with a claim code, the roster entry it belongs to is claimed.

    Every refusal reads the same whether or not the username is on a roster.
    """
    course = course_for_code(session, code)
    if course is None:
        raise AccountError("unknown join code; ask your instructor for the course's code")
    username = (username or "").strip()
    display_name = _field(fields.text, display_name, "display name", fields.DISPLAY_NAME)
    email = _field(fields.email, email)
    _check_password(password, username)
    existing = session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if (claim_code or "").strip():
        return claim(session, course, existing, claim_code, password)
    if existing is not None:
        raise AccountError(TAKEN)
    if not USERNAME_RE.match(username):
        raise AccountError("the username must be 2-64 letters, digits, '.', '_' or '-'")
    user = create_user(session, username, "student", password=password, display_name=display_name, email=email)
    user.course_id = course.id
    return user


def claim(session: Session, course: Course, user: User | None, claim_code: str, password: str) -> User:
    """Set the password of an unclaimed roster entry of this course, proven by its claim code."""
    given = re.sub(r"\s+", "", claim_code or "").upper()
    expected = (user.claim_code or "") if user is not None else ""
    unclaimed = (user is not None and user.password_hash is None and user.course_id == course.id
                 and not user.is_instructor and expected)
    if not (hmac.compare_digest(given.encode(), expected.encode()) and unclaimed):
        raise AccountError("this username and claim code do not go together; check both with your instructor")
    _check_password(password, user.username)
    user.password_hash = hash_password(password)
    user.claim_code = None
    session.flush()
    return user


def set_alias(session: Session, user: User, alias: str) -> None:
    """Choose the name shown to other students on leaderboards (empty: your username)."""
    alias = (alias or "").strip()
    if not alias:
        user.alias = None
        board.touch_user(session, user.id)
        return
    if not ALIAS_RE.match(alias):
        raise AccountError("an alias has 3-32 letters, digits, spaces, '.', '_' or '-'")
    clash = session.scalar(select(User).where(User.id != user.id, or_(func.lower(User.alias) == alias.lower(),
                                                                      func.lower(User.username) == alias.lower())))
    if clash is not None or session.scalar(select(Team.id).where(Team.name_key == alias.casefold()).limit(1)):
        raise AccountError("that alias is taken")  # also by a team: a student may not pose as a team
    user.alias = alias
    session.flush()
    board.touch_user(session, user.id)  # the boards that show the name


def roster(session: Session, course: Course) -> list[User]:
    """The course's students, by username."""
    return list(session.scalars(select(User).where(User.course_id == course.id).order_by(User.username)))


def change_password(user: User, current: str, new: str) -> None:
    """Replace the user's password after checking the current one; every session of the user ends."""
    if not verify_password(user, current or ""):
        raise AccountError("the current password is wrong")
    _check_password(new, user.username)
    user.password_hash = hash_password(new)
    end_every_session(user)


def join(session: Session, user: User, code: str) -> Course:
    """Move a logged-in student into the course a join code opens."""
    course = course_for_code(session, code)
    if course is None:
        raise AccountError("unknown join code; ask your instructor for the course's code")
    user.course_id = course.id
    session.flush()
    return course
