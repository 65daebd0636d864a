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

from .validation import event_variant, load_schema

_DEFS_REF = '"#/$defs/'
_COMPONENT = "#/components/schemas/"


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
    variants = {
        event_type: dict(event_variant(event, event_type), title=f"Event {event_type}")
        for event_type in event["properties"]["event_type"]["enum"]
    }
    for variant in variants.values():
        for key in ("$schema", "$id", "$defs", "description"):
            variant.pop(key, None)
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
