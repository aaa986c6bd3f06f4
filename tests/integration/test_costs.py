"""Costs end to end: a real worker measures every model, budgets fail a model before it gets a score (and spare the
daily allowance), the API, CSV, `podium check` and the pages carry the numbers, and the browser sees the front."""
from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from tests.support import axe, live
from tests.support.browser import chromium
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes

# The tiny bundle's label is the third of the columns (0-1, 2-4, 5-7) that is bright: column means tell it exactly.
THIRDS = [(0, 2), (2, 5), (5, 8)]


class Thirds(nn.Module):
    """Column means -> linear(8 -> 3) set by hand: perfect on the tiny bundle; `ballast` channels of a 3x3
    convolution add cost without changing the output; constant=True predicts class 0 for every input."""

    def __init__(self, ballast: int = 0, constant: bool = False):
        super().__init__()
        self.fc = nn.Linear(8, 3)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            if constant:
                self.fc.bias[0] = 1.0
            else:
                for c, (lo, hi) in enumerate(THIRDS):
                    self.fc.weight[c, lo:hi] = 1.0 / (hi - lo)
        self.ballast = nn.Conv2d(1, max(ballast, 1), 3, padding=1) if ballast else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.mean(dim=2).flatten(1))
        if self.ballast is not None:
            out = out + 0.0 * self.ballast(x).sum(dim=(1, 2, 3)).unsqueeze(1)
        return out


def cost(ballast: int = 0) -> tuple[int, int]:
    """By hand: linear 8x3 + 3; a ballast of k channels adds k*9 + k params and 64 outputs x 9 MACs per channel."""
    return 8 * 3 + 3 + ballast * 10, 2 * (8 * 3 + ballast * 64 * 9)


