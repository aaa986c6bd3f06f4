"""WCAG 2.1 AA in a real browser: axe-core finds no serious or critical violation on any page, for every role."""
from __future__ import annotations

import re

import pytest
import requests
import torch

from podium.server.app import create_app
from tests.support import axe, live
from tests.support.browser import chromium
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes, small_cnn

pytestmark = pytest.mark.browser

# Pages that are files, not HTML.
NOT_PAGES = {"web.favicon", "web.instructor.export", "web.student.model_file"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Web + worker; an individual and a team challenge; a scored submission, a course and a re-score run."""
    data = tmp_path_factory.mktemp("a11y")
    settings = live.settings_for(data / "var")
    shapes = write_tiny_bundle(data / "shapes", slug="shapes")
    duo = write_tiny_bundle(data / "duo", slug="duo", extra_toml="team_size = 2\n")
    s = live.Stack(settings)
    s.tokens = live.prepare_database(settings, [shapes, duo], {"prof": "instructor", "alice": "student",
                                                                "bob": "student"})
    s.start_web()
    s.start_worker()
    alice, prof = live.Api(s.url, s.tokens["alice"]), live.Api(s.url, s.tokens["prof"])
    sub = alice.submit("shapes", scripted_bytes(small_cnn(seed=4, in_shape=(1, 8, 8), num_classes=3))).json()["id"]
    assert alice.wait_finished(sub)["status"] == "scored"
    auth = {"Authorization": f"Bearer {s.tokens['prof']}"}
    s.course = requests.post(f"{s.url}/api/v1/courses", json={"name": "Vision 101"}, headers=auth,
                             timeout=30).json()["id"]
    s.rescore = requests.post(f"{s.url}/api/v1/challenges/shapes/rescore", json={}, headers=auth,
                              timeout=30).json()["rescore"]
    s.sub = sub
    assert prof.get("/challenges/shapes").ok
    from podium.cli import admin
    admin.add_challenge(settings, write_tiny_bundle(data / "sketch", slug="sketch"))  # a draft
    s.pickle = data / "pickled.pt"
    torch.save(small_cnn(in_shape=(1, 8, 8), num_classes=3), s.pickle)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _session(browser, stack, name: str | None):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    axe.install(ctx)
    page = ctx.new_page()
    if name:
        page.goto(f"{stack.url}/login")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", live.password_for(name))
        page.click("form.form button")
        page.wait_for_url(re.compile(r".*/$"))
    return ctx, page


def test_no_serious_violation_on_any_page(stack, browser):
    visits = {
        None: ["/", "/login", "/register", "/challenges/shapes", "/challenges/shapes/leaderboard"],
        "alice": ["/", "/challenges/shapes", "/challenges/duo", f"/submissions/{stack.sub}", "/account",
                  "/challenges/shapes/leaderboard"],
        "prof": ["/instructor/", "/instructor/challenges/shapes", "/instructor/challenges/duo",
                 "/instructor/challenges/new", f"/instructor/courses/{stack.course}",
                 f"/instructor/challenges/shapes/rescores/{stack.rescore}", "/instructor/lti/",
                 "/challenges/shapes/leaderboard?view=instructor", "/challenges/shapes", "/", "/challenges/sketch"],
    }
    adapter = create_app(stack.settings).url_map.bind("localhost")
    pages = {r.endpoint for r in adapter.map.iter_rules() if "GET" in r.methods and
             r.endpoint.startswith(("web.", "lti_admin.")) and r.endpoint not in NOT_PAGES}
    seen, problems = set(), []
    for who, paths in visits.items():
        ctx, page = _session(browser, stack, who)
        for path in paths:
            resp = page.goto(f"{stack.url}{path}")
            assert resp.ok, (who, path, resp.status)
            seen.add(adapter.match(path.split("?")[0], method="GET")[0])
            found = axe.violations(page)
            if found:
                problems.append(f"{who or 'anonymous'} {path}:\n{axe.describe(found)}")
        if who == "alice":  # the states a page shows after an action: a refused upload beside the form
            page.goto(f"{stack.url}/challenges/shapes")
            page.set_input_files("input[name=model]", str(stack.pickle))
            with page.expect_navigation():
                page.click("form.upload button")
            found = axe.violations(page)
            if found:
                problems.append(f"alice after a refused upload:\n{axe.describe(found)}")
        ctx.close()
    assert pages - seen == set(), "pages the accessibility check does not visit"
    assert not problems, "\n\n".join(problems)


def test_the_progress_chart_has_a_table(stack, browser):
    ctx, page = _session(browser, stack, None)
    page.goto(f"{stack.url}/challenges/shapes/leaderboard")
    assert "table follows the chart" in page.get_attribute("svg.chart", "aria-label")
    page.click("#chart-text summary")
    rows = page.locator("#chart-table tbody tr")
    assert rows.count() == 1
    cells = [c.strip() for c in rows.first.locator("td").all_inner_texts()]
    board = live.Api(stack.url).get("/challenges/shapes/leaderboard").json()["rows"]
    assert cells[0] == board[0]["user"] and float(cells[1]) == pytest.approx(board[0]["public_score"], abs=1e-4)
    assert not axe.violations(page)
    ctx.close()


def _tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until the focus is on selector (as a keyboard user moves through the page)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("sel => document.activeElement && document.activeElement.matches(sel)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_keyboard_alone_logs_in_uploads_and_marks_final(stack, browser, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(scripted_bytes(small_cnn(seed=9, in_shape=(1, 8, 8), num_classes=3)))
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{stack.url}/login")
    _tab_to(page, "input[name=username]")
    page.keyboard.type("bob")
    _tab_to(page, "input[name=password]")
    page.keyboard.type(live.password_for("bob"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    _tab_to(page, 'a.card[href="/challenges/shapes"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    _tab_to(page, "input[name=model]")
    with page.expect_file_chooser() as chooser:  # the system's file dialog, which the keyboard also drives
        page.keyboard.press("Space")
    chooser.value.set_files(str(model))
    _tab_to(page, "#upload-button")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    sub_id = page.get_attribute("#upload-result", "data-banner")
    row = f'#my-subs tr[data-sub="{sub_id}"]'
    page.wait_for_selector(f"{row}[data-status=scored]", timeout=90_000)
    _tab_to(page, f"{row} button", limit=120)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector(f"{row} button.picked")
    assert live.Api(stack.url, stack.tokens["bob"]).get(f"/submissions/{sub_id}").json()["is_final"] is True
    ctx.close()
