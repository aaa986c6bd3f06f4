"""Upload endpoint: the right 4xx for every kind of bad request, never a 5xx (Flask test client, no worker)."""
from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.server.app import create_app
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes, small_cnn


@pytest.fixture(scope="module")
def app_and_tokens(tmp_path_factory):
    root = tmp_path_factory.mktemp("upload")
    tiny = write_tiny_bundle(root / "tiny", extra_toml="max_model_mb = 1\n")
    cfg = live.settings_for(root / "var")
    tokens = live.prepare_database(cfg, [tiny], {"alice": "student", "prof": "instructor"})
    app = create_app(cfg)
    app.testing = True
    return app, tokens


@pytest.fixture
def client(app_and_tokens):
    return app_and_tokens[0].test_client()


def _auth(app_and_tokens, name="alice"):
    return {"Authorization": f"Bearer {app_and_tokens[1][name]}"}


def _good_model() -> bytes:
    return scripted_bytes(small_cnn(in_shape=(1, 8, 8), num_classes=3))


def _post(client, headers, data, content_type="multipart/form-data", slug="tiny"):
    return client.post(f"/api/v1/challenges/{slug}/submissions", headers=headers, data=data, content_type=content_type)


def _error(resp):
    body = resp.get_json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
    return body["error"]


def test_good_upload_is_accepted(client, app_and_tokens):
    resp = _post(client, _auth(app_and_tokens), {"model": (io.BytesIO(_good_model()), "model.pt")})
    assert resp.status_code == 202
    assert resp.get_json()["status"] == "queued"


def test_missing_token_is_401(client):
    resp = _post(client, {}, {"model": (io.BytesIO(_good_model()), "model.pt")})
    assert resp.status_code == 401 and _error(resp)["code"] == "unauthorized"


def test_bad_token_is_401(client):
    resp = _post(client, {"Authorization": "Bearer nope"}, {"model": (io.BytesIO(b"x"), "m.pt")})
    assert resp.status_code == 401


def test_unknown_challenge_is_404(client, app_and_tokens):
    resp = _post(client, _auth(app_and_tokens), {"model": (io.BytesIO(_good_model()), "m.pt")}, slug="nope")
    assert resp.status_code == 404 and _error(resp)["code"] == "not_found"


def test_misnamed_field_is_400(client, app_and_tokens):
    resp = _post(client, _auth(app_and_tokens), {"file": (io.BytesIO(_good_model()), "m.pt")})
    assert resp.status_code == 400 and "'model'" in _error(resp)["message"]


def test_wrong_content_type_is_400(client, app_and_tokens):
    resp = _post(client, _auth(app_and_tokens), _good_model(), content_type="application/octet-stream")
    assert resp.status_code == 400 and _error(resp)["code"] == "bad_content_type"


def test_path_in_filename_is_400(client, app_and_tokens):
    resp = _post(client, _auth(app_and_tokens), {"model": (io.BytesIO(_good_model()), "../../etc/model.pt")})
    assert resp.status_code in (202, 400)  # werkzeug strips some paths itself; a kept path must be refused
    if resp.status_code == 400:
        assert _error(resp)["code"] == "bad_filename"


def test_oversize_is_413_before_storing(client, app_and_tokens):
    store_tmp = app_and_tokens[0].extensions["podium"].store.root / "tmp"
    before = set(store_tmp.glob("*")) if store_tmp.exists() else set()
    resp = _post(client, _auth(app_and_tokens), {"model": (io.BytesIO(b"\0" * (2 << 20)), "m.pt")})
    assert resp.status_code == 413 and _error(resp)["code"] == "too_large"
    after = set(store_tmp.glob("*")) if store_tmp.exists() else set()
    assert after <= before  # nothing left behind


def test_not_a_zip_is_422_with_advice(client, app_and_tokens):
    resp = _post(client, _auth(app_and_tokens), {"model": (io.BytesIO(b"\x80\x02garbage"), "m.pt")})
    assert resp.status_code == 422 and _error(resp)["code"] == "invalid_model"


def test_zip_without_torchscript_is_422(client, app_and_tokens):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "hi")
    resp = _post(client, _auth(app_and_tokens), {"model": (io.BytesIO(buf.getvalue()), "m.pt")})
    assert resp.status_code == 422


def test_empty_file_is_422(client, app_and_tokens):
    resp = _post(client, _auth(app_and_tokens), {"model": (io.BytesIO(b""), "m.pt")})
    assert resp.status_code == 422


def test_openapi_lists_the_contract(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in ("/challenges", "/challenges/{slug}", "/challenges/{slug}/submissions", "/submissions/{submission_id}",
                 "/challenges/{slug}/leaderboard"):
        assert path in doc["paths"]


def test_challenge_metadata_fields(client):
    data = client.get("/api/v1/challenges/tiny").get_json()
    for key in ("slug", "title", "summary", "kind", "labels", "input_shape", "metric", "opens_at", "deadline",
                "daily_limit", "max_model_mb", "time_limit_s", "links"):
        assert key in data
    assert client.get("/api/v1/challenges").get_json()[0]["slug"] == "tiny"


_header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=4096), content_type=st.one_of(
    st.just("multipart/form-data; boundary=xyz"), st.just("multipart/form-data"), _header_text),
    auth=st.one_of(st.none(), _header_text, st.just("valid")), slug=st.sampled_from(["tiny", "nope", "t%00"]))
