"""LTI 1.3 against the HTTP platform stand-in: launches, refusals, keys, registry, passback delivery (no worker)."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import jwt
import pytest
import requests
from sqlalchemy import select

from podium.core import board
from podium.core.lti import keys
from podium.core.lti.models import LtiLaunchLink, LtiNonce, LtiPassback, LtiPlatform, LtiResourceLink
from podium.core.lti.passback import queue_score
from podium.core.lti.services import fetch_roster
from podium.core.models import Challenge, Course, User, utcnow
from podium.server.courses import create_course
from podium.server.lti.frames import with_frame_ancestors
from podium.server.lti.provision import import_roster, map_role
from podium.server.lti.registry import add_platform, list_platforms, remove_platform, tool_urls
from podium.worker.passback import deliver
from tests.support import live
from tests.support.live import require_postgres_and_redis
from tests.support.lti_platform import SCOPES, Platform, auto_post_form, browser_session, launch, login_query
from tests.support.lti_tool import ToolServer, add_challenge, counts, user_of


@pytest.fixture
def platform():
    plat = Platform().start()
    yield plat
    plat.stop()


@pytest.fixture
def database_url(request):
    """SQLite; tests marked with BOTH_DATABASES also run on a fresh Postgres database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    require_postgres_and_redis()
    with live.fresh_postgres_db() as url:
        yield url


BOTH_DATABASES = pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


@pytest.fixture
def tool(tmp_path, platform, monkeypatch, database_url):
    monkeypatch.setenv("PODIUM_LTI_JWKS_COOLDOWN_S", "0")
    server = ToolServer(tmp_path / "var", database_url)
    with server.db.session() as s:
        course = create_course(s, "CS101")
        add_challenge(s)
        s.flush()
        add_platform(s, **platform.registration(), course=course.join_code)
    urls = tool_urls(server.url)
    platform.register_tool(urls["jwks_url"], urls["launch_url"])
    yield server
    server.stop()


@pytest.fixture
def browser():
    with browser_session() as session:
        yield session


def send_all(tool, user_id, score, final=False, at=None) -> list[bool]:
    """What the worker does after a score: queue, commit, then each task's one delivery attempt."""
    with tool.db.session() as s:
        challenge = s.scalar(select(Challenge).where(Challenge.slug == "cnn-1"))
        ids = queue_score(s, user_id, challenge.id, score, final=final, at=at)
        s.commit()
        return [deliver(s, i) for i in ids]


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@BOTH_DATABASES
def test_learner_launch_signs_in_lands_and_score_reaches_ags(tool, platform, browser):
    resp, _ = launch(browser, platform, tool.url, platform.claims("stu-1", name="Stu Dent"))
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/challenges/cnn-1")
    assert f"frame-ancestors 'self' {platform.url}" in resp.headers["Content-Security-Policy"]
    session_cookie = [c for c in resp.raw.headers.getlist("Set-Cookie") if c.startswith("session=")][0]
    assert "SameSite=None" in session_cookie and "Secure" in session_cookie and "HttpOnly" in session_cookie
    page = browser.get(tool.url + "/challenges/cnn-1")
    assert page.status_code == 200 and "Stu Dent" in page.text and 'name="model"' in page.text
    assert "frame-ancestors" in page.headers["Content-Security-Policy"]  # the framed pages after the launch too
    user = user_of(tool.db, "stu-1")
    assert (user.password_hash, user.email, user.role, user.username) == (None, "stu-1@uni.example", "student",
                                                                           "stu-1")
    with tool.db.session() as s:
        assert s.get(User, user.id).course_id == s.scalar(select(Course.id).where(Course.name == "CS101"))

    assert send_all(tool, user.id, 0.83) == [True]
    assert send_all(tool, user.id, 0.83) == []            # unchanged best public score: nothing to send
    assert send_all(tool, user.id, 0.9) == [True]
    assert send_all(tool, user.id, 0.88, final=True) == [True]
    assert send_all(tool, user.id, 0.95) == []            # the final score is not replaced by a late public one
    bodies = [s["body"] for s in platform.scores]
    assert [b["scoreGiven"] for b in bodies] == [0.83, 0.9, 0.88]
    assert bodies[0]["userId"] == "stu-1" and bodies[0]["scoreMaximum"] == 1
    assert (bodies[0]["activityProgress"], bodies[0]["gradingProgress"]) == ("Submitted", "Pending")
    assert (bodies[2]["activityProgress"], bodies[2]["gradingProgress"]) == ("Completed", "FullyGraded")
    datetime.fromisoformat(bodies[0]["timestamp"])
    assert all(SCOPES["score"] in platform.tokens[s["token"]][0] for s in platform.scores)
    assert len(platform.token_requests) == 1              # the token is cached across posts


