"""Teams in one process: forming, joining, leaving, moves, per-team limits, final picks, board rows and grades."""
from __future__ import annotations

import csv
import functools
import io
import shutil
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from podium.core import states
from podium.core.models import Challenge, Score, Submission, TeamEvent, User
from podium.server.instructor import disqualify_user
from tests.support import live
from tests.support.bundles import write_tiny_bundle

STUDENTS = ("alice", "bob", "carol", "dave", "erin")


@dataclass
class World:
    """A real app on a fresh SQLite database: `tiny` (individual) and `squad` (teams of 3)."""

    app: object
    settings: object
    tokens: dict

    def api(self, who: str | None, method: str, path: str, json=None, **kw):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.app.test_client().open(f"/api/v1{path}", method=method, json=json, headers=headers, **kw)

    def submit(self, who: str, slug: str = "squad"):
        return self.api(who, "POST", f"/challenges/{slug}/submissions",
                        data={"model": (io.BytesIO(model_bytes()), "model.pt")}, content_type="multipart/form-data")

    def session(self):
        return self.app.extensions["podium"].db.session()

    def score(self, sub_id: int, public: float, private: float) -> None:
        """Finish a queued submission as the worker does: claim, Score row, finish_scored."""
        with self.session() as s:
            sub = s.get(Submission, sub_id)
            assert states.claim(s, sub.id, sub.attempt, "test-worker", 60)
            s.add(Score(submission_id=sub.id, challenge_id=sub.challenge_id, user_id=sub.user_id, metric="accuracy",
                        public_score=public, private_score=private, n_public=60, n_private=60))
            assert states.finish_scored(s, sub.id, sub.attempt)

    def form_team(self, name: str, *members: str) -> dict:
        team = self.api(members[0], "POST", "/challenges/squad/teams", {"name": name})
        assert team.status_code == 201, team.get_json()
        for m in members[1:]:
            joined = self.api(m, "POST", "/challenges/squad/teams/join", {"code": team.get_json()["join_code"]})
            assert joined.status_code == 200, joined.get_json()
        return team.get_json()


@functools.lru_cache(maxsize=1)
def model_bytes() -> bytes:
    from tests.support.models import scripted_bytes, small_cnn
    return scripted_bytes(small_cnn(seed=2, in_shape=(1, 8, 8), num_classes=3))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("teams-template")
    tiny = write_tiny_bundle(root / "tiny")
    squad = write_tiny_bundle(root / "squad", slug="squad", extra_toml="team_size = 3\n")
    settings = live.settings_for(root / "var")
    users = dict.fromkeys(STUDENTS, "student") | {"prof": "instructor"}
    return settings, live.prepare_database(settings, [tiny, squad], users)


@pytest.fixture
def world(template, tmp_path) -> World:
    from podium.server.app import create_app
    settings = live.settings_for(tmp_path / "var")
    shutil.copytree(template[0].data_dir, settings.data_dir)
    app = create_app(settings)
    app.testing = True
    return World(app, settings, template[1])


def _set(world: World, slug: str, **values) -> None:
    with world.session() as s:
        challenge = s.scalar(select(Challenge).where(Challenge.slug == slug))
        for k, v in values.items():
            setattr(challenge, k, v)


# ---------------------------------------------------------------- forming teams


def test_create_join_and_read_a_team(world):
    made = world.api("alice", "POST", "/challenges/squad/teams", {"name": "Conv Crew"})
    assert made.status_code == 201
    team = made.get_json()
    assert set(team) == {"id", "name", "join_code", "members"} and team["members"] == ["alice"]
    joined = world.api("bob", "POST", "/challenges/squad/teams/join", {"code": team["join_code"].lower()})
    assert joined.status_code == 200 and joined.get_json()["members"] == ["alice", "bob"]
    mine = world.api("bob", "GET", "/challenges/squad/team").get_json()
    assert mine["name"] == "Conv Crew" and mine["join_code"] == team["join_code"]
    assert world.api("carol", "GET", "/challenges/squad/team").status_code == 404
    assert world.api(None, "GET", "/challenges/squad/team").status_code == 401
    with world.session() as s:
        log = [(e.action, e.to_team) for e in s.scalars(select(TeamEvent).order_by(TeamEvent.id))]
    assert log == [("created", "Conv Crew"), ("joined", "Conv Crew")]


