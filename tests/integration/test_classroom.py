"""The classroom in one process: accounts, CSRF, the upload form, limits, final picks, instructor actions, exports."""
from __future__ import annotations

import csv
import functools
import io
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from podium.core import states
from podium.core.bundle.archive import save_npz
from podium.core.models import ApiToken, Rescore, Score, Submission, utcnow
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.classroom import Browser, Classroom


@pytest.fixture(scope="module")
def template_room(tmp_path_factory) -> Classroom:
    return Classroom(tmp_path_factory.mktemp("classroom-template"))


@pytest.fixture
def room(tmp_path, template_room) -> Classroom:
    return Classroom(tmp_path, template=template_room)


@functools.lru_cache(maxsize=1)
def model_bytes() -> bytes:
    from tests.support.models import scripted_bytes, small_cnn
    return scripted_bytes(small_cnn(seed=2, in_shape=(1, 8, 8), num_classes=3))


# ---------------------------------------------------------------- accounts


def test_join_code_registration_and_login(room):
    prof = Browser(room.app, "prof")
    resp = prof.post("/instructor/courses", {"name": "Deep Learning 2026"})
    assert resp.status_code == 303
    course_page = prof.get(resp.headers["Location"]).get_data(as_text=True)
    code = re.search(r'id="join-code">([A-Z0-9]{8})<', course_page).group(1)

    anon = Browser(room.app)
    bad = anon.post("/register", {"join_code": "NOPE1234", "username": "carol", "password": "long-enough"})
    assert "unknown join code" in bad.get_data(as_text=True)
    short = anon.post("/register", {"join_code": code, "username": "carol", "password": "short"})
    assert "must have at least 10 characters" in short.get_data(as_text=True)
    ok = anon.post("/register", {"join_code": code.lower(), "username": "carol", "password": "long-enough",
                                 "display_name": "Carol Ng", "email": "carol@uni.example", "alias": "Night Owl"})
    assert ok.status_code == 302
    assert "Carol Ng" in anon.get("/account").get_data(as_text=True)
    with room.session() as s:
        carol = room.user(s, "carol")
        assert carol.course_id is not None and carol.alias == "Night Owl" and carol.role == "student"
        assert carol.password_hash.startswith("scrypt:")
    taken = Browser(room.app).post("/register", {"join_code": code, "username": "carol", "password": "other-pass"})
    assert "taken" in taken.get_data(as_text=True)
    fresh = Browser(room.app)
    assert fresh.login("carol", "long-enough").status_code == 302
    assert "wrong" not in fresh.get("/").get_data(as_text=True).lower()


def test_password_change_and_joining_another_course(room):
    with room.session() as s:
        from podium.server.courses import create_course
        code = create_course(s, "Second course").join_code
    alice = Browser(room.app, "alice")
    assert "current password is wrong" in alice.post("/account/password", {"current": "nope", "new": "new-password"},
                                                     follow_redirects=True).get_data(as_text=True)
    assert "password is changed" in alice.post("/account/password", {"current": live.password_for("alice"), "new": "new-password"},
                                               follow_redirects=True).get_data(as_text=True)
    assert Browser(room.app).login("alice", live.password_for("alice")).status_code == 200  # the old one no longer works
    assert Browser(room.app).login("alice", "new-password").status_code == 302
    page = alice.post("/account/course", {"join_code": code.lower()}, follow_redirects=True).get_data(as_text=True)
    assert "You are enrolled in Second course" in page
    assert "unknown join code" in alice.post("/account/course", {"join_code": "ZZZ"},
                                             follow_redirects=True).get_data(as_text=True)


