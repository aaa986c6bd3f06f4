"""The one way a page form changes data: run the change, commit, flash what happened (or roll back and say why)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash

from podium.server.services import db_session


def apply_change(change: Callable[[Any], Any], refused: type[Exception] | tuple[type[Exception], ...],
                 done: Callable[[Any], str] | None = None, refused_prefix: str = "",
                 refused_category: str = "error") -> tuple[bool, Any]:
    """Run change(session) and commit; flash done(result) when given. On a `refused` error roll back and flash it.

    Answers (True, result) or (False, None). A page that shows a form's refusal beside the form (not at
    the top) flashes it under its own category (e.g. "upload-error"), which base.html leaves alone.
    """
    session = db_session()
    try:
        result = change(session)
        session.commit()
    except refused as exc:
        session.rollback()
        flash(f"{refused_prefix}{exc}", refused_category)
        return False, None
    if done is not None:
        flash(done(result), "ok")
    return True, result
