import hashlib
import hmac
import json

import pytest

from mes_connector.client import OdooIntakeClient
from mes_connector.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign_headers,
    signature,
    verify,
)

SECRET = "shared-signing-secret-0123456789"
BODY = b'{"event_id": "E1"}'
NOW = 1_767_225_600  # fixed: the check is given its clock, never the test's


def test_signature_is_hmac_sha256_of_timestamp_and_body():
    # Computed independently: HMAC-SHA256 keyed by the secret over "1767225600." + body.
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == f"sha256={expected}"
    headers = sign_headers(SECRET, BODY, now=NOW)
    assert headers == {TIMESTAMP_HEADER: "1767225600", SIGNATURE_HEADER: f"sha256={expected}"}


def test_a_signed_request_in_time_passes():
    headers = sign_headers(SECRET, BODY, now=NOW)
    for now in (NOW, NOW + 300, NOW - 300):
        assert (
            verify(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], BODY, now) is None
        )


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"body": b'{"event_id": "E2"}'}, "does not match the body"),
        ({"secret": "another-secret"}, "does not match the body"),
        ({"now": NOW + 301}, "more than 300 s"),
        ({"now": NOW - 301}, "more than 300 s"),
        ({"timestamp": None}, "headers are required"),
        ({"signature": None}, "headers are required"),
        ({"timestamp": "yesterday"}, "is not a Unix time"),
        ({"signature": "sha1=abc"}, "does not match"),
    ],
)
def test_what_is_refused(change, reason):
    headers = sign_headers(SECRET, BODY, now=NOW)
    args = {
        "secret": SECRET,
        "timestamp": headers[TIMESTAMP_HEADER],
        "signature": headers[SIGNATURE_HEADER],
        "body": BODY,
        "now": NOW,
        **change,
    }
    refusal = verify(
        args["secret"], args["timestamp"], args["signature"], args["body"], args["now"]
    )
    assert refusal is not None and reason in refusal


def test_the_intake_client_signs_when_given_a_secret(fake_odoo):
    client = OdooIntakeClient(fake_odoo.url, "SIM", "odoo-key", signing_secret=SECRET)
    client.post_events([{"event_id": "E1"}])
    [request] = fake_odoo.requests
    body = json.dumps({"events": [{"event_id": "E1"}]}).encode()
    headers = request["headers"]
    assert verify(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body) is None
    unsigned = OdooIntakeClient(fake_odoo.url, "SIM", "odoo-key")
    unsigned.post_events([{"event_id": "E2"}])
    assert SIGNATURE_HEADER not in fake_odoo.requests[1]["headers"]
    assert SECRET not in repr(client)