def test_login_by_post_sets_cross_site_state_cookie(tool, platform, browser):
    resp = browser.post(tool.url + "/lti/login", allow_redirects=False, data={
        "iss": platform.issuer, "login_hint": "stu-1", "client_id": platform.client_id,
        "target_link_uri": tool.url + "/lti/launch"})
    assert resp.status_code == 302
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("lti1p3-state-") and "SameSite=None" in cookie and "Secure" in cookie
    query = login_query(resp)
    assert query["redirect_uri"] == tool.url + "/lti/launch" and query["prompt"] == "none"
    assert query["response_mode"] == "form_post" and query["nonce"] and query["state"]


def test_password_sessions_stay_lax(tool):
    with tool.db.session() as s:
        from podium.server.auth import create_user
        create_user(s, "pat", "student", password="pat-password-1")
    browser = requests.Session()
    form = browser.get(tool.url + "/login").text
    resp = browser.post(tool.url + "/login", allow_redirects=False,
                        data={"username": "pat", "password": "pat-password-1", "csrf_token": csrf_of(form)})
    assert resp.status_code == 302
    assert "SameSite=Lax" in resp.headers["Set-Cookie"]
    assert resp.headers["Content-Security-Policy"].endswith("frame-ancestors 'self'")  # no LMS may frame it


def test_instructor_launch_dashboard_and_roster_import(tool, platform, browser):
    resp, _ = launch(browser, platform, tool.url, platform.claims("prof-1", "Instructor", name="Prof Essor"),
                     method="POST")
    assert resp.status_code == 302
    prof = user_of(tool.db, "prof-1")
    assert prof.role == "instructor" and prof.course_id is None
    assert send_all(tool, prof.id, 0.5) == []             # no passback for staff
    home = browser.get(tool.url + "/instructor/lti/")
    assert home.status_code == 200
    assert tool.url + "/lti/jwks" in home.text and tool.url + "/lti/login" in home.text
    assert platform.issuer in home.text and "Import roster" in home.text

    platform.members = [
        {"user_id": "stu-7", "name": "Ann", "email": "ann@uni.example", "status": "Active",
         "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]},
        {"user_id": "ta-1", "name": "Tom", "status": "Active",
         "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"]},
        {"user_id": "gone", "name": "Old", "status": "Inactive", "roles": ["Learner"]},
    ]
    with tool.db.session() as s:
        link_id = s.scalar(select(LtiResourceLink.id))
    done = browser.post(f"{tool.url}/instructor/lti/placements/{link_id}/roster", data={"csrf_token": csrf_of(
        home.text)})
    assert "Imported 1 students and 1 instructors" in done.text, done.text
    ann, tom = user_of(tool.db, "stu-7"), user_of(tool.db, "ta-1")
    assert (ann.role, ann.username, ann.course_id is not None) == ("student", "ann", True)
    assert tom.role == "instructor" and user_of(tool.db, "gone") is None

    before = counts(tool.db)
    resp, _ = launch(browser_session(), platform, tool.url, platform.claims("stu-7"))
    assert resp.status_code == 302
    assert counts(tool.db) == before                      # the roster made the account and the placement link
    assert send_all(tool, ann.id, 0.61) == [True]
    board = browser.get(tool.url + "/instructor/challenges/cnn-1")
    assert 'id="lti-passback"' in board.text and "ann" in board.text and "sent" in board.text


