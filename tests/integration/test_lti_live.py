"""LTI 1.3 end to end on real processes: gunicorn web, a real Celery worker, the platform stand-in over HTTP,
and one Chromium test of the launch inside the LMS's iframe.

The platform is served as http://localhost:PORT and Podium as http://127.0.0.1:PORT: two different sites, so the
iframe is a real third-party context. Podium's cookies stay `SameSite=None; Secure` as in production; Chromium
counts http://127.0.0.1 as potentially trustworthy and accepts Secure cookies there, and the requests-based
"browser" of tests.support.lti_platform does the same on purpose.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from podium.core.db import Database
from podium.core.lti.models import LtiPassback, LtiUser
from podium.core.models import Score, Submission
from podium.server.courses import create_course
from podium.server.lti.registry import add_platform, tool_urls
from tests.support import live
from tests.support.browser import CHROMIUM, FLAGS, require_chromium
from tests.support.bundles import write_tiny_bundle
from tests.support.lti_platform import SCOPES, Platform, browser_session, launch
from tests.support.models import scripted_bytes, small_cnn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lti(tmp_path_factory):
    """The stand-in platform and a Podium stack (web + worker on the scoring and LTI queues) that trust each other."""
    data = tmp_path_factory.mktemp("lti-stack")
    platform = Platform(host="localhost").start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PODIUM_LTI_JWKS_COOLDOWN_S", "0")
        mp.setenv("PODIUM_LTI_RETRY_S", "0.5")
        settings = live.settings_for(data / "var")
        bundles = [write_tiny_bundle(data / slug, slug=slug) for slug in ("tiny", "tiny2", "tiny3")]
        live.prepare_database(settings, bundles, {})
        db = Database(settings.database_url)
        with db.session() as s:
            add_platform(s, **platform.registration(), course=create_course(s, "CS101").join_code)
        stack = live.Stack(settings)
        stack.start_web()
        stack.start_worker(queues="podium,lti")
        urls = tool_urls(stack.url)
        platform.register_tool(urls["jwks_url"], urls["launch_url"])
        stack.platform, stack.db = platform, db
        yield stack
        stack.stop()
        db.dispose()
        platform.stop()


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def upload(browser, url: str, slug: str, seed: int) -> None:
    page = browser.get(f"{url}/challenges/{slug}")
    model = scripted_bytes(small_cnn(seed=seed, in_shape=(1, 8, 8), num_classes=3))
    resp = browser.post(f"{url}/challenges/{slug}/submit", data={"csrf_token": csrf_of(page.text)},
                        files={"model": ("model.pt", model)}, allow_redirects=False)
    assert resp.status_code == 303, resp.text


def scored(db: Database, sub: str) -> Score:
    """The score of the student's submission once the worker has written it."""
    def done():
        with db.session() as s:
            return s.scalar(select(Score).join(Submission, Submission.id == Score.submission_id)
                            .join(LtiUser, LtiUser.user_id == Submission.user_id).where(LtiUser.sub == sub))
    return live.wait_until(done, 120, f"the submission of {sub} was not scored")


def posted(platform: Platform, sub: str, n: int = 1) -> list[dict]:
    """The AGS score bodies the platform has accepted for this user, once there are n."""
    return live.wait_until(lambda: (lambda got: got if len(got) >= n else None)(
        [s for s in platform.scores if s["body"]["userId"] == sub]), 60, f"no AGS score for {sub}")


def test_learner_launch_upload_scored_passback_then_final_at_reveal(lti):
    platform = lti.platform
    student = browser_session()
    resp, _ = launch(student, platform, lti.url, platform.claims("stu-1", name="Stu Dent", challenge="tiny"))
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/challenges/tiny")
    assert "Stu Dent" in student.get(f"{lti.url}/challenges/tiny").text
    upload(student, lti.url, "tiny", seed=1)
    score = scored(lti.db, "stu-1")
    [sent] = posted(platform, "stu-1")
    assert sent["body"]["scoreGiven"] == pytest.approx(score.public_score) and sent["body"]["scoreMaximum"] == 1
    assert (sent["body"]["activityProgress"], sent["body"]["gradingProgress"]) == ("Submitted", "Pending")
    assert SCOPES["score"] in platform.tokens[sent["token"]][0]   # a bearer token the platform issued

    teacher = browser_session()
    resp, _ = launch(teacher, platform, lti.url, platform.claims("prof-1", "Instructor", challenge="tiny"))
    assert resp.status_code == 302
    board = teacher.get(f"{lti.url}/instructor/challenges/tiny")
    assert 'id="lti-passback"' in board.text and "stu-1" in board.text
    reveal = teacher.post(f"{lti.url}/instructor/challenges/tiny/reveal",
                          data={"csrf_token": csrf_of(board.text), "revealed": "1"})
    assert reveal.status_code == 200
    final = posted(platform, "stu-1", 2)[-1]["body"]
    assert final["scoreGiven"] == pytest.approx(score.private_score)
    assert (final["activityProgress"], final["gradingProgress"]) == ("Completed", "FullyGraded")


def test_platform_500_on_passback_never_touches_grading_then_recovers(lti):
    platform = lti.platform
    platform.score_failures = 2
    student = browser_session()
    launch(student, platform, lti.url, platform.claims("stu-2", challenge="tiny2", resource_link="rl-2"))
    upload(student, lti.url, "tiny2", seed=2)
    score = scored(lti.db, "stu-2")                       # graded while the platform answers 500
    [sent] = posted(platform, "stu-2")
    assert sent["body"]["scoreGiven"] == pytest.approx(score.public_score)

    def recorded():  # the platform has the score before the worker, answered, records the attempt as sent
        with lti.db.session() as s:
            row = s.scalars(select(LtiPassback).order_by(LtiPassback.id.desc())).first()
            return (row.status, row.attempts, row.last_error) if row.status == "sent" else None
    assert live.wait_until(recorded, 30, "the passback was not recorded as sent") == ("sent", 3, None)


@pytest.mark.browser
def test_launch_inside_the_lms_iframe(lti, tmp_path):
    """The LMS page frames Podium: login, the platform's auto-posted form and the challenge all inside the iframe.

    Playwright's default contexts are incognito-like, where Chromium blocks every third-party cookie (so would
    Safari). This test uses a regular profile with Chrome's default for normal windows, third-party cookies
    allowed; the tool's cookies then still only reach it inside the frame because they are SameSite=None; Secure.
    """
    require_chromium()
    from playwright.sync_api import sync_playwright
    platform = lti.platform
    hint = platform.expect_login(platform.claims("stu-3", name="Framed Student", challenge="tiny3",
                                                 resource_link="rl-3"))
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(json.dumps(
        {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}))
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = context.new_page()
            page.goto(f"{platform.url}/course?hint={hint}")
            frame = page.frame_locator("#tool")
            try:
                frame.locator("input[name=model]").wait_for(state="attached", timeout=30_000)
            except Exception as exc:
                seen = [(f.url, f.content()[:300]) for f in page.frames]
                raise AssertionError(f"the tool never showed the challenge in the iframe: {seen}") from exc
            assert "Framed Student" in frame.locator("header").inner_text()
            tool_frame = next(f for f in page.frames if f.url.startswith(lti.url))
            assert tool_frame.url == f"{lti.url}/challenges/tiny3"
            cookies = {c["name"]: c for c in context.cookies(lti.url)}
            assert cookies["session"]["sameSite"] == "None" and cookies["session"]["secure"]
        finally:
            context.close()
