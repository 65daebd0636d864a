"""Event and order validation: errors name the field, the value and what was expected."""

import copy
import functools
import json
import math
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mes_connector import (
    EVENT_SCHEMA,
    Event,
    FieldError,
    MessageValidationError,
    OrderExport,
    parse_event,
    validate_event,
    validate_order,
    validation,
)
from mes_connector.messages import Component, Operation, Product
from mes_connector.validation import MISSING, decode_json_body, validation_errors


def _event(**overrides):
    event = {
        "schema": "mes.event/1",
        "event_id": "MES-000001-E0001",
        "event_type": "order_completed",
        "order_ref": "WH/MO/00001",
        "mes_order_id": "MES-000001",
        "sequence": 1,
        "occurred_at": "2026-01-31T08:00:00Z",
        "data": {"quantity": 5, "uom": "Units", "operator": "Ann"},
    }
    event.update(overrides)
    return event


def _errors(message, validate=validate_event):
    with pytest.raises(MessageValidationError) as info:
        validate(message)
    return info.value


def _messages(error):
    return [str(e) for e in error.errors]


def test_valid_event_is_returned_unchanged():
    event = _event()
    original = copy.deepcopy(event)
    assert validate_event(event) is event
    assert event == original


def test_validation_error_is_a_value_error():
    # callers that only know ValueError still catch bad messages
    assert isinstance(_errors(_event(event_type="nope")), ValueError)


def test_missing_field_is_named():
    event = _event()
    del event["data"]["uom"]
    error = _errors(event)
    assert _messages(error) == ["data.uom: is missing (needed with data.quantity)"]
    assert str(error) == "data.uom: is missing (needed with data.quantity)"
    assert error.errors[0].as_dict() == {
        "field": "data.uom",
        "reason": "is missing (needed with data.quantity)",
    }


def test_every_missing_field_is_named_in_field_order():
    event = _event()
    del event["order_ref"]
    del event["mes_order_id"]
    del event["event_id"]
    assert _messages(_errors(event)) == ["event_id: is missing", "order_ref: is missing"]


def test_an_event_may_name_its_order_by_the_mes_order_id_alone():
    event = _event()
    del event["order_ref"]
    validate_event(event)
    del event["mes_order_id"]
    assert _messages(_errors(event)) == ["order_ref: is missing"]


def test_wrong_type_names_field_value_and_type():
    error = _errors(_event(data={"quantity": "5", "uom": "Units"}))
    assert _messages(error) == ['data.quantity: "5" is not of type number']
    assert error.errors[0] == FieldError("data.quantity", "5", "is not of type number")


def test_boolean_is_not_a_number():
    assert _messages(_errors(_event(data={"quantity": True, "uom": "Units"}))) == [
        "data.quantity: true is not of type number"
    ]


@pytest.mark.parametrize("quantity", [-1, 0])
def test_quantity_must_be_positive(quantity):
    error = _errors(_event(data={"quantity": quantity, "uom": "Units"}))
    assert _messages(error) == [f"data.quantity: {quantity} must be greater than 0"]
    assert error.errors[0].as_dict() == {
        "field": "data.quantity",
        "value": quantity,
        "reason": "must be greater than 0",
    }


def test_unknown_event_type_is_named():
    (message,) = _messages(_errors(_event(event_type="order_teleported")))
    assert message.startswith('event_type: "order_teleported" is not one of "order_started",')
    assert '"downtime_ended"' in message


@pytest.mark.parametrize(
    "value", ["2026-01-31T08:00:00", "2026-01-31", "yesterday", "2026-01-31T08:00:00+25:00"]
)
def test_date_time_needs_a_time_zone(value):
    error = _errors(_event(occurred_at=value))
    assert len(error.errors) == 1
    assert error.errors[0].field == "occurred_at"
    assert error.errors[0].value == value
    assert str(error).startswith(f'occurred_at: "{value}" is not a date-time with time zone')


@pytest.mark.parametrize(
    "value", ["2026-01-31T08:00:00Z", "2026-01-31T08:00:00+00:00", "2026-01-31T09:30:00.5+01:30"]
)
def test_date_time_with_time_zone_is_accepted(value):
    validate_event(_event(occurred_at=value))


