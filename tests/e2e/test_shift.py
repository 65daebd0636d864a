"""A shift of orders run by the simulator, pushed and pulled: Odoo ends with the MES's totals."""

import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from urllib.parse import quote

import pytest
import requests

from .conftest import Simulator, wait_for

pytestmark = pytest.mark.e2e

# 20 orders, 52 flow meters made one serial at a time among them.
SHIFT = [("GP-100", 2), ("VA-200", 3), ("FM-400", 6), ("CB-300", 4), ("FM-400", 7)] * 4
# A shift without serial-numbered units, partial confirmations or rework.
BASIC_SHIFT = [("GP-100", 2), ("VA-200", 3), ("CB-300", 1), ("GP-100", 1), ("CB-300", 4)] * 4


def _confirm_shift(rpc, shift=SHIFT):
    production_ids = []
    for code, qty in shift:
        product = rpc("product.product", "search", [("default_code", "=", code)])[0]
        bom = rpc("mrp.bom", "search", [("product_tmpl_id.product_variant_ids", "in", [product])])
        production_ids.append(
            rpc(
                "mrp.production",
                "create",
                {"product_id": product, "product_qty": qty, "bom_id": bom[0], "origin": "shift"},
            )
        )
    rpc("mrp.production", "action_confirm", production_ids)

    def exported():
        states = rpc("mrp.production", "read", production_ids, ["mes_state"])
        return all(s["mes_state"] == "acknowledged" for s in states)

    wait_for(exported, 120, "the shift's orders to reach the MES")
    return {p["name"]: p["id"] for p in rpc("mrp.production", "read", production_ids, ["name"])}


def _run_shift(simulator, names, units=True):
    # Every 5th order breaks down for 30 minutes, every 4th fails its final quality check;
    # with units: every 3rd runs over two shifts (a partial confirmation first), every
    # 4th sends a unit to rework (reworked good, then scrapped, in turn).
    simulator.post(
        "/control",
        {
            "breakdown_every": 5,
            "quality_fail_every": 4,
            "partial_every": 3 if units else 0,
            "rework_every": 4 if units else 0,
            # The demo plant's operators, by their badges.
            "operators": ["MES1001", "MES1002"],
        },
    )
    for name in names:
        simulator.post(f"/orders/{quote(name, safe='')}/run")
    return {name: simulator.get("/totals")["orders"][name] for name in names}


def _families(rpc, orders):
    """{order name: ids of the orders of it}: the order, and those split from it as the
    MES reported (units of serial output, parts of partial confirmations)."""
    families = {name: {pid} for name, pid in orders.items()}
    for row in rpc(
        "mrp.production",
        "search_read",
        [("mes_order_ref", "in", list(orders))],
        ["mes_order_ref"],
    ):
        families[row["mes_order_ref"]].add(row["id"])
    return {name: sorted(ids) for name, ids in families.items()}


def _wait_done(rpc, orders, timeout=600, simulator=None):
    """Every order (and all split from it) done and, with ``simulator``, every event of
    the orders it reported processed (rework comes after an order is done)."""
    expected = None
    if simulator is not None:
        expected = sum(
            1
            for item in simulator.get("/events?after=0&limit=10000")["events"]
            if item["body"]["order_ref"] in orders
        )

    def done():
        ids = [pid for family in _families(rpc, orders).values() for pid in family]
        states = rpc("mrp.production", "read", ids, ["state"])
        stuck = rpc(
            "mes.message",
            "search_read",
            [("production_id", "in", ids), ("state", "=", "error")],
            ["order_ref", "error_code", "error_text"],
        )
        assert not stuck, f"messages in error: {stuck}"
        if expected is not None:
            processed = rpc(
                "mes.message",
                "search_count",
                [
                    ("direction", "=", "inbound"),
                    ("order_ref", "in", list(orders)),
                    ("state", "=", "processed"),
                ],
            )
            if processed < expected:
                return False
        return all(s["state"] in ("done", "cancel") for s in states)

    wait_for(done, timeout, "every order of the shift to be done", interval=2)


