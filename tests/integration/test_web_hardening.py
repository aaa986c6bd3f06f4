"""Web-layer findings of the security review, each driven through the real app on a real database."""
from __future__ import annotations

import csv
import io
from urllib.parse import quote, urljoin, urlsplit

import pytest
from sqlalchemy import select

from podium.core.models import Course, User
from tests.support import live
from tests.support.classroom import CSRF_RE, Browser, Classroom


@pytest.fixture(scope="module")
def template_room(tmp_path_factory) -> Classroom:
    return Classroom(tmp_path_factory.mktemp("hardening-template"))


@pytest.fixture
def room(tmp_path, template_room) -> Classroom:
    return Classroom(tmp_path, template=template_room)


def _as_browser_reads(location: str, base: str = "http://localhost/login") -> str:
    """The host a browser goes to for this Location: it drops tabs and newlines and reads '\\' as '/'."""
    cleaned = "".join(ch for ch in location if ch not in "\t\r\n").replace("\\", "/")
    return urlsplit(urljoin(base, cleaned)).netloc


# ---------------------------------------------------------------- open redirect after login (finding 3)

BYPASSES = ["/%09/evil.example", "/%5Cevil.example", "/\\evil.example", "%5C%5Cevil.example", "///evil.example",
            "////evil.example", "/%0d%0a/evil.example", "/%0a/evil.example", "/%0D%0ALocation:%20http://evil.example",
            "/\uff0e\uff0e/evil.example", "/\uff0f/evil.example", "\uff0f\uff0fevil.example", "//evil.example",
            "https://evil.example", "http:/evil.example", "/%20/evil.example", "javascript:alert(1)",
            " /\t/evil.example", "/\x00/evil.example", "/%E3%80%82/evil.example"]


@pytest.mark.parametrize("target", BYPASSES)
def test_login_never_redirects_off_site(room, target):
    browser = Browser(room.app)
    browser.csrf()
    query = target if "%" in target else quote(target, safe="/:")
    resp = browser.client.post(f"/login?next={query}", data={"username": "alice", "csrf_token": browser.token,
                                                              "password": live.password_for("alice")})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert _as_browser_reads(resp.headers["Location"]) == "localhost", resp.headers["Location"]


@pytest.mark.parametrize("target", ["/challenges/tiny", "/challenges/tiny?tab=mine#top", "/account"])
def test_login_follows_a_same_site_next(room, target):
    browser = Browser(room.app)
    browser.csrf()
    resp = browser.client.post("/login", query_string={"next": target},
                               data={"username": "alice", "password": live.password_for("alice"),
                                     "csrf_token": browser.token})
    assert resp.status_code == 302 and resp.headers["Location"] == target


# ---------------------------------------------------------------- formula injection in CSV exports (finding 4)

