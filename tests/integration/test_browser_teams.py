"""A team of three in a real browser: it forms on the challenge page, submits from two accounts, sees one row."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import live
from tests.support.browser import chromium
from tests.support.bundles import write_tiny_bundle

pytestmark = pytest.mark.browser

ARTIFACTS = live.REPO / "test-artifacts"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Web + one real worker on the embedded default, with a team challenge (teams of up to 3)."""
    data = tmp_path_factory.mktemp("browser-teams")
    settings = live.settings_for(data / "var")
    trio = write_tiny_bundle(data / "trio", slug="trio", extra_toml="team_size = 3\n")
    users = {"prof": "instructor", "ana": "student", "ben": "student", "cy": "student", "dee": "student"}
    s = live.Stack(settings)
    s.tokens = live.prepare_database(settings, [trio], users)
    s.start_web()
    s.start_worker()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _page(browser, url: str, username: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", live.password_for(username))
    page.click("form.form button")
    page.wait_for_url(re.compile(r".*/$"))
    page.goto(f"{url}/challenges/trio")
    return page


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_team_of_three_forms_submits_from_two_accounts_and_has_one_row(stack, browser, tmp_path):
    from tests.support.models import scripted_bytes, small_cnn

    ana, ben, cy = (_page(browser, stack.url, name) for name in ("ana", "ben", "cy"))
    assert "create a team or join one before you submit" in ana.inner_text("#team")
    assert ana.locator("form.upload button").is_disabled()

    ana.fill("#create-team input[name=name]", "Tri Force")
    ana.click("#create-team button")
    ana.wait_for_selector("#team-code")
    code = ana.inner_text("#team-code").strip()
    assert re.fullmatch(r"[A-Z2-9]{10}", code)
    _shot(ana, "teams-01-created")
    for page in (ben, cy):
        page.fill("#join-team input[name=code]", code.lower())
        page.click("#join-team button")
        page.wait_for_selector(".team-name")
    assert cy.inner_text("#team-members").split("\n") == ["ana", "ben", "cy (you)"]
    assert cy.locator("#team-code").count() == 0  # the team is full: no code left to hand out

    # Two members upload; the third member's open page shows both rows arriving, live, scored.
    cy.evaluate("window.__noReload = true")
    for i, page in enumerate((ana, ben)):
        model = tmp_path / f"model-{i}.pt"
        model.write_bytes(scripted_bytes(small_cnn(seed=10 + i, in_shape=(1, 8, 8), num_classes=3)))
        page.set_input_files("input[name=model]", str(model))
        page.click("form.upload button")
        page.wait_for_selector("#my-subs tr[data-sub]")
    # Locators, not wait_for_function's strings: the pages' CSP has no 'unsafe-eval'.
    expect(cy.locator("#my-subs tr[data-sub]")).to_have_count(2, timeout=30_000)
    expect(cy.locator("#my-subs tr[data-sub] .status-scored")).to_have_count(2, timeout=120_000)
    assert cy.evaluate("window.__noReload") is True
    assert sorted(cy.locator("#my-subs td.by").all_inner_texts()) == ["ana", "ben"]
    _shot(cy, "teams-02-team-submissions")

    board = ana.context.new_page()
    board.goto(f"{stack.url}/challenges/trio/leaderboard")
    rows = board.locator("table.board tbody tr")
    assert rows.count() == 1
    assert "Tri Force" in rows.first.inner_text() and "ana, ben, cy" in rows.first.inner_text()
    assert rows.first.locator("td.num:not(.cost):not(.score)").inner_text() == "2"  # both uploads are the team's
    _shot(board, "teams-03-leaderboard")

    # Scored: members are fixed for the students; the instructor still moves one, and the change is logged.
    ben.reload()
    assert ben.locator("#leave-team").count() == 0 and "members are fixed" in ben.inner_text("#team")
    prof = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    prof.goto(f"{stack.url}/login")
    prof.fill("input[name=username]", "prof")
    prof.fill("input[name=password]", live.password_for("prof"))
    prof.click("form.form button")
    prof.wait_for_url(re.compile(r".*/$"))
    prof.goto(f"{stack.url}/instructor/challenges/trio")
    assert "Tri Force" in prof.inner_text("#team-table")
    prof.fill("#move-student input[name=username]", "cy")
    prof.click("#move-student button")
    prof.wait_for_selector("text=cy is now in no team")
    assert "cy moved from Tri Force" in " ".join(prof.text_content("#team-log").split())
    _shot(prof, "teams-04-dashboard")