def test_roster_import_and_claim(room):
    prof = Browser(room.app, "prof")
    location = prof.post("/instructor/courses", {"name": "CNN lab"}).headers["Location"]
    code = re.search(r'id="join-code">([A-Z0-9]{8})<', prof.get(location).get_data(as_text=True)).group(1)
    roster = "Username,Display Name,Email\nada,Ada Lovelace,ada@uni.example\n,No Name,x@y\nbad name,B,b@c\nprof,P,p@q\n"
    page = prof.post(location, {"csv": roster}).get_data(as_text=True)
    assert "Added 1, updated 0" in page and "line 3" in page and "line 4" in page and "instructor account" in page
    assert "not yet claimed" in page
    claim_code = re.search(r'<code class="claim-code">([A-Z0-9]{8})</code>', page).group(1)

    anon = Browser(room.app)
    wrong = anon.post("/register", {"join_code": code, "username": "ada", "password": "analytical",
                                    "claim_code": "WRONG123"})
    assert "do not go together" in wrong.get_data(as_text=True)
    assert anon.login("ada", "analytical").status_code == 200  # not claimed: no login
    claimed = anon.post("/register", {"join_code": code, "username": "ada", "password": "analytical",
                                      "claim_code": claim_code.lower()})
    assert claimed.status_code == 302
    with room.session() as s:
        ada = room.user(s, "ada")
        assert ada.display_name == "Ada Lovelace" and ada.password_hash and ada.claim_code is None
    again = Browser(room.app).post("/register", {"join_code": code, "username": "ada", "password": "analytical2",
                                                 "claim_code": claim_code})
    assert "do not go together" in again.get_data(as_text=True)  # a claimed entry cannot be claimed twice


def test_roster_import_over_the_api(room):
    client = room.app.test_client()
    h = {"Authorization": f"Bearer {room.tokens['prof']}"}
    course = client.post("/api/v1/courses", json={"name": "API course"}, headers=h)
    assert course.status_code == 201 and len(course.json["join_code"]) == 8
    result = client.post(f"/api/v1/courses/{course.json['id']}/roster", data="username,name,email\nzed,Zed,z@u\n",
                         headers=dict(h, **{"Content-Type": "text/csv"}))
    assert result.status_code == 200 and result.json["added"] == ["zed"]
    assert len(result.json["claim_codes"]["zed"]) == 8
    student = client.post("/api/v1/courses", json={"name": "x"},
                          headers={"Authorization": f"Bearer {room.tokens['alice']}"})
    assert student.status_code == 403