@BOTH_DATABASES
@pytest.mark.parametrize("forge, status, reason", [
    ("bad_signature", 401, "Signature verification failed"),
    ("unknown_kid", 401, "signing key unknown"),
    ("alg_none", 401, "must be RS256"),
    ("wrong_aud", 401, "is not registered"),
    ("foreign_azp", 401, "is not registered"),
    ("expired", 401, "expired"),
    ("unknown_deployment", 401, "deployment"),
    ("wrong_nonce", 401, "nonce does not match"),
    ("wrong_iss", 401, "'https://other-lms.example' with client id"),
    ("future_iat", 401, "not yet valid"),
    ("wrong_version", 400, "LTI version must be 1.3.0"),
    ("wrong_message_type", 400, "unsupported message type 'LtiDeepLinkingRequest'"),
])
def test_forged_launch_refused_nothing_created(tool, platform, browser, forge, status, reason, caplog):
    before = counts(tool.db)
    resp, _ = launch(browser, platform, tool.url, platform.claims("stu-1"), forge=forge)
    assert resp.status_code == status and reason in resp.text, resp.text
    assert "LMS administrator" in resp.text
    assert counts(tool.db) == before
    assert any("LTI refused" in r.getMessage() and "stu-1" in r.getMessage() for r in caplog.records)


@BOTH_DATABASES
def test_replayed_launch_refused(tool, platform, browser):
    resp, fields = launch(browser, platform, tool.url, platform.claims("stu-1"))
    assert resp.status_code == 302
    before = counts(tool.db)
    browser.cookies.set("lti1p3-state-" + fields["state"], "1")   # even with the state cookie back
    again = browser.post(tool.url + "/lti/launch", data=fields, allow_redirects=False)
    assert again.status_code == 401 and "replayed" in again.text
    stranger = requests.post(tool.url + "/lti/launch", data=fields, allow_redirects=False)
    assert stranger.status_code == 401
    assert counts(tool.db) == before


def test_launch_without_state_cookie_refused(tool, platform, browser):
    hint = platform.expect_login(platform.claims("stu-2"))
    login = browser.get(tool.url + "/lti/login", allow_redirects=False, params={
        "iss": platform.issuer, "login_hint": hint, "target_link_uri": tool.url})
    action, fields = auto_post_form(browser.get(login.headers["Location"]).text)
    before = counts(tool.db)
    resp = requests.post(action, data=fields, allow_redirects=False)   # another browser
    assert resp.status_code == 401 and "cookie" in resp.text
    assert counts(tool.db) == before


def test_unknown_issuer_login_refused(tool, browser):
    resp = browser.get(tool.url + "/lti/login", allow_redirects=False, params={
        "iss": "https://lms.nowhere.example", "login_hint": "x", "target_link_uri": tool.url})
    assert resp.status_code == 401 and "is not registered" in resp.text


def test_unknown_challenge_refused_and_nonce_kept(tool, platform, browser):
    before = counts(tool.db)
    resp, _ = launch(browser, platform, tool.url, platform.claims("stu-1", challenge="nope"))
    assert resp.status_code == 400 and "no known challenge" in resp.text
    assert counts(tool.db) == before
    with tool.db.session() as s:                          # the refused launch did not burn the nonce
        assert s.scalars(select(LtiNonce)).one().used_at is None


def test_target_link_uri_names_challenge(tool, platform, browser):
    claims = platform.claims("stu-1", challenge=None, target=tool.url + "/challenges/cnn-1")
    resp, _ = launch(browser, platform, tool.url, claims)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/challenges/cnn-1")


def test_platform_key_rotation(tool, platform, browser):
    for sub in ("stu-1", "stu-2"):
        assert launch(browser_session(), platform, tool.url, platform.claims(sub))[0].status_code == 302
    assert platform.jwks_hits == 1                        # the platform's JWKS is cached
    platform.rotate_key(keep_old=False)
    resp, _ = launch(browser_session(), platform, tool.url, platform.claims("stu-3"))
    assert resp.status_code == 302, resp.text             # unknown kid: fetched again
    assert platform.jwks_hits == 2


def test_tool_key_rotation_and_token_refresh(tool, platform, browser):
    launch(browser, platform, tool.url, platform.claims("stu-1"))
    user = user_of(tool.db, "stu-1")
    assert send_all(tool, user.id, 0.4) == [True]
    with tool.db.session() as s:
        old = keys.current_key(s).kid
        new = keys.rotate_key(s)
    published = {k["kid"] for k in requests.get(tool.url + "/lti/jwks").json()["keys"]}
    assert published == {old, new.kid}                    # the retired key stays published a while
    platform.revoke_tokens()                              # 401 -> a new token, asserted with the new key
    assert send_all(tool, user.id, 0.6) == [True]
    assertion = platform.token_requests[-1]["client_assertion"]
    assert jwt.get_unverified_header(assertion)["kid"] == new.kid
    assert len(platform.token_requests) == 2 and len(platform.scores) == 2


