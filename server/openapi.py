"""The OpenAPI 3 document served at /api/v1/openapi.json."""
from __future__ import annotations

_ERROR = {"$ref": "#/components/schemas/Error"}


def _resp(description: str, schema: dict | None = None) -> dict:
    body = {"description": description}
    if schema:
        body["content"] = {"application/json": {"schema": schema}}
    return body


def _errors(*codes: int) -> dict:
    names = {400: "Bad request", 401: "Missing or bad token", 403: "Not allowed now", 404: "Not found",
             409: "Conflict", 413: "Too large", 422: "Invalid model", 429: "Limit reached", 503: "Unavailable"}
    return {str(c): _resp(names[c], _ERROR) for c in codes}


def openapi_document() -> dict:
    """Build the document (paths, schemas, bearer security)."""
    slug = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
    sub_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Podium API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Challenge": {"type": "object", "properties": {k: {} for k in (
                    "slug", "title", "summary", "kind", "labels", "input_shape", "metric", "opens_at", "deadline",
                    "daily_limit", "max_model_mb", "time_limit_s", "feature_recipe", "links")}},
                "Submission": {"type": "object", "required": ["id", "challenge", "status"], "properties": {
                    "id": {"type": "integer"}, "challenge": {"type": "string"},
                    "status": {"type": "string", "enum": ["queued", "running", "scored", "failed"]},
                    "public_score": {"type": "number", "nullable": True},
                    "private_score": {"type": "number", "nullable": True},
                    "error": {"type": "string", "nullable": True},
                    "created_at": {"type": "string"}, "started_at": {"type": "string", "nullable": True},
                    "finished_at": {"type": "string", "nullable": True}}},
                "Leaderboard": {"type": "object", "properties": {
                    "challenge": {"type": "string"}, "revealed": {"type": "boolean"},
                    "rows": {"type": "array", "items": {"type": "object", "properties": {
                        "rank": {"type": "integer"}, "user": {"type": "string"}, "public_score": {"type": "number"},
                        "private_score": {"type": "number"}, "entries": {"type": "integer"},
                        "best_at": {"type": "string"}}}}}},
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/challenges": {"get": {"summary": "List challenges", "security": [],
                                    "responses": {"200": _resp("Challenges", {"type": "array", "items": {"$ref": "#/components/schemas/Challenge"}})}}},
            "/challenges/{slug}": {"get": {"summary": "Challenge metadata", "parameters": [slug], "security": [],
                                           "responses": {"200": _resp("Challenge", {"$ref": "#/components/schemas/Challenge"}), **_errors(404)}},
                                   **_op("patch", "Set opens_at / deadline (instructors)", [slug], (400, 401, 403, 404),
                                         {"application/json": {"schema": {"type": "object"}}})},
            "/challenges/{slug}/submissions": {
                "post": {"summary": "Upload a TorchScript model", "parameters": [slug],
                         "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                             "type": "object", "required": ["model"],
                             "properties": {"model": {"type": "string", "format": "binary"}}}}}},
                         "responses": {"202": _resp("Accepted", {"type": "object", "properties": {
                             "id": {"type": "integer"}, "status": {"type": "string"}}}),
                             **_errors(400, 401, 403, 404, 413, 422, 429, 503)}},
                "get": {"summary": "The caller's submissions (all, for instructors)", "parameters": [slug],
                        "responses": {"200": _resp("Submissions", {"type": "array", "items": {"$ref": "#/components/schemas/Submission"}}),
                                      **_errors(401, 404)}}},
            "/submissions/{id}": {"get": {"summary": "One submission", "parameters": [sub_id],
                                          "responses": {"200": _resp("Submission", {"$ref": "#/components/schemas/Submission"}),
                                                        **_errors(401, 404)}}},
            "/challenges/{slug}/leaderboard": {"get": {"summary": "Leaderboard", "parameters": [slug], "security": [],
                                                       "responses": {"200": _resp("Leaderboard", {"$ref": "#/components/schemas/Leaderboard"}),
                                                                     **_errors(404)}}},
            **_classroom_paths(slug, sub_id),
        },
    }


def _op(method: str, summary: str, params: list, codes: tuple, body: dict | None = None) -> dict:
    op = {"summary": summary, "parameters": params, "responses": {"200": _resp("OK"), **_errors(*codes)}}
    if body:
        op["requestBody"] = {"required": True, "content": body}
    return {method: op}


def _classroom_paths(slug: dict, sub_id: dict) -> dict:
    """Owner and instructor endpoints (server/api_instructor.py)."""
    name = {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}
    num = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    json_body = {"application/json": {"schema": {"type": "object"}}}
    return {
        "/submissions/{id}/results": _op("get", "Per-class accuracy and confusion matrix on public rows (owner, instructors)", [sub_id], (401, 404)),
        "/submissions/{id}/final": _op("post", "Mark or unmark as final (owner; at most two)", [sub_id], (401, 404, 409), json_body),
        "/submissions/{id}/cancel": _op("post", "Cancel a queued or running submission (owner, instructors)", [sub_id], (401, 404, 409)),
        "/submissions/{id}/disqualify": _op("post", "Disqualify a submission with a reason (instructors)", [sub_id], (401, 403, 404), json_body),
        "/users/{username}/disqualify": _op("post", "Disqualify a student with a reason (instructors)", [name], (401, 403, 404), json_body),
        "/challenges/{slug}/dashboard": _op("get", "Every submission with scores, timings and duplicate flags (instructors)", [slug], (401, 403, 404)),
        "/challenges/{slug}/rescore": _op("post", "Re-score one or all submissions (instructors)", [slug], (401, 403, 404), json_body),
        "/rescores/{id}": _op("get", "What a re-score changed (instructors)", [num], (401, 403, 404)),
        "/challenges/{slug}/reveal": _op("post", "Reveal the private leaderboard (instructors)", [slug], (401, 403, 404, 409)),
        "/challenges/{slug}/leaderboard.csv": _op("get", "Final leaderboard as CSV (instructors)", [slug], (401, 403, 404)),
        "/challenges/{slug}/grades.csv": _op("get", "Grades as CSV (instructors)", [slug], (401, 403, 404)),
        "/challenges/{slug}/starter.zip": _op("get", "Starter kit", [slug], (404,)),
        "/challenges/{slug}/train.npz": _op("get", "Public training data", [slug], (404,)),
        "/challenges/{slug}/samples.npz": _op("get", "A few public inputs for podium check", [slug], (404,)),
        "/challenges": {**{"get": {"summary": "List challenges", "security": [], "responses": {"200": _resp("Challenges")}}},
                        **_op("post", "Publish a challenge from a zipped bundle, field `bundle` (instructors)", [], (400, 401, 403, 409, 422),
                              {"multipart/form-data": {"schema": {"type": "object", "properties": {"bundle": {"type": "string", "format": "binary"}}}}})},
        "/courses": _op("post", "Create a course with a join code (instructors)", [], (400, 401, 403), json_body),
        "/courses/{id}/roster": _op("post", "Import a roster CSV: username, display name, email (instructors)", [num], (400, 401, 403, 404),
                                    {"text/csv": {"schema": {"type": "string"}}}),
    }
