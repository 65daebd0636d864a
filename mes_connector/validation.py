"""Schema validation with errors that name the field, the value and what was expected."""

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

from jsonschema import Draft202012Validator, FormatChecker

from .exceptions import MessageValidationError

MISSING = object()
_MISSING = MISSING
_MAX_SHOWN = 60


@dataclass(frozen=True)
class FieldError:
    """One problem in a message: ``field`` is a dotted path such as ``data.quantity``."""

    field: str
    value: object
    reason: str

    def __str__(self):
        if self.value is _MISSING:
            return f"{self.field}: {self.reason}"
        return f"{self.field}: {_show(self.value)} {self.reason}"

    def as_dict(self):
        out = {"field": self.field, "reason": self.reason}
        if self.value is not _MISSING:
            out["value"] = self.value
        return out


def _show(value):
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text


_format_checker = FormatChecker(formats=())


@_format_checker.checks("date-time", raises=ValueError)
def _is_datetime(value):
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return True


@cache
def load_schema(name):
    """The JSON schema shipped with this package, by file name (``event.v1.json``)."""
    text = resources.files("mes_connector").joinpath("schemas", name).read_text("utf-8")
    return json.loads(text)


@cache
def _validator(name):
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker)


def _path(parts):
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(message)"


def _reason(error):
    kind = error.validator
    expected = error.validator_value
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        return "is not of type " + " or ".join(types)
    if kind == "enum":
        return "is not one of " + ", ".join(json.dumps(v) for v in expected)
    if kind == "const":
        return f"is not {json.dumps(expected)}"
    if kind == "exclusiveMinimum":
        return f"must be greater than {expected}"
    if kind == "minimum":
        return f"must be {expected} or more"
    if kind == "maximum":
        return f"must be {expected} or less"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if kind == "maxLength":
        return f"must be at most {expected} characters"
    if kind == "pattern":
        return f"must match {expected}"
    if kind == "format":
        return "is not a date-time with time zone (ISO 8601, e.g. 2026-01-31T08:00:00Z)"
    return error.message


def _field_errors(error):
    """One jsonschema error as field errors (``required`` and extra keys: one per field)."""
    base = list(error.absolute_path)
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [
            FieldError(_path([*base, name]), _MISSING, "is missing")
            for name in error.validator_value
            if name not in present
        ]
    if error.validator == "dependentRequired":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [
            FieldError(
                _path([*base, name]), MISSING, f"is missing (needed with {_path([*base, key])})"
            )
            for key, needed in error.validator_value.items()
            if key in present
            for name in needed
            if name not in present
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        return [
            FieldError(_path([*base, name]), error.instance[name], "is not an expected field")
            for name in error.instance
            if name not in allowed
        ]
    return [FieldError(_path(base), error.instance, _reason(error))]


def _collect(error):
    # allOf/if-then wrap the interesting errors: report the innermost ones.
    if error.context:
        for sub in error.context:
            yield from _collect(sub)
    else:
        yield from _field_errors(error)


def validation_errors(message, schema_name):
    """All problems of ``message`` against a packaged schema, sorted by field."""
    if not isinstance(message, dict):
        return [FieldError("(message)", message, "is not a JSON object")]
    errors = []
    for error in _validator(schema_name).iter_errors(message):
        errors.extend(_collect(error))
    unique = {(e.field, e.reason): e for e in errors}
    return sorted(unique.values(), key=lambda e: e.field)


def _check(message, schema_name):
    errors = validation_errors(message, schema_name)
    if errors:
        raise MessageValidationError(errors)
    return message


def validate_event(message):
    """Raise :class:`MessageValidationError` unless ``message`` is a valid MES event."""
    return _check(message, "event.v1.json")


def validate_order(message):
    """Raise :class:`MessageValidationError` unless ``message`` is a valid order export."""
    return _check(message, "order.v1.json")


def parse_event(message):
    """Validate a decoded event and return it as an :class:`~mes_connector.messages.Event`."""
    from .messages import Event

    return Event.from_dict(validate_event(message))
