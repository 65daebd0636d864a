"""The simulator as an MES that keeps master data: its answers, strict order intake and
the lots the shop floor consumes."""

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from lxml import etree

from mes_connector import bod, master_data_idempotency_key, order_idempotency_key
from mes_connector.b2mml import order_to_production_schedule
from mes_connector.b2mml_master import master_data_to_b2mml
from mes_connector.master_data import BillOfMaterials, Equipment, Material, MaterialLot
from mes_connector.messages import Component, Operation, Product
from mes_connector.simulator import Store
from mes_connector.simulator import __main__ as cli


def _key(kind, code, revision):
    return master_data_idempotency_key("test-db/SIM", kind, code, revision)


def _headers(sim, key=None, content_type=None):
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    if key:
        headers["Idempotency-Key"] = key
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def _post(sim, document, key):
    return requests.post(
        f"{sim.url}/api/v1/master-data", json=document, headers=_headers(sim, key), timeout=5
    )


def _post_xml(sim, xml, key):
    return requests.post(
        f"{sim.url}/api/v1/master-data",
        data=xml,
        headers=_headers(sim, key, "application/xml"),
        timeout=5,
    )


def _items(sim, kind=None):
    query = f"?kind={kind}" if kind else ""
    response = requests.get(
        f"{sim.url}/api/v1/master-data{query}", headers=_headers(sim), timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _control(sim, **switches):
    return requests.post(f"{sim.url}/api/v1/control", json=switches, timeout=5)


def _send(sim, *documents):
    """Deliver documents as Odoo would (one key per kind, code and revision)."""
    for document in documents:
        kind = {"mes.material/1": "material", "mes.equipment/1": "equipment"}.get(
            document["schema"], "bom" if document["schema"] == "mes.bom/1" else "lot"
        )
        code = document.get("code") or f"{document['product']}/{document['lot']}"
        response = _post(sim, document, _key(kind, code, document["revision"]))
        assert response.status_code == 201, response.text


def _material(code="C-LEG", revision=1, **overrides):
    values = {"name": f"Material {code}", "uom": "Units", "revision": revision, **overrides}
    return Material(code, **values).to_dict()


def _equipment(code="WC-ASM", revision=1, **overrides):
    values = {"name": f"Work center {code}", "revision": revision, **overrides}
    return Equipment(code, **values).to_dict()


def _lot(lot, status="released", product="C-LEG", revision=1):
    return MaterialLot(product, lot, status=status, revision=revision).to_dict()


def _post_order(sim, order, key=None):
    key = key or order_idempotency_key("test-db/SIM", order["order_id"], order["revision"])
    return requests.post(
        f"{sim.url}/api/v1/orders", json=order, headers=_headers(sim, key), timeout=5
    )


# ---------------------------------------------------------------------------
# Intake
# ---------------------------------------------------------------------------


def test_created_updated_duplicate_and_stale(simulator):
    first = _post(simulator, _material(revision=1), "k1")
    assert (first.status_code, first.json()) == (
        201,
        {"status": "created", "kind": "material", "code": "C-LEG", "revision": 1},
    )
    again = _post(simulator, _material(revision=1), "k1")
    assert (again.status_code, again.json()) == (
        200,
        {"status": "duplicate", "kind": "material", "code": "C-LEG", "revision": 1},
    )
    third = _post(simulator, _material(revision=3, name="Leg, oak"), "k3")
    assert (third.status_code, third.json()) == (
        201,
        {"status": "updated", "kind": "material", "code": "C-LEG", "revision": 3},
    )
    for revision, key in ((2, "k2"), (3, "k3-again")):
        stale = _post(simulator, _material(revision=revision), key)
        assert (stale.status_code, stale.json()) == (
            409,
            {
                "error": "stale revision",
                "reason": f"material C-LEG: revision {revision} arrives while the MES holds "
                "revision 3",
            },
        )
    # The first key is still a duplicate, answered with what it brought.
    assert _post(simulator, _material(revision=1), "k1").json()["status"] == "duplicate"
    [item] = _items(simulator)
    received_at = item.pop("received_at")
    assert received_at.startswith("20")
    assert item == {
        "kind": "material",
        "code": "C-LEG",
        "revision": 3,
        "active": True,
        "payload": _material(revision=3, name="Leg, oak"),
        "deliveries": 4,
    }
    assert simulator.store.master_data_duplicates() == 2


def test_concurrent_deliveries_of_one_key_store_it_once(simulator):
    barrier = threading.Barrier(8)

    def post(_n):
        barrier.wait(timeout=5)
        return _post(simulator, _material(), "same-key")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert {a.json()["revision"] for a in answers} == {1}
    [item] = _items(simulator)
    assert item["deliveries"] == 8
    assert simulator.store.master_data_duplicates() == 7


def test_records_are_kept_per_kind_and_code(simulator):
    _send(
        simulator,
        _material("WC-ASM"),
        _equipment("WC-ASM"),
        _lot("L-1"),
        _lot("L-1", product="C-TOP"),
        BillOfMaterials("BOM-1", Product("FG"), 1.0, "Units").to_dict(),
    )
    assert [(i["kind"], i["code"], i["revision"]) for i in _items(simulator)] == [
        ("material", "WC-ASM", 1),
        ("equipment", "WC-ASM", 1),
        ("lot", "C-LEG/L-1", 1),
        ("lot", "C-TOP/L-1", 1),
        ("bom", "BOM-1", 1),
    ]
    assert [i["code"] for i in _items(simulator, "lot")] == ["C-LEG/L-1", "C-TOP/L-1"]
    assert [i["code"] for i in _items(simulator, "equipment")] == ["WC-ASM"]
    assert simulator.store.master_data_record("lot", "C-TOP/L-1")["payload"] == _lot(
        "L-1", product="C-TOP"
    )
    assert simulator.store.master_data_record("lot", "C-TOP/L-2") is None
    assert _items(simulator, "bom")[0]["payload"]["product"] == {
        "code": "FG",
        "name": "",
        "tracking": "none",
    }


def test_b2mml_is_taken_bare_and_in_its_transaction(simulator):
    bom = BillOfMaterials(
        "BOM-9",
        Product("FG-TABLE", "Table", "lot"),
        1.0,
        "Units",
        components=(Component(Product("C-LEG"), 4.0, "Units", 10),),
        operations=(Operation(10, "Assembly", "WC-ASM", 30.0),),
        revision=2,
    ).to_dict()
    bare = _post_xml(simulator, master_data_to_b2mml(bom), "x1")
    assert (bare.status_code, bare.json()) == (
        201,
        {"status": "created", "kind": "bom", "code": "BOM-9", "revision": 2},
    )
    newer = dict(bom, revision=3, active=False)
    wrapped = bod.wrap(
        master_data_to_b2mml(newer),
        "Sync",
        sender="ODOO",
        bod_id="x2",
        created=datetime(2026, 3, 2, tzinfo=UTC),
    )
    answer = _post_xml(simulator, wrapped, "x2")
    assert (answer.status_code, answer.json()["status"]) == (201, "updated")
    [item] = _items(simulator, "bom")
    assert (item["revision"], item["active"], item["payload"]) == (3, False, newer)


def _information(*documents):
    """One MaterialInformation holding the records of ``documents``."""
    root = etree.fromstring(master_data_to_b2mml(documents[0]))
    for document in documents[1:]:
        root.extend(list(etree.fromstring(master_data_to_b2mml(document))))
    return etree.tostring(root)


def test_one_document_of_several_records_is_taken_whole(simulator):
    answer = _post_xml(simulator, _information(_material("C-A"), _lot("L-9", product="C-A")), "s1")
    assert (answer.status_code, answer.json()) == (
        201,
        {
            "status": "created",
            "kind": "material",
            "code": "C-A",
            "revision": 1,
            "items": [
                {"status": "created", "kind": "material", "code": "C-A", "revision": 1},
                {"status": "created", "kind": "lot", "code": "C-A/L-9", "revision": 1},
            ],
        },
    )
    # One stale record refuses the whole document: the new one is not kept either.
    xml = _information(_material("C-B"), _lot("L-9", product="C-A", revision=2), _material("C-A"))
    answer = _post_xml(simulator, xml, "s2")
    assert (answer.status_code, answer.json()) == (
        409,
        {
            "error": "stale revision",
            "reason": "material C-A: revision 1 arrives while the MES holds revision 1",
        },
    )
    assert [(i["code"], i["revision"]) for i in _items(simulator)] == [("C-A", 1), ("C-A/L-9", 1)]


def test_the_same_record_twice_in_a_document_is_invalid(simulator):
    answer = _post_xml(simulator, _information(_material("C-A"), _material("C-A")), "twice")
    assert (answer.status_code, answer.json()) == (
        422,
        {
            "error": "master data is not valid",
            "errors": [
                {
                    "field": "(record 2)",
                    "value": "material C-A",
                    "reason": "is carried twice: a document carries a record once",
                }
            ],
        },
    )
    assert _items(simulator) == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            dict(_material(), uom=""),
            [{"field": "uom", "value": "", "reason": "must not be empty"}],
        ),
        (
            {"schema": "mes.product/1", "code": "X"},
            [
                {
                    "field": "schema",
                    "value": "mes.product/1",
                    "reason": "is not a master data schema (mes.material/1, mes.equipment/1, "
                    "mes.bom/1, mes.material_lot/1)",
                }
            ],
        ),
        (
            dict(_lot("L-1"), status="quarantine"),
            [
                {
                    "field": "status",
                    "value": "quarantine",
                    "reason": 'is not one of "released", "hold"',
                }
            ],
        ),
        ([1, 2], [{"field": "(message)", "value": [1, 2], "reason": "is not a JSON object"}]),
    ],
)
def test_invalid_json_is_refused_naming_field_and_value(simulator, document, expected):
    answer = _post(simulator, document, "bad")
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "master data is not valid", "errors": expected},
    )
    assert _items(simulator) == []