def test_date_time_of_wrong_type():
    assert _messages(_errors(_event(occurred_at=20260131))) == [
        "occurred_at: 20260131 is not of type string"
    ]


def test_extra_field_is_named_top_level_and_in_data():
    event = _event(colour="red")
    event["data"]["scrap"] = 2
    assert _messages(_errors(event)) == [
        'colour: "red" is not an expected field',
        "data.scrap: 2 is not an expected field",
    ]


@pytest.mark.parametrize(
    ("message", "shown"),
    [([1, 2], "[1, 2]"), ("event", '"event"'), (None, "null"), (42, "42")],
)
def test_non_dict_message(message, shown):
    error = _errors(message)
    assert _messages(error) == [f"(message): {shown} is not a JSON object"]


def test_wrong_schema_id_is_named():
    assert _messages(_errors(_event(schema="mes.event/2"))) == [
        'schema: "mes.event/2" is not "mes.event/1"'
    ]


def test_several_problems_are_all_reported():
    event = _event(event_id="bad id", order_ref="", sequence=-1)
    event["data"] = {"quantity": -3}
    assert _messages(_errors(event)) == [
        "data.quantity: -3 must be greater than 0",
        "data.uom: is missing (needed with data.quantity)",
        'event_id: "bad id" must match ^[A-Za-z0-9._:/-]+$',
        'order_ref: "" must not be empty',
        "sequence: -1 must be 0 or more",
    ]


def test_long_values_are_shortened_in_the_text():
    error = _errors(_event(order_ref="x" * 200))
    text = str(error)
    assert text.startswith("order_ref: ")
    assert "x" * 200 not in text
    assert "..." in text
    assert error.errors[0].value == "x" * 200  # the full value stays available


def test_parse_event_returns_event_with_aware_datetime():
    event = parse_event(_event(occurred_at="2026-01-31T09:00:00+01:00"))
    assert isinstance(event, Event)
    assert event.occurred_at.tzinfo is not None
    assert event.occurred_at.utcoffset() == timedelta(hours=1)
    assert event.occurred_at == datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    assert event.event_id == "MES-000001-E0001"
    assert event.event_type == "order_completed"
    assert event.order_ref == "WH/MO/00001"
    assert event.mes_order_id == "MES-000001"
    assert event.sequence == 1
    assert event.data == {"quantity": 5, "uom": "Units", "operator": "Ann"}


def test_parse_event_z_suffix_is_utc():
    assert parse_event(_event()).occurred_at == datetime(2026, 1, 31, 8, 0, tzinfo=UTC)


def test_parse_event_rejects_invalid_event():
    with pytest.raises(MessageValidationError, match=r"data\.uom: is missing"):
        parse_event(_event(data={"quantity": 1}))


def test_parse_event_optional_fields_default_to_none():
    message = _event()
    del message["sequence"]
    del message["mes_order_id"]
    event = parse_event(message)
    assert event.sequence is None
    assert event.mes_order_id is None
    assert "sequence" not in event.to_dict()
    assert "mes_order_id" not in event.to_dict()


def test_event_to_dict_round_trips_through_validation():
    event = Event(
        event_id="MES-000007-E0002",
        event_type="order_completed",
        order_ref="WH/MO/00007",
        occurred_at=datetime(2026, 2, 1, 14, 30, tzinfo=timezone(timedelta(hours=-5))),
        data={"quantity": 2.5, "uom": "kg"},
        sequence=2,
        mes_order_id="MES-000007",
    )
    message = event.to_dict()
    assert message["schema"] == EVENT_SCHEMA
    assert validate_event(message) is message
    assert parse_event(message) == event


def _order():
    return OrderExport(
        order_id="WH/MO/00042",
        revision=3,
        action="change",
        product=Product(code="FG-TABLE", name="Table", tracking="serial"),
        quantity=4,
        uom="Units",
        planned_start=datetime(2026, 3, 1, 7, 0, tzinfo=UTC),
        planned_end=datetime(2026, 3, 1, 15, 0, tzinfo=UTC),
        priority=1,
        origin="SO042",
        company="YourCompany",
        components=(
            Component(Product(code="C-LEG", name="Leg"), 16, "Units", operation_sequence=10),
            Component(Product(code="C-TOP"), 4, "Units"),
        ),
        operations=(
            Operation(10, "Assembly", "WC-ASM", 45.0),
            Operation(20, "Painting", "WC-PAINT"),
        ),
    )


