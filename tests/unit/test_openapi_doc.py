"""The OpenAPI document is generated from the views' declarations: every /api/v1 route is in it, fully described."""
from __future__ import annotations

import pytest
from flask import Blueprint

from podium.server.api.spec import PREFIX, openapi_document
from podium.server.app import create_app
from tests.support import live


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(live.settings_for(tmp_path_factory.mktemp("doc") / "var"))


def test_every_api_route_and_method_is_described(app):
    doc = openapi_document(app)
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/") and "<any(" not in rule.rule:
            path = rule.rule[len(PREFIX):].replace("<int:", "<").replace("<", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in described
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"], (method, path)
            assert "401" in op["responses"] or op["security"] == [], (method, path)
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"]}


def test_request_bodies_and_parameters_come_from_the_views(app):
    doc = openapi_document(app)
    upload = doc["paths"]["/challenges/{slug}/submissions"]["post"]
    assert upload["requestBody"]["content"]["multipart/form-data"]["schema"] == {"$ref": "#/components/schemas/ModelUpload"}
    assert {"202", "400", "401", "404", "413", "422", "429", "507"} <= set(upload["responses"])
    sub = doc["paths"]["/submissions/{submission_id}"]["get"]
    assert sub["parameters"][0]["schema"]["type"] == "integer"
    schemas = doc["components"]["schemas"]
    assert schemas["Submission"]["additionalProperties"] is False  # an undeclared field fails the schema check
    assert set(schemas["ModelUpload"]["properties"]) == {"model"}


def test_a_view_without_a_declaration_breaks_the_document(app, tmp_path):
    other = create_app(live.settings_for(tmp_path / "var"))
    extra = Blueprint("extra", __name__, url_prefix=PREFIX)
    extra.add_url_rule("/undeclared", "undeclared", lambda: "")
    other.register_blueprint(extra)
    with pytest.raises(RuntimeError, match="extra.undeclared"):
        openapi_document(other)
