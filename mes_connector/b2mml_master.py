"""Master data in B2MML: materials, lots, equipment and bills of materials.

:func:`master_data_to_b2mml` writes one master data document (``mes.material/1``,
``mes.material_lot/1``, ``mes.equipment/1``, ``mes.bom/1``) as a B2MML V0600 noun that
validates against the official XSD; :func:`b2mml_to_master_data` reads such nouns back
(V0401, V0500 or V0600, bare or in a Sync, Process or Change transaction of
:mod:`~mes_connector.bod`). What B2MML has no element for travels as a property whose ID
is named below; the revision always travels (``Version`` where there is one, else the
property ``Revision``). Values are written as :mod:`~mes_connector.b2mml` writes them:
quantities as xs:decimal, durations as xs:duration, booleans ``true``/``false``.

Material (``MaterialInformation/MaterialDefinition``)::

    ID = code                       Description = name
    MaterialDefinitionProperty      Revision, UnitOfMeasure (uom), Tracking (none, lot,
                                    serial), Active (boolean)
    MaterialClassID = class         (none when class is null)

Lot (``MaterialInformation/MaterialLot``)::

    ID = lot                        MaterialDefinitionID = product
    Status = Released | Hold        (read: Released, Hold, OnHold, Held, Blocked)
    MaterialLotProperty             Revision, Tracking (lot, serial), ExpirationTime
                                    (expires_at; none when null)

Work center (``EquipmentInformation/Equipment``)::

    ID = code                       Description = name
    EquipmentLevel                  the equipment itself at the level WorkCenter
    EquipmentProperty               Revision, Capacity, TimeEfficiency (UnitOfMeasure %),
                                    Active, Calendar (none when null)
    Calendar: Value = the calendar's name, nested EquipmentProperty TimeZone,
    HoursPerDay (UnitOfMeasure h) and one Attendance per period (Description "Monday
    08:00-12:00"; nested Weekday 0-6, From, To, Week when the calendar has two weeks)

Bill of materials (``OperationsDefinitionInformation/OperationsDefinition``), laid out as
the order's ``ProductionSchedule`` of :mod:`~mes_connector.b2mml`::

    ID = code   Version = revision   Description = reference (none when null)
    OperationsType = Production      BillOfMaterialsID = code
    OperationsSegment (ID = code): the bill as a whole
        Parameter Active
        MaterialSpecification PRODUCT, MaterialUse Produced: the product, quantity, uom
        MaterialSpecification COMPONENT-<n>, Consumed: the n-th component (1-based) when
            it names no operation; BYPRODUCT-<n>, Other "By-product Produced": by-products
        OperationsSegment per operation, in order: ID = ProcessSegmentID = sequence,
            Description = name, Duration (duration_minutes, when given),
            EquipmentSpecification/EquipmentID = resource, and the MaterialSpecifications
            of the components and by-products of its sequence (the first operation of a
            sequence gets them)

A material specification's MaterialDefinitionID is the product's code, its Description
the product's name and its property Tracking the product's tracking, each only when the
document has it. The reader takes the same shape from others: segments with a
ProcessSegmentID or an EquipmentSpecification are operations, the others group; the
numbers of COMPONENT-<n> and BYPRODUCT-<n> give the order of the lists (else document
order). Reading a written document gives the document back exactly; the reader always
gives ``operation_sequence`` (null for the bill as a whole).

Texts (codes, names) are read as written, without trimming; numbers, booleans, states
and date-times are trimmed. A date-time without a zone is UTC. Documents are parsed as
:mod:`~mes_connector.b2mml` parses them: no DTD, no entity, nothing fetched, at most
``max_bytes``.

"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International."
"""

import functools
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from .b2mml import (
    _BY_PRODUCED,
    B2MML_NAMESPACES,
    BY_PRODUCT_USE,
    DEFAULT_MAX_BYTES,
    NS_V0600,
    _add,
    _capped,
    _decimal_text,
    _invalid,
    _unwritable_texts,
    _v6,
    _Walker,
    _xs_duration,
    duration_minutes,
    read_with_envelope,
)
from .bod import VERBS, unwrap
from .exceptions import MessageValidationError
from .master_data import (
    BOM_SCHEMA,
    EQUIPMENT_SCHEMA,
    MASTER_DATA_SCHEMAS,
    MATERIAL_LOT_SCHEMA,
    MATERIAL_SCHEMA,
    validate_master_data,
)
from .validation import MISSING, FieldError, validation_errors