FORMULAS = ['=HYPERLINK("http://evil.example/","Grade")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", " =1+1"]


def _csv_rows(resp) -> list[list[str]]:
    assert resp.status_code == 200 and resp.mimetype == "text/csv", resp.get_data(as_text=True)
    return list(csv.reader(io.StringIO(resp.get_data(as_text=True))))


def test_csv_exports_neutralise_formulas_from_profiles_and_the_roster(room):
    with room.session() as s:
        course = Course(name="Course", join_code="FORMULA1")
        s.add(course)
        s.flush()
        course_id = course.id
        alice = room.user(s, "alice")
        alice.display_name, alice.email, alice.course_id = FORMULAS[0], FORMULAS[1], course.id
        room.challenge(s).course_id = course.id
    room.add_scored("alice", 0.7, 0.6)
    prof = Browser(room.app, "prof")
    quoted = ['"' + name.replace('"', '""') + '"' for name in FORMULAS[2:]]
    roster = "username,display name,email\n" + "".join(f"carol{i},{q},c{i}@uni.example\n" for i, q in enumerate(quoted))
    assert "Added 5," in prof.post(f"/instructor/courses/{course_id}", {"csv": roster}).get_data(as_text=True)
    api = {"Authorization": f"Bearer {room.tokens['prof']}"}
    exports = [prof.get("/instructor/challenges/tiny/grades.csv"), prof.get("/instructor/challenges/tiny/leaderboard.csv"),
               room.app.test_client().get("/api/v1/challenges/tiny/grades.csv", headers=api),
               room.app.test_client().get("/api/v1/challenges/tiny/leaderboard.csv", headers=api)]
    for resp in exports:
        rows = _csv_rows(resp)
        cells = [c for row in rows for c in row]
        assert not [c for c in cells if c.lstrip(" ").startswith(("=", "+", "@", "\t", "\r"))], rows
        assert not [c for c in cells if c.startswith("-") and not c[1:].replace(".", "", 1).isdigit()], rows
    for resp in exports[::2]:  # the grade sheets keep every value, shown as text
        cells = {c for row in _csv_rows(resp) for c in row}
        assert {"'" + f.strip() for f in FORMULAS} <= cells, cells


# ---------------------------------------------------------------- passwords, throttling, timing (finding 5)

WEAK = ["password", "12345678", "aaaaaaaa", "aaaaaaaaaaaa", "abababababab", "qwertyuiop", "password123",
        "1234567890", "carol-ng"]


def _join_code(room) -> str:
    from podium.server.courses import create_course
    with room.session() as s:
        return create_course(s, "Policy course").join_code


@pytest.mark.parametrize("weak", WEAK)
def test_registration_refuses_weak_passwords(room, weak):
    page = Browser(room.app).post("/register", {"join_code": _join_code(room), "username": "carol", "password": weak})
    assert page.status_code == 200 and "flash-error" in page.get_data(as_text=True)
    with room.session() as s:
        assert room.user(s, "carol") is None


def test_registration_refuses_the_username_as_password(room):
    page = Browser(room.app).post("/register", {"join_code": _join_code(room), "username": "carolinexx",
                                                "password": "CarolineXX"})
    assert "must not be your username" in page.get_data(as_text=True)


@pytest.mark.parametrize("good", ["grade-the-models", "train-a-small-cnn", "correct horse battery staple"])
def test_registration_accepts_passphrases(room, good):
    resp = Browser(room.app).post("/register", {"join_code": _join_code(room), "username": "carol", "password": good})
    assert resp.status_code == 302
    assert Browser(room.app).login("carol", good).status_code == 302


def test_password_change_follows_the_policy(room):
    alice = Browser(room.app, "alice")
    page = alice.post("/account/password", {"current": live.password_for("alice"), "new": "password123"},
                      follow_redirects=True).get_data(as_text=True)
    assert "most common" in page
    assert Browser(room.app).login("alice", live.password_for("alice")).status_code == 302


def test_cli_user_add_follows_the_policy(room):
    from click.testing import CliRunner

    from podium.cli.main import cli
    env = {"PODIUM_DATA_DIR": str(room.settings.data_dir), "PODIUM_DATABASE_URL": room.settings.database_url}
    weak = CliRunner().invoke(cli, ["user", "add", "dave", "--password", "password"], env=env)
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    ok = CliRunner().invoke(cli, ["user", "add", "dave", "--password", "grade-the-models"], env=env)
    assert ok.exit_code == 0, ok.output


def _wrong(browser, username: str = "alice"):
    return browser.post("/login", {"username": username, "password": "not-the-password"})


def test_failed_logins_per_account_get_429_then_even_the_right_password_waits(room):
    from podium.server.throttle import ACCOUNT_FAILURES
    allowed = int(ACCOUNT_FAILURES.split()[0])
    for i in range(allowed):  # each from a different browser: the account's count is what stops them
        assert _wrong(Browser(room.app)).status_code == 200, i
    refused = Browser(room.app).login("alice", live.password_for("alice"))
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Too many attempts" in refused.get_data(as_text=True)
    assert Browser(room.app).login("bob", live.password_for("bob")).status_code == 302  # another account is not held
    assert _wrong(Browser(room.app), "ALICE").status_code == 429  # the username's case makes no fresh key


def test_failed_logins_per_address_get_429_across_accounts(room):
    from podium.server.throttle import ADDRESS_FAILURES
    browser = Browser(room.app)
    for i in range(int(ADDRESS_FAILURES.split()[0])):
        assert _wrong(browser, f"nobody{i}").status_code == 200, i
    refused = browser.login("bob", live.password_for("bob"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_successful_logins_do_not_count(room):
    for _ in range(15):
        assert Browser(room.app).login("alice", live.password_for("alice")).status_code == 302


def test_failed_password_changes_are_throttled(room):
    alice = Browser(room.app, "alice")
    for _ in range(10):
        alice.post("/account/password", {"current": "wrong-current", "new": "grade-the-models"})
    refused = alice.post("/account/password", {"current": live.password_for("alice"), "new": "grade-the-models"})
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_an_unknown_username_costs_a_password_hash_like_a_known_one(room, monkeypatch):
    """Timing: the failure path hashes once whether the user exists or not (measured by python -m bench.login_timing)."""
    import podium.server.auth as auth
    calls = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: calls.append(h) or real(h, p))
    with room.session() as s:
        assert auth.authenticate(s, "alice", "wrong-password-here") is None
        assert auth.authenticate(s, "no-such-user", "wrong-password-here") is None
        s.add(User(username="rostered", role="student"))
        s.flush()
        assert auth.authenticate(s, "rostered", "wrong-password-here") is None  # unclaimed: no password yet
    assert len(calls) == 3 and all(h.startswith("scrypt:") for h in calls)


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(tmp_path, template_room):
    spoofed = Classroom(tmp_path / "direct", template=template_room)
    for i in range(50):
        assert _wrong(Browser(spoofed.app), f"nobody{i}").status_code == 200
    spoof = Browser(spoofed.app)
    spoof.csrf()
    resp = spoof.client.post("/login", data={"username": "x", "password": "y", "csrf_token": spoof.token},
                             headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status_code == 429  # a header anyone can send does not make a fresh address

    proxied = Classroom(tmp_path / "proxied", template=template_room)
    from podium.server.app import create_app
    proxied.app = create_app(proxied.settings.with_(trusted_proxies=1))
    for i in range(50):
        browser = Browser(proxied.app)
        browser.csrf()
        browser.client.post("/login", data={"username": f"n{i}", "password": "y", "csrf_token": browser.token},
                            headers={"X-Forwarded-For": "203.0.113.9"})
    other = Browser(proxied.app)
    other.csrf()
    resp = other.client.post("/login", data={"username": "bob", "password": live.password_for("bob"),
                                             "csrf_token": other.token}, headers={"X-Forwarded-For": "198.51.100.7"})
    assert resp.status_code == 302  # the proxy's client 203.0.113.9 is held, not this one


# ---------------------------------------------------------------- revocable sessions (finding 6)

def _replay(room, cookie: str):
    """A new browser holding a copy of a session cookie."""
    thief = room.app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def test_a_session_cookie_replayed_after_logout_is_signed_out(room):
    alice = Browser(room.app, "alice")
    copied = alice.client.get_cookie("session").value
    assert _replay(room, copied).get("/account").status_code == 200
    assert _replay(room, copied).get("/api/v1/challenges/tiny/submissions").status_code == 200
    assert alice.post("/logout").status_code == 302
    assert _replay(room, copied).get("/account").status_code == 302
    assert _replay(room, copied).get("/api/v1/challenges/tiny/submissions").status_code == 401


def test_a_password_change_ends_every_other_session(room):
    laptop, phone = Browser(room.app, "alice"), Browser(room.app, "alice")
    laptop.csrf("/account")
    page = laptop.post("/account/password", {"current": live.password_for("alice"), "new": "grade-the-models"},
                       follow_redirects=True).get_data(as_text=True)
    assert "password is changed" in page
    assert laptop.get("/account").status_code == 200  # the browser that changed it stays signed in
    assert phone.get("/account").status_code == 302
    assert phone.get("/api/v1/challenges/tiny/submissions").status_code == 401


def test_an_instructor_signs_a_student_out_everywhere(room):
    with room.session() as s:
        course = Course(name="Course", join_code="SIGNOUT1")
        s.add(course)
        s.flush()
        alice = room.user(s, "alice")
        alice.course_id, ids = course.id, (course.id, alice.id)
    student = Browser(room.app, "alice")
    prof = Browser(room.app, "prof")
    page = prof.get(f"/instructor/courses/{ids[0]}").get_data(as_text=True)
    assert "sign out everywhere" in page
    resp = prof.post(f"/instructor/courses/{ids[0]}/students/{ids[1]}/sign-out")
    assert resp.status_code == 303
    assert student.get("/account").status_code == 302
    assert Browser(room.app, "alice").get("/account").status_code == 200  # signing in again works


def test_login_rotates_the_session_and_the_csrf_token(room):
    browser = Browser(room.app)
    before = browser.csrf("/login")
    anon_cookie = browser.client.get_cookie("session").value
    assert browser.login("alice", live.password_for("alice")).status_code == 302
    assert browser.client.get_cookie("session").value != anon_cookie
    stale = browser.client.post("/account/alias", data={"alias": "Night Owl", "csrf_token": before})
    assert stale.status_code == 400  # the token from before the login no longer counts
    fresh = browser.csrf("/account")
    assert fresh != before
    assert browser.post("/account/alias", {"alias": "Night Owl"}).status_code == 302
    # The anonymous cookie (one an attacker could have planted) is not signed in by the login.
    assert _replay(room, anon_cookie).get("/account").status_code == 302


# ---------------------------------------------------------------- security headers (finding 9)

def _pages(room) -> dict[str, Browser]:
    sub = room.add_scored("alice", 0.7, 0.6)
    alice, prof = Browser(room.app, "alice"), Browser(room.app, "prof")
    anon = Browser(room.app)
    return {"/": anon, "/login": anon, "/register": anon, "/challenges/tiny": alice, "/challenges/tiny/leaderboard": anon,
            "/account": alice, f"/submissions/{sub}": alice, "/instructor/": prof, "/instructor/challenges/tiny": prof,
            "/instructor/challenges/new": prof, "/instructor/lti/": prof}


def test_every_page_sends_the_security_headers_and_has_no_inline_script(room):
    import re
    for path, browser in _pages(room).items():
        resp = browser.get(path)
        assert resp.status_code == 200, path
        csp = resp.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'" and directives["object-src"] == "'none'", csp
        assert directives["frame-ancestors"] == "'self'", csp
        assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in resp.headers  # development: plain http
        html = resp.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path  # every script is a file
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no inline event handlers
        assert "javascript:" not in html, path
    assert "Content-Security-Policy" in Browser(room.app).get("/api/v1/challenges").headers


def test_production_sets_secure_cookies_and_hsts(tmp_path, template_room):
    from podium.server.app import create_app
    prod = Classroom(tmp_path, template=template_room)
    prod.app = create_app(prod.settings.with_(env="production", secret_key="s" * 40))
    browser = Browser(prod.app)
    resp = browser.client.get("/login", base_url="https://podium.example")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    browser.token = CSRF_RE.search(resp.get_data(as_text=True)).group(1)
    login = browser.client.post("/login", base_url="https://podium.example", data={
        "username": "alice", "password": live.password_for("alice"), "csrf_token": browser.token},
        headers={"Referer": "https://podium.example/login"})  # same-origin: Referrer-Policy keeps it
    assert login.status_code == 302
    cookie = login.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# ---------------------------------------------------------------- length and character limits (finding 7)

@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_room(request, tmp_path_factory):
    """A classroom on SQLite and one on Postgres: the limits must answer the same on both."""
    if request.param == "sqlite":
        yield Classroom(tmp_path_factory.mktemp("limits-sqlite"))
        return
    live.require_postgres_and_redis()
    with live.fresh_postgres_db() as url:
        room = Classroom(tmp_path_factory.mktemp("limits-pg"), database_url=url)
        yield room
        room.db.dispose()


TOO_LONG = [("display_name", "N" * 101, "at most 100 characters"), ("email", "a" * 250 + "@uni.example", "at most 254"),
            ("display_name", "Eve\u202egnp.exe", "control or invisible"), ("email", "not an email", "name@example.org"),
            ("display_name", "Line\nbreak", "control or invisible")]


@pytest.mark.parametrize("field,value,message", TOO_LONG)
def test_registration_limits_names_and_emails(any_db_room, field, value, message):
    room = any_db_room
    code = _join_code(room)
    form = {"join_code": code, "username": f"u{abs(hash(value)) % 10**8}", "password": "grade-the-models", field: value}
    page = Browser(room.app).post("/register", form)
    assert page.status_code == 200 and message in page.get_data(as_text=True)
    with room.session() as s:
        assert room.user(s, form["username"]) is None


def test_the_longest_allowed_values_fit_on_both_databases(any_db_room):
    room = any_db_room
    name, mail = "Ñ" * 100, "a" * 240 + "@uni.example"
    resp = Browser(room.app).post("/register", {"join_code": _join_code(room), "username": "longest",
                                                "password": "grade-the-models", "display_name": name, "email": mail})
    assert resp.status_code == 302
    with room.session() as s:
        user = room.user(s, "longest")
        assert (user.display_name, user.email) == (name, mail)


def test_instructor_texts_have_limits_too(any_db_room):
    room = any_db_room
    prof = Browser(room.app, "prof")
    page = prof.post("/instructor/courses", {"name": "C" * 201}, follow_redirects=True).get_data(as_text=True)
    assert "at most 200 characters" in page
    course_id = int(prof.post("/instructor/courses", {"name": "Limits"}).headers["Location"].rsplit("/", 1)[1])
    roster = f"username,name,email\nlonguser,{'x' * 5000},l@uni.example\nfine,Fine Name,f@uni.example\n"
    page = prof.post(f"/instructor/courses/{course_id}", {"csv": roster}).get_data(as_text=True)
    assert "line 2: the display name may have at most 100 characters" in page and "Added 1," in page
    api = {"Authorization": f"Bearer {room.tokens['prof']}"}
    resp = room.app.test_client().post("/api/v1/users/bob/disqualify", json={"reason": "r" * 1001}, headers=api)
    assert resp.status_code == 400 and "1000 characters" in resp.json["error"]["message"]
    resp = room.app.test_client().post("/api/v1/users/bob/disqualify", json={"reason": "a\x00b"}, headers=api)
    assert resp.status_code == 422 and resp.json["error"]["code"] == "invalid_field"
    alice = Browser(room.app, "alice")
    page = alice.post("/account/tokens", {"label": "L" * 101}, follow_redirects=True).get_data(as_text=True)
    assert "at most 100 characters" in page


# ---------------------------------------------------------------- small bodies for anonymous requests (finding 8)

def _multipart_body(size: int) -> tuple[str, bytes]:
    boundary = "podiumboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"big.bin\"\r\n\r\n").encode()
    body += b"x" * size + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def test_an_anonymous_body_past_the_small_limit_is_refused_unread(room):
    ctype, body = _multipart_body(200 * 1024)
    for path, status in (("/login", 413), ("/register", 413), ("/lti/launch", 413), ("/instructor/courses", 413),
                         ("/api/v1/challenges/tiny/submissions", 401)):  # the API asks who it is first
        resp = room.app.test_client().post(path, data=body, content_type=ctype)
        assert resp.status_code == status, (path, resp.status_code)
    ctype, small = _multipart_body(1024)
    assert room.app.test_client().post("/login", data=small, content_type=ctype).status_code == 400  # CSRF, read


def test_a_signed_in_instructor_still_uploads_a_large_form(room):
    prof = Browser(room.app, "prof")
    prof.csrf("/instructor/challenges/new")
    big = io.BytesIO(b"PK" + b"\0" * (300 * 1024))  # not a real bundle: refused by its content, not its size
    page = prof.client.post("/instructor/challenges/new", data={"csrf_token": prof.token, "bundle": (big, "b.zip")},
                            content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "The bundle was refused" in page


# ---------------------------------------------------------------- no 5xx for the review's inputs (finding 10)

def _bundle_zip(tmp_path) -> bytes:
    import zipfile

    from tests.support.bundles import write_tiny_bundle
    folder = write_tiny_bundle(tmp_path / "b", slug="zipped")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def _publish(prof, data: bytes):
    prof.csrf("/instructor/challenges/new")
    return prof.client.post("/instructor/challenges/new", content_type="multipart/form-data",
                            data={"csrf_token": prof.token, "bundle": (io.BytesIO(data), "bundle.zip")})


def test_a_student_never_gets_a_5xx_from_the_reported_inputs(room):
    api = {"Authorization": f"Bearer {room.tokens['alice']}"}
    assert room.app.test_client().get("/api/v1/submissions/99999999999999999999", headers=api).status_code == 404
    assert Browser(room.app, "alice").get("/submissions/99999999999999999999").status_code == 404
    browser = Browser(room.app)
    browser.csrf()
    resp = browser.client.post("/login?next=/%0d%0aSet-Cookie:%20x=1", data={
        "username": "alice", "password": live.password_for("alice"), "csrf_token": browser.token})
    assert resp.status_code == 302 and "\n" not in resp.headers["Location"]


@pytest.mark.parametrize("form", [
    {"deadline": "9999-12-31T23:59:59-14:00"},
    {"opens_at": "0001-01-01T00:00:00+14:00"},
    {"deadline": "2026-06-01T12:00", "tz_offset": "99999999999999999999"},
    {"deadline": "2026-06-01T12:00", "tz_offset": "-1440"},
    {"deadline": "2026-06-01T12:00", "tz_offset": "abc"},
    {"deadline": "not a date"},
    {"course_id": "999999"},
])
def test_challenge_settings_refuse_impossible_values_without_a_5xx(room, form):
    prof = Browser(room.app, "prof")
    resp = prof.post("/instructor/challenges/tiny/settings", form, follow_redirects=True)
    assert resp.status_code == 200 and "Not saved" in resp.get_data(as_text=True)


def test_api_settings_refuse_a_deadline_past_the_last_storable_time(room):
    api = {"Authorization": f"Bearer {room.tokens['prof']}"}
    resp = room.app.test_client().patch("/api/v1/challenges/tiny", json={"deadline": "9999-12-31T23:59:59-14:00"},
                                        headers=api)
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)


@pytest.mark.parametrize("roster", ["username,name,email\nann,Ann\rMarie,a@uni.example\n",
                                    "username,name,email\rann,Ann,a@uni.example\r",
                                    'username,name,email\nann,"Ann\nMarie",a@uni.example\n',
                                    "username,name,email\nann,\"unclosed,a@uni.example\n", "\x00\x00\n"])
def test_roster_csv_with_stray_newlines_is_imported_or_refused_without_a_5xx(room, roster):
    prof = Browser(room.app, "prof")
    course_id = int(prof.post("/instructor/courses", {"name": "Newlines"}).headers["Location"].rsplit("/", 1)[1])
    assert prof.post(f"/instructor/courses/{course_id}", {"csv": roster}).status_code == 200
    api = {"Authorization": f"Bearer {room.tokens['prof']}", "Content-Type": "text/csv"}
    resp = room.app.test_client().post(f"/api/v1/courses/{course_id}/roster", data=roster, headers=api)
    assert resp.status_code < 500, resp.get_data(as_text=True)


def test_a_bundle_with_a_bad_crc_is_refused(room, tmp_path):
    import zipfile
    data = bytearray(_bundle_zip(tmp_path))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF  # damage the compressed bytes of the largest entry
    page = _publish(Browser(room.app, "prof"), bytes(data))
    assert page.status_code == 200 and "The bundle was refused" in page.get_data(as_text=True)


def test_a_bundle_with_a_symlink_used_as_a_folder_is_refused(room, tmp_path):
    import stat
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_bundle_zip(tmp_path))) as src, zipfile.ZipFile(buf, "w") as zf:
        for info in src.infolist():
            zf.writestr(info, src.read(info))
        link = zipfile.ZipInfo("data")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc")
        zf.writestr("data/passwd", "x")
    page = _publish(Browser(room.app, "prof"), buf.getvalue())
    assert page.status_code == 200 and "The bundle was refused" in page.get_data(as_text=True)
    api = {"Authorization": f"Bearer {room.tokens['prof']}"}
    resp = room.app.test_client().post("/api/v1/challenges", headers=api, content_type="multipart/form-data",
                                       data={"bundle": (io.BytesIO(buf.getvalue()), "bundle.zip")})
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)