def test_one_team_per_student_and_never_over_team_size(world):
    team = world.form_team("Three Kings", "alice", "bob", "carol")
    assert world.api("alice", "POST", "/challenges/squad/teams", {"name": "Another"}).get_json()["error"]["code"] \
        == "already_in_team"
    full = world.api("dave", "POST", "/challenges/squad/teams/join", {"code": team["join_code"]})
    assert full.status_code == 409 and full.get_json()["error"]["code"] == "team_full"
    other = world.form_team("Other", "dave")
    again = world.api("dave", "POST", "/challenges/squad/teams/join", {"code": team["join_code"]})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_in_team"
    assert world.api("erin", "POST", "/challenges/squad/teams/join", {"code": "NOPE"}).status_code == 404
    assert other["members"] == ["dave"]


def test_team_names_are_unique_and_pass_the_alias_rules(world):
    world.form_team("Night Owls", "alice")
    taken = world.api("bob", "POST", "/challenges/squad/teams", {"name": "night owls"})
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "team_name_taken"
    impostor = world.api("bob", "POST", "/challenges/squad/teams", {"name": "Carol"})  # another student's username
    assert impostor.status_code == 409
    for bad in ("", "x", "<script>", "a" * 40, " ", "-dash first"):
        resp = world.api("bob", "POST", "/challenges/squad/teams", {"name": bad})
        assert resp.status_code == 422, bad
    assert world.api("bob", "POST", "/challenges/squad/teams", {"name": "Bob's"}).status_code == 422
    assert world.api("bob", "POST", "/challenges/squad/teams", {"name": "Owls 2"}).status_code == 201