def test_fuzz_upload_never_5xx(client, app_and_tokens, body, content_type, auth, slug):
    """Random bodies and headers get a 2xx or 4xx JSON answer, never a server error."""
    headers = {}
    if auth == "valid":
        headers.update(_auth(app_and_tokens))
    elif auth is not None:
        headers["Authorization"] = auth
    resp = client.post(f"/api/v1/challenges/{slug}/submissions", headers=headers, data=body,
                       content_type=content_type)
    assert resp.status_code < 500, resp.data[:300]
    if resp.status_code >= 400:
        _error(resp)


def _keyed(client, app_and_tokens, key, name="alice"):
    headers = dict(_auth(app_and_tokens, name), **{"Idempotency-Key": key})
    return _post(client, headers, {"model": (io.BytesIO(_good_model()), "m.pt")})


def _rows_with_key(app, key):
    from sqlalchemy import func, select

    from podium.core.models import Submission
    with app.extensions["podium"].db.session() as s:
        return s.scalar(select(func.count()).select_from(Submission).where(Submission.idempotency_key == key))


def test_same_idempotency_key_returns_the_first_submission(client, app_and_tokens):
    first = _keyed(client, app_and_tokens, "retry-test-1")
    again = _keyed(client, app_and_tokens, "retry-test-1")
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert _rows_with_key(app_and_tokens[0], "retry-test-1") == 1
    other = _keyed(client, app_and_tokens, "retry-test-2")
    assert other.status_code == 202 and other.get_json()["id"] != first.get_json()["id"]


def test_an_idempotency_key_is_kept_for_a_day(tmp_path):
    """A key answers its first submission for a day; past that, the same key makes a new one."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from podium.core.models import Submission
    from podium.server.submissions import IDEMPOTENCY_WINDOW
    app, tokens = _fresh_app(tmp_path)
    client = app.test_client()
    first = _keyed(client, (app, tokens), "day-key", name="alice").get_json()["id"]
    db = app.extensions["podium"].db
    with db.session() as s:  # the first upload was made just inside the window, then just outside it
        created = s.get(Submission, first).created_at
        s.execute(update(Submission).where(Submission.id == first)
                  .values(created_at=created - IDEMPOTENCY_WINDOW + timedelta(minutes=1)))
        s.commit()
    assert _keyed(client, (app, tokens), "day-key", name="alice").get_json()["id"] == first
    with db.session() as s:
        s.execute(update(Submission).where(Submission.id == first)
                  .values(created_at=created - IDEMPOTENCY_WINDOW - timedelta(minutes=1)))
        s.commit()
    later = _keyed(client, (app, tokens), "day-key", name="alice")
    assert later.status_code == 202 and later.get_json()["id"] != first
    with db.session() as s:
        assert len(s.scalars(select(Submission.id).where(Submission.idempotency_key == "day-key")).all()) == 2


def _fresh_app(tmp_path, extra_toml=""):
    tiny = write_tiny_bundle(tmp_path / "tiny", extra_toml=extra_toml)
    cfg = live.settings_for(tmp_path / "var")
    tokens = live.prepare_database(cfg, [tiny], {"alice": "student", "bob": "student"})
    return create_app(cfg), tokens


def test_idempotency_key_is_per_user(tmp_path):
    app, tokens = _fresh_app(tmp_path)
    client = app.test_client()
    mine = _keyed(client, (app, tokens), "shared-key", name="bob")
    theirs = _keyed(client, (app, tokens), "shared-key", name="alice")
    assert mine.status_code == theirs.status_code == 202
    assert mine.get_json()["id"] != theirs.get_json()["id"]


def test_a_retry_is_answered_before_the_limits(tmp_path):
    """Three uploads fill the pending cap (no worker runs here); a retry of the third still gets 202 and its id, not a 429."""
    app, tokens = _fresh_app(tmp_path)
    client = app.test_client()
    ids = [_keyed(client, (app, tokens), f"cap-key-{i}").get_json()["id"] for i in range(3)]
    assert _keyed(client, (app, tokens), "another-key").status_code == 429
    again = _keyed(client, (app, tokens), "cap-key-2")
    assert again.status_code == 202 and again.get_json()["id"] == ids[2]


@pytest.mark.parametrize("key", ["", "x" * 65, "bad key", "a/b"])
def test_malformed_idempotency_key_is_400(client, app_and_tokens, key):
    resp = _keyed(client, app_and_tokens, key)
    assert resp.status_code == 400 and _error(resp)["code"] == "bad_idempotency_key"


def test_openapi_documents_the_idempotency_key(client):
    op = client.get("/api/v1/openapi.json").get_json()["paths"]["/challenges/{slug}/submissions"]["post"]
    header = next(p for p in op["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key" and header["schema"]["pattern"] == "^[A-Za-z0-9._:-]{1,64}$"
