"""Master data: the documents and their schemas, identities and keys, their B2MML form
(checked against the official V0600 XSDs) and the client that delivers them."""

import copy
import functools
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from b2mml_xsd import load_xsd
from lxml import etree

from mes_connector import (
    KINDS,
    MASTER_DATA_SCHEMAS,
    MesAuthError,
    MesRejectedError,
    MessageValidationError,
    MesTransientError,
    bod,
    master_data_idempotency_key,
    master_data_identity,
    order_idempotency_key,
    validate_master_data,
)
from mes_connector.b2mml import NS_V0401, NS_V0500, NS_V0600
from mes_connector.b2mml_master import b2mml_to_master_data, master_data_to_b2mml
from mes_connector.client import MasterDataAck, MesClient
from mes_connector.idempotency import MASTER_DATA_KINDS
from mes_connector.master_data import (
    Attendance,
    BillOfMaterials,
    Calendar,
    Equipment,
    Material,
    MaterialLot,
    lot_code,
    master_data_errors,
)
from mes_connector.messages import Component, Operation, Product
from mes_connector.validation import load_schema

REPO = Path(__file__).resolve().parent.parent
NS = {"b": NS_V0600}
CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


# ---------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------


def _material(**overrides):
    values = {
        "code": "COMP-9",
        "name": "Steel rod",
        "uom": "kg",
        "tracking": "lot",
        "material_class": "All / Raw materials",
        "revision": 3,
    }
    values.update(overrides)
    return Material(**values).to_dict()


def _equipment(**overrides):
    values = {
        "code": "WC-ASM",
        "name": "Assembly line 1",
        "capacity": 2.0,
        "time_efficiency": 95.5,
        "calendar": Calendar(
            "Standard 40 hours/week",
            "Europe/Brussels",
            8.0,
            (
                Attendance(0, "08:00", "12:00"),
                Attendance(0, "13:00", "17:00"),
                Attendance(4, "22:00", "24:00", week=2),
            ),
        ),
        "revision": 2,
    }
    values.update(overrides)
    return Equipment(**values).to_dict()


def _bom(**overrides):
    values = {
        "code": "BOM-12",
        "reference": "PUMP-A main",
        "product": Product("PUMP-A", "Pump A", "serial"),
        "quantity": 2.0,
        "uom": "Units",
        "components": (
            Component(Product("COMP-9", "Steel rod", "lot"), 1.5, "kg", operation_sequence=20),
            Component(Product("GLUE"), 0.05, "kg"),
            Component(Product("SCREW"), 8.0, "Units", operation_sequence=10),
        ),
        "byproducts": (Component(Product("SCRAP-STEEL"), 0.2, "kg", operation_sequence=20),),
        "operations": (
            Operation(10, "Cut", "WC-CUT", 12.5),
            Operation(20, "Assembly", "WC-ASM", 30.0),
            Operation(20, "Assembly, second station", "WC-ASM2", 0.0),
        ),
        "revision": 4,
    }
    values.update(overrides)
    return BillOfMaterials(**values).to_dict()


def _odoo_bom():
    """A bill as Odoo writes it: products by code only, no duration for one operation."""
    return {
        "schema": "mes.bom/1",
        "revision": 1,
        "code": "BOM-7",
        "reference": None,
        "product": {"code": "T-PUMP"},
        "quantity": 1,
        "uom": "Units",
        "active": False,
        "components": [
            {
                "product": {"code": "T-HOUS"},
                "quantity": 1,
                "uom": "Units",
                "operation_sequence": 10,
            },
            {
                "product": {"code": "T-SCR"},
                "quantity": 4,
                "uom": "Units",
                "operation_sequence": None,
            },
        ],
        "byproducts": [],
        "operations": [
            {"sequence": 10, "name": "Assembly", "resource": "T-ASM", "duration_minutes": 30.0},
            {"sequence": 20, "name": "Packing", "resource": "T-PACK"},
        ],
    }


def _lot(**overrides):
    values = {
        "product": "COMP-9",
        "lot": "L-0001",
        "expires_at": datetime(2027, 1, 31, tzinfo=UTC),
        "revision": 1,
    }
    values.update(overrides)
    return MaterialLot(**values).to_dict()


DOCUMENTS = {
    "material": _material,
    "material without class, retired": lambda: _material(material_class=None, active=False),
    "equipment": _equipment,
    "equipment without calendar": lambda: _equipment(calendar=None, active=False),
    "bom": _bom,
    "bom as Odoo writes it": _odoo_bom,
    "bom without operations": lambda: _bom(operations=(), components=(), byproducts=()),
    "lot": _lot,
    "serial on hold without expiry": lambda: _lot(
        tracking="serial", status="hold", expires_at=None
    ),
}


def _errors(call, *args):
    with pytest.raises(MessageValidationError) as info:
        call(*args)
    return [error.as_dict() for error in info.value.errors]


# ---------------------------------------------------------------------------
# Documents and schemas
# ---------------------------------------------------------------------------


def test_each_dataclass_writes_its_document():
    assert _material() == {
        "schema": "mes.material/1",
        "revision": 3,
        "code": "COMP-9",
        "name": "Steel rod",
        "uom": "kg",
        "tracking": "lot",
        "class": "All / Raw materials",
        "active": True,
    }
    assert _equipment()["calendar"] == {
        "name": "Standard 40 hours/week",
        "timezone": "Europe/Brussels",
        "hours_per_day": 8.0,
        "attendances": [
            {"weekday": 0, "from": "08:00", "to": "12:00"},
            {"weekday": 0, "from": "13:00", "to": "17:00"},
            {"weekday": 4, "from": "22:00", "to": "24:00", "week": 2},
        ],
    }
    assert {k: v for k, v in _equipment().items() if k != "calendar"} == {
        "schema": "mes.equipment/1",
        "revision": 2,
        "code": "WC-ASM",
        "name": "Assembly line 1",
        "capacity": 2.0,
        "time_efficiency": 95.5,
        "active": True,
    }
    bom = _bom()
    assert list(bom) == [
        "schema",
        "revision",
        "code",
        "reference",
        "product",
        "quantity",
        "uom",
        "active",
        "components",
        "byproducts",
        "operations",
    ]
    assert bom["product"] == {"code": "PUMP-A", "name": "Pump A", "tracking": "serial"}
    assert bom["components"][1] == {
        "product": {"code": "GLUE", "name": "", "tracking": "none"},
        "quantity": 0.05,
        "uom": "kg",
        "operation_sequence": None,
    }
    assert bom["operations"][0] == {
        "sequence": 10,
        "name": "Cut",
        "resource": "WC-CUT",
        "duration_minutes": 12.5,
    }
    assert _lot() == {
        "schema": "mes.material_lot/1",
        "revision": 1,
        "product": "COMP-9",
        "lot": "L-0001",
        "tracking": "lot",
        "status": "released",
        "expires_at": "2027-01-31T00:00:00+00:00",
    }


