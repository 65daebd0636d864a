"""B2MML: the ProductionSchedule written for the MES and the ProductionPerformance read from it.

Written documents are checked against the official V0600 XSD set; the V0600 inputs
of the reader are checked against it too, so the reader is tested on real shapes.
"""

import copy
import functools
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from b2mml_xsd import load_xsd
from lxml import etree
from orders import order_document

from mes_connector import MessageValidationError, b2mml, bod, validate_event, validate_order
from mes_connector.b2mml import (
    NS_V0401,
    NS_V0500,
    NS_V0600,
    order_to_production_schedule,
    production_performance_to_events,
    production_schedule_to_order,
)
from mes_connector.messages import Component, Operation, Product
from mes_connector.simulator import shopfloor
from mes_connector.validation import MISSING

REPO = Path(__file__).resolve().parent.parent
NS = {"b": NS_V0600}
PUBLISHED = datetime(2026, 1, 30, 18, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------
# The official XSDs
# ---------------------------------------------------------------------------


# Plain cached functions, not fixtures: a missing XSD set makes the tests that need
# it FAIL (a fixture would only report a setup error), and the set is read once.
@functools.cache
def _schedule_xsd():
    return load_xsd("B2MML-V0600-ProductionSchedule.xsd")


@functools.cache
def _performance_xsd():
    return load_xsd("B2MML-V0600-ProductionPerformance.xsd")


def _assert_valid(schema, xml):
    document = etree.fromstring(xml)
    if not schema.validate(document):
        pytest.fail("not valid against the XSD:\n" + "\n".join(str(e) for e in schema.error_log))
    return document


# ---------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------


def _order(**overrides):
    return order_document(**overrides)


# Order shapes: the writer tests check what each becomes, the round trips below
# that it comes back.


def _several_operations_order():
    return _order(
        planned_start=datetime(2026, 2, 2, 8, 0, tzinfo=timezone(timedelta(hours=2))),
        planned_end=datetime(2026, 2, 2, 16, 30, tzinfo=UTC),
        priority=7,
        components=(
            Component(Product("GLUE", "Glue"), 0.05, "kg"),
            Component(Product("C-LEG"), 20.0, "Units", operation_sequence=30),
            Component(Product("C-TOP"), 1.0, "Units", operation_sequence=10),
            Component(Product("SCREW"), 16.0, "Units", operation_sequence=30),
        ),
        operations=(
            Operation(10, "Cut", "WC-CUT", 90.5),
            Operation(20, "Drill", "WC-DRILL", 0.0),
            Operation(30, "Assembly", "WC-ASM", 1e-3),
            # Odoo lets two operations share a sequence: the first one gets its components.
            Operation(30, "Assembly, second station", "WC-ASM2", 600.0),
        ),
    )


def _tracked_components_order():
    return _order(
        product=Product("FG-CHAIR", "Chair"),
        quantity=2.0,
        components=(
            Component(Product("C-WOOD", "Oak", "lot"), 3.5, "m", operation_sequence=10),
            Component(Product("C-MOTOR", "Motor", "serial"), 2.0, "Units", operation_sequence=10),
            Component(Product("C-PAINT", "Paint", "lot"), 0.25, "L"),
        ),
    )


def _change_order():
    return _order(revision=3, action="change", quantity=8.0, origin="S00042")


def _cancel_order():
    return _order(revision=4, action="cancel")


def _finished_lots_order():
    return _order(
        product=Product("FG-CHAIR", "Chair", "serial"),
        quantity=3.0,
        finished_lots=("SN-0001", "SN-0002", "SN-0003"),
    )


def _no_operations_order():
    return _order(
        company="YourCompany",
        quantity=1e-7,
        components=(Component(Product("C-LEG"), 4.0, "Units"),),
        operations=(),
    )


def _byproduct_bom_order():
    # A BOM with by-products: sawdust from the cut, offcuts of the whole order. The
    # by-products are listed operation first: they come back order-level first.
    return _order(
        components=(
            Component(Product("GLUE", "Glue"), 0.05, "kg"),
            Component(Product("C-BOARD", "Oak board", "lot"), 2.0, "Units", operation_sequence=10),
            Component(Product("SCREW"), 16.0, "Units", operation_sequence=20),
        ),
        operations=(
            Operation(10, "Cut", "WC-CUT", 45.0),
            Operation(20, "Assembly", "WC-ASM", 30.0),
        ),
        byproducts=(
            Component(Product("SAWDUST", "Sawdust"), 0.8, "kg", operation_sequence=10),
            Component(Product("OFFCUT", "Oak offcut", "lot"), 0.25, "m"),
        ),
    )


def _write(order, **kwargs):
    kwargs.setdefault("published_at", PUBLISHED)
    return _assert_valid(_schedule_xsd(), order_to_production_schedule(order, **kwargs))


def _texts(element, path):
    return [e.text for e in element.xpath(path, namespaces=NS)]


def _one(element, path):
    found = element.xpath(path, namespaces=NS)
    assert len(found) == 1, f"{path}: {len(found)} matches"
    return found[0]


def _materials(segment):
    """(code, use, quantity, uom, tracking or None) of a segment's own requirements.

    The use of an ``Other`` is ``Other/<its OtherValue>``.
    """
    out = []
    for requirement in segment.xpath("b:MaterialRequirement", namespaces=NS):
        tracking = _texts(
            requirement, "b:MaterialRequirementProperty[b:ID='Tracking']/b:Value/b:ValueString"
        )
        use = _one(requirement, "b:MaterialUse")
        other = use.get("OtherValue")
        out.append(
            (
                _one(requirement, "b:MaterialDefinitionID").text,
                use.text if other is None else f"{use.text}/{other}",
                _one(requirement, "b:Quantity/b:QuantityString").text,
                _one(requirement, "b:Quantity/b:UnitOfMeasure").text,
                tracking[0] if tracking else None,
            )
        )
    return out


def _parameters(segment):
    return {
        _one(p, "b:ID").text: _one(p, "b:Value/b:ValueString").text
        for p in segment.xpath("b:ProductionParameter/b:Parameter", namespaces=NS)
    }


def test_one_operation_order_is_a_valid_production_schedule():
    root = _write(_order())

    assert root.tag == f"{{{NS_V0600}}}ProductionSchedule"
    assert _texts(root, "b:ID") == ["WH/MO/00001/R1"]
    assert _texts(root, "b:PublishedDate") == ["2026-01-30T18:00:00Z"]
    request = _one(root, "b:ProductionRequest")
    assert _texts(request, "b:ID") == ["WH/MO/00001"]
    assert _texts(request, "b:Priority") == ["0"]
    assert _texts(request, "b:RequestState") == ["Released"]
    order_segment = _one(request, "b:SegmentRequirement")
    assert _texts(order_segment, "b:ID") == ["WH/MO/00001"]
    assert _texts(order_segment, "b:Description") == ["Table"]
    assert _parameters(order_segment) == {"Revision": "1", "Action": "create"}
    assert _materials(order_segment) == [("FG-TABLE", "Produced", "5", "Units", "lot")]
    operation = _one(order_segment, "b:SegmentRequirement")
    assert _texts(operation, "b:ID") == ["10"]
    assert _texts(operation, "b:ProcessSegmentID") == ["10"]
    assert _texts(operation, "b:Description") == ["Assembly"]
    assert _texts(operation, "b:Duration") == ["PT30M"]
    assert _texts(operation, "b:EquipmentRequirement/b:EquipmentID") == ["WC-ASM"]
    assert _materials(operation) == [("C-LEG", "Consumed", "20", "Units", None)]


def test_several_operations_get_their_own_components_times_and_durations():
    request = _one(_write(_several_operations_order()), "b:ProductionRequest")

    assert _texts(request, "b:StartTime") == ["2026-02-02T06:00:00Z"]
    assert _texts(request, "b:EndTime") == ["2026-02-02T16:30:00Z"]
    assert _texts(request, "b:Priority") == ["7"]
    order_segment = _one(request, "b:SegmentRequirement")
    assert _texts(order_segment, "b:EarliestStartTime") == ["2026-02-02T06:00:00Z"]
    assert _texts(order_segment, "b:LatestEndTime") == ["2026-02-02T16:30:00Z"]
    assert _materials(order_segment) == [
        ("FG-TABLE", "Produced", "5", "Units", "lot"),
        ("GLUE", "Consumed", "0.05", "kg", None),
    ]
    operations = order_segment.xpath("b:SegmentRequirement", namespaces=NS)
    assert [_texts(s, "b:ProcessSegmentID")[0] for s in operations] == ["10", "20", "30", "30"]
    assert [_texts(s, "b:EquipmentRequirement/b:EquipmentID")[0] for s in operations] == [
        "WC-CUT",
        "WC-DRILL",
        "WC-ASM",
        "WC-ASM2",
    ]
    # 0 minutes is "no expected duration": no Duration rather than an instant.
    assert [_texts(s, "b:Duration") for s in operations] == [
        ["PT1H30M30S"],
        [],
        ["PT0.06S"],
        ["PT10H"],
    ]
    assert [[m[0] for m in _materials(s)] for s in operations] == [
        ["C-TOP"],
        [],
        ["C-LEG", "SCREW"],
        [],
    ]


def test_tracked_components_carry_their_tracking_as_a_property():
    order_segment = _one(
        _write(_tracked_components_order()), "b:ProductionRequest/b:SegmentRequirement"
    )

    assert _materials(order_segment) == [
        ("FG-CHAIR", "Produced", "2", "Units", None),
        ("C-PAINT", "Consumed", "0.25", "L", "lot"),
    ]
    assert _materials(_one(order_segment, "b:SegmentRequirement")) == [
        ("C-WOOD", "Consumed", "3.5", "m", "lot"),
        ("C-MOTOR", "Consumed", "2", "Units", "serial"),
    ]
    assert _texts(
        order_segment, ".//b:MaterialRequirement[b:MaterialDefinitionID='C-WOOD']/b:Description"
    ) == ["Oak"]


def test_change_revision_is_released_with_its_revision_and_action():
    root = _write(_change_order())

    assert _texts(root, "b:ID") == ["WH/MO/00001/R3"]
    request = _one(root, "b:ProductionRequest")
    assert _texts(request, "b:RequestState") == ["Released"]
    order_segment = _one(request, "b:SegmentRequirement")
    assert _parameters(order_segment) == {"Revision": "3", "Action": "change", "Origin": "S00042"}
    assert _materials(order_segment)[0][2] == "8"


def test_cancel_revision_is_an_other_request_state_cancelled():
    root = _write(_cancel_order())

    state = _one(root, "b:ProductionRequest/b:RequestState")
    assert (state.text, state.get("OtherValue")) == ("Other", "Cancelled")
    assert _parameters(_one(root, "b:ProductionRequest/b:SegmentRequirement")) == {
        "Revision": "4",
        "Action": "cancel",
    }


def test_order_without_operations_keeps_everything_in_the_order_segment():
    request = _one(_write(_no_operations_order()), "b:ProductionRequest")

    assert _texts(request, "b:HierarchyScope/b:EquipmentID") == ["YourCompany"]
    assert _texts(request, "b:HierarchyScope/b:EquipmentElementLevel") == ["Enterprise"]
    order_segment = _one(request, "b:SegmentRequirement")
    assert order_segment.xpath("b:SegmentRequirement", namespaces=NS) == []
    # xs:decimal has no exponent: 1e-07 is written out.
    assert _materials(order_segment) == [
        ("FG-TABLE", "Produced", "0.0000001", "Units", "lot"),
        ("C-LEG", "Consumed", "4", "Units", None),
    ]


def test_finished_lots_are_lot_ids_of_the_produced_material():
    order_segment = _one(_write(_finished_lots_order()), "b:ProductionRequest/b:SegmentRequirement")

    produced = _one(order_segment, "b:MaterialRequirement[b:MaterialUse='Produced']")
    assert _texts(produced, "b:MaterialLotID") == ["SN-0001", "SN-0002", "SN-0003"]
    assert _materials(order_segment)[0] == ("FG-CHAIR", "Produced", "3", "Units", "serial")
    # Components name no lot: the MES picks them.
    assert (
        order_segment.xpath(
            ".//b:MaterialRequirement[b:MaterialUse='Consumed']/b:MaterialLotID", namespaces=NS
        )
        == []
    )


def test_by_products_are_other_by_product_produced_in_their_operation_segment():
    order_segment = _one(_write(_byproduct_bom_order()), "b:ProductionRequest/b:SegmentRequirement")

    byproduct = "Other/By-product Produced"
    assert _materials(order_segment) == [
        ("FG-TABLE", "Produced", "5", "Units", "lot"),
        ("GLUE", "Consumed", "0.05", "kg", None),
        ("OFFCUT", byproduct, "0.25", "m", "lot"),
    ]
    operations = order_segment.xpath("b:SegmentRequirement", namespaces=NS)
    assert [_materials(s) for s in operations] == [
        [
            ("C-BOARD", "Consumed", "2", "Units", "lot"),
            ("SAWDUST", byproduct, "0.8", "kg", None),
        ],
        [("SCREW", "Consumed", "16", "Units", None)],
    ]
    assert _texts(
        order_segment, ".//b:MaterialRequirement[b:MaterialDefinitionID='SAWDUST']/b:Description"
    ) == ["Sawdust"]
    # Like components, by-products name no lot: the MES reports the ones it makes.
    lots = ".//b:MaterialRequirement[b:MaterialUse='Other']/b:MaterialLotID"
    assert order_segment.xpath(lots, namespaces=NS) == []


def test_by_products_of_an_operation_shared_by_two_go_to_the_first():
    order = _order(
        operations=(Operation(10, "Cut", "WC-CUT", 5.0), Operation(10, "Cut 2", "WC-CUT2", 5.0)),
        byproducts=(Component(Product("SAWDUST"), 1.0, "kg", operation_sequence=10),),
    )
    operations = _one(_write(order), "b:ProductionRequest/b:SegmentRequirement").xpath(
        "b:SegmentRequirement", namespaces=NS
    )
    assert [[m[0] for m in _materials(s)] for s in operations] == [["C-LEG", "SAWDUST"], []]


def test_published_date_defaults_to_now_and_naive_means_utc():
    naive = _write(_order(), published_at=datetime(2026, 3, 1, 9, 15))
    assert _texts(naive, "b:PublishedDate") == ["2026-03-01T09:15:00Z"]

    before = datetime.now(UTC).replace(microsecond=0)
    root = _write(_order(), published_at=None)
    published = datetime.fromisoformat(_texts(root, "b:PublishedDate")[0])
    assert before <= published <= datetime.now(UTC)


def test_invalid_order_is_refused_with_its_fields():
    order = _order()
    order["quantity"] = 0
    del order["uom"]
    with pytest.raises(MessageValidationError) as info:
        order_to_production_schedule(order)
    assert [e.field for e in info.value.errors] == ["quantity", "uom"]


def test_component_of_a_missing_operation_is_refused():
    order = _order(components=(Component(Product("C-LEG"), 20.0, "Units", operation_sequence=99),))
    with pytest.raises(MessageValidationError) as info:
        order_to_production_schedule(order)
    assert [(e.field, e.value) for e in info.value.errors] == [
        ("components[0].operation_sequence", 99)
    ]


def test_by_product_of_a_missing_operation_is_refused():
    order = _order(byproducts=(Component(Product("SAWDUST"), 1.0, "kg", operation_sequence=99),))
    with pytest.raises(MessageValidationError) as info:
        order_to_production_schedule(order)
    assert [(e.field, e.value) for e in info.value.errors] == [
        ("byproducts[0].operation_sequence", 99)
    ]


def test_text_xml_cannot_carry_is_refused_not_dropped():
    order = _order(operations=(Operation(10, "Cut\x01", "WC-CUT", 5.0),), components=())
    with pytest.raises(MessageValidationError) as info:
        order_to_production_schedule(order)
    assert [e.field for e in info.value.errors] == ["operations[0].name"]


# ---------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------


def _performance(ns, *responses, doc_id="PP-2026-0001", published="2026-01-31T12:00:00Z"):
    head = f"<ID>{doc_id}</ID>" if doc_id else ""
    if published:
        head += f"<PublishedDate>{published}</PublishedDate>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ProductionPerformance xmlns="{ns}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"{head}{''.join(responses)}</ProductionPerformance>"
    ).encode()


