"""A burst of MES clients against Odoo deployed as documented: workers behind nginx.

An MES that was cut off sends its backlog at once, from many clients. Each client
here opens its own connection at the same moment and sends one event; every one
must be answered as stored (no reset, no timeout, no 5xx), each event kept exactly
once, and the same burst sent again must be answered as duplicates of those rows.
"""

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests

from .conftest import new_inbound_key

CLIENTS = 200
CODE = f"BURST-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def burst_backend(production):
    backend_id = production(
        "mes.backend",
        "create",
        {"name": "MES of a burst", "code": CODE, "base_url": "http://127.0.0.1:9"},
    )
    return backend_id, new_inbound_key(production, backend_id)


def _event(number):
    return {
        "schema": "mes.event/1",
        "event_id": f"{CODE}-{number:04d}",
        "event_type": "order_started",
        # Orders Odoo does not know: the messages are stored and wait for them.
        "order_ref": f"{CODE}/{number // 10:03d}",
        "sequence": number % 10 + 1,
        "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {},
    }


def _burst(url, key, events):
    """Every event from its own client and connection, all released at once."""
    start = threading.Barrier(len(events))
    outcomes = [None] * len(events)

    def client(index):
        start.wait()
        began = time.monotonic()
        try:
            response = requests.post(
                url, json=events[index], headers={"X-API-Key": key}, timeout=(120, 300)
            )
            body = response.json() if response.status_code < 500 else response.text[:200]
            outcomes[index] = (response.status_code, body, time.monotonic() - began)
        except (requests.RequestException, ValueError) as err:
            outcomes[index] = ("failed", repr(err), time.monotonic() - began)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _summary(outcomes):
    seconds = sorted(outcome[2] for outcome in outcomes)
    return f"p50 {seconds[len(seconds) // 2]:.2f} s, slowest {seconds[-1]:.2f} s"


def test_a_burst_of_clients_is_stored_once_and_answered_alike_when_sent_again(
    production, burst_backend
):
    backend_id, key = burst_backend
    url = f"{production.url}/mes/api/v1/{CODE}/events"
    events = [_event(number) for number in range(CLIENTS)]

    first = _burst(url, key, events)
    # A 5xx means "send again" (nothing is answered as stored unless it is): the MES
    # resends those, as the README tells it to. Connection failures are not allowed.
    resend = [i for i, outcome in enumerate(first) if outcome[0] in (500, 502, 503, 504)]
    print(f"\nanswered 5xx in the first burst, sent again: {len(resend)}")
    if resend:
        for i, outcome in zip(resend, _burst(url, key, [events[i] for i in resend]), strict=True):
            first[i] = outcome
    failed = [(events[i]["event_id"], o[:2]) for i, o in enumerate(first) if o[0] != 202]
    assert not failed, f"{len(failed)} of {CLIENTS} clients not answered 202: {failed[:5]}"
    print(f"first burst of {CLIENTS}: {_summary(first)}")
    answered = {events[i]["event_id"]: o[1]["message_id"] for i, o in enumerate(first)}
    stored = production(
        "mes.message",
        "search_read",
        [("backend_id", "=", backend_id)],
        ["external_id"],
    )
    assert len(stored) == CLIENTS
    assert {row["external_id"]: row["id"] for row in stored} == answered

    again = _burst(url, key, events)
    failed = [(events[i]["event_id"], o[:2]) for i, o in enumerate(again) if o[0] != 200]
    assert not failed, f"{len(failed)} of {CLIENTS} resent not answered 200: {failed[:5]}"
    print(f"same burst again: {_summary(again)}")
    assert {events[i]["event_id"]: o[1]["message_id"] for i, o in enumerate(again)} == answered
    assert all(o[1]["status"] == "duplicate" for o in again)
    assert production("mes.message", "search_count", [("backend_id", "=", backend_id)]) == CLIENTS