@pytest.mark.parametrize("name", DOCUMENTS)
def test_documents_are_valid(name):
    document = DOCUMENTS[name]()
    assert validate_master_data(document) is document
    assert master_data_errors(document) == []


def test_schema_ids_kinds_and_files():
    assert MASTER_DATA_SCHEMAS == {
        "mes.material/1": "material.v1.json",
        "mes.equipment/1": "equipment.v1.json",
        "mes.bom/1": "bom.v1.json",
        "mes.material_lot/1": "material_lot.v1.json",
    }
    assert KINDS == {
        "mes.material/1": "material",
        "mes.equipment/1": "equipment",
        "mes.bom/1": "bom",
        "mes.material_lot/1": "lot",
    }
    assert tuple(KINDS.values()) == MASTER_DATA_KINDS
    for schema_id, file_name in MASTER_DATA_SCHEMAS.items():
        schema = load_schema(file_name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["schema"] == {"const": schema_id}
        assert schema["additionalProperties"] is False
        # A full snapshot: every field is required.
        assert schema["required"] == list(schema["properties"])


def test_bill_of_materials_has_the_shapes_of_an_order():
    order = load_schema("order.v1.json")["$defs"]
    bom = load_schema("bom.v1.json")["$defs"]
    assert bom == {key: order[key] for key in ("product", "component", "operation")}


def _changed(document, path, value):
    """A copy of ``document`` with the value at ``path`` (keys and indexes) replaced, or
    removed when ``value`` is ``...``."""
    copied = copy.deepcopy(document)
    holder = copied
    for part in path[:-1]:
        holder = holder[part]
    if value is ...:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return copied


INVALID = [
    (_material, ("uom",), ..., [{"field": "uom", "reason": "is missing"}]),
    (
        _material,
        ("tracking",),
        "batch",
        [
            {
                "field": "tracking",
                "value": "batch",
                "reason": 'is not one of "none", "lot", "serial"',
            }
        ],
    ),
    (
        _material,
        ("code",),
        "C" * 65,
        [{"field": "code", "value": "C" * 65, "reason": "must be at most 64 characters"}],
    ),
    (
        _material,
        ("revision",),
        0,
        [{"field": "revision", "value": 0, "reason": "must be 1 or more"}],
    ),
    (
        _material,
        ("revision",),
        "3",
        [{"field": "revision", "value": "3", "reason": "is not of type integer"}],
    ),
    (
        _material,
        ("colour",),
        "red",
        [{"field": "colour", "value": "red", "reason": "is not an expected field"}],
    ),
    (
        _material,
        ("active",),
        None,
        [{"field": "active", "value": None, "reason": "is not of type boolean"}],
    ),
    (
        _equipment,
        ("capacity",),
        0,
        [{"field": "capacity", "value": 0, "reason": "must be greater than 0"}],
    ),
    (
        _equipment,
        ("calendar", "attendances", 1, "weekday"),
        7,
        [{"field": "calendar.attendances[1].weekday", "value": 7, "reason": "must be 6 or less"}],
    ),
    (
        _equipment,
        ("calendar", "attendances", 0, "from"),
        "8:00",
        [
            {
                "field": "calendar.attendances[0].from",
                "value": "8:00",
                "reason": "must match ^([01][0-9]|2[0-3]):[0-5][0-9]$",
            }
        ],
    ),
    (
        _equipment,
        ("calendar", "attendances", 0, "to"),
        "24:30",
        [
            {
                "field": "calendar.attendances[0].to",
                "value": "24:30",
                "reason": "must match ^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
            }
        ],
    ),
    (
        _equipment,
        ("calendar", "attendances", 0, "to"),
        "12:00\n",
        [
            {
                "field": "calendar.attendances[0].to",
                "value": "12:00\n",
                "reason": "must be at most 5 characters",
            }
        ],
    ),
    (
        _equipment,
        ("calendar", "attendances", 2, "week"),
        3,
        [{"field": "calendar.attendances[2].week", "value": 3, "reason": "is not one of 1, 2"}],
    ),
    (
        _equipment,
        ("calendar", "timezone"),
        ...,
        [{"field": "calendar.timezone", "reason": "is missing"}],
    ),
    (
        _equipment,
        ("calendar",),
        "Standard",
        [{"field": "calendar", "value": "Standard", "reason": "is not of type object or null"}],
    ),
    (
        _bom,
        ("quantity",),
        0,
        [{"field": "quantity", "value": 0, "reason": "must be greater than 0"}],
    ),
    (
        _bom,
        ("components", 2, "quantity"),
        -1,
        [{"field": "components[2].quantity", "value": -1, "reason": "must be 0 or more"}],
    ),
    (
        _bom,
        ("byproducts", 0, "product", "code"),
        ...,
        [{"field": "byproducts[0].product.code", "reason": "is missing"}],
    ),
    (
        _bom,
        ("operations", 1, "name"),
        "",
        [{"field": "operations[1].name", "value": "", "reason": "must not be empty"}],
    ),
    (
        _bom,
        ("reference",),
        7,
        [{"field": "reference", "value": 7, "reason": "is not of type string or null"}],
    ),
    (
        _lot,
        ("status",),
        "blocked",
        [{"field": "status", "value": "blocked", "reason": 'is not one of "released", "hold"'}],
    ),
    (
        _lot,
        ("tracking",),
        "none",
        [{"field": "tracking", "value": "none", "reason": 'is not one of "lot", "serial"'}],
    ),
    (
        _lot,
        ("expires_at",),
        "2027-01-31",
        [
            {
                "field": "expires_at",
                "value": "2027-01-31",
                "reason": "is not a date-time with time zone (ISO 8601, e.g. 2026-01-31T08:00:00Z)",
            }
        ],
    ),
    (
        _lot,
        ("lot",),
        "L\x00",
        [
            {
                "field": "lot",
                "value": "L\\u0000",
                "reason": "holds a NUL character (\\u0000), which text in the database cannot hold",
            }
        ],
    ),
]


@pytest.mark.parametrize(("make", "path", "value", "expected"), INVALID)
def test_invalid_documents_name_the_field_and_the_value(make, path, value, expected):
    document = _changed(make(), path, value)
    assert _errors(validate_master_data, document) == expected
    assert [e.as_dict() for e in master_data_errors(document)] == expected


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"schema": "mes.material/2", "code": "X"},
            {
                "field": "schema",
                "value": "mes.material/2",
                "reason": "is not a master data schema (mes.material/1, mes.equipment/1, "
                "mes.bom/1, mes.material_lot/1)",
            },
        ),
        (
            {"schema": ["mes.material/1"]},
            {
                "field": "schema",
                "value": ["mes.material/1"],
                "reason": "is not a master data schema (mes.material/1, mes.equipment/1, "
                "mes.bom/1, mes.material_lot/1)",
            },
        ),
        (
            {"code": "X"},
            {
                "field": "schema",
                "reason": "is missing: one of mes.material/1, mes.equipment/1, mes.bom/1, "
                "mes.material_lot/1",
            },
        ),
        (
            ["mes.material/1"],
            {"field": "(message)", "value": ["mes.material/1"], "reason": "is not a JSON object"},
        ),
    ],
)
def test_unknown_schema_is_an_error_on_schema(document, expected):
    assert _errors(validate_master_data, document) == [expected]