def test_individual_challenges_have_no_teams(world):
    resp = world.api("alice", "POST", "/challenges/tiny/teams", {"name": "Solo"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "not_a_team_challenge"
    sub = world.submit("alice", "tiny")
    assert sub.status_code == 202
    data = world.api("alice", "GET", f"/submissions/{sub.get_json()['id']}").get_json()
    assert "team" not in data
    board = world.api(None, "GET", "/challenges/tiny/leaderboard").get_json()
    assert "team_size" not in board


def test_instructors_join_no_team(world):
    assert world.api("prof", "POST", "/challenges/squad/teams", {"name": "Staff"}).status_code == 403


# ---------------------------------------------------------------- submitting as a team


def test_a_student_without_a_team_gets_409_with_how_to(world):
    resp = world.submit("erin")
    assert resp.status_code == 409
    err = resp.get_json()["error"]
    assert err["code"] == "no_team" and "/teams/join" in err["message"] and "create a team" in err["message"]


def test_members_share_submissions_and_others_see_none(world):
    world.form_team("Alpha", "alice", "bob")
    world.form_team("Beta", "carol")
    sub_id = world.submit("alice").get_json()["id"]
    as_bob = world.api("bob", "GET", f"/submissions/{sub_id}")
    assert as_bob.status_code == 200 and as_bob.get_json()["team"] == "Alpha"
    assert [s["id"] for s in world.api("bob", "GET", "/challenges/squad/submissions").get_json()] == [sub_id]
    assert world.api("carol", "GET", f"/submissions/{sub_id}").status_code == 404
    assert world.api("carol", "GET", "/challenges/squad/submissions").get_json() == []
    assert world.api("carol", "POST", f"/submissions/{sub_id}/cancel").status_code == 404
    assert world.api("bob", "POST", f"/submissions/{sub_id}/cancel").status_code == 200


def test_daily_limit_and_pending_cap_count_per_team(world):
    _set(world, "squad", daily_limit=2, max_queued=1)
    world.form_team("Alpha", "alice", "bob")
    world.form_team("Beta", "carol")
    first = world.submit("alice")
    assert first.status_code == 202
    pending = world.submit("bob")  # the team's one pending slot is taken by alice's upload
    assert pending.status_code == 429 and pending.get_json()["error"]["code"] == "too_many_pending"
    assert world.submit("carol").status_code == 202  # another team has its own allowance
    world.score(first.get_json()["id"], 0.5, 0.5)
    assert world.submit("bob").status_code == 202
    world.score(world.api("bob", "GET", "/challenges/squad/submissions").get_json()[0]["id"], 0.6, 0.6)
    over = world.submit("alice")
    assert over.status_code == 429 and over.get_json()["error"]["code"] == "daily_limit"
    assert "team" in over.get_json()["error"]["message"]


# ---------------------------------------------------------------- leaving and moving


def test_leave_until_scored_then_only_an_instructor_moves(world):
    world.form_team("Alpha", "alice", "bob")
    gamma = world.form_team("Gamma", "carol")
    assert world.api("bob", "POST", "/challenges/squad/team/leave").status_code == 200
    assert world.api("bob", "GET", "/challenges/squad/team").status_code == 404
    code = world.api("alice", "GET", "/challenges/squad/team").get_json()["join_code"]
    assert world.api("bob", "POST", "/challenges/squad/teams/join", {"code": code}).status_code == 200
    world.score(world.submit("alice").get_json()["id"], 0.7, 0.7)
    fixed = world.api("bob", "POST", "/challenges/squad/team/leave")
    assert fixed.status_code == 409 and fixed.get_json()["error"]["code"] == "team_fixed"
    late = world.api("dave", "POST", "/challenges/squad/teams/join", {"code": code})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "team_fixed"
    assert world.api("bob", "POST", "/challenges/squad/teams/move", {"username": "bob", "team": gamma["id"]}) \
        .status_code == 403
    moved = world.api("prof", "POST", "/challenges/squad/teams/move", {"username": "bob", "team": gamma["id"]})
    assert moved.status_code == 200 and moved.get_json()["team"]["members"] == ["carol", "bob"]
    # alice's submission stays Alpha's: bob no longer sees it, carol never did
    sub_id = world.api("alice", "GET", "/challenges/squad/submissions").get_json()[0]["id"]
    assert world.api("bob", "GET", f"/submissions/{sub_id}").status_code == 404
    out = world.api("prof", "POST", "/challenges/squad/teams/move", {"username": "alice", "team": None})
    assert out.status_code == 200 and out.get_json()["team"] is None
    with world.session() as s:
        log = [(e.user.username, e.action, e.from_team, e.to_team, e.actor.username)
               for e in s.scalars(select(TeamEvent).order_by(TeamEvent.id))]
    assert ("bob", "left", "Alpha", None, "bob") in log
    assert log[-2:] == [("bob", "moved", "Alpha", "Gamma", "prof"), ("alice", "moved", "Alpha", None, "prof")]
    teams = world.api("prof", "GET", "/challenges/squad/teams").get_json()
    assert {t["name"]: t["members"] for t in teams} == {"Alpha": [], "Gamma": ["carol", "bob"]}


def test_an_instructor_cannot_overfill_a_team(world):
    full = world.form_team("Full", "alice", "bob", "carol")
    world.form_team("Solo", "dave")
    resp = world.api("prof", "POST", "/challenges/squad/teams/move", {"username": "dave", "team": full["id"]})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "team_full"
    assert world.api("dave", "GET", "/challenges/squad/team").get_json()["name"] == "Solo"


def test_an_empty_team_without_submissions_disappears(world):
    world.form_team("Brief", "alice")
    assert world.api("alice", "POST", "/challenges/squad/team/leave").status_code == 200
    assert world.api("prof", "GET", "/challenges/squad/teams").get_json() == []
    assert world.api("bob", "POST", "/challenges/squad/teams", {"name": "Brief"}).status_code == 201


# ---------------------------------------------------------------- picks, board, grades


def _scored(world: World, who: str, public: float, private: float) -> int:
    sub_id = world.submit(who).get_json()["id"]
    world.score(sub_id, public, private)
    return sub_id


def test_final_picks_count_per_team_and_decide_the_private_rank(world):
    world.form_team("Alpha", "alice", "bob", "carol")
    world.form_team("Beta", "dave")
    a1 = _scored(world, "alice", 0.90, 0.60)  # Alpha's best public entry, weak on the private rows
    a2 = _scored(world, "bob", 0.80, 0.95)
    a3 = _scored(world, "carol", 0.70, 0.50)
    _scored(world, "dave", 0.85, 0.80)
    assert world.api("bob", "POST", f"/submissions/{a2}/final", {"final": True}).status_code == 200
    assert world.api("carol", "POST", f"/submissions/{a3}/final", {"final": True}).status_code == 200
    third = world.api("alice", "POST", f"/submissions/{a1}/final", {"final": True})
    assert third.status_code == 409 and "team already picked 2" in third.get_json()["error"]["message"]
    assert world.api("dave", "POST", f"/submissions/{a1}/final", {"final": True}).status_code == 404

    board = world.api(None, "GET", "/challenges/squad/leaderboard").get_json()
    assert [(r["rank"], r["user"], r["members"], r["entries"]) for r in board["rows"]] == [
        (1, "Alpha", ["alice", "bob", "carol"], 3), (2, "Beta", ["dave"], 1)]
    assert board["rows"][0]["public_score"] == pytest.approx(0.90)
    assert world.api("carol", "GET", f"/submissions/{a1}").get_json()["rank"] == 1

    assert world.api("prof", "POST", "/challenges/squad/reveal", {"revealed": True}).status_code == 200
    final = world.api(None, "GET", "/challenges/squad/leaderboard").get_json()
    alpha = next(r for r in final["rows"] if r["user"] == "Alpha")
    assert alpha["private_score"] == pytest.approx(0.95) and alpha["rank"] == 1  # bob's pick, not alice's best
    # unpicking bob's entry leaves carol's: the team's picks, whoever made them, decide
    assert world.api("alice", "POST", f"/submissions/{a2}/final", {"final": False}).status_code == 200
    final = world.api(None, "GET", "/challenges/squad/leaderboard").get_json()
    assert [(r["user"], r["private_score"]) for r in final["rows"]] == [("Beta", pytest.approx(0.80)),
                                                                        ("Alpha", pytest.approx(0.50))]
    assert final["rows"][1]["rank_change"] == -1


def test_grades_csv_gives_every_member_the_team_result(world):
    world.form_team("Alpha", "alice", "bob", "carol")
    _scored(world, "bob", 0.81, 0.77)
    world.api("prof", "POST", "/challenges/squad/reveal", {"revealed": True})
    text = world.api("prof", "GET", "/challenges/squad/grades.csv").get_data(as_text=True)
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(text))}
    assert "team" in next(csv.reader(io.StringIO(text)))
    for name in ("alice", "bob", "carol"):
        assert rows[name]["team"] == "Alpha" and rows[name]["rank"] == "1", rows[name]
        assert rows[name]["private_score"] == "0.770000" and rows[name]["entries"] == "1"
    board_csv = world.api("prof", "GET", "/challenges/squad/leaderboard.csv").get_data(as_text=True)
    assert "alice; bob; carol" in board_csv
    solo = world.api("prof", "GET", "/challenges/tiny/grades.csv").get_data(as_text=True)
    assert "team" not in solo.splitlines()[0].split(",")


