"""Accepting an uploaded model, shared by the REST API and the web form: checks, store, commit, then enqueue."""
from __future__ import annotations

from sqlalchemy.orm import Session

from podium.modelcheck import ModelRejected, inspect_archive
from server.errors import ApiError
from server.models import Challenge, Submission, User
from server.queueing import enqueue, queue_for
from server.services import services
from server.submissions import check_limits, check_window, new_submission
from server.uploads import receive_model

MB = 1 << 20


def accept_submission(session: Session, user: User, challenge: Challenge, verify=None) -> Submission:
    """Take the model in this request's field `model`: window and limits, archive shape, commit, enqueue.

    Raises ApiError (403 window, 429 limits, 400/413/422 upload) with a message a student can act on.
    `verify`, when given, runs once the body is parsed (the web form checks its CSRF token there).
    """
    check_window(challenge)
    check_limits(session, user, challenge)
    max_bytes = int(challenge.max_model_mb * MB)
    upload = receive_model(max_bytes)
    try:
        if verify is not None:
            verify()
        inspect_archive(upload.path, max_bytes=max_bytes)
    except ModelRejected as exc:
        upload.discard()
        raise ApiError(422, "invalid_model", exc.reason)
    except BaseException:
        upload.discard()
        raise
    sha = upload.commit()
    sub = new_submission(session, user, challenge, sha, upload.size, upload.filename)
    session.commit()
    enqueue(services().celery, session, sub.id, sub.attempt, queue_for(challenge))
    return sub
