"""A new product goes to an MES that knows only what it was told (strict), on running servers.

Its first order sends the master data first (the product, its new lot-tracked component
and the lots received of it, the new work center, the bill of materials), then the order;
the strict MES runs it, and Odoo ends with the MES's totals, reconciled. A renamed product
sends one master-data revision, an unrelated write none.
"""

import threading
import uuid
from urllib.parse import quote

import pytest

from .conftest import OdooRpc, Simulator, wait_for
from .test_shift import _assert_reconciled, _odoo_totals, _wait_done

pytestmark = pytest.mark.e2e


def _receive(rpc, product_id, lots):
    """Receive ``lots`` ({lot: quantity}, lot None when untracked) of a product, as a
    warehouse does."""
    picking_type = rpc(
        "stock.picking.type",
        "search_read",
        [("code", "=", "incoming"), ("warehouse_id.mes_live", "=", True)],
        ["default_location_src_id", "default_location_dest_id"],
        limit=1,
    )[0]
    source = picking_type["default_location_src_id"][0]
    destination = picking_type["default_location_dest_id"][0]
    uom = rpc.read_one("product.product", product_id, ["uom_id"])["uom_id"][0]
    picking = rpc(
        "stock.picking",
        "create",
        {
            "picking_type_id": picking_type["id"],
            "location_id": source,
            "location_dest_id": destination,
            "move_ids": [
                (
                    0,
                    0,
                    {
                        "name": "E2E receipt",
                        "product_id": product_id,
                        "product_uom_qty": sum(lots.values()),
                        "product_uom": uom,
                        "location_id": source,
                        "location_dest_id": destination,
                    },
                )
            ],
        },
    )
    rpc("stock.picking", "action_confirm", [picking])
    move = rpc("stock.picking", "read", [picking], ["move_ids"])[0]["move_ids"][0]
    rpc(
        "stock.move",
        "write",
        [move],
        {
            "move_line_ids": [(5, 0, 0)]
            + [
                (
                    0,
                    0,
                    {
                        **({"lot_name": lot} if lot else {}),
                        "quantity": quantity,
                        "product_id": product_id,
                        "product_uom_id": uom,
                        "location_id": source,
                        "location_dest_id": destination,
                    },
                )
                for lot, quantity in lots.items()
            ],
            "picked": True,
        },
    )
    rpc("stock.picking", "button_validate", [picking])
    assert rpc.read_one("stock.picking", picking, ["state"])["state"] == "done"


def _new_product(rpc, tag):
    """A valve made of a new lot-tracked resin and caps, moulded on a new work center."""
    workcenter = rpc(
        "mrp.workcenter", "create", {"name": f"Moulding cell {tag}", "code": f"MC-{tag}"}
    )
    resin = rpc(
        "product.product",
        "create",
        {
            "name": f"Resin {tag}",
            "default_code": f"RES-{tag}",
            "is_storable": True,
            "tracking": "lot",
        },
    )
    cap = rpc(
        "product.product",
        "create",
        {"name": f"Cap {tag}", "default_code": f"CAP-{tag}", "is_storable": True},
    )
    valve = rpc(
        "product.product",
        "create",
        {"name": f"Valve {tag}", "default_code": f"VAL-{tag}", "is_storable": True},
    )
    template = rpc.read_one("product.product", valve, ["product_tmpl_id"])["product_tmpl_id"][0]
    bom = rpc(
        "mrp.bom",
        "create",
        {
            "product_tmpl_id": template,
            "product_qty": 1,
            "consumption": "flexible",
            "operation_ids": [
                (
                    0,
                    0,
                    {
                        "name": "Mould",
                        "workcenter_id": workcenter,
                        "sequence": 10,
                        "time_cycle_manual": 12,
                    },
                )
            ],
        },
    )
    operation = rpc.read_one("mrp.bom", bom, ["operation_ids"])["operation_ids"][0]
    rpc(
        "mrp.bom",
        "write",
        [bom],
        {
            "bom_line_ids": [
                (0, 0, {"product_id": resin, "product_qty": 2, "operation_id": operation}),
                (0, 0, {"product_id": cap, "product_qty": 1}),
            ]
        },
    )
    # Caps are not tracked; resin is received lot by lot.
    _receive(rpc, cap, {None: 100})
    _receive(rpc, resin, {f"RES-{tag}-A": 20, f"RES-{tag}-B": 20})
    return {"workcenter": workcenter, "resin": resin, "cap": cap, "valve": valve, "bom": bom}


def _master_messages(rpc, backend_id, since_id):
    return rpc(
        "mes.message",
        "search_read",
        [
            ("backend_id", "=", backend_id),
            ("master_data_id", "!=", False),
            ("id", ">", since_id),
        ],
        ["message_type", "master_data_id", "revision", "state", "error_text"],
        order="id",
    )


@pytest.fixture
def strict_mes(plant, tmp_path_factory):
    """The plant's backend sending master data to a strict MES of its own, for one test."""
    rpc, push_simulator, key = plant
    backend_id = rpc("mes.backend", "search", [("code", "=", "SIM")])[0]
    strict = Simulator(
        rpc.url,
        "SIM",
        push_simulator.mes_key,
        key,
        tmp_path_factory.mktemp("strict"),
        options=("--strict",),
    ).start()
    rpc(
        "mes.backend",
        "write",
        [backend_id],
        {
            "base_url": strict.url,
            "outbound_api_key_input": push_simulator.mes_key,
            "master_data_enabled": True,
        },
    )
    try:
        yield rpc, strict, backend_id
    finally:
        rpc(
            "mes.backend",
            "write",
            [backend_id],
            {
                "base_url": push_simulator.url,
                "outbound_api_key_input": push_simulator.mes_key,
                "master_data_enabled": False,
            },
        )
        strict.stop()