def test_invalid_b2mml_is_refused_naming_the_element(simulator):
    xml = master_data_to_b2mml(_material()).replace(b"<ID>Tracking</ID>", b"<ID>Colour</ID>")
    answer = _post_xml(simulator, xml, "bad-xml")
    assert (answer.status_code, answer.json()) == (
        422,
        {
            "error": "master data is not valid B2MML",
            "errors": [
                {
                    "field": "MaterialDefinition[1]/MaterialDefinitionProperty[3]/ID",
                    "value": "Colour",
                    "reason": "is not a property this reader knows "
                    "(Revision, UnitOfMeasure, Tracking, Active)",
                }
            ],
        },
    )
    hostile = b'<!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]><MaterialInformation/>'
    answer = _post_xml(simulator, hostile, "hostile")
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["value"] == "<!DOCTYPE"


def test_key_and_kind_are_checked(simulator):
    answer = _post(simulator, _material(), None)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "the Idempotency-Key header is required"},
    )
    answer = requests.get(
        f"{simulator.url}/api/v1/master-data?kind=product", headers=_headers(simulator), timeout=5
    )
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "kind: 'product' must be one of material, equipment, bom, lot"},
    )
    unauthorized = requests.post(
        f"{simulator.url}/api/v1/master-data",
        json=_material(),
        headers={"Idempotency-Key": "k"},
        timeout=5,
    )
    assert unauthorized.status_code == 401