def _odoo_totals(rpc, orders, backend_id):
    """What Odoo posted, in the shape of the simulator's totals."""
    codes = {}

    def code(product):
        if product[0] not in codes:
            codes[product[0]] = rpc.read_one("product.product", product[0], ["default_code"])[
                "default_code"
            ]
        return codes[product[0]]

    reasons = {
        m["scrap_tag_id"][0]: m["mes_code"]
        for m in rpc(
            "mes.mapping",
            "search_read",
            [("backend_id", "=", backend_id), ("mapping_type", "=", "scrap_reason")],
            ["scrap_tag_id", "mes_code"],
        )
    }
    result = {}
    families = _families(rpc, orders)
    for name in orders:
        pid = families[name]
        produced = defaultdict(float)
        for move in rpc(
            "stock.move",
            "search_read",
            [("production_id", "in", pid), ("state", "=", "done"), ("scrap_id", "=", False)],
            ["product_id", "quantity"],
        ):
            produced[code(move["product_id"])] += move["quantity"]
        serials = defaultdict(list)
        for line in rpc(
            "stock.move.line",
            "search_read",
            [
                ("move_id.production_id", "in", pid),
                ("move_id.scrap_id", "=", False),
                ("state", "=", "done"),
                ("product_id.tracking", "=", "serial"),
            ],
            ["product_id", "lot_id"],
        ):
            serials[code(line["product_id"])].append(line["lot_id"][1])
        rework = defaultdict(lambda: defaultdict(float))
        for item in rpc(
            "mes.rework",
            "search_read",
            [("mes_order_ref", "=", name)],
            ["reason_tag_id", "state", "quantity"],
        ):
            outcome = {"good": "good", "scrapped": "scrapped"}.get(item["state"], "in rework")
            rework[reasons[item["reason_tag_id"][0]]][outcome] += item["quantity"]
        labor = defaultdict(float)
        for item in rpc(
            "mes.labor",
            "search_read",
            [("production_id", "in", pid)],
            ["operator_code", "minutes"],
        ):
            labor[item["operator_code"]] += item["minutes"]
        consumed = defaultdict(lambda: defaultdict(float))
        for line in rpc(
            "stock.move.line",
            "search_read",
            [
                ("move_id.raw_material_production_id", "in", pid),
                ("move_id.scrap_id", "=", False),
                ("state", "=", "done"),
            ],
            ["product_id", "lot_id", "quantity"],
        ):
            lot = line["lot_id"][1] if line["lot_id"] else ""
            consumed[code(line["product_id"])][lot] += line["quantity"]
        scrap = defaultdict(lambda: defaultdict(float))
        for item in rpc(
            "stock.scrap",
            "search_read",
            [("production_id", "in", pid), ("state", "=", "done")],
            ["product_id", "scrap_qty", "scrap_reason_tag_ids"],
        ):
            reason = reasons[item["scrap_reason_tag_ids"][0]]
            scrap[reason][code(item["product_id"])] += item["scrap_qty"]
        # Downtime as the interval Odoo recorded. (Its duration field counts only the work
        # center's working hours, by design of Odoo's OEE; the MES reports wall-clock time.)
        downtime = defaultdict(float)
        ended = rpc(
            "mes.message",
            "search_read",
            [("production_id", "in", pid), ("message_type", "=", "downtime_ended")],
            ["productivity_ids"],
        )
        for message in ended:
            for log in rpc(
                "mrp.workcenter.productivity",
                "read",
                message["productivity_ids"],
                ["workcenter_id", "date_start", "date_end"],
            ):
                wc = rpc.read_one("mrp.workcenter", log["workcenter_id"][0], ["code"])["code"]
                start, end = (datetime.fromisoformat(log[k]) for k in ("date_start", "date_end"))
                downtime[wc] += (end - start).total_seconds() / 60
        result[name] = {
            "produced": {k: round(v, 3) for k, v in produced.items()},
            "serials": {k: sorted(v) for k, v in serials.items()},
            "consumed": {
                p: {lot: round(q, 3) for lot, q in lots.items()} for p, lots in consumed.items()
            },
            "scrap": {r: {p: round(q, 3) for p, q in items.items()} for r, items in scrap.items()},
            "rework": {
                r: {o: round(q, 3) for o, q in items.items()} for r, items in rework.items()
            },
            "labor_minutes": {k: round(v, 3) for k, v in labor.items()},
            "downtime_minutes": {k: round(v, 3) for k, v in downtime.items()},
            # The outcome of the inspections made from the MES's quality results.
            "quality": {
                inspection["mes_characteristic"]: (
                    "pass" if inspection["state"] == "success" else "fail"
                )
                for inspection in rpc(
                    "qc.inspection",
                    "search_read",
                    [("production_id", "in", pid), ("mes_message_id", "!=", False)],
                    ["mes_characteristic", "state"],
                    order="id",
                )
            },
        }
    return result