def test_tokens_shown_once_listed_and_revocable(room):
    alice = Browser(room.app, "alice")
    page = alice.post("/account/tokens", {"label": "laptop"})
    token = re.search(r'id="new-token">(pod_[^<]+)<', page.get_data(as_text=True)).group(1)
    assert page.headers["Cache-Control"] == "no-store"
    listing = alice.get("/account").get_data(as_text=True)
    assert "laptop" in listing and token not in listing
    api = room.app.test_client()
    assert api.get("/api/v1/challenges/tiny/submissions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with room.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.label == "laptop"))
        assert row.token_hash != token and len(row.token_hash) == 64
        token_id = row.id
    bob = Browser(room.app, "bob")
    assert "No such token" in bob.post(f"/account/tokens/{token_id}/revoke", follow_redirects=True).get_data(as_text=True)
    alice.post(f"/account/tokens/{token_id}/revoke")
    resp = api.get("/api/v1/challenges/tiny/submissions", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_every_form_needs_the_csrf_token(room):
    alice = Browser(room.app, "alice")
    for path, data in [("/login", {"username": "alice", "password": live.password_for("alice")}), ("/account/alias", {"alias": "Zed"}),
                       ("/account/tokens", {}), ("/logout", {}), ("/register", {"join_code": "X"})]:
        resp = alice.post(path, data, csrf=False)
        assert resp.status_code == 400, path
    blobs_before = sorted(p for p in room.settings.data_dir.rglob("*") if p.is_file() and "blob" in str(p))
    resp = alice.client.post("/challenges/tiny/submit", data={"model": (io.BytesIO(model_bytes()), "model.pt")},
                             content_type="multipart/form-data")
    assert resp.status_code == 303
    assert "form has expired" in alice.get("/challenges/tiny").get_data(as_text=True)
    with room.session() as s:
        assert s.scalar(select(Submission)) is None
    assert sorted(p for p in room.settings.data_dir.rglob("*") if p.is_file() and "blob" in str(p)) == blobs_before


def test_alias_on_leaderboard_real_names_for_instructors(room):
    alice = Browser(room.app, "alice")
    assert alice.post("/account/alias", {"alias": "Quiet Fox"}).status_code == 302
    assert "alias is taken" in Browser(room.app, "bob").post("/account/alias", {"alias": "quiet fox"},
                                                             follow_redirects=True).get_data(as_text=True)
    room.add_scored("alice", 0.9, 0.8)
    anon = room.app.test_client().get("/challenges/tiny/leaderboard").get_data(as_text=True)
    assert "Quiet Fox" in anon and ">alice<" not in anon
    board = room.app.test_client().get("/api/v1/challenges/tiny/leaderboard").json
    assert board["rows"][0]["user"] == "Quiet Fox"
    prof = Browser(room.app, "prof")
    projector = prof.get("/challenges/tiny/leaderboard").get_data(as_text=True)
    assert "Quiet Fox" in projector and ">alice<" not in projector and "0.8000" not in projector
    own_view = prof.get("/challenges/tiny/leaderboard?view=instructor").get_data(as_text=True)
    assert ">alice<" in own_view and "0.8000" in own_view
    as_student = alice.get("/challenges/tiny/leaderboard?view=instructor").get_data(as_text=True)
    table = as_student[as_student.index('<table class="board"'):]
    assert ">alice<" not in table[:table.index("</table>")] and "Quiet Fox" in table


# ---------------------------------------------------------------- student pages


def test_web_upload_form_queues_a_submission(room):
    alice = Browser(room.app, "alice")
    token = alice.csrf("/challenges/tiny")
    resp = alice.client.post("/challenges/tiny/submit", content_type="multipart/form-data",
                             data={"csrf_token": token, "model": (io.BytesIO(model_bytes()), "model.pt")})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = alice.get(resp.headers["Location"]).get_data(as_text=True)
    assert "is queued for grading" in page and 'data-status="queued"' in page
    with room.session() as s:
        sub = s.scalar(select(Submission))
        assert sub.status == states.QUEUED and sub.user.username == "alice" and sub.enqueued_at is not None
        assert (room.settings.blob_dir).exists()
    garbage = alice.client.post("/challenges/tiny/submit", content_type="multipart/form-data",
                                data={"csrf_token": token, "model": (io.BytesIO(b"not a zip"), "model.pt")})
    assert "Upload refused" in alice.get(garbage.headers["Location"]).get_data(as_text=True)


def test_cancelled_submissions_do_not_count(room):
    with room.session() as s:
        room.challenge(s).daily_limit = 1
    alice = Browser(room.app, "alice")
    token = alice.csrf("/challenges/tiny")
    alice.client.post("/challenges/tiny/submit", content_type="multipart/form-data",
                      data={"csrf_token": token, "model": (io.BytesIO(model_bytes()), "model.pt")})
    with room.session() as s:
        sub_id = s.scalar(select(Submission.id))
    assert "used all 1 uploads" in alice.get("/challenges/tiny").get_data(as_text=True)
    page = alice.post(f"/submissions/{sub_id}/cancel", {}, follow_redirects=True).get_data(as_text=True)
    assert f"Submission #{sub_id} cancelled" in page and "cancelled by you" in page
    assert "0 of 1 uploads used today" in page
    with room.session() as s:
        sub = s.get(Submission, sub_id)
        assert sub.status == states.FAILED and sub.failure_kind == states.FAILURE_CANCELLED
    again = room.app.test_client().post(f"/api/v1/submissions/{sub_id}/cancel",
                                        headers={"Authorization": f"Bearer {room.tokens['prof']}"})
    assert again.status_code == 409


def test_limits_and_window_are_shown_and_enforced(room):
    with room.session() as s:
        c = room.challenge(s)
        c.daily_limit = 1
    room.add_scored("alice", 0.5, 0.5)
    alice = Browser(room.app, "alice")
    page = alice.get("/challenges/tiny").get_data(as_text=True)
    assert "used all 1 uploads for today" in page and "disabled" in page
    token = alice.csrf("/challenges/tiny")
    resp = alice.client.post("/challenges/tiny/submit", content_type="multipart/form-data", follow_redirects=True,
                             data={"csrf_token": token, "model": (io.BytesIO(model_bytes()), "model.pt")})
    assert "daily limit of 1" in resp.get_data(as_text=True) and "resets at" in resp.get_data(as_text=True)
    with room.session() as s:
        c = room.challenge(s)
        c.daily_limit = 10
        c.deadline = utcnow() - timedelta(minutes=1)
    page = alice.get("/challenges/tiny").get_data(as_text=True)
    assert "uploads are closed" in page and "Closed" in page
    api = room.app.test_client().post("/api/v1/challenges/tiny/submissions",
                                      headers={"Authorization": f"Bearer {room.tokens['alice']}"},
                                      data={"model": (io.BytesIO(model_bytes()), "m.pt")})
    assert api.status_code == 403 and api.json["error"]["code"] == "closed"


def test_submission_page_per_class_and_confusion(room):
    sub_id = room.add_scored("alice", 0.75, 0.7)
    page = Browser(room.app, "alice").get(f"/submissions/{sub_id}").get_data(as_text=True)
    assert "Per-class accuracy" in page and "Confusion matrix" in page and "0.7500" in page
    assert "Private score" not in page and "0.7000" not in page
    data = room.app.test_client().get(f"/api/v1/submissions/{sub_id}/results",
                                      headers={"Authorization": f"Bearer {room.tokens['alice']}"}).json
    assert data["confusion"][0] == [6, 1, 1] and data["per_class"][0]["accuracy"] == pytest.approx(0.75)


def test_at_most_two_final_picks(room):
    ids = [room.add_scored("alice", 0.5 + i / 10, 0.5) for i in range(3)]
    failed = room.add_failed("alice", "boom")
    alice = Browser(room.app, "alice")
    for sub_id in ids[:2]:
        alice.post(f"/submissions/{sub_id}/final", {"final": "1"})
    third = alice.post(f"/submissions/{ids[2]}/final", {"final": "1"}, follow_redirects=True)
    assert "already picked 2" in third.get_data(as_text=True)
    h = {"Authorization": f"Bearer {room.tokens['alice']}"}
    api = room.app.test_client()
    assert api.post(f"/api/v1/submissions/{failed}/final", json={"final": True}, headers=h).status_code == 409
    assert api.post(f"/api/v1/submissions/{ids[0]}/final", json={"final": False}, headers=h).status_code == 200
    assert api.post(f"/api/v1/submissions/{ids[2]}/final", json={"final": True}, headers=h).status_code == 200
    with room.session() as s:
        assert sorted(x.id for x in s.scalars(select(Submission).where(Submission.is_final))) == ids[1:]


# ---------------------------------------------------------------- instructor


def test_dashboard_flags_identical_models_and_disqualifies(room):
    shared = "a" * 64
    a = room.add_scored("alice", 0.9, 0.9, sha=shared)
    b = room.add_scored("bob", 0.8, 0.8, sha=shared)
    prof = Browser(room.app, "prof")
    page = prof.get("/instructor/challenges/tiny").get_data(as_text=True)
    assert "same model as bob" in page and "same model as alice" in page and "0.12 s" in page and "cpu" in page
    only_bob = prof.get("/instructor/challenges/tiny?student=bob").get_data(as_text=True)
    assert f">{b}</a>" in only_bob and f">{a}</a>" not in only_bob and "same model as alice" in only_bob
    prof.post(f"/instructor/submissions/{a}/disqualify", {"reason": "copied model"})
    board = room.app.test_client().get("/api/v1/challenges/tiny/leaderboard").json
    assert [r["user"] for r in board["rows"]] == ["bob"]
    with room.session() as s:
        bob_id = room.user(s, "bob").id
    prof.post(f"/instructor/users/{bob_id}/disqualify", {"reason": "copied model", "slug": "tiny"})
    assert room.app.test_client().get("/api/v1/challenges/tiny/leaderboard").json["rows"] == []
    api = room.app.test_client().get("/api/v1/challenges/tiny/dashboard",
                                     headers={"Authorization": f"Bearer {room.tokens['prof']}"}).json
    assert {r["id"]: r["same_model_as"] for r in api} == {a: ["bob"], b: ["alice"]}
    prof.post(f"/instructor/submissions/{a}/disqualify", {"reason": ""})
    assert [r["user"] for r in room.app.test_client().get("/api/v1/challenges/tiny/leaderboard").json["rows"]] == ["alice"]


def test_reveal_shows_private_ranks_with_shift(room):
    room.add_scored("alice", 0.9, 0.6, minutes_ago=5)
    room.add_scored("bob", 0.8, 0.85, minutes_ago=3)
    before = room.app.test_client().get("/api/v1/challenges/tiny/leaderboard").json
    assert [r["user"] for r in before["rows"]] == ["alice", "bob"] and "private_score" not in before["rows"][0]
    assert Browser(room.app, "alice").post("/instructor/challenges/tiny/reveal", {"revealed": "1"}).status_code == 403
    Browser(room.app, "prof").post("/instructor/challenges/tiny/reveal", {"revealed": "1"})
    after = room.app.test_client().get("/api/v1/challenges/tiny/leaderboard").json
    assert after["revealed"] and [r["user"] for r in after["rows"]] == ["bob", "alice"]
    assert after["rows"][0]["rank_change"] == 1 and after["rows"][1]["rank_change"] == -1
    html = room.app.test_client().get("/challenges/tiny/leaderboard").get_data(as_text=True)
    assert "Final · private leaderboard" in html and "▲1" in html and "▼1" in html


def test_exports_final_leaderboard_and_grades(room):
    room.add_scored("alice", 0.9, 0.6)
    room.add_scored("bob", 0.8, 0.85)
    with room.session() as s:
        room.user(s, "alice").alias = "Fox"
    prof = Browser(room.app, "prof")
    prof.post("/instructor/challenges/tiny/reveal", {"revealed": "1"})
    board = list(csv.DictReader(io.StringIO(prof.get("/instructor/challenges/tiny/leaderboard.csv").get_data(as_text=True))))
    assert [(r["rank"], r["user"], r["private_score"]) for r in board] == [("1", "bob", "0.850000"), ("2", "alice", "0.600000")]
    grades = prof.get("/instructor/challenges/tiny/grades.csv")
    assert grades.mimetype == "text/csv"
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(grades.get_data(as_text=True)))}
    assert rows["alice"]["alias"] == "Fox" and rows["alice"]["rank"] == "2" and rows["bob"]["rank"] == "1"
    assert rows["bob"]["board"] == "private" and "prof" not in rows
    assert Browser(room.app, "alice").get("/instructor/challenges/tiny/grades.csv").status_code == 403


