"""B2MML (ISA-95 / IEC 62264 XML) for MES that speak it instead of our JSON.

Two translations, both pure functions:

- :func:`order_to_production_schedule`: one order revision (``mes.order/1``) as a
  B2MML V0600 ``ProductionSchedule`` that validates against the official XSD.
- :func:`production_performance_to_events`: a B2MML ``ProductionPerformance``
  (V0401, V0500 or V0600) as ``mes.event/1`` events, parsed without ever loading a
  DTD or expanding an entity.

"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International."
"""

import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from .exceptions import MessageValidationError
from .messages import EVENT_SCHEMA
from .validation import MISSING, FieldError, validate_order, validation_errors

NS_V0401 = "http://www.wbf.org/xml/B2MML-V0401"
NS_V0500 = "http://www.mesa.org/xml/B2MML-V0500"
NS_V0600 = "http://www.mesa.org/xml/B2MML-V0600"
B2MML_NAMESPACES = (NS_V0401, NS_V0500, NS_V0600)
DEFAULT_MAX_BYTES = 5 * 1024 * 1024

# Encodings in which the raw bytes are searched for DTD declarations ("utf-8" also
# covers ASCII and the ISO 8859 family).
_SCANNED_ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
# Characters XML 1.0 cannot carry at all (not even escaped): lxml would refuse them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EVENT_ID_CHARS = re.compile(r"[^A-Za-z0-9._:/-]")
_INTEGER = re.compile(r"[+-]?\d+")
# xs:dateTime; fromisoformat alone would also take dates without a time.
_XS_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?", re.IGNORECASE
)
_CODE_MAX = 64  # product, lot, resource and order codes of mes.event/1
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
    production parameters, the product as the ``Produced`` material and the
    components without an operation as ``Consumed`` materials; it contains one
    ``SegmentRequirement`` per operation (ID and ProcessSegmentID = sequence,
    equipment = resource, duration, the operation's components).
    """
    validate_order(order)
    errors = list(_unwritable_texts(order, ""))
    operations = order.get("operations") or []
    sequences = {operation["sequence"] for operation in operations}
    for index, component in enumerate(order.get("components") or []):
        sequence = component.get("operation_sequence")
        if sequence is not None and sequence not in sequences:
            errors.append(
                FieldError(
                    f"components[{index}].operation_sequence",
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
    _material(segment, order["product"], order["quantity"], order["uom"], "Produced")
    components = order.get("components") or []
    for component in components:
        if component.get("operation_sequence") is None:
            _component(segment, component)
    # Two operations may share a sequence (Odoo allows it): the first one gets the
    # components of that sequence.
    operations = order.get("operations") or []
    first_of = {}
    for index, operation in enumerate(operations):
        first_of.setdefault(operation["sequence"], index)
    for index, operation in enumerate(operations):
        own = [
            c
            for c in components
            if c.get("operation_sequence") is not None
            and first_of[c["operation_sequence"]] == index
        ]
        _operation_segment(segment, operation, own)


def _operation_segment(parent, operation, components):
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
    return segment


def _component(segment, component):
    _material(segment, component["product"], component["quantity"], component["uom"], "Consumed")


def _material(segment, product, quantity, uom, use):
    requirement = _add(segment, "MaterialRequirement")
    _add(requirement, "MaterialDefinitionID", product["code"])
    if product.get("name"):
        _add(requirement, "Description", product["name"])
    _add(requirement, "MaterialUse", use)
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
_MATERIAL_CHILDREN = {
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
    "MaterialActualProperty",
    "MaterialProducedActualProperty",
    "MaterialConsumedActualProperty",
    "RequiredByRequestedSegmentResponse",
    "Any",
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


def production_performance_to_events(xml, *, max_bytes=DEFAULT_MAX_BYTES, first_sequence=1):
    """The ``mes.event/1`` events a B2MML ``ProductionPerformance`` document reports.

    ``xml`` is the document as bytes, in the V0401, V0500 or V0600 namespace. It is
    refused (:class:`MessageValidationError`) when larger than ``max_bytes``, when it
    declares a DOCTYPE or entities (nothing is loaded or expanded), when it is not
    well-formed, or when its content is unknown or cannot be mapped; every
    :class:`FieldError` names the XML path (``ProductionResponse[1]/SegmentResponse[2]/
    MaterialActual[1]/Quantity/QuantityString``) and the value.

    Per ``ProductionResponse`` (``ProductionRequestID`` is the ``order_ref``, its ``ID``
    the ``mes_order_id``), in document order: each material actual of a segment as
    ``material_consumed`` (Consumed) or ``output_produced`` (Produced, By-product
    Produced), then its nested segments, then the segment itself as
    ``operation_completed``, or ``operation_progress`` while it runs, when its
    ProcessSegmentID or ID is a number (the operation's sequence); last an
    ``order_completed`` when the response's state is Completed. Material actuals with
    a zero quantity report nothing and are skipped.

    Event ids are the document's ID (a hash of the document without one) and the
    element's position, so a redelivered document gives the same ids; sequences
    count from ``first_sequence`` in document order. ``occurred_at`` is the
    segment's ActualEndTime, else the response's EndTime, else the document's
    PublishedDate (UTC when the time has no zone).
    """
    if type(first_sequence) is not int or first_sequence < 0:
        raise ValueError(f"first_sequence must be an integer of 0 or more, got {first_sequence!r}")
    root = _parse(xml, max_bytes)
    return _Reader(root, first_sequence).read()


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


class _Reader:
    def __init__(self, root, first_sequence):
        self.root = root
        self.errors = []
        self.events = []
        self.sequence = first_sequence
        self.prefix = None
        self.published = None

    def read(self):
        root = self.root
        qname = etree.QName(root)
        if qname.namespace not in B2MML_NAMESPACES or qname.localname != "ProductionPerformance":
            raise _invalid(
                "(root)",
                root.tag,
                "is not a ProductionPerformance of B2MML V0401, V0500 or V0600",
            )
        children = self._children(root, "", _PERFORMANCE_CHILDREN)
        self.prefix = self._id_prefix(_text(self._first(children, "ID")))
        self.published = self._datetime(self._first(children, "PublishedDate"), "PublishedDate")
        for _name, index, response in self._numbered(children, "ProductionResponse"):
            self._response(response, f"ProductionResponse[{index}]", f"R{index}")
        if self.errors:
            raise MessageValidationError(self.errors)
        return self.events

    # Structure

    def _children(self, element, path, allowed):
        """B2MML children as (name, element); unknown names are errors, extensions skipped."""
        out = []
        for child in element:
            if not isinstance(child.tag, str):
                continue
            name = _local(child)
            where = f"{path}/{name}" if path else name
            namespace = etree.QName(child).namespace
            if namespace and namespace not in B2MML_NAMESPACES:
                continue  # an extension ("Extended:" or a vendor's): not ours to judge
            if name in _UNSUPPORTED:
                self.errors.append(FieldError(where, MISSING, _UNSUPPORTED[name]))
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

    def _id_prefix(self, document_id):
        if document_id is None:
            # Same content, same ids: a redelivery of the document is recognised.
            canonical = etree.tostring(self.root, method="c14n")
            return "b2mml-" + hashlib.sha256(canonical).hexdigest()[:24]
        clean = _EVENT_ID_CHARS.sub("-", document_id)
        if clean != document_id or len(clean) > 64:
            # Keep ids readable but tell apart documents whose IDs only differ there.
            digest = hashlib.sha256(document_id.encode()).hexdigest()[:12]
            clean = f"{clean[:48]}-{digest}"
        return clean

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
                return value if value.tzinfo else value.replace(tzinfo=UTC)
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
        if uom is None:
            return None
        return float(number), uom

    @staticmethod
    def _state(element):
        text = _text(element)
        if text == "Other":
            text = (element.get("OtherValue") or "").strip() or text
        return text

    @staticmethod
    def _sequence(children):
        for name in ("ProcessSegmentID", "ID"):
            text = _text(_Reader._first(children, name))
            if text is not None and _INTEGER.fullmatch(text):
                return int(text)
        return None

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
        order_ref = self._code(
            self._first(children, "ProductionRequestID"), f"{path}/ProductionRequestID"
        )
        mes_order_id = self._code(self._first(children, "ID"), f"{path}/ID", required=False)
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
            "order_ref": order_ref or "-",
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

    def _segment(self, segment, path, key, context, operation, when):
        children = self._children(segment, path, _SEGMENT_CHILDREN)
        sequence = self._sequence(children)
        if sequence is not None:
            operation = sequence
        started = self._leaf_datetime(children, path, "ActualStartTime")
        ended = self._leaf_datetime(children, path, "ActualEndTime")
        when = ended or when
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
        equipment = self._first(children, "EquipmentActual")
        if equipment is not None:
            resource = self._code(
                equipment.find("{*}EquipmentID"), f"{path}/EquipmentActual[1]/EquipmentID"
            )
            if resource:
                data["resource"] = resource
        person = self._first(children, "PersonnelActual")
        if person is not None:
            worker = self._code(
                person.find("{*}PersonID"),
                f"{path}/PersonnelActual[1]/PersonID",
                _TEXT_MAX,
                required=False,
            )
            if worker:
                data["worker"] = worker
        if produced:
            units = {material["uom"] for material in produced}
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
        event_type = self._segment_event_type(children, path, ended, context)
        if event_type:
            self._emit(context, event_type, key, data, path, when)

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
                "is not a material use this reader maps (Consumed, Produced, By-product Produced)",
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
        if quantity == 0:
            return None  # nothing moved: an event would be refused for its quantity
        event_type = "material_consumed" if kind == "consumed" else "output_produced"
        self._emit(context, event_type, key, data, path, when)
        return kind, data