def test_passback_500_then_recovers(tool, platform, browser):
    launch(browser, platform, tool.url, platform.claims("stu-1"))
    user = user_of(tool.db, "stu-1")
    platform.score_failures = 2
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert send_all(tool, user.id, 0.7, at=at) == [False]
    with tool.db.session() as s:
        row = s.scalars(select(LtiPassback)).one()
        assert row.status == "failed" and "HTTP 500" in row.last_error
        assert deliver(s, row.id) is False                # the task retries with backoff
        assert deliver(s, row.id) is True
        s.refresh(row)
        assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert len(platform.scores) == 1
    assert platform.scores[0]["body"]["timestamp"].startswith("2030-01-02T03:04:05")


def test_line_item_created_when_claim_allows(tool, platform, browser):
    launch(browser_session(), platform, tool.url, platform.claims("stu-1", ags="lineitems"))
    launch(browser_session(), platform, tool.url, platform.claims("stu-2", ags="lineitems"))
    for sub in ("stu-1", "stu-2"):
        assert send_all(tool, user_of(tool.db, sub).id, 0.5) == [True]
    assert len(platform.lineitems) == 1
    item = platform.lineitems[1]
    assert (item["scoreMaximum"], item["tag"], item["resourceLinkId"]) == (1, "podium:cnn-1", "rl-1")
    assert [s["lineitem"] for s in platform.scores] == [1, 1]


def test_no_line_item_and_no_permission_fails_with_reason(tool, platform, browser):
    claims = platform.claims("stu-1", ags="lineitems")
    claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["scope"] = [SCOPES["score"]]
    launch(browser, platform, tool.url, claims)
    assert send_all(tool, user_of(tool.db, "stu-1").id, 0.5) == [False]
    with tool.db.session() as s:
        assert "no line item" in s.scalars(select(LtiPassback)).one().last_error


def test_registry_and_frame_origins(tool, platform):
    with tool.db.session() as s:
        add_platform(s, **{**platform.registration(), "deployment_id": "dep-2"},
                     frame_origins=["https://school.instructure.com"])
        [reg] = list_platforms(s)
        assert [d.deployment_id for d in reg.deployments] == ["dep-1", "dep-2"]
        assert reg.frame_origins == "https://school.instructure.com"
        with pytest.raises(ValueError, match="absolute"):
            add_platform(s, **{**platform.registration(), "jwks_url": "jwks.json"})
        s.rollback()
        assert remove_platform(s, reg.id) and not list_platforms(s)
        s.commit()
        assert s.scalar(select(LtiPlatform)) is None
    assert tool_urls("https://podium.example/")["jwks_url"] == "https://podium.example/lti/jwks"
    assert with_frame_ancestors("default-src 'self'; frame-ancestors 'none'", ["'self'", "https://a.example"]) == \
        "default-src 'self'; frame-ancestors 'self' https://a.example"


def test_jwks_endpoint_has_public_key_only(tool):
    body = requests.get(tool.url + "/lti/jwks").json()
    assert body["keys"][0]["kty"] == "RSA" and body["keys"][0]["alg"] == "RS256"
    assert "d" not in body["keys"][0]


@pytest.mark.parametrize("roles, expected", [
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"], "student"),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"], "instructor"),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"], "instructor"),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor",
      "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"], "student"),
    (["Instructor"], "instructor"), ([], "student"),
])
def test_map_role(roles, expected):
    assert map_role(roles) == expected


def test_roster_import_direct(tool, platform, browser):
    """fetch_roster follows rel="next" pages (the stand-in serves two members a page)."""
    launch(browser, platform, tool.url, platform.claims("prof-1", "Instructor"))
    platform.members = [{"user_id": f"s{i}", "name": f"S {i}", "roles": ["Learner"]} for i in range(5)]
    with tool.db.session() as s:
        rlink = s.scalars(select(LtiResourceLink)).one()
        members = fetch_roster(s, rlink)
        assert len(members) == 5 and import_roster(s, rlink, members) == (5, 0)


