"""The API's own description: each view declares its body, query and responses with @spec, and the
OpenAPI document is generated from those declarations and Flask's URL map, so it cannot drift.

A view under /api/v1 without @spec makes the document fail to build (and the tests with it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import Flask, current_app, g, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from podium.server.errors import ApiError

PREFIX = "/api/v1"
MAX_ROW_ID = 2**31 - 1  # ids are INTEGER columns (32-bit on Postgres)
# Who may call an operation: nobody needs a token; a token is optional (more is shown with one); a token is
# required; a token of an instructor is required.
PUBLIC, OPTIONAL, TOKEN, INSTRUCTOR = "public", "optional", "token", "instructor"
ERROR_TEXT = {400: "Bad request", 401: "Missing, malformed or revoked token", 403: "Not allowed (role or window)",
              404: "Not found", 409: "Conflict with the current state", 413: "Too large",
              422: "Well-formed but invalid", 429: "Limit reached", 503: "Database or storage unavailable (Retry-After)",
              507: "Server storage is full"}


class Binary:
    """A response (or request) body that is a file, not JSON, in one of these media types."""

    def __init__(self, *media_types: str, description: str = "A file"):
        self.media_types, self.description = media_types, description


@dataclass
class Spec:
    """What one view declares about itself."""

    auth: str
    responses: dict                      # status -> pydantic model, list[model], Binary or None
    errors: tuple = ()
    body: type[BaseModel] | Binary | None = None
    body_media: str = "application/json"
    query: type[BaseModel] | None = None
    summary: str = ""
    extra: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)  # request header name -> OpenAPI parameter fields (schema, description)


def spec(*, auth: str = TOKEN, responses: dict, errors: tuple = (), body=None, body_media: str = "application/json",
         query: type[BaseModel] | None = None, headers: dict | None = None):
    """Declare a view's request and responses; body() and query() validate against them; headers are documented."""

    def wrap(view):
        declared = Spec(auth=auth, responses=responses, errors=tuple(errors), body=body, body_media=body_media,
                        query=query, summary=(view.__doc__ or "").strip().splitlines()[0] if view.__doc__ else "",
                        headers=dict(headers or {}))

        view.api_spec = declared
        return view

    return wrap


def _declared() -> Spec:
    return current_app.view_functions[request.endpoint].api_spec


def body():
    """The request body of the current call, validated against its view's declared model (400 when it fails)."""
    if "api_body" not in g:
        g.api_body = _validate(_declared().body, _json_or_form())
    return g.api_body


def query():
    """The query string of the current call, validated against its view's declared model (400 when it fails)."""
    if "api_query" not in g:
        g.api_query = _validate(_declared().query, request.args.to_dict())
    return g.api_query


def _json_or_form() -> dict:
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    raw = request.get_data()
    if not raw.strip():
        return {}  # no body: the model's defaults
    if not request.is_json:  # never guess: a body read as no fields would take every default
        raise ApiError(400, "bad_request", "send the body as JSON with 'Content-Type: application/json'")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the request body must be a well-formed JSON object")
    return data


def _validate(model: type[BaseModel], data: dict):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first.get("ctx", {}).get("error") or first["msg"])
        raise ApiError(400, "bad_request", message if first["type"] == "value_error" else f"{where}: {message}")


# ---------------------------------------------------------------- the document

_CONVERTER = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


def _expand(rule: str) -> list[tuple[str, list[dict]]]:
    """A Flask rule as OpenAPI paths with their path parameters; any(...) becomes one literal path each."""
    out = [("", [])]
    pos = 0
    for m in _CONVERTER.finditer(rule):
        literal = rule[pos:m.start()]
        conv, name = m["conv"] or "string", m["name"]
        if conv == "any":
            choices = [c.strip().strip("'\"") for c in m["args"].split(",")]
            out = [(p + literal + c, params) for p, params in out for c in choices]
        else:
            schema = {"type": "integer", "minimum": 0, "maximum": MAX_ROW_ID} if conv == "int" else {"type": "string"}
            param = {"name": name, "in": "path", "required": True, "schema": schema}
            out = [(p + literal + "{" + name + "}", params + [param]) for p, params in out]
        pos = m.end()
    return [(p + rule[pos:], params) for p, params in out]