def model(ballast: int = 0, constant: bool = False) -> bytes:
    return scripted_bytes(Thirds(ballast, constant))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Web + one real worker: "budget" (at most 100 params and 0.01 MFLOPs, two uploads a day) and "costly"
    (ranking = "pareto", no budget)."""
    data = tmp_path_factory.mktemp("cost-stack")
    settings = live.settings_for(data / "var")
    budget = write_tiny_bundle(data / "budget", slug="budget", extra_toml="max_params = 100\nmax_mflops = 0.01\n")
    (budget / "challenge.toml").write_text((budget / "challenge.toml").read_text().replace("daily_limit = 1000",
                                                                                             "daily_limit = 2"))
    costly = write_tiny_bundle(data / "costly", slug="costly", extra_toml='ranking = "pareto"\n')
    tokens = live.prepare_database(settings, [budget, costly], {
        "prof": "instructor", "baseline": "instructor", "alice": "student", "bob": "student", "carol": "student"})
    s = live.Stack(settings)
    s.tokens = tokens
    s.start_web()
    s.start_worker()
    yield s
    s.stop()


def api(stack, user: str) -> live.Api:
    return live.Api(stack.url, stack.tokens[user])


def submit(stack, user: str, slug: str, data: bytes) -> dict:
    resp = api(stack, user).submit(slug, data)
    assert resp.status_code == 202, resp.text
    return api(stack, user).wait_finished(resp.json()["id"])


def test_over_budget_fails_with_its_numbers_and_spares_the_daily_allowance(stack):
    params, flops = cost(16)
    for _ in range(2):  # two over-budget uploads on a limit of two: neither uses up an upload
        sub = submit(stack, "alice", "budget", model(16))
        assert sub["status"] == "failed" and sub["public_score"] is None
        assert sub["error"].startswith(f"{params} parameters, over this challenge's budget of 100; "
                                       f"{flops / 1e6:.3g} MFLOPs per input, over this challenge's budget of 0.01 MFLOPs")
        assert (sub["params"], sub["flops_per_input"], sub["format"]) == (params, flops, "torchscript")
        assert sub["inference_ms"] is None  # never run on the test set
    seen = api(stack, "prof").get(f"/submissions/{sub['id']}").json()
    assert seen["failure_kind"] == "budget" and "private_score" in seen and seen["private_score"] is None
    for _ in range(2):
        fits = submit(stack, "alice", "budget", model(2))
        assert fits["status"] == "scored", fits
        assert (fits["params"], fits["flops_per_input"]) == cost(2)
        assert fits["inference_ms"] > 0 and fits["peak_memory_mb"] >= 0
    third = api(stack, "alice").submit("budget", model(2))
    assert third.status_code == 429 and "daily limit of 2" in third.json()["error"]["message"]


def test_check_reports_params_and_flops_against_the_budgets(stack, tmp_path):
    env = dict(os.environ, PODIUM_URL=stack.url, PODIUM_TOKEN=stack.tokens["bob"])
    over, fits = tmp_path / "over.pt", tmp_path / "fits.pt"
    over.write_bytes(model(16))
    fits.write_bytes(model(2))

    def check(path):
        return subprocess.run([sys.executable, "-m", "podium.cli", "check", str(path), "--challenge", "budget"],
                              capture_output=True, text=True, env=env, timeout=180, cwd=live.REPO)
    out = check(over)
    params, flops = cost(16)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"parameters: {params:,} (budget 100: OVER)" in out.stdout
    assert f"MFLOPs per input: {flops / 1e6:.3g} (budget 0.01 MFLOPs: OVER)" in out.stdout
    assert f"{params} parameters, over this challenge's budget of 100" in out.stdout
    out = check(fits)
    assert out.returncode == 0 and f"parameters: {cost(2)[0]} (budget 100: fits)" in out.stdout, out.stdout


@pytest.fixture(scope="module")
def board(stack):
    """carol: class 0 always, cheapest; bob: perfect, cheap; alice: perfect, costly; the baseline: perfect, between."""
    ids = {"carol": submit(stack, "carol", "costly", model(constant=True))["id"],
           "bob": submit(stack, "bob", "costly", model(2))["id"],
           "alice": submit(stack, "alice", "costly", model(16))["id"],
           "baseline": submit(stack, "baseline", "costly", model(4))["id"]}
    return ids


def test_leaderboard_rows_and_exports_carry_the_ranking_entrys_cost(stack, board):
    data = live.Api(stack.url).get("/challenges/costly/leaderboard").json()
    rows = {r["user"]: r for r in data["rows"]}
    assert {u: (r["params"], r["flops_per_input"]) for u, r in rows.items()} == {
        "carol": cost(0), "bob": cost(2), "alice": cost(16), "baseline": cost(4)}
    assert rows["bob"]["public_score"] == 1.0 and rows["carol"]["public_score"] < 0.5
    assert data["ranking"] == "pareto" and data["front"] == ["carol", "bob"]
    text = api(stack, "prof").get("/challenges/costly/leaderboard.csv").text
    exported = {r["user"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (exported["alice"]["params"], exported["alice"]["flops_per_input"]) == tuple(map(str, cost(16)))
    out = subprocess.run([sys.executable, "-m", "podium.cli", "leaderboard", "costly"], capture_output=True, text=True,
                         env=dict(os.environ, PODIUM_URL=stack.url), timeout=120, cwd=live.REPO)
    line = next(ln for ln in out.stdout.splitlines() if " alice " in ln)
    assert f"{cost(16)[0]:,}" in line.split() and f"{cost(16)[1] / 1e6:.3g}" in line.split(), out.stdout
    sub = api(stack, "bob").get(f"/submissions/{board['bob']}").json()
    assert (sub["params"], sub["flops_per_input"], sub["format"]) == (*cost(2), "torchscript")


def test_challenge_page_states_the_budget(stack):
    import requests
    page = requests.get(f"{stack.url}/challenges/budget", timeout=30).text
    assert re.search(r"at most 100 parameters · at most 0.01 MFLOPs per input", page)


@pytest.mark.browser
def test_the_browser_sees_the_scatter_its_front_and_the_baseline_beside_a_submission(stack, board):
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        axe.install(context)
        page = context.new_page()
        page.goto(f"{stack.url}/challenges/costly/leaderboard")
        found = axe.violations(page)
        assert not found, axe.describe(found)
        points = page.eval_on_selector_all(
            "svg.cost-chart circle.point",
            "els => els.map(e => ({user: e.dataset.user, flops: +e.dataset.flops, score: +e.dataset.score,"
            " front: e.classList.contains('front'), x: +e.getAttribute('cx'), y: +e.getAttribute('cy'),"
            " visible: e.getBoundingClientRect().width > 0}))")
        by_user = {p["user"]: p for p in points}
        assert set(by_user) == {"carol", "bob", "alice", "baseline"}
        assert {u for u, p in by_user.items() if p["front"]} == {"carol", "bob"}
        assert all(p["visible"] for p in points)
        assert by_user["carol"]["flops"] == cost(0)[1] and by_user["alice"]["flops"] == cost(16)[1]
        # log x: more FLOPs sits further right; a higher score sits higher (smaller y).
        assert by_user["carol"]["x"] < by_user["bob"]["x"] < by_user["baseline"]["x"] < by_user["alice"]["x"]
        assert by_user["bob"]["y"] == by_user["alice"]["y"] < by_user["carol"]["y"]
        assert page.locator("svg.cost-chart path.front-line").count() == 1
        label = page.get_attribute("svg.cost-chart", "aria-label")
        assert "2 of 4 entries on the Pareto front" in label
        text = page.inner_text("#front-text")
        assert text.index("carol") < text.index("bob") and "alice" not in text
        assert page.locator("table.pareto td.who").all_inner_texts() == ["carol", "bob"]
        page.click("#cost-chart-text summary")
        table = {r[0]: r[1:] for r in (row.locator("td").all_inner_texts()
                                       for row in page.locator("#cost-chart-table tbody tr").all())}
        assert table["bob"] == ["1.0000", f"{cost(2)[1] / 1e6:.3g}", str(cost(2)[0]), "yes"]
        assert table["alice"][-1] == "" and set(table) == {"carol", "bob", "alice", "baseline"}
        header = page.locator("table.board:not(.pareto) thead th").all_inner_texts()
        assert "PARAMS" in [h.upper() for h in header] and "MFLOPS" in [h.upper() for h in header]

        page.goto(f"{stack.url}/login")
        page.fill("input[name=username]", "bob")
        page.fill("input[name=password]", live.password_for("bob"))
        page.click("form.form button")
        page.wait_for_url(re.compile(r".*/$"))
        page.goto(f"{stack.url}/submissions/{board['bob']}")
        found = axe.violations(page)
        assert not found, axe.describe(found)
        cells = page.locator("#cost tbody tr").nth(0).locator("td").all_inner_texts()
        assert cells == [str(cost(2)[0]), str(cost(4)[0])]  # this model, then the baseline's
        mflops = page.locator("#cost tbody tr").nth(1).locator("td").all_inner_texts()
        assert mflops == [f"{cost(2)[1] / 1e6:.3g}", f"{cost(4)[1] / 1e6:.3g}"]
        browser.close()