def _response(*segments, request="WH/MO/00001", state="Completed", end="2026-01-31T11:30:00Z"):
    return (
        "<ProductionResponse><ID>MES-000001</ID>"
        f"<ProductionRequestID>{request}</ProductionRequestID>"
        "<StartTime>2026-01-31T08:00:00Z</StartTime>"
        + (f"<EndTime>{end}</EndTime>" if end else "")
        + "".join(segments)
        + (f"<ResponseState>{state}</ResponseState>" if state else "")
        + "</ProductionResponse>"
    )


def _material(product, use, quantity, uom, lot=None, element="MaterialActual"):
    """A material actual; ``use`` is the MaterialUse text, its whole element, or "" for none."""
    lot_xml = f"<MaterialLotID>{lot}</MaterialLotID>" if lot else ""
    if use and not use.startswith("<"):
        use = f"<MaterialUse>{use}</MaterialUse>"
    return (
        f"<{element}><MaterialDefinitionID>{product}</MaterialDefinitionID>{lot_xml}"
        f"{use}<Quantity><QuantityString>{quantity}</QuantityString>"
        f'<DataType xsi:nil="true"/><UnitOfMeasure>{uom}</UnitOfMeasure></Quantity></{element}>'
    )


# A realistic two-operation run: steel by lot in KG at 10, legs and the table at 20.
SEGMENT_10 = (
    "<SegmentResponse><ID>SR-10</ID><ProcessSegmentID>10</ProcessSegmentID>"
    "<Location><EquipmentID>PLANT-1</EquipmentID><EquipmentElementLevel>Site"
    "</EquipmentElementLevel></Location>"
    "<ActualStartTime>2026-01-31T08:00:00Z</ActualStartTime>"
    "<ActualEndTime>2026-01-31T09:30:00Z</ActualEndTime>"
    "<EquipmentActual><EquipmentID>WC-CUT</EquipmentID></EquipmentActual>"
    + _material("STEEL", "Consumed", "12.5", "KG", lot="LOT-2026-007")
    + "<SegmentState>Completed</SegmentState></SegmentResponse>"
)
SEGMENT_20 = (
    "<SegmentResponse><ID>SR-20</ID><ProcessSegmentID>20</ProcessSegmentID>"
    "<ActualStartTime>2026-01-31T09:30:00Z</ActualStartTime>"
    "<ActualEndTime>2026-01-31T11:00:00+01:00</ActualEndTime>"
    "<PersonnelActual><PersonID>ANN</PersonID></PersonnelActual>"
    "<EquipmentActual><EquipmentID>WC-ASM</EquipmentID></EquipmentActual>"
    + _material("C-LEG", "Consumed", "20", "Units", lot="LEG-L3")
    + _material("FG-TABLE", "Produced", "5", "Units", lot="FG-L1")
    + "<SegmentState>Completed</SegmentState></SegmentResponse>"
)
EXPECTED_RUN = [
    (
        "material_consumed",
        {"product": "STEEL", "quantity": 12.5, "uom": "KG", "lot": "LOT-2026-007", "operation": 10},
    ),
    (
        "operation_completed",
        {
            "operation": 10,
            "resource": "WC-CUT",
            "started_at": "2026-01-31T08:00:00+00:00",
            "ended_at": "2026-01-31T09:30:00+00:00",
        },
    ),
    (
        "material_consumed",
        {"product": "C-LEG", "quantity": 20.0, "uom": "Units", "lot": "LEG-L3", "operation": 20},
    ),
    (
        "output_produced",
        {"product": "FG-TABLE", "quantity": 5.0, "uom": "Units", "lot": "FG-L1", "operation": 20},
    ),
    (
        "operation_completed",
        {
            "operation": 20,
            "resource": "WC-ASM",
            "worker": "ANN",
            "good_quantity": 5.0,
            "uom": "Units",
            "started_at": "2026-01-31T09:30:00+00:00",
            "ended_at": "2026-01-31T11:00:00+01:00",
        },
    ),
    ("order_completed", {}),
]


def _events(xml, **kwargs):
    events = production_performance_to_events(xml, **kwargs)
    for event in events:
        validate_event(event)
    return events


def _errors(xml, **kwargs):
    with pytest.raises(MessageValidationError) as info:
        production_performance_to_events(xml, **kwargs)
    return [(e.field, e.value) for e in info.value.errors], str(info.value)


def test_v0401_lot_tracked_consumption_in_kg_is_a_material_consumed_event():
    xml = _performance(NS_V0401, _response(SEGMENT_10, state=None))
    events = _events(xml)

    consumed = events[0]
    assert consumed["event_type"] == "material_consumed"
    assert consumed["order_ref"] == "WH/MO/00001"
    assert consumed["mes_order_id"] == "MES-000001"
    assert consumed["data"] == {
        "product": "STEEL",
        "quantity": 12.5,
        "uom": "KG",
        "lot": "LOT-2026-007",
        "operation": 10,
    }
    assert consumed["occurred_at"] == "2026-01-31T09:30:00+00:00"
    assert [e["event_type"] for e in events] == ["material_consumed", "operation_completed"]


@pytest.mark.parametrize("ns", [NS_V0401, NS_V0500, NS_V0600])
def test_a_whole_run_gives_the_same_events_in_every_namespace(ns):
    xml = _performance(ns, _response(SEGMENT_10, SEGMENT_20))
    if ns == NS_V0600:
        _assert_valid(_performance_xsd(), xml)

    events = _events(xml)

    assert [(e["event_type"], e["data"]) for e in events] == EXPECTED_RUN
    assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e["event_id"] for e in events] == [
        "PP-2026-0001:R1.S1.M1",
        "PP-2026-0001:R1.S1",
        "PP-2026-0001:R1.S2.M1",
        "PP-2026-0001:R1.S2.M2",
        "PP-2026-0001:R1.S2",
        "PP-2026-0001:R1.done",
    ]
    assert {e["order_ref"] for e in events} == {"WH/MO/00001"}
    assert events[-1]["occurred_at"] == "2026-01-31T11:30:00+00:00"


def test_namespaces_give_identical_events():
    runs = [
        _events(_performance(ns, _response(SEGMENT_10, SEGMENT_20)))
        for ns in (NS_V0401, NS_V0500, NS_V0600)
    ]
    assert runs[0] == runs[1] == runs[2]


def test_same_document_same_ids_and_sequences_can_continue():
    xml = _performance(NS_V0600, _response(SEGMENT_10, SEGMENT_20))
    first = _events(xml)
    assert _events(xml) == first
    later = _events(xml, first_sequence=41)
    assert [e["sequence"] for e in later] == [41, 42, 43, 44, 45, 46]
    with pytest.raises(ValueError):
        production_performance_to_events(xml, first_sequence=-1)
    assert len({e["event_id"] for e in first}) == len(first)


@pytest.mark.parametrize(
    ("ns", "use"),
    [
        (NS_V0401, "By-product Produced"),
        (NS_V0401, "ByProductProduced"),
        (NS_V0500, "By-Product Produced"),
        (NS_V0500, "Byproduct"),
        (NS_V0401, "Co-product Produced"),
        (NS_V0600, '<MaterialUse OtherValue="By-product Produced">Other</MaterialUse>'),
    ],
)
def test_produced_and_by_product_are_output_produced(ns, use):
    segment = (
        "<SegmentResponse><ProcessSegmentID>30</ProcessSegmentID>"
        "<ActualEndTime>2026-01-31T10:00:00Z</ActualEndTime>"
        + _material("FG-TABLE", "Produced", "4", "Units")
        + _material("CHIPS", use, "0.75", "KG")
        + _material("FG-TABLE", "Produced", "1", "Units")
        + "</SegmentResponse>"
    )
    xml = _performance(ns, _response(segment, state="Running"))
    if ns == NS_V0600:
        _assert_valid(_performance_xsd(), xml)

    events = _events(xml)

    assert [(e["event_type"], e["data"]) for e in events] == [
        (
            "output_produced",
            {"product": "FG-TABLE", "quantity": 4.0, "uom": "Units", "operation": 30},
        ),
        ("output_produced", {"product": "CHIPS", "quantity": 0.75, "uom": "KG", "operation": 30}),
        (
            "output_produced",
            {"product": "FG-TABLE", "quantity": 1.0, "uom": "Units", "operation": 30},
        ),
        # The by-product is not the operation's good quantity; no order_completed while running.
        (
            "operation_completed",
            {
                "operation": 30,
                "good_quantity": 5.0,
                "uom": "Units",
                "ended_at": "2026-01-31T10:00:00+00:00",
            },
        ),
    ]


def test_v0401_legacy_consumed_and_produced_actual_elements():
    segment = (
        "<SegmentResponse><ID>40</ID>"
        + _material("RESIN", "", "3", "KG", lot="R-1", element="MaterialConsumedActual")
        + _material("FG-BOX", "", "10", "Units", element="MaterialProducedActual")
        + "</SegmentResponse>"
    )
    events = _events(_performance(NS_V0401, _response(segment, state=None)))

    assert [(e["event_type"], e["data"]) for e in events] == [
        (
            "material_consumed",
            {"product": "RESIN", "quantity": 3.0, "uom": "KG", "lot": "R-1", "operation": 40},
        ),
        (
            "output_produced",
            {"product": "FG-BOX", "quantity": 10.0, "uom": "Units", "operation": 40},
        ),
        ("operation_completed", {"operation": 40, "good_quantity": 10.0, "uom": "Units"}),
    ]