# ---------------------------------------------------------------------------
# Identity and idempotency keys
# ---------------------------------------------------------------------------


def test_identity_of_each_kind():
    assert master_data_identity(_material()) == ("material", "COMP-9")
    assert master_data_identity(_equipment()) == ("equipment", "WC-ASM")
    assert master_data_identity(_bom()) == ("bom", "BOM-12")
    assert master_data_identity(_lot()) == ("lot", "COMP-9/L-0001")


def test_lot_codes_are_unambiguous():
    # "A/B" + "C" and "A" + "B/C" would both be "A/B/C" without escaping.
    assert lot_code("A/B", "C") == "A\\/B/C"
    assert lot_code("A", "B/C") == "A/B/C"
    assert lot_code("A\\", "B") == "A\\\\/B"
    assert lot_code("A", "\\/B") == "A/\\/B"
    pairs = [("A/B", "C"), ("A", "B/C"), ("A\\", "/B"), ("A\\/", "B"), ("A", "\\/B")]
    assert len({lot_code(*pair) for pair in pairs}) == len(pairs)
    assert master_data_identity(_lot(product="A/B", lot="C")) == ("lot", "A\\/B/C")


def test_identity_of_an_unknown_schema_is_refused():
    assert _errors(master_data_identity, {"schema": "mes.order/1"}) == [
        {
            "field": "schema",
            "value": "mes.order/1",
            "reason": "is not a master data schema (mes.material/1, mes.equipment/1, "
            "mes.bom/1, mes.material_lot/1)",
        }
    ]


def test_idempotency_key_is_a_stable_uuid_per_revision():
    key = master_data_idempotency_key("db-uuid/SIM", "material", "COMP-9", 1)
    assert key == "bb3a881f-a0c8-59e9-951c-deb5c2ae025d"  # keys stored by an MES stay valid
    assert uuid.UUID(key).version == 5
    assert master_data_idempotency_key("db-uuid/SIM", "material", "COMP-9", "1") == key
    others = {
        master_data_idempotency_key("db-uuid/SIM", "material", "COMP-9", 2),
        master_data_idempotency_key("db-uuid/SIM", "equipment", "COMP-9", 1),
        master_data_idempotency_key("db-uuid/SIM", "material", "COMP-8", 1),
        master_data_idempotency_key("other-db/SIM", "material", "COMP-9", 1),
        order_idempotency_key("db-uuid/SIM", "COMP-9", 1),
    }
    assert len(others) == 5
    assert key not in others
    # Separators in the parts cannot make two records share a key.
    assert master_data_idempotency_key("db|material", "lot", "X", 1) != (
        master_data_idempotency_key("db", "lot", "material|X", 1)
    )
    assert len(master_data_idempotency_key("d" * 5000, "bom", "B" * 5000, 10**9)) == 36


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "material", "X", 1), "namespace and code are required"),
        (("db", "material", "", 1), "namespace and code are required"),
        (("db", "product", "X", 1), "kind must be one of material, equipment, bom, lot"),
        (("db", "lot", "X", 0), "revision must be 1 or more"),
    ],
)
def test_idempotency_key_refuses_what_names_nothing(args, message):
    with pytest.raises(ValueError, match=message):
        master_data_idempotency_key(*args)


# ---------------------------------------------------------------------------
# B2MML: the official XSDs
# ---------------------------------------------------------------------------


# Not fixtures: without the XSDs the tests that need them fail, and each is read once.
@functools.cache
def _xsd(noun):
    name = {
        "MaterialInformation": "B2MML-V0600-Material.xsd",
        "EquipmentInformation": "B2MML-V0600-Equipment.xsd",
        "OperationsDefinitionInformation": "B2MML-V0600-OperationsDefinition.xsd",
    }[noun]
    return load_xsd(name)


def _assert_valid(xml, noun):
    document = etree.fromstring(xml)
    schema = _xsd(noun)
    if not schema.validate(document):
        pytest.fail("not valid against the XSD:\n" + "\n".join(str(e) for e in schema.error_log))
    return document


NOUN = {
    "material": "MaterialInformation",
    "lot": "MaterialInformation",
    "equipment": "EquipmentInformation",
    "bom": "OperationsDefinitionInformation",
}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_round_trip_bare_is_exact_and_valid(name):
    document = DOCUMENTS[name]()
    xml = master_data_to_b2mml(document)
    root = _assert_valid(xml, NOUN[master_data_identity(document)[0]])
    assert etree.QName(root).namespace == NS_V0600
    assert b2mml_to_master_data(xml) == [document]
    assert master_data_to_b2mml(copy.deepcopy(document)) == xml  # the same bytes every time


@pytest.mark.parametrize("verb", ["Sync", "Process", "Change"])
@pytest.mark.parametrize("name", DOCUMENTS)
def test_round_trip_in_a_transaction_is_exact_and_valid(name, verb):
    document = DOCUMENTS[name]()
    noun = NOUN[master_data_identity(document)[0]]
    wrapped = bod.wrap(
        master_data_to_b2mml(document), verb, sender="ODOO-PROD", bod_id="bod-1", created=CREATED
    )
    root = _assert_valid(wrapped, noun)
    assert etree.QName(root).localname == f"{verb}{noun}"
    assert root.findtext("b:ApplicationArea/b:Sender/b:LogicalID", namespaces=NS) == "ODOO-PROD"
    assert root.findtext("b:ApplicationArea/b:BODID", namespaces=NS) == "bod-1"
    assert b2mml_to_master_data(wrapped) == [document]