# The transactions that hand master data over (a Get asks for it, a Cancel withdraws it).
MASTER_DATA_VERBS = ("Sync", "Process", "Change")
# The nouns read: the *Information ones the writer writes, and the single records.
MASTER_DATA_NOUNS = (
    "MaterialInformation",
    "EquipmentInformation",
    "OperationsDefinitionInformation",
    "MaterialDefinition",
    "MaterialLot",
    "Equipment",
    "OperationsDefinition",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LOT_STATUS = {"released": "Released", "hold": "Hold"}
_LOT_STATUS_READ = {
    "released": "released",
    "hold": "hold",
    "onhold": "hold",
    "held": "hold",
    "blocked": "hold",
}
_MATERIAL_ID = re.compile(r"(COMPONENT|BYPRODUCT)-([1-9][0-9]{0,8})")
_DECIMAL_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")


# ---------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------


def master_data_to_b2mml(document):
    """One master data document as a B2MML V0600 noun (UTF-8 bytes), mapped as the module
    says. The document is validated first; :class:`MessageValidationError` also names a
    text XML cannot carry and a component or by-product whose ``operation_sequence`` is
    no operation of the bill. The same document always gives the same bytes."""
    validate_master_data(document)
    errors = list(_unwritable_texts(document, ""))
    if document["schema"] == BOM_SCHEMA:
        sequences = {operation["sequence"] for operation in document["operations"]}
        for key in ("components", "byproducts"):
            for index, material in enumerate(document[key]):
                sequence = material.get("operation_sequence")
                if sequence is not None and sequence not in sequences:
                    errors.append(
                        FieldError(
                            f"{key}[{index}].operation_sequence",
                            sequence,
                            "is not the sequence of one of the bill's operations",
                        )
                    )
    if errors:
        raise MessageValidationError(errors)
    root = _WRITERS[document["schema"]](document)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _root(name):
    return etree.Element(_v6(name), nsmap={None: NS_V0600})


def _property(parent, tag, name, text=None, data_type="string", unit=None, description=None):
    """``<tag><ID>name</ID><Description/><Value>...</Value></tag>``; nested properties go
    after it (append them to the result)."""
    prop = _add(parent, tag)
    _add(prop, "ID", name)
    if description is not None:
        _add(prop, "Description", description)
    if text is not None:
        value = _add(prop, "Value")
        _add(value, "ValueString", text)
        _add(value, "DataType", data_type)
        if unit:
            _add(value, "UnitOfMeasure", unit)
    return prop


def _boolean(value):
    return "true" if value else "false"


def _write_material(document):
    root = _root("MaterialInformation")
    definition = _add(root, "MaterialDefinition")
    _add(definition, "ID", document["code"])
    _add(definition, "Description", document["name"])
    tag = "MaterialDefinitionProperty"
    _property(definition, tag, "Revision", str(document["revision"]), "integer")
    _property(definition, tag, "UnitOfMeasure", document["uom"])
    _property(definition, tag, "Tracking", document["tracking"])
    _property(definition, tag, "Active", _boolean(document["active"]), "boolean")
    if document["class"] is not None:
        _add(definition, "MaterialClassID", document["class"])
    return root


def _write_lot(document):
    root = _root("MaterialInformation")
    lot = _add(root, "MaterialLot")
    _add(lot, "ID", document["lot"])
    _add(lot, "MaterialDefinitionID", document["product"])
    _add(lot, "Status", _LOT_STATUS[document["status"]])
    tag = "MaterialLotProperty"
    _property(lot, tag, "Revision", str(document["revision"]), "integer")
    _property(lot, tag, "Tracking", document["tracking"])
    if document["expires_at"] is not None:
        _property(lot, tag, "ExpirationTime", document["expires_at"], "dateTime")
    return root


def _write_equipment(document):
    root = _root("EquipmentInformation")
    equipment = _add(root, "Equipment")
    _add(equipment, "ID", document["code"])
    _add(equipment, "Description", document["name"])
    level = _add(equipment, "EquipmentLevel")
    _add(level, "EquipmentID", document["code"])
    _add(level, "EquipmentElementLevel", "WorkCenter")
    tag = "EquipmentProperty"
    _property(equipment, tag, "Revision", str(document["revision"]), "integer")
    _property(equipment, tag, "Capacity", _decimal_text(document["capacity"]), "decimal")
    efficiency = _decimal_text(document["time_efficiency"])
    _property(equipment, tag, "TimeEfficiency", efficiency, "decimal", unit="%")
    _property(equipment, tag, "Active", _boolean(document["active"]), "boolean")
    calendar = document["calendar"]
    if calendar is not None:
        holder = _property(equipment, tag, "Calendar", calendar["name"])
        _property(holder, tag, "TimeZone", calendar["timezone"])
        hours = _decimal_text(calendar["hours_per_day"])
        _property(holder, tag, "HoursPerDay", hours, "decimal", unit="h")
        for attendance in calendar["attendances"]:
            text = f"{WEEKDAYS[attendance['weekday']]} {attendance['from']}-{attendance['to']}"
            if "week" in attendance:
                text += f" (week {attendance['week']})"
            period = _property(holder, tag, "Attendance", description=text)
            _property(period, tag, "Weekday", str(attendance["weekday"]), "integer")
            _property(period, tag, "From", attendance["from"])
            _property(period, tag, "To", attendance["to"])
            if "week" in attendance:
                _property(period, tag, "Week", str(attendance["week"]), "integer")
    return root


def _write_bom(document):
    root = _root("OperationsDefinitionInformation")
    definition = _add(root, "OperationsDefinition")
    _add(definition, "ID", document["code"])
    _add(definition, "Version", str(document["revision"]))
    if document["reference"] is not None:
        _add(definition, "Description", document["reference"])
    _add(definition, "OperationsType", "Production")
    _add(definition, "BillOfMaterialsID", document["code"])
    whole = _add(definition, "OperationsSegment")
    _add(whole, "ID", document["code"])
    _add(whole, "OperationsType", "Production")
    parameter = _add(whole, "Parameter")
    _add(parameter, "ID", "Active")
    value = _add(parameter, "Value")
    _add(value, "ValueString", _boolean(document["active"]))
    _add(value, "DataType", "boolean")
    _specification(whole, "PRODUCT", document["product"], document, "Produced")
    # Two operations may share a sequence (Odoo allows it): the first gets its materials.
    first_of = {}
    for index, operation in enumerate(document["operations"]):
        first_of.setdefault(operation["sequence"], index)
    owned = {}
    for key, prefix in (("components", "COMPONENT"), ("byproducts", "BYPRODUCT")):
        for number, material in enumerate(document[key], 1):
            sequence = material.get("operation_sequence")
            holder = None if sequence is None else first_of[sequence]
            owned.setdefault(holder, []).append((f"{prefix}-{number}", material))
    for spec_id, material in owned.get(None, ()):
        _bill_line(whole, spec_id, material)
    for index, operation in enumerate(document["operations"]):
        segment = _add(whole, "OperationsSegment")
        _add(segment, "ID", str(operation["sequence"]))
        _add(segment, "Description", operation["name"])
        _add(segment, "OperationsType", "Production")
        if "duration_minutes" in operation:
            _add(segment, "Duration", _xs_duration(operation["duration_minutes"]))
        _add(segment, "ProcessSegmentID", str(operation["sequence"]))
        _add(_add(segment, "EquipmentSpecification"), "EquipmentID", operation["resource"])
        for spec_id, material in owned.get(index, ()):
            _bill_line(segment, spec_id, material)
    return root


def _bill_line(segment, spec_id, material):
    use = "Consumed" if spec_id.startswith("COMPONENT") else "Other"
    _specification(segment, spec_id, material["product"], material, use)


def _specification(segment, spec_id, product, amount, use):
    spec = _add(segment, "MaterialSpecification")
    _add(spec, "ID", spec_id)
    _add(spec, "MaterialDefinitionID", product["code"])
    if "name" in product:
        _add(spec, "Description", product["name"])
    # V0600's MaterialUse has no by-product: an Other, named by its OtherValue.
    if use == "Other":
        _add(spec, "MaterialUse", use, OtherValue=BY_PRODUCT_USE)
    else:
        _add(spec, "MaterialUse", use)
    quantity = _add(spec, "Quantity")
    _add(quantity, "QuantityString", _decimal_text(amount["quantity"]))
    _add(quantity, "DataType", "decimal")
    _add(quantity, "UnitOfMeasure", amount["uom"])
    if "tracking" in product:
        _property(spec, "MaterialSpecificationProperty", "Tracking", product["tracking"])
    return spec


_WRITERS = {
    MATERIAL_SCHEMA: _write_material,
    MATERIAL_LOT_SCHEMA: _write_lot,
    EQUIPMENT_SCHEMA: _write_equipment,
    BOM_SCHEMA: _write_bom,
}


# ---------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------

# Children each element may have (V0401, V0500 and V0600 together): read, or only
# describing and skipped. Other B2MML children are errors; those that carry what no
# master data document can are named with the reason (nothing is dropped unsaid).
_INFORMATION_COMMON = {"ID", "Description", "Location", "HierarchyScope", "PublishedDate", "Any"}
_MATERIAL_INFORMATION = _INFORMATION_COMMON | {"MaterialDefinition", "MaterialLot"}
_EQUIPMENT_INFORMATION = _INFORMATION_COMMON | {"Equipment"}
_OPERATIONS_INFORMATION = _INFORMATION_COMMON | {"OperationsDefinition"}
_DEFINITION = {
    "ID",
    "Description",
    "Location",
    "HierarchyScope",
    "MaterialDefinitionProperty",
    "MaterialClassID",
    "MaterialTestSpecificationID",
    "Any",
}
_LOT = {
    "ID",
    "Description",
    "Location",
    "HierarchyScope",
    "MaterialDefinitionID",
    "Status",
    "MaterialLotProperty",
    "StorageLocation",
    "Quantity",
    "MaterialTestSpecificationID",
    "Any",
}
_EQUIPMENT = {
    "ID",
    "Description",
    "Location",
    "HierarchyScope",
    "EquipmentLevel",
    "EquipmentAssetMapping",
    "EquipmentProperty",
    "EquipmentClassID",
    "EquipmentCapabilityTestSpecificationID",
    "Any",
}
_OPERATIONS_DEFINITION = {
    "ID",
    "Version",
    "Description",
    "Location",
    "HierarchyScope",
    "OperationsType",
    "PublishedDate",
    "BillOfMaterialsID",
    "WorkDefinitionID",
    "BillOfResourcesID",
    "OperationsSegment",
    "Any",
}
_SEGMENT = {
    "ID",
    "Description",
    "OperationsType",
    "Location",
    "HierarchyScope",
    "Duration",
    "ProcessSegmentID",
    "Parameter",
    "EquipmentSpecification",
    "MaterialSpecification",
    "SegmentDependency",
    "OperationsSegment",
    "Any",
}
_EQUIPMENT_SPECIFICATION = {
    "EquipmentClassID",
    "EquipmentID",
    "Description",
    "EquipmentUse",
    "Location",
    "HierarchyScope",
    "Any",
}
_MATERIAL_SPECIFICATION = {
    "ID",
    "MaterialClassID",
    "MaterialDefinitionID",
    "Description",
    "MaterialUse",
    "Quantity",
    "AssemblyType",
    "AssemblyRelationship",
    "MaterialSpecificationProperty",
    "Location",
    "HierarchyScope",
    "Any",
}
_PROPERTY = {"ID", "Description", "Value", "Any"}
_VALUE = {"ValueString", "DataType", "UnitOfMeasure", "Key", "Any"}
_QUANTITY = {"QuantityString", "DataType", "UnitOfMeasure", "Key", "Any"}
_NOT_CARRIED = "which no master data document carries"
_UNSUPPORTED = {
    "MaterialClass": f"defines a material class, {_NOT_CARRIED}",
    "MaterialSubLot": f"is a sublot, {_NOT_CARRIED}",
    "MaterialTestSpecification": f"is a test specification, {_NOT_CARRIED}",
    "MaterialLotID": "lists lots of the material: send each lot as a MaterialLot",
    "AssemblylDefinitionID": f"makes the material an assembly, {_NOT_CARRIED}",
    "AssemblyDefinitionID": f"makes the material an assembly, {_NOT_CARRIED}",
    "AssemblyLotID": f"makes the lot an assembly, {_NOT_CARRIED}",
    "AssemblySubLotID": f"makes the lot an assembly, {_NOT_CARRIED}",
    "AssemblySpecification": f"makes the material an assembly, {_NOT_CARRIED}",
    "EquipmentClass": f"defines an equipment class, {_NOT_CARRIED}",
    "EquipmentCapabilityTestSpecification": f"is a test specification, {_NOT_CARRIED}",
    "OperationsMaterialBill": (
        "is a material bill, which this reader does not read: a bill's materials are the "
        "MaterialSpecifications of its segments"
    ),
    "PersonnelSpecification": f"names personnel, {_NOT_CARRIED}",
    "PhysicalAssetSpecification": f"names physical assets, {_NOT_CARRIED}",
    "EquipmentSpecificationProperty": f"is a property of an operation's equipment, {_NOT_CARRIED}",
    "TestResult": f"is a test result, {_NOT_CARRIED}",
}
# Inside an Equipment only: equipment it contains.
_EQUIPMENT_UNSUPPORTED = dict(
    _UNSUPPORTED, Equipment="is an equipment inside an equipment: send each one as its own record"
)
_SCHEMA_OF_NOUN = {
    "MaterialDefinition": MATERIAL_SCHEMA,
    "MaterialLot": MATERIAL_LOT_SCHEMA,
    "Equipment": EQUIPMENT_SCHEMA,
    "OperationsDefinition": BOM_SCHEMA,
}
_LABELS = {
    MATERIAL_SCHEMA: "material",
    MATERIAL_LOT_SCHEMA: "lot",
    EQUIPMENT_SCHEMA: "equipment",
    BOM_SCHEMA: "bill",
}
# Key order of each document, as the dataclasses' to_dict() writes them.
_KEYS = {
    MATERIAL_SCHEMA: ("schema", "revision", "code", "name", "uom", "tracking", "class", "active"),
    MATERIAL_LOT_SCHEMA: (
        "schema",
        "revision",
        "product",
        "lot",
        "tracking",
        "status",
        "expires_at",
    ),
    EQUIPMENT_SCHEMA: (
        "schema",
        "revision",
        "code",
        "name",
        "capacity",
        "time_efficiency",
        "active",
        "calendar",
    ),
    BOM_SCHEMA: (
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
    ),
}


def b2mml_to_master_data(xml, *, max_bytes=DEFAULT_MAX_BYTES):
    """The master data documents a B2MML document carries, in document order, each valid.

    ``xml`` (bytes) is a noun of :data:`MASTER_DATA_NOUNS` in the V0401, V0500 or V0600
    namespace, bare or in its Sync, Process or Change transaction (several nouns in one
    are read in turn); one ``MaterialInformation`` may hold several definitions and lots.
    Refused (:class:`MessageValidationError`, every :class:`FieldError` naming the XML
    path and the value) when larger than ``max_bytes``, declaring a DTD or entities, not
    well-formed, another document, holding no record, holding content no master data
    document carries, or when a value is wrong (the schemas' problems are named at the
    path the value came from).
    """
    return read_master_data(xml, max_bytes=max_bytes)[0]


def read_master_data(xml, *, max_bytes=DEFAULT_MAX_BYTES):
    """``(documents, envelope)``: the documents of :func:`b2mml_to_master_data` and the
    document's BOD :class:`~mes_connector.bod.Envelope` (None for a bare noun), to
    answer it in its own form. A document refused for its content raises
    :class:`MessageValidationError` whose ``envelope`` attribute is the envelope read
    before the problems were found (or None).
    """
    return read_with_envelope(_MasterReader, xml, max_bytes)


def _noun_of(root):
    name = etree.QName(root).localname
    for noun in MASTER_DATA_NOUNS:
        if name == noun or any(name == f"{verb}{noun}" for verb in VERBS):
            return noun
    return None


def _letters(text):
    return re.sub(r"[^a-z]", "", text.lower())


def _raw(element):
    """Text of a leaf as written ("" when empty), None when absent."""
    if element is None:
        return None
    return element.text or ""


class _Record:
    """One document being read: its fields, where each came from, which failed."""

    def __init__(self, schema, path):
        self.schema = schema
        self.path = path
        self.doc = {"schema": schema}
        self.origin = {}
        self.failed = set()


class _MasterReader(_Walker):
    def __init__(self, root):
        super().__init__(root)
        self.records = []
        self.record = None
        self.bom = None  # what a bill's segments gave so far (see _bom)
        self.envelope = None

    def read(self):
        noun = _noun_of(self.root)
        if noun is None or etree.QName(self.root).namespace not in B2MML_NAMESPACES:
            raise _invalid(
                "(root)",
                self.root.tag,
                "is not a B2MML master data document of V0401, V0500 or V0600 "
                f"({', '.join(MASTER_DATA_NOUNS)}, bare or in a "
                f"{', '.join(MASTER_DATA_VERBS)} transaction)",
            )
        nouns, envelope = unwrap(
            self.root, noun, B2MML_NAMESPACES, MASTER_DATA_VERBS, self._datetime
        )
        self.envelope = envelope
        for position, element in enumerate(nouns, 1):
            path = f"DataArea/{noun}[{position}]" if envelope else ""
            self._noun(noun, element, path)
        if not self.records and not self.errors:
            where = f"DataArea/{noun}" if envelope else "(document)"
            self.errors.append(FieldError(where, MISSING, "holds no master data record"))
        documents = [self._finish(record) for record in self.records]
        if self.errors:
            raise MessageValidationError(_capped(self.errors, "(document)"))
        return documents

    # Nouns

    def _noun(self, noun, element, path):
        if noun in _SCHEMA_OF_NOUN:
            self._one(noun, element, path)
            return
        allowed = {
            "MaterialInformation": _MATERIAL_INFORMATION,
            "EquipmentInformation": _EQUIPMENT_INFORMATION,
            "OperationsDefinitionInformation": _OPERATIONS_INFORMATION,
        }[noun]
        children = self._children(element, path, allowed, _UNSUPPORTED)
        for name, index, child in self._numbered(children, *_SCHEMA_OF_NOUN):
            self._one(name, child, self._join(path, f"{name}[{index}]"))

    def _one(self, name, element, path):
        record = _Record(_SCHEMA_OF_NOUN[name], path)
        self.records.append(record)
        self.record = record
        {
            "MaterialDefinition": self._material,
            "MaterialLot": self._lot,
            "Equipment": self._equipment,
            "OperationsDefinition": self._bom,
        }[name](element, path)

    @staticmethod
    def _join(path, name):
        return f"{path}/{name}" if path else name

    # Fields of the current record

    def _set(self, field, value, path):
        self.record.origin[field] = path
        self.record.doc[field] = value

    def _fail(self, field, path, value, reason):
        self.record.origin[field] = path
        self.record.failed.add(field)
        self.errors.append(FieldError(path, value, reason))

    def _text_field(self, children, name, path, field, default=MISSING):
        """A text as written; missing: ``default``, or an error without one."""
        where = self._join(path, name)
        text = _raw(self._first(children, name))
        if text is None:
            if default is MISSING:
                self._fail(field, where, MISSING, "is missing")
                return
            text = default
        self._set(field, text, where)

    def _properties(self, children, path, tag, fields, repeated=(), nested=()):
        """The properties ``tag`` among ``children`` whose ID is a key of ``fields`` (label
        -> field; compared by letters, in any case): {field: [(children, path), ...]}.
        Unknown IDs, IDs given twice (unless ``repeated``) and properties inside one
        (unless ``nested``) are errors."""
        by_letters = {_letters(label): field for label, field in fields.items()}
        found = {}
        for _name, index, prop in self._numbered(children, tag):
            where = self._join(path, f"{tag}[{index}]")
            parts = self._children(prop, where, _PROPERTY | {tag}, _UNSUPPORTED)
            identifier = _raw(self._first(parts, "ID"))
            field = by_letters.get(_letters(identifier or ""))
            value = MISSING if identifier is None else identifier
            if field is None:
                reason = f"is not a property this reader knows ({', '.join(fields)})"
                self.errors.append(FieldError(self._join(where, "ID"), value, reason))
                continue
            if field in found and field not in repeated:
                self.errors.append(FieldError(self._join(where, "ID"), value, "is given twice"))
                continue
            if field not in nested:
                for number, _inner in enumerate(self._all(parts, tag), 1):
                    self.errors.append(
                        FieldError(
                            self._join(where, f"{tag}[{number}]"),
                            MISSING,
                            f"is a property inside {identifier}, which it does not have",
                        )
                    )
            found.setdefault(field, []).append((parts, where))
        return found

    def _value(self, parts, where):
        """(ValueString as written, its path); a missing one is reported (text None)."""
        value = self._first(parts, "Value")
        path = self._join(where, "Value/ValueString")
        if value is None:
            self.errors.append(FieldError(self._join(where, "Value"), MISSING, "is missing"))
            return None, path
        items = self._children(value, self._join(where, "Value"), _VALUE, _UNSUPPORTED)
        text = _raw(self._first(items, "ValueString"))
        if text is None:
            self.errors.append(FieldError(path, MISSING, "is missing"))
        return text, path

    def _property_value(self, found, field, convert, *, path, tag, label, default=MISSING):
        """The value of the property ``field`` read by ``convert`` (MISSING when wrong or
        missing, reported; ``default`` when absent and there is one); where it came from
        is noted under ``field`` of the record."""
        entries = found.get(field)
        if not entries:
            if default is MISSING:
                where = self._join(path, tag)
                self._fail(field, where, MISSING, f"with ID {label} is missing")
            return default
        parts, where = entries[0]
        text, value_path = self._value(parts, where)
        self.record.origin[field] = value_path
        value = MISSING if text is None else convert(text, value_path)
        if value is MISSING:
            self.record.failed.add(field)
        return value

    def _property_field(self, found, field, convert, *, path, tag, label, default=MISSING):
        value = self._property_value(
            found, field, convert, path=path, tag=tag, label=label, default=default
        )
        if value is not MISSING:
            self.record.doc[field] = value

    # Values (MISSING when wrong, reported)

    def _as_text(self, text, path):
        return text

    def _as_enum(self, text, path):
        # Known words in any case; anything else as written, for the schema to name.
        stripped = text.strip()
        return stripped.lower() if stripped.lower() in ("none", "lot", "serial") else text

    def _as_integer(self, text, path):
        stripped = text.strip()
        if _DECIMAL_INTEGER.fullmatch(stripped):
            number = self._in_range(stripped, path)
            return MISSING if number is None else number
        self.errors.append(FieldError(path, text, "is not an integer"))
        return MISSING

    def _as_number(self, text, path):
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            self.errors.append(FieldError(path, text, "is not a number (xs:decimal)"))
            return MISSING
        return float(number)

    def _as_boolean(self, text, path):
        value = {"true": True, "1": True, "false": False, "0": False}.get(text.strip().lower())
        if value is None:
            self.errors.append(FieldError(path, text, "is not a boolean (true or false)"))
            return MISSING
        return value

    def _as_datetime(self, text, path):
        stripped = text.strip()
        try:
            moment = datetime.fromisoformat(stripped)
        except ValueError:
            return stripped  # the schema names it
        return stripped if moment.tzinfo else f"{stripped}+00:00"

    # Material

    def _material(self, element, path):
        children = self._children(element, path, _DEFINITION, _UNSUPPORTED)
        self._text_field(children, "ID", path, "code")
        self._text_field(children, "Description", path, "name", default="")
        tag = "MaterialDefinitionProperty"
        found = self._properties(
            children,
            path,
            tag,
            {
                "Revision": "revision",
                "UnitOfMeasure": "uom",
                "Tracking": "tracking",
                "Active": "active",
            },
        )
        read = functools.partial(self._property_field, found, path=path, tag=tag)
        read("revision", self._as_integer, label="Revision")
        read("uom", self._as_text, label="UnitOfMeasure")
        read("tracking", self._as_enum, label="Tracking", default="none")
        read("active", self._as_boolean, label="Active", default=True)
        classes = self._all(children, "MaterialClassID")
        where = self._join(path, "MaterialClassID")
        if len(classes) > 1:
            texts = [_raw(c) for c in classes]
            self._fail("class", where, texts, "names several classes: a material has one")
        else:
            self._set("class", _raw(classes[0]) if classes else None, where)

    # Lot

    def _lot(self, element, path):
        children = self._children(element, path, _LOT, _UNSUPPORTED)
        self._text_field(children, "MaterialDefinitionID", path, "product")
        self._text_field(children, "ID", path, "lot")
        tag = "MaterialLotProperty"
        found = self._properties(
            children,
            path,
            tag,
            {
                "Revision": "revision",
                "Tracking": "tracking",
                "ExpirationTime": "expires_at",
                "ExpirationDate": "expires_at",
            },
        )
        read = functools.partial(self._property_field, found, path=path, tag=tag)
        read("revision", self._as_integer, label="Revision")
        read("tracking", self._as_enum, label="Tracking", default="lot")
        status = self._first(children, "Status")
        where = self._join(path, "Status")
        text = _raw(status)
        if text is None:
            self._fail("status", where, MISSING, "is missing: Released or Hold")
        elif _letters(text) in _LOT_STATUS_READ:
            self._set("status", _LOT_STATUS_READ[_letters(text)], where)
        else:
            self._fail(
                "status", where, text, "is not a lot status this reader knows (Released, Hold)"
            )
        read("expires_at", self._as_datetime, label="ExpirationTime", default=None)

    # Equipment

    def _equipment(self, element, path):
        children = self._children(element, path, _EQUIPMENT, _EQUIPMENT_UNSUPPORTED)
        self._text_field(children, "ID", path, "code")
        self._text_field(children, "Description", path, "name", default="")
        tag = "EquipmentProperty"
        found = self._properties(
            children,
            path,
            tag,
            {
                "Revision": "revision",
                "Capacity": "capacity",
                "TimeEfficiency": "time_efficiency",
                "Active": "active",
                "Calendar": "calendar",
            },
            nested=("calendar",),
        )
        read = functools.partial(self._property_field, found, path=path, tag=tag)
        read("revision", self._as_integer, label="Revision")
        read("capacity", self._as_number, label="Capacity", default=1.0)
        read("time_efficiency", self._as_number, label="TimeEfficiency", default=100.0)
        read("active", self._as_boolean, label="Active", default=True)
        self.record.doc["calendar"] = None
        if "calendar" in found:
            parts, where = found["calendar"][0]
            self.record.origin["calendar"] = where
            self.record.doc["calendar"] = self._calendar(parts, where)

    def _calendar(self, parts, where):
        tag = "EquipmentProperty"
        calendar = {}
        name, name_path = self._value(parts, where)
        self.record.origin["calendar.name"] = name_path
        if name is None:
            self.record.failed.add("calendar.name")
        calendar["name"] = name
        found = self._properties(
            parts,
            where,
            tag,
            {
                "TimeZone": "calendar.timezone",
                "HoursPerDay": "calendar.hours_per_day",
                "Attendance": "attendance",
            },
            repeated=("attendance",),
            nested=("attendance",),
        )
        value = functools.partial(self._property_value, found, path=where, tag=tag)
        calendar["timezone"] = value("calendar.timezone", self._as_text, label="TimeZone")
        calendar["hours_per_day"] = value(
            "calendar.hours_per_day", self._as_number, label="HoursPerDay"
        )
        calendar["attendances"] = [
            self._attendance(period, period_path, f"calendar.attendances[{index}]")
            for index, (period, period_path) in enumerate(found.get("attendance", []))
        ]
        return calendar

    def _attendance(self, parts, where, field):
        tag = "EquipmentProperty"
        self.record.origin[field] = where
        found = self._properties(
            parts,
            where,
            tag,
            {
                "Weekday": f"{field}.weekday",
                "From": f"{field}.from",
                "To": f"{field}.to",
                "Week": f"{field}.week",
            },
        )
        value = functools.partial(self._property_value, found, path=where, tag=tag)
        period = {
            "weekday": value(f"{field}.weekday", self._as_integer, label="Weekday"),
            "from": value(f"{field}.from", self._as_text, label="From"),
            "to": value(f"{field}.to", self._as_text, label="To"),
        }
        week = value(f"{field}.week", self._as_integer, label="Week", default=None)
        if week is not None:
            period["week"] = week
        return period

    # Bill of materials

    def _bom(self, element, path):
        children = self._children(element, path, _OPERATIONS_DEFINITION, _UNSUPPORTED)
        self._text_field(children, "ID", path, "code")
        version = _raw(self._first(children, "Version"))
        where = self._join(path, "Version")
        if version is None:
            self._fail("revision", where, MISSING, "is missing: the bill's revision")
        else:
            revision = self._as_integer(version, where)
            if revision is MISSING:
                self.record.failed.add("revision")
                self.record.origin["revision"] = where
            else:
                self._set("revision", revision, where)
        self._text_field(children, "Description", path, "reference", default=None)
        self.bom = {"product": None, "active": [], "components": [], "byproducts": []}
        self.record.doc["operations"] = []
        for index, segment in enumerate(self._all(children, "OperationsSegment"), 1):
            self._segment(segment, self._join(path, f"OperationsSegment[{index}]"), None)
        product = self.bom["product"]
        if product is None:
            for field in ("product", "quantity", "uom"):
                self.record.failed.add(field)
            self.errors.append(
                FieldError(
                    self._join(path, "OperationsSegment/MaterialSpecification"),
                    MISSING,
                    "with MaterialUse Produced is missing: the bill's product",
                )
            )
        else:
            for key in ("product", "quantity", "uom"):
                if key in product:
                    self.record.doc[key] = product[key]
        actives = self.bom["active"]
        self.record.doc["active"] = True
        if len(actives) > 1:
            self._fail("active", actives[1][1], actives[1][0], "is given twice")
        elif actives and actives[0][0] is MISSING:
            self.record.failed.add("active")
        elif actives:
            self._set("active", actives[0][0], actives[0][1])
        for key in ("components", "byproducts"):
            self.record.doc[key] = self._ordered(key)

    def _ordered(self, key):
        """The materials of ``key`` in the order their IDs number them (else as found),
        noting where each came from."""
        lines = self.bom[key]
        numbers = [line["number"] for line in lines]
        if None not in numbers and len(set(numbers)) == len(numbers):
            lines = sorted(lines, key=lambda line: line["number"])
        out = []
        for index, line in enumerate(lines):
            for field, where in line["origin"].items():
                self.record.origin[f"{key}[{index}]{field}"] = where
            for field in line["failed"]:
                self.record.failed.add(f"{key}[{index}]{field}")
            out.append(line["material"])
        return out

    def _segment(self, segment, path, operation):
        children = self._children(segment, path, _SEGMENT, _UNSUPPORTED)
        names = {name for name, _child in children}
        if names & {"ProcessSegmentID", "EquipmentSpecification"}:
            operation = self._operation(children, path)
            for index, parameter in enumerate(self._all(children, "Parameter"), 1):
                self.errors.append(
                    FieldError(
                        self._join(path, f"Parameter[{index}]"),
                        _raw(parameter.find("{*}ID")) or MISSING,
                        "is a parameter of an operation, which mes.bom/1 cannot carry",
                    )
                )
        else:
            for index, parameter in enumerate(self._all(children, "Parameter"), 1):
                self._parameter(parameter, self._join(path, f"Parameter[{index}]"))
        for index, spec in enumerate(self._all(children, "MaterialSpecification"), 1):
            self._material_spec(
                spec, self._join(path, f"MaterialSpecification[{index}]"), operation
            )
        for index, child in enumerate(self._all(children, "OperationsSegment"), 1):
            self._segment(child, self._join(path, f"OperationsSegment[{index}]"), operation)

    def _parameter(self, parameter, path):
        parts = self._children(parameter, path, _PROPERTY, _UNSUPPORTED)
        identifier = _raw(self._first(parts, "ID"))
        if _letters(identifier or "") != "active":
            value = MISSING if identifier is None else identifier
            reason = "is not a parameter of a bill this reader knows (Active)"
            self.errors.append(FieldError(self._join(path, "ID"), value, reason))
            return
        text, where = self._value(parts, path)
        value = MISSING if text is None else self._as_boolean(text, where)
        self.bom["active"].append((value, where))

    def _operation(self, children, path):
        operations = self.record.doc["operations"]
        field = f"operations[{len(operations)}]"
        origin = self.record.origin
        operation = {}
        reported = len(self.errors)
        sequence = self._sequence(children, path)
        if sequence is None and len(self.errors) == reported:
            name = (
                "ProcessSegmentID"
                if self._first(children, "ProcessSegmentID") is not None
                else "ID"
            )
            text = _raw(self._first(children, name))
            self._fail(
                f"{field}.sequence",
                self._join(path, name),
                MISSING if text is None else text,
                "is not an operation sequence (an integer), nor is the segment's ID",
            )
        elif sequence is None:
            self.record.failed.add(f"{field}.sequence")
        else:
            operation["sequence"] = sequence
            origin[f"{field}.sequence"] = self._join(path, "ProcessSegmentID")
        name = _raw(self._first(children, "Description"))
        origin[f"{field}.name"] = self._join(path, "Description")
        if name is None:
            name = _raw(self._first(children, "ProcessSegmentID"))
        if name is None:
            self._fail(f"{field}.name", self._join(path, "Description"), MISSING, "is missing")
        else:
            operation["name"] = name
        resource = self._resource(children, path, f"{field}.resource")
        if resource is not None:
            operation["resource"] = resource
        duration = _raw(self._first(children, "Duration"))
        if duration is not None:
            where = self._join(path, "Duration")
            origin[f"{field}.duration_minutes"] = where
            minutes = self._minutes(duration.strip(), where)
            if minutes is None:
                self.record.failed.add(f"{field}.duration_minutes")
            else:
                operation["duration_minutes"] = minutes
        operations.append(operation)
        return sequence

    def _resource(self, children, path, field):
        ids = []
        for index, spec in enumerate(self._all(children, "EquipmentSpecification"), 1):
            where = self._join(path, f"EquipmentSpecification[{index}]")
            parts = self._children(spec, where, _EQUIPMENT_SPECIFICATION, _UNSUPPORTED)
            ids.extend((f"{where}/EquipmentID", _raw(e)) for e in self._all(parts, "EquipmentID"))
        if not ids:
            where = self._join(path, "EquipmentSpecification/EquipmentID")
            self._fail(field, where, MISSING, "is missing: the operation's resource")
            return None
        if len(ids) > 1:
            texts = [text for _where, text in ids]
            self._fail(field, ids[1][0], texts, "names several resources: an operation has one")
            return None
        self.record.origin[field] = ids[0][0]
        return ids[0][1]

    def _minutes(self, text, path):
        try:
            return duration_minutes(text)
        except ValueError as err:
            self.errors.append(FieldError(path, text, str(err)))
            return None

    def _material_spec(self, spec, path, operation):
        children = self._children(spec, path, _MATERIAL_SPECIFICATION, _UNSUPPORTED)
        use = self._use(children, path)
        if use is None:
            return
        origin, failed = {}, set()
        if use == "produced":
            if self.bom["product"] is not None:
                code = _raw(self._first(children, "MaterialDefinitionID"))
                reason = "is a second produced material: a bill makes one product"
                self.errors.append(FieldError(path, code or MISSING, reason))
                return
            prefix = ""
        else:
            prefix = "."
        material = {"product": self._product(children, path, prefix, origin, failed)}
        amount = self._amount(children, path)
        origin[f"{prefix}quantity"] = self._join(path, "Quantity/QuantityString")
        origin[f"{prefix}uom"] = self._join(path, "Quantity/UnitOfMeasure")
        if amount is None:
            failed.update((f"{prefix}quantity", f"{prefix}uom"))
        else:
            material["quantity"], material["uom"] = amount
        if use == "produced":
            self.record.origin.update(origin)
            self.record.failed.update(failed)
            self.bom["product"] = material
            return
        material["operation_sequence"] = operation
        identifier = (_raw(self._first(children, "ID")) or "").strip()
        match = _MATERIAL_ID.fullmatch(identifier)
        key = "byproducts" if use == "by-product" else "components"
        expected = "BYPRODUCT" if use == "by-product" else "COMPONENT"
        number = int(match[2]) if match and match[1] == expected else None
        self.bom[key].append(
            {"material": material, "number": number, "origin": origin, "failed": failed}
        )

    def _use(self, children, path):
        use = self._state(self._first(children, "MaterialUse"))
        if use is None:
            where = self._join(path, "MaterialUse")
            self.errors.append(FieldError(where, MISSING, "is missing: consumed or produced?"))
            return None
        letters = _letters(use)
        if letters in ("consumed", "produced"):
            return letters
        if letters in _BY_PRODUCED:
            return "by-product"
        self.errors.append(
            FieldError(
                self._join(path, "MaterialUse"),
                use,
                "is not a material use a bill carries (Consumed, Produced, By-product Produced)",
            )
        )
        return None

    def _product(self, children, path, prefix, origin, failed):
        product = {}
        field = f"{prefix}product"
        codes = self._all(children, "MaterialDefinitionID")
        where = self._join(path, "MaterialDefinitionID")
        origin[f"{field}.code"] = where
        if not codes:
            self.errors.append(FieldError(where, MISSING, "is missing"))
            failed.add(f"{field}.code")
        elif len(codes) > 1:
            texts = [_raw(c) for c in codes]
            self.errors.append(FieldError(where, texts, "names several materials: one is expected"))
            failed.add(f"{field}.code")
        else:
            product["code"] = _raw(codes[0])
        name = _raw(self._first(children, "Description"))
        if name is not None:
            product["name"] = name
            origin[f"{field}.name"] = self._join(path, "Description")
        found = self._properties(
            children, path, "MaterialSpecificationProperty", {"tracking": "tracking"}
        )
        if "tracking" in found:
            parts, prop_path = found["tracking"][0]
            text, value_path = self._value(parts, prop_path)
            origin[f"{field}.tracking"] = value_path
            if text is None:
                failed.add(f"{field}.tracking")
            else:
                product["tracking"] = self._as_enum(text, value_path)
        return product

    def _amount(self, children, path):
        """(quantity, uom) of the first Quantity, or None (reported)."""
        quantity = self._first(children, "Quantity")
        where = self._join(path, "Quantity")
        if quantity is None:
            self.errors.append(FieldError(where, MISSING, "is missing"))
            return None
        parts = self._children(quantity, where, _QUANTITY, _UNSUPPORTED)
        text = _raw(self._first(parts, "QuantityString"))
        uom = _raw(self._first(parts, "UnitOfMeasure"))
        if text is None:
            self.errors.append(FieldError(f"{where}/QuantityString", MISSING, "is missing"))
        if uom is None:
            self.errors.append(FieldError(f"{where}/UnitOfMeasure", MISSING, "is missing"))
        if text is None or uom is None:
            return None
        number = self._as_number(text, f"{where}/QuantityString")
        return None if number is MISSING else (number, uom)

    # The schema, last

    def _finish(self, record):
        """The record's document in to_dict() order, its schema problems named at the XML
        path they came from."""
        doc = {key: record.doc[key] for key in _KEYS[record.schema] if key in record.doc}
        failed = record.failed
        for problem in validation_errors(doc, MASTER_DATA_SCHEMAS[record.schema]):
            field = problem.field
            if any(field == f or field.startswith((f"{f}.", f"{f}[")) for f in failed):
                continue  # reported where it was read
            path = record.origin.get(field)
            while path is None and ("." in field or "[" in field):
                field = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", field)
                path = record.origin.get(field)
            reason = f"{problem.reason} (the {_LABELS[record.schema]}'s {problem.field})"
            self.errors.append(
                FieldError(path or record.path or "(document)", problem.value, reason)
            )
        return doc
