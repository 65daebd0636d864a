"""Hostile input: whatever comes in, the validation and the B2MML readers answer with
field errors (or a clean result), and what they accept can be stored and answered.

Property-based (hypothesis) for JSON values and bodies; seeded random mutations of
valid documents for B2MML, so a failure can be replayed.
"""

import json
import math
import random
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from orders import order_document

from mes_connector import MessageValidationError
from mes_connector.b2mml import (
    NS_V0401,
    NS_V0600,
    order_to_production_schedule,
    production_performance_to_events,
    production_schedule_to_order,
)
from mes_connector.validation import FieldError, decode_json_body, validation_errors

EVENT = {
    "schema": "mes.event/1",
    "event_id": "MES-000001-E0001",
    "event_type": "operation_completed",
    "order_ref": "WH/MO/00001",
    "sequence": 1,
    "occurred_at": "2026-01-31T08:00:00Z",
    "data": {"operation": 10, "good_quantity": 5, "uom": "Units", "run_minutes": 30.5},
}
SCHEMAS = ("event.v1.json", "order.v1.json")
# Generating nested values is slow: no deadline, so a slow example is no failure; no
# example database left in the repository.
_SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that broke storage or encoding before, mixed into any other character.
_NASTY = st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\ufffe", "\x7f", "\u2028", "é"])
_TEXT = st.text(st.one_of(st.characters(), _NASTY), max_size=20)
_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([2**31, 2**31 - 1, -(2**31) - 1, 10**12, 0, -1]),
    st.integers(5000, 5001).map(lambda digits: 10**digits),  # too long for str()
    st.floats(),  # NaN and infinities included
)
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXT)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_TEXT, inner, max_size=5)),
    max_leaves=12,
)
_DATETIMES = st.one_of(
    _TEXT,
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59.999999-23:59",
            "0001-01-01T00:00:00+23:59",
            "1970-01-01T00:00:00Z",
            "2026-01-31T08:00:00+14:00",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
)
_FIELDS = (
    *EVENT,
    "mes_order_id",
    "data.operation",
    "data.good_quantity",
    "data.reject_quantity",
    "data.setup_minutes",
    "data.run_minutes",
    "data.started_at",
    "data.ended_at",
    "data.worker",
    "data.resource",
    "data.serials",
    "data.unknown",
)


def _strings(value):
    """Every string and field name in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _assert_answerable(errors):
    """What an intake does with field errors: store their text, answer their dicts."""
    for error in errors:
        assert isinstance(error, FieldError)
        assert len(error.field) <= 200
        text = str(error)
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate
        answer = json.dumps(error.as_dict(), allow_nan=False, ensure_ascii=False)
        assert "\x00" not in answer
        answer.encode("utf-8")


def _assert_storable(value):
    """What an intake does with an accepted value: store it as JSON text, in UTF-8."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert not any("\x00" in string for string in _strings(value))


def _assert_valid_event_is_safe(event):
    _assert_storable(event)
    datetime.fromisoformat(event["occurred_at"]).astimezone(UTC)
    data = event["data"]
    for key in ("started_at", "ended_at"):
        if key in data:
            datetime.fromisoformat(data[key]).astimezone(UTC)
    for key in ("operation", "sequence"):
        number = data.get(key, event.get(key))
        assert number is None or -(2**31) <= number < 2**31


def _set(event, field, value):
    event = json.loads(json.dumps(EVENT))
    if field.startswith("data."):
        event["data"][field[5:]] = value
    else:
        event[field] = value
    return event


# ---------------------------------------------------------------------------
# validation_errors
# ---------------------------------------------------------------------------


@_SETTINGS
@given(_JSON)
def test_validation_of_any_json_value_gives_field_errors(value):
    for schema in SCHEMAS:
        _assert_answerable(validation_errors(value, schema))


@_SETTINGS
@given(st.sampled_from(_FIELDS), st.one_of(_JSON, _DATETIMES))
def test_any_value_in_any_field_of_an_event_gives_field_errors_or_a_safe_event(field, value):
    event = _set(EVENT, field, value)
    errors = validation_errors(event, "event.v1.json")
    _assert_answerable(errors)
    if not errors:
        _assert_valid_event_is_safe(event)


@_SETTINGS
@given(st.dictionaries(_TEXT, _JSON, max_size=4), st.sampled_from(["order_completed", "nope"]))
def test_any_data_gives_field_errors_or_a_safe_event(data, event_type):
    event = dict(EVENT, event_type=event_type, data=data)
    errors = validation_errors(event, "event.v1.json")
    _assert_answerable(errors)
    if not errors:
        _assert_valid_event_is_safe(event)