# ---------------------------------------------------------------- roster claims (finding 11)

def _roster_course(room) -> tuple[str, str]:
    """A course with an imported unclaimed entry 'ada' (email ada@uni.example); answers (join code, claim code)."""
    prof = Browser(room.app, "prof")
    location = prof.post("/instructor/courses", {"name": "Roster"}).headers["Location"]
    page = prof.post(location, {"csv": "username,name,email\nada,Ada Lovelace,ada@uni.example\n"}).get_data(as_text=True)
    with room.session() as s:
        course = s.get(Course, int(location.rsplit("/", 1)[1]))
        code, claim = course.join_code, room.user(s, "ada").claim_code
    assert claim and f">{claim}<" in page  # the instructor sees the code to hand out
    return code, claim


def _error(page) -> str:
    import re
    return re.search(r'class="flash flash-error"[^>]*>([^<]*)<', page.get_data(as_text=True)).group(1)


def test_knowing_a_roster_username_and_email_no_longer_claims_it(room):
    code, _ = _roster_course(room)
    page = Browser(room.app).post("/register", {"join_code": code, "username": "ADA", "email": "ADA@uni.example",
                                                "password": "grade-the-models"})
    assert page.status_code == 200
    with room.session() as s:
        assert room.user(s, "ada").password_hash is None


