"""An instructor's GET /challenges/<slug>/submissions streams every submission, newest first, read in chunks."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from podium.core import states
from podium.core.models import Challenge, Score, Submission, User
from podium.server import submissions
from tests.support import live


@pytest.fixture(params=live.ENGINES)
def db(request, tmp_path):
    with live.migrated_database(request.param, tmp_path) as database:
        yield database


def _challenge_with(db, n: int) -> tuple[int, int]:
    with db.session() as s:
        c = Challenge(slug="c", title="C", kind="image", labels=["a", "b"], input_shape=[1, 8, 8],
                      test_sha256="0" * 64, n_test=10)
        prof = User(username="prof", role="instructor")
        ann = User(username="ann", role="student")
        s.add_all([c, prof, ann])
        s.flush()
        for i in range(n):
            sub = Submission(challenge_id=c.id, user_id=ann.id, status=states.QUEUED, model_sha256=f"{i:064x}",
                             model_size=1, params=100 + i)
            s.add(sub)
            s.flush()
            if i % 2 == 0:  # every other one scored, so scores load with their submissions
                assert states.claim(s, sub.id, 1, "w", 60)
                s.add(Score(submission_id=sub.id, challenge_id=c.id, user_id=ann.id, metric="accuracy",
                            public_score=i / 10, private_score=i / 20, n_public=3, n_private=7))
                assert states.finish_scored(s, sub.id, 1)
        s.commit()
        return c.id, prof.id


@pytest.mark.parametrize("n", [0, 3, 7])
def test_the_streamed_list_is_every_submission_newest_first(db, n, monkeypatch):
    monkeypatch.setattr(submissions, "LIST_CHUNK", 3)  # 7 rows: three chunks; 3 rows: a full chunk, then none
    challenge_id, prof_id = _challenge_with(db, n)
    got = json.loads("".join(submissions.every_submission_json(db, challenge_id, prof_id)))
    with db.session() as s:
        prof = s.get(User, prof_id)
        expected = [submissions.submission_json(x, prof) for x in s.scalars(
            select(Submission).where(Submission.challenge_id == challenge_id).order_by(Submission.id.desc()))]
    assert got == expected and len(got) == n
    assert [row["public_score"] for row in got if row["status"] == "scored"] == \
        [i / 10 for i in reversed(range(n)) if i % 2 == 0]
