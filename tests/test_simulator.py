"""The MES simulator: idempotent order intake, persistence and event delivery to Odoo."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from urllib.parse import quote

import pytest
import requests

from mes_connector import MesError, MesTransientError, b2mml, order_idempotency_key, validate_event
from mes_connector.b2mml import order_to_production_schedule
from mes_connector.client import OdooIntakeClient
from mes_connector.simulator import Store
from mes_connector.validation import validation_errors

KEY = order_idempotency_key("test-db/SIM", "WH/MO/00001", 1)


def _headers(sim, key=KEY):
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def _post_order(sim, order, key=KEY):
    return requests.post(
        f"{sim.url}/api/v1/orders", json=order, headers=_headers(sim, key), timeout=5
    )


def _get(sim, path):
    response = requests.get(f"{sim.url}/api/v1{path}", headers=_headers(sim, None), timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _complete(sim, order_key, **body):
    response = requests.post(
        f"{sim.url}/api/v1/orders/{order_key}/complete",
        json=body,
        headers=_headers(sim, None),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["event"]


def _control(sim, **switches):
    response = requests.post(f"{sim.url}/api/v1/control", json=switches, timeout=5)
    assert response.status_code == 200
    return response.json()


def _attach_odoo(sim, fake, odoo_api_key):
    """Let ``sim`` push to ``fake`` without its background worker: tests call push_pending()."""
    sim.intake = OdooIntakeClient(fake.url, "SIM", odoo_api_key, timeout=(2, 5))
    return sim


# order intake


def test_one_order_per_idempotency_key_sequential_and_concurrent(simulator, make_order):
    order = make_order()
    sequential = [_post_order(simulator, order) for _ in range(5)]
    barrier = threading.Barrier(5)

    def post(_n):
        barrier.wait(timeout=5)
        return _post_order(simulator, order)

    with ThreadPoolExecutor(5) as pool:
        concurrent = list(pool.map(post, range(5)))

    answers = sequential + concurrent
    assert [r.status_code for r in answers] == [201] + [200] * 9
    assert [r.json()["status"] for r in answers] == ["created"] + ["duplicate"] * 9
    assert {r.json()["mes_order_id"] for r in answers} == {"MES-000001"}
    orders = _get(simulator, "/orders")["orders"]
    assert len(orders) == 1
    stored = _get(simulator, "/orders/MES-000001")
    assert stored["deliveries"] == 10
    assert stored["order_id"] == "WH/MO/00001"
    assert stored["payload"] == order
    assert stored["status"] == "released"


def test_concurrent_first_deliveries_create_one_order(simulator, make_order):
    order = make_order()
    barrier = threading.Barrier(8)

    def post(_n):
        barrier.wait(timeout=5)
        return _post_order(simulator, order)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    assert len({r.json()["mes_order_id"] for r in answers}) == 1
    assert len(simulator.store.orders()) == 1
    assert simulator.store.orders()[0]["deliveries"] == 8


def test_order_is_found_by_mes_id_and_by_order_id(simulator, make_order):
    _post_order(simulator, make_order("MO-7"), order_idempotency_key("db", "MO-7", 1))
    by_mes_id = _get(simulator, "/orders/MES-000001")
    assert by_mes_id["order_id"] == "MO-7"
    assert _get(simulator, "/orders/MO-7") == by_mes_id


@pytest.mark.parametrize("action", ["get", "complete"])
def test_order_with_slash_in_its_reference_is_found_by_order_id(simulator, make_order, action):
    _post_order(simulator, make_order("WH/MO/00001"))
    quoted = quote("WH/MO/00001", safe="")
    assert quoted == "WH%2FMO%2F00001"
    if action == "get":
        assert _get(simulator, f"/orders/{quoted}")["mes_order_id"] == "MES-000001"
    else:
        assert _complete(simulator, quoted)["order_ref"] == "WH/MO/00001"


def test_new_key_for_same_order_updates_it(simulator, make_order):
    _post_order(simulator, make_order())
    key2 = order_idempotency_key("test-db/SIM", "WH/MO/00001", 2)
    answer = _post_order(simulator, make_order(revision=2, quantity=7.0, action="change"), key2)
    assert answer.status_code == 201
    assert answer.json() == {"status": "created", "mes_order_id": "MES-000001"}
    stored = simulator.store.order("MES-000001")
    assert (stored["revision"], stored["quantity"], stored["deliveries"]) == (2, 7.0, 2)

    key3 = order_idempotency_key("test-db/SIM", "WH/MO/00001", 3)
    _post_order(simulator, make_order(revision=3, action="cancel"), key3)
    assert simulator.store.order("MES-000001")["status"] == "cancelled"
    assert _get(simulator, "/orders?status=cancelled")["orders"][0]["mes_order_id"] == "MES-000001"
    assert _get(simulator, "/orders?status=released")["orders"] == []


def test_missing_idempotency_key_is_refused(simulator, make_order):
    answer = _post_order(simulator, make_order(), key=None)
    assert answer.status_code == 400
    assert "Idempotency-Key" in answer.json()["error"]
    assert simulator.store.orders() == []


def test_invalid_order_is_refused_with_its_fields(simulator, make_order):
    order = make_order(quantity=-2.0)
    del order["uom"]
    order["product"]["code"] = ""
    answer = _post_order(simulator, order)
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "order is not valid"
    assert body["errors"] == [
        {"field": "product.code", "value": "", "reason": "must not be empty"},
        {"field": "quantity", "value": -2.0, "reason": "must be greater than 0"},
        {"field": "uom", "reason": "is missing"},
    ]
    assert simulator.store.orders() == []
    # the refused key is not burnt: the corrected order is created with it
    assert _post_order(simulator, make_order()).status_code == 201


@pytest.mark.parametrize(
    ("body", "status"), [(b"{not json", 400), (b"[1, 2]", 422), (b'"order"', 422)]
)
def test_undecodable_or_non_object_body(simulator, body, status):
    answer = requests.post(
        f"{simulator.url}/api/v1/orders",
        data=body,
        headers={**_headers(simulator), "Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.status_code == status
    assert simulator.store.orders() == []


def test_api_key_is_checked(simulator, make_order):
    no_key = requests.post(
        f"{simulator.url}/api/v1/orders",
        json=make_order(),
        headers={"Idempotency-Key": KEY},
        timeout=5,
    )
    assert no_key.status_code == 401
    wrong = requests.get(
        f"{simulator.url}/api/v1/orders", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert wrong.status_code == 401
    assert simulator.store.orders() == []
    # health needs no key
    assert requests.get(f"{simulator.url}/api/v1/health", timeout=5).json() == {"status": "ok"}


def test_down_switch(simulator, make_order):
    assert _control(simulator, down=True)["down"] is True
    assert requests.get(f"{simulator.url}/api/v1/health", timeout=5).status_code == 503
    assert _post_order(simulator, make_order()).status_code == 503
    assert simulator.store.orders() == []
    assert _control(simulator, down=False)["down"] is False
    assert _post_order(simulator, make_order()).status_code == 201


@pytest.mark.parametrize("case", ["wrong key", "down", "no idempotency key"])
def test_keep_alive_connection_survives_early_answers(simulator, make_order, case):
    session = requests.Session()
    headers = _headers(simulator)
    if case == "wrong key":
        headers["Authorization"] = "Bearer wrong"
    elif case == "down":
        _control(simulator, down=True)
    else:
        del headers["Idempotency-Key"]
    first = session.post(f"{simulator.url}/api/v1/orders", json=make_order(), headers=headers)
    assert first.status_code in (400, 401, 503)
    _control(simulator, down=False)
    assert session.get(f"{simulator.url}/api/v1/health", timeout=5).status_code == 200


def test_unknown_paths_are_404(simulator):
    assert requests.get(f"{simulator.url}/other", timeout=5).status_code == 404
    for path in ("/nothing", "/orders/MES-999999"):
        answer = requests.get(
            f"{simulator.url}/api/v1{path}", headers=_headers(simulator, None), timeout=5
        )
        assert answer.status_code == 404, path


def test_orders_survive_a_restart(make_simulator, stop_simulator, make_order, tmp_path):
    path = str(tmp_path / "mes.sqlite")
    first = make_simulator(store=Store(path))
    assert _post_order(first, make_order()).status_code == 201
    _complete(first, "MES-000001")
    stop_simulator(first)
    first.store.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{first.url}/api/v1/health", timeout=2)

    second = make_simulator(store=Store(path))
    stored = _get(second, "/orders/MES-000001")
    assert stored["order_id"] == "WH/MO/00001"
    assert stored["status"] == "completed"
    assert stored["payload"] == make_order()
    # the receipt survived too: the same key is still a duplicate
    again = _post_order(second, make_order())
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "mes_order_id": "MES-000001"}
    assert _get(second, "/orders/MES-000001")["deliveries"] == 2
    # and so did the undelivered event, with its numbering
    events = _get(second, "/events")["events"]
    assert [e["event_id"] for e in events] == ["MES-000001-E0001"]
    assert events[0]["delivered_at"] is None
    assert _complete(second, "MES-000001")["event_id"] == "MES-000001-E0002"


# completion events and their delivery to Odoo


def test_completion_event_is_valid_and_pushed_to_odoo(
    pushing_simulator, fake_odoo, make_order, odoo_api_key, wait_for
):
    sim = pushing_simulator
    _post_order(sim, make_order(quantity=12.0, uom="kg"))
    event = _complete(sim, "MES-000001")

    assert validate_event(event) is event
    assert event["event_type"] == "order_completed"
    assert event["event_id"] == "MES-000001-E0001"
    assert event["order_ref"] == "WH/MO/00001"
    assert event["mes_order_id"] == "MES-000001"
    assert event["sequence"] == 1
    assert event["data"] == {"quantity": 12.0, "uom": "kg"}
    assert sim.store.order("MES-000001")["status"] == "completed"

    wait_for(lambda: fake_odoo.received)
    assert fake_odoo.received == [event]
    request = fake_odoo.requests[0]
    assert request["path"] == "/mes/api/v1/SIM/events"
    assert request["headers"]["Authorization"] == f"Bearer {odoo_api_key}"

    [stored] = wait_for(lambda: [e for e in _get(sim, "/events")["events"] if e["delivered_at"]])
    assert stored["body"] == event
    assert stored["result"] == "accepted"
    assert stored["attempts"] == 1
    assert stored["last_error"] is None


def test_completion_with_reported_quantity(simulator, make_order):
    _post_order(simulator, make_order(quantity=10.0))
    event = _complete(simulator, "MES-000001", quantity=9.5)
    validate_event(event)
    assert event["data"] == {"quantity": 9.5, "uom": "Units"}


def test_completing_unknown_order_is_404(simulator):
    answer = requests.post(
        f"{simulator.url}/api/v1/orders/MES-404404/complete",
        json={},
        headers=_headers(simulator, None),
        timeout=5,
    )
    assert answer.status_code == 404
    assert simulator.store.events() == []


@pytest.mark.parametrize("outage", ["503", "stopped"])
def test_event_waits_while_odoo_is_unavailable(
    simulator, fake_odoo, make_fake_server, make_order, odoo_api_key, outage
):
    sim = _attach_odoo(simulator, fake_odoo, odoo_api_key)
    _post_order(sim, make_order())
    event = _complete(sim, "MES-000001")

    odoo = fake_odoo
    port = odoo.httpd.server_address[1]
    if outage == "503":
        odoo.status = 503
    else:
        odoo.stop()
    for _attempt in range(2):
        with pytest.raises(MesTransientError):
            sim.push_pending()

    [stored] = _get(sim, "/events")["events"]
    assert stored["delivered_at"] is None
    assert stored["attempts"] == 2
    assert ("503" if outage == "503" else "not reachable") in stored["last_error"]
    assert odoo.received == []
    assert [e for _seq, e in sim.store.undelivered()] == [event]

    if outage == "503":
        odoo.status = 200
    else:
        odoo = make_fake_server(port)  # Odoo is back on the same address
    assert sim.push_pending() == 1
    assert sim.push_pending() == 0  # nothing is sent twice

    assert odoo.received == [event]  # the same event, with the same id
    [stored] = _get(sim, "/events")["events"]
    assert stored["delivered_at"] is not None
    assert stored["result"] == "accepted"
    assert stored["attempts"] == 3
    assert stored["last_error"] is None
    assert sim.store.undelivered() == []


def test_background_worker_delivers_after_odoo_recovers(
    pushing_simulator, fake_odoo, make_order, wait_for
):
    fake_odoo.status = 503
    _post_order(pushing_simulator, make_order())
    event = _complete(pushing_simulator, "MES-000001")
    wait_for(lambda: fake_odoo.requests)  # the worker tried and failed
    assert pushing_simulator.store.undelivered()
    fake_odoo.status = 200
    wait_for(lambda: fake_odoo.received, timeout=10)  # backoff after a failure is 1 s
    assert fake_odoo.received == [event]
    wait_for(lambda: not pushing_simulator.store.undelivered())


def test_batch_of_events_is_delivered_in_order(simulator, fake_odoo, make_order, odoo_api_key):
    sim = _attach_odoo(simulator, fake_odoo, odoo_api_key)
    for n in (1, 2, 3):
        _post_order(
            sim, make_order(f"WH/MO/0000{n}"), order_idempotency_key("db", f"WH/MO/0000{n}", 1)
        )
        _complete(sim, f"MES-00000{n}")
    assert sim.push_pending() == 3
    assert fake_odoo.batches == [
        [e["body"] for e in _get(sim, "/events")["events"]],
    ]
    assert [e["order_ref"] for e in fake_odoo.received] == [
        "WH/MO/00001",
        "WH/MO/00002",
        "WH/MO/00003",
    ]


def test_event_ids_are_stable_and_increase_per_order(simulator, make_order):
    for n in (1, 2):
        _post_order(
            simulator,
            make_order(f"WH/MO/0000{n}"),
            order_idempotency_key("db", f"WH/MO/0000{n}", 1),
        )
    produced = [
        _complete(simulator, "MES-000001"),
        _complete(simulator, "MES-000002"),
        _complete(simulator, "MES-000001"),
        _complete(simulator, "MES-000001"),
    ]
    assert [(e["event_id"], e["sequence"]) for e in produced] == [
        ("MES-000001-E0001", 1),
        ("MES-000002-E0001", 1),
        ("MES-000001-E0002", 2),
        ("MES-000001-E0003", 3),
    ]
    listed = _get(simulator, "/events")["events"]
    assert [e["body"] for e in listed] == produced
    seqs = [e["seq"] for e in listed]
    assert seqs == sorted(seqs)
    assert [
        e["body"]["event_id"] for e in _get(simulator, f"/events?after={seqs[1]}")["events"]
    ] == [
        "MES-000001-E0002",
        "MES-000001-E0003",
    ]
    for event in produced:
        validate_event(event)


def test_auto_complete(make_simulator, make_order, wait_for):
    sim = make_simulator(auto_complete=0.05)
    _post_order(sim, make_order())
    wait_for(lambda: sim.store.order("MES-000001")["status"] == "completed")
    events = [item["body"] for item in sim.store.events()]
    # The whole order is reported, in sequence, ending with its final confirmation.
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event_type"] == "order_started"
    assert events[-1]["event_type"] == "order_completed"
    assert {"material_consumed", "output_produced"} <= {e["event_type"] for e in events}
    for event in events:
        validate_event(event)


def test_unexpected_odoo_answer_is_a_mes_error(simulator, fake_odoo, make_order, odoo_api_key):
    sim = _attach_odoo(simulator, fake_odoo, odoo_api_key)
    _post_order(sim, make_order())
    _complete(sim, "MES-000001")
    fake_odoo.body = {"jsonrpc": "2.0", "result": {"ok": True}}
    with pytest.raises(MesError):
        sim.push_pending()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_push_worker_survives_an_unexpected_answer(
    pushing_simulator, fake_odoo, make_order, wait_for
):
    fake_odoo.body = {"unexpected": True}
    _post_order(pushing_simulator, make_order())
    _complete(pushing_simulator, "MES-000001")
    wait_for(lambda: fake_odoo.requests)
    fake_odoo.body = None  # Odoo answers properly again
    wait_for(lambda: fake_odoo.received, timeout=3)


def test_revisions_are_applied_in_order_only(simulator, make_order):
    # A change of an order the MES does not hold yet cannot be applied.
    early = _post_order(simulator, make_order(revision=2, action="change"), "k-early")
    assert early.status_code == 409
    assert "revision 1" in early.json()["reason"]
    assert _post_order(simulator, make_order(), "k-1").status_code == 201
    # Revision 3 before revision 2: refused, the MES still holds revision 1.
    skipped = _post_order(simulator, make_order(revision=3, action="change"), "k-3")
    assert skipped.status_code == 409
    assert "revision 2 must come first" in skipped.json()["reason"]
    assert simulator.store.order("WH/MO/00001")["revision"] == 1
    assert _post_order(simulator, make_order(revision=2, action="change"), "k-2").status_code == 201
    assert (
        _post_order(simulator, make_order(revision=3, action="cancel"), "k-3b").status_code == 201
    )
    after_cancel = _post_order(simulator, make_order(revision=4, action="change"), "k-4")
    assert after_cancel.status_code == 409
    assert "cancelled" in after_cancel.json()["reason"]
    # A second create of the same order is refused; a redelivery of revision 1 is not.
    assert _post_order(simulator, make_order(), "k-other").status_code == 409
    assert _post_order(simulator, make_order(), "k-1").status_code == 200


def test_order_sent_as_b2mml_is_held_like_json(simulator, make_order):
    order = make_order(quantity=3.0)
    response = requests.post(
        f"{simulator.url}/api/v1/orders",
        data=order_to_production_schedule(order),
        headers={**_headers(simulator, "k-xml"), "Content-Type": "application/xml"},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    held = simulator.store.order("WH/MO/00001")
    assert (held["quantity"], held["payload"]["product"]["code"]) == (3.0, "FG-TABLE")
    assert held["payload"]["components"][0]["product"]["code"] == "C-LEG"
    bad = requests.post(
        f"{simulator.url}/api/v1/orders",
        data=b"<ProductionSchedule/>",
        headers={**_headers(simulator, "k-xml2"), "Content-Type": "application/xml"},
        timeout=5,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"]


# incidents of a shift


def _run(sim, order_key):
    response = requests.post(
        f"{sim.url}/api/v1/orders/{quote(order_key, safe='')}/run",
        headers=_headers(sim, None),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["events"]


def test_every_nth_run_breaks_down_and_fails_its_quality_check(simulator, make_order):
    _control(simulator, breakdown_every=2, quality_fail_every=3)
    runs = []
    for number in range(1, 7):
        order = make_order(order_id=f"WH/MO/9{number}")
        assert _post_order(simulator, order, key=f"k-{number}").status_code == 201
        runs.append(_run(simulator, order["order_id"]))
    for number, events in enumerate(runs, start=1):
        kinds = [event["event_type"] for event in events]
        for event in events:
            assert validation_errors(event, "event.v1.json") == [], event
        downtime = [e["data"] for e in events if e["event_type"] == "downtime_started"]
        if number % 2 == 0:
            assert downtime and downtime[0]["reason"] == "BREAKDOWN"
            ended = next(e["data"] for e in events if e["event_type"] == "downtime_ended")
            minutes = (
                datetime.fromisoformat(ended["ended_at"])
                - datetime.fromisoformat(downtime[0]["started_at"])
            ).total_seconds() / 60
            assert minutes == 30
        else:
            assert not downtime
        quality = [e["data"] for e in events if e["event_type"] == "quality_result"]
        assert [q["result"] for q in quality] == ["fail" if number % 3 == 0 else "pass"]
        assert quality[0]["characteristic"] == "FINAL"
        assert quality[0]["lot"] == f"WH-MO-9{number}-L1"  # the output lot it checked
        # Checked before the final confirmation, which stays last.
        assert kinds[-1] == "order_completed"
    totals = _get(simulator, "/totals")["orders"]
    assert totals["WH/MO/93"]["quality"] == {"FINAL": "fail"}
    assert totals["WH/MO/91"]["quality"] == {"FINAL": "pass"}


def test_incident_switches_are_checked(simulator):
    response = requests.post(
        f"{simulator.url}/api/v1/control", json={"breakdown_every": -1}, timeout=5
    )
    assert response.status_code == 400
    assert "breakdown_every: -1" in response.json()["error"]


@pytest.mark.parametrize("report", ["b2mml", "b2mml-bod"])
def test_the_shop_floor_reports_in_b2mml_when_asked(
    make_simulator, fake_odoo, make_order, odoo_api_key, report
):
    sim = _attach_odoo(make_simulator(report=report), fake_odoo, odoo_api_key)
    fake_odoo.body = {"status": "accepted", "message_id": 1, "results": []}
    _post_order(sim, make_order(quantity=3.0))
    sim.run_order("MES-000001")
    queued = [e["body"] for e in _get(sim, "/events")["events"]]
    assert sim.push_pending() == len(queued)
    (request,) = fake_odoo.requests
    assert request["headers"]["Content-Type"] == "application/xml"
    document = request["json"]  # the bytes as sent: not JSON
    events, envelope = b2mml.read_production_performance(document)
    if report == "b2mml-bod":
        assert (envelope.verb, envelope.sender, envelope.bod_id) == (
            "Sync",
            "MES-SIMULATOR",
            queued[0]["event_id"],
        )
    else:
        assert envelope is None
    carried = [e for e in queued if e["event_type"] not in ("order_started",)]
    assert sorted(e["event_type"] for e in events) == sorted(e["event_type"] for e in carried)
    assert {e["order_ref"] for e in events} == {"WH/MO/00001"}
    assert {e["mes_order_id"] for e in events} == {"MES-000001"}
    stored = _get(sim, "/events")["events"]
    assert {(e["result"], e["attempts"]) for e in stored} == {("accepted", 1)}
    with pytest.raises(ValueError, match="report must be one of"):
        make_simulator(report="csv")