def test_registration_errors_do_not_tell_roster_entries_from_other_accounts(room):
    code, _ = _roster_course(room)
    without_code = {name: _error(Browser(room.app).post("/register", {
        "join_code": code, "username": name, "password": "grade-the-models", "email": "ada@uni.example"}))
        for name in ("ada", "alice", "prof")}  # unclaimed roster entry, a student's account, an instructor's
    assert len(set(without_code.values())) == 1, without_code
    assert "roster" not in next(iter(without_code.values()))
    wrong_code = {name: _error(Browser(room.app).post("/register", {
        "join_code": code, "username": name, "password": "grade-the-models", "claim_code": "ABCD2345"}))
        for name in ("ada", "alice", "prof", "nobody-at-all")}
    assert len(set(wrong_code.values())) == 1, wrong_code


def test_the_claim_code_claims_the_entry_once(room):
    code, claim = _roster_course(room)
    assert Browser(room.app).post("/register", {"join_code": code, "username": "ada", "claim_code": claim.lower(),
                                                "password": "grade-the-models"}).status_code == 302
    assert Browser(room.app).login("ada", "grade-the-models").status_code == 302
    again = Browser(room.app).post("/register", {"join_code": code, "username": "ada", "claim_code": claim,
                                                 "password": "train-a-small-cnn"})
    assert again.status_code == 200
    assert Browser(room.app).login("ada", "grade-the-models").status_code == 302  # unchanged