def test_order_export_with_components_and_operations_validates():
    message = _order().to_dict()
    assert validate_order(message) is message
    assert message["schema"] == "mes.order/1"
    assert message["planned_start"] == "2026-03-01T07:00:00+00:00"
    assert message["components"][0] == {
        "product": {"code": "C-LEG", "name": "Leg", "tracking": "none"},
        "quantity": 16,
        "uom": "Units",
        "operation_sequence": 10,
    }
    assert message["operations"][1] == {
        "sequence": 20,
        "name": "Painting",
        "resource": "WC-PAINT",
        "duration_minutes": 0.0,
    }


def test_minimal_order_export_validates():
    message = OrderExport(
        order_id="WH/MO/00001", revision=1, product=Product("FG"), quantity=1, uom="Units"
    ).to_dict()
    validate_order(message)
    assert message["components"] == []
    assert message["planned_start"] is None


def test_order_errors_name_nested_fields():
    message = _order().to_dict()
    message["components"][1]["quantity"] = -1
    message["operations"][0]["resource"] = ""
    message["product"]["tracking"] = "batch"
    message["revision"] = 0
    assert _messages(_errors(message, validate_order)) == [
        "components[1].quantity: -1 must be 0 or more",
        'operations[0].resource: "" must not be empty',
        'product.tracking: "batch" is not one of "none", "lot", "serial"',
        "revision: 0 must be 1 or more",
    ]


def test_order_with_naive_planned_start_is_rejected():
    message = _order().to_dict()
    message["planned_start"] = "2026-03-01T07:00:00"
    error = _errors(message, validate_order)
    assert [e.field for e in error.errors] == ["planned_start"]


def test_order_missing_fields_and_unknown_action():
    message = _order().to_dict()
    del message["uom"]
    del message["product"]["code"]
    message["action"] = "delete"
    assert _messages(_errors(message, validate_order)) == [
        'action: "delete" is not one of "create", "change", "cancel"',
        "product.code: is missing",
        "uom: is missing",
    ]


def test_event_is_not_an_order():
    error = _errors(_event(), validate_order)
    fields = {e.field for e in error.errors}
    assert {"order_id", "revision", "product", "quantity", "uom", "event_id"} <= fields


# ---------------------------------------------------------------------------
# Request bodies: decode_json_body
# ---------------------------------------------------------------------------


def _body_errors(body):
    with pytest.raises(MessageValidationError) as info:
        decode_json_body(body)
    return info.value.errors


def _body_error(body):
    (error,) = _body_errors(body)
    return error


def test_a_body_decodes_to_its_json_value():
    assert decode_json_body(b'{"events": [{"a": 1.5, "b": [true, null]}]}') == {
        "events": [{"a": 1.5, "b": [True, None]}]
    }
    assert decode_json_body(bytearray(b"[1, 2]")) == [1, 2]
    # A UTF-8 byte order mark is skipped; a surrogate pair is one character.
    assert decode_json_body(b'\xef\xbb\xbf{"name": "\\ud83d\\ude00 \xc3\xa9"}') == {
        "name": "\U0001f600 é"
    }


@pytest.mark.parametrize("body", [b"", b" \r\n\t ", b"\xef\xbb\xbf"])
def test_an_empty_body_is_refused(body):
    error = _body_error(body)
    assert (error.field, error.value) == ("(body)", MISSING)
    assert error.reason.startswith("is empty")


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("utf-16", "UTF-16"),
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32", "UTF-32"),
        ("utf-32-le", "UTF-32"),
    ],
)
def test_utf16_and_utf32_bodies_are_refused(encoding, name):
    error = _body_error('{"event_id": "E1"}'.encode(encoding))
    assert error.field == "(body)"
    assert error.reason == f"is encoded in {name}, not UTF-8: JSON must be sent as UTF-8"


