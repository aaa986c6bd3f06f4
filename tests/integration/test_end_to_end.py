"""The whole path with real parts: HTTP upload -> real Celery worker -> SQL leaderboard."""
from __future__ import annotations

import re

import numpy as np
import pytest

from podium.core.split import public_mask
from tests.support import live
from tests.support.devices import scored_on
from tests.support.models import WrongClasses, predict, scripted_bytes, trained_cnn


def _digits_arrays(bundle):
    with np.load(bundle / "data" / "test.npz") as test, np.load(bundle / "data" / "train.npz") as train:
        return test["x"], test["y"], train["x"], train["y"]


def _run_path(stack, digits_bundle):
    x_test, y_test, x_train, y_train = _digits_arrays(digits_bundle)
    model = trained_cnn(x_train, y_train, 10, steps=40)
    pred = predict(model, x_test)
    mask = public_mask(y_test, 0.3, 7)
    expected_public = float(np.mean(pred[mask] == y_test[mask]))
    expected_private = float(np.mean(pred[~mask] == y_test[~mask]))
    assert 0.3 < expected_public < 1.0  # a real model, not chance and not perfect

    alice = live.Api(stack.url, stack.tokens["alice"])
    resp = alice.submit("digits", scripted_bytes(model))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "queued" and isinstance(body["id"], int)
    sub = alice.wait_finished(body["id"])
    assert sub["status"] == "scored", (sub, stack.log("worker"))
    assert sub["public_score"] == pytest.approx(expected_public, abs=1e-12)
    assert "private_score" not in sub  # students do not see private scores before the reveal
    assert sub["started_at"] and sub["finished_at"] and sub["created_at"]
    assert sub["device"] == scored_on()  # the student sees what scored it, as the contract lists

    board = live.Api(stack.url).get("/challenges/digits/leaderboard").json()
    row = next(r for r in board["rows"] if r["user"] == "alice")
    assert row["public_score"] == pytest.approx(expected_public, abs=1e-12)
    assert "private_score" not in row and board["revealed"] is False

    prof = live.Api(stack.url, stack.tokens["prof"])
    seen = prof.get(f"/submissions/{body['id']}").json()
    assert seen["private_score"] == pytest.approx(expected_private, abs=1e-12)


def test_sqlite_default_scores_exactly(sqlite_stack, digits_bundle):
    """Embedded default: the leaderboard shows exactly the accuracy computed here with numpy."""
    _run_path(sqlite_stack, digits_bundle)


@pytest.mark.postgres
def test_postgres_and_redis_scores_exactly(pg_stack, digits_bundle):
    """The same code on Postgres and Redis."""
    _run_path(pg_stack, digits_bundle)


def test_wrong_output_shape_fails_with_reason(sqlite_stack):
    """A model with the wrong number of classes ends failed, with a reason the student can act on."""
    bob = live.Api(sqlite_stack.url, sqlite_stack.tokens["bob"])
    resp = bob.submit("digits", scripted_bytes(WrongClasses()))
    assert resp.status_code == 202
    sub = bob.wait_finished(resp.json()["id"])
    assert sub["status"] == "failed"
    assert re.search(r"output shape \[\d+, 3\].*expected \[\d+, 10\]", sub["error"]), sub["error"]


def test_best_score_per_student_and_ties(sqlite_stack, tmp_path):
    """The leaderboard keeps each student's best score; equal scores rank the earlier one first."""
    from tests.support.models import small_cnn
    api_bob = live.Api(sqlite_stack.url, sqlite_stack.tokens["bob"])
    api_prof = live.Api(sqlite_stack.url, sqlite_stack.tokens["prof"])
    model = scripted_bytes(small_cnn(seed=1, in_shape=(1, 8, 8), num_classes=3))
    first = api_bob.submit("tiny", model).json()["id"]
    api_bob.wait_finished(first)
    second = api_prof.submit("tiny", model).json()["id"]
    api_prof.wait_finished(second)
    board = live.Api(sqlite_stack.url).get("/challenges/tiny/leaderboard").json()
    users = [r["user"] for r in board["rows"]]
    assert users.index("bob") < users.index("prof")
    assert board["rows"][0]["rank"] == 1