# ---------------------------------------------------------------- smaller findings (12)

def test_absolute_links_come_from_the_public_url_not_the_host_header(tmp_path, template_room):
    from podium.server.app import create_app
    room = Classroom(tmp_path, template=template_room)
    room.app = create_app(room.settings.with_(public_url="https://podium.school.example"))
    prof = Browser(room.app, "prof")
    course_id = int(prof.post("/instructor/courses", {"name": "Links"}).headers["Location"].rsplit("/", 1)[1])
    prof.client.set_cookie("session", prof.client.get_cookie("session").value, domain="evil.example")
    page = prof.client.get(f"/instructor/courses/{course_id}", base_url="http://evil.example").get_data(as_text=True)
    assert "https://podium.school.example/register?code=" in page and "evil.example" not in page
    links = room.app.test_client().get("/api/v1/challenges/tiny", base_url="http://evil.example").json["links"]
    assert links["page"] == "https://podium.school.example/challenges/tiny"
    assert all(v is None or v.startswith("https://podium.school.example/") for v in links.values()), links


def test_metrics_need_the_token_or_a_local_client(tmp_path, template_room):
    from podium.server.app import create_app
    room = Classroom(tmp_path, template=template_room)
    remote = {"REMOTE_ADDR": "203.0.113.5"}
    assert room.app.test_client().get("/metrics", environ_base=remote).status_code == 401
    assert room.app.test_client().get("/metrics").status_code == 200  # from this host
    room.app = create_app(room.settings.with_(metrics_token="scrape-me-0123456789"))
    client = room.app.test_client()
    assert client.get("/metrics").status_code == 401  # with a token set, even a local client needs it
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}, environ_base=remote).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}, environ_base=remote)
    assert ok.status_code == 200 and b"podium_submissions" in ok.data