@pytest.mark.parametrize(
    ("body", "byte", "offset"),
    [
        (b'{"a": "\xff"}', "0xff", 7),
        (b'\xef\xbb\xbf{"a":"\xc3"}', "0xc3", 9),  # the offset counts the BOM too
        (b'"\xed\xa0\x80"', "0xed", 1),  # a surrogate written as UTF-8 is not UTF-8
        (b'["caf\xe9"]', "0xe9", 5),  # Latin-1
    ],
)
def test_bytes_that_are_not_utf8_are_named_by_their_offset(body, byte, offset):
    error = _body_error(body)
    assert error.field == "(body)"
    assert error.reason == f"is not UTF-8: byte {byte} at offset {offset} is not valid UTF-8"


def test_json_syntax_errors_name_line_and_column():
    error = _body_error(b'{\n  "a": 1,\n  "b": }')
    assert error.field == "(body)"
    assert error.reason == "is not valid JSON: Expecting value at line 3, column 8 (character 19)"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5000])
def test_numbers_that_are_not_finite_are_named_by_their_path(literal):
    body = f'{{"events": [{{}}, {{"data": {{"quantity": {literal}}}}}]}}'.encode()
    error = _body_error(body)
    assert error.field == "events[1].data.quantity"
    assert error.reason.startswith("is not a finite number")
    assert json.dumps(error.as_dict(), allow_nan=False)


def test_large_finite_numbers_are_left_to_the_schema():
    assert decode_json_body(b"[1e308, 123456789012345678901234567890]") == [
        1e308,
        123456789012345678901234567890,
    ]


@pytest.mark.parametrize(
    ("body", "field", "what"),
    [
        (b'{"events": [{}, {}, {}, {"order_ref": "A\\u0000B"}]}', "events[3].order_ref", "NUL"),
        (b'{"events": [{"order_ref": "A\x00B"}]}', "events[0].order_ref", "NUL"),  # raw
        (b'{"data": {"lot\\u0000": 1}}', "data.lot\\u0000", "NUL"),  # in a field name
        (b'{"events": [{"data": {"lot": "\\ud800"}}]}', "events[0].data.lot", "surrogate"),
        (b'{"x": ["ok", "\\udfff tail"]}', "x[1]", "surrogate"),
        (b'{"\\ud83d": true}', "\\ud83d", "surrogate"),
        (b'"\\u0000"', "(body)", "NUL"),
    ],
)
def test_nul_and_lone_surrogates_are_named_by_their_path(body, field, what):
    error = _body_error(body)
    assert error.field == field
    assert what in error.reason
    assert "\x00" not in str(error)
    str(error).encode("utf-8")  # printable: escaped


def test_nesting_up_to_the_limit_is_read_deeper_is_refused():
    assert validation.MAX_DEPTH == 64
    nested = b"[" * 64 + b"]" * 64
    assert decode_json_body(nested) == functools.reduce(lambda inner, _: [inner], range(63), [])
    error = _body_error(b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}")
    assert error.field == "(body)"
    assert error.reason == "nests arrays and objects deeper than 64 levels"
    # Brackets in strings are text: they do not nest.
    text = '["' + "[{" * 500 + '\\"]"]'
    assert decode_json_body(text.encode()) == ["[{" * 500 + '"]']


