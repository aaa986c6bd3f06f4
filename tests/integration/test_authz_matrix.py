"""Every endpoint, HTML and JSON, as anonymous, student A, student B, instructor and a member of another team:
allowed or denied, and nothing leaks."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from podium.core.models import Course, Rescore, Submission
from podium.server import teams
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.classroom import Browser, Classroom
from tests.support.live import require_postgres_and_redis

# In the team challenge `squad`: alice and dan are team Alpha (dan uploaded its scored entry), carol is
# team Beta (the member of another team), bob is in no team.
ROLES = ("anon", "alice", "bob", "prof", "carol")
A_PRIVATE, B_PRIVATE, ALPHA_PRIVATE = "0.6789", "0.4321", "0.5555"
A_ERROR = "SECRET-ERROR-alice-layer3"
LOGIN = "login"  # an HTML page that sends anonymous visitors to the login form


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    """Alice: one scored and one failed submission; Bob: one scored; a course and a re-score run."""
    if request.param == "postgres":
        require_postgres_and_redis()
        with live.fresh_postgres_db() as url:
            world = _world(Classroom(tmp_path_factory.mktemp("authz-pg"), database_url=url))
            yield world
            world[0].db.dispose()
    else:
        yield _world(Classroom(tmp_path_factory.mktemp("authz")))


def _teams(room: Classroom, ids: dict) -> None:
    from podium.cli import admin
    admin.add_challenge(room.settings, write_tiny_bundle(room.settings.data_dir.parent / "squad", slug="squad",
                                                         extra_toml="team_size = 2\n"), publish=True)
    admin.add_challenge(room.settings, write_tiny_bundle(room.settings.data_dir.parent / "sketch", slug="sketch"))
    for name in ("carol", "dan"):
        admin.add_user(room.settings, name, "student", password=live.password_for(name))
        room.tokens[name] = admin.new_token(room.settings, name)
    with room.session() as s:
        squad = room.challenge(s, "squad")
        alpha = teams.create_team(s, squad, room.user(s, "alice"), "Alpha")
        teams.join_team(s, squad, room.user(s, "dan"), alpha.join_code)
        beta = teams.create_team(s, squad, room.user(s, "carol"), "Beta")
        ids.update(alpha=alpha.id, beta=beta.id, alpha_code=alpha.join_code, beta_code=beta.join_code)
    ids["t1"] = room.add_scored("dan", 0.7007, float(ALPHA_PRIVATE), slug="squad")
    ids["t2"] = room.add_scored("carol", 0.6006, 0.3003, slug="squad")
    with room.session() as s:
        s.get(Submission, ids["t1"]).team_id = ids["alpha"]
        s.get(Submission, ids["t2"]).team_id = ids["beta"]


def _world(room: Classroom):
    ids = {"a1": room.add_scored("alice", 0.8123, float(A_PRIVATE)),
           "a2": room.add_failed("alice", A_ERROR),
           "b1": room.add_scored("bob", 0.7001, float(B_PRIVATE))}
    with room.session() as s:
        course = Course(name="Course", join_code="ABCDEFGH")
        s.add(course)
        s.flush()
        run = Rescore(challenge_id=room.challenge(s).id, before=[])
        s.add(run)
        s.flush()
        ids.update(course=course.id, run=run.id, bob_id=room.user(s, "bob").id)
    _teams(room, ids)
    browsers = {role: Browser(room.app, None if role == "anon" else role) for role in ROLES}
    for b in browsers.values():
        b.csrf("/login")
    return room, ids, browsers


def matrix(ids: dict) -> list[tuple]:
    """(kind, method, path, body, {role: expected status}); kind 'html' uses the login session, 'api' the token."""
    a1, a2, b1, run, course, bob = ids["a1"], ids["a2"], ids["b1"], ids["run"], ids["course"], ids["bob_id"]
    everyone = dict.fromkeys(ROLES, 200)
    logged_in = {"anon": LOGIN, "alice": 200, "bob": 200, "prof": 200}
    owner_page = {"anon": LOGIN, "alice": 200, "bob": 404, "prof": 200}
    teacher_page = {"anon": LOGIN, "alice": 403, "bob": 403, "prof": 200}
    teacher_post = {"anon": LOGIN, "alice": 403, "bob": 403, "prof": 303}
    owner_api = {"anon": 401, "alice": 200, "bob": 404, "prof": 200}

    def teacher_api(ok=200):
        return {"anon": 401, "alice": 403, "bob": 403, "prof": ok}

    draft = {**dict.fromkeys(ROLES, 404), "prof": 200}  # a draft exists for instructors only

    rows = [
        ("html", "GET", "/", None, everyone),
        ("html", "GET", "/login", None, everyone),
        ("html", "GET", "/favicon.ico", None, everyone),
        ("html", "GET", "/register", None, everyone),
        ("html", "GET", "/challenges/tiny", None, everyone),
        ("html", "GET", "/challenges/tiny/leaderboard", None, everyone),
        ("html", "GET", "/account", None, logged_in),
        ("html", "GET", f"/submissions/{a1}", None, owner_page),
        ("html", "GET", f"/submissions/{a2}", None, owner_page),
        ("html", "GET", f"/submissions/{a1}/model.pt", None, owner_page),
        ("html", "POST", f"/submissions/{a1}/final", {"final": "1"},
         {"anon": LOGIN, "alice": 302, "bob": 404, "prof": 302}),
        ("html", "POST", f"/submissions/{a2}/cancel", {}, {"anon": LOGIN, "alice": 303, "bob": 404, "prof": 303}),
        ("html", "POST", "/challenges/tiny/submit", {}, {"anon": LOGIN, "alice": 303, "bob": 303, "prof": 303}),
        ("html", "POST", "/account/alias", {"alias": ""}, {"anon": LOGIN, "alice": 302, "bob": 302, "prof": 302}),
        ("html", "POST", "/account/tokens", {"label": "m"}, logged_in),
        ("html", "POST", "/account/password", {"current": "x", "new": "y"},
         {"anon": LOGIN, "alice": 302, "bob": 302, "prof": 302}),
        ("html", "POST", "/account/course", {"join_code": "NOPE"}, {"anon": LOGIN, "alice": 302, "bob": 302, "prof": 302}),
        ("html", "POST", "/account/tokens/999999/revoke", {}, {"anon": LOGIN, "alice": 302, "bob": 302, "prof": 302}),
        ("html", "GET", "/instructor/", None, teacher_page),
        ("html", "GET", "/instructor/challenges/tiny", None, teacher_page),
        ("html", "GET", "/instructor/challenges/new", None, teacher_page),
        ("html", "GET", "/instructor/challenges/tiny/grades.csv", None, teacher_page),
        ("html", "GET", "/instructor/challenges/tiny/leaderboard.csv", None, teacher_page),
        ("html", "GET", f"/instructor/challenges/tiny/rescores/{run}", None, teacher_page),
        ("html", "GET", f"/instructor/courses/{course}", None, teacher_page),
        ("html", "POST", f"/instructor/courses/{course}", {"csv": "username\n"}, teacher_page),
        ("html", "POST", f"/instructor/courses/{course}/students/999999/sign-out", {},
         {"anon": LOGIN, "alice": 403, "bob": 403, "prof": 404}),
        ("html", "POST", "/instructor/courses", {"name": "Another"}, teacher_post),
        ("html", "POST", "/instructor/challenges/tiny/reveal", {"revealed": "0"}, teacher_post),
        ("html", "POST", "/instructor/challenges/tiny/rescore", {"submission_id": "999999"}, teacher_post),
        ("html", "POST", "/instructor/challenges/tiny/settings", {"opens_at": "", "deadline": ""}, teacher_post),
        ("html", "POST", f"/instructor/submissions/{b1}/disqualify", {"reason": ""}, teacher_post),
        ("html", "POST", f"/instructor/users/{bob}/disqualify", {"reason": "", "slug": "tiny"}, teacher_post),
        ("html", "POST", "/instructor/challenges/new", {}, teacher_page),
        ("html", "POST", "/instructor/challenges/tiny/state", {"action": "publish"}, teacher_post),
        ("html", "GET", "/challenges/sketch", None, draft),
        ("html", "GET", "/challenges/sketch/leaderboard", None, draft),
        ("html", "POST", "/logout", {}, {"anon": 302, "alice": 302, "bob": 302, "prof": 302}),
        ("api", "GET", "/healthz", None, everyone),
        ("api", "GET", "/metrics", None, everyone),
        ("api", "GET", "/api/v1/openapi.json", None, everyone),
        ("api", "GET", "/api/v1/challenges", None, everyone),
        ("api", "GET", "/api/v1/challenges/tiny", None, everyone),
        ("api", "GET", "/api/v1/challenges/tiny/leaderboard", None, everyone),
        ("api", "GET", "/api/v1/challenges/tiny/starter.zip", None, everyone),
        ("api", "GET", "/api/v1/challenges/tiny/train.npz", None, everyone),
        ("api", "GET", "/api/v1/challenges/tiny/samples.npz", None, everyone),
        ("api", "GET", "/api/v1/challenges/sketch", None, draft),
        ("api", "GET", "/api/v1/challenges/sketch/starter.zip", None, draft),
        ("api", "POST", "/api/v1/challenges/tiny/publish", None, teacher_api()),
        ("api", "GET", "/api/v1/challenges/tiny/submissions", None, {"anon": 401, "alice": 200, "bob": 200, "prof": 200}),
        ("api", "POST", "/api/v1/challenges/tiny/submissions", None, {"anon": 401, "alice": 400, "bob": 400, "prof": 400}),
        ("api", "GET", f"/api/v1/submissions/{a1}", None, owner_api),
        ("api", "GET", f"/api/v1/submissions/{a2}", None, owner_api),
        ("api", "GET", f"/api/v1/submissions/{a1}/results", None, owner_api),
        ("api", "POST", f"/api/v1/submissions/{a1}/final", {"final": True},
         {"anon": 401, "alice": 200, "bob": 404, "prof": 403}),
        ("api", "POST", f"/api/v1/submissions/{a2}/cancel", {}, {"anon": 401, "alice": 409, "bob": 404, "prof": 409}),
        ("api", "GET", "/api/v1/challenges/tiny/dashboard", None, teacher_api()),
        ("api", "GET", "/api/v1/challenges/tiny/grades.csv", None, teacher_api()),
        ("api", "GET", "/api/v1/challenges/tiny/leaderboard.csv", None, teacher_api()),
        ("api", "POST", "/api/v1/challenges/tiny/rescore", {"submission_ids": []}, teacher_api(202)),
        ("api", "GET", f"/api/v1/rescores/{run}", None, teacher_api()),
        ("api", "POST", f"/api/v1/submissions/{b1}/disqualify", {"reason": ""}, teacher_api()),
        ("api", "POST", "/api/v1/users/bob/disqualify", {"reason": ""}, teacher_api()),
        ("api", "POST", "/api/v1/challenges/tiny/reveal", {"revealed": False}, teacher_api()),
        ("api", "PATCH", "/api/v1/challenges/tiny", {}, teacher_api()),
        ("api", "POST", "/api/v1/challenges", None, teacher_api(400)),
        ("api", "POST", "/api/v1/courses", {"name": "API course"}, teacher_api(201)),
        ("api", "POST", f"/api/v1/courses/{course}/roster", {"csv": "x"}, teacher_api()),
        # LTI: the protocol endpoints answer everyone alike (a launch without a valid id_token is refused); the
        # LTI pages are the instructor's.
        ("api", "GET", "/lti/jwks", None, everyone),
        ("api", "GET", "/lti/login", None, dict.fromkeys(ROLES, 400)),
        ("api", "POST", "/lti/launch", None, dict.fromkeys(ROLES, 400)),
        ("html", "GET", "/instructor/lti/", None, teacher_page),
        ("html", "POST", "/instructor/lti/placements/999999/roster", {},
         {"anon": LOGIN, "alice": 403, "bob": 403, "prof": 404}),
        ("html", "POST", "/instructor/lti/challenges/tiny/passback/999999", {}, teacher_post),
    ]
    for row in rows:  # carol has nothing in `tiny`: there she is one more student like bob
        row[4].setdefault("carol", row[4]["bob"])
    return rows + team_matrix(ids)


def team_matrix(ids: dict) -> list[tuple]:
    """The team challenge: team endpoints, and a teammate's submission seen by its team only."""
    t1 = ids["t1"]
    student_form = {"anon": LOGIN, "alice": 303, "bob": 303, "prof": 303, "carol": 303}
    teacher_api = {"anon": 401, "alice": 403, "bob": 403, "prof": 200, "carol": 403}
    return [
        ("html", "GET", "/challenges/squad", None, dict.fromkeys(ROLES, 200)),
        ("html", "GET", "/challenges/squad/leaderboard", None, dict.fromkeys(ROLES, 200)),
        ("html", "GET", f"/submissions/{t1}", None, {"anon": LOGIN, "alice": 200, "bob": 404, "prof": 200, "carol": 404}),
        ("html", "GET", f"/submissions/{t1}/model.pt", None,
         {"anon": LOGIN, "alice": 200, "bob": 404, "prof": 200, "carol": 404}),
        ("html", "POST", f"/submissions/{t1}/final", {"final": "1"},
         {"anon": LOGIN, "alice": 302, "bob": 404, "prof": 302, "carol": 404}),
        ("html", "POST", "/challenges/squad/team", {"name": "x"}, student_form),
        ("html", "POST", "/challenges/squad/team/join", {"code": ids["alpha_code"]}, student_form),
        ("html", "POST", "/challenges/squad/team/leave", {}, student_form),
        ("html", "GET", "/instructor/challenges/squad", None,
         {"anon": LOGIN, "alice": 403, "bob": 403, "prof": 200, "carol": 403}),
        ("html", "POST", "/instructor/challenges/squad/teams/move", {"username": "bob", "team_id": ""},
         {"anon": LOGIN, "alice": 403, "bob": 403, "prof": 303, "carol": 403}),
        ("api", "GET", "/api/v1/challenges/squad/leaderboard", None, dict.fromkeys(ROLES, 200)),
        ("api", "GET", f"/api/v1/submissions/{t1}", None, {"anon": 401, "alice": 200, "bob": 404, "prof": 200, "carol": 404}),
        ("api", "GET", f"/api/v1/submissions/{t1}/results", None,
         {"anon": 401, "alice": 200, "bob": 404, "prof": 200, "carol": 404}),
        ("api", "POST", f"/api/v1/submissions/{t1}/final", {"final": True},
         {"anon": 401, "alice": 200, "bob": 404, "prof": 403, "carol": 404}),
        ("api", "GET", "/api/v1/challenges/squad/submissions", None,
         {"anon": 401, "alice": 200, "bob": 200, "prof": 200, "carol": 200}),
        # Refused for everyone, each for its own reason: in a team already (409), a bad name (422), instructor (403).
        ("api", "POST", "/api/v1/challenges/squad/teams", {"name": "x"},
         {"anon": 401, "alice": 409, "bob": 422, "prof": 403, "carol": 409}),
        # Alpha is full (two of two) and has a scored entry: nobody joins it by code.
        ("api", "POST", "/api/v1/challenges/squad/teams/join", {"code": ids["alpha_code"]},
         {"anon": 401, "alice": 409, "bob": 409, "prof": 403, "carol": 409}),
        ("api", "GET", "/api/v1/challenges/squad/team", None, {"anon": 401, "alice": 200, "bob": 404, "prof": 404, "carol": 200}),
        ("api", "POST", "/api/v1/challenges/squad/team/leave", {},
         {"anon": 401, "alice": 409, "bob": 404, "prof": 404, "carol": 409}),
        ("api", "GET", "/api/v1/challenges/squad/teams", None, teacher_api),
        ("api", "POST", "/api/v1/challenges/squad/teams/move", {"username": "bob", "team": None}, teacher_api),
    ]