def test_rescore_reopens_and_reports_changes(room):
    a = room.add_scored("alice", 0.9, 0.6)
    f = room.add_failed("bob", "the model crashed while loading")
    prof = Browser(room.app, "prof")
    resp = prof.post("/instructor/challenges/tiny/rescore", {})
    assert resp.status_code == 303
    with room.session() as s:
        run = s.scalar(select(Rescore))
        assert sorted(b["id"] for b in run.before) == [a, f]
        assert {x.status for x in s.scalars(select(Submission))} == {states.QUEUED}
        assert all(x.attempt == 2 for x in s.scalars(select(Submission)))
    page = prof.get(resp.headers["Location"]).get_data(as_text=True)
    assert "2 still grading" in page and 'data-refresh="3"' in page
    with room.session() as s:  # the worker re-scores alice's model with new labels (as grading.record does)
        assert states.claim(s, a, 2, "w", 60)
        score = s.scalar(select(Score).where(Score.submission_id == a))
        score.public_score, score.private_score = 0.95, 0.7
        assert states.finish_scored(s, a, 2)
        assert states.claim(s, f, 2, "w", 60) and states.fail(s, f, "still broken", attempt=2)
    report = room.app.test_client().get(f"/api/v1/rescores/{run.id}",
                                        headers={"Authorization": f"Bearer {room.tokens['prof']}"}).json
    changes = {c["id"]: c for c in report["changes"]}
    assert report["pending"] == 0
    assert changes[a]["old_public"] == 0.9 and changes[a]["public"] == 0.95 and changes[a]["changed"]
    assert changes[f]["old_status"] == "failed" and changes[f]["status"] == "failed" and not changes[f]["changed"]
    page = prof.get(f"/instructor/challenges/tiny/rescores/{run.id}").get_data(as_text=True)
    assert "+0.0500 public" in page and "unchanged" in page


