"""The REST API against its own OpenAPI document: schemathesis fuzzes every operation as each role on a live stack.

No generated request may get a 5xx, and every answer (status, content type, body) must match the document.
The document is generated from the views' @spec declarations; a view without one fails here too.
"""
from __future__ import annotations

import random

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.checks import response_headers_conformance

from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes, small_cnn

ROLES = {"anonymous": None, "student": "alice", "instructor": "prof"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES = 12  # per operation and role: about 60 operations x 3 roles


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    """Web + worker on the embedded default with a tiny challenge, one scored and one failed submission."""
    root = tmp_path_factory.mktemp("fuzz")
    settings_ = live.settings_for(root / "var")
    tokens = live.prepare_database(settings_, [write_tiny_bundle(root / "tiny")],
                                   {"alice": "student", "prof": "instructor"})
    stack = live.Stack(settings_)
    stack.tokens = tokens
    stack.start_web()
    stack.start_worker()
    api = live.Api(stack.url, tokens["alice"])
    scored = api.submit("tiny", scripted_bytes(small_cnn(in_shape=(1, 8, 8), num_classes=3))).json()["id"]
    failed = api.submit("tiny", scripted_bytes(small_cnn(in_shape=(1, 8, 8), num_classes=5))).json()["id"]
    assert api.wait_finished(scored)["status"] == "scored"
    assert api.wait_finished(failed)["status"] == "failed"
    stack.ids = [scored, failed]
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_stack):
    schema = schemathesis.openapi.from_url(f"{fuzz_stack.url}/api/v1/openapi.json")
    schema.config.update(base_url=f"{fuzz_stack.url}/api/v1")

    @schema.hook
    def map_path_parameters(context, params):
        # Half the cases name things that exist, so the happy paths (and their schemas) are exercised too.
        rng = random.Random(repr(sorted(params.items())))
        if params and rng.random() < 0.5:
            real = {"slug": "tiny", "submission_id": rng.choice(fuzz_stack.ids), "username": "alice",
                    "run_id": 1, "course_id": 1}
            params = {k: real.get(k, v) for k, v in params.items()}
        return params

    return schema


@pytest.mark.slow
def test_every_operation_matches_its_document(api_schema, fuzz_stack):
    """Bounded examples per operation, each sent as every role; all failures are reported together."""
    headers = {role: {"Authorization": f"Bearer {fuzz_stack.tokens[name]}"} if name else {}
               for role, name in ROLES.items()}
    failures, operations, succeeded = [], 0, set()
    for result in api_schema.get_all_operations():
        operations += 1
        _fuzz(result.ok(), headers, failures, succeeded)
    assert operations >= 20
    print(f"{operations} operations; answered 2xx at least once: {len(succeeded)}")
    assert len(succeeded) >= operations // 2, sorted(succeeded)  # the fuzzing reached the happy paths too
    assert not failures, "\n\n".join(failures)


def _fuzz(operation, headers: dict, failures: list, succeeded: set) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        for role, auth in headers.items():
            try:
                response = case.call_and_validate(headers=auth, checks=CHECKS)
            except Exception as exc:  # collected: one report for every operation that fails
                failures.append(f"{operation.label} as {role}: {exc}"[:1500])
                raise
            if response.status_code < 300:
                succeeded.add(operation.label)

    try:
        run()
    except Exception:
        pass  # already in failures, shrunk by hypothesis
