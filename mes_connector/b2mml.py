"""B2MML (ISA-95 / IEC 62264 XML) for MES that speak it instead of our JSON.

Three translations, all pure functions:

- :func:`order_to_production_schedule`: one order revision (``mes.order/1``) as a
  B2MML V0600 ``ProductionSchedule`` that validates against the official XSD.
- :func:`production_schedule_to_order`: the inverse, for the MES side (the
  simulator): a ``ProductionSchedule`` (V0401, V0500 or V0600) of one
  ``ProductionRequest`` as a ``mes.order/1`` document.
- :func:`production_performance_to_events`: a B2MML ``ProductionPerformance``
  (V0401, V0500 or V0600) as ``mes.event/1`` events.

Both readers parse without ever loading a DTD or expanding an entity.

"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International."
"""

import dataclasses
import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from .bod import unwrap
from .exceptions import MessageValidationError
from .messages import EVENT_SCHEMA, ORDER_SCHEMA
from .validation import (
    DATETIME_RANGE,
    MAX_ERRORS,
    MAX_INTEGER,
    MAX_QUANTITY,
    MIN_INTEGER,
    MISSING,
    FieldError,
    _capped,
    in_datetime_range,
    validate_event,
    validate_order,
    validation_errors,
)

NS_V0401 = "http://www.wbf.org/xml/B2MML-V0401"
NS_V0500 = "http://www.mesa.org/xml/B2MML-V0500"
NS_V0600 = "http://www.mesa.org/xml/B2MML-V0600"
B2MML_NAMESPACES = (NS_V0401, NS_V0500, NS_V0600)
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
# The OtherValue of the MaterialUse "Other" of a by-product (V0401's own spelling).
BY_PRODUCT_USE = "By-product Produced"

# Encodings in which the raw bytes are searched for DTD declarations ("utf-8" also
# covers ASCII and the ISO 8859 family).
_SCANNED_ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
# Characters XML 1.0 cannot carry at all (not even escaped): lxml would refuse them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EVENT_ID_CHARS = re.compile(r"[^A-Za-z0-9._:/-]")
# Any number of digits: those out of range are refused before int() reads them.
_INTEGER = re.compile(r"[+-]?\d+")
# xs:dateTime; fromisoformat alone would also take dates without a time.
_XS_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?", re.IGNORECASE
)
_CODE_MAX = 64  # product, lot, resource and order codes of mes.event/1


@dataclasses.dataclass(frozen=True)
class Conventions:
    """How scrap, downtime and quality results travel in a ProductionPerformance, which
    B2MML has no element of its own for (an MES and Odoo agree on them per backend).

    - Scrap: a material actual whose MaterialUse is ``scrap_use`` (or ``Other`` with
      that OtherValue), its reason in the property ``scrap_reason`` (required).
    - Downtime: an EquipmentActual with the property ``downtime_id``; its reason in
      ``downtime_reason``, its start and end (xs:dateTime) in ``downtime_start`` and
      ``downtime_end`` (the end absent while it lasts), an optional
      ``downtime_comment``. It gives downtime_started, and downtime_ended with an end.
    - Quality: a material actual's property ``<quality_prefix><characteristic>``
      whose value is Pass or Fail, for the material and lot it describes.
    - An operation's figures: the ProductionData ``setup_minutes``, ``run_minutes``
      (minutes) and ``good_quantity``, ``reject_quantity`` (with their
      UnitOfMeasure) of its SegmentResponse; the good quantity otherwise adds up what
      the segment produced.
    """

    scrap_use: str = "Scrap"
    scrap_reason: str = "ScrapReason"
    downtime_id: str = "DowntimeID"
    downtime_reason: str = "DowntimeReason"
    downtime_start: str = "DowntimeStart"
    downtime_end: str = "DowntimeEnd"
    downtime_comment: str = "DowntimeComment"
    quality_prefix: str = "QualityResult:"
    setup_minutes: str = "SetupMinutes"
    run_minutes: str = "RunMinutes"
    good_quantity: str = "GoodQuantity"
    reject_quantity: str = "RejectQuantity"


DEFAULT_CONVENTIONS = Conventions()


def scrap_use_clashes(use):
    """Whether ``use`` would name scrap with a material use B2MML reads otherwise."""
    letters = re.sub(r"[^a-z]", "", (use or "").lower())
    return not letters or letters in _CONSUMED | _PRODUCED | _BY_PRODUCED


_UOM_MAX = 32
_TEXT_MAX = 256


# ---------------------------------------------------------------------------
# Writer: mes.order/1 -> ProductionSchedule (V0600)
# ---------------------------------------------------------------------------


def order_to_production_schedule(order, published_at=None):
    """One order revision as a B2MML V0600 ``ProductionSchedule`` document (UTF-8 bytes).

    ``order`` is a ``mes.order/1`` document as ``OrderExport.to_dict()`` makes it;
    it is validated first (:class:`MessageValidationError` when it is not valid, when a
    component names an operation the order does not have, or when a text holds a
    character XML cannot carry). ``published_at`` is the document's ``PublishedDate``
    (default: now, UTC; a naive datetime is taken as UTC).

    The schedule holds one ``ProductionRequest`` (ID = order id, RequestState
    ``Released``, or ``Other``/``Cancelled`` for a cancel revision). Its first
    ``SegmentRequirement`` is the whole order: revision, action and origin as
    production parameters, the product as the ``Produced`` material (with the
    ``finished_lots`` as its MaterialLotIDs) and the components without an operation
    as ``Consumed`` materials, then the by-products without an operation as
    ``Other``/``By-product Produced`` materials; it contains one
    ``SegmentRequirement`` per operation (ID and ProcessSegmentID = sequence,
    equipment = resource, duration, the operation's components and by-products).
    """
    validate_order(order)
    errors = list(_unwritable_texts(order, ""))
    operations = order.get("operations") or []
    sequences = {operation["sequence"] for operation in operations}
    for key in ("components", "byproducts"):
        for index, material in enumerate(order.get(key) or []):
            sequence = material.get("operation_sequence")
            if sequence is not None and sequence not in sequences:
                errors.append(
                    FieldError(
                        f"{key}[{index}].operation_sequence",
                        sequence,
                        "is not the sequence of one of the order's operations",
                    )
                )
    if errors:
        raise MessageValidationError(errors)

    published = published_at or datetime.now(UTC).replace(microsecond=0)
    action = order["action"]
    root = etree.Element(_v6("ProductionSchedule"), nsmap={None: NS_V0600})
    # The schedule is one revision of the order: its ID tells them apart.
    _add(root, "ID", f"{order['order_id']}/R{order['revision']}")
    _add(root, "Description", f"{action} revision {order['revision']} of {order['order_id']}")
    _add(root, "PublishedDate", _xs_datetime(published))

    request = _add(root, "ProductionRequest")
    _add(request, "ID", order["order_id"])
    if order.get("company"):
        # HierarchyScope replaces the deprecated Location: the company is the enterprise.
        scope = _add(request, "HierarchyScope")
        _add(scope, "EquipmentID", order["company"])
        _add(scope, "EquipmentElementLevel", "Enterprise")
    if order.get("planned_start"):
        _add(request, "StartTime", _xs_datetime(order["planned_start"]))
    if order.get("planned_end"):
        _add(request, "EndTime", _xs_datetime(order["planned_end"]))
    _add(request, "Priority", str(order.get("priority", 0)))
    _order_segment(request, order)
    # RequestState only knows Forecast/Released/Other: a cancellation is an "Other".
    if action == "cancel":
        _add(request, "RequestState", "Other", OtherValue="Cancelled")
    else:
        _add(request, "RequestState", "Released")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def events_to_production_performance(
    events, *, document_id, published_at=None, order_key="request", conventions=None
):
    """``mes.event/1`` events as one B2MML V0600 ``ProductionPerformance`` (UTF-8 bytes),
    the inverse of :func:`production_performance_to_events` by the same ``order_key``
    and :class:`Conventions`, for an MES (the simulator) that reports in B2MML.

    One ``ProductionResponse`` per order (its ``ID`` the ``mes_order_id``, its
    ``ProductionRequestID`` the ``order_ref`` when read by request), holding one
    ``SegmentResponse`` per operation (its report, its minutes and quantities, its
    materials, scrap and quality results) and one segment ``ORDER`` for what names no
    operation (materials, downtime); ``ResponseState`` Completed with its EndTime once
    the order is completed, else Running or Holding. What B2MML has no place for does
    not travel: the start, hold and resumption of an order as events, and a quality
    result's measurements, inspector and comment. Each event is validated first.
    """
    conventions = conventions or DEFAULT_CONVENTIONS
    for event in events:
        validate_event(event)
    root = etree.Element(_v6("ProductionPerformance"), nsmap={None: NS_V0600})
    _add(root, "ID", document_id)
    _add(root, "PublishedDate", _xs_datetime(published_at or datetime.now(UTC)))
    orders = {}
    for event in events:
        orders.setdefault((event.get("order_ref"), event.get("mes_order_id")), []).append(event)
    for (order_ref, mes_order_id), order_events in orders.items():
        _performance_response(root, order_ref, mes_order_id, order_events, order_key, conventions)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _performance_response(root, order_ref, mes_order_id, events, order_key, conventions):
    response = _add(root, "ProductionResponse")
    if mes_order_id:
        _add(response, "ID", mes_order_id)
    elif order_key == "response":
        raise ValueError(f"order {order_ref}: read by the MES's order id, it needs mes_order_id")
    if order_key == "request":
        if not order_ref:
            raise ValueError(f"MES order {mes_order_id}: read by request, it needs order_ref")
        _add(response, "ProductionRequestID", order_ref)
    completed = next((e for e in events if e["event_type"] == "order_completed"), None)
    if completed:
        _add(response, "EndTime", _xs_datetime(completed["occurred_at"]))
    segments = {}

    def segment(operation):
        return segments.setdefault(
            operation, {"report": None, "materials": [], "downtimes": {}, "quality": []}
        )

    held = False
    for event in events:
        kind, data = event["event_type"], event["data"]
        if kind in ("operation_progress", "operation_completed"):
            slot = segment(data["operation"])
            if slot["report"] is None or kind == "operation_completed":
                slot["report"] = (kind, data, event["occurred_at"])
        elif kind in ("material_consumed", "output_produced", "scrap_reported"):
            segment(data.get("operation"))["materials"].append((kind, data))
        elif kind == "quality_result":
            segment(data.get("operation"))["quality"].append(data)
        elif kind == "downtime_started":
            segment(None)["downtimes"].setdefault(data["downtime_id"], {}).update(data)
        elif kind == "downtime_ended":
            segment(None)["downtimes"].setdefault(data["downtime_id"], {}).update(
                ended_at=data["ended_at"], resource=data["resource"]
            )
        elif kind in ("order_held", "order_resumed"):
            held = kind == "order_held"
    if isinstance(order_key, tuple):
        first = segment(None) if not segments else next(iter(segments.values()))
        first["data"] = (order_key[1], order_ref)
    for operation, slot in segments.items():
        _performance_segment(response, operation, slot, conventions)
    _add(response, "ResponseState", "Completed" if completed else "Holding" if held else "Running")