@pytest.mark.parametrize("namespace", [NS_V0401, NS_V0500])
@pytest.mark.parametrize("name", DOCUMENTS)
def test_older_namespaces_are_read_alike(name, namespace):
    document = DOCUMENTS[name]()
    xml = master_data_to_b2mml(document).replace(NS_V0600.encode(), namespace.encode())
    assert b2mml_to_master_data(xml) == [document]
    wrapped = bod.wrap(xml, "Sync", sender="ODOO", bod_id="b", created=CREATED)
    assert b2mml_to_master_data(wrapped) == [document]


def test_texts_come_back_exactly():
    document = _material(
        code=" A\tB ", name=" line 1\r\nline 2 ", uom="m²", material_class="Ünïcode / ☃"
    )
    assert b2mml_to_master_data(master_data_to_b2mml(document)) == [document]


def _find(element, path):
    found = element.find(path, NS)
    assert found is not None, path
    return found


def _properties(element, tag):
    return {
        p.findtext("b:ID", namespaces=NS): p.findtext("b:Value/b:ValueString", namespaces=NS)
        for p in element.findall(f"b:{tag}", NS)
    }


def test_material_mapping():
    root = _assert_valid(master_data_to_b2mml(_material()), "MaterialInformation")
    definition = _find(root, "b:MaterialDefinition")
    assert definition.findtext("b:ID", namespaces=NS) == "COMP-9"
    assert definition.findtext("b:Description", namespaces=NS) == "Steel rod"
    assert definition.findtext("b:MaterialClassID", namespaces=NS) == "All / Raw materials"
    assert _properties(definition, "MaterialDefinitionProperty") == {
        "Revision": "3",
        "UnitOfMeasure": "kg",
        "Tracking": "lot",
        "Active": "true",
    }


def test_lot_mapping():
    root = _assert_valid(master_data_to_b2mml(_lot(status="hold")), "MaterialInformation")
    lot = _find(root, "b:MaterialLot")
    assert lot.findtext("b:ID", namespaces=NS) == "L-0001"
    assert lot.findtext("b:MaterialDefinitionID", namespaces=NS) == "COMP-9"
    assert lot.findtext("b:Status", namespaces=NS) == "Hold"
    assert _properties(lot, "MaterialLotProperty") == {
        "Revision": "1",
        "Tracking": "lot",
        "ExpirationTime": "2027-01-31T00:00:00+00:00",
    }


def test_equipment_mapping():
    root = _assert_valid(master_data_to_b2mml(_equipment()), "EquipmentInformation")
    equipment = _find(root, "b:Equipment")
    assert equipment.findtext("b:ID", namespaces=NS) == "WC-ASM"
    assert equipment.findtext("b:Description", namespaces=NS) == "Assembly line 1"
    assert equipment.findtext("b:EquipmentLevel/b:EquipmentElementLevel", namespaces=NS) == (
        "WorkCenter"
    )
    assert _properties(equipment, "EquipmentProperty") == {
        "Revision": "2",
        "Capacity": "2",
        "TimeEfficiency": "95.5",
        "Active": "true",
        "Calendar": "Standard 40 hours/week",
    }
    calendar = _find(equipment, "b:EquipmentProperty[b:ID='Calendar']")
    assert _properties(calendar, "EquipmentProperty") == {
        "TimeZone": "Europe/Brussels",
        "HoursPerDay": "8",
        "Attendance": None,
    }
    periods = calendar.findall("b:EquipmentProperty[b:ID='Attendance']", NS)
    assert [p.findtext("b:Description", namespaces=NS) for p in periods] == [
        "Monday 08:00-12:00",
        "Monday 13:00-17:00",
        "Friday 22:00-24:00 (week 2)",
    ]
    assert _properties(periods[2], "EquipmentProperty") == {
        "Weekday": "4",
        "From": "22:00",
        "To": "24:00",
        "Week": "2",
    }


def test_bill_of_materials_mapping():
    root = _assert_valid(master_data_to_b2mml(_bom()), "OperationsDefinitionInformation")
    definition = _find(root, "b:OperationsDefinition")
    assert [(etree.QName(c).localname, c.text) for c in definition][:5] == [
        ("ID", "BOM-12"),
        ("Version", "4"),
        ("Description", "PUMP-A main"),
        ("OperationsType", "Production"),
        ("BillOfMaterialsID", "BOM-12"),
    ]
    whole = _find(definition, "b:OperationsSegment")
    assert whole.findtext("b:ID", namespaces=NS) == "BOM-12"
    assert whole.findtext("b:Parameter[b:ID='Active']/b:Value/b:ValueString", namespaces=NS) == (
        "true"
    )

    def specifications(segment):
        return [
            (
                spec.findtext("b:ID", namespaces=NS),
                spec.findtext("b:MaterialDefinitionID", namespaces=NS),
                spec.findtext("b:MaterialUse", namespaces=NS),
                spec.find("b:MaterialUse", NS).get("OtherValue"),
                spec.findtext("b:Quantity/b:QuantityString", namespaces=NS),
                spec.findtext("b:Quantity/b:UnitOfMeasure", namespaces=NS),
            )
            for spec in segment.findall("b:MaterialSpecification", NS)
        ]

    assert specifications(whole) == [
        ("PRODUCT", "PUMP-A", "Produced", None, "2", "Units"),
        ("COMPONENT-2", "GLUE", "Consumed", None, "0.05", "kg"),
    ]
    operations = whole.findall("b:OperationsSegment", NS)
    assert [
        (
            o.findtext("b:ID", namespaces=NS),
            o.findtext("b:ProcessSegmentID", namespaces=NS),
            o.findtext("b:Description", namespaces=NS),
            o.findtext("b:Duration", namespaces=NS),
            o.findtext("b:EquipmentSpecification/b:EquipmentID", namespaces=NS),
        )
        for o in operations
    ] == [
        ("10", "10", "Cut", "PT12M30S", "WC-CUT"),
        ("20", "20", "Assembly", "PT30M", "WC-ASM"),
        ("20", "20", "Assembly, second station", "PT0S", "WC-ASM2"),
    ]
    # The first operation of a sequence gets its materials; by-products are an Other.
    assert specifications(operations[0]) == [
        ("COMPONENT-3", "SCREW", "Consumed", None, "8", "Units"),
    ]
    assert specifications(operations[1]) == [
        ("COMPONENT-1", "COMP-9", "Consumed", None, "1.5", "kg"),
        ("BYPRODUCT-1", "SCRAP-STEEL", "Other", "By-product Produced", "0.2", "kg"),
    ]
    assert specifications(operations[2]) == []
    tracked = _find(operations[1], "b:MaterialSpecification[b:ID='COMPONENT-1']")
    assert tracked.findtext("b:Description", namespaces=NS) == "Steel rod"
    assert _properties(tracked, "MaterialSpecificationProperty") == {"Tracking": "lot"}