@pytest.mark.parametrize(
    "body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000, b"[" * 5_000_000]
)
def test_a_body_nested_100000_deep_is_refused_quickly_without_recursion(body):
    started = time.perf_counter()
    error = _body_error(body)  # a RecursionError would fail here
    assert time.perf_counter() - started < 1
    assert error.reason == "nests arrays and objects deeper than 64 levels"


def test_a_5mb_batch_of_500_events_decodes_fast():
    events = [
        _event(
            event_id=f"MES-E{index:05d}",
            data={"quantity": 2.5, "uom": "kg", "operator": "x" * 9800},
        )
        for index in range(500)
    ]
    body = json.dumps({"events": events}).encode()
    assert len(body) > 5_000_000
    started = time.perf_counter()
    assert decode_json_body(body) == {"events": events}
    assert time.perf_counter() - started < 0.5


def test_many_problems_are_listed_up_to_the_limit():
    body = json.dumps({"events": [{"order_ref": "A\x00"}] * 300}).encode()
    errors = _body_errors(body)
    assert len(errors) == validation.MAX_ERRORS + 1
    assert errors[0].field == "events[0].order_ref"
    assert (errors[-1].field, errors[-1].reason) == (
        "(body)",
        "has more problems: only the first 100 are listed",
    )


def test_without_checking_values_each_event_of_a_batch_is_left_to_validation():
    events = [
        _event(event_id="GOOD"),
        _event(order_ref="MO\x00/1"),
        _event(order_ref="MO\ud800"),
        _event(data={"quantity": "__1e400__", "uom": "kg"}),
    ]
    body = json.dumps({"events": events}).replace('"__1e400__"', "1e400").encode()
    assert [e.field for e in _body_errors(body)] == [
        "events[1].order_ref",
        "events[2].order_ref",
        "events[3].data.quantity",
    ]
    decoded = decode_json_body(body, check_values=False)["events"]
    assert [[e.field for e in validation_errors(event, "event.v1.json")] for event in decoded] == [
        [],
        ["order_ref"],
        ["order_ref"],
        ["data.quantity"],
    ]
    # What is no JSON at all is refused all the same.
    for bad in (b'{"events": [{"q": NaN}]}', b'{"a": "x\x00"}', b"[" * 100):
        with pytest.raises(MessageValidationError):
            decode_json_body(bad, check_values=False)
    with pytest.raises(MessageValidationError) as info:
        decode_json_body(b'{"events": [{"q": 1}, {"q": -Infinity}]}', check_values=False)
    assert [e.field for e in info.value.errors] == ["events[1].q"]


def test_only_bytes_are_decoded():
    with pytest.raises(TypeError):
        decode_json_body('{"a": 1}')


# ---------------------------------------------------------------------------
# validation_errors: values no schema keyword refuses, limits, date-time range
# ---------------------------------------------------------------------------


def _only(message, schema="event.v1.json"):
    errors = validation_errors(message, schema)
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("event_type", [{}, [], {"a": [1]}, None, 3, 1.5])
def test_any_event_type_is_a_field_error(event_type):
    error = _only(_event(event_type=event_type))
    assert error.field == "event_type"
    assert error.reason.startswith('is not one of "order_started"')


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sequence", math.nan),
        ("sequence", math.inf),
        ("sequence", 10**400),
        ("data.quantity", math.nan),
        ("data.quantity", math.inf),
        ("data.quantity", -math.inf),
        ("data.operator", math.nan),
    ],
)
def test_numbers_must_be_finite(field, value):
    event = _event()
    if field.startswith("data."):
        event["data"][field[5:]] = value
    else:
        event[field] = value
    error = _only(event)
    assert error.field == field
    assert error.value is value
    assert error.reason.startswith("is not a finite number")
    json.dumps(error.as_dict(), allow_nan=False)


def test_a_measured_value_must_be_finite():
    event = _event(
        event_type="quality_result",
        data={
            "characteristic": "LEN",
            "result": "pass",
            "measurements": [{"name": "L", "value": 1.0}],
        },
    )
    assert validation_errors(event, "event.v1.json") == []
    event["data"]["measurements"][0]["value"] = math.nan
    assert _only(event).field == "data.measurements[0].value"


def _operation_event(**data):
    return _event(event_type="operation_completed", data={"operation": 10, **data})


@pytest.mark.parametrize(
    ("event", "field", "reason"),
    [
        (_event(sequence=2147483648), "sequence", "must be 2147483647 or less"),
        (_operation_event(operation=2147483648), "data.operation", "must be 2147483647 or less"),
        (
            _operation_event(operation=123456789012345678),
            "data.operation",
            "must be 2147483647 or less",
        ),
        (_operation_event(operation=-2147483649), "data.operation", "must be -2147483648 or more"),
        (_operation_event(operation=1e300), "data.operation", "must be 2147483647 or less"),
        (
            _event(data={"quantity": 1e12 + 1, "uom": "kg"}),
            "data.quantity",
            "must be 1000000000000 or less",
        ),
        (
            _operation_event(good_quantity=10**13, uom="kg"),
            "data.good_quantity",
            "must be 1000000000000 or less",
        ),
        (_operation_event(run_minutes=10_000_001), "data.run_minutes", "must be 10000000 or less"),
        (_operation_event(setup_minutes=1e300), "data.setup_minutes", "must be 10000000 or less"),
    ],
)
def test_integers_quantities_and_minutes_have_a_maximum(event, field, reason):
    error = _only(event)
    assert (error.field, error.reason) == (field, reason)