def test_refused_materials(simulator):
    answer = _control(simulator, refuse_materials={"C-LEG": "no storage class for lot items"})
    assert answer.json()["refuse_materials"] == {"C-LEG": "no storage class for lot items"}
    refused = _post(simulator, _material(), "r1")
    assert (refused.status_code, refused.json()) == (
        422,
        {"error": "material refused", "reason": "no storage class for lot items"},
    )
    # Other kinds with that code, and other materials, are taken.
    assert _post(simulator, _equipment("C-LEG"), "r2").status_code == 201
    assert _post(simulator, _material("C-TOP"), "r3").status_code == 201
    _control(simulator, refuse_materials={})
    assert _post(simulator, _material(), "r1").status_code == 201
    # A key received before is a duplicate, whatever the MES refuses since.
    simulator.refuse_materials = {"C-LEG": "blocked"}
    assert _post(simulator, _material(), "r1").status_code == 200


@pytest.mark.parametrize(
    ("switches", "error"),
    [
        ({"refuse_materials": ["C-LEG"]}, "refuse_materials: ['C-LEG'] must map material codes"),
        ({"refuse_materials": {"C-LEG": 3}}, "refuse_materials: {'C-LEG': 3} must map material"),
        ({"strict": "yes"}, "strict: 'yes' must be true or false"),
    ],
)
def test_master_data_switches_are_checked(simulator, switches, error):
    answer = _control(simulator, **switches)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)
    assert (simulator.strict, simulator.refuse_materials) == (False, {})


