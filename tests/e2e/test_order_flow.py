"""One order travelling Odoo -> MES -> Odoo, with real servers on 127.0.0.1."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import requests

from .conftest import wait_for

pytestmark = pytest.mark.e2e


def _new_order(rpc, product_code="GP-100", qty=2):
    product = rpc("product.product", "search", [("default_code", "=", product_code)])[0]
    bom = rpc("mrp.bom", "search", [("product_id", "=", product)]) or rpc(
        "mrp.bom", "search", [("product_tmpl_id.product_variant_ids", "in", [product])]
    )
    return rpc(
        "mrp.production",
        "create",
        {"product_id": product, "product_qty": qty, "bom_id": bom[0], "origin": "e2e"},
    )


def _production(rpc, production_id):
    return rpc.read_one(
        "mrp.production",
        production_id,
        ["name", "state", "mes_state", "mes_order_id", "qty_produced", "product_qty"],
    )


def _messages(rpc, domain):
    return rpc(
        "mes.message",
        "search_read",
        domain,
        [
            "direction",
            "message_type",
            "state",
            "external_id",
            "attempt_count",
            "error_code",
            "error_text",
            "next_attempt_at",
            "payload",
        ],
        order="id",
    )


def _confirm_and_wait_acknowledged(rpc, simulator, qty=2):
    production_id = _new_order(rpc, qty=qty)
    rpc("mrp.production", "action_confirm", [production_id])
    wait_for(
        lambda: _production(rpc, production_id)["mes_state"] == "acknowledged",
        60,
        "the export to be acknowledged",
    )
    return _production(rpc, production_id)


def _event(production, event_id, quantity=4):
    """A consumption of screws: posting it twice would show as twice the quantity."""
    return {
        "schema": "mes.event/1",
        "event_id": event_id,
        "event_type": "material_consumed",
        "order_ref": production["name"],
        "sequence": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {"product": "SCR-M6", "quantity": quantity, "uom": "Units"},
    }


def _post(rpc, key, body, code="SIM"):
    return requests.post(
        f"{rpc.url}/mes/api/v1/{code}/events",
        data=body if isinstance(body, str) else json.dumps(body),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        timeout=30,
    )


def _post_as_an_mes(rpc, key, body):
    """Post as an MES does: a 503 (the same event stored by another request at this very
    moment, nothing of this one kept) is sent again after Retry-After."""
    retried = 0
    while True:
        response = _post(rpc, key, body)
        if response.status_code != 503 or retried == 20:
            return response, retried
        retried += 1
        time.sleep(float(response.headers.get("Retry-After", 1)))


def test_order_travels_to_mes_and_production_comes_back(plant):
    rpc, simulator, _key = plant
    production_id = _new_order(rpc, qty=3)
    rpc("mrp.production", "action_confirm", [production_id])
    production = _production(rpc, production_id)
    mes_order = wait_for(
        lambda: simulator.get(f"/orders/{quote(production['name'], safe='')}"),
        60,
        "the MES to receive the order",
    )
    assert mes_order["quantity"] == 3
    assert mes_order["deliveries"] == 1
    assert mes_order["payload"]["product"]["code"] == "GP-100"
    assert {c["product"]["code"] for c in mes_order["payload"]["components"]} >= {"PH-10", "SCR-M6"}

    reported = simulator.post(f"/orders/{mes_order['mes_order_id']}/run")["events"]
    done = wait_for(
        lambda: (p := _production(rpc, production_id))["state"] == "done" and p,
        120,
        "the reported production to be posted",
    )
    assert done["qty_produced"] == 3
    assert done["mes_order_id"] == mes_order["mes_order_id"]
    messages = _messages(rpc, [("production_id", "=", production_id)])
    assert [(m["direction"], m["message_type"]) for m in messages][:1] == [
        ("outbound", "order_export")
    ]
    inbound = [m for m in messages if m["direction"] == "inbound"]
    assert sorted(m["external_id"] for m in inbound) == sorted(e["event_id"] for e in reported)
    assert {m["state"] for m in messages} == {"acknowledged", "processed"}
    consumed = rpc(
        "stock.move",
        "search_read",
        [
            ("raw_material_production_id", "=", production_id),
            ("state", "=", "done"),
            ("scrap_id", "=", False),
        ],
        ["product_id", "quantity", "lot_ids"],
    )
    by_product = {m["product_id"][1]: m for m in consumed}
    housing = next(m for name, m in by_product.items() if "PH-10" in name)
    assert housing["quantity"] == 3
    assert len(housing["lot_ids"]) == 2, "the housings came from the two lots the MES reported"
    screws = next(m for name, m in by_product.items() if "SCR-M6" in name)
    assert screws["quantity"] == 12
    events = simulator.get("/events")["events"]
    results = {e["result"] for e in events if e["mes_order_id"] == mes_order["mes_order_id"]}
    assert results == {"accepted"}


def test_same_event_five_times_sequentially_and_concurrently_posts_once(plant):
    rpc, simulator, key = plant
    first = _confirm_and_wait_acknowledged(rpc, simulator)
    second = _confirm_and_wait_acknowledged(rpc, simulator)

    body = json.dumps(_event(first, f"E2E-SEQ-{uuid.uuid4().hex[:8]}"))
    answers = [_post(rpc, key, body) for _i in range(5)]
    assert [a.status_code for a in answers] == [202, 200, 200, 200, 200]
    assert [a.json()["status"] for a in answers] == ["accepted"] + ["duplicate"] * 4

    body = json.dumps(_event(second, f"E2E-PAR-{uuid.uuid4().hex[:8]}"))
    with ThreadPoolExecutor(max_workers=5) as pool:
        delivered = list(pool.map(lambda _i: _post_as_an_mes(rpc, key, body), range(5)))
    answers = [response for response, _retried in delivered]
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 4, [a.text for a in answers]
    # Those told to send again were answered as the duplicates they are, with the row held.
    held = {a.json()["message_id"] for a in answers}
    assert len(held) == 1, [a.text for a in answers]

    for production in (first, second):
        pid = rpc("mrp.production", "search", [("name", "=", production["name"])])[0]

        def processed(pid=pid):
            inbound = _messages(rpc, [("production_id", "=", pid), ("direction", "=", "inbound")])
            return inbound if inbound and inbound[0]["state"] == "processed" else None

        inbound = wait_for(processed, 60, "the posting")
        assert len(inbound) == 1
        screws = rpc(
            "stock.move",
            "search_read",
            [("raw_material_production_id", "=", pid), ("product_id.default_code", "=", "SCR-M6")],
            ["quantity", "picked"],
        )
        assert [(m["quantity"], m["picked"]) for m in screws] == [(4, True)]


def test_export_waits_while_mes_is_down_and_arrives_once(plant):
    rpc, simulator, _key = plant
    function = rpc("queue.job.function", "search", [("name", "=", "<mes.message>._send")])
    assert function, "the retry pattern of order exports is queue_job data"
    original = rpc.read_one("queue.job.function", function[0], ["edit_retry_pattern"])
    rpc("queue.job.function", "write", function, {"edit_retry_pattern": "{1: 3, 2: 6, 3: 12}"})
    simulator.stop()
    try:
        production_id = _new_order(rpc, qty=1)
        rpc("mrp.production", "action_confirm", [production_id])
        name = _production(rpc, production_id)["name"]

        def attempts(n):
            message = _messages(rpc, [("production_id", "=", production_id)])[0]
            return message if message["attempt_count"] >= n else None

        first = wait_for(lambda: attempts(1), 60, "the first failed attempt")
        assert first["state"] == "pending"
        assert first["error_code"] == "retrying"
        assert "not reachable" in first["error_text"]
        assert _production(rpc, production_id)["mes_state"] == "pending"
        # Backoff: the delay queue_job puts between a failed attempt and the next grows
        # along the retry pattern (3 s, then 6 s, then 12 s). The message records each
        # postponement when it happens (write_date) and the time of the next attempt.
        delays = {}

        def delay_after(n):
            message = rpc.read_one(
                "mes.message", first["id"], ["attempt_count", "next_attempt_at", "write_date"]
            )
            if message["attempt_count"] == n and message["next_attempt_at"]:
                planned, written = (
                    datetime.fromisoformat(message[k]) for k in ("next_attempt_at", "write_date")
                )
                delays[n] = (planned - written).total_seconds()
            return n in delays

        wait_for(lambda: delay_after(1), 60, "the first retry to be planned", interval=0.3)
        wait_for(lambda: delay_after(2), 60, "the second retry to be planned", interval=0.3)
        wait_for(lambda: delay_after(3), 60, "the third retry to be planned", interval=0.3)
        assert delays[1] < delays[2] < delays[3], delays
        assert attempts(3)["state"] == "pending"
    finally:
        simulator.start()
    wait_for(
        lambda: _production(rpc, production_id)["mes_state"] == "acknowledged",
        60,
        "the export to reach the MES once it is back",
    )
    received = simulator.get(f"/orders/{quote(name, safe='')}")
    assert received["deliveries"] == 1
    assert [o["order_id"] for o in simulator.get("/orders")["orders"]].count(name) == 1
    message = _messages(rpc, [("production_id", "=", production_id)])[0]
    assert message["state"] == "acknowledged"
    assert not message["error_text"]
    rpc(
        "queue.job.function",
        "write",
        function,
        {"edit_retry_pattern": original["edit_retry_pattern"]},
    )


def test_invalid_event_is_rejected_naming_the_field_and_stored(plant):
    rpc, _simulator, key = plant
    event_id = f"E2E-BAD-{uuid.uuid4().hex[:8]}"
    event = _event({"name": "WH/MO/NOPE", "product_qty": 1}, event_id)
    event["data"]["quantity"] = "ten"
    response = _post(rpc, key, event)
    assert response.status_code == 422
    answer = response.json()
    assert answer["status"] == "rejected"
    assert answer["errors"] == [
        {"field": "data.quantity", "value": "ten", "reason": "is not of type number"}
    ]
    stored = _messages(rpc, [("external_id", "=", event_id)])
    assert len(stored) == 1
    assert stored[0]["state"] == "error"
    assert json.loads(stored[0]["payload"]) == event
    assert "data.quantity" in stored[0]["error_text"]


def test_wrong_or_missing_key_is_401_and_nothing_stored(plant):
    rpc, _simulator, key = plant
    before = rpc("mes.message", "search_count", [])
    event = _event({"name": "WH/MO/NOPE", "product_qty": 1}, f"E2E-KEY-{uuid.uuid4().hex[:8]}")
    assert _post(rpc, "not-the-key", event).status_code == 401
    assert _post(rpc, key, event, code="OTHER").status_code == 401
    response = requests.post(f"{rpc.url}/mes/api/v1/SIM/events", json=event, timeout=30)
    assert response.status_code == 401
    assert rpc("mes.message", "search_count", []) == before
