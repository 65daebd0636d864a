"""Event and order validation: errors name the field, the value and what was expected."""

import copy
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
)
from mes_connector.messages import Component, Operation, Product


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
    del event["event_id"]
    assert _messages(_errors(event)) == ["event_id: is missing", "order_ref: is missing"]


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
