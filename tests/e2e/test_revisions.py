"""Order revisions and outages against real servers: exactly once, in order."""

from urllib.parse import quote

import pytest

from .conftest import wait_for
from .test_order_flow import _new_order, _production

pytestmark = pytest.mark.e2e


@pytest.fixture
def fast_retries(plant):
    rpc = plant[0]
    function = rpc("queue.job.function", "search", [("name", "=", "<mes.message>._send")])
    original = rpc.read_one("queue.job.function", function[0], ["edit_retry_pattern"])
    rpc("queue.job.function", "write", function, {"edit_retry_pattern": "{1: 2, 3: 4}"})
    yield
    rpc("queue.job.function", "write", function, original)


def _mes_order(simulator, name):
    return simulator.get(f"/orders/{quote(name, safe='')}")


def test_fifty_orders_confirmed_during_an_outage_arrive_once(plant, fast_retries):
    rpc, simulator, _key = plant
    simulator.stop()
    try:
        ids = [_new_order(rpc, qty=1) for _i in range(50)]
        rpc("mrp.production", "action_confirm", ids)

        def all_tried():
            messages = rpc(
                "mes.message",
                "search_read",
                [("production_id", "in", ids), ("direction", "=", "outbound")],
                ["attempt_count", "state"],
            )
            return len(messages) == 50 and all(m["attempt_count"] >= 1 for m in messages)

        wait_for(all_tried, 180, "every export to fail once while the MES is down", interval=2)
    finally:
        simulator.start()

    def all_acknowledged():
        states = rpc("mrp.production", "read", ids, ["mes_state"])
        return all(s["mes_state"] == "acknowledged" for s in states)

    wait_for(all_acknowledged, 300, "the 50 orders to reach the MES", interval=2)
    names = [p["name"] for p in rpc("mrp.production", "read", ids, ["name"])]
    held = [o for o in simulator.get("/orders")["orders"] if o["order_id"] in names]
    assert sorted(o["order_id"] for o in held) == sorted(names)
    assert {o["deliveries"] for o in held} == {1}


def test_change_waits_for_revision_1_then_cancel(plant, fast_retries):
    rpc, simulator, _key = plant
    simulator.stop()
    try:
        production_id = _new_order(rpc, qty=2)
        rpc("mrp.production", "action_confirm", [production_id])
        wizard = rpc("change.production.qty", "create", {"mo_id": production_id, "product_qty": 7})
        rpc("change.production.qty", "change_prod_qty", [wizard])
        exports = rpc(
            "mes.message",
            "search_read",
            [("production_id", "=", production_id), ("direction", "=", "outbound")],
            ["revision", "order_action", "state"],
            order="revision",
        )
        assert [(e["revision"], e["order_action"]) for e in exports] == [
            (1, "create"),
            (2, "change"),
        ]

        def retried():
            messages = rpc("mes.message", "read", [e["id"] for e in exports], ["error_text"])
            return all(m["error_text"] for m in messages) and messages

        first, second = wait_for(retried, 120, "both revisions to be tried while MES is down")
        assert "not reachable" in first["error_text"]
        assert "revision 1" in second["error_text"]
    finally:
        simulator.start()
    name = _production(rpc, production_id)["name"]
    wait_for(
        lambda: (_mes_order(simulator, name) or {}).get("revision") == 2,
        120,
        "revision 2 to reach the MES after revision 1",
    )
    held = _mes_order(simulator, name)
    assert (held["quantity"], held["deliveries"]) == (7, 2)
    rpc("mrp.production", "action_cancel", [production_id])
    wait_for(
        lambda: _mes_order(simulator, name)["status"] == "cancelled",
        120,
        "the cancellation to reach the MES",
    )
    assert _production(rpc, production_id)["mes_state"] == "cancelled"
    assert _mes_order(simulator, name)["revision"] == 3