def test_new_product_goes_to_a_strict_mes_master_data_first(strict_mes):
    rpc, strict, backend_id = strict_mes
    tag = uuid.uuid4().hex[:6].upper()
    made = _new_product(rpc, tag)
    last = max(rpc("mes.message", "search", [], order="id desc", limit=1) or [0])
    production = rpc(
        "mrp.production",
        "create",
        {"product_id": made["valve"], "product_qty": 6, "bom_id": made["bom"]},
    )
    rpc("mrp.production", "action_confirm", [production])
    name = rpc.read_one("mrp.production", production, ["name"])["name"]

    def exported():
        return rpc.read_one("mrp.production", production, ["mes_state"])["mes_state"] == (
            "acknowledged"
        )

    wait_for(exported, 120, "the order to reach the strict MES")
    sent = _master_messages(rpc, backend_id, last)
    assert sorted((m["message_type"], m["master_data_id"][1]) for m in sent) == sorted(
        [
            ("master_material", f"Material VAL-{tag}"),
            ("master_material", f"Material RES-{tag}"),
            ("master_material", f"Material CAP-{tag}"),
            ("master_equipment", f"Equipment MC-{tag}"),
            ("master_bom", f"Bill of materials BOM-{made['bom']}"),
            ("master_lot", f"Material lot RES-{tag}/RES-{tag}-A"),
            ("master_lot", f"Material lot RES-{tag}/RES-{tag}-B"),
        ]
    )
    # The lots go beside the order (it does not wait for them): all taken in a moment.
    wait_for(
        lambda: {m["state"] for m in _master_messages(rpc, backend_id, last)} == {"acknowledged"},
        60,
        "the master data to be acknowledged",
    )
    # The MES had what the order names before the order: it took the order only then.
    held = {(item["kind"], item["code"]): item for item in strict.get("/master-data")["items"]}
    order = strict.get(f"/orders/{quote(name, safe='')}")
    assert order["revision"] == 1
    assert all(
        item["received_at"] < order["received_at"]
        for (kind, _code), item in held.items()
        if kind != "lot"
    )
    assert held[("material", f"RES-{tag}")]["payload"]["tracking"] == "lot"
    assert held[("equipment", f"MC-{tag}")]["payload"]["code"] == f"MC-{tag}"

    strict.post("/control", {"breakdown_every": 1, "quality_fail_every": 0})
    strict.post(f"/orders/{quote(name, safe='')}/run")
    mes = {name: strict.get("/totals")["orders"][name]}
    orders = {name: production}
    _wait_done(rpc, orders)
    assert _odoo_totals(rpc, orders, backend_id) == mes
    # The shop floor consumed the lots Odoo sent it, 12 of resin for 6 valves.
    assert sum(mes[name]["consumed"][f"RES-{tag}"].values()) == 12
    assert set(mes[name]["consumed"][f"RES-{tag}"]) <= {f"RES-{tag}-A", f"RES-{tag}-B"}
    _assert_reconciled(rpc, orders)

    # A renamed product: one revision; an unrelated write: none.
    before = _master_messages(rpc, backend_id, last)
    rpc("product.product", "write", [made["resin"]], {"name": f"Resin PA6 {tag}"})
    rpc("product.product", "write", [made["resin"]], {"list_price": 4.5})
    rpc(
        "product.template",
        "write",
        [rpc.read_one("product.product", made["valve"], ["product_tmpl_id"])["product_tmpl_id"][0]],
        {"description": "unrelated"},
    )
    after = _master_messages(rpc, backend_id, before[-1]["id"] if before else last)
    assert [(m["message_type"], m["master_data_id"][1], m["revision"]) for m in after] == [
        ("master_material", f"Material RES-{tag}", 2)
    ]

    def renamed():
        item = next(
            i
            for i in strict.get("/master-data?kind=material")["items"]
            if i["code"] == f"RES-{tag}"
        )
        return item["revision"] == 2 and item["payload"]["name"] == f"Resin PA6 {tag}"

    wait_for(renamed, 60, "the MES to hold the renamed resin")


def test_two_first_orders_at_once_send_the_master_data_once(strict_mes):
    """Two planners confirm the first two orders of a new product at the same instant:
    both reach the MES, its master data is written once (the second transaction meets
    the first's rows and is tried again, never refused)."""
    rpc, strict, backend_id = strict_mes
    tag = uuid.uuid4().hex[:6].upper()
    made = _new_product(rpc, tag)
    last = max(rpc("mes.message", "search", [], order="id desc", limit=1) or [0])
    productions = [
        rpc(
            "mrp.production",
            "create",
            {"product_id": made["valve"], "product_qty": qty, "bom_id": made["bom"]},
        )
        for qty in (2, 3)
    ]
    barrier = threading.Barrier(len(productions))
    errors = []

    def confirm(production):
        planner = OdooRpc(rpc.url, rpc.db)
        barrier.wait()
        try:
            planner("mrp.production", "action_confirm", [production])
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=confirm, args=(p,)) for p in productions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []

    def exported():
        states = rpc("mrp.production", "read", productions, ["mes_state"])
        return all(s["mes_state"] == "acknowledged" for s in states)

    wait_for(exported, 120, "both orders to reach the strict MES")
    sent = _master_messages(rpc, backend_id, last)
    written = sorted(m["master_data_id"][1] for m in sent)
    assert written == sorted(set(written)), written  # each record once
    assert len(written) == 7
    held = strict.get("/master-data?kind=material")["items"]
    assert {i["code"]: i["revision"] for i in held if i["code"].endswith(tag)} == {
        f"VAL-{tag}": 1,
        f"RES-{tag}": 1,
        f"CAP-{tag}": 1,
    }
