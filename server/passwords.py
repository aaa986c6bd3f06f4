"""The password policy: long enough, not one of the common passwords (a bundled list), not the username."""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_DISTINCT = 4


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased."""
    text = files("podium.server").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_password(password: str, username: str = "") -> None:
    """Raise WeakPassword unless password meets the policy."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters (a few words make a good one)")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password may have at most {MAX_LENGTH} characters")
    if len(set(password)) < MIN_DISTINCT:
        raise WeakPassword("the password repeats too few characters; use a few words")
    lowered = password.lower()
    if lowered in common_passwords():
        raise WeakPassword("this password is one of the most common ones; choose another")
    if username and username.strip().lower() == lowered:
        raise WeakPassword("the password must not be your username")