def _performance_segment(response, operation, slot, conventions):
    element = _add(response, "SegmentResponse")
    _add(element, "ID", "ORDER" if operation is None else f"OP-{operation}")
    kind, report, _when = slot["report"] or (None, {}, None)
    if operation is not None:
        _add(element, "ProcessSegmentID", str(operation))
        if report.get("started_at"):
            _add(element, "ActualStartTime", _xs_datetime(report["started_at"]))
        if report.get("ended_at"):
            _add(element, "ActualEndTime", _xs_datetime(report["ended_at"]))
    if slot.get("data"):
        _production_data(element, *slot["data"])
    for field in ("setup_minutes", "run_minutes", "good_quantity", "reject_quantity"):
        if field in report:
            unit = report.get("uom") if field.endswith("_quantity") else None
            _production_data(
                element, getattr(conventions, field), _decimal_text(report[field]), unit
            )
    if report.get("worker"):
        _add(_add(element, "PersonnelActual"), "PersonID", report["worker"])
    for item in report.get("operators") or []:
        person = _add(element, "PersonnelActual")
        _add(person, "PersonID", item["operator"])
        _quantity(person, item["minutes"], "min")
    if report.get("resource"):
        _add(_add(element, "EquipmentActual"), "EquipmentID", report["resource"])
    for downtime in slot["downtimes"].values():
        actual = _add(element, "EquipmentActual")
        _add(actual, "EquipmentID", downtime["resource"])
        for field, name in (
            ("downtime_id", conventions.downtime_id),
            ("reason", conventions.downtime_reason),
            ("started_at", conventions.downtime_start),
            ("ended_at", conventions.downtime_end),
            ("comment", conventions.downtime_comment),
        ):
            if downtime.get(field):
                value = downtime[field]
                if field.endswith("_at"):
                    value = _xs_datetime(value)
                _material_property(actual, "EquipmentActualProperty", name, value)
    quality = list(slot["quality"])
    for kind_, data in slot["materials"]:
        actual = _material_actual(element, kind_, data, conventions)
        if kind_ == "output_produced":
            mine = [
                q
                for q in quality
                if (q.get("product"), q.get("lot")) == (data["product"], data.get("lot"))
            ]
            for result in mine:
                quality.remove(result)
                _quality_property(actual, result, conventions)
    for result in quality:
        # A result of nothing this document produced: on the material it names, none moved.
        if not result.get("product"):
            raise ValueError(
                f"quality result {result['characteristic']}: name its product to send it in B2MML"
            )
        holder = _material_actual(
            element,
            "output_produced",
            {
                "product": result["product"],
                "lot": result.get("lot"),
                "quantity": 0,
                "uom": result.get("uom") or "Units",
            },
            conventions,
        )
        _quality_property(holder, result, conventions)
    if kind:
        _add(element, "SegmentState", "Completed" if kind == "operation_completed" else "Running")


def _production_data(element, name, value, unit=None):
    data = _add(element, "ProductionData")
    _add(data, "ID", name)
    holder = _add(data, "Value")
    _add(holder, "ValueString", value)
    if unit:
        _add(holder, "UnitOfMeasure", unit)


def _material_actual(element, kind, data, conventions):
    actual = _add(element, "MaterialActual")
    _add(actual, "MaterialDefinitionID", data["product"])
    for lot in ([data["lot"]] if data.get("lot") else []) + list(data.get("serials") or []):
        _add(actual, "MaterialLotID", lot)
    if kind == "scrap_reported":
        _add(actual, "MaterialUse", "Other", OtherValue=conventions.scrap_use)
    else:
        _add(actual, "MaterialUse", "Consumed" if kind == "material_consumed" else "Produced")
    _quantity(actual, data["quantity"], data["uom"])
    if kind == "scrap_reported":
        _material_property(
            actual, "MaterialActualProperty", conventions.scrap_reason, data["reason"]
        )
    return actual


def _quality_property(actual, result, conventions):
    name = f"{conventions.quality_prefix}{result['characteristic']}"
    _material_property(actual, "MaterialActualProperty", name, result["result"].title())


def _material_property(actual, tag, name, value):
    prop = _add(actual, tag)
    _add(prop, "ID", name)
    _add(_add(prop, "Value"), "ValueString", str(value))


def _order_segment(request, order):
    # V0600 has no MaterialRequirement on ProductionRequest: the order as a whole is
    # a segment, holding what is not tied to one operation, with the operations inside.
    segment = _add(request, "SegmentRequirement")
    _add(segment, "ID", order["order_id"])
    if order["product"].get("name"):
        _add(segment, "Description", order["product"]["name"])
    if order.get("planned_start"):
        _add(segment, "EarliestStartTime", _xs_datetime(order["planned_start"]))
    if order.get("planned_end"):
        _add(segment, "LatestEndTime", _xs_datetime(order["planned_end"]))
    _parameter(segment, "Revision", str(order["revision"]), "integer")
    _parameter(segment, "Action", order["action"], "string")
    if order.get("origin"):
        _parameter(segment, "Origin", order["origin"], "string")
    # Lots Odoo assigned to the finished product in advance: MaterialLotIDs of the
    # produced material (several of them for serial numbers, one per unit).
    lots = order.get("finished_lots") or ()
    _material(segment, order["product"], order["quantity"], order["uom"], "Produced", lots)
    components = order.get("components") or []
    byproducts = order.get("byproducts") or []
    for component in components:
        if component.get("operation_sequence") is None:
            _component(segment, component)
    for byproduct in byproducts:
        if byproduct.get("operation_sequence") is None:
            _byproduct(segment, byproduct)
    # Two operations may share a sequence (Odoo allows it): the first one gets the
    # components and by-products of that sequence.
    operations = order.get("operations") or []
    first_of = {}
    for index, operation in enumerate(operations):
        first_of.setdefault(operation["sequence"], index)

    def own(materials, index):
        return [
            m
            for m in materials
            if m.get("operation_sequence") is not None
            and first_of[m["operation_sequence"]] == index
        ]

    for index, operation in enumerate(operations):
        _operation_segment(segment, operation, own(components, index), own(byproducts, index))


def _operation_segment(parent, operation, components, byproducts=()):
    segment = _add(parent, "SegmentRequirement")
    _add(segment, "ID", str(operation["sequence"]))
    _add(segment, "ProcessSegmentID", str(operation["sequence"]))
    _add(segment, "Description", operation["name"])
    minutes = operation.get("duration_minutes") or 0
    if minutes:  # 0 is Odoo's "no expected duration", not an instant operation
        _add(segment, "Duration", _xs_duration(minutes))
    equipment = _add(segment, "EquipmentRequirement")
    _add(equipment, "EquipmentID", operation["resource"])
    for component in components:
        _component(segment, component)
    for byproduct in byproducts:
        _byproduct(segment, byproduct)
    return segment


def _component(segment, component):
    _material(segment, component["product"], component["quantity"], component["uom"], "Consumed")


def _byproduct(segment, byproduct):
    # V0600's MaterialUse has no by-product value (V0401 had "By-product Produced"):
    # it is an "Other", named by its OtherValue.
    _material(
        segment,
        byproduct["product"],
        byproduct["quantity"],
        byproduct["uom"],
        "Other",
        other=BY_PRODUCT_USE,
    )


def _material(segment, product, quantity, uom, use, lots=(), other=None):
    requirement = _add(segment, "MaterialRequirement")
    _add(requirement, "MaterialDefinitionID", product["code"])
    for lot in lots:
        _add(requirement, "MaterialLotID", lot)
    if product.get("name"):
        _add(requirement, "Description", product["name"])
    if other is None:
        _add(requirement, "MaterialUse", use)
    else:
        _add(requirement, "MaterialUse", use, OtherValue=other)
    _quantity(requirement, quantity, uom)
    tracking = product.get("tracking", "none")
    if tracking != "none":
        # No lot is known when the order is sent, only that the MES must report one.
        prop = _add(requirement, "MaterialRequirementProperty")
        _add(prop, "ID", "Tracking")
        value = _add(prop, "Value")
        _add(value, "ValueString", tracking)
        _add(value, "DataType", "string")
    return requirement


def _quantity(parent, quantity, uom):
    element = _add(parent, "Quantity")
    _add(element, "QuantityString", _decimal_text(quantity))
    _add(element, "DataType", "decimal")
    _add(element, "UnitOfMeasure", uom)
    return element


def _parameter(segment, name, text, data_type):
    parameter = _add(_add(segment, "ProductionParameter"), "Parameter")
    _add(parameter, "ID", name)
    value = _add(parameter, "Value")
    _add(value, "ValueString", text)
    _add(value, "DataType", data_type)


def _v6(name):
    return f"{{{NS_V0600}}}{name}"


def _add(parent, name, text=None, **attrib):
    element = etree.SubElement(parent, _v6(name), attrib)
    if text is not None:
        element.text = text
    return element