def test_odoo_bill_writes_only_what_it_has():
    root = _assert_valid(master_data_to_b2mml(_odoo_bom()), "OperationsDefinitionInformation")
    definition = _find(root, "b:OperationsDefinition")
    assert definition.find("b:Description", NS) is None  # no reference
    product = _find(definition, "b:OperationsSegment/b:MaterialSpecification[b:ID='PRODUCT']")
    assert product.find("b:Description", NS) is None
    assert product.find("b:MaterialSpecificationProperty", NS) is None
    packing = definition.findall("b:OperationsSegment/b:OperationsSegment", NS)[1]
    assert packing.find("b:Duration", NS) is None
    active = "b:OperationsSegment/b:Parameter[b:ID='Active']/b:Value/b:ValueString"
    assert definition.findtext(active, namespaces=NS) == "false"


def test_reader_orders_the_bill_lines_by_their_numbers():
    document = _bom()
    xml = master_data_to_b2mml(document)
    # Written grouped by operation (2, 3, 1 ...): read back in the bill's order.
    assert [c["product"]["code"] for c in b2mml_to_master_data(xml)[0]["components"]] == [
        "COMP-9",
        "GLUE",
        "SCREW",
    ]
    # IDs that do not number the lines: document order.
    renamed = xml.replace(b"COMPONENT-", b"LINE-")
    assert [c["product"]["code"] for c in b2mml_to_master_data(renamed)[0]["components"]] == [
        "GLUE",
        "SCREW",
        "COMP-9",
    ]


def _information(documents):
    """One MaterialInformation holding the records of ``documents``, in that order."""
    root = etree.Element(f"{{{NS_V0600}}}MaterialInformation", nsmap={None: NS_V0600})
    for document in documents:
        root.extend(list(etree.fromstring(master_data_to_b2mml(document))))
    return etree.tostring(root)


def test_one_document_may_carry_several_records():
    materials = [_material(), _material(code="COMP-10", name="Bolt", material_class=None)]
    lots = [_lot(), _lot(lot="L-0002", status="hold", expires_at=None)]
    xml = _information([*materials, *lots])  # the XSD wants the definitions first
    _assert_valid(xml, "MaterialInformation")
    assert b2mml_to_master_data(xml) == [*materials, *lots]
    mixed = [materials[0], lots[0], materials[1], lots[1]]
    assert b2mml_to_master_data(_information(mixed)) == mixed  # document order
    # Several nouns in one transaction: read in turn.
    wrapped = etree.fromstring(bod.wrap(xml, "Sync", sender="ODOO", bod_id="b", created=CREATED))
    extra = _material(code="COMP-11")
    _find(wrapped, "b:DataArea").append(etree.fromstring(master_data_to_b2mml(extra)))
    _assert_valid(etree.tostring(wrapped), "MaterialInformation")
    assert b2mml_to_master_data(etree.tostring(wrapped)) == [*materials, *lots, extra]


def test_single_record_nouns_are_read_too():
    material = etree.fromstring(master_data_to_b2mml(_material()))[0]
    assert etree.QName(material).localname == "MaterialDefinition"
    assert b2mml_to_master_data(etree.tostring(material)) == [_material()]
    equipment = etree.fromstring(master_data_to_b2mml(_equipment()))[0]
    wrapped = bod.wrap(etree.tostring(equipment), "Sync", sender="O", bod_id="b", created=CREATED)
    assert etree.QName(etree.fromstring(wrapped)).localname == "SyncEquipment"
    assert b2mml_to_master_data(wrapped) == [_equipment()]


V0401_LOT = f"""<?xml version="1.0" encoding="UTF-8"?>
<ProcessMaterialInformation xmlns="{NS_V0401}" xmlns:x="urn:vendor" releaseID="1.0">
  <ApplicationArea>
    <Sender><LogicalID>ERP</LogicalID></Sender>
    <CreationDateTime>2026-03-02T09:30:00Z</CreationDateTime>
  </ApplicationArea>
  <DataArea>
    <Process/>
    <MaterialInformation>
      <ID>export 7</ID>
      <Location><EquipmentID>PLANT-7</EquipmentID></Location>
      <MaterialLot>
        <ID>L-77</ID>
        <Description>from supplier</Description>
        <MaterialDefinitionID>COMP-9</MaterialDefinitionID>
        <Status> On Hold </Status>
        <MaterialLotProperty>
          <ID>revision</ID><Value><ValueString> 5 </ValueString></Value>
        </MaterialLotProperty>
        <MaterialLotProperty>
          <ID>Expiration Date</ID>
          <Value><ValueString>2027-06-30T12:00:00</ValueString></Value>
        </MaterialLotProperty>
        <Quantity><QuantityString>40</QuantityString></Quantity>
        <x:Bin>B-12</x:Bin>
        <Any/>
      </MaterialLot>
    </MaterialInformation>
  </DataArea>
</ProcessMaterialInformation>
""".encode()


def test_another_mes_lot_in_v0401_with_extensions_and_defaults():
    assert b2mml_to_master_data(V0401_LOT) == [
        {
            "schema": "mes.material_lot/1",
            "revision": 5,
            "product": "COMP-9",
            "lot": "L-77",
            "tracking": "lot",
            "status": "hold",
            "expires_at": "2027-06-30T12:00:00+00:00",  # no zone: UTC
        }
    ]


def test_defaults_of_what_another_mes_leaves_out():
    xml = f"""<EquipmentInformation xmlns="{NS_V0500}"><Equipment><ID>WC-9</ID>
      <EquipmentProperty><ID>Revision</ID><Value><ValueString>1</ValueString></Value>
      </EquipmentProperty></Equipment></EquipmentInformation>""".encode()
    assert b2mml_to_master_data(xml) == [
        {
            "schema": "mes.equipment/1",
            "revision": 1,
            "code": "WC-9",
            "name": "",
            "capacity": 1.0,
            "time_efficiency": 100.0,
            "active": True,
            "calendar": None,
        }
    ]