def test_the_limits_are_accepted():
    assert validation_errors(_event(sequence=2147483647), "event.v1.json") == []
    assert validation_errors(_event(data={"quantity": 1e12, "uom": "kg"}), "event.v1.json") == []
    limits = _operation_event(
        good_quantity=10**12, reject_quantity=0, uom="kg", setup_minutes=10**7, run_minutes=0
    )
    assert validation_errors(limits, "event.v1.json") == []
    for operation in (2147483647, -2147483648):
        assert validation_errors(_operation_event(operation=operation), "event.v1.json") == []


def test_the_schema_states_the_limits():
    schema = validation.load_schema("event.v1.json")
    defs = schema["$defs"]
    assert schema["properties"]["sequence"]["maximum"] == validation.MAX_INTEGER
    assert (defs["operation"]["minimum"], defs["operation"]["maximum"]) == (
        validation.MIN_INTEGER,
        validation.MAX_INTEGER,
    )
    assert defs["quantity"]["maximum"] == defs["count"]["maximum"] == validation.MAX_QUANTITY
    assert defs["minutes"]["maximum"] == validation.MAX_MINUTES
    assert "1970-01-01 and 9998-12-31" in defs["datetime"]["description"]


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("order_ref", "WH/MO/\x00001", "NUL"),
        ("event_id", "\ud800", "surrogate"),
        ("data.operator", "Ann\x00", "NUL"),
        ("data.operator", "\udc80Ann", "surrogate"),
    ],
)
def test_text_must_be_storable(field, value, what):
    event = _event()
    if field.startswith("data."):
        event["data"][field[5:]] = value
    else:
        event[field] = value
    error = _only(event)
    assert (error.field, error.value) == (field, value)
    assert what in error.reason
    assert "\x00" not in str(error) and "\\u" in str(error)
    str(error).encode("utf-8")
    json.dumps(error.as_dict(), allow_nan=False, ensure_ascii=False).encode("utf-8")


def test_a_field_name_must_be_storable_too():
    event = _event()
    event["data"]["lot\x00"] = "L1"
    errors = validation_errors(event, "event.v1.json")
    # Named once, for its character; "not an expected field" would only add noise.
    assert [(e.field, e.reason) for e in errors] == [
        (
            "data.lot\\u0000",
            "is a field name that holds a NUL character (\\u0000), which text in the database "
            "cannot hold",
        )
    ]


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-01:00",
        "9999-12-31T23:59:59.999999+00:00",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "0001-01-01T00:00:00Z",
    ],
)
def test_date_times_must_be_between_1970_and_9998_utc(value):
    for event in (_event(occurred_at=value), _operation_event(started_at=value)):
        error = _only(event)
        assert error.field in ("occurred_at", "data.started_at")
        assert error.value == value
        assert error.reason == "must be a date-time between 1970-01-01 and 9998-12-31 (UTC)"
    order = _order().to_dict()
    order["planned_end"] = value
    assert _only(order, "order.v1.json").field == "planned_end"


@pytest.mark.parametrize(
    "value",
    [
        "1970-01-01T00:00:00Z",
        "1969-12-31T23:00:00-01:00",
        "9998-12-31T23:59:59.999999Z",
        "9999-01-01T00:59:59+01:00",
    ],
)
def test_date_times_at_the_limits_convert_to_utc(value):
    assert validation_errors(_event(occurred_at=value), "event.v1.json") == []
    moment = datetime.fromisoformat(value).astimezone(UTC)  # no OverflowError
    assert datetime(1970, 1, 1, tzinfo=UTC) <= moment <= datetime(9999, 1, 1, tzinfo=UTC)
    assert parse_event(_event(occurred_at=value)).occurred_at == moment