def call(world, role: str, kind: str, method: str, path: str, body):
    room, _, browsers = world
    if kind == "html":
        b = browsers[role]
        if method == "GET":
            return b.get(path)
        return b.post(path, body)
    client = room.app.test_client()
    headers = {"Authorization": f"Bearer {room.tokens[role]}"} if role != "anon" else {}
    if path.endswith("/roster"):
        return client.post(path, data="username\n", headers=dict(headers, **{"Content-Type": "text/csv"}))
    return client.open(path, method=method, json=body, headers=headers)


def test_every_endpoint_for_every_role(world):
    room, ids, browsers = world
    seen_rules, bodies, failures = set(), {r: [] for r in ROLES}, []
    adapter = room.app.url_map.bind("localhost")
    for kind, method, path, body, expected in matrix(ids):
        seen_rules.add(adapter.match(path, method=method)[0])
        for role in ROLES:
            if path == "/logout":
                continue  # logged out below, once everything else ran
            resp = call(world, role, kind, method, path, body)
            want = expected[role]
            if want == LOGIN:
                ok = resp.status_code == 302 and "/login" in resp.headers.get("Location", "")
            else:
                ok = resp.status_code == want
            if not ok:
                failures.append(f"{role:5} {method} {path}: got {resp.status_code}, expected {want}")
            bodies[role].append(resp.get_data().decode("utf-8", "replace"))
    assert not failures, "\n".join(failures)
    endpoints = {r.endpoint for r in room.app.url_map.iter_rules() if r.endpoint != "static"}
    assert endpoints - seen_rules == set(), "endpoints missing from the matrix"

    # Nothing private before the reveal: no private score reaches a student or anonymous visitor anywhere.
    for role in ("anon", "alice", "bob", "carol"):
        text = "\n".join(bodies[role])
        assert A_PRIVATE not in text and B_PRIVATE not in text and ALPHA_PRIVATE not in text, role
        assert "Tiny sketch" not in text, role  # nor the title of a draft
    # A team's join code reaches its members and instructors only.
    for role in ("anon", "bob", "carol"):
        assert ids["alpha_code"] not in "\n".join(bodies[role]), role
    assert ids["alpha_code"] in "\n".join(bodies["alice"]) and ids["beta_code"] in "\n".join(bodies["carol"])
    assert ids["alpha_code"] in "\n".join(bodies["prof"])
    # Bob never sees Alice's error text, per-class results, or model file.
    bob_text = "\n".join(bodies["bob"])
    assert A_ERROR not in bob_text and "Confusion matrix" not in bob_text
    assert A_ERROR in "\n".join(bodies["alice"]) and A_PRIVATE in "\n".join(bodies["prof"])

    for role in ROLES:
        resp = browsers[role].post("/logout", {})
        assert resp.status_code == 302
    assert browsers["alice"].get("/account").status_code == 302  # the session really ended