def test_after_scored_queues_best_public_and_never_raises(tool, platform, browser):
    """The worker's hook: the best public score is queued; a broker that refuses the task breaks nothing."""
    from podium.core.models import Score, Submission
    from podium.worker.passback import after_scored

    class BrokerDown:
        def send_task(self, *args, **kwargs):
            raise ConnectionError("broker unreachable")

    launch(browser, platform, tool.url, platform.claims("stu-1"))
    user = user_of(tool.db, "stu-1")
    with tool.db.session() as s:
        challenge = s.scalar(select(Challenge).where(Challenge.slug == "cnn-1"))
        subs = []
        for public in (0.4, 0.7, 0.5):
            sub = Submission(challenge_id=challenge.id, user_id=user.id, status="scored", model_sha256="a" * 64,
                             model_size=1)
            s.add(sub)
            s.flush()
            s.add(Score(submission_id=sub.id, challenge_id=challenge.id, user_id=user.id, metric="accuracy",
                        public_score=public, private_score=public, n_public=5, n_private=5))
            s.flush()
            board.refresh_submission(s, sub.id)  # as finish_scored does in the worker
            subs.append(sub.id)
    assert after_scored(tool.db, BrokerDown(), subs[-1]) == 0
    with tool.db.session() as s:
        row = s.scalars(select(LtiPassback)).one()
        assert (row.score, row.status, row.final) == (0.7, "pending", False)
    assert after_scored(tool.db, BrokerDown(), 999999) == 0


def test_every_team_member_gets_the_team_result(tool, platform, browser):
    """In a team challenge, a teammate's score is passed back for each member, and so is the final at the reveal."""
    from podium.core.models import Score, Submission
    from podium.server import teams
    from podium.server.instructor import reveal
    from podium.server.lti.grades import send_final_scores
    from podium.worker.passback import after_scored

    class Broker:
        sent: list = []

        def send_task(self, *args, **kwargs):
            self.sent.append(kwargs["args"][0])

    for sub in ("stu-1", "stu-2", "stu-3"):
        launch(browser, platform, tool.url, platform.claims(sub))
    ann, ben, cat = (user_of(tool.db, sub) for sub in ("stu-1", "stu-2", "stu-3"))
    with tool.db.session() as s:
        challenge = s.scalar(select(Challenge).where(Challenge.slug == "cnn-1"))
        challenge.team_size = 2
        team = teams.create_team(s, challenge, s.get(User, ann.id), "Pair")
        teams.join_team(s, challenge, s.get(User, ben.id), team.join_code)
        sub = Submission(challenge_id=challenge.id, user_id=ben.id, team_id=team.id, status="scored",
                         model_sha256="b" * 64, model_size=1)
        s.add(sub)
        s.flush()
        s.add(Score(submission_id=sub.id, challenge_id=challenge.id, user_id=ben.id, metric="accuracy",
                    public_score=0.75, private_score=0.625, n_public=5, n_private=5))
        s.flush()
        board.refresh_submission(s, sub.id)  # as finish_scored does in the worker
        sub_id, challenge_id = sub.id, challenge.id
    assert after_scored(tool.db, Broker(), sub_id) == 2
    with tool.db.session() as s:
        rows = s.execute(select(LtiPassback.score, LtiLaunchLink.user_id).join(LtiLaunchLink)).all()
        assert sorted(rows) == sorted([(0.75, ann.id), (0.75, ben.id)])  # cat is in no team: nothing
        reveal(s, s.get(Challenge, challenge_id))
        s.commit()
        assert send_final_scores(s, Broker(), s.get(Challenge, challenge_id)) == 2
        finals = s.execute(select(LtiPassback.score, LtiPassback.final, LtiLaunchLink.user_id).join(LtiLaunchLink))
        assert sorted(finals) == sorted([(0.625, True, ann.id), (0.625, True, ben.id)])


class RecordingBroker:
    """Stands in for the message broker (outside what these tests exercise): records the passback ids sent."""

    def __init__(self):
        self.sent = []

    def send_task(self, *args, **kwargs):
        self.sent.append(kwargs["args"][0])


def _scored(s, challenge, user, public, private=None):
    from podium.core.models import Score, Submission
    sub = Submission(challenge_id=challenge.id, user_id=user.id, status="scored", model_sha256="c" * 64, model_size=1)
    s.add(sub)
    s.flush()
    s.add(Score(submission_id=sub.id, challenge_id=challenge.id, user_id=user.id, metric="accuracy",
                public_score=public, private_score=public if private is None else private, n_public=5, n_private=5))
    s.flush()
    board.refresh_submission(s, sub.id)  # as finish_scored does in the worker
    return sub


