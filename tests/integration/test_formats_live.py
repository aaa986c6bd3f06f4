"""One model exported three ways, uploaded over HTTP, scored by a real worker: the same exact score for each format."""
from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from podium.core.split import public_mask
from podium.server.app import create_app
from tests.support import live
from tests.support.classroom import Browser
from tests.support.models import exported_bytes, model_bytes, predict, trained_cnn

FORMATS = ("exported_program", "onnx", "torchscript")


def _digits(bundle):
    with np.load(bundle / "data" / "test.npz") as test, np.load(bundle / "data" / "train.npz") as train:
        return test["x"], test["y"], train["x"], train["y"]


def test_three_formats_reach_the_leaderboard_with_the_same_exact_score(sqlite_stack, digits_bundle):
    x_test, y_test, x_train, y_train = _digits(digits_bundle)
    model = trained_cnn(x_train, y_train, 10, steps=40, seed=5)
    pred = predict(model, x_test)
    mask = public_mask(y_test, 0.3, 7)
    expected_public = float(np.mean(pred[mask] == y_test[mask]))
    expected_private = float(np.mean(pred[~mask] == y_test[~mask]))
    assert 0.3 < expected_public < 1.0

    alice = live.Api(sqlite_stack.url, sqlite_stack.tokens["alice"])
    prof = live.Api(sqlite_stack.url, sqlite_stack.tokens["prof"])
    ids = {}
    for fmt in FORMATS:
        resp = alice.submit("digits", model_bytes(fmt, model, (1, 28, 28)), filename="model.bin")
        assert resp.status_code == 202, resp.text
        ids[fmt] = resp.json()["id"]
        assert alice.get(f"/submissions/{ids[fmt]}").json()["format"] == fmt  # known from the bytes at upload
    for fmt, sub_id in ids.items():
        sub = alice.wait_finished(sub_id)
        assert sub["status"] == "scored", (fmt, sub, sqlite_stack.log("worker"))
        assert sub["format"] == fmt
        assert sub["public_score"] == pytest.approx(expected_public, abs=1e-12), fmt
        seen = prof.get(f"/submissions/{sub_id}").json()
        assert seen["private_score"] == pytest.approx(expected_private, abs=1e-12), fmt
        assert seen["format"] == fmt and seen["device"] == "cpu"

    board = live.Api(sqlite_stack.url).get("/challenges/digits/leaderboard").json()
    row = next(r for r in board["rows"] if r["user"] == "alice")
    assert row["public_score"] == pytest.approx(expected_public, abs=1e-12)

    app = create_app(sqlite_stack.settings)
    page = Browser(app, "prof").get("/instructor/challenges/digits").get_data(as_text=True)
    for fmt in FORMATS:
        assert 'model-format" title="scored with' in page and f">{fmt}</span>" in page
    assert f"onnxruntime {onnxruntime.__version__}" in page  # the provenance names the runtime that scored ONNX
    from podium.core.models import Score
    with app.extensions["podium"].db.session() as s:
        versions = {sid: s.query(Score).filter_by(submission_id=sid).one().versions for sid in ids.values()}
    assert versions[ids["onnx"]]["onnxruntime"] == onnxruntime.__version__
    assert versions[ids["exported_program"]]["format"] == "exported_program"
    assert "onnxruntime" not in versions[ids["torchscript"]]


def test_fixed_batch_export_fails_on_the_site_with_the_recipe(sqlite_stack, digits_bundle):
    x_test, y_test, x_train, y_train = _digits(digits_bundle)
    bob = live.Api(sqlite_stack.url, sqlite_stack.tokens["bob"])
    model = trained_cnn(x_train[:200], y_train[:200], 10, steps=2)
    resp = bob.submit("digits", exported_bytes(model, (1, 28, 28), dynamic=False))
    assert resp.status_code == 202, resp.text
    sub = bob.wait_finished(resp.json()["id"])
    assert sub["status"] == "failed" and sub["format"] == "exported_program"
    assert "batch dimension is fixed at 2" in sub["error"]
    assert 'dynamic_shapes={"x": {0: torch.export.Dim("batch")}}' in sub["error"]


def test_pickled_model_is_refused_at_upload_with_the_recipes(sqlite_stack):
    import io

    import torch

    bob = live.Api(sqlite_stack.url, sqlite_stack.tokens["bob"])
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buf)
    resp = bob.submit("digits", buf.getvalue(), filename="model.pt2")
    assert resp.status_code == 422
    message = resp.json()["error"]["message"]
    assert "never unpickles" in message and "torch.export.save(program, 'model.pt2')" in message
    assert "torch.onnx.export(" in message and "torch.jit.script(" in message