def test_disqualified_member_entries_leave_the_team_row(world):
    world.form_team("Alpha", "alice", "bob")
    _scored(world, "alice", 0.9, 0.9)
    _scored(world, "bob", 0.6, 0.6)
    with world.session() as s:
        disqualify_user(s, s.scalar(select(User).where(User.username == "alice")), "copied")
    row = world.api(None, "GET", "/challenges/squad/leaderboard").get_json()["rows"][0]
    assert row["user"] == "Alpha" and row["public_score"] == pytest.approx(0.6) and row["entries"] == 1


def test_openapi_lists_the_team_endpoints(world):
    paths = world.api(None, "GET", "/openapi.json").get_json()["paths"]
    assert {"/challenges/{slug}/teams", "/challenges/{slug}/teams/join", "/challenges/{slug}/team"} <= set(paths)
    assert "201" in paths["/challenges/{slug}/teams"]["post"]["responses"]


def test_an_alias_cannot_take_a_team_name(world):
    from podium.server.courses import AccountError, set_alias
    world.form_team("Owl Team", "alice")
    with world.session() as s:
        bob = s.scalar(select(User).where(User.username == "bob"))
        with pytest.raises(AccountError):
            set_alias(s, bob, "owl team")
        set_alias(s, bob, "Owl Solo")


