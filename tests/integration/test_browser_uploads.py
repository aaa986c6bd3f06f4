"""The upload form in a real browser: limits checked before sending, refusals beside the form, live rows and banner."""
from __future__ import annotations

import re

import pytest
import torch

from tests.support import live
from tests.support.browser import chromium
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes, small_cnn

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Web + a real worker; 'small' allows 1 MB models."""
    data = tmp_path_factory.mktemp("browser-uploads")
    settings = live.settings_for(data / "var")
    small = write_tiny_bundle(data / "small", slug="small", extra_toml="max_model_mb = 1\n")
    s = live.Stack(settings)
    s.tokens = live.prepare_database(settings, [small], {"alice": "student", "bob": "student"})
    s.start_web()
    s.start_worker()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(stack, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    p = ctx.new_page()
    yield p
    ctx.close()


def login(page, url, name):
    page.goto(f"{url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", live.password_for(name))
    page.click("form.form button")
    page.wait_for_url(re.compile(r".*/$"))


def in_view(page, selector: str, whole: bool = True) -> bool:
    """The element is visible and inside the viewport (wholly, or where it starts: a long message runs on below)."""
    return page.eval_on_selector(selector, """(el, whole) => { const r = el.getBoundingClientRect();
        return !el.hidden && r.height > 0 && r.top >= 0 && (whole ? r.bottom : r.top + 40) <= window.innerHeight; }""",
                                 whole)


def _count(stack, name) -> int:
    return len(live.Api(stack.url, stack.tokens[name]).get("/challenges/small/submissions").json())


def test_oversized_file_is_refused_before_sending_and_by_the_server(stack, page, tmp_path):
    big = tmp_path / "big.pt"
    with open(big, "wb") as f:
        f.truncate(24 << 20)
    login(page, stack.url, "alice")
    page.goto(f"{stack.url}/challenges/small")
    page.set_input_files("input[name=model]", str(big))
    page.click("form.upload button")
    page.wait_for_selector("#upload-result:not([hidden])")
    text = page.inner_text("#upload-result")
    assert "larger than this challenge's limit of 1 MB" in text and "24.0 MB" in text and "nothing was sent" in text
    assert in_view(page, "#upload-result") and in_view(page, "form.upload")
    assert page.url.endswith("/challenges/small") and _count(stack, "alice") == 0  # no request was made

    # A browser without the check (or a stale page) sends it anyway: the server's 413 arrives as a page, no reset.
    page.eval_on_selector("form.upload", "f => f.removeAttribute('data-max-bytes')")
    with page.expect_navigation():
        page.click("form.upload button")
    assert page.url.endswith("#upload-form")
    assert "Upload refused: the model is larger than this challenge's limit of 1 MB" in page.inner_text("#upload-result")
    assert in_view(page, "#upload-result") and in_view(page, "form.upload")
    assert _count(stack, "alice") == 0


def test_refused_model_shows_beside_the_form(stack, page, tmp_path):
    pickled = tmp_path / "pickled.pt"
    torch.save(small_cnn(in_shape=(1, 8, 8), num_classes=3), pickled)
    login(page, stack.url, "bob")
    page.goto(f"{stack.url}/challenges/small")
    page.set_input_files("input[name=model]", str(pickled))
    with page.expect_navigation():
        page.click("form.upload button")
    result = page.inner_text("#upload-result")
    assert result.startswith("Upload refused:") and "torch.jit.save" in result
    assert in_view(page, "form.upload") and in_view(page, "#upload-result", whole=False)
    page.wait_for_function("document.activeElement.id === 'upload-result'")  # focus follows, for keyboards and readers
    assert page.locator("main > p.flash").count() == 0  # not at the top of the page, out of view


def test_live_row_brings_its_actions_and_the_banner_along(stack, page, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(scripted_bytes(small_cnn(seed=5, in_shape=(1, 8, 8), num_classes=3)))
    login(page, stack.url, "alice")
    page.goto(f"{stack.url}/challenges/small")
    page.set_input_files("input[name=model]", str(model))
    with page.expect_navigation():
        page.click("form.upload button")
    sub_id = page.get_attribute("#upload-result", "data-banner")
    assert sub_id and "received; it is queued for grading" in page.inner_text("#upload-result")
    row = f'#my-subs tr[data-sub="{sub_id}"]'
    page.evaluate("window.__noReload = true")
    page.wait_for_selector(f"{row}[data-status=scored]", timeout=90_000)
    assert page.evaluate("window.__noReload") is True  # updated in place
    page.wait_for_selector(f'#upload-result[data-banner="{sub_id}"]:has-text("is scored")')
    assert "queued" not in page.inner_text("#upload-result")
    button = page.locator(f"{row} button", has_text="mark final")
    assert button.count() == 1 and page.locator(f"{row} .js-cancel").count() == 0
    button.click()  # the refreshed row's form works (its CSRF token came with it)
    page.wait_for_selector(f"{row} button.picked")