def _unwritable_texts(value, path):
    if isinstance(value, str):
        if _NOT_XML.search(value):
            yield FieldError(path or "(message)", value, "holds a character XML 1.0 cannot carry")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unwritable_texts(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _unwritable_texts(item, f"{path}[{index}]")


def _decimal_text(number):
    # xs:decimal has no exponent: 1e-07 must become 0.0000001, 20.0 becomes 20.
    return format(Decimal(str(number)).normalize(), "f")


def _xs_duration(minutes):
    seconds = Decimal(str(minutes)) * 60
    hours, seconds = divmod(seconds, 3600)
    mins, seconds = divmod(seconds, 60)
    text = "PT"
    if hours:
        text += f"{int(hours)}H"
    if mins:
        text += f"{int(mins)}M"
    if seconds or text == "PT":
        text += f"{_decimal_text(seconds)}S"
    return text


def _xs_datetime(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------
# Reader: ProductionPerformance (V0401/V0500/V0600) -> mes.event/1
# ---------------------------------------------------------------------------

# Children each level may have, across V0401, V0500 and V0600. What is read is
# listed too; anything else named in a B2MML namespace is an error, as is content
# that moves material but cannot be mapped (it would be lost without a word).
# Elements of other namespaces are extensions ("Extended:") and are skipped.
_PERFORMANCE_CHILDREN = {
    "ID",
    "Description",
    "Location",
    "HierarchyScope",
    "PublishedDate",
    "ProductionScheduleID",
    "StartTime",
    "EndTime",
    "EquipmentElementLevel",
    "ProductionResponse",
    "PerformanceState",
    "Any",
}
_RESPONSE_CHILDREN = {
    "ID",
    "Description",
    "ProductionRequestID",
    "ProductProductionRuleID",
    "Version",
    "Location",
    "HierarchyScope",
    "StartTime",
    "EndTime",
    "SegmentResponse",
    "MaterialActual",  # not in the XSDs at this level, but some MES put it there
    "ResponseState",
    "ProductionResponseState",
    "Any",
}
_SEGMENT_CHILDREN = {
    "ID",
    "ProcessSegmentID",
    "ProductSegmentID",
    "Description",
    "Location",
    "HierarchyScope",
    "ActualStartTime",
    "ActualEndTime",
    "ProductionData",
    "PersonnelActual",
    "EquipmentActual",
    "PhysicalAssetActual",
    "MaterialActual",
    "MaterialProducedActual",
    "MaterialConsumedActual",
    "SegmentResponse",
    "RequiredByRequestedSegmentResponse",
    "SegmentState",
    "Any",
}
# Children every material element (actual or requirement) may have, in any version.
_MATERIAL_COMMON = {
    "MaterialClassID",
    "MaterialDefinitionID",
    "MaterialLotID",
    "MaterialSubLotID",
    "Description",
    "Location",
    "HierarchyScope",
    "MaterialUse",
    "Quantity",
    "AssemblyType",
    "AssemblyRelationship",
    "RequiredByRequestedSegmentResponse",
    "Any",
}
_MATERIAL_CHILDREN = _MATERIAL_COMMON | {
    "MaterialActualProperty",
    "MaterialProducedActualProperty",
    "MaterialConsumedActualProperty",
}
# Units of time a PersonnelActual's Quantity may be in, as minutes (UN/ECE codes too).
_LABOR_UNITS = {
    "min": 1.0,
    "minute": 1.0,
    "minutes": 1.0,
    "h": 60.0,
    "hr": 60.0,
    "hour": 60.0,
    "hours": 60.0,
    "hur": 60.0,
}
_QUANTITY_CHILDREN = {"QuantityString", "DataType", "UnitOfMeasure", "Key", "Any"}
_UNSUPPORTED = {
    "ConsumableActual": "reports consumables, which no mes.event/1 event carries",
    "AssemblyActual": "reports an assembly, which no mes.event/1 event carries",
}
_MATERIALS = ("MaterialActual", "MaterialConsumedActual", "MaterialProducedActual")
# Short names of repeated elements in event ids (ProductionResponse[1]/Segment... -> R1.S2).
_KEY_LETTERS = {
    "ProductionResponse": "R",
    "SegmentResponse": "S",
    "MaterialActual": "M",
    "MaterialConsumedActual": "MC",
    "MaterialProducedActual": "MP",
}
_CONSUMED = {"consumed"}
_PRODUCED = {"produced"}
# V0401 MES spell it several ways; V0600 only has "Other" with OtherValue for it.
_BY_PRODUCED = {"byproductproduced", "byproduct", "coproductproduced", "coproduct"}
_DONE_STATES = {"completed", "finished"}
_RUNNING_STATES = {"ready", "running", "holding", "paused"}
_RESPONSE_STATES = _DONE_STATES | _RUNNING_STATES | {"aborted"}
# The transactions whose ProductionPerformance reports what happened (Get asks for
# one, Cancel takes one back: neither is a report to post).
REPORTING_VERBS = ("Sync", "Process", "Show", "Acknowledge", "Change", "Respond")
# The transactions that carry an order to run, or cancel it (Cancel: the order its
# schedule names is cancelled, as by a revision whose request state is Cancelled).
SCHEDULE_VERBS = ("Process", "Sync", "Show", "Change", "Acknowledge", "Respond", "Cancel")
# What a schedule's Get is, when it is refused.
SCHEDULE_REFUSALS = {
    "Get": "a request for the schedules it names (the sender asks for data), not an order "
    "to run or cancel",
}


def production_performance_to_events(
    xml, *, max_bytes=DEFAULT_MAX_BYTES, first_sequence=1, order_key="request", conventions=None
):
    """The ``mes.event/1`` events a B2MML ``ProductionPerformance`` document reports.

    ``xml`` is the document as bytes, in the V0401, V0500 or V0600 namespace. It is
    refused (:class:`MessageValidationError`) when larger than ``max_bytes``, when it
    declares a DOCTYPE or entities (nothing is loaded or expanded), when it is not
    well-formed, or when its content is unknown or cannot be mapped; every
    :class:`FieldError` names the XML path (``ProductionResponse[1]/SegmentResponse[2]/
    MaterialActual[1]/Quantity/QuantityString``) and the value.

    Per ``ProductionResponse``, in document order (its ``ID`` is the ``mes_order_id``;
    ``order_key`` says what names Odoo's order: ``"request"``, its
    ``ProductionRequestID`` as the ``order_ref``; ``"response"``, the MES's order id
    alone, the events without ``order_ref``; ``("data", name)``, the value of the
    segments' ``ProductionData`` named ``name``): each material actual of a segment as
    ``material_consumed`` (Consumed) or ``output_produced`` (Produced, By-product
    Produced), then its nested segments, then the segment itself as
    ``operation_completed``, or ``operation_progress`` while it runs, when its
    ProcessSegmentID or ID is a number (the operation's sequence) and it says something
    of the operation (a state, a time, its equipment or person, a figure, something
    produced): a segment that only carries what was used in it reports no operation;
    last an
    ``order_completed`` when the response's state is Completed. Material actuals with
    a zero quantity report nothing and are skipped.

    Event ids are the document's ID (a hash of the document without one) and the
    element's position, so a redelivered document gives the same ids; sequences
    count from ``first_sequence`` in document order. ``occurred_at`` is the
    segment's ActualEndTime, else the response's EndTime, else the document's
    PublishedDate (UTC when the time has no zone).
    """
    return read_production_performance(
        xml,
        max_bytes=max_bytes,
        first_sequence=first_sequence,
        order_key=order_key,
        conventions=conventions,
    )[0]


def read_production_performance(
    xml, *, max_bytes=DEFAULT_MAX_BYTES, first_sequence=1, order_key="request", conventions=None
):
    """``(events, envelope)``: the events of :func:`production_performance_to_events`
    and the document's BOD :class:`~mes_connector.bod.Envelope` (None for a bare
    ProductionPerformance), to answer it as it asks. A document refused for its content
    raises :class:`MessageValidationError` whose ``envelope`` attribute is the envelope
    read before the problems were found (or None).
    """
    if type(first_sequence) is not int or first_sequence < 0:
        raise ValueError(f"first_sequence must be an integer of 0 or more, got {first_sequence!r}")
    if not (
        order_key in ("request", "response")
        or (
            isinstance(order_key, tuple)
            and len(order_key) == 2
            and order_key[0] == "data"
            and isinstance(order_key[1], str)
            and order_key[1]
        )
    ):
        raise ValueError(
            f'order_key must be "request", "response" or ("data", name), got {order_key!r}'
        )
    root = _parse(xml, max_bytes)
    if conventions is not None and not isinstance(conventions, Conventions):
        raise ValueError(f"conventions must be a Conventions, got {conventions!r}")
    if conventions is not None and scrap_use_clashes(conventions.scrap_use):
        raise ValueError(
            f"conventions.scrap_use {conventions.scrap_use!r} is a material use of B2MML itself"
        )
    reader = _Reader(root, first_sequence, order_key, conventions)
    try:
        return reader.read(), reader.envelope
    except MessageValidationError as err:
        # Read before the problems were found (by the envelope's own check, too).
        err.envelope = reader.envelope or getattr(err, "envelope", None)
        raise


def _invalid(field, value, reason):
    return MessageValidationError([FieldError(field, value, reason)])


def _parse(xml, max_bytes):
    if isinstance(xml, bytearray | memoryview):
        xml = bytes(xml)
    if not isinstance(xml, bytes):
        raise TypeError(f"a B2MML document is bytes, not {type(xml).__name__}")
    if len(xml) > max_bytes:
        raise _invalid("(document)", len(xml), f"bytes are more than the limit of {max_bytes}")
    # Refuse declarations before libxml2 sees them: nothing of a DTD is ever read,
    # so no entity can be expanded (billion laughs) or fetched (file:///etc/passwd).
    for marker in ("<!DOCTYPE", "<!ENTITY"):
        for codec in _SCANNED_ENCODINGS:
            if marker.encode(codec) in xml:
                raise _invalid(
                    "(document)",
                    marker,
                    "is not accepted: B2MML documents must not declare a DTD or entities",
                )
    try:
        root = etree.fromstring(xml, _safe_parser())
    except etree.XMLSyntaxError as err:
        raise _invalid("(document)", MISSING, f"is not well-formed XML: {err}") from None
    # Second line, for encodings the byte scan above does not know.
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or next(root.iter(etree.Entity), None):
        raise _invalid(
            "(document)",
            "DOCTYPE",
            "is not accepted: B2MML documents must not declare a DTD or entities",
        )
    return root


def _safe_parser():
    """A parser that loads no DTD, resolves no entity and fetches nothing.

    A new one per document: lxml parsers must not be shared between threads.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,  # keeps libxml2's limits on depth and text size
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def _local(element):
    return etree.QName(element).localname


def _text(element):
    """Stripped text of a leaf, or None when absent or empty (xsi:nil elements are empty)."""
    if element is None:
        return None
    return (element.text or "").strip() or None


class _Walker:
    """Walks a B2MML tree and collects every problem as a FieldError naming its XML path."""

    def __init__(self, root):
        self.root = root
        self.errors = []

    # Structure

    def _children(self, element, path, allowed, unsupported=None):
        """B2MML children as (name, element); unknown names are errors, extensions skipped."""
        unsupported = _UNSUPPORTED if unsupported is None else unsupported
        out = []
        for child in element:
            if len(self.errors) > MAX_ERRORS:
                # Refused anyway: reading on would only list more (200,000 unknown
                # elements took seconds).
                raise MessageValidationError(_capped(self.errors, "(document)"))
            if not isinstance(child.tag, str):
                continue
            name = _local(child)
            where = f"{path}/{name}" if path else name
            namespace = etree.QName(child).namespace
            if namespace and namespace not in B2MML_NAMESPACES:
                continue  # an extension ("Extended:" or a vendor's): not ours to judge
            if name in unsupported:
                self.errors.append(FieldError(where, MISSING, unsupported[name]))
            elif name in allowed and namespace:
                out.append((name, child))
            else:
                # Unknown in B2MML, or without any namespace (a mistake, not an extension).
                text = _text(child) if len(child) == 0 else None
                self.errors.append(
                    FieldError(
                        where,
                        MISSING if text is None else text,
                        f"is not an element of a B2MML {_local(element)} this reader knows",
                    )
                )
        return out

    @staticmethod
    def _first(children, name):
        return next((child for child_name, child in children if child_name == name), None)

    @staticmethod
    def _all(children, name):
        return [child for child_name, child in children if child_name == name]

    @staticmethod
    def _numbered(children, *names):
        """(name, index among same-named siblings, element) in document order."""
        counts = dict.fromkeys(names, 0)
        for name, child in children:
            if name in counts:
                counts[name] += 1
                yield name, counts[name], child

    # Values

    def _datetime(self, element, path):
        text = _text(element)
        if text is None:
            return None
        if _XS_DATETIME.fullmatch(text):
            try:
                value = datetime.fromisoformat(text.upper())
            except ValueError:
                value = None
            if value is not None:
                value = value if value.tzinfo else value.replace(tzinfo=UTC)
                if in_datetime_range(value):
                    return value
                reason = f"is out of range: a date-time {DATETIME_RANGE} is expected"
                self.errors.append(FieldError(path, text, reason))
                return None
        self.errors.append(
            FieldError(path, text, "is not a date-time (xs:dateTime, e.g. 2026-01-31T08:00:00Z)")
        )
        return None

    def _leaf_datetime(self, children, path, name):
        return self._datetime(self._first(children, name), f"{path}/{name}")

    def _code(self, element, path, limit=_CODE_MAX, required=True):
        text = _text(element)
        if text is None:
            if required:
                self.errors.append(FieldError(path, MISSING, "is missing"))
            return None
        if len(text) > limit:
            self.errors.append(FieldError(path, text, f"must be at most {limit} characters"))
            return None
        return text

    def _quantity(self, children, path):
        """(quantity, uom) of the first Quantity, or None when it is missing or wrong."""
        quantity = self._first(children, "Quantity")
        if quantity is None:
            self.errors.append(FieldError(f"{path}/Quantity", MISSING, "is missing"))
            return None
        path = f"{path}/Quantity"
        parts = self._children(quantity, path, _QUANTITY_CHILDREN)
        text = _text(self._first(parts, "QuantityString"))
        uom = self._code(self._first(parts, "UnitOfMeasure"), f"{path}/UnitOfMeasure", _UOM_MAX)
        if text is None:
            self.errors.append(FieldError(f"{path}/QuantityString", MISSING, "is missing"))
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number < 0:
            self.errors.append(
                FieldError(f"{path}/QuantityString", text, "is not a number of 0 or more")
            )
            return None
        if number > MAX_QUANTITY:
            reason = f"is more than {MAX_QUANTITY}, the largest quantity"
            self.errors.append(FieldError(f"{path}/QuantityString", text, reason))
            return None
        if uom is None:
            return None
        return float(number), uom

    def _operators(self, children, path):
        """The people a segment names with the time they spent (a PersonnelActual with a
        PersonID and a Quantity in minutes or hours): the operation's labor."""
        operators = []
        for index, person in enumerate(self._all(children, "PersonnelActual"), 1):
            where = f"{path}/PersonnelActual[{index}]"
            if person.find("{*}Quantity") is None:
                continue  # a person named without time: the worker, not labor
            badge = self._code(person.find("{*}PersonID"), f"{where}/PersonID")
            parts = [(_local(child), child) for child in person if isinstance(child.tag, str)]
            amount = self._quantity(parts, where)
            if badge is None or amount is None:
                continue
            quantity, uom = amount
            factor = _LABOR_UNITS.get(uom.casefold())
            if factor is None:
                self.errors.append(
                    FieldError(
                        f"{where}/Quantity/UnitOfMeasure", uom, "is no unit of time (min, h)"
                    )
                )
                continue
            operators.append({"operator": badge, "minutes": round(quantity * factor, 6)})
        return operators

    @staticmethod
    def _state(element):
        text = _text(element)
        if text == "Other":
            text = (element.get("OtherValue") or "").strip() or text
        return text

    def _sequence(self, children, path):
        """The operation's sequence: ProcessSegmentID, else ID, when it is an integer.

        None when neither is one (the segment is no operation), or when it is out of
        range (then reported).
        """
        for name in ("ProcessSegmentID", "ID"):
            text = _text(self._first(children, name))
            if text is not None and _INTEGER.fullmatch(text):
                return self._in_range(text, f"{path}/{name}")
        return None

    def _in_range(self, text, path):
        """The integer ``text`` (``3`` or ``3.0``); None, reported, when out of range.

        The range is a PostgreSQL integer's: what is read is stored.
        """
        digits = text.split(".")[0]
        # int() refuses more than 4300 digits: so many are out of range anyway.
        number = int(digits) if len(digits) <= 1000 else None
        if number is not None and MIN_INTEGER <= number <= MAX_INTEGER:
            return number
        reason = f"is out of range: an integer from {MIN_INTEGER} to {MAX_INTEGER} is expected"
        self.errors.append(FieldError(path, text, reason))
        return None


class _Reader(_Walker):
    def __init__(self, root, first_sequence, order_key="request", conventions=None):
        super().__init__(root)
        self.order_key = order_key
        self.conventions = conventions or DEFAULT_CONVENTIONS
        self.events = []
        self.sequence = first_sequence
        self.prefix = None
        self.published = None
        self.envelope = None

    def read(self):
        nouns, self.envelope = unwrap(
            self.root,
            "ProductionPerformance",
            B2MML_NAMESPACES,
            REPORTING_VERBS,
            self._datetime,
        )
        created = self.envelope.created if self.envelope else None
        noun_ids = []
        for position, noun in enumerate(nouns, 1):
            # Paths and keys of a wrapped noun name it; a bare document's stay as they were.
            base = f"DataArea/ProductionPerformance[{position}]" if self.envelope else ""
            children = self._children(noun, base, _PERFORMANCE_CHILDREN)
            noun_ids.append(_text(self._first(children, "ID")))
            self.prefix = self._id_prefix(noun_ids[-1], noun)
            self.published = (
                self._datetime(
                    self._first(children, "PublishedDate"), self._path(base, "PublishedDate")
                )
                or created
            )
            # Keys are the report's own (its ID, else its content): the same report keeps
            # its event ids whatever it comes beside, so it never posts twice.
            for _name, index, response in self._numbered(children, "ProductionResponse"):
                self._response(
                    response, self._path(base, f"ProductionResponse[{index}]"), f"R{index}"
                )
        if self.envelope:
            self.envelope = dataclasses.replace(self.envelope, noun_ids=tuple(noun_ids))
        if self.errors:
            raise MessageValidationError(_capped(self.errors, "(document)"))
        return self.events

    @staticmethod
    def _path(base, name):
        return f"{base}/{name}" if base else name

    def _id_prefix(self, document_id, noun):
        if document_id is None:
            # Same content, same ids: a redelivery of the document is recognised, in a
            # new envelope too (an MES may give each sending a new BODID).
            try:
                canonical = etree.tostring(noun, method="c14n")
            except etree.C14NError:
                # C14N refuses relative namespace URIs (xmlns:x="x"), which name
                # extensions: the plain serialization is the same for the same document.
                canonical = etree.tostring(noun)
            return "b2mml-" + hashlib.sha256(canonical).hexdigest()[:24]
        clean = _EVENT_ID_CHARS.sub("-", document_id)
        if clean != document_id or len(clean) > 64:
            # Keep ids readable but tell apart documents whose IDs only differ there.
            digest = hashlib.sha256(document_id.encode()).hexdigest()[:12]
            clean = f"{clean[:48]}-{digest}"
        return clean

    # Events

    def _emit(self, context, event_type, key, data, path, when):
        when = when or context["fallback"]
        if when is None:
            if not context["timeless"]:
                context["timeless"] = True
                self.errors.append(
                    FieldError(
                        f"{context['path']}/EndTime",
                        MISSING,
                        "is missing, and so is the document's PublishedDate: the events "
                        "need a time",
                    )
                )
            return
        event_id = f"{self.prefix}:{key}"
        if len(event_id) > 128:
            event_id = f"{self.prefix}:{hashlib.sha256(key.encode()).hexdigest()[:24]}"
        event = {
            "schema": EVENT_SCHEMA,
            "event_id": event_id,
            "event_type": event_type,
            "order_ref": context["order_ref"],
            "sequence": self.sequence,
            "occurred_at": when.isoformat(),
            "data": data,
        }
        if event["order_ref"] is None:
            del event["order_ref"]
        if context["mes_order_id"]:
            event["mes_order_id"] = context["mes_order_id"]
        # Last line of defence: what is checked above should leave nothing here.
        problems = validation_errors(event, "event.v1.json")
        if problems:
            self.errors.extend(
                FieldError(path, problem.value, f"gives a {event_type} event whose {problem}")
                for problem in problems
            )
            return
        self.sequence += 1
        self.events.append(event)

    def _response(self, response, path, key):
        children = self._children(response, path, _RESPONSE_CHILDREN)
        how = self.order_key if isinstance(self.order_key, str) else self.order_key[0]
        mes_order_id = self._code(
            self._first(children, "ID"), f"{path}/ID", required=how == "response"
        )
        if how == "request":
            order_ref = self._code(
                self._first(children, "ProductionRequestID"), f"{path}/ProductionRequestID"
            )
        elif how == "data":
            order_ref = self._order_data(response, path, self.order_key[1])
        else:  # the MES's order id alone says which order: the events carry no order_ref
            order_ref = None
        end = self._datetime(self._first(children, "EndTime"), f"{path}/EndTime")
        state_element = self._first(children, "ResponseState")
        state_name = "ResponseState"
        if state_element is None:
            state_element = self._first(children, "ProductionResponseState")
            state_name = "ProductionResponseState"
        state = self._state(state_element)
        normalized = state.lower() if state else None
        context = {
            # Without it no event can be made, but the rest is still checked: every
            # problem of the document is reported at once.
            "order_ref": order_ref or (None if how == "response" and mes_order_id else "-"),
            "mes_order_id": mes_order_id,
            "fallback": end or self.published,
            "running": normalized in _RUNNING_STATES,
            "path": path,
            "timeless": False,
        }
        for name, index, child in self._numbered(children, "SegmentResponse", "MaterialActual"):
            child_path = f"{path}/{name}[{index}]"
            child_key = f"{key}.{_KEY_LETTERS[name]}{index}"
            if name == "SegmentResponse":
                self._segment(child, child_path, child_key, context, None, None)
            else:
                self._material(child, name, child_path, child_key, context, None, None)
        if state is not None and normalized not in _RESPONSE_STATES:
            # Reported here, after the segments: errors come in document order.
            self.errors.append(
                FieldError(
                    f"{path}/{state_name}",
                    state,
                    "is not a response state this reader knows (Ready, Running, Completed, "
                    "Aborted, Holding, Paused)",
                )
            )
        if normalized in _DONE_STATES:
            self._emit(context, "order_completed", f"{key}.done", {}, path, end)

    def _order_data(self, response, path, name):
        """Odoo's order as the value of the ProductionData ``name`` of the response's
        segments; segments naming different orders are an error."""
        tags = [etree.QName(ns, "ProductionData").text for ns in B2MML_NAMESPACES]
        where = f"{path}//ProductionData[ID={name}]/Value/ValueString"
        values = []
        for data in response.iter(*tags):
            ns = etree.QName(data).namespace
            if _text(data.find(etree.QName(ns, "ID").text)) == name:
                values.append(self._code(data.find(f"{{{ns}}}Value/{{{ns}}}ValueString"), where))
        if not values:
            self.errors.append(
                FieldError(
                    f"{path}//ProductionData[ID={name}]",
                    MISSING,
                    "is missing: it names the order of this response",
                )
            )
            return None
        named = sorted({value for value in values if value})
        if len(named) > 1:
            self.errors.append(
                FieldError(where, named, "names several orders: a response reports on one")
            )
            return None
        return named[0] if named else None

    def _segment(self, segment, path, key, context, operation, when):
        children = self._children(segment, path, _SEGMENT_CHILDREN)
        sequence = self._sequence(children, path)
        if sequence is not None:
            operation = sequence
        started = self._leaf_datetime(children, path, "ActualStartTime")
        ended = self._leaf_datetime(children, path, "ActualEndTime")
        when = ended or when
        # Downtime first: it happened during the operation, before what it produced.
        equipment = None
        for index, actual in enumerate(self._all(children, "EquipmentActual"), 1):
            where = f"{path}/EquipmentActual[{index}]"
            if not self._downtime(actual, where, key, index, context) and equipment is None:
                equipment = (actual, where)
        produced = []
        for name, index, child in self._numbered(children, *_MATERIALS, "SegmentResponse"):
            child_path = f"{path}/{name}[{index}]"
            child_key = f"{key}.{_KEY_LETTERS[name]}{index}"
            if name == "SegmentResponse":
                self._segment(child, child_path, child_key, context, operation, when)
            else:
                result = self._material(
                    child, name, child_path, child_key, context, operation, when
                )
                if result and result[0] == "produced":
                    produced.append(result[1])
        if sequence is None:
            return  # a segment that is not an operation only groups what it holds
        data = {"operation": sequence}
        if equipment is not None:
            resource = self._code(
                equipment[0].find("{*}EquipmentID"), f"{equipment[1]}/EquipmentID"
            )
            if resource:
                data["resource"] = resource
        # The worker: the first person named without time (with time, labor below).
        people = self._all(children, "PersonnelActual")
        person = next((p for p in people if p.find("{*}Quantity") is None), None)
        if person is not None:
            worker = self._code(
                person.find("{*}PersonID"),
                f"{path}/PersonnelActual[{people.index(person) + 1}]/PersonID",
                _TEXT_MAX,
                required=False,
            )
            if worker:
                data["worker"] = worker
        operators = self._operators(children, path)
        if operators:
            data["operators"] = operators
        figures = self._operation_figures(segment, path)
        if "good_quantity" in figures:
            produced = []  # what the MES counted good, said as such
        data.update(figures)
        if produced:
            units = {material["uom"] for material in produced} | (
                {figures["uom"]} if "uom" in figures else set()
            )
            if len(units) > 1:
                self.errors.append(
                    FieldError(
                        f"{path}/MaterialActual",
                        sorted(units),
                        "are produced quantities in different units: no good quantity",
                    )
                )
            else:
                data["good_quantity"] = sum(material["quantity"] for material in produced)
                data["uom"] = units.pop()
        if started:
            data["started_at"] = started.isoformat()
        if ended:
            data["ended_at"] = ended.isoformat()
        says = {name for name, _child in children} & {
            "SegmentState",
            "ActualStartTime",
            "ActualEndTime",
            "PersonnelActual",
        }
        if not says and equipment is None and set(data) == {"operation"}:
            # It only carries what was used or scrapped in the operation (a later part of a
            # run the MES reports in parts): it says nothing of the operation itself.
            return
        event_type = self._segment_event_type(children, path, ended, context)
        if event_type:
            self._emit(context, event_type, key, data, path, when)

    def _operation_figures(self, segment, path):
        """The operation's minutes and quantities its ProductionData say (Conventions)."""
        conventions = self.conventions
        wanted = {
            conventions.setup_minutes: "setup_minutes",
            conventions.run_minutes: "run_minutes",
            conventions.good_quantity: "good_quantity",
            conventions.reject_quantity: "reject_quantity",
        }
        figures, units = {}, {}
        for data in segment:
            if not isinstance(data.tag, str) or _local(data) != "ProductionData":
                continue
            field = wanted.get(_text(data.find("{*}ID")))
            if field is None or field in figures:
                continue
            where = f"{path}/ProductionData[ID={_text(data.find('{*}ID'))}]/Value"
            text = _text(data.find("{*}Value/{*}ValueString"))
            try:
                number = Decimal(text) if text is not None else None
            except InvalidOperation:
                number = None
            if number is None or not number.is_finite() or number < 0 or number > MAX_QUANTITY:
                self.errors.append(
                    FieldError(
                        f"{where}/ValueString", text or MISSING, "is not a number of 0 or more"
                    )
                )
                continue
            figures[field] = float(number)
            if field.endswith("_quantity"):
                unit = _text(data.find("{*}Value/{*}UnitOfMeasure"))
                if unit is None:
                    self.errors.append(
                        FieldError(
                            f"{where}/UnitOfMeasure",
                            MISSING,
                            "is missing: a quantity needs its unit",
                        )
                    )
                    figures.pop(field)
                    continue
                units[field] = unit
        if len(set(units.values())) > 1:
            self.errors.append(
                FieldError(
                    f"{path}/ProductionData",
                    sorted(set(units.values())),
                    "are quantities in different units",
                )
            )
            return {}
        if units:
            figures["uom"] = next(iter(units.values()))
        return figures

    def _downtime(self, actual, path, key, index, context):
        """The downtime an EquipmentActual reports (see :class:`Conventions`), emitted;
        False when it reports none (it is the operation's equipment)."""
        conventions = self.conventions
        properties = self._properties(actual, path)
        if conventions.downtime_id not in properties:
            return False

        def missing(name):
            return (None, f"{path}/EquipmentActualProperty[ID={name}]")

        def text(name, reason=None):
            element, where = properties.get(name, missing(name))
            if reason is None:
                return _text(element)
            return self._code_text(_text(element), where, reason)

        def moment(name, required):
            element, where = properties.get(name, missing(name))
            if element is None or _text(element) is None:
                if required:
                    self.errors.append(FieldError(where, MISSING, "is missing: when it began"))
                return None
            return self._datetime(element, where)

        downtime_id = text(conventions.downtime_id, "names no downtime")
        resource = self._code(actual.find("{*}EquipmentID"), f"{path}/EquipmentID")
        reason = text(conventions.downtime_reason, "is missing: a downtime needs its reason")
        started = moment(conventions.downtime_start, True)
        ended = moment(conventions.downtime_end, False)
        comment = text(conventions.downtime_comment)
        if ended is not None and started is not None and ended < started:
            self.errors.append(
                FieldError(
                    properties[conventions.downtime_end][1],
                    ended.isoformat(),
                    f"is before the downtime's start {started.isoformat()}",
                )
            )
            return True
        if None in (downtime_id, resource, reason, started):
            return True
        data = {
            "downtime_id": downtime_id,
            "resource": resource,
            "reason": reason,
            "started_at": started.isoformat(),
        }
        if comment:
            data["comment"] = comment[:_TEXT_MAX]
        self._emit(context, "downtime_started", f"{key}.D{index}", data, path, started)
        if ended:
            self._emit(
                context,
                "downtime_ended",
                f"{key}.D{index}.end",
                {"downtime_id": downtime_id, "resource": resource, "ended_at": ended.isoformat()},
                path,
                ended,
            )
        return True

    def _segment_event_type(self, children, path, ended, context):
        element = self._first(children, "SegmentState")
        state = self._state(element)
        if state is None:
            # No state: an end time means done; else the response's state tells.
            if ended is None and context["running"]:
                return "operation_progress"
            return "operation_completed"
        normalized = state.lower()
        if normalized in _DONE_STATES:
            return "operation_completed"
        if normalized in _RUNNING_STATES:
            return "operation_progress"
        self.errors.append(
            FieldError(
                f"{path}/SegmentState",
                state,
                "cannot be reported: Completed gives operation_completed, Ready, Running, "
                "Holding or Paused operation_progress",
            )
        )
        return None

    def _material_kind(self, name, children, path):
        if name == "MaterialConsumedActual":
            return "consumed"
        if name == "MaterialProducedActual":
            return "produced"
        element = self._first(children, "MaterialUse")
        use = self._state(element)
        if use is None:
            self.errors.append(
                FieldError(f"{path}/MaterialUse", MISSING, "is missing: consumed or produced?")
            )
            return None
        letters = re.sub(r"[^a-z]", "", use.lower())
        if letters == re.sub(r"[^a-z]", "", self.conventions.scrap_use.lower()):
            return "scrap"
        if letters in _CONSUMED:
            return "consumed"
        if letters in _PRODUCED:
            return "produced"
        if letters in _BY_PRODUCED:
            return "by-product"
        self.errors.append(
            FieldError(
                f"{path}/MaterialUse",
                use,
                "is not a material use this reader maps (Consumed, Produced, By-product "
                f"Produced, {self.conventions.scrap_use})",
            )
        )
        return None

    def _material(self, material, name, path, key, context, operation, when):
        """Emit the material's event; returns (kind, data) for the segment's totals."""
        children = self._children(material, path, _MATERIAL_CHILDREN)
        kind = self._material_kind(name, children, path)
        definitions = self._all(children, "MaterialDefinitionID")
        if len(definitions) > 1:
            self.errors.append(
                FieldError(
                    f"{path}/MaterialDefinitionID",
                    [_text(d) for d in definitions],
                    "names several materials: one is expected",
                )
            )
            return None
        product = self._code(
            definitions[0] if definitions else None, f"{path}/MaterialDefinitionID"
        )
        # An empty (or nil) MaterialLotID is no lot, as some V0401 MES write it.
        lots = [
            self._code(lot, f"{path}/MaterialLotID[{index}]")
            for index, lot in enumerate(self._all(children, "MaterialLotID"), 1)
            if _text(lot) is not None
        ]
        amount = self._quantity(children, path)
        if kind is None or product is None or amount is None or None in lots:
            return None
        quantity, uom = amount
        data = {"product": product, "quantity": quantity, "uom": uom}
        if len(lots) == 1:
            data["lot"] = lots[0]
        elif lots:
            # Several lots on one actual: serial numbers, one per unit.
            if len(set(lots)) != len(lots):
                self.errors.append(
                    FieldError(f"{path}/MaterialLotID", lots, "repeats a serial number")
                )
                return None
            data["serials"] = lots
        if operation is not None:
            data["operation"] = operation
        properties = self._properties(material, path)
        self._quality_results(properties, data, path, key, context, when)
        if quantity == 0:
            return None  # nothing moved: an event would be refused for its quantity
        if kind == "scrap":
            return self._scrap(properties, data, path, key, context, when)
        event_type = "material_consumed" if kind == "consumed" else "output_produced"
        self._emit(context, event_type, key, data, path, when)
        return kind, data

    def _properties(self, element, path):
        """{ID: (its ValueString element, its path)} of an element's ...Property children,
        each named by its ID (``MaterialActualProperty[ID=ScrapReason]``)."""
        found = {}
        for prop in element:
            if not isinstance(prop.tag, str) or not _local(prop).endswith("Property"):
                continue
            name = _text(prop.find("{*}ID"))
            if name is None or name in found:
                continue
            where = f"{path}/{_local(prop)}[ID={name}]/Value/ValueString"
            found[name] = (prop.find("{*}Value/{*}ValueString"), where)
        return found

    def _scrap(self, properties, data, path, key, context, when):
        name = self.conventions.scrap_reason
        reason, where = properties.get(name, (None, f"{path}/MaterialActualProperty[ID={name}]"))
        reason = self._code_text(_text(reason), where, "is missing: a scrap needs its reason")
        if reason is None:
            return None
        scrap = {
            key_: data[key_]
            for key_ in ("product", "quantity", "uom", "lot", "operation")
            if key_ in data
        }
        if "serials" in data:
            self.errors.append(
                FieldError(f"{path}/MaterialLotID", data["serials"], "several lots on one scrap")
            )
            return None
        scrap["reason"] = reason
        self._emit(context, "scrap_reported", key, scrap, path, when)
        return "scrap", scrap

    def _quality_results(self, properties, data, path, key, context, when):
        prefix = self.conventions.quality_prefix
        for position, (name, (value, where)) in enumerate(properties.items(), 1):
            if not name.startswith(prefix):
                continue
            characteristic = self._code_text(
                name[len(prefix) :] or None, where.rsplit("/Value/", 1)[0], "names no test"
            )
            result = (_text(value) or "").lower()
            if result not in ("pass", "fail"):
                self.errors.append(
                    FieldError(where, _text(value) or MISSING, "must be Pass or Fail")
                )
                continue
            if characteristic is None:
                continue
            quality = {"characteristic": characteristic, "result": result}
            quality.update({k: data[k] for k in ("product", "lot", "operation") if k in data})
            self._emit(context, "quality_result", f"{key}.Q{position}", quality, path, when)

    def _code_text(self, text, path, missing_reason):
        if text is None:
            self.errors.append(FieldError(path, MISSING, missing_reason))
            return None
        if len(text) > _CODE_MAX:
            self.errors.append(FieldError(path, text, f"must be at most {_CODE_MAX} characters"))
            return None
        return text


# ---------------------------------------------------------------------------
# Reader: ProductionSchedule (V0401/V0500/V0600) -> mes.order/1
# ---------------------------------------------------------------------------

# As for the performance: what is read and what only describes is listed; anything
# else named in a B2MML namespace is an error, as is content an order cannot carry.
_SCHEDULE_CHILDREN = {
    "ID",
    "Description",
    "Location",
    "HierarchyScope",
    "PublishedDate",
    "StartTime",
    "EndTime",
    "EquipmentElementLevel",
    "ProductionRequest",
    "ScheduleState",
    "Any",
}
_REQUEST_CHILDREN = {
    "ID",
    "Description",
    "ProductProductionRuleID",
    "Version",
    "Location",
    "HierarchyScope",
    "StartTime",
    "EndTime",
    "Priority",
    "SegmentRequirement",
    "RequestState",
    "Any",
}
_REQUIREMENT_CHILDREN = {
    "ID",
    "ProductSegmentID",
    "ProcessSegmentID",
    "Description",
    "Location",
    "HierarchyScope",
    "EarliestStartTime",
    "LatestEndTime",
    "Duration",
    "ProductionParameter",
    # People and assets are the MES's to plan: mes.order/1 names none.
    "PersonnelRequirement",
    "EquipmentRequirement",
    "PhysicalAssetRequirement",
    "MaterialRequirement",
    "MaterialProducedRequirement",
    "MaterialConsumedRequirement",
    "SegmentRequirement",
    "RequiredByRequestedSegmentResponse",
    "SegmentState",
    "Any",
}
_EQUIPMENT_REQUIREMENT_CHILDREN = {
    "EquipmentClassID",
    "EquipmentID",
    "Description",
    "Location",
    "HierarchyScope",
    "Quantity",
    "EquipmentRequirementProperty",
    "RequiredByRequestedSegmentResponse",
    "Any",
}
_MATERIAL_PROPERTIES = (
    "MaterialRequirementProperty",
    "MaterialProducedRequirementProperty",
    "MaterialConsumedRequirementProperty",
)
_MATERIAL_REQUIREMENT_CHILDREN = _MATERIAL_COMMON | set(_MATERIAL_PROPERTIES)
_MATERIAL_REQUIREMENTS = (
    "MaterialRequirement",
    "MaterialProducedRequirement",
    "MaterialConsumedRequirement",
)
_PRODUCTION_PARAMETER_CHILDREN = {"ProductSegmentID", "ProcessSegmentID", "Parameter", "Any"}
_PARAMETER_CHILDREN = {"ID", "Value", "Description", "Any"}  # no nested Parameter
_PROPERTY_CHILDREN = {"ID", "Description", "Value", "Quantity", "Any"}
_VALUE_CHILDREN = {"ValueString", "DataType", "UnitOfMeasure", "Key", "Any"}
_SCHEDULE_UNSUPPORTED = {
    "SegmentResponse": "reports what was done, which an order to run does not carry",
    "ConsumableExpectedRequirement": "requires consumables, which mes.order/1 does not carry",
    "AssemblyRequirement": "requires an assembly, which mes.order/1 does not carry",
}
_ORDER_KEYS = (
    "order_id",
    "revision",
    "product",
    "quantity",
    "uom",
    "action",
    "planned_start",
    "planned_end",
    "priority",
    "origin",
    "company",
    "components",
    "operations",
    "byproducts",
    "finished_lots",
    "schema",
)
_ORDER_PARAMETERS = {"revision": "Revision", "action": "Action", "origin": "Origin"}
_CANCELLED_STATES = {"cancelled", "canceled"}
# xs:duration. Years and months have no length in minutes: refused when not zero.
_XS_DURATION = re.compile(
    r"(?P<sign>-)?P(?:(?P<Y>\d{1,18})Y)?(?:(?P<M>\d{1,18})M)?(?:(?P<D>\d{1,18})D)?"
    r"(?:T(?:(?P<h>\d{1,18})H)?(?:(?P<m>\d{1,18})M)?(?:(?P<s>\d{1,18}(?:\.\d*)?|\.\d+)S)?)?"
)
_DECIMAL_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")


def duration_minutes(text):
    """Minutes of an xs:duration (``PT1H30M`` -> 90.0); ValueError saying what is wrong."""
    match = _XS_DURATION.fullmatch(text)
    numbers = match and [match[k] for k in ("Y", "M", "D", "h", "m", "s")]
    if not match or not any(numbers) or text.endswith("T"):
        raise ValueError("is not a duration (xs:duration, e.g. PT1H30M)")
    if any(int(match[key] or 0) for key in ("Y", "M")):
        raise ValueError("has years or months, which have no length in minutes")
    seconds = Decimal(match["s"] or 0)
    for key, factor in (("D", 86400), ("h", 3600), ("m", 60)):
        seconds += int(match[key] or 0) * factor
    if match["sign"] and seconds:
        raise ValueError("is negative")
    return float(seconds / 60)


def production_schedule_to_order(xml, *, max_bytes=DEFAULT_MAX_BYTES):
    """The ``mes.order/1`` document a B2MML ``ProductionSchedule`` of one order carries.

    The inverse of :func:`order_to_production_schedule`, for the MES side. ``xml`` is
    the document as bytes, in the V0401, V0500 or V0600 namespace, refused
    (:class:`MessageValidationError`) as :func:`production_performance_to_events`
    refuses a document: too large, a DOCTYPE or entities, not well-formed, unknown
    content or content an order cannot carry (a lot for a component, an unknown
    parameter or property, consumables...). Every :class:`FieldError` names the XML
    path (``ProductionRequest[1]/SegmentRequirement[1]/MaterialRequirement[2]/
    Quantity/QuantityString``) and the value; all problems are reported at once.

    The schedule holds exactly one ``ProductionRequest``; its ``ID`` is the order id,
    ``StartTime``/``EndTime`` (else the ``EarliestStartTime``/``LatestEndTime`` of a
    segment that is not an operation) the planned times, ``Priority`` the priority
    (0 without), the ``Enterprise`` of its ``HierarchyScope`` (or ``Location``) the
    company. Its ``SegmentRequirement`` tree, read in document order:

    - a segment with a ``ProcessSegmentID`` or an ``EquipmentRequirement`` is an
      operation: sequence = the ``ProcessSegmentID``, else ``ID``, that is an integer;
      name = ``Description``, else ``ProcessSegmentID``; resource = its one
      ``EquipmentID``; ``duration_minutes`` from ``Duration`` (0 without);
    - other segments only group; their ``Revision``, ``Action`` and ``Origin``
      production parameters are the order's (revision 1 without);
    - the one ``Produced`` material is the product (code, ``Description`` as name,
      quantity and unit, its ``MaterialLotID``s as ``finished_lots``); ``Consumed``
      materials are components, by-products (``Other`` with the OtherValue
      ``By-product Produced``, or a V0401 spelling such as ``By-product Produced``,
      ``ByProduct`` or ``Co-product Produced``) are ``byproducts``, both of the
      nearest enclosing operation (none: of the order). A ``Tracking`` property
      gives a material's tracking (``none`` without).

    The action is the ``Action`` parameter, which must agree with ``RequestState``
    (``Other``/``Cancelled`` is a cancel); without it: ``cancel`` for a cancelled
    request, else ``create`` for revision 1 and ``change`` after. A ``Forecast`` is no
    order to run and is refused. The result holds every field of ``mes.order/1``
    (as ``OrderExport.to_dict()`` makes it: absent times None, no company "") and
    passes :func:`~mes_connector.validation.validate_order`; a value the schema
    refuses is reported at the XML path it came from.

    In a transaction (:data:`SCHEDULE_VERBS`), a ``CancelProductionSchedule`` is the
    cancellation (action ``cancel``) of the order its schedule names, at the revision it
    says, whether its request state is ``Released`` (the schedule as it was sent) or
    cancelled; an ``Action`` parameter other than ``cancel`` contradicts it and is
    refused. A ``GetProductionSchedule`` asks for data and is refused by name.
    """
    return read_production_schedule(xml, max_bytes=max_bytes)[0]


def read_production_schedule(xml, *, max_bytes=DEFAULT_MAX_BYTES):
    """``(order, envelope)``: the order of :func:`production_schedule_to_order` and the
    document's BOD :class:`~mes_connector.bod.Envelope` (None for a bare schedule; its
    ``noun_ids`` the schedule's ID), to answer it in its own form. A document refused
    for its content raises :class:`MessageValidationError` whose ``envelope`` attribute
    is the envelope read before the problems were found (or None).
    """
    return read_with_envelope(_ScheduleReader, xml, max_bytes)


def read_with_envelope(reader_class, xml, max_bytes):
    """``(what reader_class reads, the BOD envelope or None)``; a refusal carries the
    envelope read before the problems were found (``envelope`` attribute)."""
    reader = reader_class(_parse(xml, max_bytes))
    try:
        return reader.read(), reader.envelope
    except MessageValidationError as err:
        err.envelope = reader.envelope or getattr(err, "envelope", None)
        raise


class _ScheduleReader(_Walker):
    def __init__(self, root):
        super().__init__(root)
        self.origin = {}  # mes.order/1 field -> XML path it was read from
        self.failed = set()  # fields whose problem is already reported
        self.parameters = {}  # "revision" -> (text, path of its ValueString)
        self.segment_times = {}  # "EarliestStartTime" -> (element, path), first grouping one
        self.product = None
        self.components = []
        self.byproducts = []
        self.operations = []
        self.envelope = None

    def read(self):
        nouns, self.envelope = unwrap(
            self.root,
            "ProductionSchedule",
            B2MML_NAMESPACES,
            SCHEDULE_VERBS,
            self._datetime,
            refusals=SCHEDULE_REFUSALS,
        )
        if len(nouns) > 1:
            raise _invalid(
                "DataArea/ProductionSchedule[2]",
                MISSING,
                "is a second production schedule: one document carries one order",
            )
        if self.envelope is not None:
            schedule_id = _text(next((c for c in nouns[0] if _is_b2mml(c, "ID")), None))
            self.envelope = dataclasses.replace(
                self.envelope, noun_ids=(schedule_id,) if schedule_id else ()
            )
        # Paths are the schedule's own, wrapped or not.
        children = self._children(nouns[0], "", _SCHEDULE_CHILDREN, _SCHEDULE_UNSUPPORTED)
        requests = self._all(children, "ProductionRequest")
        if not requests:
            self.errors.append(
                FieldError("ProductionRequest", MISSING, "is missing: the schedule holds no order")
            )
            raise MessageValidationError(_capped(self.errors, "(document)"))
        for index, extra in enumerate(requests[1:], 2):
            identifier = next((c for c in extra if _is_b2mml(c, "ID")), None)
            self.errors.append(
                FieldError(
                    f"ProductionRequest[{index}]",
                    _text(identifier) or MISSING,
                    "is a second production request: one document carries one order",
                )
            )
        order = self._request(requests[0], "ProductionRequest[1]")
        self._check(order)
        if self.errors:
            raise MessageValidationError(_capped(self.errors, "(document)"))
        return order

    # Helpers

    def _fail(self, field, path, value, reason):
        self.origin[field] = path
        self.failed.add(field)
        self.errors.append(FieldError(path, value, reason))

    def _leaf(self, children, name, path, field, required=False):
        """Text of the first child ``name``, noted as where ``field`` comes from."""
        path = f"{path}/{name}"
        self.origin[field] = path
        text = _text(self._first(children, name))
        if text is None and required:
            self._fail(field, path, MISSING, "is missing")
        return text

    def _when(self, element, path, field):
        self.origin[field] = path
        errors = len(self.errors)
        value = self._datetime(element, path)
        if len(self.errors) > errors:
            self.failed.add(field)
        return value.isoformat() if value else None

    def _integer(self, text, path, field, what):
        self.origin[field] = path
        if _DECIMAL_INTEGER.fullmatch(text):
            number = self._in_range(text, path)
            if number is None:
                self.failed.add(field)
            return number
        self._fail(field, path, text, f"is not {what}")
        return None

    def _value(self, element, path):
        """(text of the first Value/ValueString, its path)."""
        value = self._first(self._children(element, path, _PROPERTY_CHILDREN), "Value")
        value_path = f"{path}/Value/ValueString"
        if value is None:
            return None, value_path
        parts = self._children(value, f"{path}/Value", _VALUE_CHILDREN)
        return _text(self._first(parts, "ValueString")), value_path

    def _check(self, order):
        """Last line of defence: the schema, its problems named by their XML path."""
        for problem in validation_errors(order, "order.v1.json"):
            field = problem.field
            if any(field == f or field.startswith((f"{f}.", f"{f}[")) for f in self.failed):
                continue
            path = self.origin.get(field)
            while path is None and ("." in field or "[" in field):
                field = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", field)
                path = self.origin.get(field)
            reason = f"{problem.reason} (the order's {problem.field})"
            self.errors.append(FieldError(path or "(document)", problem.value, reason))

    # Structure

    def _request(self, request, path):
        children = self._children(request, path, _REQUEST_CHILDREN, _SCHEDULE_UNSUPPORTED)
        order = {"schema": ORDER_SCHEMA}
        order_id = self._leaf(children, "ID", path, "order_id", required=True)
        if order_id is not None:
            order["order_id"] = order_id
        for index, segment in enumerate(self._all(children, "SegmentRequirement"), 1):
            self._segment(segment, f"{path}/SegmentRequirement[{index}]", None, top=True)
        if not self._all(children, "SegmentRequirement"):
            path_of_product = f"{path}/SegmentRequirement"
        else:
            path_of_product = f"{path}/SegmentRequirement[1]/MaterialRequirement"
        if self.product is None:
            for field in ("product", "quantity", "uom"):
                self.failed.add(field)
            self.errors.append(
                FieldError(
                    path_of_product,
                    MISSING,
                    "with MaterialUse Produced is missing: the order's product",
                )
            )
        else:
            order.update(self.product)

        revision = self._revision()
        if revision is not None:
            order["revision"] = revision
        action = self._action(children, path, revision)
        if action is not None:
            order["action"] = action
        for key, name, fallback in (
            ("planned_start", "StartTime", "EarliestStartTime"),
            ("planned_end", "EndTime", "LatestEndTime"),
        ):
            element, where = self._first(children, name), f"{path}/{name}"
            if element is None and fallback in self.segment_times:
                element, where = self.segment_times[fallback]
            order[key] = self._when(element, where, key)
        priority = self._leaf(children, "Priority", path, "priority")
        order["priority"] = 0
        if priority is not None:
            value = self._integer(priority, f"{path}/Priority", "priority", "a priority (0-9)")
            if value is not None:
                order["priority"] = value
        text, where = self.parameters.get("origin", (None, None))
        self.origin["origin"] = where
        order["origin"] = text
        order["company"] = self._company(children, path)
        order["components"] = self.components
        order["operations"] = self.operations
        order["byproducts"] = self.byproducts
        order.setdefault("finished_lots", [])
        # In the order of OrderExport.to_dict(), for whoever reads the result.
        return {key: order[key] for key in _ORDER_KEYS if key in order}

    def _revision(self):
        text, where = self.parameters.get("revision", (None, None))
        if text is None:
            return 1  # a schedule that does not number its revisions: the first one
        return self._integer(text, where, "revision", "a revision number (1 or more)")

    def _action(self, children, path, revision):
        element = self._first(children, "RequestState")
        state = self._state(element)
        state_path = f"{path}/RequestState"
        normalized = re.sub(r"[^a-z]", "", state.lower()) if state else None
        cancelled = normalized in _CANCELLED_STATES
        if normalized == "forecast":
            self._fail("action", state_path, state, "is a forecast: no order to run")
            return None
        if state is not None and not cancelled and normalized != "released":
            reason = "is not a request state this reader knows (Released, Other Cancelled)"
            self._fail("action", state_path, state, reason)
            return None
        text, where = self.parameters.get("action", (None, None))
        if self.envelope is not None and self.envelope.verb == "Cancel":
            # A Cancel cancels the order its schedule names, as sent (Released) or
            # cancelled already; an Action parameter, when given, must say so too.
            self.origin["action"] = where or state_path
            if text is not None and text != "cancel":
                self._fail(
                    "action",
                    where,
                    text,
                    f"contradicts the Cancel{self.envelope.noun} transaction, which cancels "
                    "the order",
                )
                return None
            return "cancel"
        if text is None:
            self.origin["action"] = state_path
            if cancelled:
                return "cancel"
            return "create" if revision in (None, 1) else "change"
        self.origin["action"] = where
        if cancelled != (text == "cancel") and (cancelled or state is not None):
            self._fail(
                "action", where, text, f"contradicts the RequestState {state!r} of the request"
            )
            return None
        return text

    def _company(self, children, path):
        """The EquipmentID of the Enterprise level of the HierarchyScope (or Location)."""
        for name in ("HierarchyScope", "Location"):
            element, where = self._first(children, name), f"{path}/{name}"
            while element is not None:
                allowed = {"EquipmentID", "EquipmentElementLevel", name, "Any"}
                parts = self._children(element, where, allowed)
                level = self._state(self._first(parts, "EquipmentElementLevel"))
                if level and level.lower() == "enterprise":
                    return self._leaf(parts, "EquipmentID", where, "company") or ""
                element, where = self._first(parts, name), f"{where}/{name}"
        return ""

    def _segment(self, segment, path, operation, top=False):
        children = self._children(segment, path, _REQUIREMENT_CHILDREN, _SCHEDULE_UNSUPPORTED)
        names = {name for name, _child in children}
        if names & {"ProcessSegmentID", "EquipmentRequirement"}:
            operation = self._operation(children, path)
            for index, parameter in enumerate(self._all(children, "ProductionParameter"), 1):
                identifier = parameter.find(".//{*}Parameter/{*}ID")
                self.errors.append(
                    FieldError(
                        f"{path}/ProductionParameter[{index}]",
                        _text(identifier) or MISSING,
                        "is a parameter of an operation, which mes.order/1 cannot carry",
                    )
                )
        else:
            self._parameters(children, path)
            if top:
                for name in ("EarliestStartTime", "LatestEndTime"):
                    element = self._first(children, name)
                    if element is not None:
                        self.segment_times.setdefault(name, (element, f"{path}/{name}"))
        for name, index, child in self._numbered(children, *_MATERIAL_REQUIREMENTS):
            self._material(child, name, f"{path}/{name}[{index}]", operation)
        for index, child in enumerate(self._all(children, "SegmentRequirement"), 1):
            self._segment(child, f"{path}/SegmentRequirement[{index}]", operation)

    def _operation(self, children, path):
        """Append the segment's operation; its sequence, for the components it holds."""
        field = f"operations[{len(self.operations)}]"
        operation = {}
        reported = len(self.errors)
        sequence = self._sequence(children, path)
        if sequence is None and len(self.errors) > reported:
            self.failed.add(f"{field}.sequence")  # out of range, already said
        elif sequence is None:
            name = (
                "ProcessSegmentID"
                if self._first(children, "ProcessSegmentID") is not None
                else "ID"
            )
            text = _text(self._first(children, name))
            self._fail(
                f"{field}.sequence",
                f"{path}/{name}",
                MISSING if text is None else text,
                "is not an operation sequence (an integer), nor is the segment's ID",
            )
        else:
            operation["sequence"] = sequence
            self.origin[f"{field}.sequence"] = f"{path}/ProcessSegmentID"
        name = self._leaf(children, "Description", path, f"{field}.name")
        if name is None:
            name = self._leaf(children, "ProcessSegmentID", path, f"{field}.name")
        if name is None:
            self._fail(f"{field}.name", f"{path}/Description", MISSING, "is missing: the name")
        else:
            operation["name"] = name
        resource = self._resource(children, path, f"{field}.resource")
        if resource is not None:
            operation["resource"] = resource
        operation["duration_minutes"] = 0.0
        duration = self._leaf(children, "Duration", path, f"{field}.duration_minutes")
        if duration is not None:
            minutes = self._minutes(duration, f"{path}/Duration", f"{field}.duration_minutes")
            if minutes is not None:
                operation["duration_minutes"] = minutes
        self.operations.append(operation)
        return sequence

    def _resource(self, children, path, field):
        requirements = self._all(children, "EquipmentRequirement")
        ids = []
        for index, requirement in enumerate(requirements, 1):
            where = f"{path}/EquipmentRequirement[{index}]"
            parts = self._children(requirement, where, _EQUIPMENT_REQUIREMENT_CHILDREN)
            ids.extend((f"{where}/EquipmentID", _text(e)) for e in self._all(parts, "EquipmentID"))
        ids = [(where, text) for where, text in ids if text is not None]
        if not ids:
            where = f"{path}/EquipmentRequirement[1]/EquipmentID"
            self._fail(field, where, MISSING, "is missing: the operation's resource")
            return None
        if len(ids) > 1:
            texts = [text for _where, text in ids]
            self._fail(field, ids[1][0], texts, "names several resources: an operation has one")
            return None
        self.origin[field] = ids[0][0]
        return ids[0][1]

    def _minutes(self, text, path, field):
        try:
            return duration_minutes(text)
        except ValueError as err:
            self._fail(field, path, text, str(err))
            return None

    def _parameters(self, children, path):
        for index, production in enumerate(self._all(children, "ProductionParameter"), 1):
            where = f"{path}/ProductionParameter[{index}]"
            parts = self._children(production, where, _PRODUCTION_PARAMETER_CHILDREN)
            parameter = self._first(parts, "Parameter")
            if parameter is None:
                continue
            where = f"{where}/Parameter"
            items = self._children(parameter, where, _PARAMETER_CHILDREN)
            identifier = _text(self._first(items, "ID"))
            key = identifier.lower() if identifier else None
            if key not in _ORDER_PARAMETERS:
                known = ", ".join(_ORDER_PARAMETERS.values())
                self.errors.append(
                    FieldError(
                        f"{where}/ID",
                        MISSING if identifier is None else identifier,
                        f"is not an order parameter ({known}): mes.order/1 cannot carry it",
                    )
                )
            elif key in self.parameters:
                self.errors.append(FieldError(f"{where}/ID", identifier, "is given twice"))
            else:
                self.parameters[key] = self._value(parameter, where)

    def _material(self, element, name, path, operation):
        children = self._children(
            element, path, _MATERIAL_REQUIREMENT_CHILDREN, _SCHEDULE_UNSUPPORTED
        )
        use = self._use(name, children, path)
        if use == "produced" and self.product is not None:
            code = _text(self._first(children, "MaterialDefinitionID"))
            reason = "is a second produced material: an order makes one product"
            self.errors.append(FieldError(path, code or MISSING, reason))
            return
        # The product's fields are the order's own (quantity, uom), a component's or a
        # by-product's its own.
        if use == "produced":
            field = ""
        elif use == "by-product":
            field = f"byproducts[{len(self.byproducts)}]."
        else:
            field = f"components[{len(self.components)}]."
        material = {"product": self._product(children, path, field)}
        amount = self._quantity(children, path)
        self.origin[f"{field}quantity"] = f"{path}/Quantity/QuantityString"
        self.origin[f"{field}uom"] = f"{path}/Quantity/UnitOfMeasure"
        if amount is None:
            self.failed.update((f"{field}quantity", f"{field}uom"))
        else:
            material["quantity"], material["uom"] = amount
        lots = [
            (f"{path}/MaterialLotID[{number}]", _text(lot))
            for number, lot in enumerate(self._all(children, "MaterialLotID"), 1)
            if _text(lot) is not None
        ]
        for number, sublot in enumerate(self._all(children, "MaterialSubLotID"), 1):
            self.errors.append(
                FieldError(
                    f"{path}/MaterialSubLotID[{number}]",
                    _text(sublot) or MISSING,
                    "names a sublot, which mes.order/1 cannot carry",
                )
            )
        if use == "produced":
            self.origin["finished_lots"] = f"{path}/MaterialLotID"
            for number, (where, _lot) in enumerate(lots):
                self.origin[f"finished_lots[{number}]"] = where
            material["finished_lots"] = [lot for _where, lot in lots]
            self.product = material
        elif use == "consumed":
            for where, lot in lots:
                reason = "is a lot for a component, which mes.order/1 cannot carry"
                self.errors.append(FieldError(where, lot, reason))
            material["operation_sequence"] = operation
            self.components.append(material)
        elif use == "by-product":
            for where, lot in lots:
                reason = "is a lot for a by-product, which mes.order/1 cannot carry"
                self.errors.append(FieldError(where, lot, reason))
            material["operation_sequence"] = operation
            self.byproducts.append(material)

    def _use(self, name, children, path):
        use = self._state(self._first(children, "MaterialUse"))
        letters = re.sub(r"[^a-z]", "", use.lower()) if use else None
        if name == "MaterialProducedRequirement":
            # V0401's produced requirement may say it is a by-product.
            return "by-product" if letters in _BY_PRODUCED else "produced"
        if name == "MaterialConsumedRequirement":
            return "consumed"
        if use is None:
            self.errors.append(
                FieldError(f"{path}/MaterialUse", MISSING, "is missing: consumed or produced?")
            )
            return None
        if letters in _CONSUMED | _PRODUCED:
            return letters
        # V0600: Other with OtherValue "By-product Produced"; V0401: several spellings.
        if letters in _BY_PRODUCED:
            return "by-product"
        self.errors.append(
            FieldError(
                f"{path}/MaterialUse",
                use,
                "is not a material use an order carries (Consumed, Produced, By-product Produced)",
            )
        )
        return None

    def _product(self, children, path, field):
        product = {}
        definitions = self._all(children, "MaterialDefinitionID")
        if len(definitions) > 1:
            self._fail(
                f"{field}product.code",
                f"{path}/MaterialDefinitionID",
                [_text(d) for d in definitions],
                "names several materials: one is expected",
            )
        else:
            code = self._leaf(children, "MaterialDefinitionID", path, f"{field}product.code", True)
            if code is not None:
                product["code"] = code
        product["name"] = self._leaf(children, "Description", path, f"{field}product.name") or ""
        product["tracking"] = "none"
        for name, index, prop in self._numbered(children, *_MATERIAL_PROPERTIES):
            where = f"{path}/{name}[{index}]"
            identifier = _text(prop.find("{*}ID"))
            if identifier is None or identifier.lower() != "tracking":
                self._children(prop, where, _PROPERTY_CHILDREN)
                self.errors.append(
                    FieldError(
                        f"{where}/ID",
                        MISSING if identifier is None else identifier,
                        "is not a material property this reader knows (Tracking): "
                        "mes.order/1 cannot carry it",
                    )
                )
                continue
            text, value_path = self._value(prop, where)
            self.origin[f"{field}product.tracking"] = value_path
            if text is None:
                self._fail(f"{field}product.tracking", value_path, MISSING, "is missing")
            else:
                # "Lot" is lot; anything else is left as written, for the schema to name.
                known = text.lower() in ("none", "lot", "serial")
                product["tracking"] = text.lower() if known else text
        return product


def _is_b2mml(element, name):
    if not isinstance(element.tag, str):
        return False
    qname = etree.QName(element)
    return qname.namespace in B2MML_NAMESPACES and qname.localname == name