@BOTH_DATABASES
def test_disqualifying_the_best_entry_passes_the_next_best_back(tool, platform, browser):
    """The best public score moves when an instructor disqualifies or reinstates: the LMS hears of it each time."""
    from podium.server.instructor import disqualify_submission, disqualify_user
    from podium.server.lti.grades import after_submission_disqualified, after_user_disqualified
    launch(browser, platform, tool.url, platform.claims("stu-1"))
    user = user_of(tool.db, "stu-1")
    broker = RecordingBroker()
    with tool.db.session() as s:
        challenge = s.scalar(select(Challenge).where(Challenge.slug == "cnn-1"))
        _scored(s, challenge, user, 0.5)
        best = _scored(s, challenge, user, 0.9)
        queue_score(s, user.id, challenge.id, 0.9)
        s.commit()
        disqualify_submission(s, best, "copied")
        s.commit()
        assert after_submission_disqualified(s, broker, best) == 1
        assert s.scalars(select(LtiPassback.score)).one() == 0.5
        disqualify_submission(s, best, "")
        s.commit()
        assert after_submission_disqualified(s, broker, best) == 1
        assert s.scalars(select(LtiPassback.score)).one() == 0.9
        disqualify_user(s, s.get(User, user.id), "")  # reinstating someone never disqualified: nothing moves
        s.commit()
        assert after_user_disqualified(s, broker, s.get(User, user.id)) == 0
    assert len(broker.sent) == 2


def test_a_pending_passback_whose_task_was_lost_is_published_again(tool, platform, browser):
    """The broker lost the task (restarted without persistence): the reaper's round sends the row again, once sent
    it is left alone."""
    from datetime import timedelta

    from podium.worker.passback import resend_lost
    launch(browser, platform, tool.url, platform.claims("stu-1"))
    user = user_of(tool.db, "stu-1")
    broker = RecordingBroker()
    with tool.db.session() as s:
        challenge = s.scalar(select(Challenge).where(Challenge.slug == "cnn-1"))
        [row_id] = queue_score(s, user.id, challenge.id, 0.8)
        s.commit()
    assert resend_lost(tool.db, broker) == 0  # fresh: its task may still be waiting
    later = utcnow() + timedelta(seconds=601)
    assert resend_lost(tool.db, broker, now=later) == 1 and broker.sent == [row_id]
    with tool.db.session() as s:
        assert deliver(s, row_id)
    assert resend_lost(tool.db, broker, now=later) == 0
    assert platform.scores[-1]["body"]["scoreGiven"] == 0.8


def test_send_again_on_a_failed_passback_row(tool, platform, browser):
    """The dashboard shows a failed passback with its error; Send again queues that row, and it then reaches the LMS."""
    launch(browser_session(), platform, tool.url, platform.claims("stu-1"))
    student = user_of(tool.db, "stu-1")
    platform.score_failures = 1
    assert send_all(tool, student.id, 0.42) == [False]
    launch(browser, platform, tool.url, platform.claims("prof-1", "Instructor"))
    board_page = browser.get(tool.url + "/instructor/challenges/cnn-1").text
    assert 'id="lti-passback"' in board_page and "failed" in board_page and "HTTP 500" in board_page
    with tool.db.session() as s:
        link_id = s.scalar(select(LtiLaunchLink.id).where(LtiLaunchLink.user_id == student.id))
        row_id = s.scalar(select(LtiPassback.id))
    done = browser.post(f"{tool.url}/instructor/lti/challenges/cnn-1/passback/{link_id}",
                        data={"csrf_token": csrf_of(board_page)})
    assert "Score queued for the LMS." in done.text
    with tool.db.session() as s:
        assert s.get(LtiPassback, row_id).status == "pending"
        assert deliver(s, row_id) is True                  # what the queued task does
    assert [sc["body"]["scoreGiven"] for sc in platform.scores] == [0.42]
    missing = browser.post(f"{tool.url}/instructor/lti/challenges/no-such/passback/{link_id}",
                           data={"csrf_token": csrf_of(board_page)})
    assert missing.status_code == 404
