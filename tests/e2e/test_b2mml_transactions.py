"""B2MML documents as a busy MES sends them, on a running Odoo: at the same moment.

Each request reads in a snapshot of its own; the numbers a document gives its events
must still follow those another document committed a moment before, and the same
report sent twice at once (a new envelope each time) must post once.
"""

import threading
import uuid

import pytest
import requests

from .conftest import new_inbound_key

NS = "http://www.wbf.org/xml/B2MML-V0401"
CODE = f"B2MML-{uuid.uuid4().hex[:8]}"
MATERIALS = 150


@pytest.fixture(scope="module")
def b2mml_backend(odoo):
    backend_id = odoo(
        "mes.backend",
        "create",
        {"name": "Concurrent B2MML MES", "code": CODE, "base_url": "http://127.0.0.1:9"},
    )
    return backend_id, new_inbound_key(odoo, backend_id)


def _performance(document_id, order_ref):
    materials = "".join(
        f"<MaterialActual><MaterialDefinitionID>P{index}</MaterialDefinitionID>"
        "<MaterialUse>Consumed</MaterialUse><Quantity><QuantityString>1</QuantityString>"
        "<UnitOfMeasure>Units</UnitOfMeasure></Quantity></MaterialActual>"
        for index in range(MATERIALS)
    )
    return (
        f"<ProductionPerformance><ID>{document_id}</ID>"
        "<PublishedDate>2026-11-30T12:00:00Z</PublishedDate><ProductionResponse><ID>M1</ID>"
        f"<ProductionRequestID>{order_ref}</ProductionRequestID><SegmentResponse>"
        f"<ProcessSegmentID>10</ProcessSegmentID>{materials}"
        "<SegmentState>Running</SegmentState></SegmentResponse>"
        "</ProductionResponse></ProductionPerformance>"
    )


def _sync(noun, bod_id):
    return (
        f'<SyncProductionPerformance xmlns="{NS}" releaseID="1.0"><ApplicationArea><Sender>'
        "<LogicalID>MES</LogicalID></Sender><CreationDateTime>2026-11-30T12:00:00Z"
        f"</CreationDateTime><BODID>{bod_id}</BODID></ApplicationArea><DataArea><Sync/>"
        f"{noun}</DataArea></SyncProductionPerformance>"
    ).encode()


def _post_together(odoo, key, bodies):
    barrier = threading.Barrier(len(bodies))
    answers = [None] * len(bodies)

    def post(index):
        barrier.wait()
        answers[index] = requests.post(
            f"{odoo.url}/mes/api/v1/{CODE}/events",
            data=bodies[index],
            headers={"Content-Type": "application/xml", "Authorization": f"Bearer {key}"},
            timeout=120,
        )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _sequences(odoo, backend_id, order_ref):
    messages = odoo(
        "mes.message",
        "search_read",
        [
            ("backend_id", "=", backend_id),
            ("order_ref", "=", order_ref),
            ("direction", "=", "inbound"),
            ("message_type", "!=", "b2mml_document"),
        ],
        ["sequence", "external_id"],
    )
    return sorted(message["sequence"] for message in messages), messages


def test_two_documents_for_one_order_at_once_are_numbered_one_after_the_other(odoo, b2mml_backend):
    backend_id, key = b2mml_backend
    order_ref = f"WH/MO/RACE-{uuid.uuid4().hex[:6]}"
    bodies = [
        _sync(_performance(f"PP-{name}-{order_ref}", order_ref), f"BOD-{name}")
        for name in ("A", "B")
    ]
    answers = _post_together(odoo, key, bodies)
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]
    sequences, _messages = _sequences(odoo, backend_id, order_ref)
    # Each document's events (its materials and its operation), numbered without a gap
    # or a number given twice: one document after the other.
    assert sequences == list(range(1, 2 * (MATERIALS + 1) + 1))


def test_the_same_report_sent_twice_at_once_in_new_envelopes_posts_once(odoo, b2mml_backend):
    backend_id, key = b2mml_backend
    order_ref = f"WH/MO/TWICE-{uuid.uuid4().hex[:6]}"
    noun = _performance(f"PP-{order_ref}", order_ref)
    answers = _post_together(odoo, key, [_sync(noun, "BOD-1"), _sync(noun, "BOD-2")])
    assert sorted(answer.status_code for answer in answers) in ([200, 200], [200, 503])
    sequences, messages = _sequences(odoo, backend_id, order_ref)
    assert sequences == list(range(1, MATERIALS + 2))
    assert len({message["external_id"] for message in messages}) == MATERIALS + 1