def test_master_data_survives_a_restart(make_simulator, stop_simulator, tmp_path):
    path = str(tmp_path / "mes.sqlite")
    first = make_simulator(store=Store(path))
    _send(first, _material(), _lot("L-1"))
    stop_simulator(first)
    first.store.close()
    second = make_simulator(store=Store(path))
    assert [(i["code"], i["deliveries"]) for i in _items(second)] == [
        ("C-LEG", 1),
        ("C-LEG/L-1", 1),
    ]
    assert _post(second, _material(), _key("material", "C-LEG", 1)).status_code == 200
    assert second.store.lots_for("C-LEG") == ["L-1"]


# ---------------------------------------------------------------------------
# Strict order intake
# ---------------------------------------------------------------------------


def _strict_order(make_order):
    return make_order(
        product=Product("FG-TABLE", "Table", "lot"),
        components=(
            Component(Product("C-TOP"), 1.0, "Units", operation_sequence=10),
            Component(Product("C-LEG"), 4.0, "Units", operation_sequence=10),
        ),
        byproducts=(Component(Product("OFFCUT"), 0.5, "kg"),),
        operations=(Operation(10, "Assembly", "WC-ASM", 30.0), Operation(20, "Pack", "WC-PACK")),
    )


def _unknown(field, code, kind):
    return {
        "field": field,
        "value": code,
        "reason": f"is unknown to the MES: send its {kind} master first",
    }


def test_strict_mes_refuses_an_order_naming_unknown_codes(make_simulator, make_order):
    sim = make_simulator(strict=True)
    _send(sim, _material("C-LEG"), _equipment("WC-PACK"))
    order = _strict_order(make_order)
    answer = _post_order(sim, order)
    assert (answer.status_code, answer.json()) == (
        422,
        {
            "error": "order names master data unknown to the MES",
            "reason": "material FG-TABLE, material C-TOP, material OFFCUT, equipment WC-ASM",
            "errors": [
                _unknown("product.code", "FG-TABLE", "material"),
                _unknown("components[0].product.code", "C-TOP", "material"),
                _unknown("byproducts[0].product.code", "OFFCUT", "material"),
                _unknown("operations[0].resource", "WC-ASM", "equipment"),
            ],
        },
    )
    assert sim.store.orders() == []
    # Once the MES holds them, the same order (and key) goes.
    _send(sim, _material("FG-TABLE"), _material("C-TOP"), _material("OFFCUT"), _equipment())
    answer = _post_order(sim, order)
    assert (answer.status_code, answer.json()) == (
        201,
        {"status": "created", "mes_order_id": "MES-000001"},
    )


def test_strict_mes_refuses_a_retired_material(make_simulator, make_order):
    sim = make_simulator(strict=True)
    codes = ("FG-TABLE", "C-TOP", "C-LEG", "OFFCUT")
    _send(sim, *(_material(code) for code in codes), _equipment(), _equipment("WC-PACK"))
    _send(sim, _material("C-LEG", revision=2, active=False))
    answer = _post_order(sim, _strict_order(make_order))
    assert (answer.status_code, answer.json()) == (
        422,
        {
            "error": "order names master data unknown to the MES",
            "reason": "material C-LEG",
            "errors": [
                {
                    "field": "components[1].product.code",
                    "value": "C-LEG",
                    "reason": "is inactive in the MES (its material master, revision 2, says "
                    "so): send an active revision first",
                }
            ],
        },
    )
    _send(sim, _material("C-LEG", revision=3))
    assert _post_order(sim, _strict_order(make_order)).status_code == 201


def test_strict_is_a_switch_and_spares_redeliveries_and_cancellations(simulator, make_order):
    order = make_order()  # FG-TABLE, C-LEG, WC-ASM: none known
    assert _post_order(simulator, order).status_code == 201
    assert _control(simulator, strict=True).json()["strict"] is True
    assert _post_order(simulator, order).json() == {
        "status": "duplicate",
        "mes_order_id": "MES-000001",
    }
    changed = make_order(revision=2, action="change", quantity=6.0)
    refused = _post_order(simulator, changed)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == [
        "product.code",
        "components[0].product.code",
        "operations[0].resource",
    ]
    cancel = make_order(revision=2, action="cancel")
    assert _post_order(simulator, cancel).status_code == 201
    _control(simulator, strict=False)
    assert _post_order(simulator, make_order("WH/MO/00002")).status_code == 201