def test_guessing_ids_reveals_nothing(world):
    room, ids, browsers = world
    bob = Browser(room.app, "bob")
    with room.session() as s:
        all_ids = list(s.scalars(select(Submission.id)))
        bobs = set(s.scalars(select(Submission.id).where(Submission.user_id == ids["bob_id"])))
    client = room.app.test_client()
    h = {"Authorization": f"Bearer {room.tokens['bob']}"}
    for sub_id in range(1, max(all_ids) + 10):
        want = 200 if sub_id in bobs else 404
        for path in (f"/submissions/{sub_id}", f"/submissions/{sub_id}/model.pt"):
            assert bob.get(path).status_code == want, path
        for path in (f"/api/v1/submissions/{sub_id}", f"/api/v1/submissions/{sub_id}/results"):
            resp = client.get(path, headers=h)
            assert resp.status_code == want, path
            if want == 404:  # the same answer for "not yours" and "does not exist"
                assert resp.json["error"]["code"] == "not_found"
    listing = client.get("/api/v1/challenges/tiny/submissions", headers=h).json
    assert {s["id"] for s in listing} == bobs


def test_cookie_reads_but_never_writes_the_api(world):
    room, ids, _ = world
    alice = Browser(room.app, "alice")
    assert alice.get(f"/api/v1/submissions/{ids['a1']}").status_code == 200  # the page's live status polling
    assert alice.get(f"/api/v1/submissions/{ids['b1']}").status_code == 404
    resp = alice.client.post(f"/api/v1/submissions/{ids['a1']}/final", json={"final": False})
    assert resp.status_code == 401  # writes need a token; a forged cross-site POST carries only the cookie


def test_private_scores_after_the_reveal(world):
    room, ids, _ = world
    with room.session() as s:
        from podium.server.instructor import reveal
        reveal(s, room.challenge(s))
    try:
        board = room.app.test_client().get("/api/v1/challenges/tiny/leaderboard").json
        assert board["revealed"] and all("private_score" in r for r in board["rows"])
        client = room.app.test_client()
        own = client.get(f"/api/v1/submissions/{ids['a1']}",
                         headers={"Authorization": f"Bearer {room.tokens['alice']}"}).json
        assert own["private_score"] == pytest.approx(float(A_PRIVATE))
        other = client.get(f"/api/v1/submissions/{ids['a1']}", headers={"Authorization": f"Bearer {room.tokens['bob']}"})
        assert other.status_code == 404
    finally:
        with room.session() as s:
            reveal(s, room.challenge(s), revealed=False)
