"""The OpenAPI document of the intake, as served: one self-contained contract.

``schemas/openapi.json`` refers to ``event.v1.json`` beside it (both are valid files
as they are in the repository). The served document inlines the event schema, and
writes it the way request generators and client generators read best: one variant
per event type (``Event_order_completed``, ...) chosen by ``event_type``, instead of
the ``allOf``/``if``/``then`` rules the validator uses. Both come from the same
file, so the contract and the validation cannot drift apart.
"""

import copy
import json

from .validation import load_schema

_DEFS_REF = '"#/$defs/'
_COMPONENT = "#/components/schemas/"


def _type_rules(event_schema):
    """(data schema per event type, event types that need an order_ref) from the rules."""
    data_of, needs_order = {}, None
    for rule in event_schema.get("allOf", []):
        condition = rule["if"]["properties"]["event_type"]
        if "const" in condition:
            data_of[condition["const"]] = rule["then"]["properties"]["data"]
        elif "not" in condition and "order_ref" in rule["then"].get("required", []):
            needs_order = set(event_schema["properties"]["event_type"]["enum"]) - set(
                condition["not"]["enum"]
            )
    return data_of, needs_order or set()


def openapi_document():
    """The served OpenAPI document (a new dict each call)."""
    document = copy.deepcopy(load_schema("openapi.json"))
    event = load_schema("event.v1.json")
    # The event schema's definitions become components, their references follow.
    text = json.dumps(event).replace(_DEFS_REF, f'"{_COMPONENT}event_')
    event = json.loads(text)
    schemas = document["components"]["schemas"]
    for name, definition in event.get("$defs", {}).items():
        schemas[f"event_{name}"] = definition
    data_of, needs_order = _type_rules(event)
    variants = {}
    for event_type in event["properties"]["event_type"]["enum"]:
        required = list(event["required"])
        if event_type in needs_order:
            required.append("order_ref")
        variants[event_type] = {
            "type": "object",
            "title": f"Event {event_type}",
            "additionalProperties": False,
            "required": required,
            "properties": {
                **event["properties"],
                "event_type": {"const": event_type},
                "data": data_of.get(event_type, event["properties"]["data"]),
            },
        }
    for event_type, variant in variants.items():
        schemas[f"Event_{event_type}"] = variant
    schemas["Event"] = {
        "description": event.get("description", ""),
        "oneOf": [{"$ref": f"{_COMPONENT}Event_{t}"} for t in variants],
        "discriminator": {
            "propertyName": "event_type",
            "mapping": {t: f"{_COMPONENT}Event_{t}" for t in variants},
        },
    }
    return document
