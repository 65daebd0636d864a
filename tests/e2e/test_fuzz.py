"""The intake against what a generator makes of its OpenAPI document, on a running Odoo.

Schemathesis generates requests from the served document, valid ones (positive) and
ones that break it (negative). Whatever comes: no server error, an answer the document
allows (status and body), and exactly as many messages stored as the answer says.
"""

import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.openapi import from_dict
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import new_inbound_key

# A backend of each run's own: duplicates come only from the run itself.
CODE = f"FUZZ-{uuid.uuid4().hex[:8]}"
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 200, GenerationMode.NEGATIVE: 150}


@pytest.fixture(scope="module")
def fuzz_backend(odoo):
    """A backend of its own: what the fuzzer stores is counted apart from the rest."""
    found = odoo("mes.backend", "search", [("code", "=", CODE)])
    backend_id = (
        found[0]
        if found
        else odoo(
            "mes.backend",
            "create",
            {"name": "Fuzzed MES", "code": CODE, "base_url": "http://127.0.0.1:9"},
        )
    )
    return backend_id, new_inbound_key(odoo, backend_id)


def _stored(odoo, backend_id):
    return odoo("mes.message", "search_count", [("backend_id", "=", backend_id)])


def _answered_ids(response):
    """The ids of the messages the answer names (the body's own and one per event)."""
    if response.status_code in (401, 413):
        return set()
    answer = response.json()
    results = [answer, *answer.get("results", [])]
    return {r["message_id"] for r in results if r.get("message_id")}


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_generated_requests_get_documented_answers_and_are_stored_as_answered(
    odoo, fuzz_backend, mode
):
    backend_id, key = fuzz_backend
    document = requests.get(f"{odoo.url}/mes/api/v1/openapi.json", timeout=10).json()
    operation = from_dict(document)["/{backend}/events"]["POST"]
    strategy = operation.as_strategy(
        generation_mode=mode,
        path_parameters={"backend": CODE},
        # Both ways of sending the key, fixed (a generated one would only test the 401).
        headers={"Authorization": f"Bearer {key}", "X-API-Key": key},
    )
    session = requests.Session()
    held = set(odoo("mes.message", "search", [("backend_id", "=", backend_id)]))
    seen = {"statuses": {}, "rows": 0, "ids": held}

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        before = _stored(odoo, backend_id)
        response = case.call(base_url=f"{odoo.url}/mes/api/v1", session=session, timeout=60)
        assert response.status_code < 500, (response.status_code, response.text[:500])
        case.validate_response(response, checks=CHECKS)
        stored = _stored(odoo, backend_id) - before
        # A new row per new message id the answer names (a duplicate names the one held, a
        # corrected resend of a refused event the row it corrects), and no other.
        new_ids = _answered_ids(response) - seen["ids"]
        assert stored == len(new_ids), (response.text[:500], stored)
        seen["ids"] |= new_ids
        seen["statuses"][response.status_code] = seen["statuses"].get(response.status_code, 0) + 1
        seen["rows"] += stored

    run()
    print(f"{mode.value}: answers {seen['statuses']}, {seen['rows']} messages stored")
    # The generator did reach the intake (not only the key check).
    assert sum(seen["statuses"].values()) >= EXAMPLES[mode] // 2
    assert seen["rows"] > 0


def test_the_served_document_is_self_contained(odoo):
    document = requests.get(f"{odoo.url}/mes/api/v1/openapi.json", timeout=10).json()
    text = str(document)
    assert "event.v1.json" not in text and "$defs" not in text
    variants = document["components"]["schemas"]["Event"]["oneOf"]
    assert len(variants) == 14
