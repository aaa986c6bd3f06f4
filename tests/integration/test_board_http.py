"""The leaderboard over HTTP: pages with total, 400 on bad values, conditional GETs (304 while unchanged) for the
API and the projector page, the viewer's own row below the top N, CSV exports streamed in chunks."""
from __future__ import annotations

import csv
import io

import pytest

from podium.core.models import User
from podium.server import leaderboard
from tests.support.classroom import Browser, Classroom

URL = "/api/v1/challenges/tiny/leaderboard"
PAGE = "/challenges/tiny/leaderboard"


@pytest.fixture(scope="module")
def template_room(tmp_path_factory) -> Classroom:
    return Classroom(tmp_path_factory.mktemp("board-template"))


@pytest.fixture
def room(tmp_path, template_room) -> Classroom:
    return Classroom(tmp_path, template=template_room)


def crowd(room: Classroom, n: int) -> list[str]:
    """n more students, each with one scored entry; s00 best. Returns their usernames, best first."""
    names = [f"s{i:02d}" for i in range(n)]
    with room.session() as s:
        s.add_all(User(username=name, role="student") for name in names)
    for i, name in enumerate(names):
        room.add_scored(name, 0.99 - i / 1000, 0.5, sha="0" * 64)
    return names


def api(room: Classroom, path: str, token: str | None = None, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return room.app.test_client().get(path, headers=headers)


def test_pages_of_the_board_with_total(room):
    names = crowd(room, 12)
    whole = api(room, URL).get_json()
    assert whole["total"] == 12 and [r["user"] for r in whole["rows"]] == names
    assert {"params", "flops_per_input"} <= set(whole["rows"][0])
    page = api(room, f"{URL}?limit=5&offset=5").get_json()
    assert [r["rank"] for r in page["rows"]] == [6, 7, 8, 9, 10] and page["total"] == 12
    assert [r["user"] for r in page["rows"]] == names[5:10]
    past = api(room, f"{URL}?offset=50").get_json()
    assert past["rows"] == [] and past["total"] == 12


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=abc", "offset=1.5"])
def test_bad_page_values_answer_400(room, query):
    resp = api(room, f"{URL}?{query}")
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "bad_request"
    assert ("limit" if "limit" in query else "offset") in resp.get_json()["error"]["message"]


def test_conditional_get_answers_304_until_the_board_changes(room):
    room.add_scored("alice", 0.7, 0.6)
    first = api(room, URL)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-cache"
    again = api(room, URL, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    assert api(room, URL, **{"If-Modified-Since": modified}).status_code == 304
    # Who looks and which page are part of the tag: an instructor sees private scores and real names.
    assert api(room, URL, room.tokens["prof"], **{"If-None-Match": etag}).status_code == 200
    assert api(room, f"{URL}?limit=1", **{"If-None-Match": etag}).status_code == 200
    room.add_scored("bob", 0.9, 0.6)
    changed = api(room, URL, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert [r["user"] for r in changed.get_json()["rows"]] == ["bob", "alice"]


def test_reveal_and_alias_change_the_tag(room):
    room.add_scored("alice", 0.7, 0.6)
    etag = api(room, URL).headers["ETag"]
    Browser(room.app, "alice").post("/account/alias", {"alias": "Fox"})
    renamed = api(room, URL, **{"If-None-Match": etag})
    assert renamed.status_code == 200 and renamed.get_json()["rows"][0]["user"] == "Fox"
    etag = renamed.headers["ETag"]
    Browser(room.app, "prof").post("/instructor/challenges/tiny/reveal", {"revealed": "1"})
    revealed = api(room, URL, **{"If-None-Match": etag})
    assert revealed.status_code == 200 and revealed.get_json()["revealed"] is True


def test_projector_shows_the_top_n_and_your_own_row(room):
    crowd(room, 55)
    room.add_scored("alice", 0.1, 0.1)
    alice = Browser(room.app, "alice")
    html = alice.get(PAGE).get_data(as_text=True)
    assert html.count('<td class="rank">') == 51  # the top 50 and alice's own row below them
    assert '<td class="rank">56</td>' in html and '<span class="tag">you</span>' in html
    assert "Rows 1–50 of 56" in html and "offset=50" in html
    anonymous = Browser(room.app).get(PAGE).get_data(as_text=True)
    assert anonymous.count('<td class="rank">') == 50 and "alice" not in anonymous
    second = alice.get(f"{PAGE}?offset=50").get_data(as_text=True)
    assert second.count('<td class="rank">') == 6 and "Rows 51–56 of 56" in second
    assert alice.get(f"{PAGE}?limit=abc").status_code == 400
    assert alice.get(f"{PAGE}?limit=5000").status_code == 400


def test_projector_page_answers_304_on_an_unchanged_board(room):
    room.add_scored("alice", 0.7, 0.6)
    projector = Browser(room.app)
    first = projector.get(PAGE)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and "alice" in first.get_data(as_text=True)
    assert projector.get(PAGE, headers={"If-None-Match": etag}).status_code == 304
    # A signed-in viewer's page is their own (their row, their name in the header): another tag.
    assert Browser(room.app, "alice").get(PAGE, headers={"If-None-Match": etag}).status_code == 200
    room.add_scored("bob", 0.8, 0.6)
    fresh = projector.get(PAGE, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and "bob" in fresh.get_data(as_text=True)


def test_csv_export_streams_every_row(room, monkeypatch):
    monkeypatch.setattr(leaderboard, "EXPORT_CHUNK", 5)  # several chunks from a small board
    names = crowd(room, 12)
    resp = api(room, "/api/v1/challenges/tiny/leaderboard.csv", room.tokens["prof"])
    assert resp.status_code == 200 and resp.is_streamed
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["user"] for r in rows] == names and [r["rank"] for r in rows] == [str(i) for i in range(1, 13)]
    page = Browser(room.app, "prof").get("/instructor/challenges/tiny/leaderboard.csv")
    assert page.is_streamed and page.get_data(as_text=True) == resp.get_data(as_text=True)


def test_dashboard_pages_newest_first_and_filters(room):
    crowd(room, 7)
    failed = room.add_failed("alice", "the model crashed while loading")
    token = room.tokens["prof"]
    first = api(room, "/api/v1/challenges/tiny/dashboard?limit=3", token).get_json()
    ids = [r["id"] for r in first]
    assert ids[0] == failed and ids == sorted(ids, reverse=True) and len(ids) == 3
    second = api(room, f"/api/v1/challenges/tiny/dashboard?limit=3&before={ids[-1]}", token).get_json()
    assert [r["id"] for r in second] == [i - 3 for i in ids]
    assert [r["id"] for r in api(room, "/api/v1/challenges/tiny/dashboard?status=failed", token).get_json()] == [failed]
    assert [r["user"] for r in api(room, "/api/v1/challenges/tiny/dashboard?student=s03", token).get_json()] == ["s03"]
    assert api(room, "/api/v1/challenges/tiny/dashboard?status=lost", token).status_code == 400
    prof = Browser(room.app, "prof")
    html = prof.get("/instructor/challenges/tiny").get_data(as_text=True)
    assert "7 students on the leaderboard" in html
    assert prof.get("/instructor/challenges/tiny?status=failed").get_data(as_text=True).count("the model crashed") >= 1
    assert prof.get("/instructor/challenges/tiny?before=x").status_code == 400
