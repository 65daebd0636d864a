"""Request signing between the MES and Odoo (optional per backend).

The sender puts two headers on a request::

    X-MES-Timestamp: 1767225600                  (Unix time, seconds)
    X-MES-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed by the secret>

The receiver recomputes the HMAC over the exact bytes it received and refuses a request
whose signature differs or whose timestamp is further from its own clock than the
tolerance: a captured request cannot be altered, and cannot be replayed once the window
has passed (within it, a replayed event is a duplicate of itself and changes nothing).
"""

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-MES-Timestamp"
SIGNATURE_HEADER = "X-MES-Signature"
SCHEME = "sha256"
DEFAULT_TOLERANCE = 300  # seconds of clock difference accepted either way


def signature(secret, timestamp, body):
    """The ``X-MES-Signature`` value of ``body`` (bytes) sent at ``timestamp`` (int)."""
    if isinstance(body, str):
        body = body.encode()
    mac = hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def sign_headers(secret, body, now=None):
    """Both headers to add to a request carrying ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret, timestamp, sent_signature, body, now=None, tolerance=DEFAULT_TOLERANCE):
    """Why the request must be refused, or None when it is signed by ``secret`` in time.

    ``timestamp`` and ``sent_signature`` are the header values as received (or None).
    """
    if not timestamp or not sent_signature:
        return f"the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER}: {timestamp[:40]!r} is not a Unix time in seconds"
    now = time.time() if now is None else now
    if abs(now - sent_at) > tolerance:
        return (
            f"{TIMESTAMP_HEADER}: {sent_at} is more than {tolerance} s from this server's clock "
            f"({int(now)}): replayed, or a clock to set right"
        )
    expected = signature(secret, sent_at, body)
    if not hmac.compare_digest(expected.encode(), sent_signature.strip().encode()):
        return f"{SIGNATURE_HEADER} does not match the body (expected scheme {SCHEME}=<hex>)"
    return None