@_SETTINGS
@given(_DATETIMES)
def test_any_date_time_is_accepted_only_if_it_converts_to_utc(value):
    event = _set(EVENT, "occurred_at", value)
    errors = validation_errors(event, "event.v1.json")
    _assert_answerable(errors)
    if not errors:
        moment = datetime.fromisoformat(value).astimezone(UTC)
        assert datetime(1970, 1, 1, tzinfo=UTC) <= moment < datetime(9999, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------
# decode_json_body
# ---------------------------------------------------------------------------


def _decoded_or_refused(body):
    try:
        value = decode_json_body(body)
    except MessageValidationError as err:
        assert err.errors
        _assert_answerable(err.errors)
        return None
    _assert_storable(value)
    return value


@_SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_are_refused_with_field_errors(body):
    _decoded_or_refused(body)
    _left_to_validation(body)


@_SETTINGS
@given(_JSON)
# Two lone surrogates side by side are written as a pair of escapes, which JSON reads
# as one character (U+103FF): found by this test in CI.
@example({"\ud800\udfff": None})
def test_any_json_text_decodes_to_a_storable_value_or_is_refused(value):
    try:
        text = json.dumps(value)  # NaN, Infinity and "\ud800" escapes included
    except ValueError:
        return  # an integer too long to write
    decoded = _decoded_or_refused(text.encode())
    if decoded is not None:
        # Integers of more than 300 digits are read as floats: otherwise nothing changes.
        if all(abs(number) < 10**300 for number in _numbers(value)):
            assert decoded == json.loads(text)
        for event in decoded if isinstance(decoded, list) else [decoded]:
            _assert_answerable(validation_errors(event, "event.v1.json"))
    _left_to_validation(text.encode())


def _left_to_validation(body):
    """decode_json_body(check_values=False): what it lets through, validation refuses."""
    try:
        value = decode_json_body(body, check_values=False)
    except MessageValidationError as err:
        _assert_answerable(err.errors)
        return
    for event in value if isinstance(value, list) else [value]:
        errors = validation_errors(event, "event.v1.json")
        _assert_answerable(errors)
        if not errors:
            _assert_valid_event_is_safe(event)


def _numbers(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


_BODY = json.dumps({"events": [EVENT, dict(EVENT, event_id="E2", data={"operation": 20})]})
_SNIPPETS = [
    "\\u0000",
    "\\ud800",
    "\x00",
    "NaN",
    "-Infinity",
    "1e400",
    "9" * 400,
    "[" * 70,
    "{",
    '"',
    "\\",
    "é",
    "\ufeff",
]


@_SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(_BODY)), st.sampled_from(_SNIPPETS)), max_size=4))
def test_mutated_batches_decode_or_are_refused(edits):
    text = _BODY
    for position, snippet in edits:
        text = text[:position] + snippet + text[position:]
    _left_to_validation(text.encode("utf-8", "surrogatepass"))
    decoded = _decoded_or_refused(text.encode("utf-8", "surrogatepass"))
    if isinstance(decoded, dict) and isinstance(decoded.get("events"), list):
        for event in decoded["events"]:
            errors = validation_errors(event, "event.v1.json")
            _assert_answerable(errors)
            if not errors:
                _assert_valid_event_is_safe(event)


@_SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_every_accepted_number_is_finite(number):
    text = json.dumps({"quantity": number})
    decoded = _decoded_or_refused(text.encode())
    if decoded is not None:
        value = decoded["quantity"]
        assert math.isfinite(value)


# ---------------------------------------------------------------------------
# B2MML readers: random mutations of valid documents
# ---------------------------------------------------------------------------


def _performance_document(ns, doc_id="<ID>PP-1</ID>"):
    material = (
        "<MaterialActual><MaterialDefinitionID>STEEL</MaterialDefinitionID>"
        "<MaterialLotID>L-1</MaterialLotID><MaterialUse>Consumed</MaterialUse>"
        "<Quantity><QuantityString>12.5</QuantityString><UnitOfMeasure>KG</UnitOfMeasure>"
        "</Quantity></MaterialActual>"
    )
    produced = material.replace("STEEL", "FG").replace("Consumed", "Produced")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ProductionPerformance xmlns="{ns}">'
        f"{doc_id}<PublishedDate>2026-01-31T12:00:00Z</PublishedDate>"
        "<ProductionResponse><ID>MES-1</ID><ProductionRequestID>WH/MO/00001</ProductionRequestID>"
        "<EndTime>2026-01-31T11:30:00+01:00</EndTime>"
        "<SegmentResponse><ID>SR-10</ID><ProcessSegmentID>10</ProcessSegmentID>"
        "<ActualStartTime>2026-01-31T08:00:00Z</ActualStartTime>"
        "<ActualEndTime>2026-01-31T09:30:00Z</ActualEndTime>"
        "<PersonnelActual><PersonID>ANN</PersonID></PersonnelActual>"
        "<EquipmentActual><EquipmentID>WC-CUT</EquipmentID></EquipmentActual>"
        f"{material}{produced}<SegmentState>Completed</SegmentState></SegmentResponse>"
        "<SegmentResponse><ProcessSegmentID>20</ProcessSegmentID>"
        f"{material}<SegmentState>Running</SegmentState></SegmentResponse>"
        "<ResponseState>Completed</ResponseState></ProductionResponse></ProductionPerformance>"
    ).encode()