def test_nesting_deeper_than_the_limit_is_one_error():
    allowed, deep = [], []
    for _level in range(61):  # the event, data and 62 arrays: 64 levels
        allowed = [allowed]
    for _level in range(900):
        deep = [deep]
    event = _event(event_type="nope", data={"x": allowed})
    assert [e.field for e in validation_errors(event, "event.v1.json")] == ["event_type"]
    error = _only(_event(data={"x": deep}))
    assert error.field.startswith("data.x[0][0]")
    assert len(error.field) <= 200
    assert error.reason == "is nested deeper than 64 levels of arrays and objects"


def test_huge_integers_anywhere_do_not_break_validation():
    event = _event(event_type="nope", data={"x": 10**5000})
    (error,) = [e for e in validation_errors(event, "event.v1.json") if e.field == "data.x"]
    assert error.reason.startswith("is not a finite number")
    assert str(error) == (
        "data.x: (an integer of more than 4300 digits) is not a finite number: NaN, infinity "
        "and numbers beyond ±1.8e308 cannot be stored"
    )
    assert json.dumps(error.as_dict(), allow_nan=False)


def test_repeated_serials_are_found_fast_among_many_items():
    data = {"product": "P", "quantity": 1, "uom": "Units", "serials": ["S1", "S2", "S1"]}
    event = _event(event_type="material_consumed", data=data)
    error = _only(event)
    assert (error.field, error.reason) == ("data.serials", "must not hold the same item twice")
    # Items that cannot be sorted made jsonschema compare every pair: hours for these.
    data["serials"] = [*range(50_000), "S1", {"a": 1}, [1], 1.5]
    started = time.perf_counter()
    errors = validation_errors(event, "event.v1.json")
    assert time.perf_counter() - started < 1
    assert len(errors) == validation.MAX_ERRORS + 1
    assert errors[-1].reason == "has more problems: only the first 100 are listed"


# ---------------------------------------------------------------------------
# FieldError: bounded and JSON-safe
# ---------------------------------------------------------------------------


def test_a_long_unknown_field_is_named_shortly():
    event = _event()
    event["k" * 3000] = 1
    error = _only(event)
    assert len(error.field) == 200
    assert error.field == "k" * 197 + "..."
    assert error.reason == "is not an expected field"
    assert len(str(error)) < 300


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (math.nan, "NaN"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (10**20, "100000000000000000000"),
        (10**5000, "(an integer of more than 4300 digits)"),
        ("x" * 3000, "x" * 197 + "..."),
        ("a\x00b\ud800", "a\\u0000b\\ud800"),
        ([1, math.nan, {"k": math.inf}], [1, "NaN", {"k": "Infinity"}]),
        (functools.reduce(lambda inner, _: [inner], range(1000), []), "[[[[[[[[..."),
        (list(range(100_000)), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"),
    ],
    ids=["nan", "inf", "-inf", "2**66", "10**5000", "long", "nul", "nested", "deep", "huge"],
)
def test_as_dict_is_always_json(value, shown):
    error = FieldError("f" * 500, value, "r\x00" * 1000)
    out = error.as_dict()
    text = json.dumps(out, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert "\x00" not in text
    if isinstance(shown, str) and shown.endswith("2"):
        assert out["value"].startswith(shown) and len(out["value"]) == 200
    else:
        assert out["value"] == shown
    assert len(out["field"]) == 200
    assert len(out["reason"]) == 500
    assert len(str(error)) < 800
    str(error).encode("utf-8")


def test_values_json_does_not_know_are_text_in_as_dict():
    moment = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    assert FieldError("f", moment, "r").as_dict()["value"] == "2026-01-31 08:00:00+00:00"
    assert FieldError("f", b"\x00", "r").as_dict()["value"] == "b'\\x00'"
    assert FieldError("f", [moment], "r").as_dict()["value"] == ["2026-01-31 08:00:00+00:00"]
    assert str(FieldError("f", {1, 2}, "r")) == 'f: "{1, 2}" r'


def test_small_values_stay_as_they_are_in_as_dict():
    for value in (None, True, 0, -7, 2.5, "text", ["SN-1", "SN-2"], {"a": [1, None]}):
        assert FieldError("f", value, "r").as_dict() == {
            "field": "f",
            "reason": "r",
            "value": value,
        }