def test_running_operations_are_progress_and_the_order_is_not_completed():
    running = (
        "<SegmentResponse><ProcessSegmentID>10</ProcessSegmentID>"
        "<ActualStartTime>2026-01-31T08:00:00Z</ActualStartTime>"
        "<SegmentState>Running</SegmentState></SegmentResponse>"
    )
    no_state_open = (
        "<SegmentResponse><ProcessSegmentID>20</ProcessSegmentID>"
        "<ActualStartTime>2026-01-31T08:10:00Z</ActualStartTime></SegmentResponse>"
    )
    no_state_ended = (
        "<SegmentResponse><ProcessSegmentID>30</ProcessSegmentID>"
        "<ActualEndTime>2026-01-31T08:20:00Z</ActualEndTime></SegmentResponse>"
    )
    xml = _performance(NS_V0600, _response(running, no_state_open, no_state_ended, state="Running"))

    events = _events(xml)

    assert [(e["event_type"], e["data"]["operation"]) for e in events] == [
        ("operation_progress", 10),
        ("operation_progress", 20),
        ("operation_completed", 30),
    ]


def test_completed_order_is_reported_after_everything_else_of_its_response():
    other_order = _response(
        "<SegmentResponse><ProcessSegmentID>10</ProcessSegmentID>"
        + _material("C-LEG", "Consumed", "4", "Units")
        + "<SegmentState>Running</SegmentState></SegmentResponse>",
        request="WH/MO/00002",
        state="Running",
        end=None,
    )
    xml = _performance(NS_V0600, _response(SEGMENT_10, SEGMENT_20), other_order)
    _assert_valid(_performance_xsd(), xml)

    events = _events(xml)

    assert [(e["order_ref"], e["event_type"]) for e in events] == [
        ("WH/MO/00001", "material_consumed"),
        ("WH/MO/00001", "operation_completed"),
        ("WH/MO/00001", "material_consumed"),
        ("WH/MO/00001", "output_produced"),
        ("WH/MO/00001", "operation_completed"),
        ("WH/MO/00001", "order_completed"),
        ("WH/MO/00002", "material_consumed"),
        ("WH/MO/00002", "operation_progress"),
    ]
    assert [e["sequence"] for e in events] == list(range(1, 9))
    assert events[-1]["event_id"] == "PP-2026-0001:R2.S1"
    # Without an end time of its own, the second response's events date from PublishedDate.
    assert events[-1]["occurred_at"] == "2026-01-31T12:00:00+00:00"


@pytest.mark.parametrize("state", ["Completed", "Finished"])
def test_finished_is_completed_too(state):
    events = _events(_performance(NS_V0401, _response(state=state)))
    assert [(e["event_type"], e["data"], e["event_id"]) for e in events] == [
        ("order_completed", {}, "PP-2026-0001:R1.done")
    ]


def test_occurred_at_comes_from_segment_response_or_document_assuming_utc():
    segment = (
        "<SegmentResponse><ProcessSegmentID>10</ProcessSegmentID>"
        + _material("STEEL", "Consumed", "1", "KG")
        + "</SegmentResponse>"
    )
    with_end = _events(_performance(NS_V0600, _response(segment, end="2026-01-31T11:30:00+01:00")))
    assert {e["occurred_at"] for e in with_end} == {"2026-01-31T11:30:00+01:00"}

    naive = _events(
        _performance(NS_V0600, _response(segment, end=None), published="2026-02-01T07:00:00")
    )
    assert {e["occurred_at"] for e in naive} == {"2026-02-01T07:00:00+00:00"}

    errors, _text = _errors(_performance(NS_V0600, _response(segment, end=None), published=None))
    assert errors == [("ProductionResponse[1]/EndTime", MISSING)]


def test_a_bad_value_is_named_by_its_xml_path_and_value():
    bad = (
        "<SegmentResponse><ProcessSegmentID>20</ProcessSegmentID>"
        + _material("STEEL", "Consumed", "12,5", "KG")
        + "</SegmentResponse>"
    )
    xml = _performance(NS_V0401, _response(SEGMENT_10, bad))

    errors, text = _errors(xml)

    assert errors == [
        (
            "ProductionResponse[1]/SegmentResponse[2]/MaterialActual[1]/Quantity/QuantityString",
            "12,5",
        )
    ]
    assert "ProductionResponse[1]/SegmentResponse[2]/MaterialActual[1]/Quantity" in text
    assert '"12,5" is not a number' in text


def test_every_problem_of_a_document_is_reported_at_once():
    segment = (
        "<SegmentResponse><ProcessSegmentID>10</ProcessSegmentID>"
        "<ActualEndTime>31.01.2026 09:00</ActualEndTime>"
        "<MaterialActual><MaterialUse>Consumed</MaterialUse>"
        "<Quantity><QuantityString>-2</QuantityString><UnitOfMeasure/></Quantity></MaterialActual>"
        + _material("STEEL", "Sample", "1", "KG")
        + "<SegmentState>Aborted</SegmentState></SegmentResponse>"
    )
    xml = _performance(
        NS_V0600,
        _response(segment, state="Done"),
        _response(request="X" * 65),
    )

    errors, _text = _errors(xml)

    path = "ProductionResponse[1]/SegmentResponse[1]"
    assert errors == [
        (f"{path}/ActualEndTime", "31.01.2026 09:00"),
        (f"{path}/MaterialActual[1]/MaterialDefinitionID", MISSING),
        (f"{path}/MaterialActual[1]/Quantity/UnitOfMeasure", MISSING),
        (f"{path}/MaterialActual[1]/Quantity/QuantityString", "-2"),
        (f"{path}/MaterialActual[2]/MaterialUse", "Sample"),
        (f"{path}/SegmentState", "Aborted"),
        ("ProductionResponse[1]/ResponseState", "Done"),
        ("ProductionResponse[2]/ProductionRequestID", "X" * 65),
    ]


def test_unknown_elements_are_refused_and_extensions_skipped():
    segment = (
        '<SegmentResponse xmlns:Extended="http://www.mesa.org/xml/B2MML-V0600-AllExtensions">'
        "<ProcessSegmentID>10</ProcessSegmentID>"
        "<ActualEndTime>2026-01-31T09:00:00Z</ActualEndTime>"
        + _material("STEEL", "Consumed", "1", "KG")
        + "<Extended:ShiftCode>B</Extended:ShiftCode></SegmentResponse>"
    )
    assert [e["event_type"] for e in _events(_performance(NS_V0600, _response(segment)))] == [
        "material_consumed",
        "operation_completed",
        "order_completed",
    ]

    typo = segment.replace("<ActualEndTime>", "<ActualEnd>").replace(
        "</ActualEndTime>", "</ActualEnd>"
    )
    errors, text = _errors(_performance(NS_V0600, _response(typo)))
    assert errors == [
        ("ProductionResponse[1]/SegmentResponse[1]/ActualEnd", "2026-01-31T09:00:00Z")
    ]
    assert "is not an element of a B2MML SegmentResponse" in text

    unqualified = _performance(NS_V0600, _response()).replace(
        b"<ResponseState>", b'<Note xmlns="">hello</Note><ResponseState>'
    )
    assert _errors(unqualified)[0] == [("ProductionResponse[1]/Note", "hello")]


def test_content_that_moves_material_but_cannot_be_mapped_is_refused():
    segment = (
        "<SegmentResponse><ProcessSegmentID>10</ProcessSegmentID>"
        "<ConsumableActual><MaterialDefinitionID>GLOVES</MaterialDefinitionID>"
        "</ConsumableActual></SegmentResponse>"
    )
    errors, text = _errors(_performance(NS_V0401, _response(segment)))
    assert errors == [("ProductionResponse[1]/SegmentResponse[1]/ConsumableActual", MISSING)]
    assert "consumables" in text


def test_zero_quantities_are_skipped_and_several_lots_are_serials():
    segment = (
        "<SegmentResponse><ID>SR-1</ID>"
        + _material("C-LEG", "Consumed", "0", "Units", lot="L-1")
        # A nil lot, as some V0401 MES write "no lot".
        + "<MaterialActual><MaterialDefinitionID>OIL</MaterialDefinitionID>"
        '<MaterialLotID xsi:nil="true"/><MaterialUse>Consumed</MaterialUse>'
        "<Quantity><QuantityString>0.5</QuantityString><UnitOfMeasure>L</UnitOfMeasure>"
        "</Quantity></MaterialActual>"
        + "<MaterialActual><MaterialDefinitionID>MOTOR</MaterialDefinitionID>"
        "<MaterialLotID>SN-1</MaterialLotID><MaterialLotID>SN-2</MaterialLotID>"
        "<MaterialUse>Consumed</MaterialUse>"
        "<Quantity><QuantityString>2</QuantityString><UnitOfMeasure>Units</UnitOfMeasure>"
        "</Quantity></MaterialActual></SegmentResponse>"
    )
    events = _events(_performance(NS_V0600, _response(segment, state="Running")))

    # SR-1 is not a number: a segment that only groups materials, not an operation.
    assert [(e["event_type"], e["data"], e["event_id"]) for e in events] == [
        (
            "material_consumed",
            {"product": "OIL", "quantity": 0.5, "uom": "L"},
            "PP-2026-0001:R1.S1.M2",
        ),
        (
            "material_consumed",
            {"product": "MOTOR", "quantity": 2.0, "uom": "Units", "serials": ["SN-1", "SN-2"]},
            "PP-2026-0001:R1.S1.M3",
        ),
    ]

    repeated = segment.replace("SN-2", "SN-1")
    errors, text = _errors(_performance(NS_V0600, _response(repeated, state="Running")))
    path = "ProductionResponse[1]/SegmentResponse[1]/MaterialActual[3]/MaterialLotID"
    assert errors == [(path, ["SN-1", "SN-1"])]
    assert "repeats a serial number" in text


def test_event_ids_without_or_with_an_awkward_document_id():
    body = _response()
    anonymous = _events(_performance(NS_V0600, body, doc_id=None))
    assert anonymous[0]["event_id"].startswith("b2mml-")
    assert _events(_performance(NS_V0600, body, doc_id=None)) == anonymous
    assert _events(_performance(NS_V0401, body, doc_id=None)) != anonymous

    spaced = _events(_performance(NS_V0600, body, doc_id="PP 7 (night)"))
    dashed = _events(_performance(NS_V0600, body, doc_id="PP-7--night-"))
    assert spaced[0]["event_id"].startswith("PP-7--night--")
    assert spaced[0]["event_id"] != dashed[0]["event_id"]


def test_other_documents_are_refused():
    schedule = order_to_production_schedule(_order(), published_at=PUBLISHED)
    errors, text = _errors(schedule)
    assert errors == [("(root)", f"{{{NS_V0600}}}ProductionSchedule")]
    assert "is not a ProductionPerformance" in text

    foreign = _performance("http://www.mesa.org/xml/B2MML-V0700", _response())
    assert _errors(foreign)[0][0][0] == "(root)"


# ---------------------------------------------------------------------------
# Business Object Documents (the nouns as MES send them)
# ---------------------------------------------------------------------------


def _bod(ns, verb, *nouns, created="2026-01-31T12:05:00Z", bod_id="BOD-77", sender="MES-7"):
    """``nouns`` (bare documents, as bytes) in a ``<verb>ProductionPerformance`` BOD."""
    application = "<ApplicationArea>"
    if sender:
        application += f"<Sender><LogicalID>{sender}</LogicalID></Sender>"
    application += f"<CreationDateTime>{created}</CreationDateTime>"
    if bod_id:
        application += f"<BODID>{bod_id}</BODID>"
    application += "</ApplicationArea>"
    inner = "".join(
        etree.tostring(etree.fromstring(noun)).decode().replace(f' xmlns="{ns}"', "")
        for noun in nouns
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{verb}ProductionPerformance xmlns="{ns}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" releaseID="1.0">'
        f"{application}<DataArea><{verb}/>{inner}</DataArea></{verb}ProductionPerformance>"
    ).encode()


@pytest.mark.parametrize("ns", [NS_V0401, NS_V0500, NS_V0600])
@pytest.mark.parametrize("verb", ["Sync", "Process", "Show", "Acknowledge", "Change", "Respond"])
def test_a_wrapped_performance_reads_as_the_bare_one(ns, verb):
    bare = _performance(ns, _response(SEGMENT_10, SEGMENT_20))
    wrapped = _bod(ns, verb, bare)
    if ns == NS_V0600:
        _assert_valid(_performance_xsd(), wrapped)
    assert _events(wrapped) == _events(bare)


