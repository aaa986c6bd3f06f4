"""Limits on every free-text field people type: checked here, before the database, so SQLite (which stores any
length) and Postgres (which refuses past the column's size) treat them alike."""
from __future__ import annotations

import re
import unicodedata

# The longest value of each field; never above its column's size (podium.core.models).
DISPLAY_NAME = 100
EMAIL = 254            # RFC 5321's limit on a forward path
COURSE_NAME = 200
TOKEN_LABEL = 100
REASON = 1000          # a disqualification reason
JOIN_CODE = 32

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _invisible(ch: str) -> bool:
    # Control, format (bidi overrides, zero-width), surrogate and private-use characters; the zero-width
    # (non-)joiners stay, since Persian, Hindi and emoji names need them.
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in "\u200c\u200d"


class FieldError(ValueError):
    """A value that breaks its field's limits; the message names the field and the limit."""


def text(value: str | None, label: str, max_chars: int, *, multiline: bool = False) -> str:
    """value stripped, at most max_chars characters, with no control characters (newlines only where multiline)."""
    value = (value or "").strip()
    if len(value) > max_chars:
        raise FieldError(f"the {label} may have at most {max_chars} characters")
    allowed = "\n\t" if multiline else ""
    if any(_invisible(ch) and ch not in allowed for ch in value):
        raise FieldError(f"the {label} may not hold control or invisible characters")
    return value


def email(value: str | None) -> str | None:
    """An email address (or None when empty): one '@', no spaces, at most EMAIL characters."""
    value = text(value, "email address", EMAIL)
    if not value:
        return None
    if not _EMAIL.match(value):
        raise FieldError("the email address does not look like name@example.org")
    return value


def clip(value: str | None, max_chars: int) -> str:
    """For values from another system (an LMS): stripped of control characters and cut to fit, never refused."""
    kept = "".join(ch for ch in (value or "") if not _invisible(ch))
    return kept.strip()[:max_chars]