# ---------------------------------------------------------------------------
# B2MML: what is refused
# ---------------------------------------------------------------------------

V6 = f'xmlns="{NS_V0600}"'


def _value(name, text):
    return f"<ID>{name}</ID><Value><ValueString>{text}</ValueString></Value>"


READER_ERRORS = [
    (
        f"""<MaterialInformation {V6}><MaterialDefinition><ID>A</ID>
        <MaterialDefinitionProperty>{_value("Colour", "red")}</MaterialDefinitionProperty>
        <MaterialDefinitionProperty>{_value("Active", "maybe")}</MaterialDefinitionProperty>
        <MaterialDefinitionProperty>{_value("Active", "true")}</MaterialDefinitionProperty>
        <MaterialLotID>L-1</MaterialLotID>
        </MaterialDefinition></MaterialInformation>""",
        [
            {
                "field": "MaterialDefinition[1]/MaterialLotID",
                "reason": "lists lots of the material: send each lot as a MaterialLot",
            },
            {
                "field": "MaterialDefinition[1]/MaterialDefinitionProperty[1]/ID",
                "value": "Colour",
                "reason": "is not a property this reader knows "
                "(Revision, UnitOfMeasure, Tracking, Active)",
            },
            {
                "field": "MaterialDefinition[1]/MaterialDefinitionProperty[3]/ID",
                "value": "Active",
                "reason": "is given twice",
            },
            {
                "field": "MaterialDefinition[1]/MaterialDefinitionProperty",
                "reason": "with ID Revision is missing",
            },
            {
                "field": "MaterialDefinition[1]/MaterialDefinitionProperty",
                "reason": "with ID UnitOfMeasure is missing",
            },
            {
                "field": "MaterialDefinition[1]/MaterialDefinitionProperty[2]/Value/ValueString",
                "value": "maybe",
                "reason": "is not a boolean (true or false)",
            },
        ],
    ),
    (
        f"""<MaterialInformation {V6}><MaterialLot><ID>L</ID>
        <MaterialDefinitionID>P</MaterialDefinitionID><Status>Quarantine</Status>
        <MaterialLotProperty>{_value("Revision", "0")}</MaterialLotProperty>
        <MaterialLotProperty>{_value("ExpirationTime", "soon")}</MaterialLotProperty>
        </MaterialLot></MaterialInformation>""",
        [
            {
                "field": "MaterialLot[1]/Status",
                "value": "Quarantine",
                "reason": "is not a lot status this reader knows (Released, Hold)",
            },
            {
                "field": "MaterialLot[1]/MaterialLotProperty[2]/Value/ValueString",
                "value": "soon",
                "reason": "is not a date-time with time zone (ISO 8601, e.g. "
                "2026-01-31T08:00:00Z) (the lot's expires_at)",
            },
            {
                "field": "MaterialLot[1]/MaterialLotProperty[1]/Value/ValueString",
                "value": 0,
                "reason": "must be 1 or more (the lot's revision)",
            },
        ],
    ),
    (
        f"""<EquipmentInformation {V6}><Equipment><ID>E</ID>
        <EquipmentProperty>{_value("Revision", "2")}
          <EquipmentProperty><ID>X</ID></EquipmentProperty></EquipmentProperty>
        <EquipmentProperty>{_value("Capacity", "-1")}</EquipmentProperty>
        <EquipmentProperty>{_value("Calendar", "C")}
          <EquipmentProperty>{_value("TimeZone", "UTC")}</EquipmentProperty>
          <EquipmentProperty>{_value("HoursPerDay", "eight")}</EquipmentProperty>
          <EquipmentProperty><ID>Attendance</ID>
            <EquipmentProperty>{_value("Weekday", "9")}</EquipmentProperty>
            <EquipmentProperty>{_value("From", "8h")}</EquipmentProperty>
          </EquipmentProperty>
        </EquipmentProperty>
        <Equipment><ID>SUB</ID></Equipment>
        </Equipment></EquipmentInformation>""",
        [
            {
                "field": "Equipment[1]/Equipment",
                "reason": "is an equipment inside an equipment: send each one as its own record",
            },
            {
                "field": "Equipment[1]/EquipmentProperty[1]/EquipmentProperty[1]",
                "reason": "is a property inside Revision, which it does not have",
            },
            {
                "field": "Equipment[1]/EquipmentProperty[3]/EquipmentProperty[2]/Value/ValueString",
                "value": "eight",
                "reason": "is not a number (xs:decimal)",
            },
            {
                "field": "Equipment[1]/EquipmentProperty[3]/EquipmentProperty[3]/EquipmentProperty",
                "reason": "with ID To is missing",
            },
            {
                "field": "Equipment[1]/EquipmentProperty[3]/EquipmentProperty[3]"
                "/EquipmentProperty[2]/Value/ValueString",
                "value": "8h",
                "reason": "must match ^([01][0-9]|2[0-3]):[0-5][0-9]$ "
                "(the equipment's calendar.attendances[0].from)",
            },
            {
                "field": "Equipment[1]/EquipmentProperty[3]/EquipmentProperty[3]"
                "/EquipmentProperty[1]/Value/ValueString",
                "value": 9,
                "reason": "must be 6 or less (the equipment's calendar.attendances[0].weekday)",
            },
            {
                "field": "Equipment[1]/EquipmentProperty[2]/Value/ValueString",
                "value": -1.0,
                "reason": "must be greater than 0 (the equipment's capacity)",
            },
        ],
    ),
    (
        f"""<OperationsDefinitionInformation {V6}><OperationsDefinition><ID>B</ID>
        <OperationsSegment><ID>B</ID><Parameter><ID>Owner</ID></Parameter>
          <MaterialSpecification><ID>COMPONENT-1</ID><MaterialDefinitionID>C</MaterialDefinitionID>
            <MaterialUse>Consumed</MaterialUse>
            <Quantity><QuantityString>-2</QuantityString><UnitOfMeasure>kg</UnitOfMeasure></Quantity>
          </MaterialSpecification>
          <MaterialSpecification><ID>X</ID><MaterialDefinitionID>S</MaterialDefinitionID>
            <MaterialUse>Sample</MaterialUse></MaterialSpecification>
          <OperationsSegment><ID>x</ID><ProcessSegmentID>ten</ProcessSegmentID>
            <Duration>P1M</Duration><Parameter><ID>Speed</ID></Parameter>
            <PersonnelSpecification/></OperationsSegment>
        </OperationsSegment>
        <OperationsMaterialBill><ID>B</ID></OperationsMaterialBill>
        </OperationsDefinition></OperationsDefinitionInformation>""",
        [
            {
                "field": "OperationsDefinition[1]/OperationsMaterialBill",
                "reason": "is a material bill, which this reader does not read: a bill's "
                "materials are the MaterialSpecifications of its segments",
            },
            {
                "field": "OperationsDefinition[1]/Version",
                "reason": "is missing: the bill's revision",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment[1]/Parameter[1]/ID",
                "value": "Owner",
                "reason": "is not a parameter of a bill this reader knows (Active)",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment[1]/MaterialSpecification[2]"
                "/MaterialUse",
                "value": "Sample",
                "reason": "is not a material use a bill carries "
                "(Consumed, Produced, By-product Produced)",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment[1]/OperationsSegment[1]"
                "/PersonnelSpecification",
                "reason": "names personnel, which no master data document carries",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment[1]/OperationsSegment[1]"
                "/ProcessSegmentID",
                "value": "ten",
                "reason": "is not an operation sequence (an integer), nor is the segment's ID",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment[1]/OperationsSegment[1]"
                "/EquipmentSpecification/EquipmentID",
                "reason": "is missing: the operation's resource",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment[1]/OperationsSegment[1]"
                "/Duration",
                "value": "P1M",
                "reason": "has years or months, which have no length in minutes",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment[1]/OperationsSegment[1]"
                "/Parameter[1]",
                "value": "Speed",
                "reason": "is a parameter of an operation, which mes.bom/1 cannot carry",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment/MaterialSpecification",
                "reason": "with MaterialUse Produced is missing: the bill's product",
            },
            {
                "field": "OperationsDefinition[1]/OperationsSegment[1]/MaterialSpecification[1]"
                "/Quantity/QuantityString",
                "value": -2.0,
                "reason": "must be 0 or more (the bill's components[0].quantity)",
            },
        ],
    ),
    (
        f"<MaterialInformation {V6}><ID>empty</ID></MaterialInformation>",
        [{"field": "(document)", "reason": "holds no master data record"}],
    ),
    (
        f"<CancelMaterialInformation {V6} releaseID='1.0'/>",
        [
            {
                "field": "(root)",
                "value": "CancelMaterialInformation",
                "reason": "is a Cancel transaction, which this interface does not take for a "
                "MaterialInformation (it takes Sync, Process, Change)",
            }
        ],
    ),
    (
        f"<ProductionSchedule {V6}/>",
        [
            {
                "field": "(root)",
                "value": f"{{{NS_V0600}}}ProductionSchedule",
                "reason": "is not a B2MML master data document of V0401, V0500 or V0600 "
                "(MaterialInformation, EquipmentInformation, OperationsDefinitionInformation, "
                "MaterialDefinition, MaterialLot, Equipment, OperationsDefinition, bare or in a "
                "Sync, Process, Change transaction)",
            }
        ],
    ),
    (
        "<MaterialInformation><MaterialDefinition/></MaterialInformation>",
        [
            {
                "field": "(root)",
                "value": "MaterialInformation",
                "reason": "is not a B2MML master data document of V0401, V0500 or V0600 "
                "(MaterialInformation, EquipmentInformation, OperationsDefinitionInformation, "
                "MaterialDefinition, MaterialLot, Equipment, OperationsDefinition, bare or in a "
                "Sync, Process, Change transaction)",
            }
        ],
    ),
]