@pytest.mark.parametrize("verb", ["Get", "Cancel"])
def test_a_transaction_that_reports_nothing_is_refused_by_name(verb):
    wrapped = _bod(NS_V0600, verb, _performance(NS_V0600, _response(SEGMENT_10)))
    errors, text = _errors(wrapped)
    assert errors == [("(root)", f"{verb}ProductionPerformance")]
    assert f"is a {verb} transaction, which this interface does not take" in text


def test_a_transaction_of_another_noun_or_unknown_verb_is_refused():
    for root in ("SyncProductionSchedule", "PublishProductionPerformance"):
        xml = f'<{root} xmlns="{NS_V0600}" releaseID="1"><DataArea/></{root}>'.encode()
        errors, text = _errors(xml)
        assert errors == [("(root)", f"{{{NS_V0600}}}{root}")]
        assert "SyncProductionPerformance" in text  # what it takes


def test_an_envelope_without_its_data_verb_or_noun_names_what_is_missing():
    head = f'<SyncProductionPerformance xmlns="{NS_V0600}" releaseID="1">'
    tail = "</SyncProductionPerformance>"
    assert _errors(f"{head}{tail}".encode())[0] == [("DataArea", MISSING)]
    assert _errors(f"{head}<DataArea/>{tail}".encode())[0] == [
        ("DataArea/Sync", MISSING),
        ("DataArea/ProductionPerformance", MISSING),
    ]


def test_without_any_time_of_its_own_an_event_takes_the_envelopes():
    # As a real MES sends it: no EndTime, no PublishedDate, no segment times.
    segment = (
        "<SegmentResponse><ProcessSegmentID>10</ProcessSegmentID>"
        + _material("STEEL", "Consumed", "2", "KG")
        + "</SegmentResponse>"
    )
    bare = _performance(NS_V0401, _response(segment, state=None, end=None), published=None)
    assert "need a time" in _errors(bare)[1]
    events = _events(_bod(NS_V0401, "Sync", bare, created="2026-11-30T14:05:09+01:00"))
    assert {e["occurred_at"] for e in events} == {"2026-11-30T14:05:09+01:00"}
    # A malformed creation time is named by its path.
    errors, _text = _errors(_bod(NS_V0401, "Sync", bare, created="30.11.2026"))
    assert ("ApplicationArea/CreationDateTime", "30.11.2026") in errors


def test_the_same_report_resent_in_a_new_envelope_keeps_its_ids():
    bare = _performance(NS_V0600, _response(SEGMENT_10), doc_id=None)
    first = _events(_bod(NS_V0600, "Sync", bare, bod_id="BOD-1", created="2026-01-31T12:05:00Z"))
    again = _events(_bod(NS_V0600, "Sync", bare, bod_id="BOD-2", created="2026-01-31T12:09:00Z"))
    assert [e["event_id"] for e in again] == [e["event_id"] for e in first]
    assert first[0]["event_id"].startswith("b2mml-")


def test_several_performances_in_one_envelope_keep_apart():
    first = _performance(NS_V0600, _response(SEGMENT_10), doc_id=None)
    second = _performance(NS_V0600, _response(SEGMENT_10, request="WH/MO/00002"), doc_id=None)
    events = _events(_bod(NS_V0600, "Process", first, second))
    assert [(e["order_ref"], e["event_id"].split(":")[1]) for e in events] == [
        ("WH/MO/00001", "R1.S1.M1"),
        ("WH/MO/00001", "R1.S1"),
        ("WH/MO/00001", "R1.done"),
        ("WH/MO/00002", "R1.S1.M1"),
        ("WH/MO/00002", "R1.S1"),
        ("WH/MO/00002", "R1.done"),
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5, 6]
    # Each report keeps its ids, alone or beside another, in any position: sent again,
    # it posts nothing twice.
    assert len({e["event_id"] for e in events}) == 6
    alone = _events(_bod(NS_V0600, "Process", second))
    assert [e["event_id"] for e in alone] == [e["event_id"] for e in events[3:]]
    swapped = _events(_bod(NS_V0600, "Process", second, first))
    assert {e["event_id"] for e in swapped} == {e["event_id"] for e in events}
    # Errors name the noun they are in.
    broken = _performance(NS_V0600, _response(SEGMENT_10, request=""), doc_id=None)
    errors, _text = _errors(_bod(NS_V0600, "Process", first, broken))
    assert errors == [
        ("DataArea/ProductionPerformance[2]/ProductionResponse[1]/ProductionRequestID", MISSING)
    ]


# A ProductionPerformance as an MES vendor publishes it: in its Sync transaction, V0401,
# its response naming the MES's own order only, the time only in the envelope and the
# segment, a sub-lot, a QuantityString with its DataType, KG in capitals, properties.
VENDOR_SYNC = f"""<?xml version="1.0" encoding="UTF-8"?>
<SyncProductionPerformance xmlns="{NS_V0401}" releaseID="1.0" versionID="4.0.1">
  <ApplicationArea>
    <Sender><LogicalID>MES-PLANT-7</LogicalID><ComponentID>Perf</ComponentID></Sender>
    <CreationDateTime>2026-11-30T14:05:09Z</CreationDateTime>
    <BODID>7c9e6679-7425-40de-944b-e07fc1f90ae7</BODID>
  </ApplicationArea>
  <DataArea>
    <Sync><ActionCriteria><ActionExpression actionCode="Add"/></ActionCriteria></Sync>
    <ProductionPerformance>
      <ID>PP-20261130-0042</ID>
      <Location><EquipmentID>LINE-1</EquipmentID>
        <EquipmentElementLevel>ProductionLine</EquipmentElementLevel></Location>
      <ProductionResponse>
        <ID>53107</ID>
        <SegmentResponse>
          <ID>53107-10</ID>
          <ProcessSegmentID>10</ProcessSegmentID>
          <ActualStartTime>2026-11-30T12:01:00Z</ActualStartTime>
          <ProductionData><ID>ERP_ORDER</ID><Value><ValueString>WH/MO/00042</ValueString>
            <DataType>string</DataType></Value></ProductionData>
          <MaterialActual>
            <MaterialDefinitionID>PH-10</MaterialDefinitionID>
            <MaterialLotID>PH-2611-A</MaterialLotID>
            <MaterialSubLotID>PH-2611-A-03</MaterialSubLotID>
            <MaterialUse>Consumed</MaterialUse>
            <Quantity><QuantityString>12.5</QuantityString><DataType>float</DataType>
              <UnitOfMeasure>KG</UnitOfMeasure></Quantity>
            <MaterialActualProperty><ID>Temperature</ID><Value><ValueString>21.4</ValueString>
              <DataType>float</DataType><UnitOfMeasure>CEL</UnitOfMeasure></Value>
            </MaterialActualProperty>
          </MaterialActual>
        </SegmentResponse>
      </ProductionResponse>
    </ProductionPerformance>
  </DataArea>
</SyncProductionPerformance>
""".encode()


def test_a_vendors_document_is_read_by_the_mes_order_id_it_names():
    # ProductionRequestID is not there: read by it, the document is refused, saying so.
    errors, _text = _errors(VENDOR_SYNC)
    assert errors == [
        ("DataArea/ProductionPerformance[1]/ProductionResponse[1]/ProductionRequestID", MISSING)
    ]
    events = _events(VENDOR_SYNC, order_key="response")
    assert [(e["event_type"], e["data"]) for e in events] == [
        (
            "material_consumed",
            {
                "product": "PH-10",
                "quantity": 12.5,
                "uom": "KG",
                "lot": "PH-2611-A",
                "operation": 10,
            },
        ),
        ("operation_completed", {"operation": 10, "started_at": "2026-11-30T12:01:00+00:00"}),
    ]
    assert {e["mes_order_id"] for e in events} == {"53107"}
    assert all("order_ref" not in e for e in events)
    # No EndTime, no PublishedDate: the envelope's time.
    assert {e["occurred_at"] for e in events} == {"2026-11-30T14:05:09+00:00"}
    # Without its ID the response names no order at all.
    anonymous = VENDOR_SYNC.replace(b"<ID>53107</ID>", b"")
    assert _errors(anonymous, order_key="response")[0] == [
        ("DataArea/ProductionPerformance[1]/ProductionResponse[1]/ID", MISSING)
    ]


def test_a_document_may_name_odoos_order_in_production_data():
    events = _events(VENDOR_SYNC, order_key=("data", "ERP_ORDER"))
    assert {(e["order_ref"], e["mes_order_id"]) for e in events} == {("WH/MO/00042", "53107")}
    errors, text = _errors(VENDOR_SYNC, order_key=("data", "SAP_ORDER"))
    assert errors == [
        (
            "DataArea/ProductionPerformance[1]/ProductionResponse[1]//ProductionData[ID=SAP_ORDER]",
            MISSING,
        )
    ]
    assert "it names the order of this response" in text
    for wrong in ("id", ("data", ""), ("data",), ("property", "X"), None):
        with pytest.raises(ValueError, match="order_key must be"):
            production_performance_to_events(VENDOR_SYNC, order_key=wrong)


def _property(element, name, value):
    return (
        f"<{element}Property><ID>{name}</ID><Value><ValueString>{value}</ValueString>"
        f"</Value></{element}Property>"
    )


def _shop_floor_segment(
    scrap_use="<MaterialUse>Scrap</MaterialUse>",
    reason="DMG",
    end="2026-01-31T09:40:00Z",
    test="Pass",
):
    """Operation 10 with a scrap, a downtime of its line and a quality result."""
    scrap = (
        "<MaterialActual><MaterialDefinitionID>STEEL</MaterialDefinitionID>"
        f"<MaterialLotID>LOT-2026-007</MaterialLotID>{scrap_use}"
        "<Quantity><QuantityString>1.5</QuantityString><UnitOfMeasure>KG</UnitOfMeasure>"
        "</Quantity>"
        + (_property("MaterialActual", "ScrapReason", reason) if reason else "")
        + "</MaterialActual>"
    )
    output = (
        "<MaterialActual><MaterialDefinitionID>FG-TABLE</MaterialDefinitionID>"
        "<MaterialLotID>FG-L1</MaterialLotID><MaterialUse>Produced</MaterialUse>"
        "<Quantity><QuantityString>5</QuantityString><UnitOfMeasure>Units</UnitOfMeasure>"
        "</Quantity>"
        + _property("MaterialActual", "QualityResult:LEAK", test)
        + "</MaterialActual>"
    )
    downtime = (
        "<EquipmentActual><EquipmentID>WC-CUT</EquipmentID>"
        + _property("EquipmentActual", "DowntimeID", "DT-7")
        + _property("EquipmentActual", "DowntimeReason", "BRK")
        + _property("EquipmentActual", "DowntimeStart", "2026-01-31T08:20:00Z")
        + (_property("EquipmentActual", "DowntimeEnd", end) if end else "")
        + "</EquipmentActual>"
    )
    return (
        "<SegmentResponse><ID>SR-10</ID><ProcessSegmentID>10</ProcessSegmentID>"
        "<ActualStartTime>2026-01-31T08:00:00Z</ActualStartTime>"
        "<ActualEndTime>2026-01-31T10:00:00Z</ActualEndTime>"
        "<EquipmentActual><EquipmentID>WC-ASM</EquipmentID></EquipmentActual>"
        + downtime
        + scrap
        + output
        + "<SegmentState>Completed</SegmentState></SegmentResponse>"
    )