def _assert_same(odoo, mes, units=True):
    assert set(odoo) == set(mes)
    for name in mes:
        assert odoo[name] == mes[name], f"{name}: Odoo {odoo[name]} != MES {mes[name]}"
    # The shift really exercised every kind of report.
    assert any(t["scrap"] for t in mes.values())
    assert any(t["downtime_minutes"] for t in mes.values())
    assert any(len(lots) > 1 for t in mes.values() for lots in t["consumed"].values())
    assert any("fail" in t["quality"].values() for t in mes.values())
    if units:
        units_made = sum(len(s) for t in mes.values() for s in t["serials"].values())
        assert units_made >= 50, units_made
        outcomes = {o for t in mes.values() for r in t["rework"].values() for o in r}
        assert outcomes == {"good", "scrapped"}, outcomes
        crew = {o for t in mes.values() for o in t["labor_minutes"]}
        assert crew == {"MES1001", "MES1002"}, crew


def _assert_parts(rpc, orders):
    """Orders of lots confirmed in parts over two shifts: each part an order of its own,
    done, with its own finished lot where the product has lots."""
    families = _families(rpc, orders)
    parts = []
    for ids in families.values():
        rows = rpc("mrp.production", "read", ids, ["product_id", "state", "lot_producing_id"])
        if len(ids) > 1 and "FM-400" not in rows[0]["product_id"][1]:
            parts.append(rows)
    assert len(parts) >= 3, parts
    for rows in parts:
        assert {row["state"] for row in rows} == {"done"}, rows
        lots = {row["lot_producing_id"][1] for row in rows if row["lot_producing_id"]}
        assert len(lots) in (0, len(rows)), rows


def _assert_breakdowns_became_maintenance(rpc, simulator, orders):
    """Each breakdown of the shift: one corrective request on the assembly press, closed."""
    events = [item["body"] for item in simulator.get("/events?after=0&limit=5000")["events"]]
    breakdowns = [
        e["data"]["downtime_id"]
        for e in events
        if e["order_ref"] in orders
        and e["event_type"] == "downtime_started"
        and e["data"]["reason"] == "BREAKDOWN"
    ]
    assert len(breakdowns) >= 4
    requests_ = rpc(
        "maintenance.request",
        "search_read",
        [("mes_downtime_ref", "in", breakdowns)],
        ["mes_downtime_ref", "maintenance_type", "duration", "equipment_id", "stage_id"],
    )
    assert sorted(r["mes_downtime_ref"] for r in requests_) == sorted(breakdowns)
    for request in requests_:
        assert request["maintenance_type"] == "corrective"
        assert round(request["duration"], 3) == 0.5  # the 30 minutes the MES reported
        assert request["equipment_id"][1] == "Assembly press ASM1"
        done = rpc.read_one("maintenance.stage", request["stage_id"][0], ["done"])["done"]
        assert done, request


def _assert_reconciled(rpc, orders):
    """Finance's reconciliation of the shift: what the MES reported is what Odoo posted."""
    cron = rpc(
        "ir.model.data",
        "check_object_reference",
        "mes_reconciliation",
        "ir_cron_mes_reconciliation_refresh",
    )
    rpc("ir.cron", "method_direct_trigger", [cron[1]])
    ids = [pid for family in _families(rpc, orders).values() for pid in family]
    records = rpc(
        "mes.reconciliation",
        "search_read",
        [("production_id", "in", ids)],
        ["production_id", "status", "unmatched", "variance_value", "pending_messages"],
    )
    assert len(records) == len(ids)
    for record in records:
        if record["status"] != "balanced":
            lines = rpc(
                "mes.reconciliation.line",
                "search_read",
                [("production_id", "=", record["production_id"][0]), ("status", "!=", "balanced")],
                ["kind", "product_id", "lot_name", "workcenter_id", "reported_qty", "posted_qty"],
            )
            raise AssertionError(f"{record['production_id'][1]} not balanced: {lines}")
        assert not record["unmatched"] and record["variance_value"] == 0, record


def test_shift_pushed_by_the_mes_posts_the_mes_totals(plant):
    rpc, simulator, _key = plant
    orders = _confirm_shift(rpc)
    mes = _run_shift(simulator, orders)
    _wait_done(rpc, orders, simulator=simulator)
    backend_id = rpc("mes.backend", "search", [("code", "=", "SIM")])[0]
    _assert_same(_odoo_totals(rpc, orders, backend_id), mes)
    _assert_parts(rpc, orders)
    _assert_breakdowns_became_maintenance(rpc, simulator, orders)
    _assert_reconciled(rpc, orders)