@pytest.mark.parametrize(("xml", "expected"), READER_ERRORS)
def test_reader_names_the_element_and_the_value(xml, expected):
    assert _errors(b2mml_to_master_data, xml.encode()) == expected


def test_reader_errors_in_a_transaction_name_its_noun():
    xml = master_data_to_b2mml(_material()).replace(b"<ID>Tracking</ID>", b"<ID>Colour</ID>")
    wrapped = bod.wrap(xml, "Sync", sender="ODOO", bod_id="b", created=CREATED)
    assert _errors(b2mml_to_master_data, wrapped) == [
        {
            "field": "DataArea/MaterialInformation[1]/MaterialDefinition[1]"
            "/MaterialDefinitionProperty[3]/ID",
            "value": "Colour",
            "reason": "is not a property this reader knows "
            "(Revision, UnitOfMeasure, Tracking, Active)",
        }
    ]


def test_writer_refuses_what_cannot_travel():
    assert _errors(master_data_to_b2mml, _material(name="bell")) == [
        {"field": "name", "value": "bell", "reason": "holds a character XML 1.0 cannot carry"}
    ]
    bom = _bom()
    bom["byproducts"][0]["operation_sequence"] = 30
    assert _errors(master_data_to_b2mml, bom) == [
        {
            "field": "byproducts[0].operation_sequence",
            "value": 30,
            "reason": "is not the sequence of one of the bill's operations",
        }
    ]
    assert _errors(master_data_to_b2mml, _changed(_lot(), ("status",), "gone")) == [
        {"field": "status", "value": "gone", "reason": 'is not one of "released", "hold"'}
    ]


# ---------------------------------------------------------------------------
# B2MML: hostile documents
# ---------------------------------------------------------------------------

LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<MaterialInformation {V6}><MaterialDefinition><ID>&lol3;</ID></MaterialDefinition>
</MaterialInformation>"""
EXTERNAL = f"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<MaterialInformation {V6}><MaterialDefinition><ID>&secret;</ID></MaterialDefinition>
</MaterialInformation>"""
REFUSED_DTD = {
    "field": "(document)",
    "value": "<!DOCTYPE",
    "reason": "is not accepted: B2MML documents must not declare a DTD or entities",
}


@pytest.mark.parametrize(
    "xml",
    [
        LAUGHS.encode(),
        EXTERNAL.encode(),
        EXTERNAL.encode("utf-16"),
        b"<!DOCTYPE MaterialInformation SYSTEM 'http://127.0.0.1:9/b2mml.dtd'><a/>",
    ],
    ids=["billion laughs", "external entity", "utf-16", "remote DTD"],
)
def test_no_dtd_nor_entity_is_ever_read(xml):
    assert _errors(b2mml_to_master_data, xml) == [REFUSED_DTD]


def test_size_is_limited_before_parsing():
    xml = master_data_to_b2mml(_bom())
    assert _errors(functools.partial(b2mml_to_master_data, max_bytes=len(xml) - 1), xml) == [
        {
            "field": "(document)",
            "value": len(xml),
            "reason": f"bytes are more than the limit of {len(xml) - 1}",
        }
    ]
    huge = b"<MaterialInformation>" + b" " * (5 * 1024 * 1024) + b"</MaterialInformation>"
    assert _errors(b2mml_to_master_data, huge)[0]["reason"] == (
        "bytes are more than the limit of 5242880"
    )