def _zip_folder(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in folder.rglob("*"):
            zf.write(p, Path(folder.name) / p.relative_to(folder))
    return dest


def test_instructor_creates_challenge_from_zip_and_sets_deadline(room, tmp_path):
    bundle = write_tiny_bundle(tmp_path / "quiz", slug="quiz")
    zipped = _zip_folder(bundle, tmp_path / "quiz.zip")
    prof = Browser(room.app, "prof")
    prof.csrf("/instructor/challenges/new")
    resp = prof.client.post("/instructor/challenges/new", content_type="multipart/form-data",
                            data={"csrf_token": prof.token, "bundle": (zipped.open("rb"), "quiz.zip")})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/instructor/challenges/quiz")
    (bundle / "challenge.toml").write_text((bundle / "challenge.toml").read_text().replace('"image"', '"video"'))
    bad = _zip_folder(bundle, tmp_path / "bad.zip")
    refused = prof.client.post("/instructor/challenges/new", content_type="multipart/form-data",
                               data={"csrf_token": prof.token, "bundle": (bad.open("rb"), "bad.zip"), "replace": "1"})
    assert "The bundle was refused" in refused.get_data(as_text=True) and "kind" in refused.get_data(as_text=True)
    prof.post("/instructor/challenges/quiz/settings", {"opens_at": "2030-01-01T09:00:00+01:00",
                                                        "deadline": "2030-02-01T17:00", "tz_offset": "-60"})
    with room.session() as s:
        quiz = room.challenge(s, "quiz")
        assert quiz.kind == "image" and quiz.opens_at.isoformat() == "2030-01-01T08:00:00+00:00"
        assert quiz.deadline.isoformat() == "2030-02-01T16:00:00+00:00"
    h = {"Authorization": f"Bearer {room.tokens['prof']}"}
    patched = room.app.test_client().patch("/api/v1/challenges/quiz", json={"opens_at": None}, headers=h)
    assert patched.status_code == 200 and patched.json["opens_at"] is None
    assert room.app.test_client().patch("/api/v1/challenges/quiz", json={"deadline": "2030-01-01"},
                                        headers=h).status_code == 400


def test_the_upload_form_says_what_the_cli_says_about_a_twin_title_and_float64_inputs(room, tmp_path):
    """The web form shows the same notes as `podium challenge add`: a title another challenge has, a cast to float32."""
    bundle = write_tiny_bundle(tmp_path / "twin", slug="twin")
    toml = bundle / "challenge.toml"
    with room.session() as s:
        title = room.challenge(s).title
    toml.write_text(re.sub(r'^title = ".*"$', f'title = "{title.upper()}"', toml.read_text(), flags=re.M))
    with np.load(bundle / "data" / "test.npz") as npz:
        save_npz(bundle / "data" / "test.npz", npz["x"].astype(np.float64), npz["y"])
    prof = Browser(room.app, "prof")
    prof.csrf("/instructor/challenges/new")
    resp = prof.client.post("/instructor/challenges/new", content_type="multipart/form-data", follow_redirects=True,
                            data={"csrf_token": prof.token,
                                  "bundle": (_zip_folder(bundle, tmp_path / "twin.zip").open("rb"), "twin.zip")})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "/instructor/challenges/twin" in resp.request.path
    assert "has the same title" in page and "data/test.npz: x is float64; cast to float32" in page, page


def test_leaderboard_page_has_chart_and_refreshes(room):
    from podium.cli import admin
    admin.add_user(room.settings, "baseline", "instructor")
    room.add_scored("alice", 0.5, 0.5, minutes_ago=30)
    room.add_scored("alice", 0.7, 0.5, minutes_ago=10)
    room.add_scored("bob", 0.6, 0.5, minutes_ago=20)
    room.add_scored("baseline", 0.55, 0.5, minutes_ago=40)
    html = room.app.test_client().get("/challenges/tiny/leaderboard").get_data(as_text=True)
    assert 'data-refresh="15"' in html and "<svg" in html and "cdn" not in html.lower()
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert svg.count("<path") == 3 and 'stroke-dasharray' in svg  # alice, bob, and the dashed baseline
    assert "alice 0.700" in svg and "baseline 0.550" in svg