def _login(world: World, username: str):
    import re
    client = world.app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": username, "password": live.password_for(username),
                                       "csrf_token": token}).status_code == 302
    return client


def test_a_teammate_picks_finals_on_the_submission_page(world):
    world.form_team("Alpha", "alice", "bob")
    sub_id = _scored(world, "alice", 0.8, 0.8)
    page = _login(world, "bob").get(f"/submissions/{sub_id}").get_data(as_text=True)
    assert "Mark as final" in page and "Alpha · uploaded by alice" in page
    assert _login(world, "carol").get(f"/submissions/{sub_id}").status_code == 404


def test_dashboard_lists_teams_and_the_course_students_in_none(world):
    from podium.server.courses import create_course
    with world.session() as s:
        course = create_course(s, "Lab")
        s.scalar(select(Challenge).where(Challenge.slug == "squad")).course_id = course.id
        for u in s.scalars(select(User).where(User.role == "student")):
            u.course_id = course.id
    world.form_team("Alpha", "alice", "bob")
    page = _login(world, "prof").get("/instructor/challenges/squad").get_data(as_text=True)
    assert "Alpha" in page and "Move alice" in page and "Move bob" in page
    assert "In no team yet (3 of the course): carol, dave, erin" in page
    assert 'id="teams"' not in _login(world, "prof").get("/instructor/challenges/tiny").get_data(as_text=True)


def test_the_projector_charts_one_line_per_team(world):
    world.form_team("Alpha", "alice", "bob")
    world.form_team("Beta", "carol")
    _scored(world, "alice", 0.5, 0.5)
    _scored(world, "bob", 0.7, 0.7)
    _scored(world, "carol", 0.6, 0.6)
    page = world.app.test_client().get("/challenges/squad/leaderboard").get_data(as_text=True)
    chart = page[page.index("<svg"):page.index("</svg>")]
    assert "Alpha" in chart and "Beta" in chart and "alice" not in chart and "carol" not in chart
    assert page.count('class="who"') == 2


def test_moving_the_last_member_out_drops_the_empty_team_and_a_no_op_move_logs_nothing(world):
    from podium.server import teams
    world.form_team("Lonely", "dave")
    with world.session() as s:
        squad = s.scalar(select(Challenge).where(Challenge.slug == "squad"))
        prof, dave, erin = (s.scalar(select(User).where(User.username == n)) for n in ("prof", "dave", "erin"))
        lonely = teams.team_of(s, squad, dave)
        assert [m.user.username for m in lonely.members] == ["dave"]  # the collection is loaded
        teams.move_student(s, squad, prof, dave, None)
        teams.move_student(s, squad, prof, erin, None)  # erin is in no team already
    assert world.api("prof", "GET", "/challenges/squad/teams").get_json() == []
    with world.session() as s:
        assert [(e.user.username, e.action) for e in s.scalars(select(TeamEvent).order_by(TeamEvent.id))] == [
            ("dave", "created"), ("dave", "moved")]