@pytest.mark.parametrize("ns", [NS_V0401, NS_V0500, NS_V0600])
def test_scrap_downtime_and_quality_travel_by_the_backends_conventions(ns):
    # V0600 names uses it has no value for as Other, with an OtherValue.
    use = '<MaterialUse OtherValue="Scrap">Other</MaterialUse>' if ns == NS_V0600 else None
    segment = _shop_floor_segment(use) if use else _shop_floor_segment()
    xml = _performance(ns, _response(segment, state=None))
    if ns == NS_V0600:
        _assert_valid(_performance_xsd(), xml)
    events = _events(xml)
    assert [(e["event_type"], e["data"], e["occurred_at"]) for e in events] == [
        (
            "downtime_started",
            {
                "downtime_id": "DT-7",
                "resource": "WC-CUT",
                "reason": "BRK",
                "started_at": "2026-01-31T08:20:00+00:00",
            },
            "2026-01-31T08:20:00+00:00",
        ),
        (
            "downtime_ended",
            {"downtime_id": "DT-7", "resource": "WC-CUT", "ended_at": "2026-01-31T09:40:00+00:00"},
            "2026-01-31T09:40:00+00:00",
        ),
        (
            "scrap_reported",
            {
                "product": "STEEL",
                "quantity": 1.5,
                "uom": "KG",
                "lot": "LOT-2026-007",
                "operation": 10,
                "reason": "DMG",
            },
            "2026-01-31T10:00:00+00:00",
        ),
        (
            "quality_result",
            {
                "characteristic": "LEAK",
                "result": "pass",
                "product": "FG-TABLE",
                "lot": "FG-L1",
                "operation": 10,
            },
            "2026-01-31T10:00:00+00:00",
        ),
        (
            "output_produced",
            {
                "product": "FG-TABLE",
                "quantity": 5.0,
                "uom": "Units",
                "lot": "FG-L1",
                "operation": 10,
            },
            "2026-01-31T10:00:00+00:00",
        ),
        (
            "operation_completed",
            {
                "operation": 10,
                "resource": "WC-ASM",  # the operation's equipment, not the one that broke down
                "good_quantity": 5.0,
                "uom": "Units",
                "started_at": "2026-01-31T08:00:00+00:00",
                "ended_at": "2026-01-31T10:00:00+00:00",
            },
            "2026-01-31T10:00:00+00:00",
        ),
    ]
    assert len({e["event_id"] for e in events}) == len(events)


def test_a_downtime_going_on_and_other_spellings():
    events = _events(
        _performance(
            NS_V0401,
            _response(
                _shop_floor_segment(scrap_use="<MaterialUse>SCRAP</MaterialUse>", end=None),
                state=None,
            ),
        )
    )
    assert [e["event_type"] for e in events][:2] == ["downtime_started", "scrap_reported"]
    # A plant's own names for them.
    ours = b2mml.Conventions(scrap_use="Reject", scrap_reason="Why", quality_prefix="QA.")
    xml = _performance(
        NS_V0600,
        _response(
            _shop_floor_segment(scrap_use="<MaterialUse>Reject</MaterialUse>", reason=None)
            .replace("<ID>QualityResult:LEAK</ID>", "<ID>QA.LEAK</ID>")
            .replace(
                "</MaterialUse>", "</MaterialUse>" + _property("MaterialActual", "Why", "BENT"), 1
            ),
            state=None,
        ),
    )
    events = _events(xml, conventions=ours)
    scrap = next(e for e in events if e["event_type"] == "scrap_reported")
    assert scrap["data"]["reason"] == "BENT"
    assert any(e["event_type"] == "quality_result" for e in events)
    with pytest.raises(ValueError, match="conventions must be"):
        production_performance_to_events(xml, conventions={"scrap_use": "Reject"})


def test_what_the_conventions_need_is_named_when_missing():
    segment = (
        _shop_floor_segment(reason=None, test="Maybe")
        .replace(_property("EquipmentActual", "DowntimeReason", "BRK"), "")
        .replace(_property("EquipmentActual", "DowntimeStart", "2026-01-31T08:20:00Z"), "")
    )
    errors, _text = _errors(_performance(NS_V0600, _response(segment, state=None)))
    base = "ProductionResponse[1]/SegmentResponse[1]"
    assert errors == [
        (f"{base}/EquipmentActual[2]/EquipmentActualProperty[ID=DowntimeReason]", MISSING),
        (f"{base}/EquipmentActual[2]/EquipmentActualProperty[ID=DowntimeStart]", MISSING),
        (f"{base}/MaterialActual[1]/MaterialActualProperty[ID=ScrapReason]", MISSING),
        (
            f"{base}/MaterialActual[2]/MaterialActualProperty[ID=QualityResult:LEAK]/Value/"
            "ValueString",
            "Maybe",
        ),
    ]


@pytest.mark.parametrize("verb", ["Process", "Change", "Sync"])
def test_an_order_travels_in_its_transaction_and_reads_back(verb):
    order = _order()
    bare = order_to_production_schedule(order, published_at=PUBLISHED)
    wrapped = bod.wrap(bare, verb, sender="ODOO", bod_id="WH/MO/00001:r1", created=ANSWERED_AT)
    document = _assert_valid(_schedule_xsd(), wrapped)
    assert etree.QName(document).localname == f"{verb}ProductionSchedule"
    assert document.findtext(f"{{{NS_V0600}}}ApplicationArea/{{{NS_V0600}}}BODID") == (
        "WH/MO/00001:r1"
    )
    assert production_schedule_to_order(wrapped) == production_schedule_to_order(bare)
    with pytest.raises(ValueError, match="verb must be one of"):
        bod.wrap(bare, "Publish", sender="ODOO", bod_id="x", created=ANSWERED_AT)


def test_a_get_of_a_schedule_is_refused_by_name():
    # A Cancel is read as a cancellation (tests/test_b2mml_answers.py); a Get asks for data.
    bare = order_to_production_schedule(_order(), published_at=PUBLISHED)
    wrapped = bod.wrap(bare, "Get", sender="ODOO", bod_id="x", created=ANSWERED_AT)
    errors, text = _schedule_errors(wrapped)
    assert errors == [("(root)", "GetProductionSchedule")]
    assert "is a Get transaction, a request for the schedules it names" in text


def test_a_transaction_refused_for_its_envelope_is_still_answered():
    head = (
        f'<ProcessProductionPerformance xmlns="{NS_V0600}" releaseID="1"><ApplicationArea>'
        "<CreationDateTime>2026-01-31T12:05:00Z</CreationDateTime><BODID>B-1</BODID>"
        "</ApplicationArea>"
    )
    for body in ("", "<DataArea><Process/></DataArea>"):
        xml = f"{head}{body}</ProcessProductionPerformance>".encode()
        with pytest.raises(MessageValidationError) as info:
            b2mml.read_production_performance(xml)
        envelope = info.value.envelope
        assert (envelope.verb, envelope.bod_id) == ("Process", "B-1")
        answer = bod.answer(envelope, accepted=False, bod_id="A", created=ANSWERED_AT)
        assert (
            etree.fromstring(answer).find(f".//{{{NS_V0600}}}ResponseExpression").get("actionCode")
            == "Rejected"
        )


def test_nothing_in_a_data_area_is_left_unread():
    good = _performance(NS_V0600, _response(SEGMENT_10))
    older = _performance(NS_V0401, _response(SEGMENT_10, request="WH/MO/00002"))
    wrapped = _bod(NS_V0600, "Sync", good).replace(
        b"</DataArea>",
        etree.tostring(etree.fromstring(older)) + b"<ProductionPerformanse/><Sync/></DataArea>",
    )
    errors, text = _errors(wrapped)
    assert errors == [
        ("DataArea/ProductionPerformance[2]", NS_V0401),
        ("DataArea/ProductionPerformanse[1]", MISSING),
        ("DataArea/Sync[2]", MISSING),
    ]
    assert "is in another B2MML version than its SyncProductionPerformance" in text


def test_shop_floor_conventions_refuse_what_cannot_be():
    base = "ProductionResponse[1]/SegmentResponse[1]"
    ended_first = _shop_floor_segment(end="2026-01-31T08:00:00Z")
    errors, text = _errors(_performance(NS_V0600, _response(ended_first, state=None)))
    assert errors == [
        (
            f"{base}/EquipmentActual[2]/EquipmentActualProperty[ID=DowntimeEnd]/Value/ValueString",
            "2026-01-31T08:00:00+00:00",
        )
    ]
    assert "is before the downtime's start 2026-01-31T08:20:00+00:00" in text
    # A check named with spaces or letters of any language is read.
    named = _shop_floor_segment().replace("QualityResult:LEAK", "QualityResult:Leak test é")
    quality = next(
        e
        for e in _events(_performance(NS_V0600, _response(named, state=None)))
        if e["event_type"] == "quality_result"
    )
    assert quality["data"]["characteristic"] == "Leak test é"
    # A scrap named by a use B2MML reads otherwise would swallow consumption.
    with pytest.raises(ValueError, match="is a material use of B2MML itself"):
        production_performance_to_events(
            _performance(NS_V0600, _response(SEGMENT_10)),
            conventions=b2mml.Conventions(scrap_use="consumed"),
        )


def test_segments_naming_different_orders_in_production_data_are_refused():
    two = VENDOR_SYNC.replace(
        b"</SegmentResponse>",
        b"</SegmentResponse><SegmentResponse><ProcessSegmentID>20</ProcessSegmentID>"
        b"<ProductionData><ID>ERP_ORDER</ID><Value><ValueString>WH/MO/00043</ValueString>"
        b"</Value></ProductionData></SegmentResponse>",
    )
    errors, text = _errors(two, order_key=("data", "ERP_ORDER"))
    assert errors == [
        (
            "DataArea/ProductionPerformance[1]/ProductionResponse[1]//ProductionData"
            "[ID=ERP_ORDER]/Value/ValueString",
            ["WH/MO/00042", "WH/MO/00043"],
        )
    ]
    assert "names several orders" in text


def _data(name, value, unit=None):
    unit_xml = f"<UnitOfMeasure>{unit}</UnitOfMeasure>" if unit else ""
    return (
        f"<ProductionData><ID>{name}</ID><Value><ValueString>{value}</ValueString>"
        f"{unit_xml}</Value></ProductionData>"
    )


def test_an_operations_minutes_and_quantities_come_from_its_production_data():
    segment = (
        "<SegmentResponse><ID>SR-20</ID><ProcessSegmentID>20</ProcessSegmentID>"
        "<ActualStartTime>2026-01-31T09:30:00Z</ActualStartTime>"
        "<ActualEndTime>2026-01-31T11:00:00Z</ActualEndTime>"
        + _data("SetupMinutes", "5")
        + _data("RunMinutes", "85.5")
        + _data("GoodQuantity", "4", "Units")
        + _data("RejectQuantity", "1", "Units")
        + "<EquipmentActual><EquipmentID>WC-ASM</EquipmentID></EquipmentActual>"
        + _material("FG-TABLE", "Produced", "5", "Units", lot="FG-L1")
        + "<SegmentState>Completed</SegmentState></SegmentResponse>"
    )
    xml = _performance(NS_V0600, _response(segment, state=None))
    _assert_valid(_performance_xsd(), xml)
    completed = _events(xml)[-1]
    assert completed["data"] == {
        "operation": 20,
        "resource": "WC-ASM",
        "setup_minutes": 5.0,
        "run_minutes": 85.5,
        "good_quantity": 4.0,  # as the MES counted it, not the 5 it produced
        "reject_quantity": 1.0,
        "uom": "Units",
        "started_at": "2026-01-31T09:30:00+00:00",
        "ended_at": "2026-01-31T11:00:00+00:00",
    }
    wrong = segment.replace(_data("RunMinutes", "85.5"), _data("RunMinutes", "-3")).replace(
        _data("RejectQuantity", "1", "Units"), _data("RejectQuantity", "1")
    )
    errors, _text = _errors(_performance(NS_V0600, _response(wrong, state=None)))
    base = "ProductionResponse[1]/SegmentResponse[1]/ProductionData"
    assert errors == [
        (f"{base}[ID=RunMinutes]/Value/ValueString", "-3"),
        (f"{base}[ID=RejectQuantity]/Value/UnitOfMeasure", MISSING),
    ]


def _shift_events(seed):
    """A simulated run of a two-operation order with lots, scrap, a breakdown and a check."""
    order = order_document(
        components=(
            Component(Product(code="C-LEG"), 20.0, "Units", operation_sequence=10),
            Component(Product(code="C-TOP", tracking="lot"), 1.0, "Units", operation_sequence=20),
        ),
        operations=(
            Operation(10, "Cut", "WC-CUT", 30.0),
            Operation(20, "Assembly", "WC-ASM", 45.0),
        ),
    )
    pairs = shopfloor.run_order(
        order,
        lots={"C-TOP": ["TOP-1", "TOP-2"]},
        seed=seed,
        now=datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
        breakdown=True,
        quality_fail=seed % 2 == 1,
        operators=("ANN", "BEN"),
    )
    return [
        {
            "schema": "mes.event/1",
            "event_id": f"MES-1-E{number:04d}",
            "event_type": kind,
            "order_ref": order["order_id"],
            "mes_order_id": "MES-1",
            "sequence": number,
            "occurred_at": data.get("ended_at") or data.get("started_at") or "2026-01-31T12:00:00Z",
            "data": data,
        }
        for number, (kind, data) in enumerate(pairs, 1)
    ]