class _Components:
    """Collects the pydantic models the operations name and turns them into components/schemas."""

    def __init__(self):
        self.models: dict[tuple, type[BaseModel]] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict:
        self.models[(model, mode)] = model
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def schema_of(self, target, mode: str) -> dict:
        if isinstance(target, type) and issubclass(target, BaseModel):
            return self.ref(target, mode)
        origin = getattr(target, "__origin__", None)
        if origin is list:
            return {"type": "array", "items": self.schema_of(target.__args__[0], mode)}
        raise TypeError(f"cannot describe {target!r}")

    def build(self) -> dict:
        _, defs = models_json_schema([(m, mode) for (m, mode) in self.models],
                                     ref_template="#/components/schemas/{model}")
        return defs.get("$defs", {})


def _content(target, components: _Components, mode: str) -> dict:
    if isinstance(target, Binary):
        return {m: {"schema": {"type": "string", "format": "binary"}} for m in target.media_types}
    return {"application/json": {"schema": components.schema_of(target, mode)}}


def _describe(target) -> str:
    if isinstance(target, Binary):
        return target.description
    model = getattr(target, "__args__", (target,))[0]
    doc = getattr(model, "__doc__", None) if target is not None else None
    return doc.strip().splitlines()[0] if doc else "Success"


def _operation(view, method: str, path: str, params: list[dict], components: _Components) -> dict:
    declared: Spec = view.api_spec
    op: dict = {"operationId": method + re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_"), "summary": declared.summary}
    if view.__doc__ and " ".join(view.__doc__.split()) != declared.summary:
        op["description"] = " ".join(view.__doc__.split())
    parameters = list(params)
    if declared.query is not None:
        schema = declared.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            parameters.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                               "schema": prop, **({"description": prop["description"]} if "description" in prop else {})})
    for name, fields in declared.headers.items():
        parameters.append({"name": name, "in": "header", "required": False, **fields})
    if parameters:
        op["parameters"] = parameters
    if declared.body is not None:
        if isinstance(declared.body, Binary):
            content = {m: {"schema": {"type": "string"}} for m in declared.body.media_types}
        else:
            content = {declared.body_media: {"schema": components.ref(declared.body, "validation")}}
        op["requestBody"] = {"required": declared.body_media != "application/json", "content": content}
    responses: dict = {}
    for status, target in declared.responses.items():
        entry = {"description": "Not modified since the ETag or date the client sent" if status == 304
                 else _describe(target)}
        if target is not None:
            entry["content"] = _content(target, components, "serialization")
        responses[str(status)] = entry
    codes = set(declared.errors) | {503}
    if declared.auth in (TOKEN, INSTRUCTOR, OPTIONAL):
        codes.add(401)
    if declared.auth == INSTRUCTOR:
        codes.add(403)
    if params:
        codes.add(404)  # also what an unroutable value (a slug with a slash, a negative id) gets
    if declared.body is not None or declared.query is not None:
        codes.add(400)
    error = {"application/json": {"schema": components.ref(Error, "serialization")}}
    for code in sorted(codes):
        responses[str(code)] = {"description": ERROR_TEXT[code], "content": error}
    op["responses"] = responses
    op["security"] = {PUBLIC: [], OPTIONAL: [{}, {"bearer": []}]}.get(declared.auth, [{"bearer": []}])
    return op


class ErrorDetail(BaseModel):
    """What went wrong, in a stable code and a sentence for people; some errors add fields (resets_at, ...)."""

    code: str
    message: str


class Error(BaseModel):
    """Every error answer: {"error": {"code", "message"}}."""

    error: ErrorDetail


def openapi_document(app: Flask) -> dict:
    """The OpenAPI 3.1 document of every route under /api/v1, from the views' @spec declarations."""
    components = _Components()
    paths: dict[str, dict] = {}
    missing = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "api_spec"):
            missing.append(rule.endpoint)
            continue
        for path, params in _expand(rule.rule[len(PREFIX):]):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                paths.setdefault(path, {})[method.lower()] = _operation(view, method.lower(), path, params,
                                                                            components)
    if missing:
        raise RuntimeError(f"API views without @spec: {', '.join(sorted(missing))}")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Podium API", "version": "1",
                 "description": "Grading service for classroom CNN challenges. Errors are "
                                "{\"error\": {\"code\", \"message\"}} with the HTTP status."},
        "servers": [{"url": PREFIX}],
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "an API token: podium token NAME, or the account page"}},
                       "schemas": components.build()},
    }