def test_many_unknown_elements_stop_early():
    junk = "<Junk/>" * 5000
    xml = f"<MaterialInformation {V6}><MaterialDefinition>{junk}</MaterialDefinition>"
    errors = _errors(b2mml_to_master_data, (xml + "</MaterialInformation>").encode())
    assert len(errors) == 101
    assert errors[-1] == {
        "field": "(document)",
        "reason": "has more problems: only the first 100 are listed",
    }


def test_not_well_formed_and_not_bytes():
    [error] = _errors(b2mml_to_master_data, b"<MaterialInformation>")
    assert error["field"] == "(document)"
    assert error["reason"].startswith("is not well-formed XML")
    with pytest.raises(TypeError, match="a B2MML document is bytes, not str"):
        b2mml_to_master_data("<MaterialInformation/>")


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------

KEY = master_data_idempotency_key("test-db/SIM", "material", "COMP-9", 3)


def test_send_master_data_created_then_duplicate(mes_client, simulator):
    first = mes_client.send_master_data(_material(), KEY)
    assert first == MasterDataAck(
        duplicate=False,
        body={"status": "created", "kind": "material", "code": "COMP-9", "revision": 3},
    )
    again = mes_client.send_master_data(_material(), KEY)
    assert again == MasterDataAck(
        duplicate=True,
        body={"status": "duplicate", "kind": "material", "code": "COMP-9", "revision": 3},
    )
    newer = mes_client.send_master_data_xml(
        master_data_to_b2mml(_material(revision=4, name="Steel rod 8 mm")),
        master_data_idempotency_key("test-db/SIM", "material", "COMP-9", 4),
    )
    assert newer.body == {"status": "updated", "kind": "material", "code": "COMP-9", "revision": 4}
    [held] = simulator.store.master_data("material")
    assert (held["revision"], held["payload"]["name"], held["deliveries"]) == (
        4,
        "Steel rod 8 mm",
        3,
    )


def test_what_the_client_sends(stub_server):
    stub_server.body = {"status": "created", "kind": "lot", "code": "COMP-9/L-0001", "revision": 1}
    client = MesClient(stub_server.url, api_key="k-1", timeout=(2, 5))
    assert client.send_master_data(_lot(), "key-1").duplicate is False
    xml = master_data_to_b2mml(_lot())
    assert client.send_master_data_xml(xml, "key-2").body["code"] == "COMP-9/L-0001"
    first, second = stub_server.requests
    assert (first["method"], first["path"], first["json"]) == (
        "POST",
        "/api/v1/master-data",
        _lot(),
    )
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"]["Idempotency-Key"] == "key-1"
    assert first["headers"]["Authorization"] == "Bearer k-1"
    assert (second["path"], second["json"]) == ("/api/v1/master-data", xml)
    assert second["headers"]["Content-Type"] == "application/xml"
    assert second["headers"]["Idempotency-Key"] == "key-2"


def test_a_refused_material_is_permanent_with_the_mes_reason(mes_client, simulator):
    simulator.refuse_materials = {"COMP-9": "no storage class for lot items"}
    with pytest.raises(MesRejectedError) as info:
        mes_client.send_master_data(_material(), KEY)
    assert info.value.status == 422
    assert info.value.reason == "material refused: no storage class for lot items"
    assert str(info.value) == (
        "MES rejected the message (HTTP 422): material refused: no storage class for lot items"
    )
    assert simulator.store.master_data() == []


def test_a_stale_revision_is_permanent_with_the_mes_reason(mes_client):
    mes_client.send_master_data(_material(revision=5), "key-5")
    with pytest.raises(MesRejectedError) as info:
        mes_client.send_master_data(_material(revision=4), "key-4")
    assert info.value.status == 409
    assert info.value.reason == (
        "stale revision: material COMP-9: revision 4 arrives while the MES holds revision 5"
    )


def test_an_invalid_document_is_permanent_naming_the_field(mes_client):
    with pytest.raises(MesRejectedError) as info:
        mes_client.send_master_data(_changed(_material(), ("uom",), ""), KEY)
    assert info.value.status == 422
    assert info.value.reason == "master data is not valid; uom: must not be empty"


def test_wrong_key_is_an_auth_error(simulator):
    client = MesClient(simulator.url, api_key="wrong", timeout=(2, 5))
    with pytest.raises(MesAuthError) as info:
        client.send_master_data(_material(), KEY)
    assert info.value.status == 401


@pytest.mark.parametrize(("status", "retry_after"), [(503, "30"), (500, None), (429, "5")])
def test_busy_mes_is_transient(stub_server, status, retry_after):
    stub_server.status = status
    if retry_after:
        stub_server.headers = {"Retry-After": retry_after}
    client = MesClient(stub_server.url, timeout=(2, 5))
    with pytest.raises(MesTransientError) as info:
        client.send_master_data_xml(master_data_to_b2mml(_material()), KEY)
    assert info.value.status == status
    assert info.value.retry_after == (int(retry_after) if retry_after else None)


def test_slow_mes_is_transient(stub_server):
    stub_server.delay = 5.0  # released when the fixture stops the server
    client = MesClient(stub_server.url, timeout=(2, 0.2))
    with pytest.raises(MesTransientError, match="did not answer in time"):
        client.send_master_data(_material(), KEY)


def test_unreachable_mes_is_transient(closed_port):
    client = MesClient(f"http://127.0.0.1:{closed_port}", timeout=(2, 5))
    with pytest.raises(MesTransientError, match="not reachable"):
        client.send_master_data(_material(), KEY)


@pytest.mark.parametrize("body", [b"<html>ok</html>", ["created"]])
def test_an_answer_that_is_no_json_object_is_transient(stub_server, body):
    stub_server.status = 201
    stub_server.body = body
    client = MesClient(stub_server.url, timeout=(2, 5))
    with pytest.raises(MesTransientError) as info:
        client.send_master_data(_material(), KEY)
    assert info.value.status == 201


def test_a_key_is_required(mes_client, simulator):
    with pytest.raises(ValueError, match="idempotency_key is required"):
        mes_client.send_master_data(_material(), "")
    with pytest.raises(ValueError, match="idempotency_key is required"):
        mes_client.send_master_data_xml(master_data_to_b2mml(_material()), None)
    assert simulator.store.master_data() == []