def _comparable(events):
    """Events as B2MML carries them: what it has no place for left out, in a stable order."""
    kept = []
    for event in events:
        kind, data = event["event_type"], dict(event["data"])
        if kind in ("order_started", "order_held", "order_resumed"):
            continue
        if kind == "quality_result":
            data = {
                k: v for k, v in data.items() if k not in ("measurements", "inspector", "comment")
            }
        if kind == "downtime_ended":
            data.pop("reason", None)
        # 1 and 1.0 are one quantity.
        kept.append(
            (kind, json.dumps(json.loads(json.dumps(data), parse_int=float), sort_keys=True))
        )
    return sorted(kept)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_what_the_simulated_shop_floor_reports_reads_back_the_same_in_b2mml(seed):
    events = _shift_events(seed)
    xml = b2mml.events_to_production_performance(
        events, document_id=f"SHIFT-{seed}", published_at=PUBLISHED
    )
    _assert_valid(_performance_xsd(), xml)
    read = _events(xml)
    assert _comparable(read) == _comparable(events)
    assert {e["order_ref"] for e in read} == {"WH/MO/00001"}
    assert read[-1]["event_type"] == "order_completed"
    # Wrapped, by the MES's order id, with a plant's own names: the same.
    ours = b2mml.Conventions(scrap_use="Reject", run_minutes="Run")
    wrapped = bod.wrap(
        b2mml.events_to_production_performance(
            events, document_id=f"SHIFT-{seed}", order_key="response", conventions=ours
        ),
        "Sync",
        sender="SIM",
        bod_id=f"B-{seed}",
        created=ANSWERED_AT,
    )
    again = _events(wrapped, order_key="response", conventions=ours)
    assert _comparable(again) == _comparable([{**e, "order_ref": None} for e in events])
    assert all("order_ref" not in e for e in again)
    # Reported in two parts (what the MES had when it sent): read together, the same.
    operations = [e for e in events if e["event_type"] == "operation_completed"]
    cut = events.index(operations[-1]) + 1
    parts = [
        _events(
            b2mml.events_to_production_performance(
                part, document_id=f"SHIFT-{seed}-{index}", published_at=PUBLISHED
            )
        )
        for index, part in enumerate((events[:cut], events[cut:]), 1)
    ]
    assert _comparable(parts[0] + parts[1]) == _comparable(events)


def test_a_segment_that_only_carries_what_an_operation_used_reports_no_operation():
    # A later part of a run: what operation 10 consumed and scrapped, nothing of itself.
    segment = (
        "<SegmentResponse><ID>OP-10</ID><ProcessSegmentID>10</ProcessSegmentID>"
        + _material("STEEL", "Consumed", "2", "KG", lot="LOT-2026-007")
        + "</SegmentResponse>"
    )
    events = _events(_performance(NS_V0600, _response(segment, state=None)))
    assert [(e["event_type"], e["data"].get("operation")) for e in events] == [
        ("material_consumed", 10)
    ]


ANSWERED_AT = datetime(2026, 1, 31, 12, 6, tzinfo=UTC)


def _answer(xml, accepted=True, notes=()):
    _events_read, envelope = b2mml.read_production_performance(xml)
    return bod.answer(
        envelope,
        accepted=accepted,
        noun_ids=envelope.noun_ids if envelope else (),
        notes=notes,
        sender="ODOO-TEST",
        bod_id="ANSWER-1",
        created=ANSWERED_AT,
    )


def test_a_process_is_acknowledged_in_its_own_form():
    request = _bod(NS_V0600, "Process", _performance(NS_V0600, _response(SEGMENT_10)))
    answer = _answer(request)
    document = _assert_valid(_performance_xsd(), answer)
    ns = {"b": NS_V0600}
    assert etree.QName(document).localname == "AcknowledgeProductionPerformance"
    assert document.findtext("b:ApplicationArea/b:Sender/b:LogicalID", namespaces=ns) == (
        "ODOO-TEST"
    )
    assert document.findtext("b:ApplicationArea/b:BODID", namespaces=ns) == "ANSWER-1"
    acknowledge = document.find("b:DataArea/b:Acknowledge", ns)
    # What the MES sent, as it sent it, to match the answer to its request.
    assert acknowledge.findtext("b:OriginalApplicationArea/b:BODID", namespaces=ns) == "BOD-77"
    assert acknowledge.find("b:ResponseCriteria/b:ResponseExpression", ns).get("actionCode") == (
        "Accepted"
    )
    assert document.findtext("b:DataArea/b:ProductionPerformance/b:ID", namespaces=ns) == (
        "PP-2026-0001"
    )
    rejected = etree.fromstring(_answer(request, accepted=False))
    assert rejected.find(".//b:ResponseExpression", ns).get("actionCode") == "Rejected"


def test_an_older_mes_is_answered_in_its_namespace():
    request = _bod(NS_V0401, "Process", _performance(NS_V0401, _response(SEGMENT_10)))
    answer = etree.fromstring(_answer(request))
    assert answer.tag == f"{{{NS_V0401}}}AcknowledgeProductionPerformance"


def _confirming(code):
    bare = _performance(NS_V0600, _response(SEGMENT_10))
    request = _bod(NS_V0600, "Sync", bare, sender="MES-7")
    return request.replace(
        b"<LogicalID>MES-7</LogicalID>",
        b"<LogicalID>MES-7</LogicalID>"
        + (f"<ConfirmationCode>{code}</ConfirmationCode>".encode() if code else b""),
    )


def test_a_sync_is_confirmed_only_when_its_sender_asks():
    schema = load_xsd("B2MML-V0600-ConfirmBOD.xsd")
    ns = {"b": NS_V0600}
    always = _assert_valid(schema, _answer(_confirming("Always"), notes=["6 events read"]))
    assert etree.QName(always).localname == "ConfirmBOD"
    assert always.find(".//b:ResponseExpression", ns).get("actionCode") == "Accepted"
    assert always.findtext("b:DataArea/b:BOD/b:Note", namespaces=ns) == "6 events read"
    on_error = _confirming("OnError")
    assert _answer(on_error) is None
    refused = _assert_valid(schema, _answer(on_error, accepted=False, notes=["a", "b"]))
    assert [n.text for n in refused.findall("b:DataArea/b:BOD/b:Note", ns)] == ["a", "b"]
    assert _answer(_confirming("Never"), accepted=False) is None
    assert _answer(_confirming(None)) is None
    # A bare document asks for nothing: it is answered as the API answers (JSON).
    assert _answer(_performance(NS_V0600, _response(SEGMENT_10))) is None


def test_a_huge_application_area_is_not_echoed_back():
    request = _bod(NS_V0600, "Process", _performance(NS_V0600, _response(SEGMENT_10)))
    huge = request.replace(
        b"</ApplicationArea>",
        b"<UserArea>"
        + b"<x:Pad xmlns:x='urn:x'>"
        + b"y" * 70000
        + b"</x:Pad></UserArea></ApplicationArea>",
    )
    answer = _answer(huge)
    assert len(answer) < 2000
    assert b"OriginalApplicationArea" not in answer


# ---------------------------------------------------------------------------
# Safe parsing
# ---------------------------------------------------------------------------

BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    + f']>\n<ProductionPerformance xmlns="{NS_V0600}"><ID>&lol9;</ID></ProductionPerformance>'
)
XXE = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY passwd SYSTEM "file:///etc/passwd">]>\n'
    f'<ProductionPerformance xmlns="{NS_V0600}"><ID>&passwd;</ID>'
    "<ProductionResponse><ProductionRequestID>&passwd;</ProductionRequestID>"
    "</ProductionResponse></ProductionPerformance>"
)


def _refused_fast(xml):
    started = time.perf_counter()
    with pytest.raises(MessageValidationError) as info:
        production_performance_to_events(xml)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.2, f"took {elapsed:.3f} s"
    return info.value


