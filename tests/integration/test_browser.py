"""A real browser (Debian's chromium via Playwright) against a real web server and Celery worker."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support import live
from tests.support.browser import chromium
from tests.support.bundles import write_tiny_bundle

pytestmark = pytest.mark.browser

ARTIFACTS = live.REPO / "test-artifacts"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Web + one real worker on the embedded default, with the tiny challenge, a student and an instructor."""
    data = tmp_path_factory.mktemp("browser-stack")
    settings = live.settings_for(data / "var")
    tiny = write_tiny_bundle(data / "tiny", slug="shapes", classes=3)
    tokens = live.prepare_database(settings, [tiny], {"prof": "instructor", "baseline": "student", "alice": "student",
                                                        "bob": "student", "chen": "student"})
    s = live.Stack(settings)
    s.tokens = tokens
    s.shapes = tiny
    s.start_web()
    s.start_worker()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form.form button")
    page.wait_for_url(re.compile(r".*/$"))


def _zip(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, Path(folder.name) / p.relative_to(folder))
    return dest


def test_a_class_runs_a_challenge_in_the_browser(stack, browser, tmp_path):
    import numpy as np

    from tests.support.models import scripted_bytes, small_cnn, trained_cnn

    # Some history on the 'shapes' board (three students and the baseline) so the chart has lines to draw.
    with np.load(stack.shapes / "data" / "train.npz") as npz:
        x, y = npz["x"], npz["y"]
    for name, steps in [("baseline", 2), ("alice", 1), ("bob", 3), ("alice", 6), ("chen", 4), ("bob", 12)]:
        api = live.Api(stack.url, stack.tokens[name])
        resp = api.submit("shapes", scripted_bytes(trained_cnn(x, y, 3, steps=steps, seed=steps)))
        assert api.wait_finished(resp.json()["id"])["status"] == "scored"

    prof_ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    prof = prof_ctx.new_page()
    refused: list[str] = []  # anything the pages' Content-Security-Policy blocked, in either browser
    prof.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    login(prof, stack.url, "prof", live.password_for("prof"))

    # The instructor creates a course and publishes a new challenge from a bundle zip.
    prof.goto(f"{stack.url}/instructor/")
    prof.fill("input[name=name]", "Deep Learning, Fall 2026")
    prof.click("form.form.row button")
    code = prof.inner_text("#join-code").strip()
    assert re.fullmatch(r"[A-Z0-9]{8}", code)
    prof.fill("textarea[name=csv]", "username,display name,email\nada,Ada Lovelace,ada@uni.example\n")
    prof.click("#import-roster")
    prof.wait_for_selector("text=not yet claimed")
    shot(prof, "01-instructor-course")
    quiz = write_tiny_bundle(tmp_path / "quiz", slug="quiz", classes=4)
    (quiz / "README.md").write_text("# Quiz\n\nClassify **four** stripes.<script>alert(1)</script>\n")
    prof.goto(f"{stack.url}/instructor/challenges/new")
    prof.set_input_files("input[name=bundle]", str(_zip(quiz, tmp_path / "quiz.zip")))
    prof.click("form.form button")
    prof.wait_for_url(re.compile(r".*/instructor/challenges/quiz$"))
    assert "Challenge quiz is a draft" in prof.content()  # only instructors see it until it is published
    prof.click("#state-publish")
    prof.wait_for_selector("#challenge-state:text('published')")

    # A student joins with the code, uploads through the form and watches it get scored without reloading.
    student_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = student_ctx.new_page()
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{stack.url}/register")
    page.fill("input[name=join_code]", code)
    page.fill("input[name=username]", "dana")
    page.fill("input[name=email]", "dana@uni.example")
    page.fill("input[name=display_name]", "Dana Scully")
    page.fill("input[name=alias]", "Stripe Hunter")
    page.fill("input[name=password]", "correct horse")
    shot(page, "02-student-register")
    page.click("form.form button")
    page.wait_for_selector("text=You are enrolled")
    shot(page, "03-challenges")
    page.goto(f"{stack.url}/challenges/quiz")
    assert page.locator("script", has_text="alert(1)").count() == 0  # README rendered safely
    with np.load(quiz / "data" / "train.npz") as npz:
        model = trained_cnn(npz["x"], npz["y"], 4, steps=40)
    model_path = tmp_path / "model.pt"
    model_path.write_bytes(scripted_bytes(model))
    page.set_input_files("input[name=model]", str(model_path))
    page.click("form.upload button")
    page.wait_for_selector("#my-subs tr[data-sub]")
    page.evaluate("window.__noReload = true")
    page.wait_for_selector("#my-subs tr[data-sub] .status-scored", timeout=90_000)
    assert page.evaluate("window.__noReload") is True  # the row changed in place, the page was not reloaded
    expect(page.locator("#my-rank")).to_have_text("1")  # (wait_for_function's string would need CSP's unsafe-eval)
    score = float(page.inner_text("#my-subs .js-score"))
    assert 0.5 < score <= 1.0
    shot(page, "04-student-scored")
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(scripted_bytes(small_cnn(seed=1, in_shape=(1, 8, 8), num_classes=3)))  # 3 classes, not 4
    page.set_input_files("input[name=model]", str(wrong))
    page.click("form.upload button")
    page.wait_for_selector("#my-subs tr[data-sub] .status-failed", timeout=60_000)
    assert "expected [120, 4]" in page.inner_text("#my-subs")
    shot(page, "04b-student-failed")
    page.click("#my-subs tr[data-sub][data-status=scored] td a")
    page.wait_for_selector("text=Confusion matrix")
    shot(page, "05-student-submission")

    # The class leaderboard shows the alias; the instructor sees the real name and reveals the final ranking.
    page.goto(f"{stack.url}/challenges/quiz/leaderboard")
    assert "Stripe Hunter" in page.inner_text("table.board") and "dana" not in page.inner_text("table.board")
    page.goto(f"{stack.url}/challenges/shapes/leaderboard")
    shot(page, "06-leaderboard-public")
    prof.goto(f"{stack.url}/instructor/challenges/quiz")
    assert "dana" in prof.inner_text("#dashboard")
    shot(prof, "07-instructor-dashboard")
    prof.on("dialog", lambda d: d.accept())
    prof.click("#reveal")
    prof.wait_for_selector("text=The private leaderboard is now public")
    page.goto(f"{stack.url}/challenges/quiz/leaderboard")
    page.wait_for_selector("text=Final · private leaderboard")
    assert page.locator("table.board th", has_text="Private").count() == 1
    shot(page, "08-leaderboard-revealed")

    # Re-score everything after the reveal: the report fills in by itself, nothing changed.
    prof.goto(f"{stack.url}/instructor/challenges/quiz")
    prof.click("text=Re-score all")
    prof.wait_for_selector("text=0 still grading", timeout=60_000)
    assert "unchanged" in prof.inner_text("table.list")
    shot(prof, "09-instructor-rescore-report")

    # The student makes an API token on their account page: shown once, then only listed.
    page.goto(f"{stack.url}/account")
    page.fill("input[name=label]", "laptop")
    page.click("text=Create token")
    token = page.inner_text("#new-token")
    assert token.startswith("pod_")
    shot(page, "10-student-token")
    assert live.Api(stack.url, token).get("/challenges/quiz/submissions").status_code == 200
    page.goto(f"{stack.url}/account")
    assert token not in page.content()
    assert refused == []
    prof_ctx.close()
    student_ctx.close()


def test_another_page_on_the_same_site_cannot_frame_a_signed_in_page(stack, browser, tmp_path):
    """Finding 9: a page of another origin on the same site (same host, another port) framed /account."""
    import http.server
    import threading
    (tmp_path / "frame.html").write_text(f'<iframe id="victim" src="{stack.url}/account"></iframe>')
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", live.free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        login(page, stack.url, "chen", live.password_for("chen"))
        assert "API tokens" in page.goto(f"{stack.url}/account").text()  # signed in, the page shows
        with page.expect_console_message(lambda m: "frame-ancestors" in m.text, timeout=30_000) as refusal:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/frame.html")
        assert f"Framing '{stack.url}/'" in refusal.value.text  # Chromium refused to show Podium in the frame
        victim = next(f for f in page.frames if f != page.main_frame)
        assert "API tokens" not in victim.content()
    finally:
        ctx.close()
        server.shutdown()
