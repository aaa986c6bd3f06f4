"""Challenge lifecycle: a new challenge is a draft only instructors see (and may try); publish, unpublish, archive."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from podium.core.bundle.archive import save_npz
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.classroom import Browser, Classroom
from tests.support.models import scripted_bytes, small_cnn


def podium(room: Classroom, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PODIUM_DATA_DIR=str(room.settings.data_dir))
    env.pop("PODIUM_DATABASE_URL", None)
    env.pop("PODIUM_BROKER_URL", None)
    return subprocess.run([sys.executable, "-m", "podium.cli", *args], capture_output=True, text=True, env=env,
                          timeout=180, cwd=live.REPO)


@pytest.fixture
def room(tmp_path):
    return Classroom(tmp_path)


def _api(room, name, method, path, **kw):
    client = room.app.test_client()
    return getattr(client, method)(f"/api/v1{path}", headers={"Authorization": f"Bearer {room.tokens[name]}"}, **kw)


def _upload(room, name, slug):
    model = scripted_bytes(small_cnn(in_shape=(1, 8, 8), num_classes=3))
    return _api(room, name, "post", f"/challenges/{slug}/submissions", content_type="multipart/form-data",
                data={"model": (io.BytesIO(model), "m.pt")})


def _listed(room, name) -> dict:
    return {c["slug"]: c["state"] for c in _api(room, name, "get", "/challenges").get_json()}


def test_draft_publish_unpublish_archive(room, tmp_path):
    added = podium(room, "challenge", "add", str(write_tiny_bundle(tmp_path / "quiz", slug="quiz")))
    assert added.returncode == 0, added.stderr
    assert "as a draft" in added.stdout and "podium challenge publish quiz" in added.stdout

    # A draft: unknown to students (list, API, page, upload), seen and tried by instructors.
    assert "quiz" not in _listed(room, "alice") and _listed(room, "alice")["tiny"] == "published"
    assert _listed(room, "prof")["quiz"] == "draft"
    assert _api(room, "alice", "get", "/challenges/quiz").status_code == 404
    assert _api(room, "alice", "get", "/challenges/quiz/leaderboard").status_code == 404
    assert room.app.test_client().get("/api/v1/challenges/quiz").status_code == 404  # anonymous
    assert _upload(room, "alice", "quiz").status_code == 404
    alice, prof = Browser(room.app, "alice"), Browser(room.app, "prof")
    assert alice.get("/challenges/quiz").status_code == 404
    assert "quiz" not in alice.get("/").get_data(as_text=True)
    assert _api(room, "prof", "get", "/challenges/quiz").get_json()["state"] == "draft"
    assert _upload(room, "prof", "quiz").status_code == 202  # the instructor tries it as a test student would
    page = prof.get("/challenges/quiz").get_data(as_text=True)
    assert "A draft: students cannot see this challenge yet" in page
    home = prof.get("/").get_data(as_text=True)
    assert "tag-draft" in home

    # Published (from the dashboard's button): everyone sees it.
    resp = prof.post("/instructor/challenges/quiz/state", {"action": "publish"})
    assert resp.status_code == 303
    assert _listed(room, "alice")["quiz"] == "published"
    assert alice.get("/challenges/quiz").status_code == 200
    assert _upload(room, "alice", "quiz").status_code == 202

    # Back to a draft (CLI), then archived (API): unlisted, read-only, its leaderboard kept.
    out = podium(room, "challenge", "unpublish", "quiz")
    assert out.returncode == 0 and "is now a draft" in out.stdout, out.stderr
    assert _api(room, "alice", "get", "/challenges/quiz").status_code == 404
    assert _api(room, "alice", "post", "/challenges/quiz/archive").status_code == 403  # students may not
    moved = _api(room, "prof", "post", "/challenges/quiz/archive")
    assert moved.status_code == 200 and moved.get_json() == {"challenge": "quiz", "state": "archived", "changed": True}
    assert "quiz" not in _listed(room, "alice") and _listed(room, "prof")["quiz"] == "archived"
    assert _api(room, "alice", "get", "/challenges/quiz/leaderboard").status_code == 200
    refused = _upload(room, "alice", "quiz")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "archived"
    assert "uploads are closed" in alice.get("/challenges/quiz").get_data(as_text=True)
    again = podium(room, "challenge", "archive", "quiz")
    assert again.returncode == 0 and "was already archived" in again.stdout
    assert podium(room, "challenge", "publish", "nope").returncode == 2


def test_publish_flag_and_replace_keeps_the_state(room, tmp_path):
    bundle = write_tiny_bundle(tmp_path / "open", slug="open-now")
    out = podium(room, "challenge", "add", str(bundle), "--publish")
    assert out.returncode == 0 and "published challenge open-now" in out.stdout, out.stderr
    assert _listed(room, "alice")["open-now"] == "published"
    out = podium(room, "challenge", "add", str(bundle), "--replace")
    assert out.returncode == 0 and _listed(room, "alice")["open-now"] == "published"
    assert "same title" not in out.stdout  # a replaced challenge is not its own twin


def test_same_title_is_warned_about(room, tmp_path):
    twin = write_tiny_bundle(tmp_path / "twin", slug="twin")
    toml = twin / "challenge.toml"
    toml.write_text(toml.read_text().replace('title = "Tiny twin"', 'title = "TINY TINY"'))
    out = podium(room, "challenge", "add", str(twin))
    assert out.returncode == 0 and "warning: challenge tiny has the same title 'TINY TINY'" in out.stdout, out.stdout


def test_float64_inputs_are_cast_and_said_so(room, tmp_path):
    bundle = write_tiny_bundle(tmp_path / "f64", slug="f64")
    with np.load(bundle / "data" / "test.npz") as npz:
        x, y = npz["x"].astype(np.float64), npz["y"]
    save_npz(bundle / "data" / "test.npz", x, y)
    out = podium(room, "challenge", "add", str(bundle))
    assert out.returncode == 0, out.stderr
    assert "data/test.npz: x is float64; cast to float32" in out.stdout
    assert "train.npz" not in out.stdout  # that one was float32 already
    save_npz(bundle / "data" / "test.npz", x.astype(np.complex64), y)
    refused = podium(room, "challenge", "add", str(bundle), "--replace")
    assert refused.returncode == 2 and "expected float32" in refused.stderr