@pytest.mark.parametrize("xml", [BOMB, XXE], ids=["billion-laughs", "external-entity"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_dtd_and_entities_are_refused_without_expansion(xml, encoding):
    data = xml.replace('version="1.0"?', f'version="1.0" encoding="{encoding}"?').encode(encoding)
    error = _refused_fast(data)
    assert [e.field for e in error.errors] == ["(document)"]
    assert "must not declare a DTD or entities" in str(error)
    assert "root:" not in str(error) and "lollol" not in str(error)


def test_the_parsed_tree_is_checked_too(monkeypatch):
    # Without the byte scan (an encoding it does not know), the parser still refuses.
    monkeypatch.setattr(b2mml, "_SCANNED_ENCODINGS", ())
    error = _refused_fast(XXE.encode())
    assert "must not declare a DTD or entities" in str(error)
    assert "root:" not in str(error)
    # The bomb's entities are never expanded: libxml2 stops at their declarations.
    assert _refused_fast(BOMB.encode()).errors[0].field == "(document)"


def test_the_parser_itself_loads_and_expands_nothing():
    root = etree.fromstring(XXE.encode(), b2mml._safe_parser())
    identifier = root[0]
    assert [type(node) for node in identifier] == [etree._Entity]
    assert "root:" not in etree.tostring(root, encoding="unicode")


def test_utf16_documents_without_dtd_are_read():
    xml = _performance(NS_V0600, _response()).decode().replace('"UTF-8"', '"UTF-16"')
    assert [e["event_type"] for e in _events(xml.encode("utf-16"))] == ["order_completed"]


def test_oversize_documents_are_refused_before_parsing():
    xml = _performance(NS_V0600, _response())
    assert _events(xml, max_bytes=len(xml))
    errors, text = _errors(xml, max_bytes=len(xml) - 1)
    assert errors == [("(document)", len(xml))]
    assert f"limit of {len(xml) - 1}" in text

    padded = xml.replace(b"<ResponseState>", b" " * (5 * 1024 * 1024) + b"<ResponseState>")
    errors, _text = _errors(padded)
    assert errors == [("(document)", len(padded))]


@pytest.mark.parametrize(
    "xml",
    [
        b"",
        b"not xml at all",
        b'<ProductionPerformance xmlns="http://www.mesa.org/xml/B2MML-V0600"><ID>1</ID>',
        b'<ProductionPerformance xmlns="http://www.mesa.org/xml/B2MML-V0600">&nbsp;'
        b"</ProductionPerformance>",
    ],
    ids=["empty", "text", "unclosed", "undeclared-entity"],
)
def test_malformed_xml_is_a_validation_error(xml):
    errors, text = _errors(xml)
    assert [field for field, _value in errors] == ["(document)"]
    assert "is not well-formed XML" in text


def test_only_bytes_are_read():
    with pytest.raises(TypeError):
        production_performance_to_events(_performance(NS_V0600, _response()).decode())


def test_a_sequence_too_long_for_an_integer_is_refused_not_a_crash():
    # Digits are an operation's sequence, however many: too many for int() (4300) or
    # for a PostgreSQL integer is an error at the element, not a segment that groups.
    segment = (
        f"<SegmentResponse><ProcessSegmentID>{'9' * 5000}</ProcessSegmentID></SegmentResponse>"
    )
    errors, text = _errors(_performance(NS_V0600, _response(segment)))
    assert errors == [("ProductionResponse[1]/SegmentResponse[1]/ProcessSegmentID", "9" * 5000)]
    assert "is out of range: an integer from -2147483648 to 2147483647" in text


# ---------------------------------------------------------------------------
# Schedule reader: ProductionSchedule -> mes.order/1 (the MES side)
# ---------------------------------------------------------------------------

ROUND_TRIP_SHAPES = {
    "one-operation": _order,
    "several-operations": _several_operations_order,
    "lot-and-serial-components": _tracked_components_order,
    "change": _change_order,
    "cancel": _cancel_order,
    "finished-lots": _finished_lots_order,
    "no-operations": _no_operations_order,
    "by-product-bom": _byproduct_bom_order,
}


def _carried(order):
    """``order`` as a ProductionSchedule can carry it.

    Only what the format cannot carry is normalised:
    - times are written as UTC (xs:dateTime with Z): the order's own offset is lost;
    - components and by-products are nested in their operation's segment, so they
      come back grouped: the order's own first, then each operation's in the order of
      the operations (the order among those of one operation is kept).
    Every other shape below comes back exactly as it was sent.
    """
    out = copy.deepcopy(order)
    for key in ("planned_start", "planned_end"):
        if out[key]:
            out[key] = datetime.fromisoformat(out[key]).astimezone(UTC).isoformat()
    position = {}
    for index, operation in enumerate(out["operations"]):
        position.setdefault(operation["sequence"], index)
    for key in ("components", "byproducts"):
        out[key].sort(
            key=lambda c: (
                -1 if c["operation_sequence"] is None else position[c["operation_sequence"]]
            )
        )
    return out


def _schedule_bytes(order):
    xml = order_to_production_schedule(order, published_at=PUBLISHED)
    _assert_valid(_schedule_xsd(), xml)
    return xml


def _read_order(xml, **kwargs):
    order = production_schedule_to_order(xml, **kwargs)
    validate_order(order)
    return order


def _schedule_errors(xml, **kwargs):
    with pytest.raises(MessageValidationError) as info:
        production_schedule_to_order(xml, **kwargs)
    return [(e.field, e.value) for e in info.value.errors], str(info.value)


def _edited(order, edit):
    """The schedule of ``order`` after ``edit(root)`` changed its tree."""
    root = etree.fromstring(_schedule_bytes(order))
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _find(root, path):
    return _one(root, path)


@pytest.mark.parametrize("name", ROUND_TRIP_SHAPES)
def test_what_the_writer_writes_reads_back_as_the_order(name):
    order = ROUND_TRIP_SHAPES[name]()
    back = _read_order(_schedule_bytes(order))

    assert back == _carried(order)
    if name not in {"several-operations", "lot-and-serial-components", "by-product-bom"}:
        assert back == order  # no time zone, no component out of place: nothing to normalise
    assert list(back) == list(order)  # even the keys come in the same order


@pytest.mark.parametrize("shape", ["several-operations", "by-product-bom"])
@pytest.mark.parametrize("ns", [NS_V0401, NS_V0500])
def test_older_namespaces_read_the_same(ns, shape):
    order = ROUND_TRIP_SHAPES[shape]()
    xml = _schedule_bytes(order).replace(NS_V0600.encode(), ns.encode())
    assert _read_order(xml) == _carried(order)


def test_a_schedule_from_another_sender():
    # V0401 style: no order segment, operations side by side, the legacy produced and
    # consumed requirements, Location for the company, no Revision nor Action.
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<ProductionSchedule xmlns="{NS_V0401}" xmlns:x="urn:vendor:x">
  <ID>SCHED-7</ID>
  <ProductionRequest>
    <ID>PO-4711</ID>
    <Description>Night shift</Description>
    <Location><EquipmentID>ACME</EquipmentID><EquipmentElementLevel>Enterprise</EquipmentElementLevel>
      <Location><EquipmentID>PLANT-1</EquipmentID><EquipmentElementLevel>Site</EquipmentElementLevel>
      </Location></Location>
    <StartTime>2026-03-02T22:00:00</StartTime>
    <EndTime>2026-03-03T06:00:00+01:00</EndTime>
    <Priority>3.0</Priority>
    <SegmentRequirement>
      <ID>10</ID><ProcessSegmentID>MIX</ProcessSegmentID>
      <Duration>P1DT2H</Duration>
      <PersonnelRequirement><PersonnelClassID>MIXER</PersonnelClassID></PersonnelRequirement>
      <EquipmentRequirement><EquipmentID>MIXER-2</EquipmentID></EquipmentRequirement>
      <MaterialConsumedRequirement>
        <MaterialDefinitionID>FLOUR</MaterialDefinitionID>
        <Quantity><QuantityString>250.5</QuantityString><UnitOfMeasure>kg</UnitOfMeasure></Quantity>
        <MaterialConsumedRequirementProperty><ID>Tracking</ID>
          <Value><ValueString>Lot</ValueString></Value></MaterialConsumedRequirementProperty>
      </MaterialConsumedRequirement>
      <x:Note>extensions are skipped</x:Note>
    </SegmentRequirement>
    <SegmentRequirement>
      <ID>20</ID><ProcessSegmentID>20</ProcessSegmentID><Description>Bake</Description>
      <Duration>PT45M</Duration>
      <EquipmentRequirement><EquipmentID>OVEN-1</EquipmentID></EquipmentRequirement>
      <MaterialProducedRequirement>
        <MaterialDefinitionID>BREAD</MaterialDefinitionID>
        <MaterialLotID>B-0303</MaterialLotID>
        <Description>Bread</Description>
        <Quantity><QuantityString>400</QuantityString><UnitOfMeasure>Units</UnitOfMeasure></Quantity>
      </MaterialProducedRequirement>
    </SegmentRequirement>
    <RequestState>Released</RequestState>
  </ProductionRequest>
</ProductionSchedule>""".encode()

    assert _read_order(xml) == {
        "order_id": "PO-4711",
        "revision": 1,
        "product": {"code": "BREAD", "name": "Bread", "tracking": "none"},
        "quantity": 400.0,
        "uom": "Units",
        "action": "create",
        "planned_start": "2026-03-02T22:00:00+00:00",
        "planned_end": "2026-03-03T06:00:00+01:00",
        "priority": 3,
        "origin": None,
        "company": "ACME",
        "components": [
            {
                "product": {"code": "FLOUR", "name": "", "tracking": "lot"},
                "quantity": 250.5,
                "uom": "kg",
                "operation_sequence": 10,
            }
        ],
        "operations": [
            {"sequence": 10, "name": "MIX", "resource": "MIXER-2", "duration_minutes": 1560.0},
            {"sequence": 20, "name": "Bake", "resource": "OVEN-1", "duration_minutes": 45.0},
        ],
        "byproducts": [],
        "finished_lots": ["B-0303"],
        "schema": "mes.order/1",
    }


def _by_product_use(text):
    """Edit: the by-products' MaterialUse spelled ``text`` (no OtherValue), V0401 style."""

    def edit(root):
        for use in root.xpath(".//b:MaterialUse[@OtherValue]", namespaces=NS):
            del use.attrib["OtherValue"]
            use.text = text

    return edit


@pytest.mark.parametrize(
    "spelling",
    ["By-product Produced", "ByProductProduced", "Byproduct", "Co-product Produced", "coproduct"],
)
@pytest.mark.parametrize("ns", [NS_V0401, NS_V0500])
def test_older_by_product_spellings_are_by_products(ns, spelling):
    order = _byproduct_bom_order()
    xml = _edited(order, _by_product_use(spelling)).replace(NS_V0600.encode(), ns.encode())
    assert _read_order(xml) == _carried(order)


def test_a_v0401_produced_requirement_may_be_a_by_product():
    def legacy(root):
        for requirement in root.xpath(".//b:MaterialRequirement", namespaces=NS):
            use = _find(requirement, "b:MaterialUse")
            if use.text == "Produced":
                requirement.tag = f"{{{NS_V0600}}}MaterialProducedRequirement"
                requirement.remove(use)
            elif use.get("OtherValue"):
                requirement.tag = f"{{{NS_V0600}}}MaterialProducedRequirement"
                del use.attrib["OtherValue"]
                use.text = "By-product Produced"
            else:
                requirement.tag = f"{{{NS_V0600}}}MaterialConsumedRequirement"
            for prop in requirement.xpath("b:MaterialRequirementProperty", namespaces=NS):
                prop.tag = f"{requirement.tag}Property"

    order = _byproduct_bom_order()
    xml = _edited(order, legacy).replace(NS_V0600.encode(), NS_V0401.encode())
    assert _read_order(xml) == _carried(order)


def test_a_lot_or_an_unknown_use_of_a_by_product_is_refused():
    def spoil(root):
        sawdust = _find(root, ".//b:MaterialRequirement[b:MaterialDefinitionID='SAWDUST']")
        lot = etree.Element(f"{{{NS_V0600}}}MaterialLotID")
        lot.text = "SD-1"
        _find(sawdust, "b:MaterialDefinitionID").addnext(lot)
        offcut = _find(root, ".//b:MaterialRequirement[b:MaterialDefinitionID='OFFCUT']")
        _find(offcut, "b:MaterialUse").set("OtherValue", "Waste")

    errors, text = _schedule_errors(_edited(_byproduct_bom_order(), spoil))
    segment = "ProductionRequest[1]/SegmentRequirement[1]"
    assert errors == [
        (f"{segment}/MaterialRequirement[3]/MaterialUse", "Waste"),
        (f"{segment}/SegmentRequirement[1]/MaterialRequirement[2]/MaterialLotID[1]", "SD-1"),
    ]
    assert "lot for a by-product" in text and "By-product Produced" in text


def _without_parameter(name):
    def edit(root):
        parameter = _find(root, f".//b:ProductionParameter[b:Parameter/b:ID='{name}']")
        parameter.getparent().remove(parameter)

    return edit


def test_the_action_follows_the_request_state_without_an_action_parameter():
    cancel = _edited(_cancel_order(), _without_parameter("Action"))
    assert _read_order(cancel)["action"] == "cancel"
    change = _edited(_change_order(), _without_parameter("Action"))
    assert _read_order(change)["action"] == "change"
    first = _edited(_order(), _without_parameter("Action"))
    assert _read_order(first)["action"] == "create"


def test_a_forecast_or_a_contradicting_action_is_refused():
    def forecast(root):
        _find(root, "b:ProductionRequest/b:RequestState").text = "Forecast"

    errors, text = _schedule_errors(_edited(_order(), forecast))
    assert errors == [("ProductionRequest[1]/RequestState", "Forecast")]
    assert "forecast" in text

    def cancelled(root):
        state = _find(root, "b:ProductionRequest/b:RequestState")
        state.text = "Other"
        state.set("OtherValue", "Cancelled")

    errors, text = _schedule_errors(_edited(_change_order(), cancelled))
    path = "ProductionRequest[1]/SegmentRequirement[1]/ProductionParameter[2]/Parameter"
    assert errors == [(f"{path}/Value/ValueString", "change")]
    assert "contradicts the RequestState" in text


def test_two_production_requests_are_refused():
    def second(root):
        request = copy.deepcopy(_find(root, "b:ProductionRequest"))
        _find(request, "b:ID").text = "WH/MO/00002"
        root.append(request)

    errors, text = _schedule_errors(_edited(_order(), second))
    assert errors == [("ProductionRequest[2]", "WH/MO/00002")]
    assert "one document carries one order" in text


def test_a_schedule_without_request_or_without_product_is_refused():
    def no_request(root):
        root.remove(_find(root, "b:ProductionRequest"))

    assert _schedule_errors(_edited(_order(), no_request))[0] == [("ProductionRequest", MISSING)]

    def no_product(root):
        produced = _find(root, ".//b:MaterialRequirement[b:MaterialUse='Produced']")
        produced.getparent().remove(produced)

    errors, text = _schedule_errors(_edited(_order(), no_product))
    assert errors == [("ProductionRequest[1]/SegmentRequirement[1]/MaterialRequirement", MISSING)]
    assert "Produced is missing" in text

    def two_products(root):
        produced = _find(root, ".//b:MaterialRequirement[b:MaterialUse='Produced']")
        twin = copy.deepcopy(produced)
        _find(twin, "b:MaterialDefinitionID").text = "FG-CHAIR"
        produced.addnext(twin)

    errors, _text = _schedule_errors(_edited(_order(), two_products))
    assert errors == [
        ("ProductionRequest[1]/SegmentRequirement[1]/MaterialRequirement[2]", "FG-CHAIR")
    ]


def test_every_bad_value_is_named_by_its_xml_path_and_value():
    def spoil(root):
        request = _find(root, "b:ProductionRequest")
        _find(request, "b:ID").text = "X" * 65
        _find(request, "b:Priority").text = "high"
        order_segment = _find(request, "b:SegmentRequirement")
        revision = "b:ProductionParameter[b:Parameter/b:ID='Revision']"
        _find(order_segment, f"{revision}/b:Parameter/b:Value/b:ValueString").text = "0"
        product = _find(order_segment, "b:MaterialRequirement")
        _find(product, "b:Quantity/b:QuantityString").text = "0"
        operation = _find(order_segment, "b:SegmentRequirement")
        _find(operation, "b:Duration").text = "P1M"
        component = _find(operation, "b:MaterialRequirement")
        _find(component, "b:Quantity/b:QuantityString").text = "12,5"
        lot = etree.Element(f"{{{NS_V0600}}}MaterialLotID")
        lot.text = "LEG-L3"
        _find(component, "b:MaterialDefinitionID").addnext(lot)
        parameter = copy.deepcopy(_find(order_segment, revision))
        _find(parameter, "b:Parameter/b:ID").text = "Temperature"
        _find(order_segment, revision).addprevious(parameter)

    errors, text = _schedule_errors(_edited(_order(), spoil))

    segment = "ProductionRequest[1]/SegmentRequirement[1]"
    operation = f"{segment}/SegmentRequirement[1]"
    assert sorted(errors, key=lambda e: e[0]) == sorted(
        [
            (f"{segment}/ProductionParameter[1]/Parameter/ID", "Temperature"),
            (f"{operation}/Duration", "P1M"),
            (f"{operation}/MaterialRequirement[1]/Quantity/QuantityString", "12,5"),
            (f"{operation}/MaterialRequirement[1]/MaterialLotID[1]", "LEG-L3"),
            ("ProductionRequest[1]/Priority", "high"),
            # The schema of mes.order/1 has its say too, at the path the value came from.
            ("ProductionRequest[1]/ID", "X" * 65),
            (f"{segment}/ProductionParameter[2]/Parameter/Value/ValueString", 0),
            (f"{segment}/MaterialRequirement[1]/Quantity/QuantityString", 0.0),
        ],
        key=lambda e: e[0],
    )
    assert "ProductionRequest[1]/ID: " in text and "at most 64 characters" in text
    assert "cannot carry" in text


def test_operations_need_a_sequence_and_one_resource():
    def spoil(root):
        operation = _find(root, ".//b:SegmentRequirement/b:SegmentRequirement")
        _find(operation, "b:ID").text = "9" * 5000
        _find(operation, "b:ProcessSegmentID").text = "CUT"
        equipment = _find(operation, "b:EquipmentRequirement")
        equipment.append(copy.deepcopy(_find(equipment, "b:EquipmentID")))

    errors, _text = _schedule_errors(_edited(_order(), spoil))
    operation = "ProductionRequest[1]/SegmentRequirement[1]/SegmentRequirement[1]"
    # ProcessSegmentID is no number: the ID, which is one but too large, is the sequence.
    assert errors == [
        (f"{operation}/ID", "9" * 5000),
        (f"{operation}/EquipmentRequirement[1]/EquipmentID", ["WC-ASM", "WC-ASM"]),
    ]


def test_other_documents_are_not_schedules():
    errors, text = _schedule_errors(_performance(NS_V0600, _response()))
    assert errors == [("(root)", f"{{{NS_V0600}}}ProductionPerformance")]
    assert "is not a ProductionSchedule" in text


@pytest.mark.parametrize("xml", [BOMB, XXE], ids=["billion-laughs", "external-entity"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_unsafe_schedules_are_refused_without_expansion(xml, encoding):
    xml = xml.replace("ProductionPerformance", "ProductionSchedule")
    data = xml.replace('version="1.0"?', f'version="1.0" encoding="{encoding}"?').encode(encoding)
    started = time.perf_counter()
    errors, text = _schedule_errors(data)
    assert time.perf_counter() - started < 0.2
    assert [field for field, _value in errors] == ["(document)"]
    assert "must not declare a DTD or entities" in text
    assert "root:" not in text and "lollol" not in text


def test_oversize_or_malformed_schedules_are_refused():
    xml = _schedule_bytes(_order())
    assert _read_order(xml, max_bytes=len(xml))
    errors, text = _schedule_errors(xml, max_bytes=len(xml) - 1)
    assert errors == [("(document)", len(xml))]
    assert f"limit of {len(xml) - 1}" in text

    padded = xml.replace(b"<RequestState>", b" " * (5 * 1024 * 1024) + b"<RequestState>")
    assert _schedule_errors(padded)[0] == [("(document)", len(padded))]

    errors, text = _schedule_errors(xml[:-40])
    assert [field for field, _value in errors] == ["(document)"]
    assert "is not well-formed XML" in text

    with pytest.raises(TypeError):
        production_schedule_to_order(xml.decode())


# ---------------------------------------------------------------------------
# Hostile values: limits of what the readers accept
# ---------------------------------------------------------------------------

OUT_OF_RANGE_INTEGER = "is out of range: an integer from -2147483648 to 2147483647 is expected"
OUT_OF_RANGE_DATETIME = (
    "is out of range: a date-time between 1970-01-01 and 9998-12-31 (UTC) is expected"
)


def _segment(sequence="10", end="2026-01-31T09:30:00Z", quantity="12.5", name="ProcessSegmentID"):
    return (
        f"<SegmentResponse><{name}>{sequence}</{name}>"
        f"<ActualEndTime>{end}</ActualEndTime>"
        + _material("STEEL", "Consumed", quantity, "KG")
        + "</SegmentResponse>"
    )


def _reasons(xml, reader=production_performance_to_events):
    with pytest.raises(MessageValidationError) as info:
        reader(xml)
    return [(e.field, e.value, e.reason) for e in info.value.errors]


@pytest.mark.parametrize(
    ("sequence", "name"),
    [
        ("123456789012345678", "ProcessSegmentID"),  # 18 digits: an int, not an int4
        ("2147483648", "ProcessSegmentID"),
        ("-2147483649", "ProcessSegmentID"),
        ("99999999999", "ID"),  # the ID, when the segment has no ProcessSegmentID
    ],
)
def test_an_operation_out_of_range_is_refused_at_its_element(sequence, name):
    xml = _performance(NS_V0600, _response(_segment(sequence, name=name)))
    assert _reasons(xml) == [
        (f"ProductionResponse[1]/SegmentResponse[1]/{name}", sequence, OUT_OF_RANGE_INTEGER)
    ]


@pytest.mark.parametrize("sequence", ["2147483647", "-2147483648", "+0010"])
def test_operations_at_the_limits_are_read(sequence):
    events = _events(_performance(NS_V0600, _response(_segment(sequence))))
    assert {e["data"]["operation"] for e in events if "operation" in e["data"]} == {int(sequence)}


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59",  # no zone: UTC
        "1969-12-31T23:59:59Z",
    ],
)
def test_date_times_out_of_range_are_refused_without_overflow(when):
    segment_path = "ProductionResponse[1]/SegmentResponse[1]/ActualEndTime"
    xml = _performance(NS_V0600, _response(_segment(end=when)))
    assert _reasons(xml) == [(segment_path, when, OUT_OF_RANGE_DATETIME)]

    xml = _performance(NS_V0600, _response(end=when))
    assert _reasons(xml) == [("ProductionResponse[1]/EndTime", when, OUT_OF_RANGE_DATETIME)]

    xml = _performance(NS_V0600, _response(end=None), published=when)
    assert _reasons(xml)[0] == ("PublishedDate", when, OUT_OF_RANGE_DATETIME)


def test_date_times_at_the_limits_are_read():
    early = "1969-12-31T23:00:00-01:00"
    late = "9999-01-01T00:59:59+01:00"
    events = _events(_performance(NS_V0600, _response(_segment(end=early), end=late)))
    assert [e["occurred_at"] for e in events] == [early, early, late]
    for event in events:
        datetime.fromisoformat(event["occurred_at"]).astimezone(UTC)


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        ("1e400", "is more than 1000000000000, the largest quantity"),
        ("1000000000000.5", "is more than 1000000000000, the largest quantity"),
        ("1E+99999999999999999999", "is not a number of 0 or more"),
        ("NaN", "is not a number of 0 or more"),
        ("sNaN", "is not a number of 0 or more"),
        ("-Infinity", "is not a number of 0 or more"),
    ],
)
def test_quantities_must_be_finite_and_at_most_the_maximum(quantity, reason):
    xml = _performance(NS_V0600, _response(_segment(quantity=quantity)))
    path = "ProductionResponse[1]/SegmentResponse[1]/MaterialActual[1]/Quantity/QuantityString"
    assert _reasons(xml) == [(path, quantity, reason)]