PERFORMANCES = [_performance_document(NS_V0600), _performance_document(NS_V0401, doc_id="")]
SCHEDULES = [order_to_production_schedule(order_document())]
# What hostile senders put in documents: markup, entities, encodings, values out of range.
XML_SNIPPETS = [
    b"<",
    b"&",
    b"&amp;",
    b"]]>",
    b"<![CDATA[9]]>",
    b"<!-- x -->",
    b"<?pi x?>",
    b"\x00",
    b"\xff\xfe",
    "é😀".encode(),
    b' xmlns="urn:x"',
    b' xmlns:x="relative"',
    b' a="' + b"x" * 100_000 + b'"',
    b"<x/>",
    b"<Foo>1</Foo>",
    b'<?xml version="1.0" encoding="UTF-16"?>',
    b"9" * 30,
    b"2147483648",
    b"-",
    b"1e400",
    b"NaN",
    b"sNaN",
    b"0001-01-01T00:00:00+01:00",
    b"9999-12-31T23:59:59-01:00",
    b"P99999999999999999Y",
    b"PT999999999999999999H",
    b"<SegmentResponse><ID>7</ID>",
    b"</SegmentResponse>",
]


def _mutate(rng, document):
    data = bytearray(document)
    for _edit in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(data) + 1)
        if choice < 0.25 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.55:
            data[position:position] = rng.choice(XML_SNIPPETS)
        elif choice < 0.65:
            del data[position : position + rng.randint(1, 40)]
        elif choice < 0.75:
            del data[position:]  # truncated
        elif choice < 0.9:
            start = data.find(b">", position) + 1
            end = data.find(b"<", start)
            if 0 < start < end:
                data[start:end] = rng.choice(XML_SNIPPETS)  # a hostile value
        else:
            data[position:position] = data[position : position + rng.randint(1, 400)]
    return bytes(data)


def _read(reader, document):
    try:
        result = reader(document)
    except MessageValidationError as err:
        assert err.errors
        _assert_answerable(err.errors)
        return None
    return result


@pytest.mark.parametrize("seed", range(4))
def test_mutated_performances_give_field_errors_or_valid_events(seed):
    rng = random.Random(seed)
    for _round in range(400):
        events = _read(production_performance_to_events, _mutate(rng, rng.choice(PERFORMANCES)))
        for event in events or ():
            assert validation_errors(event, "event.v1.json") == [], event
            _assert_valid_event_is_safe(event)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_schedules_give_field_errors_or_valid_orders(seed):
    rng = random.Random(seed)
    for _round in range(400):
        order = _read(production_schedule_to_order, _mutate(rng, rng.choice(SCHEDULES)))
        if order is not None:
            assert validation_errors(order, "order.v1.json") == []
            _assert_storable(order)


_XML_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00").filter(
        lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")
    ),
    max_size=40,
)
_VALUE_PATHS = [
    "b:ProductionResponse/b:SegmentResponse[1]/b:ProcessSegmentID",
    "b:ProductionResponse/b:SegmentResponse[1]/b:ID",
    "b:ProductionResponse/b:SegmentResponse[1]/b:ActualEndTime",
    "b:ProductionResponse/b:SegmentResponse[1]/b:MaterialActual[1]/b:Quantity/b:QuantityString",
    "b:ProductionResponse/b:EndTime",
    "b:PublishedDate",
    "b:ID",
    "b:ProductionResponse/b:ProductionRequestID",
]


@_SETTINGS
@given(
    st.sampled_from(_VALUE_PATHS),
    st.one_of(
        _XML_TEXT,
        st.sampled_from(
            ["123456789012345678", "2147483648", "1e13", "0001-01-01T00:00:00+01:00", "-0", "٣"]
        ),
    ),
)
def test_any_text_in_a_value_gives_field_errors_or_valid_events(path, text):
    root = etree.fromstring(PERFORMANCES[0])
    root.xpath(path, namespaces={"b": NS_V0600})[0].text = text
    events = _read(production_performance_to_events, etree.tostring(root))
    for event in events or ():
        assert validation_errors(event, "event.v1.json") == [], event
        _assert_valid_event_is_safe(event)
