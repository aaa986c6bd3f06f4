"""Accepting an uploaded model, shared by the REST API and the web form: checks, store, commit, then enqueue."""
from __future__ import annotations

from sqlalchemy.orm import Session

from podium.core.modelcheck import ModelRejected
from podium.core.modelformat import inspect_model
from podium.core.models import Challenge, Submission, User
from podium.core.queueing import enqueue, queue_for
from podium.server.errors import ApiError
from podium.server.lifecycle import check_uploads_allowed
from podium.server.services import services
from podium.server.submissions import check_limits, check_window, new_submission, prior_submission
from podium.server.uploads import drain_body, idempotency_key, receive_model

MB = 1 << 20


def accept_submission(session: Session, user: User, challenge: Challenge, verify=None) -> Submission:
    """Take the model in this request's field `model`: window and limits, archive shape, commit, enqueue.

    Raises ApiError (403 window, 429 limits, 400/413/422 upload) with a message a student can act on.
    `verify`, when given, runs once the body is parsed (the web form checks its CSRF token there).
    A retry carrying the Idempotency-Key of an upload made within the day gets that submission back,
    before any limit is counted, and nothing new is stored or enqueued.
    """
    key = idempotency_key()
    prior = prior_submission(session, user, challenge, key)
    if prior is not None:
        drain_body()
        return prior
    check_uploads_allowed(challenge)
    check_window(challenge)
    check_limits(session, user, challenge)
    max_bytes = int(challenge.max_model_mb * MB)
    upload = receive_model(max_bytes)
    try:
        if verify is not None:
            verify()
        fmt = inspect_model(upload.path, max_bytes=max_bytes)
    except ModelRejected as exc:
        upload.discard()
        raise ApiError(422, "invalid_model", exc.reason)
    except BaseException:
        upload.discard()
        raise
    sha = upload.commit()
    sub, created = new_submission(session, user, challenge, sha, upload.size, upload.filename, idempotency_key=key)
    if created:
        sub.format = fmt
    session.commit()
    if created:
        enqueue(services().celery, session, sub.id, sub.attempt, queue_for(challenge))
    return sub