def test_readme_images_only_from_this_site_or_data_urls(room):
    from podium.server.markdown_render import render_markdown
    html = render_markdown("![a](https://evil.example/t.png) ![b](//evil.example/t.png) ![c](/static/ok.png) "
                           "![d](data:image/png;base64,iVBORw0KGgo=) <img src=\"http://evil.example/p.gif\"> "
                           "<img src=\"/\\evil.example/x.png\"> [e](data:text/html;base64,PHNjcmlwdD4=)")
    assert "evil.example" not in html
    assert 'src="/static/ok.png"' in html and 'src="data:image/png;base64,iVBORw0KGgo="' in html
    assert 'href="data:' not in html
    with room.session() as s:
        room.challenge(s).readme = "![tracker](https://evil.example/pixel.gif)"
    assert "evil.example" not in Browser(room.app).get("/challenges/tiny").get_data(as_text=True)


@pytest.mark.parametrize("content_type,body", [("application/json", '{"final": fals'),
                                               ("application/json", "[true]"),
                                               ("text/plain", '{"final": false}'), (None, "garbage")])
def test_malformed_final_bodies_answer_400_and_change_nothing(room, content_type, body):
    sub = room.add_scored("alice", 0.5, 0.5)
    headers = {"Authorization": f"Bearer {room.tokens['alice']}"}
    if content_type:
        headers["Content-Type"] = content_type
    resp = room.app.test_client().post(f"/api/v1/submissions/{sub}/final", data=body, headers=headers)
    assert resp.status_code == 400 and resp.json["error"]["code"] == "bad_request"
    with room.session() as s:
        from podium.core.models import Submission
        assert s.get(Submission, sub).is_final is False


def test_a_token_records_when_it_was_last_used(room):
    from podium.core.models import ApiToken
    alice = Browser(room.app, "alice")
    assert "never" in alice.get("/account").get_data(as_text=True)
    api = {"Authorization": f"Bearer {room.tokens['alice']}"}
    assert room.app.test_client().get("/api/v1/challenges/tiny/submissions", headers=api).status_code == 200
    with room.session() as s:
        used = s.scalars(select(ApiToken.last_used_at)).all()
    assert [u for u in used if u is not None], used
    assert "never" not in alice.get("/account").get_data(as_text=True).split("API tokens")[1]