def test_shift_pulled_and_delivered_twice_concurrently_posts_the_mes_totals(
    plant, tmp_path_factory
):
    rpc, push_simulator, key = plant
    backend_id = rpc("mes.backend", "search", [("code", "=", "SIM")])[0]
    feed = Simulator(None, "SIM", push_simulator.mes_key, None, tmp_path_factory.mktemp("pull"))
    feed.start()
    rpc(
        "mes.backend",
        "write",
        [backend_id],
        {
            "base_url": feed.url,
            "outbound_api_key_input": push_simulator.mes_key,
            "pull_enabled": True,
            "pull_cursor": 0,
        },
    )
    try:
        orders = _confirm_shift(rpc)
        mes = _run_shift(feed, orders)
        events = [item["body"] for item in feed.get("/events?after=0&limit=5000")["events"]]
        # Half of the shift comes twice at the same time from two clients (an MES with two
        # senders after a failover); then the feed is pulled, which holds everything again.
        half = [e for e in events if e["order_ref"] in list(orders)[: len(orders) // 2]]

        def deliver(_client):
            answers = []
            for start in range(0, len(half), 25):
                for _attempt in range(20):
                    response = requests.post(
                        f"{rpc.url}/mes/api/v1/SIM/events",
                        data=json.dumps({"events": half[start : start + 25]}),
                        headers={
                            "Content-Type": "application/json",
                            "Authorization": f"Bearer {key}",
                        },
                        timeout=60,
                    )
                    # 503: the other client stores the same events right now; send again.
                    if response.status_code != 503:
                        break
                    time.sleep(float(response.headers.get("Retry-After", 1)))
                assert response.status_code == 200, response.text
                answers += [r["status"] for r in response.json()["results"]]
            return answers

        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.map(deliver, range(2))
        assert sorted(first + second).count("accepted") == len(half)
        assert [a != b for a, b in zip(first, second, strict=True)] == [True] * len(half)

        def pulled():
            rpc("mes.backend", "action_pull_now", [backend_id])
            cursor = rpc.read_one("mes.backend", backend_id, ["pull_cursor"])["pull_cursor"]
            return cursor >= max(
                item["seq"] for item in feed.get("/events?after=0&limit=5000")["events"]
            )

        wait_for(pulled, 60, "the feed to be read to its end")
        _wait_done(rpc, orders, simulator=feed)
        for name in orders:
            # Each report once, whichever of the orders split from it it posted on.
            count = rpc(
                "mes.message",
                "search_count",
                [
                    ("order_ref", "=", name),
                    ("backend_id", "=", backend_id),
                    ("direction", "=", "inbound"),
                ],
            )
            assert count == len([e for e in events if e["order_ref"] == name])
        _assert_same(_odoo_totals(rpc, orders, backend_id), mes)
    finally:
        rpc(
            "mes.backend",
            "write",
            [backend_id],
            {
                "base_url": push_simulator.url,
                "outbound_api_key_input": push_simulator.mes_key,
                "pull_enabled": False,
            },
        )
        feed.stop()


def test_shift_reported_in_b2mml_transactions_posts_the_mes_totals(plant, tmp_path_factory):
    """The same shift from an MES that reports in B2MML: a SyncProductionPerformance per
    order (scrap, downtime, quality and operation figures by the backend's conventions)."""
    rpc, push_simulator, key = plant
    backend_id = rpc("mes.backend", "search", [("code", "=", "SIM")])[0]
    b2mml_mes = Simulator(
        rpc.url,
        "SIM",
        push_simulator.mes_key,
        key,
        tmp_path_factory.mktemp("b2mml"),
        options=("--report", "b2mml-bod"),
    )
    b2mml_mes.start()
    rpc(
        "mes.backend",
        "write",
        [backend_id],
        {"base_url": b2mml_mes.url, "outbound_api_key_input": push_simulator.mes_key},
    )
    try:
        orders = _confirm_shift(rpc, BASIC_SHIFT)
        mes = _run_shift(b2mml_mes, orders, units=False)
        # Not every event is a message of its own in B2MML (a performance carries the
        # order's start and end): done orders are the sign here (no rework comes after).
        _wait_done(rpc, orders)
        documents = rpc(
            "mes.message",
            "search_read",
            [
                ("backend_id", "=", backend_id),
                ("message_type", "=", "b2mml_document"),
                ("child_ids.production_id", "in", list(orders.values())),
            ],
            ["payload", "state"],
        )
        # A transaction per order or more (the MES sends what it has when it sends), each
        # read and kept.
        assert len(documents) >= len(orders)
        assert all(d["payload"].lstrip().startswith("<?xml") for d in documents)
        assert all("<SyncProductionPerformance" in d["payload"] for d in documents)
        assert {d["state"] for d in documents} == {"processed"}
        _assert_same(_odoo_totals(rpc, orders, backend_id), mes, units=False)
        _assert_reconciled(rpc, orders)
    finally:
        rpc(
            "mes.backend",
            "write",
            [backend_id],
            {"base_url": push_simulator.url, "outbound_api_key_input": push_simulator.mes_key},
        )
        b2mml_mes.stop()