def test_strict_applies_to_orders_in_b2mml(make_simulator, make_order):
    sim = make_simulator(strict=True)
    _send(sim, _material("FG-TABLE"), _equipment())
    answer = requests.post(
        f"{sim.url}/api/v1/orders",
        data=order_to_production_schedule(make_order()),
        headers=_headers(sim, "xml-order", "application/xml"),
        timeout=5,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == [_unknown("components[0].product.code", "C-LEG", "material")]


def test_cli_strict_switch(monkeypatch, tmp_path):
    made = {}

    class FakeServer:
        url = "http://127.0.0.1:0"

        def __init__(self, **kwargs):
            made.update(kwargs)

        def start(self):
            return self

        def stop(self):
            made["stopped"] = True

    # The signal handler is called at once: main() stops as if interrupted.
    monkeypatch.setattr(cli, "SimulatorServer", FakeServer)
    monkeypatch.setattr(signal, "signal", lambda _sig, handler: handler())
    cli.main(["--strict", "--db", str(tmp_path / "sim.sqlite")])
    assert (made["strict"], made["stopped"]) == (True, True)
    made["store"].close()
    cli.main(["--db", str(tmp_path / "sim.sqlite")])
    assert made["strict"] is False
    made["store"].close()


# ---------------------------------------------------------------------------
# Lots the shop floor consumes
# ---------------------------------------------------------------------------


def _run(sim, order):
    assert _post_order(sim, order).status_code == 201
    mes_order_id = _post_order(sim, order).json()["mes_order_id"]
    answer = requests.post(
        f"{sim.url}/api/v1/orders/{mes_order_id}/run", headers=_headers(sim), timeout=5
    )
    assert answer.status_code == 200, answer.text
    return [
        (e["data"]["lot"], e["data"]["quantity"])
        for e in answer.json()["events"]
        if e["event_type"] == "material_consumed" and e["data"]["product"] == "C-LEG"
    ]


def _lot_order(make_order, order_id):
    return make_order(
        order_id,
        components=(Component(Product("C-LEG", tracking="lot"), 20.0, "Units", 10),),
    )


def test_released_lots_sent_as_master_data_are_consumed_first(make_simulator, make_order):
    sim = make_simulator(lots={"C-LEG": ["HAND-1"]})
    _send(sim, _lot("L-2"), _lot("L-1"), _lot("L-0", product="C-TOP"))
    assert sim.store.lots_for("C-LEG") == ["L-2", "L-1"]
    assert sim.usable_lots() == {"C-LEG": ["L-2", "L-1", "HAND-1"], "C-TOP": ["L-0"]}
    # 20 units over the first two lots, in the order they were received.
    assert _run(sim, _lot_order(make_order, "MO-1")) == [("L-2", 10.0), ("L-1", 10.0)]


def test_held_lots_are_never_consumed(make_simulator, make_order):
    sim = make_simulator(lots={"C-LEG": ["HAND-1", "L-1"]})
    _send(sim, _lot("L-1", status="hold"), _lot("L-2"))
    assert sim.usable_lots() == {"C-LEG": ["L-2", "HAND-1"]}
    assert _run(sim, _lot_order(make_order, "MO-1")) == [("L-2", 10.0), ("HAND-1", 10.0)]
    # L-2 put on hold later: no longer used; released again: used again, in its place.
    _send(sim, _lot("L-2", status="hold", revision=2))
    assert sim.store.lots_for("C-LEG") == []
    assert _run(sim, _lot_order(make_order, "MO-2")) == [("HAND-1", 20.0)]
    _send(sim, _lot("L-2", revision=3), _lot("L-3"))
    assert sim.usable_lots() == {"C-LEG": ["L-2", "L-3", "HAND-1"]}


def test_lots_registered_by_hand_still_work_alone(make_simulator, make_order):
    sim = make_simulator()
    assert requests.post(
        f"{sim.url}/api/v1/materials",
        json={"lots": {"C-LEG": ["HAND-9"]}},
        headers=_headers(sim),
        timeout=5,
    ).json() == {"lots": {"C-LEG": ["HAND-9"]}}
    assert _run(sim, _lot_order(make_order, "MO-1")) == [("HAND-9", 20.0)]


def test_totals_are_unchanged_by_master_data(make_simulator, make_order):
    sim = make_simulator()
    _send(sim, _lot("L-1"))
    _run(sim, _lot_order(make_order, "MO-1"))
    totals = requests.get(f"{sim.url}/api/v1/totals", headers=_headers(sim), timeout=5).json()
    assert totals["orders"]["MO-1"]["consumed"]["C-LEG"]["L-1"] >= 20.0
    assert totals["orders"]["MO-1"]["produced"] == {"FG-TABLE": 5.0}
