"""Upload endpoint: the right 4xx for every kind of bad request, never a 5xx (Flask test client, no worker)."""
from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from server.app import create_app
from tests import live
from tests.conftest import write_tiny_bundle
from tests.models import scripted_bytes, small_cnn


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
    for path in ("/challenges", "/challenges/{slug}", "/challenges/{slug}/submissions", "/submissions/{id}",
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