def test_a_quantity_at_the_maximum_is_read_and_a_total_above_is_refused():
    events = _events(_performance(NS_V0600, _response(_segment(quantity="1000000000000"))))
    assert events[0]["data"]["quantity"] == 1e12
    # Two outputs at the maximum: their total, the operation's good quantity, is above.
    segment = (
        "<SegmentResponse><ProcessSegmentID>10</ProcessSegmentID>"
        + _material("FG", "Produced", "1000000000000", "Units") * 2
        + "</SegmentResponse>"
    )
    (problem,) = _reasons(_performance(NS_V0600, _response(segment)))
    assert problem[0] == "ProductionResponse[1]/SegmentResponse[1]"
    assert "data.good_quantity" in problem[2] and "must be 1000000000000 or less" in problem[2]


def test_a_document_with_a_relative_namespace_uri_and_no_id_gets_ids():
    # C14N refuses relative namespace URIs: the ids come from the plain serialization.
    extension = '<x:Note xmlns:x="relative">kept out</x:Note>'
    xml = _performance(NS_V0600, _response(extension), doc_id=None)
    events = _events(xml)
    assert events[0]["event_id"].startswith("b2mml-")
    assert _events(xml) == events


def test_at_most_a_hundred_problems_are_listed_and_reading_stops():
    xml = _performance(NS_V0600, _response()).replace(
        b"<ResponseState>", b"<Foo/>" * 200_000 + b"<ResponseState>"
    )
    started = time.perf_counter()
    errors = _reasons(xml)
    assert time.perf_counter() - started < 1
    assert len(errors) == 101
    assert errors[0][0] == "ProductionResponse[1]/Foo"
    assert errors[-1] == ("(document)", MISSING, "has more problems: only the first 100 are listed")


def test_schedule_integers_out_of_range_are_refused():
    xml = _schedule_bytes(_order())
    errors = _reasons(
        xml.replace(b"<Priority>0<", b"<Priority>99999999999999999999.0<"),
        production_schedule_to_order,
    )
    assert errors == [
        ("ProductionRequest[1]/Priority", "99999999999999999999.0", OUT_OF_RANGE_INTEGER)
    ]
    errors = _reasons(
        xml.replace(b"<ProcessSegmentID>10<", b"<ProcessSegmentID>2147483648<"),
        production_schedule_to_order,
    )
    operation = "ProductionRequest[1]/SegmentRequirement[1]/SegmentRequirement[1]"
    assert errors == [(f"{operation}/ProcessSegmentID", "2147483648", OUT_OF_RANGE_INTEGER)]


def test_schedule_operation_without_any_number_is_still_named():
    def spoil(root):
        operation = _find(root, ".//b:SegmentRequirement/b:SegmentRequirement")
        _find(operation, "b:ID").text = "OP-A"
        _find(operation, "b:ProcessSegmentID").text = "CUT"

    errors, text = _schedule_errors(_edited(_order(), spoil))
    operation = "ProductionRequest[1]/SegmentRequirement[1]/SegmentRequirement[1]"
    assert errors == [(f"{operation}/ProcessSegmentID", "CUT")]
    assert "is not an operation sequence (an integer), nor is the segment's ID" in text


def test_schedule_times_and_quantities_out_of_range_are_refused():
    xml = _schedule_bytes(_order(planned_start=datetime(2026, 3, 1, tzinfo=UTC)))
    late = xml.replace(
        b"<StartTime>2026-03-01T00:00:00Z<", b"<StartTime>9999-12-31T23:00:00-01:00<"
    )
    assert _reasons(late, production_schedule_to_order) == [
        ("ProductionRequest[1]/StartTime", "9999-12-31T23:00:00-01:00", OUT_OF_RANGE_DATETIME)
    ]
    much = xml.replace(b"<QuantityString>5<", b"<QuantityString>1e13<")
    path = "ProductionRequest[1]/SegmentRequirement[1]/MaterialRequirement[1]/Quantity"
    assert _reasons(much, production_schedule_to_order) == [
        (f"{path}/QuantityString", "1e13", "is more than 1000000000000, the largest quantity")
    ]


def _labor_xml(unit="min", quantity="45"):
    event = {
        "schema": "mes.event/1",
        "event_id": "MES-1-E0001",
        "event_type": "operation_completed",
        "order_ref": "WH/MO/00001",
        "sequence": 1,
        "occurred_at": "2026-01-31T09:30:00+00:00",
        "data": {
            "operation": 10,
            "run_minutes": 45.0,
            "operators": [
                {"operator": "MES1001", "minutes": 45.0},
                {"operator": "MES1002", "minutes": 22.5},
            ],
        },
    }
    xml = b2mml.events_to_production_performance(
        [event], document_id="LABOR-1", published_at=PUBLISHED
    )
    if unit != "min":
        xml = xml.replace(
            b"<QuantityString>45</QuantityString>",
            f"<QuantityString>{quantity}</QuantityString>".encode(),
            1,
        )
        xml = xml.replace(
            b"<UnitOfMeasure>min</UnitOfMeasure>",
            f"<UnitOfMeasure>{unit}</UnitOfMeasure>".encode(),
            1,
        )
    return xml


def test_operators_and_their_labor_are_personnel_actuals_with_a_quantity_of_time():
    xml = _labor_xml()
    _assert_valid(_performance_xsd(), xml)
    assert xml.count(b"<PersonnelActual>") == 2
    (operation,) = _events(xml)
    assert operation["data"]["operators"] == [
        {"operator": "MES1001", "minutes": 45.0},
        {"operator": "MES1002", "minutes": 22.5},
    ]
    # Hours (and the UN/ECE code for them) are minutes times 60.
    (in_hours,) = _events(_labor_xml("HUR", "0.75"))
    assert in_hours["data"]["operators"][0] == {"operator": "MES1001", "minutes": 45.0}
    errors, text = _errors(_labor_xml("kg", "3"))
    assert errors == [
        (
            "ProductionResponse[1]/SegmentResponse[1]/PersonnelActual[1]/Quantity/UnitOfMeasure",
            "kg",
        )
    ]
    assert "is no unit of time (min, h)" in text
