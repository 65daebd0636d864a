"""The simulator's shift mode: serial-numbered units, partial shifts and rework."""

import pytest
from orders import order_document

from mes_connector import validate_event
from mes_connector.messages import Component, Product
from mes_connector.simulator.shopfloor import run_order, totals

METER = Product(code="FM-400", name="Flow meter", tracking="serial")
BODY = Component(Product(code="PH-10", tracking="lot"), 3.0, "Units", operation_sequence=10)
SENSOR = Component(Product(code="SM-41", tracking="serial"), 3.0, "Units")
SCREWS = Component(Product(code="SCR-M6"), 12.0, "Units")
LOTS = {"PH-10": ["PH-A", "PH-B"], "SM-41": [f"SM-{n}" for n in range(1, 8)]}


def _events(order, **options):
    """The run as event documents, checked against the event schema."""
    documents = []
    for number, (event_type, data) in enumerate(run_order(order, LOTS, seed=1, **options), 1):
        document = {
            "schema": "mes.event/1",
            "event_id": f"E-{number}",
            "event_type": event_type,
            "order_ref": order["order_id"],
            "sequence": number,
            "occurred_at": "2026-01-31T08:00:00Z",
            "data": data,
        }
        validate_event(document)
        documents.append(document)
    return documents


def _meters(quantity=3.0):
    return order_document(
        product=METER, quantity=quantity, components=(BODY, SENSOR, SCREWS), order_id="MO/7"
    )


def test_serial_units_are_reported_one_by_one_with_what_went_into_each():
    events = _events(_meters(), quality_fail=False, breakdown=False)
    units = [e["data"] for e in events if e["event_type"] == "output_produced"]
    assert [u["serials"] for u in units] == [["MO-7-SN001"], ["MO-7-SN002"], ["MO-7-SN003"]]
    assert [u["quantity"] for u in units] == [1, 1, 1]
    assert units[0]["components"] == [
        {"product": "PH-10", "quantity": 1.0, "uom": "Units", "lot": "PH-A"},
        {"product": "SM-41", "quantity": 1.0, "uom": "Units", "serials": ["SM-1"]},
        {"product": "SCR-M6", "quantity": 4.0, "uom": "Units"},
    ]
    assert units[1]["components"][0]["lot"] == "PH-B"
    assert units[2]["components"][1]["serials"] == ["SM-3"]
    assert [e["event_type"] for e in events][-1] == "order_completed"
    assert not any(e["event_type"] == "material_consumed" for e in events)
    summary = totals(events)["MO/7"]
    assert summary["produced"] == {"FM-400": 3.0}
    assert summary["serials"] == {"FM-400": ["MO-7-SN001", "MO-7-SN002", "MO-7-SN003"]}
    assert summary["consumed"] == {
        "PH-10": {"PH-A": 2.0, "PH-B": 1.0},
        "SM-41": {"SM-1": 1.0, "SM-2": 1.0, "SM-3": 1.0},
        "SCR-M6": {"": 12.0},
    }


def test_serials_of_components_are_used_once_across_runs():
    used = set()
    first = _events(_meters(), used_serials=used)
    second = _events(_meters(), used_serials=used)
    sensors = [
        serial
        for events in (first, second)
        for e in events
        if e["event_type"] == "output_produced"
        for c in e["data"]["components"]
        if c["product"] == "SM-41"
        for serial in c["serials"]
    ]
    assert sensors == [f"SM-{n}" for n in range(1, 7)]
    with pytest.raises(ValueError, match="no serial of SM-41 left"):
        _events(_meters(), used_serials=used)


def test_a_partial_run_confirms_its_first_shift_as_a_part():
    order = order_document(quantity=5.0, order_id="MO/8")
    events = _events(order, partial=True, quality_fail=False)
    kinds = [(e["event_type"], e["data"].get("final")) for e in events]
    completions = [k for k in kinds if k[0] == "order_completed"]
    assert completions == [("order_completed", False), ("order_completed", None)]
    outputs = [e["data"] for e in events if e["event_type"] == "output_produced"]
    assert [(o["quantity"], o["lot"]) for o in outputs] == [(2.0, "MO-8-L1"), (3.0, "MO-8-L2")]
    # The part is confirmed after its output and before the second shift's.
    assert (
        kinds.index(("order_completed", False))
        < [i for i, e in enumerate(events) if e["event_type"] == "output_produced"][1]
    )
    summary = totals(events)["MO/8"]
    assert summary["produced"] == {"FG-TABLE": 5.0}
    assert sum(summary["consumed"]["C-LEG"].values()) == 20.0
    quality = [e["data"] for e in events if e["event_type"] == "quality_result"]
    assert quality[0]["lot"] == "MO-8-L2"


@pytest.mark.parametrize("result", ["good", "scrapped"])
def test_a_unit_sent_to_rework(result):
    events = _events(_meters(), rework=result, breakdown=False)
    started, completed = (
        e["data"] for e in events if e["event_type"] in ("rework_started", "rework_completed")
    )
    assert started["serials"] == ["MO-7-SN001"] and started["reason"] in ("DAMAGED", "DIMENSION")
    assert completed == {
        "product": "FM-400",
        "quantity": 1,
        "uom": "Units",
        "serials": ["MO-7-SN001"],
        "result": result,
    }
    summary = totals(events)["MO/7"]
    assert summary["rework"] == {started["reason"]: {result: 1.0}}
    scrapped = summary["scrap"].get(started["reason"], {}).get("FM-400")
    assert scrapped == (1.0 if result == "scrapped" else None)


def test_rework_of_a_lot_comes_after_the_final_confirmation():
    events = _events(order_document(quantity=4.0, order_id="MO/9"), rework="good")
    kinds = [e["event_type"] for e in events]
    assert kinds[-3:] == ["order_completed", "rework_started", "rework_completed"]
    assert events[-1]["data"]["lot"] == "MO-9-L1"


def test_serial_units_must_be_whole():
    with pytest.raises(ValueError, match="tracked by serial: a whole number of units"):
        run_order(_meters(2.5), LOTS)
